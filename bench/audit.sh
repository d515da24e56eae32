#!/usr/bin/env bash
# Access log: NDJSON export rate from PostgreSQL and offline verification rate on EVENTS sealed
# events, with the server's resident memory sampled during the export. PostgreSQL on
# 127.0.0.1:5432 (trust auth); loopback only; own database, dropped at the end.
#
#   bench/audit.sh        # EVENTS=1000000 PERF= (PERF=1: a perf profile of the export)
EVENTS=${EVENTS:-1000000}
PORT=${PORT:-18384}
POOL=${POOL:-8}
PGOPTS=${PGOPTS:-?sslmode=disable}
source "$(dirname "$0")/lib.sh"
start_server
setup_fixtures
echo "== writing $EVENTS access events and sealing them"
add_events_and_seal "$EVENTS"
echo "== NDJSON export of the whole log"
phase_export
echo "== offline verification"
phase_verify
echo
echo "$SEALING"
echo "export: $EXPORT"
echo "export CPU: $EXPORT_CPU"
echo "same rows by psql: $PG_EXPORT"
echo "with the leaves' columns: $PG_EXPORT_LEAVES"
echo "offline verify: $VERIFY"
