DROP TABLE audit_checkpoints;
DROP TABLE audit_log_nodes;
DROP TABLE audit_log_leaves;
