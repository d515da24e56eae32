DROP INDEX referrals_employer_closed;
DROP INDEX referrals_retention;
ALTER TABLE referrals DROP COLUMN erased_at;
