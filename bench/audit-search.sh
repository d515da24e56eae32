#!/usr/bin/env bash
# Auditor searches on a large access log (issue 19, goal 5): the first page of every filter,
# the common pairs with a time range, and a next page, each asked RUNS times (default 20), on
# PostgreSQL (or SQLite: BACKEND=sqlite) at 1,000,000 sealed events and again at 10,000,000
# (SIZES sets the steps). The
# events are written straight into the log with INSERT … SELECT (200 actors, one in ten
# refused, ids and times in log order over the 31 days after the fixtures' own events, as a
# log's later events are) and sealed by the server's own sealer,
# whose rate is printed: it writes the search index, so that is the index's cost on the write
# path. Release build; loopback only; a throwaway database. Not run in CI (10M events take
# about 20 minutes and 10 GB).
#
#   bench/audit-search.sh                     # SIZES="1000000 10000000"
#   SIZES=200000 RUNS=10 bench/audit-search.sh
#   BACKEND=sqlite bench/audit-search.sh      # the same on the default install's SQLite file
SIZES=${SIZES:-1000000 10000000}
BACKEND=${BACKEND:-postgres}
RUNS=${RUNS:-20}
PORT=${PORT:-18388}
PGOPTS=${PGOPTS:-?sslmode=disable}
source "$(dirname "$0")/lib.sh"
if [ "$BACKEND" = sqlite ]; then
  command -v sqlite3 >/dev/null || { apt-get update -qq && apt-get install -y -qq sqlite3 >/dev/null; }
  FILE="$WORK/bench.sqlite3"
  BENCH_DATABASE_URL="sqlite://$FILE" start_server
  # The server writes meanwhile (its sealer): wait for the lock rather than fail.
  sql() { sqlite3 -cmd ".timeout 600000" "$FILE" "$1"; }
else
  start_server
  sql() { psql $PG -d "$DB" -Atqc "$1"; }
fi
setup_fixtures

