-- One row the readiness probe updates and commits. The probe's access-log write is rolled back
-- (its row must never reach the log), and on SQLite a rolled-back write never reaches the file:
-- without a committed write, a read-only or full disk would leave /readyz answering 200.
CREATE TABLE readiness_probe (
    id INTEGER PRIMARY KEY,
    probed_at TIMESTAMP NOT NULL
);
INSERT INTO readiness_probe (id, probed_at) VALUES (1, CURRENT_TIMESTAMP);
