-- Provider routing attributes. Code lists are comma-separated codes from the API's enums
-- (written only by the service, sorted); routing reads them in Rust, not in SQL.
ALTER TABLE providers ADD COLUMN status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'paused'));
ALTER TABLE providers ADD COLUMN services TEXT NOT NULL DEFAULT '';
ALTER TABLE providers ADD COLUMN languages TEXT NOT NULL DEFAULT '';
ALTER TABLE providers ADD COLUMN regions TEXT NOT NULL DEFAULT '';
ALTER TABLE providers ADD COLUMN modalities TEXT NOT NULL DEFAULT '';
ALTER TABLE providers ADD COLUMN interpretation BOOLEAN NOT NULL DEFAULT 0;
ALTER TABLE providers ADD COLUMN crisis_capable BOOLEAN NOT NULL DEFAULT 0;
ALTER TABLE providers ADD COLUMN capacity INTEGER NOT NULL DEFAULT 0 CHECK (capacity >= 0);
-- Referrals this provider holds now. Only a conditional UPDATE (active_referrals < capacity)
-- raises it, which is what makes racing claims for the last slot safe.
ALTER TABLE providers ADD COLUMN active_referrals INTEGER NOT NULL DEFAULT 0 CHECK (active_referrals >= 0);

-- An employer's contract with a provider: routing considers only contracted providers.
CREATE TABLE contracts (
    id TEXT PRIMARY KEY NOT NULL,
    employer_id TEXT NOT NULL REFERENCES employers (id),
    provider_id TEXT NOT NULL REFERENCES providers (id),
    priority INTEGER NOT NULL,
    starts_at TIMESTAMP NOT NULL,
    ends_at TIMESTAMP,
    active BOOLEAN NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (employer_id, provider_id),
    CHECK (ends_at IS NULL OR ends_at > starts_at)
);
CREATE INDEX contracts_provider_id ON contracts (provider_id);
