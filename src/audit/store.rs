use diesel::prelude::*;

use super::model::{AuditEvent, Outcome};
use crate::codes::Code;
use crate::db::schema::audit_events;
use crate::db::AnyConnection;
use crate::error::ApiError;

pub mod counts;

#[derive(Insertable)]
#[diesel(table_name = audit_events)]
struct NewRow<'a> {
    id: &'a str,
    occurred_at: chrono::NaiveDateTime,
    actor_client_id: Option<&'a str>,
    actor_role: Option<&'a str>,
    tenant_id: Option<&'a str>,
    action: &'a str,
    resource_type: &'a str,
    resource_id: Option<&'a str>,
    outcome: Outcome,
    http_status: i32,
    request_id: &'a str,
    source_addr: Option<&'a str>,
}

/// Appends events in the caller's transaction. Any failure is `AuditUnavailable` (503), which
/// rolls the transaction back: no access-log entry, no committed change.
pub fn record(conn: &mut AnyConnection, events: &[AuditEvent]) -> Result<(), ApiError> {
    if events.is_empty() {
        return Ok(());
    }
    let rows: Vec<NewRow> = events
        .iter()
        .map(|e| NewRow {
            id: &e.id,
            occurred_at: e.occurred_at,
            actor_client_id: e.actor_client_id.as_deref(),
            actor_role: e.actor_role.as_deref(),
            tenant_id: e.tenant_id.as_deref(),
            action: &e.action,
            resource_type: &e.resource_type,
            resource_id: e.resource_id.as_deref(),
            outcome: e.outcome,
            http_status: i32::from(e.http_status),
            request_id: &e.request_id,
            source_addr: e.source_addr.as_deref(),
        })
        .collect();
    // One statement for the whole batch (a page of ten referrals is ten events). The derived
    // MultiConnection cannot batch-insert, so the statement goes to the inner connection.
    let insert = diesel::insert_into(audit_events::table).values(&rows);
    match conn {
        // Nearly every request writes exactly one event: that statement is prepared once per
        // connection (diesel would parse an insert with nullable values anew each time).
        AnyConnection::Postgresql(c) if rows.len() == 1 => insert_one(c, &rows[0]),
        AnyConnection::Postgresql(c) => insert.execute(c),
        AnyConnection::Sqlite(c) => insert.execute(c),
    }
    .map(|_| ())
    .map_err(|e| ApiError::AuditUnavailable(format!("access-log write failed: {e}")))
}

