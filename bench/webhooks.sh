#!/usr/bin/env bash
# Webhook delivery (issue 17): (a) latency from commit (a submission's 201 → the receiver gets
# its referral.offered), p50/p99, at RATE submissions/s for SECONDS_A s; (b) 1,000 endpoints
# (200 providers × the limit of 5) of which 100 are down (50 refusing connections, 50 never
# answering), EVENTS referrals committed with delivery off and then drained: deliveries/s to the
# healthy endpoints and the service's resident memory. Release build; receivers are the driver's
# own servers on 127.0.0.1 (EAP_WEBHOOK_ALLOW_LOOPBACK=true: loopback and nothing else); every
# phase is bounded (DRAIN_LIMIT s for the drain). The driver is bench/webhooks.py (stdlib only).
#
#   bench/webhooks.sh                      # SQLite (a file in a temporary directory)
#   BACKEND=postgres bench/webhooks.sh     # PostgreSQL on 127.0.0.1:5432 (trust), own database
#   RATE=100 SECONDS_A=40 PROVIDERS=200 DOWN=100 EVENTS=2000 DRAIN_LIMIT=300 PORT=18720
#   PROFILE=debug bench/webhooks.sh        # the debug binary: checks the script, not a figure
set -euo pipefail
cd "$(dirname "$0")/.."
BACKEND=${BACKEND:-sqlite}
export PORT=${PORT:-18720}
PROFILE=${PROFILE:-release}
case "$PROFILE" in
  release) cargo build --release -q --locked --bin eap-referrals ;;
  debug) cargo build -q --locked --bin eap-referrals ;;
  *) echo "PROFILE must be release or debug" >&2; exit 2 ;;
esac
export BIN=$PWD/target/$PROFILE/eap-referrals
WORK=$(mktemp -d)
export WORK
DB="eap_bench_webhooks_$$"
cleanup() {
  [ "$BACKEND" = postgres ] && psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1
  rm -rf "$WORK"
}
trap cleanup EXIT
case "$BACKEND" in
  sqlite) export EAP_DATABASE_URL="sqlite://$WORK/eap.sqlite3" ;;
  postgres)
    psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $DB"
    export EAP_DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB?sslmode=disable" EAP_DB_POOL_SIZE=16 ;;
  *) echo "BACKEND must be sqlite or postgres" >&2; exit 2 ;;
esac
export EAP_DATA_DIR=$WORK
echo "backend: $BACKEND; $PROFILE build; $(nproc) cores; load before: $(uptime | sed 's/.*load average/load average/')"
python3 bench/webhooks.py || { tail -n 20 "$WORK/server.log"; exit 1; }
echo "load after: $(uptime | sed 's/.*load average/load average/')"
