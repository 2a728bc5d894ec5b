#!/usr/bin/env bash
# Ferry quick start. Starts a throwaway binlog-enabled MariaDB on 127.0.0.1:3307
# (installing mariadb-server when it is missing), creates the demo table
# shop.orders, runs `ferry run -c configs/quickstart.yaml`, makes a few demo
# changes and shows their CloudEvents on stdout. Ctrl-C stops everything.
#   scripts/quickstart.sh          # keep running; make your own changes too
#   scripts/quickstart.sh --once   # exit after the demo changes were shown
set -euo pipefail
cd "$(dirname "$0")/.."
ONCE=0; [ "${1:-}" = "--once" ] && ONCE=1
DIR=${FERRY_QUICKSTART_DIR:-/tmp/ferry-quickstart}
PORT=${FERRY_QUICKSTART_PORT:-3307}
export MYSQL_ADDR="127.0.0.1:$PORT" FERRY_STATE_DIR="$DIR/state" FERRY_ADMIN_LISTEN=${FERRY_ADMIN_LISTEN:-127.0.0.1:9090}

command -v go >/dev/null 2>&1 || export PATH="/usr/local/go/bin:$PATH"
if ! { command -v mariadbd || test -x /usr/sbin/mariadbd; } >/dev/null 2>&1; then
  echo "== installing mariadb-server" >&2
  DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mariadb-server >/dev/null
fi

mkdir -p "$DIR"
echo "== building ferry" >&2
go build -o "$DIR/ferry" ./cmd/ferry
go build -o "$DIR/devdb" ./internal/mariadbtest/cmd/devdb

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

echo "== starting MariaDB on $MYSQL_ADDR (data in $DIR/db)" >&2
"$DIR/devdb" -port "$PORT" -dir "$DIR/db" > "$DIR/devdb.out" 2> "$DIR/devdb.log" &
pids+=($!)
for _ in $(seq 1 600); do grep -q '^ready' "$DIR/devdb.out" 2>/dev/null && break; sleep 0.1; done
grep -q '^ready' "$DIR/devdb.out" || { echo "MariaDB did not start:" >&2; cat "$DIR/devdb.log" >&2; exit 1; }

sql() { mariadb --no-defaults -h127.0.0.1 -P"$PORT" -uroot --default-character-set=utf8mb4 -e "$1"; }
sql "CREATE DATABASE IF NOT EXISTS shop CHARACTER SET utf8mb4;
     CREATE TABLE IF NOT EXISTS shop.orders (
       id INT AUTO_INCREMENT PRIMARY KEY, customer VARCHAR(100) NOT NULL,
       total DECIMAL(10,2) NOT NULL, status ENUM('new','paid','shipped') NOT NULL DEFAULT 'new',
       created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3))"

echo "== ferry run -c configs/quickstart.yaml (CloudEvents on stdout, logs in $DIR/ferry.log)" >&2
: > "$DIR/events.jsonl"
"$DIR/ferry" run -c configs/quickstart.yaml > >(tee "$DIR/events.jsonl") 2> "$DIR/ferry.log" &
pids+=($!)

echo "== demo changes: 2 inserts, 1 update, a 2-row transaction, 1 delete" >&2
sql "INSERT INTO shop.orders (customer, total) VALUES ('Ada', 42.50);
     INSERT INTO shop.orders (customer, total) VALUES ('Grace 🚀', 17.00);
     UPDATE shop.orders SET status = 'paid' WHERE customer = 'Ada' ORDER BY id DESC LIMIT 1;
     BEGIN; INSERT INTO shop.orders (customer, total) VALUES ('Linus', 5.00);
            INSERT INTO shop.orders (customer, total) VALUES ('Barbara', 99.99); COMMIT;
     DELETE FROM shop.orders WHERE customer = 'Grace 🚀' ORDER BY id DESC LIMIT 1;"

for _ in $(seq 1 300); do
  [ "$(wc -l < "$DIR/events.jsonl")" -ge 6 ] && break
  sleep 0.1
done
if [ "$(wc -l < "$DIR/events.jsonl")" -lt 6 ]; then
  echo "ferry did not print the demo events; its log:" >&2; tail -20 "$DIR/ferry.log" >&2; exit 1
fi
if [ "$ONCE" = 1 ]; then
  echo "== done: the demo changes above arrived as CloudEvents" >&2
  exit 0
fi
cat >&2 <<MSG
== streaming. Make more changes and watch them appear, e.g.:
   mariadb -h127.0.0.1 -P$PORT -uroot -e "UPDATE shop.orders SET status='shipped'"
   status: curl -s http://$FERRY_ADMIN_LISTEN/status
   Ctrl-C stops Ferry and MariaDB (data stays in $DIR; rm -rf it to start over).
MSG
wait
