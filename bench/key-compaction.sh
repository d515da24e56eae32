#!/usr/bin/env bash
# How long the purge's rewrite of one key partition holds its lock (and so can hold up a
# submission whose key hashes there), at a realistic size: N live keys (default 100,000)
# spread over the 64 partitions, one key deleted per partition, then each partition rewritten
# with VACUUM FULL as the purge does. Prints the rewrite times (ms): median, p95 and max.
# Usage: bench/key-compaction.sh [N]   (PostgreSQL on PGHOST/PGPORT, default 127.0.0.1:5432)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
PGHOST=${PGHOST:-127.0.0.1}
PGPORT=${PGPORT:-5432}
DB="eap_bench_keys_$$"
trap 'psql -h "$PGHOST" -p "$PGPORT" -U postgres -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1' EXIT
psql -h "$PGHOST" -p "$PGPORT" -U postgres -qc "CREATE DATABASE $DB"
cargo build -q
EAP_DATABASE_URL="postgres://postgres@$PGHOST:$PGPORT/$DB" EAP_DATA_DIR=$(mktemp -d) \
  target/debug/eap-referrals migrate >/dev/null 2>&1
P="psql -h $PGHOST -p $PGPORT -U postgres -d $DB -v ON_ERROR_STOP=1 -Atq"
# Keys as the service writes them: a UUIDv7-shaped id, a key id, 72 bytes wrapped, a 64-hex HMAC.
$P -c "INSERT INTO referral_keys (referral_id, key_id, wrapped_key, employee_ref_hmac)
       SELECT gen_random_uuid()::text, 'm1', decode(md5(i::text) || md5((i+1)::text) || md5((i+2)::text) || left(md5((i+3)::text), 48), 'hex'),
              md5(i::text) || md5((i+7)::text)
       FROM generate_series(1, $N) i"
$P -c "VACUUM ANALYZE referral_keys"
$P -c "DELETE FROM referral_keys WHERE referral_id IN
       (SELECT DISTINCT ON (tableoid) referral_id FROM referral_keys ORDER BY tableoid)"
for i in $(seq -w 0 63); do
  $P -c '\timing on' -c "VACUUM FULL referral_keys_p$i" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p'
done | sort -n | python3 -c '
import sys
t = [float(x) for x in sys.stdin]
print(f"live keys: '"$N"', partitions rewritten: {len(t)}, rewrite (lock held) ms: "
      f"median {t[len(t)//2]:.1f}, p95 {t[int(len(t)*0.95)]:.1f}, max {t[-1]:.1f}")
'
