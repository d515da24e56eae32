//! Searching the sealed log: an auditor's filters mapped onto log positions, and one page of
//! events in log order. The streamed export (`export.rs`) starts from the same selection.

use chrono::NaiveDateTime;
use serde::Serialize;
use utoipa::ToSchema;

use super::merkle;
use super::model::{AuditEvent, LoggedEvent, Outcome};
use super::store::{self, Filter, SealedRow};
use super::{cursor, record};
use crate::db::{write_tx, AnyConnection, Db};
use crate::error::ApiError;

/// The validated filters, with the time range still to be mapped onto log positions.
pub struct Selection {
    pub from: Option<NaiveDateTime>,
    pub to: Option<NaiveDateTime>,
    pub actor: Option<String>,
    pub action: Option<String>,
    pub resource_id: Option<String>,
    pub outcome: Option<Outcome>,
    pub after: Option<u64>,
    pub limit: i64,
    /// A filter no logged event can match: events hold no control characters (the log cleans
    /// a claimed client id), so text with one selects nothing, and never reaches SQL (a NUL
    /// byte is an error in PostgreSQL `text`).
    pub matches_nothing: bool,
}

/// One page of the sealed log, in log order.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventPage {
    pub items: Vec<LoggedEvent>,
    pub next_cursor: Option<String>,
    /// The log as of this checkpoint's size is what was searched.
    pub tree_size: u64,
}

/// Maps the time range onto the log as of the latest checkpoint: from the first position whose
/// event occurred at or after `from` up to, not including, the first one that occurred at or
/// after `to` (so adjacent ranges tile the log). The selection is a contiguous stretch of the
/// log, so an export of it can be proved complete.
/// Returns the latest checkpoint's size and the filter over those positions.
pub fn resolve(conn: &mut AnyConnection, sel: &Selection) -> Result<(u64, Filter), ApiError> {
    let size = store::latest_checkpoint(conn)?.map_or(0, |c| c.tree_size);
    let mut filter = Filter {
        start: 0,
        end: 0,
        actor: sel.actor.clone(),
        action: sel.action.clone(),
        resource_id: sel.resource_id.clone(),
        outcome: sel.outcome,
    };
    if sel.matches_nothing {
        return Ok((size, filter));
    }
    let start = match sel.from {
        Some(t) => store::first_seq_from(conn, t, size)?,
        None => 0,
    };
    let end = match sel.to {
        Some(t) => store::first_seq_from(conn, t, size)?,
        None => size,
    };
    filter.start = start;
    filter.end = end.max(start);
    Ok((size, filter))
}

/// One page of the selection, with the auditor's event in the same transaction.
pub async fn search(db: &Db, event: AuditEvent, sel: Selection) -> Result<EventPage, ApiError> {
    db.run(move |conn| {
        write_tx(conn, |conn| {
            let (size, filter) = resolve(conn, &sel)?;
            let from = sel.after.map_or(0, |a| a + 1);
            let rows = store::sealed_page(conn, &filter, from, sel.limit)?;
            let next_cursor = (rows.len() as i64 == sel.limit)
                .then(|| rows.last().map(|r| cursor::encode(r.seq as u64)))
                .flatten();
            record(conn, &[event])?;
            Ok(EventPage {
                items: rows.into_iter().filter_map(logged).collect(),
                next_cursor,
                tree_size: size,
            })
        })
    })
    .await
}

/// A sealed position as auditors read it; `None` when its event row is gone.
pub fn logged(r: SealedRow) -> Option<LoggedEvent> {
    let hash = merkle::to_hex(&r.leaf_hash);
    r.event.map(|e| e.logged(Some(r.seq as u64), Some(hash)))
}
