DROP TABLE audit_search;
