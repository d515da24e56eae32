DROP TABLE operator_webhook_attempts;
DROP TABLE operator_webhook_deliveries;
DROP TABLE operator_webhook_endpoints;
