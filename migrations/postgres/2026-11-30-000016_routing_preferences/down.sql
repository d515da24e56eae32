ALTER TABLE referrals DROP COLUMN sealed_preferences;
DROP TABLE employer_affiliations;
ALTER TABLE providers DROP COLUMN serves_helping_professionals;
