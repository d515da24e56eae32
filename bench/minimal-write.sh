#!/usr/bin/env bash
# Submissions against the least a submission must write: the service's POST /v1/referrals over
# HTTP at CONNS connections, beside pgbench running only the writes one submission needs, in one
# transaction, on the same schema, indexes and machine, in the same run (issue 19, goal 2).
#
# The minimal write: claim a free slot (SKIP LOCKED), insert the referral, its data key row, its
# attempt, the provider's feed event, the webhook outbox row for the provider's one endpoint, the
# idempotency record with the sealed response, and the access event. Every sealed column and
# the stored routing summary have the byte lengths of a real submission's, read from one made
# through the API first. What the service does beyond it (the caller check, the key's advisory
# lock and lookup, the employer check, the routing snapshot and load cache, the load shard) is
# the distance the ratio measures. The service's statements are prepared once per connection
# (src/db/prepared.rs); pgbench's default sends each as text to parse and plan, so the same
# write also runs with -M prepared, beside it, as the limit without that work.
#
# The provider has a webhook endpoint (a loopback URL; delivery is off, so nothing is sent),
# because a push-enabled provider is the case the service is sold for: each submission then
# writes an outbox row, and so does the baseline.
#
#   bench/minimal-write.sh          # DURATION=15 CONNS=32; release build; loopback only
DURATION=${DURATION:-15}
CONNS=${CONNS:-32}
PORT=${PORT:-18187}
PGOPTS=${PGOPTS:-?sslmode=disable}
export EAP_WEBHOOK_DELIVERY=off EAP_WEBHOOK_ALLOW_LOOPBACK=true
source "$(dirname "$0")/lib.sh"
start_server
setup_fixtures
post "$PTOKEN" /v1/provider/webhooks '{"url":"http://127.0.0.1:9/eap-hook"}' >/dev/null

sql() { psql $PG -d "$DB" -Atqc "$1"; }

# One submission through the API, for the shapes of what a real one stores.
one=$(curl -sf -H "Authorization: Bearer $PORTAL_TOKEN" -H 'Content-Type: application/json' \
  -H "Idempotency-Key: shape-$$" -d "$BODY" "$BASE/v1/referrals" | jq -r .id)
[ "$(sql "SELECT count(*) FROM webhook_deliveries")" -ge 1 ] ||
  { echo "the submission wrote no outbox row: the baseline would hold a write the service skips" >&2; exit 1; }
IFS='|' read -r CONTACT NOTE PREFS REASONS TOKEN_HASH HMAC <<<"$(sql "SELECT octet_length(sealed_contact),
  coalesce(octet_length(sealed_note), 0), coalesce(octet_length(sealed_preferences), 0),
  routing_reasons, status_token_hash, coalesce(employee_ref_hmac, '') FROM referrals WHERE id = '$one'")"
IFS='|' read -r KEY_ID WRAPPED KEY_HMAC <<<"$(sql "SELECT key_id, octet_length(wrapped_key),
  coalesce(length(employee_ref_hmac), 0) FROM referral_keys WHERE referral_id = '$one'")"
RESPONSE=$(sql "SELECT coalesce(octet_length(response_sealed), 0) FROM idempotency_keys WHERE referral_id = '$one'")
ENDPOINT=$(sql "SELECT id FROM webhook_endpoints LIMIT 1")
echo "== a real submission stores: sealed contact $CONTACT B, note $NOTE B, preferences $PREFS B," \
  "wrapped key $WRAPPED B, sealed response $RESPONSE B, routing summary ${#REASONS} chars"

echo "== the service: POST /v1/referrals at $CONNS connections for ${DURATION}s"
phase_submissions
stop_server

# Bytes of the given length (hex-decoded random md5s), as the sealed columns hold.
blob() { echo "substr(decode(repeat(md5(random()::text), $(($1 / 16 + 1))), 'hex'), 1, $1)"; }
# The referral row's nullable sealed columns: NULL where a real submission stores none.
maybe_blob() { if [ "$1" -gt 0 ]; then blob "$1"; else echo NULL; fi; }
REASONS_SQL=$(printf '%s' "$REASONS" | sed "s/'/''/g")
cat > "$WORK/minimal.sql" <<SQL
SELECT gen_random_uuid()::text AS rid, md5(random()::text) AS ikey \gset
BEGIN;
UPDATE provider_slots SET referral_id = ':rid' WHERE provider_id = ':provider' AND slot = (SELECT slot FROM provider_slots WHERE provider_id = ':provider' AND referral_id IS NULL LIMIT 1 FOR UPDATE SKIP LOCKED);
INSERT INTO referrals (id, employer_id, service_type, urgency, modality, language, region, employee_ref_hmac, status, provider_id, offer_expires_at, version, status_token_hash, sealed_contact, sealed_note, sealed_preferences, routing_reasons, created_at, updated_at)
  VALUES (':rid', ':employer', 'counselling', 'routine', 'video', 'en', 'GB-ENG', $([ -n "$HMAC" ] && echo "md5(':rid') || md5(':ikey')" || echo NULL), 'offered', ':provider', now() + interval '48 hours', 1, md5(':ikey') || md5(':rid'), $(blob "$CONTACT"), $(maybe_blob "$NOTE"), $(maybe_blob "$PREFS"), '$REASONS_SQL', now(), now());
