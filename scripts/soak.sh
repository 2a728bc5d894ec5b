#!/usr/bin/env bash
# The long chaos runs (issue 8): 1M committed row changes from a throwaway
# MariaDB through Ferry to HTTP, Kafka (kfake) and EventBridge (fake) while
# ferry is killed 50 times, sinks go down 10 times and MariaDB crashes 3
# times, then every sink is checked against what was committed; and 100k
# webhook requests through 20 kills of ferry, every acknowledged one delivered.
#
#   scripts/soak.sh                       # the targets above (about 11 minutes on 2 cores)
#   CHAOS_CHANGES=200000 scripts/soak.sh  # any CHAOS_* figure can be changed
#
# Needs what scripts/test.sh installs (mariadb-server). Without -race, so the
# figures are about Ferry, not the race detector. The log names the seed;
# the figures to record go to docs/reliability.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if ! command -v go >/dev/null 2>&1; then export PATH="/usr/local/go/bin:$PATH"; fi
export CHAOS_SOAK=1
exec go test -count=1 -timeout 6h -run '^(TestChaos|TestWebhookChaos)$' -v ./integration/ "$@"
