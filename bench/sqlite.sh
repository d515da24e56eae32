#!/usr/bin/env bash
# SQLite, the default install, under concurrency: referral submissions, accepts (a provider's
# status change) and contact reads (each audited) at 1, 2, 8 and 32 connections, each rate
# beside the 1-connection rate, with p50/p99. The release server runs on a fresh SQLite file;
# loopback only; about 2 minutes.
#
#   bench/sqlite.sh      # DURATION=8 ACCEPT_SECONDS=2
# Goal (issue #19): at 8 and 32 connections, >= 0.9 of the 1-connection rate with p99 < 50 ms.
DURATION=${DURATION:-8}
ACCEPT_SECONDS=${ACCEPT_SECONDS:-2} # each level takes offers no other takes: keep it short
PORT=${PORT:-18485}
source "$(dirname "$0")/lib.sh"
LOAD_BEFORE=$(cut -d" " -f1-3 /proc/loadavg)
BENCH_DATABASE_URL="sqlite://$WORK/bench.sqlite3" start_server
setup_fixtures
LEVELS="1 2 8 32"

# wrk at $1 connections (one thread for one connection) with script $2 into $3.
wrk_at() {
  local threads=2
  [ "$1" -lt 2 ] && threads=1
  wrk -t"$threads" -c"$1" -d"${DURATION}s" --latency -s "$2" "$BASE" > "$3"
}
rate() { awk '/Requests\/sec/ {printf "%.0f", $2}' "$1"; }
row() { # name, connections, file, 1-connection rate
  wrk_summary "$3" >/dev/null
  local r
  r=$(rate "$3")
  printf '| %s | %s | %s/s | %s | %s | %.2f |\n' "$1" "$2" "$r" \
    "$(awk '$1 == "50%" {print $2}' "$3")" "$(awk '$1 == "99%" {print $2}' "$3")" \
    "$(echo "$r / $4" | bc -l)"
}

# Submissions: every one is routed and offered to the bench provider, so they also make the
# offers the accepts below take.
write_submit_lua
wrk -t1 -c1 -d2s -s "$WORK/submit.lua" "$BASE" >/dev/null # warm-up
ROWS=()
for c in $LEVELS; do
  wrk_at "$c" "$WORK/submit.lua" "$WORK/submit-$c.txt"
  [ "$c" = 1 ] && BASE_SUBMIT=$(rate "$WORK/submit-1.txt")
  ROWS+=("$(row "submissions" "$c" "$WORK/submit-$c.txt" "$BASE_SUBMIT")")
done

# More offers for the accepts to take (not measured): an accept is far cheaper than a
# submission, so the measured submissions alone would not last.
wrk -t2 -c32 -d"$((DURATION * 2))s" -s "$WORK/submit.lua" "$BASE" >/dev/null

# Every offered referral's id, from the provider's own feed.
: > "$WORK/offered"
cursor=""
while :; do
  page=$(curl -sf -H "Authorization: Bearer $PTOKEN" "$BASE/v1/provider/events?limit=1000${cursor:+&after=$cursor}")
  n=$(echo "$page" | jq '.events | length')
  [ "$n" = 0 ] && break
  echo "$page" | jq -r '.events[] | select(.kind == "offered") | .referral_id' >> "$WORK/offered"
  cursor=$(echo "$page" | jq -r .next_cursor)
done
echo "offered referrals to accept: $(wc -l < "$WORK/offered")" >&2

# Accepts: each request takes the next offer, in one wrk thread (one Lua state, so one counter:
# the offers a level takes are exactly the first ones of its slice). Each level starts past the
# last level's, with a margin for requests still in flight when wrk stopped counting.
OFFSET=0
for c in $LEVELS; do
  {
    echo 'local ids = {'
    sed -n "$((OFFSET + 1)),\$p" "$WORK/offered" | sed 's/.*/"&",/'
    echo '}'
    echo 'local n = 0'
    echo 'request = function()'
    echo '  n = n + 1'
    echo '  local i = (n - 1) % #ids + 1' # past the end: 409s, and the run fails
    echo "  return wrk.format(\"POST\", \"/v1/provider/referrals/\" .. ids[i] .. \"/accept\", {[\"Authorization\"] = \"Bearer $PTOKEN\", [\"If-Match\"] = \"*\"})"
    echo 'end'
    # The accepted ones, from the answers themselves (the contact reads read these).
    echo "local out = io.open('$WORK/accepted', 'a')"
    echo 'out:setvbuf("line")'
    echo 'response = function(status, headers, body)'
    echo '  if status == 200 then out:write(body:match("\"id\":\"([^\"]+)\"") .. "\n")'
    echo '  else io.stderr:write(status .. " " .. body .. "\n") end'
    echo 'end'
  } > "$WORK/accept.lua"
  wrk -t1 -c"$c" -d"${ACCEPT_SECONDS}s" --latency -s "$WORK/accept.lua" "$BASE" > "$WORK/accept-$c.txt"
  done_now=$(awk '/requests in/ {print $1}' "$WORK/accept-$c.txt")
  OFFSET=$((OFFSET + done_now + 64)) # wrk may have sent a few it did not count
  [ "$c" = 1 ] && BASE_ACCEPT=$(rate "$WORK/accept-1.txt")
  ROWS+=("$(row "accepts (status change)" "$c" "$WORK/accept-$c.txt" "$BASE_ACCEPT")")
done

# Contact reads over the accepted referrals, each audited.
write_contact_lua "$WORK/accepted"
for c in $LEVELS; do
  wrk_at "$c" "$WORK/contact.lua" "$WORK/contact-$c.txt"
  [ "$c" = 1 ] && BASE_CONTACT=$(rate "$WORK/contact-1.txt")
  ROWS+=("$(row "contact reads" "$c" "$WORK/contact-$c.txt" "$BASE_CONTACT")")
done
stop_server

echo
echo "machine: $(nproc) cores, load before the run $LOAD_BEFORE; SQLite (bundled), release build, 2 HTTP workers"
echo '| measure | connections | rate | p50 | p99 | rate / 1-connection rate |'
echo '|---|---|---|---|---|---|'
printf '%s\n' "${ROWS[@]}"
