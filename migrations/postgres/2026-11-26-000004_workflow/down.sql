DROP INDEX provider_events_commit_order;
ALTER TABLE provider_events DROP COLUMN txid;
ALTER TABLE referral_attempts DROP COLUMN sealed_comment;
ALTER TABLE referral_attempts DROP COLUMN reason;
