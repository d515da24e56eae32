DROP TABLE idempotency_keys;
DROP TABLE provider_events;
DROP TABLE referral_attempts;
DROP TABLE referrals;
