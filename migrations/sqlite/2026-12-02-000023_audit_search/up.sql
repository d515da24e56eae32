-- What an auditor filters the sealed log by, per log position, so a filtered page reads an
-- index in log order instead of walking every leaf and its event until a page fills (1.4 s for
-- an actor on 1,000,000 events; docs/PERFORMANCE.md). `occurred_max` is the latest
-- `occurred_at` at or before the position: it never decreases along the log, so the first
-- position of a time range is one index lookup. Derived data, written by the sealer in the
-- transaction that seals the leaves (src/audit/store.rs, `index_for_search`): dropping it loses
-- nothing the log does not hold. It holds the same identifiers as `audit_events` and is kept as
-- long as they are. `action` and `outcome` are null for a position whose event row is gone.
CREATE TABLE audit_search (
    seq BIGINT PRIMARY KEY,
    occurred_max TIMESTAMP NOT NULL,
    actor_client_id TEXT,
    action TEXT,
    outcome TEXT,
    resource_id TEXT
);
-- One index per filter an auditor asks first, each ending in the log position so a page is a
-- range scan in log order: who (actor), what and how it ended (action, outcome; action alone
-- uses its prefix), every refusal (outcome), what happened to one object (resource id), when.
CREATE INDEX audit_search_actor ON audit_search (actor_client_id, seq);
CREATE INDEX audit_search_action ON audit_search (action, outcome, seq);
CREATE INDEX audit_search_outcome ON audit_search (outcome, seq);
CREATE INDEX audit_search_resource ON audit_search (resource_id, seq);
CREATE INDEX audit_search_time ON audit_search (occurred_max, seq);

-- The log sealed so far (the sealer adds the rest, and whatever an instance of the previous
-- release seals during a rolling deploy, at its next batch).
INSERT INTO audit_search (seq, occurred_max, actor_client_id, action, outcome, resource_id)
SELECT l.seq,
       COALESCE(max(e.occurred_at) OVER (ORDER BY l.seq), '1970-01-01 00:00:00'),
       e.actor_client_id, e.action, e.outcome, e.resource_id
FROM audit_log_leaves l LEFT JOIN audit_events e ON e.id = l.event_id;
