ALTER TABLE readiness_probe DROP COLUMN probes;
