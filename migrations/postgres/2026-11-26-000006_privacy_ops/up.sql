-- When the referral's personal data was destroyed (retention purge or erasure on request): the
-- sealed contact, note and decline comments, the wrapped data key and the employee reference
-- are gone from then on. The row stays, de-identified, for reports.
ALTER TABLE referrals ADD COLUMN erased_at TIMESTAMP;
-- The purge scan: referrals still holding personal data, by status and age.
CREATE INDEX referrals_retention ON referrals (status, closed_at, created_at) WHERE erased_at IS NULL;
-- Reports by closing month (outcome).
CREATE INDEX referrals_employer_closed ON referrals (employer_id, closed_at);
