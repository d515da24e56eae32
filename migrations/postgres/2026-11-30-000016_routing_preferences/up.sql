-- Providers staffed to treat health, care and mental-health workers (routing ranks them first
-- for a referral that asks for it).
ALTER TABLE providers ADD COLUMN serves_helping_professionals BOOLEAN NOT NULL DEFAULT FALSE;

-- Providers an employer is affiliated with (its own clinical services, sister organisations,
-- shared staff): its referrals are never offered to them. The employer's, not the person's, so
-- stored in clear.
CREATE TABLE employer_affiliations (
    employer_id TEXT NOT NULL REFERENCES employers (id),
    provider_id TEXT NOT NULL REFERENCES providers (id),
    PRIMARY KEY (employer_id, provider_id)
);

-- The person's own routing preferences (providers excluded, out-of-area care, specialist care
-- for clinicians), sealed with the referral's data key and shredded with the contact data.
-- Null on referrals submitted before this version: no preferences.
ALTER TABLE referrals ADD COLUMN sealed_preferences BYTEA;
