//! The sealer: the one background job that gives access events their log positions, extends
//! the Merkle tree, and issues signed checkpoints.
//!
//! Requests only insert events; they never wait for sealing. Every instance runs the job, but on
//! PostgreSQL each batch and each checkpoint first takes a transaction-scoped advisory lock, so
//! exactly one instance assigns positions at a time and a crashed leader is replaced at the next
//! tick. The sealer writes no access events itself.

use std::sync::Arc;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::merkle::{self, Frontier, Hash};
use super::model::{Checkpoint, LoggedEvent};
use super::store::{self, NewLeaf, NewNode};
use crate::db::{write_tx, AnyConnection, Backend, Db};
use crate::error::ApiError;
use crate::keys::{Keys, TokenKey};
use crate::outside::OutsideLog;

/// Any constant all instances agree on; names the sealer's advisory lock.
const SEAL_LOCK: i64 = 0x6561_705f_7365_616c;
/// Events sealed per transaction on PostgreSQL. Short transactions keep the horizon moving: a
/// provider's event committed while a batch is being sealed is held back from its feed until
/// that batch commits (`workflow::store::feed`), so a batch's length is added to long-poll
/// wake-ups. 5,000 took about 150 ms once the search index was filled in the same
/// transaction; 1,000 take about 30 ms.
const BATCH_POSTGRES: i64 = 1_000;
/// On SQLite a batch is a write transaction, which holds every other writer of the process
/// for its length (`Db::run`). Whole ticks in one turn (a second of events under
/// `bench/sqlite.sh`) held the other writers for p50 24 ms, p90 49 ms, up to 219 ms; a batch of
/// 100 takes a few milliseconds, and the writers waiting for the database get their turns in
/// between (the job takes one per batch).
const BATCH_SQLITE: i64 = 100;
/// At most this many events sealed before a tick issues its checkpoint.
const MAX_EVENTS_PER_TICK: i64 = 1_000_000;

fn batch_size(backend: Backend) -> i64 {
    match backend {
        Backend::Postgres => BATCH_POSTGRES,
        Backend::Sqlite => BATCH_SQLITE,
    }
}

/// How many batches a tick seals at most: bounded, so a flood of events cannot postpone the
/// checkpoint (what is left waits for the next tick).
pub fn max_batches_per_tick(backend: Backend) -> usize {
    (MAX_EVENTS_PER_TICK / batch_size(backend)) as usize
}

/// What one [`seal_batch`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Batch {
    /// Another instance holds the sealer's lock: it seals.
    Busy,
    /// A full batch: more may be pending.
    Full,
    /// Everything pending was sealed.
    CaughtUp,
}

/// Seals one batch of pending events.
pub fn seal_batch(conn: &mut AnyConnection) -> Result<Batch, ApiError> {
    let limit = batch_size(conn.backend());
    write_tx(conn, |conn| {
        if !crate::db::try_xact_lock(conn, SEAL_LOCK)? {
            return Ok(Batch::Busy);
        }
        let size = store::sealed_size(conn)?;
        let (major, minor) = store::high_water(conn, size)?;
        let rows = store::pending(conn, (major, &minor), limit)?;
        if rows.is_empty() {
            return Ok(Batch::CaughtUp);
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
        Ok(if (n as i64) < limit {
            Batch::CaughtUp
        } else {
            Batch::Full
        })
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

/// One tick on one connection: seal everything pending, then issue a checkpoint. Tests call
/// this with their own clock; the background job runs [`tick`].
pub fn run(
    conn: &mut AnyConnection,
    key: &TokenKey,
    now: NaiveDateTime,
) -> Result<Option<Checkpoint>, ApiError> {
    for _ in 0..max_batches_per_tick(conn.backend()) {
        match seal_batch(conn)? {
            Batch::Busy => return Ok(None),
            Batch::CaughtUp => break,
            Batch::Full => {}
        }
    }
    issue_checkpoint(conn, key, now)
}

/// One tick of the background job: what [`run`] does, with each batch and the checkpoint in a
/// turn of their own (`Db::run`): on SQLite a turn holds every other writer of the process, and
/// a whole tick in one turn held submissions for up to 219 ms. Then the new checkpoint goes to
/// the outside log, after its turn (the append waits for the disk) and after the commit: a
/// checkpoint kept outside that the database lacks would look like a truncated log. One that
/// fails to go out is covered by the next (each signs the whole log), so that failure is only
/// logged. `None` when another instance leads.
pub async fn tick(
    db: &Db,
    keys: Arc<Keys>,
    outside: &OutsideLog,
) -> Result<Option<Checkpoint>, ApiError> {
    for _ in 0..max_batches_per_tick(db.backend()) {
        match db.run(seal_batch).await? {
            Batch::Busy => return Ok(None),
            Batch::CaughtUp => break,
            Batch::Full => {}
        }
    }
    let checkpoint = db
        .run(move |c| issue_checkpoint(c, &keys.checkpoint, crate::db::now()))
        .await?;
    if let Some(c) = checkpoint.clone() {
        let outside = outside.clone();
        actix_web::web::block(move || {
            if let Err(e) = super::outside::keep(&outside, &c) {
                tracing::warn!(error = %e, "{NOT_KEPT}");
            }
        })
        .await
        .map_err(|e| ApiError::Internal(format!("blocking task failed: {e}")))?;
    }
    Ok(checkpoint)
}

const NOT_KEPT: &str = "checkpoint not written to the outside log; the next one will be";
