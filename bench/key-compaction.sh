#!/usr/bin/env bash
# How long the purge's rewrite of the key partitions holds up submissions, at a realistic size:
# N live keys (default 100,000) spread over the 64 partitions, one key deleted per partition,
# then `eap-referrals purge` (release build) rewrites every partition that lost a key and prints
# how long each swap held the key table's lock: median, p95 and max (ms). A submission that
# needs the key table waits at most that long. With --vacuum-full, the same deletions are
# then rewritten the way the purge did before (VACUUM FULL of each partition, which holds that
# partition's lock throughout), for comparison on the same machine at the same time.
# Usage: bench/key-compaction.sh [N] [--vacuum-full]   (PostgreSQL on PGHOST/PGPORT, default
# 127.0.0.1:5432). Report `uptime` beside the figures: they are latencies.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
PGHOST=${PGHOST:-127.0.0.1}
PGPORT=${PGPORT:-5432}
DB="eap_bench_keys_$$"
WORK=$(mktemp -d)
trap 'psql -h "$PGHOST" -p "$PGPORT" -U postgres -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1; rm -rf "$WORK"' EXIT
psql -h "$PGHOST" -p "$PGPORT" -U postgres -qc "CREATE DATABASE $DB"
cargo build --release -q
export EAP_DATABASE_URL="postgres://postgres@$PGHOST:$PGPORT/$DB" EAP_DATA_DIR="$WORK"
target/release/eap-referrals migrate >/dev/null 2>&1
P="psql -h $PGHOST -p $PGPORT -U postgres -d $DB -v ON_ERROR_STOP=1 -Atq"
# Keys as the service writes them: a UUIDv7-shaped id, a key id, 72 bytes wrapped, a 64-hex HMAC.
$P -c "INSERT INTO referral_keys (referral_id, key_id, wrapped_key, employee_ref_hmac)
       SELECT gen_random_uuid()::text, 'm1', decode(md5(i::text) || md5((i+1)::text) || md5((i+2)::text) || left(md5((i+3)::text), 48), 'hex'),
              md5(i::text) || md5((i+7)::text)
       FROM generate_series(1, $N) i"
$P -c "VACUUM ANALYZE referral_keys"
delete_one_per_partition() {
  $P -c "DELETE FROM referral_keys WHERE referral_id IN
         (SELECT DISTINCT ON (tableoid) referral_id FROM referral_keys ORDER BY tableoid)"
}
delete_one_per_partition
echo "live keys: $N, partitions marked: $($P -c 'SELECT count(*) FROM referral_key_compactions')"
# A partition waits while any transaction in the cluster is older than its deletion (other
# databases' too), so a run may leave some for the next.
for _ in $(seq 1 20); do
  target/release/eap-referrals purge | grep 'key partition' || true
  [ "$($P -c 'SELECT count(*) FROM referral_key_compactions')" = 0 ] && break
  sleep 1
done
left=$($P -c 'SELECT count(*) FROM referral_key_compactions')
[ "$left" = 0 ] || echo "partitions still marked after 20 purges: $left"
if [ "${2:-}" = --vacuum-full ]; then
  delete_one_per_partition
  for i in $(seq -w 0 63); do
    $P -c '\timing on' -c "VACUUM FULL referral_keys_p$i" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p'
  done | sort -n | python3 -c '
import sys
t = [float(x) for x in sys.stdin]
print(f"VACUUM FULL per partition (its lock held) ms: "
      f"median {t[len(t)//2]:.2f}, p95 {t[int(len(t)*0.95)]:.2f}, max {t[-1]:.2f}")
'
fi
echo "load: $(uptime)"
