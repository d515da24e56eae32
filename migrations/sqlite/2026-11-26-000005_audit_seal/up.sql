-- Tamper evidence for the access log: events are sealed in order into an RFC 6962 Merkle tree
-- and signed checkpoints (tree heads) are issued over it. audit_events itself stays untouched
-- (append-only): the log position of an event lives beside it. SQLite has one writer at a
-- time, so rowid order is commit order and the sealer's position is (rowid, id).

CREATE TABLE audit_log_leaves (
    seq BIGINT PRIMARY KEY NOT NULL,
    event_id TEXT NOT NULL UNIQUE,
    leaf_hash BLOB NOT NULL,
    pos_major BIGINT NOT NULL,
    pos_minor TEXT NOT NULL
);

CREATE TABLE audit_log_nodes (
    level INTEGER NOT NULL,
    idx BIGINT NOT NULL,
    hash BLOB NOT NULL,
    PRIMARY KEY (level, idx)
);

CREATE TABLE audit_checkpoints (
    n BIGINT PRIMARY KEY NOT NULL,
    tree_size BIGINT NOT NULL,
    root_hash BLOB NOT NULL,
    issued_at TIMESTAMP NOT NULL,
    key_id TEXT NOT NULL,
    signature BLOB NOT NULL
);
CREATE INDEX audit_checkpoints_size ON audit_checkpoints (tree_size);

CREATE TRIGGER audit_log_leaves_no_update BEFORE UPDATE ON audit_log_leaves
BEGIN SELECT RAISE(ABORT, 'audit_log_leaves is append-only'); END;
CREATE TRIGGER audit_log_leaves_no_delete BEFORE DELETE ON audit_log_leaves
BEGIN SELECT RAISE(ABORT, 'audit_log_leaves is append-only'); END;
CREATE TRIGGER audit_log_nodes_no_update BEFORE UPDATE ON audit_log_nodes
BEGIN SELECT RAISE(ABORT, 'audit_log_nodes is append-only'); END;
CREATE TRIGGER audit_log_nodes_no_delete BEFORE DELETE ON audit_log_nodes
BEGIN SELECT RAISE(ABORT, 'audit_log_nodes is append-only'); END;
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END;
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END;
