#!/usr/bin/env bash
# Access log: NDJSON export rate from PostgreSQL and offline verification rate on EVENTS sealed
# events, with the server's resident memory sampled during the export. PostgreSQL on
# 127.0.0.1:5432 (trust auth); loopback only; own database, dropped at the end.
#
#   bench/audit.sh        # EVENTS=1000000
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${EVENTS:-1000000}
PORT=${PORT:-18384}
PG="-h 127.0.0.1 -U postgres"
cargo build --release -q
BIN=./target/release/eap-referrals
DB="eap_audit_$(date +%s)"
WORK=$(mktemp -d)
SERVER=""
cleanup() {
  [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null || true
  psql $PG -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
psql $PG -qc "CREATE DATABASE $DB"
export EAP_DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB?sslmode=disable" EAP_LISTEN="127.0.0.1:$PORT" \
  EAP_DATA_DIR="$WORK" EAP_DB_POOL_SIZE=8 EAP_WORKERS=2 EAP_AUDIT_CHECKPOINT_SECS=1 RUST_LOG=warn
AUDITOR=$($BIN admin create-client --role auditor --name bench)
$BIN & SERVER=$!
BASE="http://127.0.0.1:$PORT"
for _ in $(seq 1 50); do curl -sf "$BASE/readyz" >/dev/null && break; sleep 0.2; done
TOKEN=$(curl -sf -u "$(echo "$AUDITOR" | jq -r .client_id):$(echo "$AUDITOR" | jq -r .client_secret)" \
  -d grant_type=client_credentials "$BASE/oauth/token" | jq -r .access_token)

# Ids in creation order, like the service's UUIDv7s (random ones would scatter every lookup).
echo "== writing $EVENTS access events"
psql $PG -d "$DB" -qc "INSERT INTO audit_events (id, occurred_at, actor_client_id, actor_role, tenant_id,
    action, resource_type, resource_id, outcome, http_status, request_id, source_addr)
  SELECT '01900000-0000-7000-8000-' || lpad(to_hex(i), 12, '0'), now() AT TIME ZONE 'UTC', 'client-' || (i % 50), 'provider',
    'tenant-' || (i % 50), 'contact.read', 'referral', gen_random_uuid()::text, 'success', 200,
    gen_random_uuid()::text, '127.0.0.1'
  FROM generate_series(1, $EVENTS) AS i"

echo "== sealing (the server's own sealer, every second)"
START=$(date +%s.%N)
SIZE=0
for _ in $(seq 1 600); do
  SIZE=$(curl -sf -H "Authorization: Bearer $TOKEN" "$BASE/v1/audit/checkpoints?limit=1" | jq '.latest.tree_size // 0')
  [ "$SIZE" -ge "$EVENTS" ] && break
  sleep 1
done
SEAL_S=$(echo "$(date +%s.%N) - $START" | bc)
[ "$SIZE" -ge "$EVENTS" ] || { echo "sealing did not finish in 10 minutes"; exit 1; }

echo "== NDJSON export of the whole log"
RSS_BEFORE=$(awk '/VmRSS/ {print $2}' /proc/$SERVER/status)
echo "$RSS_BEFORE" > "$WORK/rss"
( while kill -0 $SERVER 2>/dev/null; do awk '/VmRSS/ {print $2}' /proc/$SERVER/status >> "$WORK/rss"; sleep 0.2; done ) &
SAMPLER=$!
EXPORT=$(timeout 300 curl -sf -H "Authorization: Bearer $TOKEN" -H 'Accept: application/x-ndjson' \
  "$BASE/v1/audit/events" -o "$WORK/events.ndjson" -w '%{time_total} %{size_download}')
kill $SAMPLER 2>/dev/null || true
EXPORT_S=${EXPORT% *}
BYTES=${EXPORT#* }
PEAK=$(sort -n "$WORK/rss" | tail -1)
curl -sf -H "Authorization: Bearer $TOKEN" "$BASE/v1/audit/checkpoints" > "$WORK/checkpoints.json"
curl -sf "$BASE/v1/audit/public-key" > "$WORK/public-key.json"

echo "== offline verification"
VSTART=$(date +%s.%N)
timeout 300 $BIN audit verify --events "$WORK/events.ndjson" --checkpoints "$WORK/checkpoints.json" \
  --public-key "$WORK/public-key.json" | tail -1
VERIFY_S=$(echo "$(date +%s.%N) - $VSTART" | bc)

LINES=$(($(wc -l < "$WORK/events.ndjson") - 2))
echo
echo "sealed $SIZE events in ${SEAL_S}s ($(echo "$SIZE / $SEAL_S" | bc) events/s, background sealer)"
echo "export: $LINES events, $BYTES bytes in ${EXPORT_S}s = $(echo "$LINES / $EXPORT_S" | bc) events/s; server RSS ${RSS_BEFORE} kB before, peak ${PEAK} kB"
echo "offline verify: $LINES events in ${VERIFY_S}s = $(echo "$LINES / $VERIFY_S" | bc) events/s (process start and file read included)"