fn insert_one(c: &mut diesel::PgConnection, row: &NewRow<'_>) -> QueryResult<usize> {
    use diesel::sql_types::{Integer, Nullable, Text, Timestamp};
    // Destructured, so a new field cannot be left out.
    let NewRow {
        id,
        occurred_at,
        actor_client_id,
        actor_role,
        tenant_id,
        action,
        resource_type,
        resource_id,
        outcome,
        http_status,
        request_id,
        source_addr,
    } = row;
    crate::db::prepared::prepared(
        "INSERT INTO audit_events (id, occurred_at, actor_client_id, actor_role, tenant_id, \
           action, resource_type, resource_id, outcome, http_status, request_id, source_addr) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind::<Text, _>(id)
    .bind::<Timestamp, _>(occurred_at)
    .bind::<Nullable<Text>, _>(actor_client_id)
    .bind::<Nullable<Text>, _>(actor_role)
    .bind::<Nullable<Text>, _>(tenant_id)
    .bind::<Text, _>(action)
    .bind::<Text, _>(resource_type)
    .bind::<Nullable<Text>, _>(resource_id)
    .bind::<Text, _>(outcome.code())
    .bind::<Integer, _>(http_status)
    .bind::<Text, _>(request_id)
    .bind::<Nullable<Text>, _>(source_addr)
    .execute(c)
}

/// Writes events on their own, for refusals that have no other work to commit.
pub fn record_alone(conn: &mut AnyConnection, events: &[AuditEvent]) -> Result<(), ApiError> {
    crate::db::write_tx(conn, |conn| record(conn, events))
}

// ---------------------------------------------------------------------------------------------
// The sealed log: leaves, perfect subtrees and checkpoints.

use diesel::sql_types::{BigInt, Integer, Nullable, Text, Timestamp};

use super::merkle::Hash;
use super::model::{format_time, Checkpoint, LoggedEvent};
use crate::db::schema::{audit_checkpoints, audit_log_leaves, audit_log_nodes, audit_search};

/// An access-log row as stored, for hashing and export.
#[derive(Debug, Clone, Queryable, QueryableByName)]
pub struct EventRow {
    #[diesel(sql_type = Text)]
    pub id: String,
    #[diesel(sql_type = Timestamp)]
    pub occurred_at: chrono::NaiveDateTime,
    #[diesel(sql_type = Nullable<Text>)]
    pub actor_client_id: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub actor_role: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub tenant_id: Option<String>,
    #[diesel(sql_type = Text)]
    pub action: String,
    #[diesel(sql_type = Text)]
    pub resource_type: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub resource_id: Option<String>,
    #[diesel(sql_type = Text)]
    pub outcome: Outcome,
    #[diesel(sql_type = Integer)]
    pub http_status: i32,
    #[diesel(sql_type = Text)]
    pub request_id: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub source_addr: Option<String>,
}

impl EventRow {
    pub fn logged(self, seq: Option<u64>, leaf_hash: Option<String>) -> LoggedEvent {
        LoggedEvent {
            seq,
            leaf_hash,
            id: self.id,
            occurred_at: format_time(self.occurred_at),
            actor_client_id: self.actor_client_id,
            actor_role: self.actor_role,
            tenant_id: self.tenant_id,
            action: self.action,
            resource_type: self.resource_type,
            resource_id: self.resource_id,
            outcome: self.outcome.code().to_owned(),
            http_status: self.http_status,
            request_id: self.request_id,
            source_addr: self.source_addr,
        }
    }
}

/// An event not sealed yet, with its commit-order position.
#[derive(Debug, QueryableByName)]
pub struct PendingRow {
    #[diesel(sql_type = BigInt)]
    pub pos_major: i64,
    #[diesel(sql_type = Text)]
    pub pos_minor: String,
    #[diesel(embed)]
    pub event: EventRow,
}

const EVENT_COLUMNS: &str = "id, occurred_at, actor_client_id, actor_role, tenant_id, action, \
     resource_type, resource_id, outcome, http_status, request_id, source_addr";

/// Events after the sealer's high-water mark, in commit order. On PostgreSQL only events of
/// transactions older than every running one are returned, ordered by (txid, id): that prefix
/// is final, and any event still to commit sorts after it, so none is ever passed over. SQLite
/// has one writer at a time, so rowid order is commit order.
pub fn pending(
    conn: &mut AnyConnection,
    after: (i64, &str),
    limit: i64,
) -> QueryResult<Vec<PendingRow>> {
    match conn {
        AnyConnection::Postgresql(c) => diesel::sql_query(format!(
            "SELECT txid AS pos_major, id AS pos_minor, {EVENT_COLUMNS} FROM audit_events \
             WHERE (txid, id) > ($1, $2) \
               AND txid < pg_snapshot_xmin(pg_current_snapshot())::text::bigint \
             ORDER BY txid, id LIMIT $3"
        ))
        .bind::<BigInt, _>(after.0)
        .bind::<Text, _>(after.1)
        .bind::<BigInt, _>(limit)
        .load(c),
        AnyConnection::Sqlite(c) => diesel::sql_query(format!(
            "SELECT rowid AS pos_major, id AS pos_minor, {EVENT_COLUMNS} FROM audit_events \
             WHERE rowid > ? ORDER BY rowid LIMIT ?"
        ))
        .bind::<BigInt, _>(after.0)
        .bind::<BigInt, _>(limit)
        .load(c),
    }
}

/// Whether committed events after the high-water mark wait behind the PostgreSQL commit
/// horizon, which a transaction in any database of the cluster can hold: `pending` does not
/// return them yet. Always `false` on SQLite, whose pending events are all sealable.
pub fn held_back(conn: &mut AnyConnection, after: (i64, &str)) -> QueryResult<bool> {
    #[derive(QueryableByName)]
    struct Exists {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        e: bool,
    }
    match conn {
        AnyConnection::Postgresql(c) => diesel::sql_query(
            "SELECT EXISTS (SELECT 1 FROM audit_events WHERE (txid, id) > ($1, $2)) AS e",
        )
        .bind::<BigInt, _>(after.0)
        .bind::<Text, _>(after.1)
        .get_result::<Exists>(c)
        .map(|r| r.e),
        AnyConnection::Sqlite(_) => Ok(false),
    }
}

/// An unsealed event that claims to be older than `before` (the server verifier's check for
/// rows slipped in behind the sealer).
pub fn unsealed_before(
    conn: &mut AnyConnection,
    before: chrono::NaiveDateTime,
) -> QueryResult<Option<EventRow>> {
    let sql = format!(
        "SELECT {EVENT_COLUMNS} FROM audit_events e \
         WHERE e.occurred_at < {} \
           AND NOT EXISTS (SELECT 1 FROM audit_log_leaves l WHERE l.event_id = e.id) \
         ORDER BY e.occurred_at LIMIT 1",
        match conn {
            AnyConnection::Postgresql(_) => "$1",
            AnyConnection::Sqlite(_) => "?",
        }
    );
    let rows: Vec<EventRow> = match conn {
        AnyConnection::Postgresql(c) => diesel::sql_query(sql)
            .bind::<Timestamp, _>(before)
            .load(c)?,
        AnyConnection::Sqlite(c) => diesel::sql_query(sql)
            .bind::<Timestamp, _>(before)
            .load(c)?,
    };
    Ok(rows.into_iter().next())
}

/// When the most recently sealed event occurred (none if the log is empty or its row is gone).
pub fn last_sealed_time(conn: &mut AnyConnection) -> QueryResult<Option<chrono::NaiveDateTime>> {
    use crate::db::schema::audit_events as a;
    let size = sealed_size(conn)?;
    if size == 0 {
        return Ok(None);
    }
    audit_log_leaves::table
        .inner_join(a::table.on(a::id.eq(audit_log_leaves::event_id)))
        .filter(audit_log_leaves::seq.eq(size as i64 - 1))
        .select(a::occurred_at)
        .first(conn)
        .optional()
}

fn hash_of(bytes: Vec<u8>) -> QueryResult<Hash> {
    bytes.try_into().map_err(|_| {
        diesel::result::Error::DeserializationError("a stored hash is not 32 bytes".into())
    })
}

/// The hash of the perfect subtree (level, index): a leaf at level 0, else a stored node.
pub fn node(conn: &mut AnyConnection, level: u32, index: u64) -> QueryResult<Hash> {
    let bytes: Vec<u8> = if level == 0 {
        audit_log_leaves::table
            .find(index as i64)
            .select(audit_log_leaves::leaf_hash)
            .first(conn)?
    } else {
        audit_log_nodes::table
            .find((level as i32, index as i64))
            .select(audit_log_nodes::hash)
            .first(conn)?
    };
    hash_of(bytes)
}

/// How many events are sealed.
pub fn sealed_size(conn: &mut AnyConnection) -> QueryResult<u64> {
    let max: Option<i64> = audit_log_leaves::table
        .select(diesel::dsl::max(audit_log_leaves::seq))
        .first(conn)?;
    Ok(max.map_or(0, |m| m as u64 + 1))
}

/// The commit-order position of the last sealed event.
pub fn high_water(conn: &mut AnyConnection, size: u64) -> QueryResult<(i64, String)> {
    if size == 0 {
        return Ok((i64::MIN, String::new()));
    }
    audit_log_leaves::table
        .find(size as i64 - 1)
        .select((audit_log_leaves::pos_major, audit_log_leaves::pos_minor))
        .first(conn)
}

#[derive(Insertable)]
#[diesel(table_name = audit_log_leaves)]
pub struct NewLeaf {
    pub seq: i64,
    pub event_id: String,
    pub leaf_hash: Vec<u8>,
    pub pos_major: i64,
    pub pos_minor: String,
}

#[derive(Insertable)]
#[diesel(table_name = audit_log_nodes)]
pub struct NewNode {
    pub level: i32,
    pub idx: i64,
    pub hash: Vec<u8>,
}

pub fn insert_sealed(
    conn: &mut AnyConnection,
    leaves: &[NewLeaf],
    nodes: &[NewNode],
) -> QueryResult<()> {
    // Batched on the inner connection, as `record` does; in chunks under SQLite's 32766
    // bound-parameter limit.
    for chunk in leaves.chunks(1000) {
        let q = diesel::insert_into(audit_log_leaves::table).values(chunk);
        match conn {
            AnyConnection::Postgresql(c) => q.execute(c),
            AnyConnection::Sqlite(c) => q.execute(c),
        }?;
    }
    for chunk in nodes.chunks(2000) {
        let q = diesel::insert_into(audit_log_nodes::table).values(chunk);
        match conn {
            AnyConnection::Postgresql(c) => q.execute(c),
            AnyConnection::Sqlite(c) => q.execute(c),
        }?;
    }
    match leaves.last() {
        Some(last) => index_for_search(conn, last.seq + 1),
        None => Ok(()),
    }
}

/// Adds every sealed position the search index lacks: the leaves just inserted, and any an
/// instance of the previous release sealed without it during a rolling deploy. In the sealing
/// transaction, under the sealer's lock, so the index never lags a checkpoint this sealer
/// issues. `occurred_max` carries the running maximum on from the last indexed position.
fn index_for_search(conn: &mut AnyConnection, size: i64) -> QueryResult<()> {
    use audit_search as s;
    let last: Option<(i64, chrono::NaiveDateTime)> = s::table
        .order(s::seq.desc())
        .select((s::seq, s::occurred_max))
        .first(conn)
        .optional()?;
    let (lo, before) = last.map_or(
        (0, chrono::DateTime::UNIX_EPOCH.naive_utc()),
        |(seq, max)| (seq + 1, max),
    );
    if lo >= size {
        return Ok(());
    }
    // The bounds are values, not subqueries, so the planner reads exactly this stretch of
    // leaves and joins each to its event by primary key (with a subquery's unknown value it
    // chose to scan every event: sealing fell from 27,700/s at 200,000 events to 10,200/s at
    // 1M). PostgreSQL's GREATEST skips a NULL, SQLite's max() would return it: hence COALESCE.
    let (greatest, lo_p, hi_p, before_p) = match conn {
        AnyConnection::Postgresql(_) => ("GREATEST", "$1", "$2", "$3"),
        AnyConnection::Sqlite(_) => ("max", "?1", "?2", "?3"),
    };
    let sql = format!(
        "INSERT INTO audit_search (seq, occurred_max, actor_client_id, action, outcome, resource_id) \
         SELECT l.seq, {greatest}(COALESCE(max(e.occurred_at) OVER (ORDER BY l.seq), {before_p}), {before_p}), \
                e.actor_client_id, e.action, e.outcome, e.resource_id \
         FROM audit_log_leaves l LEFT JOIN audit_events e ON e.id = l.event_id \
         WHERE l.seq >= {lo_p} AND l.seq < {hi_p}"
    );
    let q = diesel::sql_query(sql)
        .bind::<BigInt, _>(lo)
        .bind::<BigInt, _>(size)
        .bind::<Timestamp, _>(before);
    match conn {
        AnyConnection::Postgresql(c) => q.execute(c),
        AnyConnection::Sqlite(c) => q.execute(c),
    }
    .map(|_| ())
}

type CheckpointColumns = (
    audit_checkpoints::n,
    audit_checkpoints::tree_size,
    audit_checkpoints::root_hash,
    audit_checkpoints::issued_at,
    audit_checkpoints::key_id,
    audit_checkpoints::signature,
);
const CHECKPOINT_COLUMNS: CheckpointColumns = (
    audit_checkpoints::n,
    audit_checkpoints::tree_size,
    audit_checkpoints::root_hash,
    audit_checkpoints::issued_at,
    audit_checkpoints::key_id,
    audit_checkpoints::signature,
);

type CheckpointRow = (i64, i64, Vec<u8>, chrono::NaiveDateTime, String, Vec<u8>);

fn checkpoint_of(r: CheckpointRow) -> Checkpoint {
    use base64::Engine;
    Checkpoint {
        n: r.0 as u64,
        tree_size: r.1 as u64,
        root_hash: super::merkle::to_hex(&r.2),
        issued_at: format_time(r.3),
        key_id: r.4,
        signature: base64::engine::general_purpose::STANDARD.encode(r.5),
    }
}

pub fn latest_checkpoint(conn: &mut AnyConnection) -> QueryResult<Option<Checkpoint>> {
    audit_checkpoints::table
        .order(audit_checkpoints::n.desc())
        .select(CHECKPOINT_COLUMNS)
        .first::<CheckpointRow>(conn)
        .optional()
        .map(|r| r.map(checkpoint_of))
}

/// Checkpoints newest first, before issue number `before`.
pub fn checkpoints(
    conn: &mut AnyConnection,
    before: Option<u64>,
    limit: i64,
) -> QueryResult<Vec<Checkpoint>> {
    audit_checkpoints::table
        .filter(audit_checkpoints::n.lt(before.map_or(i64::MAX, |b| b as i64)))
        .order(audit_checkpoints::n.desc())
        .limit(limit)
        .select(CHECKPOINT_COLUMNS)
        .load::<CheckpointRow>(conn)
        .map(|rows| rows.into_iter().map(checkpoint_of).collect())
}

/// The latest checkpoint of each distinct size from `min_size` on, for the late-insertion check.
pub fn checkpoints_from(conn: &mut AnyConnection, min_size: u64) -> QueryResult<Vec<Checkpoint>> {
    audit_checkpoints::table
        .filter(audit_checkpoints::tree_size.ge(min_size as i64))
        .order(audit_checkpoints::n.asc())
        .select(CHECKPOINT_COLUMNS)
        .load::<CheckpointRow>(conn)
        .map(|rows| {
            let mut out: Vec<Checkpoint> = Vec::new();
            for c in rows.into_iter().map(checkpoint_of) {
                match out.last_mut() {
                    Some(last) if last.tree_size == c.tree_size => *last = c,
                    _ => out.push(c),
                }
            }
            out
        })
}

/// The last checkpoint of exactly `size`, if one was issued.
pub fn checkpoint_of_size(conn: &mut AnyConnection, size: u64) -> QueryResult<Option<Checkpoint>> {
    audit_checkpoints::table
        .filter(audit_checkpoints::tree_size.eq(size as i64))
        .order(audit_checkpoints::n.desc())
        .select(CHECKPOINT_COLUMNS)
        .first::<CheckpointRow>(conn)
        .optional()
        .map(|r| r.map(checkpoint_of))
}

pub fn insert_checkpoint(conn: &mut AnyConnection, c: &Checkpoint, root: &Hash) -> QueryResult<()> {
    use base64::Engine;
    let issued = chrono::NaiveDateTime::parse_from_str(&c.issued_at, "%Y-%m-%dT%H:%M:%S%.fZ")
        .map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))?;
    let signature = base64::engine::general_purpose::STANDARD
        .decode(&c.signature)
        .map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))?;
    diesel::insert_into(audit_checkpoints::table)
        .values((
            audit_checkpoints::n.eq(c.n as i64),
            audit_checkpoints::tree_size.eq(c.tree_size as i64),
            audit_checkpoints::root_hash.eq(root.to_vec()),
            audit_checkpoints::issued_at.eq(issued),
            audit_checkpoints::key_id.eq(&c.key_id),
            audit_checkpoints::signature.eq(signature),
        ))
        .execute(conn)
        .map(|_| ())
}

