#!/usr/bin/env bash
# The load benchmark (issue 9): one release server on PostgreSQL, measured in one run and side
# by side with pgbench on the same SQL where there is SQL to compare — referral submissions,
# empty-feed polls, long-poll wake-ups, contact reads, the audit export — each with p50/p99
# where it has them, and the server's resident memory. Loopback only; about 4 minutes.
#
#   bench/load.sh      # DURATION=10 CONNS=32 POLLERS=64 WAKES=100 READS=500 IDLE=10000 EVENTS=500000
DURATION=${DURATION:-10}
CONNS=${CONNS:-32}
POLLERS=${POLLERS:-64}
WAKES=${WAKES:-100}
READS=${READS:-500}
IDLE=${IDLE:-10000}
EVENTS=${EVENTS:-500000}
PORT=${PORT:-18484}
source "$(dirname "$0")/lib.sh"
start_server
setup_fixtures
start_sampler
phase_submissions
phase_empty_polls
phase_wake
phase_contact_reads
PEAK_LOAD=$(stop_sampler)
phase_idle_polls
add_events_and_seal "$EVENTS"
phase_export
stop_server
pgbench_submissions
pgbench_contact_reads
cat <<TABLE

machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(. /etc/os-release; echo "$PRETTY_NAME"), PostgreSQL $(psql $PG -Atc 'SHOW server_version')
| measure | service (HTTP) | pgbench, same SQL |
|---|---|---|
| referral submissions, $CONNS connections | $SUBMISSIONS | $PG_SUBMISSIONS |
| empty-feed polls, $POLLERS connections | $EMPTY_POLLS | (answered from memory: no SQL) |
| long-poll wake-up after a commit | $WAKE | — |
| contact reads (each audited), $CONNS connections | $CONTACT_READS | $PG_CONTACT_READS (key read apart: $PG_CONTACT_READS_SPLIT) |
| audit export, NDJSON, whole log | $EXPORT | $PG_EXPORT; $PG_EXPORT_LEAVES |
| resident memory | start $RSS_START kB, peak under the load above $PEAK_LOAD kB | — |
| $IDLE idle long polls | $IDLE_POLLS | — |
TABLE
