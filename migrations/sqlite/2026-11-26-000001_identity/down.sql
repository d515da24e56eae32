DROP TABLE audit_events;
DROP TABLE api_clients;
DROP TABLE providers;
DROP TABLE employers;
