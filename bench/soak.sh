#!/usr/bin/env bash
# Soak: a steady mix of submissions, status reads, long polls, accepts, contact reads, closes
# and audit queries against one server for SECONDS (default 1800), with resident memory,
# 5xx answers and p99 reported per window (bench/soak.py). Fails on any 5xx, any unexpected
# status, or memory growth after warm-up above SOAK_MAX_GROWTH_KB (default 20480).
#
#   bench/soak.sh [SECONDS]                 PostgreSQL on 127.0.0.1:5432 (a throwaway database)
#   SOAK_DB=sqlite bench/soak.sh [SECONDS]  SQLite in a temp dir
#   SOAK_BIN=target/debug/eap-referrals …   a binary already built (CI's short run); by
#                                           default the release build, built if missing
#   SOAK_RATE=8                             submissions (and status reads) per second
# Loopback only. Not part of CI except as the short run in .ci/faults.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SECONDS_TO_RUN=${1:-1800}
if [ -z "${SOAK_BIN:-}" ]; then
  cargo build --release -q
  SOAK_BIN=target/release/eap-referrals
fi
WORK=$(mktemp -d)
PGARGS="-h 127.0.0.1 -U postgres"
DB=""
SERVER=""
cleanup() {
  [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null || true
  [ -n "$DB" ] && psql $PGARGS -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

if [ "${SOAK_DB:-postgres}" = sqlite ]; then
  export EAP_DATABASE_URL="sqlite://$WORK/eap.sqlite3"
else
  DB="eap_soak_$(date +%s)_$$"
  psql $PGARGS -qc "CREATE DATABASE $DB"
  export EAP_DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB?sslmode=disable"
fi
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# Production settings but for budgets (one load generator is every client here) and a
# checkpoint every 10 s, so sealing is part of the steady state.
export EAP_LISTEN="127.0.0.1:$PORT" EAP_DATA_DIR="$WORK" EAP_WORKERS=2 RUST_LOG=warn \
  EAP_RATE_LIMIT_HR_PORTAL=0 EAP_RATE_LIMIT_PROVIDER=0 EAP_RATE_LIMIT_AUDITOR=0 \
  EAP_RATE_LIMIT_TOKEN_ADDRESS=0 EAP_RATE_LIMIT_ADMIN=0 EAP_AUDIT_CHECKPOINT_SECS=10
ADMIN=$("$SOAK_BIN" admin create-client --role admin --name soak)
"$SOAK_BIN" 2> "$WORK/server.log" &
SERVER=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.2; done
admin_field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$ADMIN" "$1"; }

echo "soak: ${SECONDS_TO_RUN} s on ${SOAK_DB:-postgres}, $SOAK_BIN, pid $SERVER"
set +e
python3 bench/soak.py "http://127.0.0.1:$PORT" "$SERVER" "$SECONDS_TO_RUN" \
  "$(admin_field client_id)" "$(admin_field client_secret)" | tee "$WORK/soak.txt"
status=${PIPESTATUS[0]}
set -e
kill -0 "$SERVER" || { echo "FAIL: the server died"; tail -20 "$WORK/server.log"; exit 1; }
if grep -q '"level":"ERROR"\|ERROR' "$WORK/server.log"; then
  echo "server errors logged:"; grep 'ERROR' "$WORK/server.log" | head -5
fi
growth=$(awk '/^RSS after warm-up/ {print $(NF-1)}' "$WORK/soak.txt")
if [ "${growth:-0}" -gt "${SOAK_MAX_GROWTH_KB:-20480}" ]; then
  echo "FAIL: resident memory grew ${growth} kB after warm-up"
  status=1
fi
exit "$status"
