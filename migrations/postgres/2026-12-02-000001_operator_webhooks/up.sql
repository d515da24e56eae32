-- Operator webhook endpoints: the EAP's on-call staff's URLs, which receive alerts
-- (operator.referral_unroutable, operator.offer_expired) carrying a referral id and urgency only.
-- Tables of their own, not rows in webhook_endpoints (whose provider_id is NOT NULL): the
-- previous release's delivery worker reads only the provider tables, so during a rolling
-- deploy it never claims an operator delivery it could not sign or address. The columns
-- mirror the provider tables' so one store serves both. Secrets are sealed from the first
-- write (secret is '' and previous_secret NULL in every row this release writes).
CREATE TABLE operator_webhook_endpoints (
    id TEXT PRIMARY KEY NOT NULL,
    url TEXT NOT NULL,
    description TEXT,
    secret TEXT NOT NULL,
    previous_secret TEXT,
    previous_secret_until TIMESTAMP,
    status TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    status_changed_at TIMESTAMP NOT NULL,
    secret_key_id TEXT,
    secret_sealed BYTEA,
    previous_secret_sealed BYTEA
);

-- The operators' outbox: one row per (alert, endpoint), written in the transaction that made
-- the referral unroutable or expired its offer. event_type NULL: a ping. No reasons, no
-- employer, no provider: the referral id and its urgency are all an alert carries.
CREATE TABLE operator_webhook_deliveries (
    id BIGSERIAL PRIMARY KEY,
    endpoint_id TEXT NOT NULL REFERENCES operator_webhook_endpoints (id) ON DELETE CASCADE,
    event_type TEXT,
    referral_id TEXT,
    urgency TEXT,
    created_at TIMESTAMP NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at TIMESTAMP NOT NULL,
    delivered_at TIMESTAMP,
    audited_at TIMESTAMP
);
CREATE INDEX operator_webhook_deliveries_due ON operator_webhook_deliveries (state, next_attempt_at);
CREATE INDEX operator_webhook_deliveries_endpoint ON operator_webhook_deliveries (endpoint_id, id);

CREATE TABLE operator_webhook_attempts (
    delivery_id BIGINT NOT NULL REFERENCES operator_webhook_deliveries (id) ON DELETE CASCADE,
    attempt INTEGER NOT NULL,
    endpoint_id TEXT NOT NULL REFERENCES operator_webhook_endpoints (id) ON DELETE CASCADE,
    attempted_at TIMESTAMP NOT NULL,
    status_code INTEGER,
    error TEXT,
    latency_ms BIGINT NOT NULL,
    next_attempt_at TIMESTAMP,
    PRIMARY KEY (delivery_id, attempt)
);
CREATE INDEX operator_webhook_attempts_endpoint ON operator_webhook_attempts (endpoint_id, attempted_at);