INSERT INTO referral_keys (referral_id, key_id, wrapped_key, employee_ref_hmac) VALUES (':rid', '$KEY_ID', $(blob "$WRAPPED"), $([ "$KEY_HMAC" -gt 0 ] && echo "md5(':rid') || md5(':ikey')" || echo NULL));
INSERT INTO referral_attempts (referral_id, provider_id, offered_at) VALUES (':rid', ':provider', now());
WITH e AS (INSERT INTO provider_events (provider_id, referral_id, kind, created_at) VALUES (':provider', ':rid', 'offered', now()) RETURNING id)
  INSERT INTO webhook_deliveries (endpoint_id, event_id, created_at, state, attempts, next_attempt_at) SELECT '$ENDPOINT', id, now(), 'pending', 0, now() FROM e;
INSERT INTO idempotency_keys (client_id, idem_key, request_hash, referral_id, response_status, response_sealed, created_at) VALUES (':client', ':ikey', md5(':ikey'), ':rid', 201, $(maybe_blob "$RESPONSE"), now());
INSERT INTO audit_events (id, occurred_at, actor_client_id, actor_role, tenant_id, action, resource_type, resource_id, outcome, http_status, request_id, source_addr)
  VALUES (gen_random_uuid()::text, now(), ':client', 'hr_portal', ':employer', 'referral.create', 'referral', ':rid', 'success', 201, ':ikey', '127.0.0.1');
COMMIT;
SQL
echo "== pgbench: the minimal write at $CONNS clients for ${DURATION}s"
sql "UPDATE provider_slots SET referral_id = NULL" >/dev/null
MINIMAL=$(pgbench_run "$WORK/minimal.sql" -D client="$PORTAL_ID" -D employer="$EMPLOYER" -D provider="$PROVIDER")
grep -q "number of failed transactions: 0" "$WORK/pgbench.txt" ||
  { echo "pgbench transactions failed:" >&2; cat "$WORK/pgbench.txt" >&2; exit 1; }
# The same write with each statement prepared once per client (-M prepared), as the service's
# are: the limit with no parse or plan per statement. pgbench sends its variables as parameters
# then, so the quoted ones of the simple script become typed parameters.
sed "s/':\([a-z]*\)'/(:\1)::text/g" "$WORK/minimal.sql" > "$WORK/minimal-prepared.sql"
echo "== pgbench: the minimal write, prepared, at $CONNS clients for ${DURATION}s"
sql "UPDATE provider_slots SET referral_id = NULL" >/dev/null
PREPARED=$(pgbench_run "$WORK/minimal-prepared.sql" -M prepared -D client="$PORTAL_ID" -D employer="$EMPLOYER" -D provider="$PROVIDER")
grep -q "number of failed transactions: 0" "$WORK/pgbench.txt" && [ "${PREPARED%% tps*}" -gt 0 ] ||
  { echo "pgbench transactions failed:" >&2; cat "$WORK/pgbench.txt" >&2; exit 1; }

echo
echo "| $CONNS connections, ${DURATION}s | rate | p50 | p99 |"
echo "|---|---|---|---|"
echo "$SUBMISSIONS" | awk -F', ' '{sub(/p50 /, "", $2); sub(/p99 /, "", $3); printf "| service, POST /v1/referrals | %s | %s | %s |\n", $1, $2, $3}'
echo "$MINIMAL" | awk -F', ' '{sub(/p50 /, "", $2); sub(/p99 /, "", $3); printf "| pgbench, the minimal write | %s | %s | %s |\n", $1, $2, $3}'
echo "$PREPARED" | awk -F', ' '{sub(/p50 /, "", $2); sub(/p99 /, "", $3); printf "| pgbench -M prepared, the minimal write | %s | %s | %s |\n", $1, $2, $3}'
awk -v h="${SUBMISSIONS%%/s*}" -v p="${MINIMAL%% tps*}" -v q="${PREPARED%% tps*}" \
  'BEGIN { printf "ratio: %.2f of the minimal write (goal: 0.75); %.2f of it prepared\n", h / p, h / q }'
