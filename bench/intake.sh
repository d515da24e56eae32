#!/usr/bin/env bash
# Intake: referral submissions through HTTP on PostgreSQL, against pgbench running the same
# writes (same statements, same transactions) on the same machine in the same run.
#
#   bench/intake.sh            # DURATION=15 CONNS=32; loopback only
DURATION=${DURATION:-15}
CONNS=${CONNS:-32}
PORT=${PORT:-18181}
source "$(dirname "$0")/lib.sh"
start_server
setup_fixtures
phase_submissions
stop_server
pgbench_submissions
echo "HTTP submissions: $SUBMISSIONS ($CONNS connections, ${DURATION}s)"
echo "pgbench, same writes: $PG_SUBMISSIONS ($CONNS clients, ${DURATION}s)"
awk -v h="${SUBMISSIONS%%/s*}" -v p="${PG_SUBMISSIONS%% tps*}" 'BEGIN { printf "ratio: %.2f of pgbench\n", h / p }'
