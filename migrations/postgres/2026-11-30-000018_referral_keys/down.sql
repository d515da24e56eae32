DROP TRIGGER referrals_keys_follow_update ON referrals;
DROP TRIGGER referrals_keys_follow_insert ON referrals;
DROP FUNCTION referrals_keys_follow();
DROP TABLE referral_keys;
DROP FUNCTION referral_keys_mark_deleted();
DROP TABLE referral_key_compactions;
