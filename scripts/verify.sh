#!/usr/bin/env bash
# The long run of the randomized workload verifier (issue 12, item 11):
# application-like transactions (savepoints, INSERT ... SELECT, REPLACE,
# ON DUPLICATE KEY UPDATE, multi-table UPDATE/DELETE, triggers, a stored
# procedure, LOAD DATA, CREATE TABLE ... SELECT, TRUNCATE, ALTER/RENAME,
# rolled-back and large transactions) while Ferry is killed and restarted
# and the sink fails; every table rebuilt from the delivered events must
# equal SELECT, with consistent ids and per-key order.
#
#   scripts/verify.sh                          # 10 minutes of workload
#   APPLOAD_SECONDS=3600 scripts/verify.sh     # longer
#   APPLOAD_SEED=1796199267144242171 scripts/verify.sh   # replay a logged seed
#   APPLOAD_SKIP=truncate,savepoint scripts/verify.sh    # narrow a failure down
#
# CI runs the same test for 20 s (TestAppWorkloadVerified). Without -race.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if ! command -v go >/dev/null 2>&1; then export PATH="/usr/local/go/bin:$PATH"; fi
export APPLOAD_SECONDS="${APPLOAD_SECONDS:-600}"
exec go test -count=1 -timeout 6h -run '^TestAppWorkloadVerified$' -v ./integration/ "$@"
