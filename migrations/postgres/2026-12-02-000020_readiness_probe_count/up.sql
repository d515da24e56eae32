-- The probe must change bytes on every call: SQLite skips writing a row whose new content
-- equals the old (an UPDATE to the same second's CURRENT_TIMESTAMP), and a commit with nothing
-- to write never touches the file, so a read-only disk went unnoticed when two probes fell in
-- one second. A counter differs every time.
ALTER TABLE readiness_probe ADD COLUMN probes BIGINT NOT NULL DEFAULT 0;
