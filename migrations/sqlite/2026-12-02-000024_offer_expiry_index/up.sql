-- The offer sweep (every few seconds) looks for offered referrals whose offer has expired,
-- oldest first. On (status) alone it read every offered referral and sorted them: with about
-- 40,000 open offers (bench/sqlite.sh) a pass took up to 85 ms, inside a write transaction
-- (on SQLite, every other writer waited). Lookups by status alone use this index's first
-- column as they used the old index.
DROP INDEX referrals_status;
CREATE INDEX referrals_status_expiry ON referrals (status, offer_expires_at);
