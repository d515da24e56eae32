-- Provider routing attributes. Code lists are comma-separated codes from the API's enums
-- (written only by the service, sorted); routing reads them in Rust, not in SQL.
ALTER TABLE providers ADD COLUMN status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'paused'));
ALTER TABLE providers ADD COLUMN services TEXT NOT NULL DEFAULT '';
ALTER TABLE providers ADD COLUMN languages TEXT NOT NULL DEFAULT '';
ALTER TABLE providers ADD COLUMN regions TEXT NOT NULL DEFAULT '';
ALTER TABLE providers ADD COLUMN modalities TEXT NOT NULL DEFAULT '';
ALTER TABLE providers ADD COLUMN interpretation BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE providers ADD COLUMN crisis_capable BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE providers ADD COLUMN capacity INTEGER NOT NULL DEFAULT 0 CHECK (capacity >= 0);

-- One row per unit of a provider's capacity; a referral holds a slot while the provider holds it.
-- Claims take a free row (FOR UPDATE SKIP LOCKED on PostgreSQL), so concurrent submissions take
-- different slots without queueing on one counter, and a slot can never be held twice.
CREATE TABLE provider_slots (
    provider_id TEXT NOT NULL REFERENCES providers (id),
    slot INTEGER NOT NULL,
    referral_id TEXT,
    PRIMARY KEY (provider_id, slot)
);
CREATE INDEX provider_slots_free ON provider_slots (provider_id, slot) WHERE referral_id IS NULL;
CREATE INDEX provider_slots_taken ON provider_slots (provider_id, referral_id) WHERE referral_id IS NOT NULL;

-- How many referrals each provider holds, for ranking by load. Split over 16 rows per provider
-- so concurrent claims rarely wait on the same row; a load is the sum of its rows. (The slots
-- above are what enforce capacity; this only ranks.)
CREATE TABLE provider_load_shards (
    provider_id TEXT NOT NULL REFERENCES providers (id),
    shard INTEGER NOT NULL,
    held INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (provider_id, shard)
);

-- An employer's contract with a provider: routing considers only contracted providers.
CREATE TABLE contracts (
    id TEXT PRIMARY KEY NOT NULL,
    employer_id TEXT NOT NULL REFERENCES employers (id),
    provider_id TEXT NOT NULL REFERENCES providers (id),
    priority INTEGER NOT NULL,
    starts_at TIMESTAMP NOT NULL,
    ends_at TIMESTAMP,
    active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (employer_id, provider_id),
    CHECK (ends_at IS NULL OR ends_at > starts_at)
);
CREATE INDEX contracts_provider_id ON contracts (provider_id);