# Tokens last at most 15 minutes and the large step takes longer: the auditor signs in again
# before each phase.
AUDITOR=$(post "$TOKEN" /v1/admin/clients '{"name":"search auditor","role":"auditor"}')
RENEWED=-1000
renew() {
  [ $((SECONDS - RENEWED)) -ge 300 ] || return 0 # (the token endpoint's budget is 60 a minute)
  RENEWED=$SECONDS
  TOKEN=$(token "$(echo "$ADMIN" | jq -r .client_id)" "$(echo "$ADMIN" | jq -r .client_secret)")
  AUDITOR_TOKEN=$(token "$(echo "$AUDITOR" | jq -r .client_id)" "$(echo "$AUDITOR" | jq -r .client_secret)")
}
LAST=${SIZES##* }
SPAN=$((31 * 24 * 3600))
# Actors have an issued id's form, as the API's filter takes.
actor() { printf '00000000-0000-4000-8000-%012x' "$1"; }

# p50 and slowest of RUNS answers (ms), with the number of items on the page.
timed() {
  local label=$1 query=$2 times=() out
  for _ in $(seq 1 "$RUNS"); do
    out=$(curl -sf -o "$WORK/page.json" -w '%{time_total}' \
      -H "Authorization: Bearer $AUDITOR_TOKEN" "$BASE/v1/audit/events?$query") ||
      { echo "FAIL: $query" >&2; exit 1; }
    times+=("$(echo "$out * 1000" | bc)")
  done
  printf '%s\n' "${times[@]}" | sort -n | awk -v l="$label" -v n="$(jq '.items | length' "$WORK/page.json")" \
    '{t[NR]=$1} END {i=int(NR*0.99+0.999); if (i>NR) i=NR; printf "| %s | %.1f ms | %.1f ms | %d |\n", l, t[int((NR+1)/2)], t[i], n}'
}

written=0
for size in $SIZES; do
  echo "== writing events $((written + 1)) to $size and sealing them"
  wrote=$SECONDS
  if [ "$BACKEND" = sqlite ]; then
    # The same rows in SQLite's words (times as diesel writes them: text, UTC).
    sql "WITH RECURSIVE s(i) AS (SELECT $((written + 1)) UNION ALL SELECT i + 1 FROM s WHERE i < $size)
      INSERT INTO audit_events (id, occurred_at, actor_client_id, actor_role, tenant_id, action,
        resource_type, resource_id, outcome, http_status, request_id, source_addr)
      SELECT '01900000-0000-7000-8000-' || printf('%012x', i),
        strftime('%Y-%m-%d %H:%M:%f', 'now', '+' || (i * 1.0 * $SPAN / $LAST) || ' seconds'),
        '00000000-0000-4000-8000-' || printf('%012x', i % 200), 'provider', 'tenant-' || (i % 50),
        'contact.read', 'referral', lower(hex(randomblob(16))),
        CASE WHEN i % 10 = 0 THEN 'denied' ELSE 'success' END,
        CASE WHEN i % 10 = 0 THEN 404 ELSE 200 END, lower(hex(randomblob(16))), '127.0.0.1'
      FROM s"
  else
    sql "INSERT INTO audit_events (id, occurred_at, actor_client_id, actor_role, tenant_id, action,
        resource_type, resource_id, outcome, http_status, request_id, source_addr)
      SELECT '01900000-0000-7000-8000-' || lpad(to_hex(i), 12, '0'),
        (now() AT TIME ZONE 'UTC') + make_interval(secs => i::double precision * $SPAN / $LAST),
        '00000000-0000-4000-8000-' || lpad(to_hex(i % 200), 12, '0'), 'provider', 'tenant-' || (i % 50),
        'contact.read', 'referral', gen_random_uuid()::text,
        CASE WHEN i % 10 = 0 THEN 'denied' ELSE 'success' END,
        CASE WHEN i % 10 = 0 THEN 404 ELSE 200 END, gen_random_uuid()::text, '127.0.0.1'
      FROM generate_series($((written + 1)), $size) AS i"
  fi
  written=$size
  echo "written in $((SECONDS - wrote)) s"
  total=$(sql "SELECT count(*) FROM audit_events")
  start=$(date +%s.%N)
  sealed=0
  for _ in $(seq 1 3600); do
    renew
    sealed=$(curl -sf -H "Authorization: Bearer $AUDITOR_TOKEN" "$BASE/v1/audit/checkpoints?limit=1" | jq '.latest.tree_size // 0')
    [ "$sealed" -ge "$total" ] && break
    sleep 1
  done
  [ "$sealed" -ge "$total" ] || { echo "sealing did not finish in an hour" >&2; exit 1; }
  secs=$(echo "$(date +%s.%N) - $start" | bc)
  echo "sealed $sealed events; this step's $((size - ${prev:-0})) in ${secs}s" \
    "($(echo "($size - ${prev:-0}) / $secs" | bc)/s, search index included)"
  prev=$size
  sql "ANALYZE" >/dev/null

  renew
  # A resource id and times from the middle of the log.
  mid=$((size / 2))
  RESOURCE=$(sql "SELECT resource_id FROM audit_events WHERE id = '01900000-0000-7000-8000-$(printf '%012x' "$mid")'")
  at() {
    local id="01900000-0000-7000-8000-$(printf '%012x' "$1")"
    if [ "$BACKEND" = sqlite ]; then
      sql "SELECT strftime('%Y-%m-%dT%H:%M:%SZ', occurred_at, '+$2') FROM audit_events WHERE id = '$id'"
    else
      sql "SELECT to_char(occurred_at + interval '$2', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM audit_events WHERE id = '$id'"
    fi
  }
  HOUR_FROM=$(at "$mid" '0 seconds'); HOUR_TO=$(at "$mid" '1 hour')
  DAY_FROM=$(at "$mid" '0 seconds'); DAY_TO=$(at "$mid" '1 day')
  ACTOR=$(actor 17)
  next=$(curl -sf -H "Authorization: Bearer $AUDITOR_TOKEN" "$BASE/v1/audit/events?actor=$ACTOR" | jq -r .next_cursor)
  DENIED_NEXT=$(curl -sf -H "Authorization: Bearer $AUDITOR_TOKEN" "$BASE/v1/audit/events?outcome=denied&from=$DAY_FROM" | jq -r .next_cursor)

  echo
  echo "$size sealed events, first page of 100 (items), $RUNS answers each:"
  echo
  echo "| search | p50 | p99 | items |"
  echo "|---|---|---|---|"
  timed "no filter" ""
  timed "actor" "actor=$ACTOR"
  timed "actor, next page" "actor=$ACTOR&after=$next"
  timed "action" "action=contact.read"
  timed "outcome=denied" "outcome=denied"
  timed "action + outcome=denied, no match" "action=referral.create&outcome=denied"
  timed "resource_id" "resource_id=$RESOURCE"
  timed "time window, one hour" "from=$HOUR_FROM&to=$HOUR_TO"
  timed "actor + one day" "actor=$ACTOR&from=$DAY_FROM&to=$DAY_TO"
  timed "action + outcome=denied + one day" "action=contact.read&outcome=denied&from=$DAY_FROM&to=$DAY_TO"
  timed "outcome=denied from a day, next page" "outcome=denied&from=$DAY_FROM&after=$DENIED_NEXT"
  echo
  if [ "$BACKEND" = sqlite ]; then
    echo "database file and WAL: $(du -ch "$FILE"* | tail -1 | cut -f1)"
  else
    echo "table sizes: $(sql "SELECT string_agg(relname || ' ' || pg_size_pretty(pg_total_relation_size(oid)), ', ' ORDER BY relname)
      FROM pg_class WHERE relname IN ('audit_events', 'audit_log_leaves', 'audit_search')")"
  fi
done
stop_server
