DROP TABLE audit_counts_state;
DROP TABLE audit_hourly_actors;
DROP TABLE audit_hourly_outcomes;