/// What an auditor filters the sealed log by. Positions are [start, end).
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub start: u64,
    pub end: u64,
    pub actor: Option<String>,
    pub action: Option<String>,
    pub resource_id: Option<String>,
    pub outcome: Option<Outcome>,
}

impl Filter {
    /// Whether the selection is a whole stretch of the log, so it can be proved complete.
    pub fn is_contiguous(&self) -> bool {
        self.actor.is_none()
            && self.action.is_none()
            && self.resource_id.is_none()
            && self.outcome.is_none()
    }
}

/// A sealed position: its leaf and the event row, if the row still exists.
pub struct SealedRow {
    pub seq: i64,
    pub leaf_hash: Vec<u8>,
    pub event_id: String,
    pub event: Option<EventRow>,
}

/// Rows per database round trip while reading a stretch of the sealed log (an export, the
/// server's verification): large enough to amortise the query, small enough that memory stays
/// flat and no connection is held while a client reads.
pub const CHUNK: i64 = 4_000;

/// Up to `limit` sealed leaf hashes from position `from` on, in log order.
pub fn leaf_hashes(conn: &mut AnyConnection, from: u64, limit: i64) -> QueryResult<Vec<Hash>> {
    let rows: Vec<Vec<u8>> = audit_log_leaves::table
        .filter(audit_log_leaves::seq.ge(from as i64))
        .order(audit_log_leaves::seq.asc())
        .select(audit_log_leaves::leaf_hash)
        .limit(limit)
        .load(conn)?;
    rows.into_iter()
        .map(|h| {
            h.try_into().map_err(|_| {
                diesel::result::Error::DeserializationError("a stored hash is not 32 bytes".into())
            })
        })
        .collect()
}

