//! Counting the sealed log over time, for the console's charts: events per hour or day, split
//! by outcome or by actor, counted by the database rather than by paging through events, and
//! mostly from the hourly counts the sealer keeps (`store::counts`), so a month of a large log
//! costs a few thousand rows.

use chrono::NaiveDateTime;
use serde::Serialize;
use utoipa::ToSchema;

use super::model::stats::{Bucket, GroupBy, MAX_ROWS};
use super::model::{format_time, AuditEvent, Outcome};
use super::record;
use super::store::counts;
use crate::db::{write_tx, Db};
use crate::error::ApiError;

/// A checked request for counts: `from < to`, within the bucket's window.
pub struct StatsSelection {
    pub from: NaiveDateTime,
    pub to: NaiveDateTime,
    pub bucket: Bucket,
    pub by: GroupBy,
    pub outcome: Option<Outcome>,
}

/// Counts of the sealed log, per bucket and key. Buckets with no events are left out.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AccessStats)]
pub struct Stats {
    #[schema(format = DateTime)]
    pub from: String,
    #[schema(format = DateTime)]
    pub to: String,
    pub bucket: Bucket,
    pub by: GroupBy,
    /// The log as of this checkpoint's size is what was counted (as a search of the same
    /// window would list): the newest checkpoint, except for a while after an upgrade, when
    /// the counts catch up with a large log (20,000 events a step) and this trails.
    pub tree_size: u64,
    /// In bucket order, then key order.
    pub counts: Vec<StatsCount>,
    /// More than 10,000 (bucket, key) pairs: the counts stop there. Narrow the window.
    pub truncated: bool,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AccessStatsCount)]
pub struct StatsCount {
    /// The bucket's start, UTC (an hour or a day).
    #[schema(format = DateTime)]
    pub start: String,
    /// The outcome, or the actor's client id (null: anonymous or unknown caller).
    pub key: Option<String>,
    pub count: u64,
}

/// The counts, with the auditor's event in the same transaction (logged once per call).
pub async fn stats(db: &Db, event: AuditEvent, sel: StatsSelection) -> Result<Stats, ApiError> {
    db.run(move |conn| {
        write_tx(conn, |conn| {
            let rows = counts::count_events(
                conn,
                &counts::CountQuery {
                    from: sel.from,
                    to: sel.to,
                    bucket: sel.bucket,
                    by: sel.by,
                    outcome: sel.outcome,
                    limit: MAX_ROWS + 1,
                },
            )?;
            record(conn, &[event])?;
            let tree_size = rows.first().map_or(0, |r| r.size as u64);
            let mut counts: Vec<StatsCount> = rows
                .into_iter()
                .filter_map(|r| {
                    Some(StatsCount {
                        start: sel.bucket.start(r.bucket?),
                        key: r.key,
                        count: r.n? as u64,
                    })
                })
                .collect();
            let truncated = counts.len() as i64 > MAX_ROWS;
            counts.truncate(MAX_ROWS as usize);
            Ok(Stats {
                from: format_time(sel.from),
                to: format_time(sel.to),
                bucket: sel.bucket,
                by: sel.by,
                tree_size,
                counts,
                truncated,
            })
        })
    })
    .await
}
