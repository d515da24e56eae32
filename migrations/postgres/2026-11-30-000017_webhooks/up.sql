-- Webhook endpoints: a provider's URLs that receive its feed events, id-only. The signing
-- secret must be readable to sign; the previous one keeps signing beside it until
-- previous_secret_until after a rotation, so receivers can switch without losing events.
CREATE TABLE webhook_endpoints (
    id TEXT PRIMARY KEY NOT NULL,
    provider_id TEXT NOT NULL REFERENCES providers (id),
    url TEXT NOT NULL,
    description TEXT,
    secret TEXT NOT NULL,
    previous_secret TEXT,
    previous_secret_until TIMESTAMP,
    status TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    status_changed_at TIMESTAMP NOT NULL
);
CREATE INDEX webhook_endpoints_provider ON webhook_endpoints (provider_id, id);

-- The outbox: one row per (event, endpoint), written in the feed event's own transaction, so a
-- committed event always has its deliveries. event_id is NULL for a ping. The row's id is the
-- stable webhook-id across retries.
CREATE TABLE webhook_deliveries (
    id BIGSERIAL PRIMARY KEY,
    endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id BIGINT REFERENCES provider_events (id),
    created_at TIMESTAMP NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at TIMESTAMP NOT NULL,
    delivered_at TIMESTAMP
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_attempt_at);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, id);

-- Each attempt: when, the status code (NULL when no response came), why it failed, how long
-- it took, and when the next one is due. No bodies, no URLs.
CREATE TABLE webhook_attempts (
    delivery_id BIGINT NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt INTEGER NOT NULL,
    endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    attempted_at TIMESTAMP NOT NULL,
    status_code INTEGER,
    error TEXT,
    latency_ms BIGINT NOT NULL,
    next_attempt_at TIMESTAMP,
    PRIMARY KEY (delivery_id, attempt)
);
CREATE INDEX webhook_attempts_endpoint ON webhook_attempts (endpoint_id, attempted_at);
