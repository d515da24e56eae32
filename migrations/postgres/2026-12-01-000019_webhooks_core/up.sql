-- When the `webhook.delivered` access events of a delivery were written: before its first
-- attempt, in the transaction that sets this, so a referral id is never sent unlogged and a
-- retry does not log it again. NULL: not yet audited (or nothing to audit, a ping).
ALTER TABLE webhook_deliveries ADD COLUMN audited_at TIMESTAMP;

-- Webhook signing secrets sealed under the master key, as referral data keys are wrapped
-- (XChaCha20-Poly1305, bound to the key id and the endpoint id), opened only to sign. Once a
-- row is sealed its plaintext columns are emptied (secret = '', previous_secret = NULL). Rows
-- still in plain (written before this release, or by an instance of the previous release
-- during a rolling deploy) are sealed at the next start and by `keys rotate-master`.
ALTER TABLE webhook_endpoints ADD COLUMN secret_key_id TEXT;
ALTER TABLE webhook_endpoints ADD COLUMN secret_sealed BYTEA;
ALTER TABLE webhook_endpoints ADD COLUMN previous_secret_sealed BYTEA;
