-- Why a provider declined (a fixed code) and its optional comment, sealed with the referral's key.
ALTER TABLE referral_attempts ADD COLUMN reason TEXT;
ALTER TABLE referral_attempts ADD COLUMN sealed_comment BYTEA;
-- The writing transaction. Ids come from a sequence in insert order, not commit order, so the
-- feed is ordered by (txid, id) and serves only events whose transaction is older than every
-- transaction still running: that prefix is final, and every later event sorts after it.
ALTER TABLE provider_events ADD COLUMN txid BIGINT DEFAULT (pg_current_xact_id()::text::bigint);
CREATE INDEX provider_events_commit_order ON provider_events (provider_id, txid, id);
