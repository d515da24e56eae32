DROP TABLE audit_checkpoints;
DROP TABLE audit_log_nodes;
DROP TABLE audit_log_leaves;
DROP FUNCTION audit_log_append_only();
DROP INDEX audit_events_commit_order;
ALTER TABLE audit_events DROP COLUMN txid;
