-- Why a provider declined (a fixed code) and its optional comment, sealed with the referral's key.
ALTER TABLE referral_attempts ADD COLUMN reason TEXT;
ALTER TABLE referral_attempts ADD COLUMN sealed_comment BLOB;
-- The writing transaction, for a commit-order-safe feed cursor. SQLite has one writer at a
-- time, so ids already commit in order there and this stays NULL.
ALTER TABLE provider_events ADD COLUMN txid BIGINT;
