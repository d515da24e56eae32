-- Tamper evidence for the access log: events are sealed in order into an RFC 6962 Merkle tree
-- and signed checkpoints (tree heads) are issued over it. audit_events itself stays untouched
-- (append-only): the log position of an event lives beside it.

-- The writing transaction, so the one sealer can take events in commit order: only events of
-- transactions older than every running one are sealed, ordered by (txid, id), so a slow
-- transaction's event is never passed over (as provider_events.txid does for the feed).
ALTER TABLE audit_events ADD COLUMN txid BIGINT DEFAULT (pg_current_xact_id()::text::bigint);
CREATE INDEX audit_events_commit_order ON audit_events (txid, id);

-- One row per sealed event: its place in the tree and its leaf hash. (pos_major, pos_minor) is
-- the event's commit-order position, the sealer's high-water mark.
CREATE TABLE audit_log_leaves (
    seq BIGINT PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    leaf_hash BYTEA NOT NULL,
    pos_major BIGINT NOT NULL,
    pos_minor TEXT NOT NULL
);

-- Every perfect subtree above the leaves (2^level leaves starting at idx * 2^level), written
-- as it completes, so tree heads and proofs cost O(log n) lookups.
CREATE TABLE audit_log_nodes (
    level INTEGER NOT NULL,
    idx BIGINT NOT NULL,
    hash BYTEA NOT NULL,
    PRIMARY KEY (level, idx)
);

-- Signed tree heads, numbered in issue order; several may share a size (issued while idle).
CREATE TABLE audit_checkpoints (
    n BIGINT PRIMARY KEY,
    tree_size BIGINT NOT NULL,
    root_hash BYTEA NOT NULL,
    issued_at TIMESTAMP NOT NULL,
    key_id TEXT NOT NULL,
    signature BYTEA NOT NULL
);
CREATE INDEX audit_checkpoints_size ON audit_checkpoints (tree_size);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END;
$$;
CREATE TRIGGER audit_log_leaves_no_change BEFORE UPDATE OR DELETE ON audit_log_leaves
FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_leaves_no_truncate BEFORE TRUNCATE ON audit_log_leaves
FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_nodes_no_change BEFORE UPDATE OR DELETE ON audit_log_nodes
FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_nodes_no_truncate BEFORE TRUNCATE ON audit_log_nodes
FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_checkpoints_no_change BEFORE UPDATE OR DELETE ON audit_checkpoints
FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
