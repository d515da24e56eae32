DROP TABLE referral_key_compactions;
DROP TABLE referral_keys;
