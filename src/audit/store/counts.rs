//! Counting the sealed log over time. The sealer keeps counts per hour (by outcome, and by
//! outcome and actor) in the same transaction as each checkpoint, up to a checkpoint size it
//! records; a count over a window reads those for the whole hours inside it and counts only the
//! ragged ends event by event, all as of that size, in one statement (one snapshot).

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text, Timestamp};

use crate::audit::model::stats::{split, Bucket, GroupBy};
use crate::audit::model::Outcome;
use crate::codes::Code;
use crate::db::AnyConnection;

/// Leaves added to the hourly counts per step at most, while they catch up with the log (after
/// the upgrade that adds them, or checkpoints issued by an older instance): a step costs tens
/// of milliseconds, so no transaction (on SQLite, no writers' turn) is held long.
pub const CATCH_UP_LEAVES: i64 = 20_000;

/// The hour an event occurred in, as hours since the epoch: the one expression the two
/// dialects spell differently.
fn event_hour(conn: &AnyConnection) -> &'static str {
    match conn {
        AnyConnection::Postgresql(_) => {
            "CAST(floor(extract(epoch FROM e.occurred_at) / 3600) AS BIGINT)"
        }
        AnyConnection::Sqlite(_) => "(CAST(strftime('%s', e.occurred_at) AS INTEGER) / 3600)",
    }
}

/// The checkpoint size the hourly counts cover.
pub fn counted_size(conn: &mut AnyConnection) -> QueryResult<u64> {
    #[derive(QueryableByName)]
    struct Size {
        #[diesel(sql_type = BigInt)]
        tree_size: i64,
    }
    let q = diesel::sql_query("SELECT tree_size FROM audit_counts_state WHERE id = 1");
    let size: Size = match conn {
        AnyConnection::Postgresql(c) => q.get_result(c)?,
        AnyConnection::Sqlite(c) => q.get_result(c)?,
    };
    Ok(size.tree_size as u64)
}

/// The checkpoint size the counts move to next from `counted`: the largest checkpoint at most
/// [`CATCH_UP_LEAVES`] ahead, or the next one if even that is further. `None`: none is ahead.
fn next_counted_size(conn: &mut AnyConnection, counted: u64) -> QueryResult<Option<u64>> {
    use crate::db::schema::audit_checkpoints as c;
    use diesel::dsl::{max, min};
    let counted = counted as i64;
    let within: Option<i64> = c::table
        .filter(c::tree_size.gt(counted))
        .filter(c::tree_size.le(counted + CATCH_UP_LEAVES))
        .select(max(c::tree_size))
        .first(conn)?;
    let next = match within {
        Some(size) => Some(size),
        None => c::table
            .filter(c::tree_size.gt(counted))
            .select(min(c::tree_size))
            .first(conn)?,
    };
    Ok(next.map(|s| s as u64))
}

/// Adds the events of the next checkpoint step to the hourly counts and records the size they
/// now cover; `false` when they already cover the newest checkpoint. The caller holds the
/// sealer's lock (two instances counting the same step would count it twice): the sealer runs
/// it after inserting each checkpoint, so in the steady state the counts cover exactly the
/// newest one, and again in short transactions of their own while they catch up.
pub fn count_next_checkpoint(conn: &mut AnyConnection) -> QueryResult<bool> {
    let counted = counted_size(conn)?;
    let Some(next) = next_counted_size(conn, counted)? else {
        return Ok(false);
    };
    let hour = event_hour(conn);
    let (lo, hi) = match conn {
        AnyConnection::Postgresql(_) => ("$1", "$2"),
        AnyConnection::Sqlite(_) => ("?", "?"),
    };
    // SQLite reads `ON CONFLICT` after a join's `ON` only with a WHERE clause between them,
    // which both statements have.
    let by_outcome = format!(
        "INSERT INTO audit_hourly_outcomes (hour, outcome, n) \
         SELECT {hour}, e.outcome, COUNT(*) \
         FROM audit_log_leaves l JOIN audit_events e ON e.id = l.event_id \
         WHERE l.seq >= {lo} AND l.seq < {hi} GROUP BY 1, 2 \
         ON CONFLICT (hour, outcome) DO UPDATE SET n = audit_hourly_outcomes.n + excluded.n"
    );
    let by_actor = format!(
        "INSERT INTO audit_hourly_actors (hour, outcome, actor, n) \
         SELECT {hour}, e.outcome, COALESCE(e.actor_client_id, ''), COUNT(*) \
         FROM audit_log_leaves l JOIN audit_events e ON e.id = l.event_id \
         WHERE l.seq >= {lo} AND l.seq < {hi} GROUP BY 1, 2, 3 \
         ON CONFLICT (hour, outcome, actor) DO UPDATE SET n = audit_hourly_actors.n + excluded.n"
    );
    for sql in [by_outcome, by_actor] {
        let q = diesel::sql_query(sql)
            .bind::<BigInt, _>(counted as i64)
            .bind::<BigInt, _>(next as i64);
        match conn {
            AnyConnection::Postgresql(c) => q.execute(c)?,
            AnyConnection::Sqlite(c) => q.execute(c)?,
        };
    }
    let q = diesel::sql_query(format!(
        "UPDATE audit_counts_state SET tree_size = {lo} WHERE id = 1"
    ))
    .bind::<BigInt, _>(next as i64);
    match conn {
        AnyConnection::Postgresql(c) => q.execute(c)?,
        AnyConnection::Sqlite(c) => q.execute(c)?,
    };
    Ok(true)
}

