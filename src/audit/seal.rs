//! The sealer: the one background job that gives access events their log positions, extends
//! the Merkle tree, and issues signed checkpoints.
//!
//! Requests only insert events; they never wait for sealing. Every instance runs the job, but on
//! PostgreSQL each batch and each checkpoint first takes a transaction-scoped advisory lock, so
//! exactly one instance assigns positions at a time and a crashed leader is replaced at the next
//! tick. The sealer writes no access events itself.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::merkle::{self, Frontier, Hash};
use super::model::{Checkpoint, LoggedEvent};
use super::store::{self, NewLeaf, NewNode};
use crate::db::{write_tx, AnyConnection};
use crate::error::ApiError;
use crate::keys::TokenKey;
use crate::outside::OutsideLog;

/// Any constant all instances agree on; names the sealer's advisory lock.
const SEAL_LOCK: i64 = 0x6561_705f_7365_616c;
/// Events sealed per transaction. Short transactions keep the PostgreSQL horizon moving: a
/// provider's event committed while a batch is being sealed is held back from its feed until
/// that batch commits (`workflow::store::feed`), so a batch's length is added to long-poll
/// wake-ups. 5,000 took about 150 ms once the search index was filled in the same
/// transaction; 1,000 take about 30 ms.
const BATCH: i64 = 1_000;
/// At most this many batches (1,000,000 events) before a tick issues its checkpoint.
const MAX_BATCHES_PER_TICK: usize = 1_000;

/// Seals one batch of pending events. `None` when another instance holds the lock.
pub fn seal_batch(conn: &mut AnyConnection) -> Result<Option<usize>, ApiError> {
    write_tx(conn, |conn| {
        if !crate::db::try_xact_lock(conn, SEAL_LOCK)? {
            return Ok(None);
        }
        let size = store::sealed_size(conn)?;
        let (major, minor) = store::high_water(conn, size)?;
        let rows = store::pending(conn, (major, &minor), BATCH)?;
        if rows.is_empty() {
            return Ok(Some(0));
        }
        let shape = merkle::decompose(0, size);
        let parts: Vec<Hash> = shape
            .iter()
            .map(|&(level, index)| store::node(conn, level, index))
            .collect::<QueryResult<_>>()?;
        let mut frontier = Frontier::from_parts(size, &parts)
            .ok_or_else(|| ApiError::Internal("sealed log frontier has the wrong shape".into()))?;
        let mut leaves = Vec::with_capacity(rows.len());
        let mut nodes = Vec::with_capacity(rows.len());
        let n = rows.len();
        for row in rows {
            let seq = frontier.size() as i64;
            let event: LoggedEvent = row.event.logged(None, None);
            let hash = event.leaf_hash();
            for (level, index, h) in frontier.push(hash) {
                if level > 0 {
                    nodes.push(NewNode {
                        level: level as i32,
                        idx: index as i64,
                        hash: h.to_vec(),
                    });
                }
            }
            leaves.push(NewLeaf {
                seq,
                event_id: event.id,
                leaf_hash: hash.to_vec(),
                pos_major: row.pos_major,
                pos_minor: row.pos_minor,
            });
        }
        store::insert_sealed(conn, &leaves, &nodes)?;
        Ok(Some(n))
    })
}

/// Signs and stores a checkpoint of the whole sealed log as of now, even when nothing new was
/// sealed (an idle log still proves it is alive and unchanged), and brings the hourly counts
/// up to it. `None` without the lock.
pub fn issue_checkpoint(
    conn: &mut AnyConnection,
    key: &TokenKey,
    now: NaiveDateTime,
) -> Result<Option<Checkpoint>, ApiError> {
    write_tx(conn, |conn| {
        if !crate::db::try_xact_lock(conn, SEAL_LOCK)? {
            return Ok(None);
        }
        let size = store::sealed_size(conn)?;
        let root = merkle::root(&mut |level, index| store::node(conn, level, index), size)?;
        let n = store::latest_checkpoint(conn)?.map_or(0, |c| c.n + 1);
        let checkpoint = Checkpoint::sign(n, size, &root, now, &key.kid, &key.signing);
        store::insert_checkpoint(conn, &checkpoint, &root)?;
        // In the checkpoint's transaction: the hourly counts never cover a size no checkpoint
        // signs, and in the steady state they cover this one.
        store::counts::count_next_checkpoint(conn)?;
        Ok(Some(checkpoint))
    })
}

/// One step of the hourly counts catching up with the log, in a transaction of its own under
/// the sealer's lock: `true` when it moved them (call again), `false` when they are current or
/// another instance holds the lock.
pub fn catch_up_counts(conn: &mut AnyConnection) -> Result<bool, ApiError> {
    write_tx(conn, |conn| {
        if !crate::db::try_xact_lock(conn, SEAL_LOCK)? {
            return Ok(false);
        }
        Ok(store::counts::count_next_checkpoint(conn)?)
    })
}

/// Whether committed events are left unsealed only because the PostgreSQL commit horizon
/// holds them back (a transaction elsewhere in the cluster still runs).
pub fn held_back(conn: &mut AnyConnection) -> Result<bool, ApiError> {
    let size = store::sealed_size(conn)?;
    let (major, minor) = store::high_water(conn, size)?;
    Ok(store::held_back(conn, (major, &minor))?)
}

/// One tick of the job: seal everything pending, then issue a checkpoint. Tests call this with
/// their own clock instead of running the background task.
pub fn run(
    conn: &mut AnyConnection,
    key: &TokenKey,
    now: NaiveDateTime,
) -> Result<Option<Checkpoint>, ApiError> {
    // Bounded, so a flood of events cannot postpone the checkpoint: what is left waits for the
    // next tick.
    for _ in 0..MAX_BATCHES_PER_TICK {
        match seal_batch(conn)? {
            None => return Ok(None),
            Some(n) if (n as i64) < BATCH => break,
            Some(_) => {}
        }
    }
    issue_checkpoint(conn, key, now)
}

/// One tick as the background job runs it: [`run`], then the new checkpoint appended to the
/// outside log. After the commit: a checkpoint kept outside that the database lacks would look
/// like a truncated log. One that fails to go out is covered by the next (each signs the whole
/// log), so the failure is only logged.
pub fn run_and_keep(
    conn: &mut AnyConnection,
    key: &TokenKey,
    now: NaiveDateTime,
    outside: &OutsideLog,
) -> Result<Option<Checkpoint>, ApiError> {
    let checkpoint = run(conn, key, now)?;
    if let Some(c) = &checkpoint {
        if let Err(e) = super::outside::keep(outside, c) {
            tracing::warn!(error = %e, "{NOT_KEPT}");
        }
    }
    Ok(checkpoint)
}

const NOT_KEPT: &str = "checkpoint not written to the outside log; the next one will be";
