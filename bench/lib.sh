# Shared by the benchmarks in bench/: a release server on a throwaway PostgreSQL database,
# fixtures made through the API, and the measured phases. Source it; loopback only.
#
# Needs PostgreSQL on 127.0.0.1:5432 with trust auth (as on the project's machines), wrk, jq,
# curl and bc (installed with apt when missing).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PG="-h 127.0.0.1 -U postgres"
for tool in wrk jq curl bc; do
  command -v "$tool" >/dev/null || { apt-get update -qq && apt-get install -y -qq "$tool" >/dev/null; }
done
# BENCH_BIN runs another build (an A/B against a saved binary); otherwise the tree's own.
if [ -n "${BENCH_BIN:-}" ]; then BIN=$BENCH_BIN; else
  cargo build --release -q
  BIN=./target/release/eap-referrals
fi
DB="eap_bench_$(date +%s)_$$"
WORK=$(mktemp -d)
SERVER=""
SAMPLER=""
cleanup() {
  [ -n "$SAMPLER" ] && kill "$SAMPLER" 2>/dev/null || true
  [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null || true
  psql $PG -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
psql $PG -qc "CREATE DATABASE $DB"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true # thousands of long polls need as many sockets

# Starts the service with budgets off (one client at full speed is the point here), on the
# throwaway PostgreSQL database unless BENCH_DATABASE_URL names another.
start_server() {
  export EAP_DATABASE_URL="${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/$DB${PGOPTS:-}}" EAP_LISTEN="127.0.0.1:$PORT" \
    EAP_DATA_DIR="$WORK" EAP_DB_POOL_SIZE=${POOL:-32} EAP_WORKERS=2 RUST_LOG=warn \
    EAP_RATE_LIMIT_HR_PORTAL=0 EAP_RATE_LIMIT_PROVIDER=0 EAP_RATE_LIMIT_AUDITOR=0 EAP_RATE_LIMIT_TOKEN_ADDRESS=0 \
    EAP_AUDIT_CHECKPOINT_SECS=${CHECKPOINT_SECS:-1}
  ADMIN=$($BIN admin create-client --role admin --name bench)
  $BIN &
  SERVER=$!
  BASE="http://127.0.0.1:$PORT"
  for _ in $(seq 1 100); do curl -sf "$BASE/readyz" >/dev/null && break; sleep 0.2; done
  RSS_START=$(rss)
}

stop_server() {
  kill "$SERVER"
  wait "$SERVER" 2>/dev/null || true
  SERVER=""
}

rss() { awk '/VmRSS/ {print $2}' "/proc/$SERVER/status"; }

# Samples the server's RSS every 200 ms into $WORK/rss.peak until stopped.
start_sampler() {
  echo 0 > "$WORK/rss.peak"
  (
    peak=0
    while kill -0 "$SERVER" 2>/dev/null; do
      r=$(awk '/VmRSS/ {print $2}' "/proc/$SERVER/status" 2>/dev/null || echo 0)
      [ "$r" -gt "$peak" ] && peak=$r && echo "$peak" > "$WORK/rss.peak"
      sleep 0.2
    done
  ) &
  SAMPLER=$!
}
stop_sampler() {
  kill "$SAMPLER" 2>/dev/null || true
  wait "$SAMPLER" 2>/dev/null || true
  SAMPLER=""
  cat "$WORK/rss.peak"
}

token() { curl -sf -u "$1:$2" -d grant_type=client_credentials "$BASE/oauth/token" | jq -r .access_token; }
post() { curl -sf -H "Authorization: Bearer $1" -H 'Content-Type: application/json' -d "$3" "$BASE$2"; }
client_token() {
  local c
  c=$(post "$TOKEN" /v1/admin/clients "$1")
  token "$(echo "$c" | jq -r .client_id)" "$(echo "$c" | jq -r .client_secret)"
}

# An employer with a portal, a contracted provider with a feed client, an uncontracted provider
# whose feed stays empty, and an auditor.
setup_fixtures() {
  TOKEN=$(token "$(echo "$ADMIN" | jq -r .client_id)" "$(echo "$ADMIN" | jq -r .client_secret)")
  EMPLOYER=$(post "$TOKEN" /v1/admin/employers '{"name":"Bench Employer"}' | jq -r .id)
  local p='"services":["counselling"],"languages":["en"],"regions":["GB"],"modalities":["video"],"capacity":100000'
  PROVIDER=$(post "$TOKEN" /v1/admin/providers "{\"name\":\"Bench Provider\",$p}" | jq -r .id)
  IDLE_PROVIDER=$(post "$TOKEN" /v1/admin/providers "{\"name\":\"Quiet Provider\",$p}" | jq -r .id)
  post "$TOKEN" /v1/admin/contracts "{\"employer_id\":\"$EMPLOYER\",\"provider_id\":\"$PROVIDER\",\"priority\":1}" >/dev/null
  local portal
  portal=$(post "$TOKEN" /v1/admin/clients "{\"name\":\"Bench portal\",\"role\":\"hr_portal\",\"employer_id\":\"$EMPLOYER\"}")
  PORTAL_ID=$(echo "$portal" | jq -r .client_id)
  PORTAL_TOKEN=$(token "$PORTAL_ID" "$(echo "$portal" | jq -r .client_secret)")
  PTOKEN=$(client_token "{\"name\":\"feed\",\"role\":\"provider\",\"provider_id\":\"$PROVIDER\"}")
  IDLE_TOKEN=$(client_token "{\"name\":\"idle feed\",\"role\":\"provider\",\"provider_id\":\"$IDLE_PROVIDER\"}")
  AUDITOR_TOKEN=$(client_token '{"name":"bench auditor","role":"auditor"}')
}

BODY='{"service_type":"counselling","urgency":"routine","modality":"video","language":"en","region":"GB-ENG","employee_ref":"E-1","contact":{"preferred_name":"Sam","phone":"+447700900123","email":"sam@example.org","best_time_to_contact":"evenings","voicemail_consent":true},"note":"bench"}'

# wrk's summary as "N/s p50 X p99 Y"; fails the run on any non-2xx answer.
wrk_summary() {
  if grep -q "Non-2xx" "$1"; then echo "FAIL: non-2xx answers in $1" >&2; cat "$1" >&2; exit 1; fi
  printf '%s/s, p50 %s, p99 %s' "$(awk '/Requests\/sec/ {print $2}' "$1")" \
    "$(awk '$1 == "50%" {print $2}' "$1")" "$(awk '$1 == "99%" {print $2}' "$1")"
}

# Referral submissions at $CONNS connections for $DURATION s.
phase_submissions() {
  write_submit_lua
  wrk -t2 -c"$CONNS" -d3s -s "$WORK/submit.lua" "$BASE" >/dev/null # warm-up
  wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency -s "$WORK/submit.lua" "$BASE" > "$WORK/submit.txt"
  SUBMISSIONS=$(wrk_summary "$WORK/submit.txt")
}

# $WORK/submit.lua: wrk posts referral submissions, each with an Idempotency-Key of its own.
write_submit_lua() {
  cat > "$WORK/submit.lua" <<LUA
local counter = 0
local salt = tostring(math.random(1, 1e9)) .. tostring({}):sub(8)
local body = '$BODY'
request = function()
  counter = counter + 1
  return wrk.format("POST", "/v1/referrals", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer $PORTAL_TOKEN",
    ["Idempotency-Key"] = salt .. "-" .. counter,
  }, body)
end
LUA
}

# Polls of a feed with nothing new, at $POLLERS connections.
phase_empty_polls() {
  wrk -t2 -c"$POLLERS" -d2s -H "Authorization: Bearer $IDLE_TOKEN" "$BASE/v1/provider/events" >/dev/null
  wrk -t2 -c"$POLLERS" -d"${DURATION}s" --latency -H "Authorization: Bearer $IDLE_TOKEN" \
    "$BASE/v1/provider/events" > "$WORK/empty.txt"
  EMPTY_POLLS=$(wrk_summary "$WORK/empty.txt")
}

# $IDLE long polls waiting at once; the server's RSS before and at its peak.
phase_idle_polls() {
  local before
  before=$(rss)
  start_sampler
  wrk -t2 -c"$IDLE" -d25s --timeout 70s -H "Authorization: Bearer $IDLE_TOKEN" \
    "$BASE/v1/provider/events?wait=60" > "$WORK/idle.txt" 2>&1 &
  local w=$!
  sleep 20
  local open
  open=$(ss -Htn state established "( sport = :$PORT )" | wc -l)
  kill "$w" 2>/dev/null || true
  wait "$w" 2>/dev/null || true
  IDLE_POLLS="$open connections held; RSS ${before} kB before, peak $(stop_sampler) kB"
}

# Wake-up latency: a long poll at the head of the busy provider's feed, then a submission;
# the time from the submission's answer to the poll's answer. $WAKES rounds.
phase_wake() {
  : > "$WORK/wake.txt"
  # The provider keeps its cursor, as a provider following its feed does: the first drain reads
  # the feed from its start, each later one only the event the last wake-up delivered. (Reading
  # it all again on every wake-up logged thousands of deliveries each time, and the sealer's
  # batches of them held the commit horizon through the measurement.)
  local cursor
  cursor=$(curl -sf -H "Authorization: Bearer $PTOKEN" "$BASE/v1/provider/events?limit=1000" | jq -r .next_cursor)
  for _ in $(seq 1 "$WAKES"); do
    while true; do # drain to the head
      local page
      page=$(curl -sf -H "Authorization: Bearer $PTOKEN" "$BASE/v1/provider/events?limit=1000&after=$cursor")
      [ "$(echo "$page" | jq '.events | length')" = 0 ] && break
      cursor=$(echo "$page" | jq -r .next_cursor)
    done
    (curl -sf -o /dev/null -H "Authorization: Bearer $PTOKEN" "$BASE/v1/provider/events?wait=10&after=$cursor"
     date +%s%N > "$WORK/woke") &
    local poll=$!
    sleep 0.3
    curl -sf -o /dev/null -H "Authorization: Bearer $PORTAL_TOKEN" -H 'Content-Type: application/json' \
      -H "Idempotency-Key: wake-$RANDOM-$RANDOM" -d "$BODY" "$BASE/v1/referrals"
    local committed
    committed=$(date +%s%N)
    wait "$poll"
    echo $(( ($(cat "$WORK/woke") - committed) / 1000 )) >> "$WORK/wake.txt"
  done
  WAKE="p50 $(pct_us 50 "$WORK/wake.txt"), p99 $(pct_us 99 "$WORK/wake.txt") over $WAKES wake-ups"
}

# Contact reads (each one audited) over $READS accepted referrals, at $CONNS connections.
phase_contact_reads() {
  local ids
  ids=$(psql $PG -d "$DB" -Atc "SELECT id FROM referrals WHERE provider_id = '$PROVIDER' AND status = 'offered' LIMIT $READS")
  : > "$WORK/accepted"
  for id in $ids; do
    local etag
    etag=$(curl -sf -o /dev/null -D - -H "Authorization: Bearer $PTOKEN" "$BASE/v1/provider/referrals/$id" | awk 'tolower($1) == "etag:" {print $2}' | tr -d '\r')
    curl -sf -o /dev/null -X POST -H "Authorization: Bearer $PTOKEN" -H "If-Match: $etag" \
      "$BASE/v1/provider/referrals/$id/accept" && echo "$id" >> "$WORK/accepted"
  done
  write_contact_lua "$WORK/accepted"
  wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency -s "$WORK/contact.lua" "$BASE" > "$WORK/contact.txt"
  CONTACT_READS="$(wrk_summary "$WORK/contact.txt") over $(wc -l < "$WORK/accepted") accepted referrals"
}

# $WORK/contact.lua: wrk reads the contact details of the referrals listed in file $1 (at most
# 2,000 of them), in turn; an answer other than 2xx is written to stderr with its body.
write_contact_lua() {
  {
    echo 'local ids = {'
    sed -n '1,2000p' "$1" | sed 's/.*/"&",/'
    echo '}'
    echo 'local i = 0'
    echo 'request = function()'
    echo '  i = i % #ids + 1'
    echo "  return wrk.format(\"GET\", \"/v1/provider/referrals/\" .. ids[i] .. \"/contact\", {[\"Authorization\"] = \"Bearer $PTOKEN\"})"
    echo 'end'
    echo 'response = function(status, headers, body)'
    echo '  if status >= 300 then io.stderr:write(status .. " " .. body .. "\n") end'
    echo 'end'
  } > "$WORK/contact.lua"
}

# Percentiles of a file of microsecond figures, in ms.
pct_us() {
  sort -n "$2" | awk -v p="$1" '{a[NR]=$1} END {i=int(NR*p/100+0.999); if (i<1) i=1; if (i>NR) i=NR; printf "%.1f ms", a[i]/1000}'
}

# pgbench on a script at $CONNS clients for $DURATION s: "N tps, p50 X, p99 Y".
pgbench_run() {
  (cd "$WORK" && rm -f pgtx.* && pgbench $PG -n -c "$CONNS" -j 2 -T "$DURATION" --log --log-prefix=pgtx "${@:2}" \
    -f "$1" "$DB") > "$WORK/pgbench.txt" 2>&1
  cat "$WORK"/pgtx.* | awk '{print $3}' > "$WORK/pglat.txt"
  printf '%s tps, p50 %s, p99 %s' "$(awk '/^tps =/ {printf "%.0f", $3; exit}' "$WORK/pgbench.txt")" \
    "$(pct_us 50 "$WORK/pglat.txt")" "$(pct_us 99 "$WORK/pglat.txt")"
}

# The statements one submission runs (the caller's status is cached, `auth::cache`): one
# transaction with the idempotency-key lock and the employer check in one statement, the key's
# lookup, the directory's version (the routing snapshot is kept while it stands) with the
# providers' loads, the slot claim with its load shard, the referral (with its sealed
# preferences), its data key's row, its attempt, the feed event with its webhook deliveries and
# wake-up, the idempotency key with its sealed response and the access-log event. (pgbench's
# simple protocol: each statement parsed and planned, where the service's are prepared.)
write_submit_sql() {
  cat > "$WORK/submit.sql" <<'SQL'
\set shard random(0, 15)
\set lock random(1, 9000000000000000)
SELECT gen_random_uuid()::text AS rid, md5(random()::text) AS ikey, decode(repeat(md5(random()::text), 6), 'hex') AS blob \gset
BEGIN;
SELECT pg_try_advisory_xact_lock(:lock), EXISTS (SELECT 1 FROM employers WHERE id = ':employer' AND active);
SELECT request_hash, referral_id, response_status, response_sealed, created_at FROM idempotency_keys WHERE client_id = ':client' AND idem_key = ':ikey';
SELECT NULL AS provider_id, version AS n FROM directory_version WHERE id = 1 UNION ALL SELECT provider_id, sum(held) FROM provider_load_shards WHERE provider_id IN (SELECT provider_id FROM contracts WHERE employer_id = ':employer') GROUP BY provider_id;
WITH c AS (UPDATE provider_slots SET referral_id = ':rid' WHERE provider_id = ':provider' AND slot = (SELECT s.slot FROM provider_slots s JOIN providers p ON p.id = s.provider_id WHERE s.provider_id = ':provider' AND s.referral_id IS NULL AND p.active AND p.status = 'active' AND s.slot >= (SELECT floor(random() * capacity)::int FROM providers WHERE id = ':provider') ORDER BY s.slot LIMIT 1 FOR UPDATE OF s SKIP LOCKED) RETURNING slot),
  l AS (UPDATE provider_load_shards SET held = held + 1 WHERE provider_id = ':provider' AND shard = :shard AND EXISTS (SELECT 1 FROM c)) SELECT slot FROM c;
INSERT INTO referrals (id, employer_id, service_type, urgency, modality, language, region, status, provider_id, offer_expires_at, version, status_token_hash, sealed_contact, sealed_note, sealed_preferences, routing_reasons, created_at, updated_at)
  VALUES (':rid', ':employer', 'counselling', 'routine', 'video', 'en', 'GB-ENG', 'offered', ':provider', now() + interval '48 hours', 1, md5(':ikey'), ':blob', ':blob', ':blob', '{"chosen":"x","reports":[]}', now(), now());
INSERT INTO referral_keys (referral_id, key_id, wrapped_key, employee_ref_hmac) VALUES (':rid', 'dev1', ':blob', md5(':rid'));
INSERT INTO referral_attempts (referral_id, provider_id, offered_at) VALUES (':rid', ':provider', now());
WITH e AS (INSERT INTO provider_events (provider_id, referral_id, kind, created_at) VALUES (':provider', ':rid', 'offered', now()) RETURNING id),
  d AS (INSERT INTO webhook_deliveries (endpoint_id, event_id, created_at, state, attempts, next_attempt_at) SELECT w.id, e.id, now(), 'pending', 0, now() FROM webhook_endpoints w, e WHERE w.provider_id = ':provider' AND w.status <> 'disabled')
  SELECT pg_notify('eap_bench', ':provider');
INSERT INTO idempotency_keys (client_id, idem_key, request_hash, referral_id, response_status, response_sealed, created_at) VALUES (':client', ':ikey', md5(':ikey'), ':rid', 201, ':blob', now());
INSERT INTO audit_events (id, occurred_at, actor_client_id, actor_role, tenant_id, action, resource_type, resource_id, outcome, http_status, request_id, source_addr)
  VALUES (gen_random_uuid()::text, now(), ':client', 'hr_portal', ':employer', 'referral.create', 'referral', ':rid', 'success', 201, ':ikey', '127.0.0.1');
COMMIT;
SQL
}

pgbench_submissions() {
  write_submit_sql
  psql $PG -d "$DB" -qc "UPDATE provider_slots SET referral_id = NULL; UPDATE provider_load_shards SET held = 0"
  PG_SUBMISSIONS=$(pgbench_run "$WORK/submit.sql" -D client="$PORTAL_ID" -D employer="$EMPLOYER" -D provider="$PROVIDER")
}

# One contact read as the service runs it: the provider's referral locked with its sealed
# columns and, in the same statement, its data key (a table of its own, so erasure can destroy
# it physically); then the access event. PG_CONTACT_READS_SPLIT is the same read with the key
# read by a statement of its own (the service until 2026-12-03), kept for comparison.
pgbench_contact_reads() {
  local ids
  mapfile -t ids < "$WORK/accepted"
  # Which referral to read comes from a side table by number (one primary-key lookup), as wrk
  # cycles through the same ids.
  psql $PG -d "$DB" -qc "CREATE TABLE bench_ids (n serial PRIMARY KEY, id text)"
  printf '%s\n' "${ids[@]}" | psql $PG -d "$DB" -qc "COPY bench_ids (id) FROM STDIN"
  local pick="\\set n random(1, ${#ids[@]})
SELECT id FROM bench_ids WHERE n = :n \\gset
BEGIN;"
  local event="INSERT INTO audit_events (id, occurred_at, actor_client_id, actor_role, tenant_id, action, resource_type, resource_id, outcome, http_status, request_id, source_addr)
  VALUES (gen_random_uuid()::text, now(), 'bench', 'provider', ':provider', 'contact.read', 'referral', ':id', 'success', 200, gen_random_uuid()::text, '127.0.0.1');
COMMIT;"
  cat > "$WORK/contact.sql" <<SQL
$pick
SELECT status, erased_at, sealed_contact, sealed_note, (SELECT key_id FROM referral_keys WHERE referral_id = ':id'), (SELECT wrapped_key FROM referral_keys WHERE referral_id = ':id') FROM referrals WHERE id = ':id' AND provider_id = ':provider' FOR UPDATE;
$event
SQL
  cat > "$WORK/contact-split.sql" <<SQL
$pick
SELECT status, version, erased_at, sealed_contact, sealed_note FROM referrals WHERE id = ':id' AND provider_id = ':provider' FOR UPDATE;
SELECT key_id, wrapped_key FROM referral_keys WHERE referral_id = ':id';
$event
SQL
  PG_CONTACT_READS=$(pgbench_run "$WORK/contact.sql" -D provider="$PROVIDER")
  PG_CONTACT_READS_SPLIT=$(pgbench_run "$WORK/contact-split.sql" -D provider="$PROVIDER")
}

# $1 access events written straight into the log (ids in creation order, like the service's
# UUIDv7s; random ones would scatter every lookup), then sealed by the server's own sealer.
add_events_and_seal() {
  local total
  psql $PG -d "$DB" -qc "INSERT INTO audit_events (id, occurred_at, actor_client_id, actor_role, tenant_id,
      action, resource_type, resource_id, outcome, http_status, request_id, source_addr)
    SELECT '01900000-0000-7000-8000-' || lpad(to_hex(i), 12, '0'), now() AT TIME ZONE 'UTC', 'client-' || (i % 50),
      'provider', 'tenant-' || (i % 50), 'contact.read', 'referral', gen_random_uuid()::text, 'success', 200,
      gen_random_uuid()::text, '127.0.0.1'
    FROM generate_series(1, $1) AS i"
  total=$(psql $PG -d "$DB" -Atc "SELECT count(*) FROM audit_events")
  local start size=0
  start=$(date +%s.%N)
  for _ in $(seq 1 600); do
    size=$(curl -sf -H "Authorization: Bearer $AUDITOR_TOKEN" "$BASE/v1/audit/checkpoints?limit=1" | jq '.latest.tree_size // 0')
    [ "$size" -ge "$total" ] && break
    sleep 1
  done
  [ "$size" -ge "$total" ] || { echo "sealing did not finish in 10 minutes" >&2; exit 1; }
  SEALING="$size events sealed in $(echo "$(date +%s.%N) - $start" | bc)s (background sealer, 1 s ticks)"
}