/// One count of the access log's timeline: the bucket's number (hours or days since the epoch),
/// the key the events were grouped by, and how many there were; and the checkpoint size
/// counted, on every row (one row with no bucket when nothing was counted).
#[derive(Debug, QueryableByName)]
pub struct CountRow {
    #[diesel(sql_type = BigInt)]
    pub size: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub bucket: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    pub key: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub n: Option<i64>,
}

/// What `count_events` counts: sealed events that occurred in `[from, to)`, optionally of one
/// outcome, as of the size the hourly counts cover.
pub struct CountQuery {
    pub from: chrono::NaiveDateTime,
    pub to: chrono::NaiveDateTime,
    pub bucket: Bucket,
    pub by: GroupBy,
    pub outcome: Option<Outcome>,
    pub limit: i64,
}

/// Counts per bucket and key: the whole hours of the window from the hourly counts, its head
/// and tail (less than an hour each) from the events through the `occurred_at` index, each
/// event's seal through the leaves' unique `event_id`; all below the counted size, read in the
/// same statement as that size.
pub fn count_events(conn: &mut AnyConnection, q: &CountQuery) -> QueryResult<Vec<CountRow>> {
    let width = q.bucket.hours();
    let (table, hourly_key, event_key) = match q.by {
        GroupBy::Outcome => ("audit_hourly_outcomes", "r.outcome", "e.outcome"),
        GroupBy::Actor => (
            "audit_hourly_actors",
            "NULLIF(r.actor, '')",
            "e.actor_client_id",
        ),
    };
    let hour = event_hour(conn);
    let pg = matches!(conn, AnyConnection::Postgresql(_));
    let mut n = 0;
    let mut p = || {
        n += 1;
        if pg {
            format!("${n}")
        } else {
            "?".to_owned()
        }
    };
    let (h0, h1, o1) = (p(), p(), q.outcome.map(|_| p()));
    let (from, head_end, tail_start, to, o2) = (p(), p(), p(), p(), q.outcome.map(|_| p()));
    let limit = p();
    let only = |table: &str, o: &Option<String>| {
        o.as_ref()
            .map(|o| format!("AND {table}.outcome = {o}"))
            .unwrap_or_default()
    };
    let (hourly_outcome, event_outcome) = (only("r", &o1), only("e", &o2));
    let sql = format!(
        "WITH s AS (SELECT tree_size FROM audit_counts_state WHERE id = 1) \
         SELECT s.tree_size AS size, x.bucket, x.key, x.n FROM s LEFT JOIN ( \
           SELECT bucket, key, CAST(SUM(n) AS BIGINT) AS n FROM ( \
             SELECT r.hour / {width} AS bucket, {hourly_key} AS key, r.n AS n \
             FROM {table} r WHERE r.hour >= {h0} AND r.hour < {h1} {hourly_outcome} \
             UNION ALL \
             SELECT {hour} / {width} AS bucket, {event_key} AS key, 1 AS n \
             FROM audit_events e JOIN audit_log_leaves l ON l.event_id = e.id \
             WHERE ((e.occurred_at >= {from} AND e.occurred_at < {head_end}) \
                 OR (e.occurred_at >= {tail_start} AND e.occurred_at < {to})) \
               AND l.seq < (SELECT tree_size FROM s) {event_outcome} \
           ) u GROUP BY bucket, key \
         ) x ON 1 = 1 ORDER BY x.bucket, x.key LIMIT {limit}"
    );
    let parts = split(q.from, q.to);
    macro_rules! run {
        ($c:expr) => {{
            let query = diesel::sql_query(sql)
                .bind::<BigInt, _>(parts.hours.0)
                .bind::<BigInt, _>(parts.hours.1);
            match q.outcome {
                Some(o) => query
                    .bind::<Text, _>(o.code())
                    .bind::<Timestamp, _>(q.from)
                    .bind::<Timestamp, _>(parts.head_end)
                    .bind::<Timestamp, _>(parts.tail_start)
                    .bind::<Timestamp, _>(q.to)
                    .bind::<Text, _>(o.code())
                    .bind::<BigInt, _>(q.limit)
                    .load($c),
                None => query
                    .bind::<Timestamp, _>(q.from)
                    .bind::<Timestamp, _>(parts.head_end)
                    .bind::<Timestamp, _>(parts.tail_start)
                    .bind::<Timestamp, _>(q.to)
                    .bind::<BigInt, _>(q.limit)
                    .load($c),
            }
        }};
    }
    match conn {
        AnyConnection::Postgresql(c) => run!(c),
        AnyConnection::Sqlite(c) => run!(c),
    }
}
