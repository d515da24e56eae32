#!/usr/bin/env bash
# Intake throughput: referral submissions through HTTP on PostgreSQL, against pgbench running
# the same writes (same statements, same transactions) on the same machine in the same run.
#
#   bench/intake.sh            # DURATION=15 CONNS=32 by default; loopback only
#
# Needs PostgreSQL on 127.0.0.1:5432 with trust auth (as on the project's machines) and wrk
# (installed with apt if missing). Creates and drops its own database.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-15}
CONNS=${CONNS:-32}
PORT=${PORT:-18181}
PG="-h 127.0.0.1 -U postgres"

command -v wrk >/dev/null || { apt-get install -y -qq wrk >/dev/null; }
cargo build --release -q
BIN=./target/release/eap-referrals
DB="eap_bench_$(date +%s)"
WORK=$(mktemp -d)
SERVER=""
cleanup() {
  [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null || true
  psql $PG -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
psql $PG -qc "CREATE DATABASE $DB"

export EAP_DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB" EAP_LISTEN="127.0.0.1:$PORT" \
  EAP_DATA_DIR="$WORK" EAP_DB_POOL_SIZE=${POOL:-32} EAP_WORKERS=2 RUST_LOG=warn \
  EAP_RATE_LIMIT_HR_PORTAL=0 EAP_RATE_LIMIT_TOKEN_ADDRESS=0  # one client at full speed: budgets off
ADMIN=$($BIN admin create-client --role admin --name bench)
$BIN & SERVER=$!
BASE="http://127.0.0.1:$PORT"
for _ in $(seq 1 50); do curl -sf "$BASE/readyz" >/dev/null && break; sleep 0.2; done

token() { curl -sf -u "$1:$2" -d grant_type=client_credentials "$BASE/oauth/token" | jq -r .access_token; }
post() { curl -sf -H "Authorization: Bearer $1" -H 'Content-Type: application/json' -d "$3" "$BASE$2"; }
TOKEN=$(token "$(echo "$ADMIN" | jq -r .client_id)" "$(echo "$ADMIN" | jq -r .client_secret)")
EMPLOYER=$(post "$TOKEN" /v1/admin/employers '{"name":"Bench Employer"}' | jq -r .id)
PROVIDER=$(post "$TOKEN" /v1/admin/providers '{"name":"Bench Provider","services":["counselling"],"languages":["en"],"regions":["GB"],"modalities":["video"],"capacity":100000}' | jq -r .id)
post "$TOKEN" /v1/admin/contracts "{\"employer_id\":\"$EMPLOYER\",\"provider_id\":\"$PROVIDER\",\"priority\":1}" >/dev/null
PORTAL=$(post "$TOKEN" /v1/admin/clients "{\"name\":\"Bench portal\",\"role\":\"hr_portal\",\"employer_id\":\"$EMPLOYER\"}")
PORTAL_ID=$(echo "$PORTAL" | jq -r .client_id)
PORTAL_TOKEN=$(token "$PORTAL_ID" "$(echo "$PORTAL" | jq -r .client_secret)")

cat > "$WORK/submit.lua" <<LUA
local counter = 0
local salt = tostring(math.random(1, 1e9)) .. tostring({}):sub(8)
local body = '{"service_type":"counselling","urgency":"routine","modality":"video","language":"en","region":"GB-ENG","employee_ref":"E-1","contact":{"preferred_name":"Sam","phone":"+447700900123","email":"sam@example.org","best_time_to_contact":"evenings","voicemail_consent":true},"note":"bench"}'
request = function()
  counter = counter + 1
  return wrk.format("POST", "/v1/referrals", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer $PORTAL_TOKEN",
    ["Idempotency-Key"] = salt .. "-" .. counter,
  }, body)
end
LUA
# Warm-up, then the measured run.
wrk -t2 -c"$CONNS" -d3s -s "$WORK/submit.lua" "$BASE" >/dev/null
wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency -s "$WORK/submit.lua" "$BASE" | tee "$WORK/wrk.txt"
kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=""
if grep -q "Non-2xx" "$WORK/wrk.txt"; then echo "FAIL: some submissions were not 201"; exit 1; fi
HTTP_RPS=$(awk '/Requests\/sec/ {print $2}' "$WORK/wrk.txt")
HTTP_P99=$(awk '$1 == "99%" {print $2}' "$WORK/wrk.txt")

# The same statements, straight into PostgreSQL: one submission = the caller check (the auth
# extractor's own round trip) + one transaction with the idempotency-key lock and lookup, the
# employer check, the routing snapshot (providers and their loads), the slot claim and load
# shard, the referral, its attempt, the feed event, the key with its sealed response and the
# access-log event.
psql $PG -d "$DB" -qc "UPDATE provider_slots SET referral_id = NULL; UPDATE provider_load_shards SET held = 0"
cat > "$WORK/submit.sql" <<'SQL'
\set shard random(0, 15)
\set lock random(1, 9000000000000000)
SELECT gen_random_uuid()::text AS rid, md5(random()::text) AS ikey, decode(repeat(md5(random()::text), 6), 'hex') AS blob \gset
SELECT role, revoked_at, secret_rotated_at FROM api_clients WHERE id = ':client';
BEGIN;
SELECT pg_try_advisory_xact_lock(:lock);
SELECT request_hash, referral_id, response_status, response_sealed, created_at FROM idempotency_keys WHERE client_id = ':client' AND idem_key = ':ikey';
SELECT active FROM employers WHERE id = ':employer';
SELECT c.*, p.* FROM contracts c JOIN providers p ON p.id = c.provider_id WHERE c.employer_id = ':employer';
SELECT provider_id, held FROM provider_load_shards WHERE provider_id IN (':provider');
UPDATE provider_slots SET referral_id = ':rid' WHERE provider_id = ':provider' AND slot = (SELECT s.slot FROM provider_slots s JOIN providers p ON p.id = s.provider_id WHERE s.provider_id = ':provider' AND s.referral_id IS NULL AND p.active AND p.status = 'active' AND s.slot >= (SELECT floor(random() * capacity)::int FROM providers WHERE id = ':provider') ORDER BY s.slot LIMIT 1 FOR UPDATE OF s SKIP LOCKED);
UPDATE provider_load_shards SET held = held + 1 WHERE provider_id = ':provider' AND shard = :shard;
INSERT INTO referrals (id, employer_id, service_type, urgency, modality, language, region, employee_ref_hmac, status, provider_id, offer_expires_at, version, status_token_hash, key_id, wrapped_key, sealed_contact, sealed_note, routing_reasons, created_at, updated_at)
  VALUES (':rid', ':employer', 'counselling', 'routine', 'video', 'en', 'GB-ENG', md5(':rid'), 'offered', ':provider', now() + interval '48 hours', 1, md5(':ikey'), 'dev1', ':blob', ':blob', ':blob', '{"chosen":"x","reports":[]}', now(), now());
INSERT INTO referral_attempts (referral_id, provider_id, offered_at) VALUES (':rid', ':provider', now());
INSERT INTO provider_events (provider_id, referral_id, kind, created_at) VALUES (':provider', ':rid', 'offered', now());
INSERT INTO idempotency_keys (client_id, idem_key, request_hash, referral_id, response_status, response_sealed, created_at) VALUES (':client', ':ikey', md5(':ikey'), ':rid', 201, ':blob', now());
INSERT INTO audit_events (id, occurred_at, actor_client_id, actor_role, tenant_id, action, resource_type, resource_id, outcome, http_status, request_id, source_addr)
  VALUES (gen_random_uuid()::text, now(), ':client', 'hr_portal', ':employer', 'referral.create', 'referral', ':rid', 'success', 201, ':ikey', '127.0.0.1');
COMMIT;
SQL
pgbench $PG -n -r -c "$CONNS" -j 2 -T "$DURATION" -D client="$PORTAL_ID" -D employer="$EMPLOYER" -D provider="$PROVIDER" \
  -f "$WORK/submit.sql" "$DB" | tee "$WORK/pgbench.txt"
PG_TPS=$(awk '/^tps =/ {print $3; exit}' "$WORK/pgbench.txt")

echo
echo "HTTP submissions: ${HTTP_RPS}/s, p99 ${HTTP_P99} (wrk, ${CONNS} connections, ${DURATION}s)"
echo "pgbench, same writes: ${PG_TPS} tps (${CONNS} clients, ${DURATION}s)"
awk -v h="$HTTP_RPS" -v p="$PG_TPS" 'BEGIN { printf "ratio: %.2f of pgbench\n", h / p }'
