#!/usr/bin/env bash
# The project's test command: README and CI run exactly this.
#
# On a fresh Debian 12 machine (as root) it installs what the tests need
# (mariadb-server for the throwaway servers internal/mariadbtest starts, gcc
# for -race, kcat for the Kafka cross-checks, node and the `cloudevents` npm
# package for the JavaScript SDK cross-checks), checks gofmt and go vet, then
# runs every test, integration tests included, with the race detector, the
# few tests that only mean something without it once more without it, and
# then every fuzz target for a few seconds (scripts/fuzz.sh). The tests never
# use the machine's own MariaDB on 3306.
#
#   scripts/test.sh                                 # everything: ./...
#   scripts/test.sh -run TestKill ./integration/    # arguments go to go test
#   scripts/test.sh -run TestKill                   # no package given: ./...
#
# Environment: SKIP_INSTALL=1 never runs apt-get (missing tools then fail);
# FUZZTIME=20s fuzzes each target longer, FUZZTIME=0 not at all.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

started=$SECONDS
step="setup"
summary=""
log=""
finish() {
  local rc=$?
  [ -z "$log" ] || rm -f "$log"
  local took=$((SECONDS - started))
  if [ "$rc" -eq 0 ]; then
    echo "== test.sh: PASS in ${took}s (gofmt, go vet, go test -race: ${summary})"
  else
    echo "== test.sh: FAIL at ${step} (exit ${rc}) after ${took}s${summary:+ (${summary})}" >&2
  fi
}
trap finish EXIT

# ---- 1. tools ---------------------------------------------------------------
apt_updated=0
apt_install() { # apt_install PACKAGE...: returns non-zero when it fails
  if [ "${SKIP_INSTALL:-0}" = 1 ]; then echo "SKIP_INSTALL=1: not installing $*" >&2; return 1; fi
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else echo "need root (or sudo) to install $*" >&2; return 1; fi
  fi
  if ! command -v apt-get >/dev/null 2>&1; then echo "no apt-get here: install $* yourself" >&2; return 1; fi
  export DEBIAN_FRONTEND=noninteractive
  if [ "$apt_updated" = 0 ]; then $sudo apt-get update -qq && apt_updated=1 || return 1; fi
  $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }

step="installing tools"
if ! have mariadbd || ! have mariadb-install-db; then
  echo "== installing mariadb-server (tests start their own throwaway servers from its binaries)"
  apt_install mariadb-server || { echo "cannot install mariadb-server: apt-get install -y mariadb-server" >&2; exit 1; }
fi
if ! command -v gcc >/dev/null 2>&1; then
  echo "== installing gcc (go test -race needs cgo)"
  apt_install gcc libc6-dev || { echo "cannot install gcc, which -race needs: apt-get install -y gcc" >&2; exit 1; }
fi
if ! command -v nats-server >/dev/null 2>&1 && [ ! -x /usr/sbin/nats-server ]; then
  echo "== installing nats-server (the NATS sink tests start their own JetStream servers from it)"
  apt_install nats-server || { echo "cannot install nats-server: apt-get install -y nats-server" >&2; exit 1; }
fi
if ! have krb5kdc || ! have kdb5_util || ! have kadmin.local; then
  echo "== installing krb5-kdc and krb5-admin-server (integration/kerberos_test.go starts a throwaway KDC)"
  apt_install krb5-kdc krb5-admin-server || echo "WARNING: could not install krb5-kdc; the Kerberos integration test will fail" >&2
fi
if ! command -v kcat >/dev/null 2>&1; then
  echo "== installing kcat (independent Kafka client some suites cross-check with)"
  apt_install kcat || echo "WARNING: could not install kcat; tests that cross-check with it will fail or skip" >&2
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "== installing nodejs and npm (the CloudEvents JavaScript SDK is an independent receiver in the sink tests)"
  apt_install nodejs npm || echo "WARNING: could not install nodejs/npm; the JavaScript SDK cross-checks skip (fail with CI set)" >&2
fi
if { [ ! -d internal/testkit/nodece/node_modules/cloudevents ] || [ ! -d internal/testkit/nodece/node_modules/standardwebhooks ]; } && command -v npm >/dev/null 2>&1; then
  echo "== installing the cloudevents npm package (internal/testkit/nodece, pinned by its package-lock.json)"
  npm ci --prefix internal/testkit/nodece --no-audit --no-fund >/dev/null ||
    echo "WARNING: npm ci failed; the JavaScript SDK cross-checks skip (fail with CI set)" >&2
fi

if ! command -v go >/dev/null 2>&1; then export PATH="/usr/local/go/bin:$PATH"; fi
command -v go >/dev/null 2>&1 || { echo "go not found on PATH or in /usr/local/go/bin: install Go (see go.mod for the version)" >&2; exit 1; }
export CGO_ENABLED=1 # the race detector needs cgo

# ---- 2. static checks -------------------------------------------------------
step="gofmt"
echo "== gofmt"
unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
  echo "gofmt -l lists files that are not gofmt'ed (run: gofmt -w <file>):" >&2
  echo "$unformatted" >&2
  exit 1
fi

step="go vet"
echo "== go vet ./..."
go vet ./...

# ---- 3. tests ---------------------------------------------------------------
# Arguments go to go test as given. When none of them names a package
# (./x, ../x, ., x/..., or an import path of this module), ./... is added.
args=("$@")
has_pkg=0
module=$(go list -m)
for a in "${args[@]}"; do
  case "$a" in
    -*) ;;
    .|./*|../*|*...*|"$module"|"$module"/*) has_pkg=1 ;;
  esac
done
[ "$has_pkg" = 1 ] || args+=("./...")

step="go test"
echo "== go test -race -count=1 -timeout 30m ${args[*]}"
log=$(mktemp "${TMPDIR:-/tmp}/ferry-test.XXXXXX")
set +e
go test -race -count=1 -timeout 30m "${args[@]}" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
summary="$(grep -c '^ok ' "$log" || true) packages ok, $(grep -cE '^FAIL\s' "$log" || true) failed"
if [ "$rc" -ne 0 ]; then
  grep -E '^(--- FAIL|FAIL\s)' "$log" | sed 's/^/   /' >&2 || true
  exit "$rc"
fi

# ---- 4. tests without the race detector --------------------------------------
# Tests that measure the release build (peak memory under the shipped
# GOMEMLIMIT) skip under -race, which multiplies memory: they run here once
# more without it. Only for the whole suite, like fuzzing below; name them in
# NORACE_TESTS when you add one (grep integration/ for raceEnabled).
NORACE_TESTS='^TestBigTransactionMemoryBounded$'
if [ "$has_pkg" = 0 ] && [ "$#" -eq 0 ]; then
  step="go test without -race"
  echo "== go test -count=1 -timeout 10m -v -run '${NORACE_TESTS}' ./integration/ (no -race)"
  go test -count=1 -timeout 10m -v -run "$NORACE_TESTS" ./integration/
  summary="$summary; without -race: ${NORACE_TESTS}"
fi

# ---- 5. fuzzing ---------------------------------------------------------------
# Every fuzz target gets a few seconds of new inputs beyond its checked-in
# corpus (which ran above as tests). Only for the whole suite, not for a
# selection of tests. FUZZTIME=0 skips it.
if [ "$has_pkg" = 0 ] && [ "$#" -eq 0 ] && [ "${FUZZTIME:-5s}" != 0 ]; then
  step="fuzzing"
  FUZZTIME=${FUZZTIME:-5s} scripts/fuzz.sh
  summary="$summary; fuzz targets ${FUZZTIME:-5s} each"
fi
