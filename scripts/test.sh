#!/usr/bin/env bash
# The project's test command (README and CI run exactly this).
# Installs what the tests need on a fresh Debian machine, checks formatting
# and vet, then runs every test, integration tests included, with -race.
#   scripts/test.sh                      # everything
#   scripts/test.sh -run TestKill ./integration/   # extra args go to go test
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v go >/dev/null 2>&1; then export PATH="/usr/local/go/bin:$PATH"; fi

need_mariadb() { ! { command -v mariadbd || test -x /usr/sbin/mariadbd; } >/dev/null 2>&1 || ! command -v mariadb-install-db >/dev/null 2>&1; }
if need_mariadb; then
  echo "== installing mariadb-server (integration tests start their own throwaway servers)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq mariadb-server >/dev/null
fi

echo "== gofmt"
unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then echo "gofmt would change:"; echo "$unformatted"; exit 1; fi

echo "== go vet"
go vet ./...

echo "== go test -race"
if [ "$#" -gt 0 ]; then
  go test -race -count=1 -timeout 25m "$@"
else
  go test -race -count=1 -timeout 25m ./...
fi
echo "== all tests passed"
