-- Counts of the sealed access log per hour, for /v1/audit/stats: the sealer adds each new
-- checkpoint's events in the checkpoint's own transaction, so a chart over a month reads a few
-- thousand rows instead of joining every event to its leaf. `hour` is hours since
-- 1970-01-01T00:00Z; `actor` is the acting client's id, '' for none. Derived data: dropping
-- these tables loses nothing the log does not hold.
CREATE TABLE audit_hourly_outcomes (
    hour BIGINT NOT NULL,
    outcome TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (hour, outcome)
);
CREATE TABLE audit_hourly_actors (
    hour BIGINT NOT NULL,
    outcome TEXT NOT NULL,
    actor TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (hour, outcome, actor)
);
-- The checkpoint size the counts cover: every sealed event below it is counted, none above.
-- It starts at 0 and the sealer catches up a bounded step per tick (see docs/AUDIT.md).
CREATE TABLE audit_counts_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    tree_size BIGINT NOT NULL
);
INSERT INTO audit_counts_state (id, tree_size) VALUES (1, 0);
