#!/usr/bin/env bash
# Submission cost against the size of the provider network (issue #19, goal: with 1,000
# contracted providers at equal priority, >= 0.8 of the rate with one provider, both backends).
# For each backend one release server; for each N in $SIZES a fresh employer contracted with N
# fresh providers at the same priority (N = 1: capacity 100,000; otherwise 1,000 each), then
# referral submissions at $CONNS connections for $DURATION s. Sizes run in order on one database,
# so the larger networks also carry the smaller ones' rows. Loopback only; a few minutes.
#
#   bench/network.sh      # SIZES="1 300 1000" CONNS=8 DURATION=10 BACKENDS="postgres sqlite"
SIZES=${SIZES:-1 300 1000}
CONNS=${CONNS:-8}
DURATION=${DURATION:-10}
BACKENDS=${BACKENDS:-postgres sqlite}
PORT=${PORT:-18488}
source "$(dirname "$0")/lib.sh"
LOAD_BEFORE=$(cut -d" " -f1-3 /proc/loadavg)
export EAP_RATE_LIMIT_ADMIN=0 # thousands of directory writes in a few seconds

# A fresh employer with a portal token in PORTAL_TOKEN, contracted with $1 fresh providers.
network_of() {
  local n=$1 cap=1000 employer portal
  [ "$n" = 1 ] && cap=100000
  employer=$(post "$TOKEN" /v1/admin/employers "{\"name\":\"Network $n\"}" | jq -r .id)
  seq 1 "$n" | xargs -P 4 -I{} sh -c '
    p=$(curl -sf -H "Authorization: Bearer $1" -H "Content-Type: application/json" \
      -d "{\"name\":\"Net $2 provider {}\",\"services\":[\"counselling\"],\"languages\":[\"en\"],\"regions\":[\"GB\"],\"modalities\":[\"video\"],\"capacity\":$3}" \
      "$4/v1/admin/providers" | jq -r .id)
    curl -sf -o /dev/null -H "Authorization: Bearer $1" -H "Content-Type: application/json" \
      -d "{\"employer_id\":\"$5\",\"provider_id\":\"$p\",\"priority\":1}" "$4/v1/admin/contracts"' \
    _ "$TOKEN" "$n" "$cap" "$BASE" "$employer"
  portal=$(post "$TOKEN" /v1/admin/clients "{\"name\":\"Network $n portal\",\"role\":\"hr_portal\",\"employer_id\":\"$employer\"}")
  PORTAL_TOKEN=$(token "$(echo "$portal" | jq -r .client_id)" "$(echo "$portal" | jq -r .client_secret)")
}

ROWS=()
for backend in $BACKENDS; do
  if [ "$backend" = sqlite ]; then
    BENCH_DATABASE_URL="sqlite://$WORK/bench.sqlite3" start_server
  else
    start_server
  fi
  TOKEN=$(token "$(echo "$ADMIN" | jq -r .client_id)" "$(echo "$ADMIN" | jq -r .client_secret)")
  ONE=""
  for n in $SIZES; do
    network_of "$n"
    write_submit_lua
    wrk -t2 -c"$CONNS" -d3s -s "$WORK/submit.lua" "$BASE" >/dev/null # warm-up
    wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency -s "$WORK/submit.lua" "$BASE" > "$WORK/net-$backend-$n.txt"
    summary=$(wrk_summary "$WORK/net-$backend-$n.txt")
    r=$(awk '/Requests\/sec/ {print $2}' "$WORK/net-$backend-$n.txt")
    [ -z "$ONE" ] && ONE=$r
    ROWS+=("| $backend | $n | $summary | $(printf '%.2f' "$(echo "$r / $ONE" | bc -l)") |")
  done
  stop_server
done
cat <<TABLE

machine: $(nproc) cores, load average before: $LOAD_BEFORE, after: $(cut -d" " -f1-3 /proc/loadavg); $CONNS connections, $DURATION s each
| backend | contracted providers (equal priority) | submissions | rate / rate at N = ${SIZES%% *} |
|---|---|---|---|
$(printf '%s\n' "${ROWS[@]}")
TABLE