# User and system CPU ticks of the given processes, summed (a process that has gone counts 0).
cpu_ticks() {
  local p total=0
  for p in "$@"; do
    total=$((total + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
  done
  echo "$total"
}

# The whole log as NDJSON through the API, the server's RSS and CPU and PostgreSQL's CPU
# measured meanwhile; beside it, the same rows in log order copied out by psql.
phase_export() {
  local before out secs bytes lines
  before=$(rss)
  start_sampler
  # PERF=1: the whole machine recorded for the export's first $PERF_SECONDS seconds (default 3),
  # printed by command (server, postgres, curl) and then the server's threads by symbol.
  local perf_pid=""
  if [ -n "${PERF:-}" ]; then
    perf record -q -a -o "$WORK/export.perf" -- sleep "${PERF_SECONDS:-3}" >/dev/null 2>&1 &
    perf_pid=$!
  fi
  # CPU seconds the export costs the server and PostgreSQL (every postgres process: the
  # backends reading chunks and whatever else runs meanwhile). Steadier between runs than the
  # rate, which moves with whatever else the machine's cores are doing.
  local cpu0 pg0
  cpu0=$(cpu_ticks "$SERVER")
  pg0=$(cpu_ticks $(pgrep -x postgres))
  out=$(timeout 300 curl -sf -H "Authorization: Bearer $AUDITOR_TOKEN" \
    "$BASE/v1/audit/export" -o "$WORK/events.ndjson" -w '%{time_total} %{size_download}')
  local cpu1 pg1 hz
  cpu1=$(cpu_ticks "$SERVER")
  pg1=$(cpu_ticks $(pgrep -x postgres))
  hz=$(getconf CLK_TCK)
  EXPORT_CPU="server $(echo "scale=2; ($cpu1 - $cpu0) / $hz" | bc) s, postgres $(echo "scale=2; ($pg1 - $pg0) / $hz" | bc) s"
  EXPORT_PEAK=$(stop_sampler)
  if [ -n "$perf_pid" ]; then
    wait "$perf_pid"
    echo "== export profile: the machine by command"
    perf report -i "$WORK/export.perf" --no-children -g none --sort comm --percent-limit 1 --stdio \
      2>/dev/null | grep -v "^#" | grep -v "^$" | head -20
    echo "== export profile: the server by thread and symbol"
    perf report -i "$WORK/export.perf" --no-children -g none --pid "$SERVER" --sort comm,dso,sym \
      --percent-limit 0.7 --stdio 2>/dev/null | grep -v "^#" | grep -v "^$" | head -50
  fi
  secs=${out% *}
  bytes=${out#* }
  lines=$(($(wc -l < "$WORK/events.ndjson") - 2)) # less the proof lines at either end
  EXPORT="$(echo "$lines / $secs" | bc) events/s ($lines events, $bytes bytes in ${secs}s); RSS $before kB before, peak $EXPORT_PEAK kB"
  local start
  start=$(date +%s.%N)
  psql $PG -d "$DB" -qc "\\copy (SELECT e.* FROM audit_log_leaves l JOIN audit_events e ON e.id = l.event_id ORDER BY l.seq) TO '/dev/null'"
  PG_EXPORT="$(echo "$lines / ($(date +%s.%N) - $start)" | bc) rows/s (psql \\copy of the same rows in log order)"
  # The same, with the leaf's own columns the export carries too (position, leaf hash, event
  # id; a leaf whose event is missing still has a line).
  start=$(date +%s.%N)
  psql $PG -d "$DB" -qc "\\copy (SELECT l.seq, l.leaf_hash, l.event_id, e.* FROM audit_log_leaves l LEFT JOIN audit_events e ON e.id = l.event_id ORDER BY l.seq) TO '/dev/null'"
  PG_EXPORT_LEAVES="$(echo "$lines / ($(date +%s.%N) - $start)" | bc) rows/s (the same with the leaves' columns)"
}

# The export verified offline with the published key only.
phase_verify() {
  curl -sf -H "Authorization: Bearer $AUDITOR_TOKEN" "$BASE/v1/audit/checkpoints" > "$WORK/checkpoints.json"
  curl -sf "$BASE/v1/audit/public-key" > "$WORK/public-key.json"
  local start lines
  start=$(date +%s.%N)
  timeout 300 $BIN audit verify --events "$WORK/events.ndjson" --checkpoints "$WORK/checkpoints.json" \
    --public-key "$WORK/public-key.json" | tail -1
  lines=$(($(wc -l < "$WORK/events.ndjson") - 2))
  VERIFY="$(echo "$lines / ($(date +%s.%N) - $start)" | bc) events/s ($lines events; process start and file read included)"
}
