-- Why a provider declined (a fixed code) and its optional comment, sealed with the referral's key.
ALTER TABLE referral_attempts ADD COLUMN reason TEXT;
ALTER TABLE referral_attempts ADD COLUMN sealed_comment BYTEA;
-- The writing transaction. Ids come from a sequence in insert order, not commit order: a slow
-- transaction can commit id 5 after id 6 is visible. The feed only serves events whose
-- transaction is older than every transaction still running, so a cursor never passes one.
ALTER TABLE provider_events ADD COLUMN txid BIGINT DEFAULT (pg_current_xact_id()::text::bigint);
