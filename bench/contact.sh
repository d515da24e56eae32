#!/usr/bin/env bash
# Contact reads (issue #19, goal 3: ≥ 0.85 of pgbench), PostgreSQL: the service's
# `GET /v1/provider/referrals/{id}/contact` (each one audited in its own transaction) over
# $READS accepted referrals at $CONNS connections, beside pgbench running a read's statements
# (the provider's referral locked with its data key read in the same statement, then the access
# event; and again with the key read by a statement of its own) in the same run. PERF=1 records
# the server under the HTTP load with `perf` and prints its flat profile; PERF=system records the whole machine and prints the share of each command (server, wrk,
# postgres, idle). It also prints the server's own CPU time per read. Release build, loopback
# only; about a minute.
#
#   bench/contact.sh      # DURATION=10 CONNS=32 READS=500 PERF=
DURATION=${DURATION:-10}
CONNS=${CONNS:-32}
READS=${READS:-500}
PORT=${PORT:-18488}
source "$(dirname "$0")/lib.sh"
LOAD_BEFORE=$(cut -d" " -f1-3 /proc/loadavg)
start_server
setup_fixtures
for i in $(seq 1 "$READS"); do
  curl -sf -o /dev/null -H "Authorization: Bearer $PORTAL_TOKEN" -H 'Content-Type: application/json' \
    -H "Idempotency-Key: contact-$i-$$" -d "$BODY" "$BASE/v1/referrals"
done
if [ -n "${PERF:-}" ]; then
  # Recorded once wrk runs (its script is written after the accepts), 2 s in, for 5 s: the
  # server alone by symbol, or (PERF=system) every process on the machine by command name.
  target=(-p "$SERVER")
  [ "$PERF" = system ] && target=(-a)
  (while [ ! -f "$WORK/contact.lua" ]; do sleep 0.1; done
   sleep 2 && perf record -q "${target[@]}" -o "$WORK/perf.data" -- sleep 5 >/dev/null 2>&1) &
  PERF_PID=$!
fi
# The server's own CPU time (user + system, in clock ticks) from the moment wrk starts to the
# moment it ends, per read served: what the service adds to the database's work.
server_ticks() { awk '{print $14 + $15}' "/proc/$SERVER/stat"; }
# (Bounded, so a run that fails before wrk starts leaves no loop behind.)
(for _ in $(seq 1 12000); do [ -f "$WORK/contact.lua" ] && server_ticks > "$WORK/ticks0" && break
   sleep 0.05; done) &
phase_contact_reads
ticks=$(( $(server_ticks) - $(cat "$WORK/ticks0") ))
served=$(awk '/requests in/ {print $1}' "$WORK/contact.txt")
CPU_PER_READ="$(echo "scale=0; $ticks * 1000000 / $(getconf CLK_TCK) / $served" | bc) µs of server CPU per read"
if [ -n "${PERF:-}" ]; then
  wait "$PERF_PID"
  sort=dso,sym
  [ "$PERF" = system ] && sort=comm
  perf report -i "$WORK/perf.data" --no-children -g none --sort "$sort" --percent-limit 0.7 --stdio 2>/dev/null | grep -v "^#" | grep -v "^$" | head -50
fi
stop_server
pgbench_contact_reads
cat <<TABLE

machine: $(nproc) cores, load average before: $LOAD_BEFORE, after: $(cut -d" " -f1-3 /proc/loadavg)
| measure | service (HTTP) | pgbench, same statements |
|---|---|---|
| contact reads (each audited), $CONNS connections | $CONTACT_READS; $CPU_PER_READ | $PG_CONTACT_READS (key read apart: $PG_CONTACT_READS_SPLIT) |
TABLE
