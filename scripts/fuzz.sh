#!/usr/bin/env bash
# Runs every fuzz target of the module for a while each. The checked-in
# corpora (testdata/fuzz/<Target>/ next to each target) also run as plain
# tests in scripts/test.sh; this adds new random inputs on top.
#
#   scripts/fuzz.sh              # each target 10s (what CI runs)
#   FUZZTIME=30m scripts/fuzz.sh # a longer run; new failures are written to
#                                # testdata/fuzz/<Target>/ — commit them with the fix
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if ! command -v go >/dev/null 2>&1; then export PATH="/usr/local/go/bin:$PATH"; fi
fuzztime=${FUZZTIME:-10s}

# package<TAB>target, found by grepping the test files, so a new target is
# fuzzed without editing this script.
mapfile -t targets < <(grep -rl --include='*_test.go' '^func Fuzz' . | sort | while read -r f; do
  pkg="./$(dirname "${f#./}")"
  grep -o '^func Fuzz[A-Za-z0-9_]*' "$f" | sed 's/^func //' | while read -r t; do printf '%s\t%s\n' "$pkg" "$t"; done
done)
[ "${#targets[@]}" -gt 0 ] || { echo "no fuzz targets found" >&2; exit 1; }

# fuzz_once PKG TARGET: one run; its output (last lines) is in $out.
out=$(mktemp "${TMPDIR:-/tmp}/ferry-fuzz.XXXXXX")
trap 'rm -f "$out"' EXIT
fuzz_once() {
  go test -run '^$' -fuzz "^$2\$" -fuzztime "$fuzztime" "$1" >"$out" 2>&1
  local rc=$?
  tail -n 20 "$out"
  return "$rc"
}

failed=0
for line in "${targets[@]}"; do
  pkg=${line%%$'\t'*} target=${line#*$'\t'}
  echo "== fuzz $pkg $target for $fuzztime"
  if fuzz_once "$pkg" "$target"; then continue; fi
  # Go's fuzzing coordinator sometimes fails a run with a bare "context
  # deadline exceeded" when its time is up on a loaded machine; that found
  # no input (a real finding says "Failing input written to"). Run it again
  # once rather than failing the suite on the toolchain's hiccup.
  if grep -q 'context deadline exceeded' "$out" && ! grep -q 'Failing input written to' "$out"; then
    echo "== fuzz $pkg $target: the run ended on the coordinator's deadline without a failing input; running it again"
    fuzz_once "$pkg" "$target" && continue
  fi
  failed=1
done
if [ "$failed" -ne 0 ]; then
  echo "fuzzing found failures: the failing inputs are in testdata/fuzz/ (go test -run <Target>/<file> reproduces)" >&2
  exit 1
fi
echo "== fuzz: ${#targets[@]} targets, ${fuzztime} each, no failure"
