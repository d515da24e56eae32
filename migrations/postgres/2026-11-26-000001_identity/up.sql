-- Identity and the access log. Ids are TEXT (UUIDs): one schema serves SQLite and PostgreSQL.
CREATE TABLE employers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE providers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE api_clients (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('hr_portal', 'provider', 'auditor', 'admin')),
    employer_id TEXT REFERENCES employers (id),
    provider_id TEXT REFERENCES providers (id),
    secret_hash TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    secret_rotated_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP,
    CHECK ((role = 'hr_portal') = (employer_id IS NOT NULL)),
    CHECK ((role = 'provider') = (provider_id IS NOT NULL))
);

-- Access events, written in the same transaction as the work they record. Identifiers only.
CREATE TABLE audit_events (
    id TEXT PRIMARY KEY,
    occurred_at TIMESTAMP NOT NULL,
    actor_client_id TEXT,
    actor_role TEXT,
    tenant_id TEXT,
    action TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id TEXT,
    outcome TEXT NOT NULL CHECK (outcome IN ('success', 'denied', 'failure')),
    http_status INTEGER NOT NULL,
    request_id TEXT NOT NULL,
    source_addr TEXT
);
CREATE INDEX audit_events_occurred_at ON audit_events (occurred_at);
CREATE INDEX audit_events_resource_id ON audit_events (resource_id);
CREATE INDEX audit_events_request_id ON audit_events (request_id);

-- Append-only: the service never updates or deletes an access event, and neither may anyone else
-- through an ordinary statement.
CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only';
END;
$$;
CREATE TRIGGER audit_events_no_change BEFORE UPDATE OR DELETE ON audit_events
FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();