/// Sealed events from position `from` on, in log order.
pub fn sealed_page(
    conn: &mut AnyConnection,
    f: &Filter,
    from: u64,
    limit: i64,
) -> QueryResult<Vec<SealedRow>> {
    // An empty stretch holds nothing; asking would only send the filter's text to SQL.
    if from.max(f.start) >= f.end {
        return Ok(Vec::new());
    }
    if f.is_contiguous() {
        return range_page(conn, f, from, limit);
    }
    filtered_page(conn, f, from, limit)
}

/// A stretch of the log, bounded to exactly the positions of one page, so the planner sees a
/// few thousand rows and joins them one by one through the two primary keys. Bounded only by
/// the range's end, the same join ran an export at 20,000 events/s (docs/PERFORMANCE.md).
fn range_page(
    conn: &mut AnyConnection,
    f: &Filter,
    from: u64,
    limit: i64,
) -> QueryResult<Vec<SealedRow>> {
    let lo = from.max(f.start);
    let bounded = Filter {
        start: lo,
        end: lo.saturating_add(limit as u64).min(f.end),
        ..f.clone()
    };
    match conn {
        // The stretch is at most `limit` rows, each joined through the two primary keys: a
        // nested loop is the plan. Left to itself the planner sometimes hashed the whole events
        // table per chunk instead (at 300,000 events: 92 ms a chunk of 4,000 against 8 ms by
        // nested loop, and a cost that grows with the log), or started parallel workers (62 ms
        // against 23 ms on 1M events). One statement sets all three for this transaction only.
        AnyConnection::Postgresql(_) => conn.transaction(|conn| {
            diesel::sql_query(
                "SELECT set_config('max_parallel_workers_per_gather', '0', true), \
                        set_config('enable_hashjoin', 'off', true), \
                        set_config('enable_mergejoin', 'off', true)",
            )
            .execute(conn)?;
            stretch_page(conn, &bounded, lo, limit)
        }),
        AnyConnection::Sqlite(_) => stretch_page(conn, &bounded, lo, limit),
    }
}

