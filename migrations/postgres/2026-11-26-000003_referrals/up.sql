-- Referrals. Routing attributes, status and timestamps are in clear (routing and reports need
-- them); the contact block and note are sealed with the referral's own data key, which is
-- stored wrapped by a master key (key_id). Deleting key and ciphertexts shreds the referral.
CREATE TABLE referrals (
    id TEXT PRIMARY KEY NOT NULL,
    employer_id TEXT NOT NULL REFERENCES employers (id),
    service_type TEXT NOT NULL,
    urgency TEXT NOT NULL,
    modality TEXT NOT NULL,
    language TEXT NOT NULL,
    region TEXT NOT NULL,
    employee_ref_hmac TEXT,
    status TEXT NOT NULL,
    outcome TEXT,
    provider_id TEXT REFERENCES providers (id),
    offer_expires_at TIMESTAMP,
    version INTEGER NOT NULL,
    status_token_hash TEXT NOT NULL,
    key_id TEXT,
    wrapped_key BYTEA,
    sealed_contact BYTEA,
    sealed_note BYTEA,
    routing_reasons TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    closed_at TIMESTAMP
);
CREATE INDEX referrals_status ON referrals (status);
CREATE INDEX referrals_provider_id ON referrals (provider_id);
CREATE INDEX referrals_employer_created ON referrals (employer_id, created_at);

-- Every provider a referral was offered to, so a re-offer never goes back to one.
CREATE TABLE referral_attempts (
    referral_id TEXT NOT NULL REFERENCES referrals (id),
    provider_id TEXT NOT NULL REFERENCES providers (id),
    offered_at TIMESTAMP NOT NULL,
    outcome TEXT,
    PRIMARY KEY (referral_id, provider_id)
);

-- Each provider's change feed (ids only).
CREATE TABLE provider_events (
    id BIGSERIAL PRIMARY KEY,
    provider_id TEXT NOT NULL REFERENCES providers (id),
    referral_id TEXT NOT NULL REFERENCES referrals (id),
    kind TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX provider_events_feed ON provider_events (provider_id, id);

-- Idempotency-Key records, per client. The stored response is sealed with the referral's data
-- key (it holds the status token), so shredding the referral shreds it too.
CREATE TABLE idempotency_keys (
    client_id TEXT NOT NULL,
    idem_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    referral_id TEXT REFERENCES referrals (id),
    response_status INTEGER,
    response_sealed BYTEA,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (client_id, idem_key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
