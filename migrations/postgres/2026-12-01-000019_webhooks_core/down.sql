ALTER TABLE webhook_endpoints DROP COLUMN previous_secret_sealed;
ALTER TABLE webhook_endpoints DROP COLUMN secret_sealed;
ALTER TABLE webhook_endpoints DROP COLUMN secret_key_id;
ALTER TABLE webhook_deliveries DROP COLUMN audited_at;
