#!/usr/bin/env bash
# Long-poll wake-ups (issue #19, goal: p99 < 50 ms over 100 wake-ups), on PostgreSQL and then on
# SQLite: a provider's poll (`wait=10`) waits at the head of its feed, a portal submits a referral
# routed to that provider, and the time from the submission's answer to the poll's answer is
# taken (curl and `date` included: an upper bound on the service's own wake-up). Release build,
# one instance, loopback only; about a minute.
#
#   bench/wake.sh      # WAKES=100
WAKES=${WAKES:-100}
PORT=${PORT:-18487}
source "$(dirname "$0")/lib.sh"
LOAD_BEFORE=$(cut -d" " -f1-3 /proc/loadavg)
start_server
setup_fixtures
phase_wake
PG_WAKE=$WAKE
stop_server
BENCH_DATABASE_URL="sqlite://$WORK/bench.sqlite3" start_server
setup_fixtures
phase_wake
SQLITE_WAKE=$WAKE
stop_server
cat <<TABLE

machine: $(nproc) cores, load average before: $LOAD_BEFORE, after: $(cut -d" " -f1-3 /proc/loadavg)
| backend | long-poll wake-up after a commit |
|---|---|
| PostgreSQL | $PG_WAKE |
| SQLite | $SQLITE_WAKE |
TABLE