type Loaded = (i64, Vec<u8>, String, Option<EventRow>);

fn sealed_rows(rows: Vec<Loaded>) -> Vec<SealedRow> {
    rows.into_iter()
        .map(|(seq, leaf_hash, event_id, event)| SealedRow {
            seq,
            leaf_hash,
            event_id,
            event,
        })
        .collect()
}

/// Every position of a stretch, leaves joined to their events through the two primary keys
/// (`EventRow` has the table's columns in their declared order; the row may be gone).
fn stretch_page(
    conn: &mut AnyConnection,
    f: &Filter,
    from: u64,
    limit: i64,
) -> QueryResult<Vec<SealedRow>> {
    use audit_log_leaves as l;
    l::table
        .left_join(audit_events::table.on(audit_events::id.eq(l::event_id)))
        .filter(l::seq.ge(from.max(f.start) as i64))
        .filter(l::seq.lt(f.end as i64))
        .order(l::seq.asc())
        .limit(limit)
        .select((
            l::seq,
            l::leaf_hash,
            l::event_id,
            audit_events::all_columns.nullable(),
        ))
        .load::<Loaded>(conn)
        .map(sealed_rows)
}

/// The positions a filter selects, read from the search index in log order through the
/// filter's own index (actor, action and outcome, outcome, or resource id, each ending in the
/// position): a page costs the rows it returns whatever the log's size, and a filter nothing
/// matches costs one index probe.
fn filtered_page(
    conn: &mut AnyConnection,
    f: &Filter,
    from: u64,
    limit: i64,
) -> QueryResult<Vec<SealedRow>> {
    use audit_log_leaves as l;
    use audit_search as s;
    let (lo, hi) = (from.max(f.start) as i64, f.end as i64);
    let mut q = s::table
        .inner_join(l::table.on(l::seq.eq(s::seq)))
        .left_join(audit_events::table.on(audit_events::id.eq(l::event_id)))
        .filter(s::seq.ge(lo))
        .filter(s::seq.lt(hi))
        // The same bounds on the leaves: PostgreSQL carries an equality across the join but
        // not a range, and a merge join then read the leaves from position 0 (140 ms at
        // position 500,000 of 1M).
        .filter(l::seq.ge(lo))
        .filter(l::seq.lt(hi))
        .order(s::seq.asc())
        .limit(limit)
        .select((
            l::seq,
            l::leaf_hash,
            l::event_id,
            audit_events::all_columns.nullable(),
        ))
        .into_boxed();
    if let Some(v) = &f.actor {
        q = q.filter(s::actor_client_id.eq(v.clone()));
    }
    if let Some(v) = &f.action {
        q = q.filter(s::action.eq(v.clone()));
    }
    if let Some(v) = &f.resource_id {
        q = q.filter(s::resource_id.eq(v.clone()));
    }
    if let Some(v) = &f.outcome {
        q = q.filter(s::outcome.eq(v.code()));
    }
    q.load::<Loaded>(conn).map(sealed_rows)
}

/// The first sealed position whose event occurred at or after `t`, or `size` if none below it
/// did: the first whose running maximum reached `t` (every position before it occurred
/// earlier), one lookup in the search index whatever the log's size. A time range runs from
/// this position for its start to this position for its end, so consecutive ranges tile the
/// log; an event that occurred before the end but was committed after one that occurred at or
/// after it falls in the next range.
pub fn first_seq_from(
    conn: &mut AnyConnection,
    t: chrono::NaiveDateTime,
    size: u64,
) -> QueryResult<u64> {
    use audit_search as s;
    let first: Option<i64> = s::table
        .filter(s::occurred_max.ge(t))
        .order((s::occurred_max.asc(), s::seq.asc()))
        .select(s::seq)
        .first(conn)
        .optional()?;
    Ok(first.map_or(size, |f| (f as u64).min(size)))
}

/// The leaf of one event: (seq, leaf hash).
pub fn leaf_of(conn: &mut AnyConnection, event_id: &str) -> QueryResult<Option<(i64, Vec<u8>)>> {
    audit_log_leaves::table
        .filter(audit_log_leaves::event_id.eq(event_id))
        .select((audit_log_leaves::seq, audit_log_leaves::leaf_hash))
        .first(conn)
        .optional()
}
