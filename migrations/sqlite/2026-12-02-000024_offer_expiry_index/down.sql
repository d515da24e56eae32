DROP INDEX referrals_status_expiry;
CREATE INDEX referrals_status ON referrals (status);
