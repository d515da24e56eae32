//! The server's verification: the model's [`Verifier`] fed from the database, over a range of
//! the log as of the latest checkpoint, plus the check for rows slipped in behind the sealer.

use super::merkle::{self, Frontier, Hash};
use super::outside;
use crate::outside::OutsideError;
use std::path::{Path, PathBuf};

use super::model::{
    compare_outside, format_time, AuditEvent, Checkpoint, Finding, FindingKind, PublicKeys, Report,
    Verifier, LATE_GRACE,
};
use super::proofs::checkpoint_for;
use super::record;
use super::store::{self, Filter, CHUNK};
use crate::db::{write_tx, AnyConnection, Db};
use crate::error::ApiError;

/// Logs the call, then re-derives positions [`start`, `end`) (default: up to the latest
/// checkpoint's size) and reports what it found.
/// With an outside log, the log is also compared with the checkpoints kept there, which
/// catches a tail that was truncated or rewritten in the database.
pub async fn verify(
    db: &Db,
    event: AuditEvent,
    keys: PublicKeys,
    (start, end): (u64, Option<u64>),
    outside: Option<PathBuf>,
) -> Result<Report, ApiError> {
    // Logged first, in its own short transaction (fail closed: no entry, no report). The pass
    // over the log that follows is a long read: it runs outside the writers' turn, which on
    // SQLite it would otherwise hold for seconds on a large log while every write waited (a
    // 30-minute soak saw writes time out behind it).
    let latest = db
        .run(move |conn| {
            write_tx(conn, |conn| {
                let latest = checkpoint_for(conn, None)?;
                record(conn, &[event])?;
                Ok::<_, ApiError>(latest)
            })
        })
        .await?;
    db.run_read(move |conn| {
        let mut report = verify_range(conn, &keys, &latest, start, end)?;
        if let Some(path) = outside {
            report
                .findings
                .extend(against_outside(conn, &keys, &latest, &path)?);
        }
        Ok(report)
    })
    .await
}

/// The log against the checkpoints kept in the outside log at `path` (none yet: nothing to
/// compare).
fn against_outside(
    conn: &mut AnyConnection,
    keys: &PublicKeys,
    latest: &Checkpoint,
    path: &Path,
) -> Result<Vec<Finding>, ApiError> {
    let kept = match outside::kept(path) {
        Ok(kept) => kept,
        Err(OutsideError::Read(_, e)) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(ApiError::Unavailable(e.to_string())),
    };
    let size = store::sealed_size(conn)?;
    // One pass over the sealed leaf hashes, stopping at each kept size on the way: the tree's
    // stored nodes would cost a few reads per size, and checkpoints are many.
    let mut frontier = Frontier::default();
    let mut root_at = |n: u64| -> Result<Hash, ApiError> {
        while frontier.size() < n {
            let hashes = store::leaf_hashes(conn, frontier.size(), CHUNK)?;
            if hashes.is_empty() {
                return Err(ApiError::Internal("a sealed leaf is missing".into()));
            }
            for h in hashes.into_iter().take((n - frontier.size()) as usize) {
                frontier.push_leaf(h);
            }
        }
        Ok(frontier.root())
    };
    compare_outside(&kept, keys, size, Some(latest), &mut root_at)
}

/// The same checks as the offline verifier, over the log as of `latest` (the checkpoint read
/// when the call was logged).
fn verify_range(
    conn: &mut AnyConnection,
    keys: &PublicKeys,
    latest: &Checkpoint,
    start: u64,
    end: Option<u64>,
) -> Result<Report, ApiError> {
    let size = latest.tree_size;
    let end = end.unwrap_or(size).min(size);
    let start = start.min(end);
    let checkpoints = store::checkpoints_from(conn, 0)?;
    let mut v = Verifier::new(keys, &checkpoints);
    let left = decoded(conn, &merkle::decompose(0, start))?;
    v.range_start(start, end, &left);
    let filter = Filter {
        start,
        end,
        ..Filter::default()
    };
    let mut next = start;
    loop {
        let rows = store::sealed_page(conn, &filter, next, CHUNK)?;
        let n = rows.len();
        for r in rows {
            next = r.seq as u64 + 1;
            match r.event {
                Some(e) => {
                    v.event(&e.logged(Some(r.seq as u64), Some(merkle::to_hex(&r.leaf_hash))))
                }
                None => {
                    let sealed: Hash = r.leaf_hash.try_into().unwrap_or([0; 32]);
                    v.missing(r.seq as u64, &r.event_id, sealed);
                }
            }
        }
        if (n as i64) < CHUNK {
            break;
        }
    }
    let right = decoded(conn, &merkle::decompose(end, size))?;
    v.range_end(size, &right);
    // A row that claims to be older than the sealed log's newest event by more than the grace,
    // yet is not sealed, was slipped in behind the sealer.
    if let Some(newest) = store::last_sealed_time(conn)? {
        if let Some(e) = store::unsealed_before(conn, newest - LATE_GRACE)? {
            let detail = format!(
                "event {} claims to have occurred at {} but is not in the sealed log, whose \
                 newest event ({}) is more than {} minutes later: it was added behind the \
                 sealer",
                e.id,
                format_time(e.occurred_at),
                format_time(newest),
                LATE_GRACE.num_minutes()
            );
            v.note(Finding {
                kind: FindingKind::Inserted,
                seq: None,
                event_id: Some(e.id),
                detail,
            });
        }
    }
    Ok(v.finish())
}

fn decoded(conn: &mut AnyConnection, parts: &[(u32, u64)]) -> Result<Vec<Hash>, ApiError> {
    parts
        .iter()
        .map(|&(level, index)| store::node(conn, level, index))
        .collect::<Result<_, _>>()
        .map_err(ApiError::from)
}
