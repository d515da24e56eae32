#!/usr/bin/env bash
# Access-log counts (GET /v1/audit/stats) on a large log: EVENTS sealed events (default 500,000)
# spread over the last 31 days from 200 actors, one in ten refused; then the charts' questions,
# each asked RUNS times (default 7): a month hourly by outcome, a month of refusals by actor, a
# year daily by outcome. Beside them, the single GROUP BY over every event joined to its leaf
# (how the counts were made before the sealer kept hourly counts), timed in the database's own
# shell. Release build; loopback only; a throwaway database.
#
#   bench/audit-stats.sh                      # PostgreSQL on 127.0.0.1:5432
#   STATS_DB=sqlite bench/audit-stats.sh      # SQLite in a temp dir
EVENTS=${EVENTS:-500000}
RUNS=${RUNS:-7}
PORT=${PORT:-18386}
PGOPTS=${PGOPTS:-?sslmode=disable}
source "$(dirname "$0")/lib.sh"
if [ "${STATS_DB:-postgres}" = sqlite ]; then
  BENCH_DATABASE_URL="sqlite://$WORK/bench.sqlite3" start_server
else
  start_server
fi
setup_fixtures

# Runs SQL in the bench database's own shell.
sql() {
  if [ "${STATS_DB:-postgres}" = sqlite ]; then
    sqlite3 -cmd ".timeout 30000" "$WORK/bench.sqlite3" "$1"
  else
    psql $PG -d "$DB" -Atqc "$1"
  fi
}

echo "== writing $EVENTS access events over 31 days and sealing them"
SPAN=$((31 * 24 * 3600))
if [ "${STATS_DB:-postgres}" = sqlite ]; then
  # One long write transaction from another process: the server is stopped meanwhile, or its
  # writers would wait past their timeout.
  stop_server
  sql "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < $EVENTS)
    INSERT INTO audit_events (id, occurred_at, actor_client_id, actor_role, tenant_id, action,
      resource_type, resource_id, outcome, http_status, request_id, source_addr)
    SELECT printf('01900000-0000-7000-8000-%012x', i),
      strftime('%Y-%m-%d %H:%M:%S', 'now', '-' || (i * $SPAN / $EVENTS) || ' seconds'),
      'client-' || (i % 200), 'provider', 'tenant-' || (i % 50), 'contact.read', 'referral',
      lower(hex(randomblob(16))), CASE WHEN i % 10 = 0 THEN 'denied' ELSE 'success' END,
      CASE WHEN i % 10 = 0 THEN 403 ELSE 200 END, lower(hex(randomblob(16))), '127.0.0.1'
    FROM s"
  start_server
  TOKEN=$(token "$(echo "$ADMIN" | jq -r .client_id)" "$(echo "$ADMIN" | jq -r .client_secret)")
  AUDITOR_TOKEN=$(client_token '{"name":"bench auditor 2","role":"auditor"}')
else
  sql "INSERT INTO audit_events (id, occurred_at, actor_client_id, actor_role, tenant_id, action,
      resource_type, resource_id, outcome, http_status, request_id, source_addr)
    SELECT '01900000-0000-7000-8000-' || lpad(to_hex(i), 12, '0'),
      (now() AT TIME ZONE 'UTC') - make_interval(secs => i::bigint * $SPAN / $EVENTS),
      'client-' || (i % 200), 'provider', 'tenant-' || (i % 50), 'contact.read', 'referral',
      gen_random_uuid()::text, CASE WHEN i % 10 = 0 THEN 'denied' ELSE 'success' END,
      CASE WHEN i % 10 = 0 THEN 403 ELSE 200 END, gen_random_uuid()::text, '127.0.0.1'
    FROM generate_series(1, $EVENTS) AS i"
fi
total=$(sql "SELECT count(*) FROM audit_events")
# The widest hourly window the API takes (744 hours), ending a minute from now.
FROM=$(date -u -d '31 days ago + 2 minutes' +%Y-%m-%dT%H:%M:%SZ)
TO=$(date -u -d '1 minute' +%Y-%m-%dT%H:%M:%SZ)
YEAR_FROM=$(date -u -d '365 days ago' +%Y-%m-%dT%H:%M:%SZ)
start=$(date +%s.%N)
size=0
for _ in $(seq 1 600); do
  size=$(curl -sf -H "Authorization: Bearer $AUDITOR_TOKEN" \
    "$BASE/v1/audit/stats?from=$FROM&to=$TO" | jq '.tree_size')
  [ "$size" -ge "$total" ] && break
  sleep 1
done
[ "$size" -ge "$total" ] || { echo "sealing and counting did not finish in 10 minutes" >&2; exit 1; }
echo "$size events sealed and counted in $(echo "$(date +%s.%N) - $start" | bc)s (1 s ticks)"
echo "hourly count rows: $(sql "SELECT count(*) FROM audit_hourly_outcomes") by outcome, $(sql "SELECT count(*) FROM audit_hourly_actors") by outcome and actor"

# Median and slowest of RUNS answers, in ms, with the answer's size.
timed() {
  local times=() out bytes
  for _ in $(seq 1 "$RUNS"); do
    out=$(curl -sf -o "$WORK/stats.json" -w '%{time_total}' \
      -H "Authorization: Bearer $AUDITOR_TOKEN" "$BASE/v1/audit/stats?$1")
    times+=("$(echo "$out * 1000" | bc)")
  done
  bytes=$(wc -c < "$WORK/stats.json")
  printf '%s\n' "${times[@]}" | sort -n | awk -v q="$1" -v rows="$(jq '.counts | length' "$WORK/stats.json")" \
    '{t[NR]=$1} END {printf "  %-60s median %7.1f ms, slowest %7.1f ms (%d rows)\n", q, t[int((NR+1)/2)], t[NR], rows}'
}
echo "== GET /v1/audit/stats, $RUNS times each"
timed "from=$FROM&to=$TO&bucket=hour&by=outcome"
timed "from=$FROM&to=$TO&bucket=hour&by=actor&outcome=denied"
timed "from=$FROM&to=$TO&bucket=hour&by=actor"
timed "from=$YEAR_FROM&to=$TO&bucket=day&by=outcome"

echo "== the same month by outcome as one GROUP BY over every event joined to its leaf"
if [ "${STATS_DB:-postgres}" = sqlite ]; then
  FROM_SQL=$(date -u -d '31 days ago' '+%Y-%m-%d %H:%M:%S')
  sqlite3 "$WORK/bench.sqlite3" ".timer on" "SELECT count(*) FROM (SELECT strftime('%Y-%m-%dT%H:00:00Z', e.occurred_at) AS b, e.outcome, COUNT(*)
    FROM audit_events e JOIN audit_log_leaves l ON l.event_id = e.id
    WHERE e.occurred_at >= '$FROM_SQL' AND l.seq < $size GROUP BY 1, 2)" | tail -1
else
  psql $PG -d "$DB" -qc "\\timing on" -c "SELECT count(*) FROM (SELECT date_trunc('hour', e.occurred_at), e.outcome, COUNT(*)
    FROM audit_events e JOIN audit_log_leaves l ON l.event_id = e.id
    WHERE e.occurred_at >= now() AT TIME ZONE 'UTC' - interval '31 days' AND l.seq < $size GROUP BY 1, 2) x" | grep -i time
fi
