#!/usr/bin/env bash
# Provider feed: empty polls per second at 64 connections, and the server's memory while 10,000
# long polls wait. PostgreSQL on 127.0.0.1:5432 (trust auth); loopback only; own database.
#
#   bench/feed.sh        # DURATION=10 POLLERS=64 IDLE=10000
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
POLLERS=${POLLERS:-64}
IDLE=${IDLE:-10000}
PORT=${PORT:-18383}
PG="-h 127.0.0.1 -U postgres"
command -v wrk >/dev/null || { apt-get install -y -qq wrk >/dev/null; }
cargo build --release -q
BIN=./target/release/eap-referrals
DB="eap_feed_$(date +%s)"
WORK=$(mktemp -d)
SERVER=""
cleanup() {
  [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null || true
  psql $PG -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
psql $PG -qc "CREATE DATABASE $DB"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true  # 10,000 long polls need as many sockets
export EAP_DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB${PGOPTS:-}" EAP_LISTEN="127.0.0.1:$PORT" \
  EAP_DATA_DIR="$WORK" EAP_DB_POOL_SIZE=${POOL:-16} EAP_WORKERS=2 RUST_LOG=warn \
  EAP_RATE_LIMIT_PROVIDER=0 EAP_RATE_LIMIT_TOKEN_ADDRESS=0  # one client at full speed: budgets off
ADMIN=$($BIN admin create-client --role admin --name bench)
$BIN & SERVER=$!
BASE="http://127.0.0.1:$PORT"
for _ in $(seq 1 50); do curl -sf "$BASE/readyz" >/dev/null && break; sleep 0.2; done
token() { curl -sf -u "$1:$2" -d grant_type=client_credentials "$BASE/oauth/token" | jq -r .access_token; }
post() { curl -sf -H "Authorization: Bearer $1" -H 'Content-Type: application/json' -d "$3" "$BASE$2"; }
TOKEN=$(token "$(echo "$ADMIN" | jq -r .client_id)" "$(echo "$ADMIN" | jq -r .client_secret)")
PROVIDER=$(post "$TOKEN" /v1/admin/providers '{"name":"P","services":["counselling"],"languages":["en"],"regions":["GB"],"modalities":["video"],"capacity":10}' | jq -r .id)
CLIENT=$(post "$TOKEN" /v1/admin/clients "{\"name\":\"poller\",\"role\":\"provider\",\"provider_id\":\"$PROVIDER\"}")
PTOKEN=$(token "$(echo "$CLIENT" | jq -r .client_id)" "$(echo "$CLIENT" | jq -r .client_secret)")

RSS_START=$(awk '/VmRSS/ {print $2}' /proc/$SERVER/status)
echo "== empty polls, $POLLERS connections, ${DURATION}s"
wrk -t2 -c"$POLLERS" -d2s -H "Authorization: Bearer $PTOKEN" "$BASE/v1/provider/events" >/dev/null
wrk -t2 -c"$POLLERS" -d"${DURATION}s" --latency -H "Authorization: Bearer $PTOKEN" "$BASE/v1/provider/events" | tee "$WORK/empty.txt"

echo "== $IDLE idle long polls (wait=60)"
RSS_BEFORE=$(awk '/VmRSS/ {print $2}' /proc/$SERVER/status)
wrk -t2 -c"$IDLE" -d25s --timeout 70s -H "Authorization: Bearer $PTOKEN" "$BASE/v1/provider/events?wait=60" > "$WORK/idle.txt" 2>&1 &
WRK=$!
PEAK=0
for _ in $(seq 1 20); do
  sleep 1
  R=$(awk '/VmRSS/ {print $2}' /proc/$SERVER/status)
  [ "$R" -gt "$PEAK" ] && PEAK=$R
done
OPEN=$(ss -Htn state established "( sport = :$PORT )" | wc -l)
kill $WRK 2>/dev/null || true; wait $WRK 2>/dev/null || true
echo
echo "empty polls: $(awk '/Requests\/sec/ {print $2}' "$WORK/empty.txt")/s, p99 $(awk '$1 == "99%" {print $2}' "$WORK/empty.txt") ($POLLERS connections)"
echo "server RSS after start-up: ${RSS_START} kB"
echo "idle long polls: $OPEN connections open at the end; server RSS ${RSS_BEFORE} kB before, peak ${PEAK} kB"
