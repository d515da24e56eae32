//! Checkpoints and proofs: the signed tree heads, where an event sits in the log (inclusion),
//! and that a newer log extends an older one (consistency). Each call is logged once, in the
//! transaction that reads what it answers.

use serde::Serialize;
use utoipa::ToSchema;

use super::merkle::{self, Hash};
use super::model::{AuditEvent, Checkpoint};
use super::{cursor, record, store};
use crate::db::{write_tx, AnyConnection, Db};
use crate::error::ApiError;

const NOT_COVERED: &str = "the event was sealed after this checkpoint; ask again later";

#[derive(Debug, Serialize, ToSchema)]
pub struct CheckpointPage {
    /// The newest checkpoint (absent before the first is issued).
    pub latest: Option<Checkpoint>,
    /// History, newest first.
    pub items: Vec<Checkpoint>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InclusionProof {
    pub event_id: String,
    pub seq: u64,
    pub leaf_hash: String,
    /// The signed checkpoint the proof leads to.
    pub checkpoint: Checkpoint,
    /// RFC 6962 audit path, leaf side first, lowercase hex.
    pub audit_path: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConsistencyProof {
    /// The older tree size the proof starts from.
    pub from_size: u64,
    /// The newer tree size (the newer checkpoint's).
    pub to_size: u64,
    /// The latest checkpoint the database holds of size `from_size`, if any. Verify the proof
    /// against the checkpoint you hold, not this one: the point is to check that the log has
    /// not changed since you saw it.
    pub older: Option<Checkpoint>,
    /// The newer checkpoint (`to_size`).
    pub newer: Checkpoint,
    /// RFC 6962 consistency proof, lowercase hex.
    pub proof: Vec<String>,
}

fn hexes(hashes: &[Hash]) -> Vec<String> {
    hashes.iter().map(|h| merkle::to_hex(h)).collect()
}

/// The checkpoint of `size`, or the latest.
pub fn checkpoint_for(conn: &mut AnyConnection, size: Option<u64>) -> Result<Checkpoint, ApiError> {
    match size {
        // No such checkpoint: there is nothing at that address (404), as for an unknown id.
        Some(s) => store::checkpoint_of_size(conn, s)?.ok_or(ApiError::NotFound),
        None => store::latest_checkpoint(conn)?.ok_or_else(|| ApiError::Conflict {
            detail: "no checkpoint has been issued yet".into(),
            allowed: None,
        }),
    }
}

/// The latest checkpoint and one page of history before issue number `before`.
pub async fn checkpoints(
    db: &Db,
    event: AuditEvent,
    before: Option<u64>,
    limit: i64,
) -> Result<CheckpointPage, ApiError> {
    db.run(move |conn| {
        write_tx(conn, |conn| {
            let latest = store::latest_checkpoint(conn)?;
            let items = store::checkpoints(conn, before, limit)?;
            record(conn, &[event])?;
            let next_cursor = (items.len() as i64 == limit)
                .then(|| items.last().map(|c| cursor::encode(c.n)))
                .flatten();
            Ok(CheckpointPage {
                latest,
                items,
                next_cursor,
            })
        })
    })
    .await
}

/// The proof that event `id` is in the log of checkpoint size `tree_size` (default the latest).
pub async fn inclusion(
    db: &Db,
    event: AuditEvent,
    id: String,
    tree_size: Option<u64>,
) -> Result<InclusionProof, ApiError> {
    db.run(move |conn| {
        write_tx(conn, |conn| {
            record(conn, &[event])?;
            let (seq, leaf) = store::leaf_of(conn, &id)?.ok_or(ApiError::NotFound)?;
            let checkpoint = checkpoint_for(conn, tree_size)?;
            if seq as u64 >= checkpoint.tree_size {
                return Err(ApiError::Conflict {
                    detail: NOT_COVERED.into(),
                    allowed: None,
                });
            }
            let path = merkle::inclusion_proof(
                &mut |l, i| store::node(conn, l, i),
                seq as u64,
                checkpoint.tree_size,
            )?;
            Ok(InclusionProof {
                event_id: id,
                seq: seq as u64,
                leaf_hash: merkle::to_hex(&leaf),
                checkpoint,
                audit_path: hexes(&path),
            })
        })
    })
    .await
}

/// The proof that the log of size `to` (default the latest checkpoint) extends that of `from`
/// (the query's `to_size` and `from_size`).
pub async fn consistency(
    db: &Db,
    event: AuditEvent,
    from: u64,
    to: Option<u64>,
) -> Result<ConsistencyProof, ApiError> {
    db.run(move |conn| {
        write_tx(conn, |conn| {
            record(conn, &[event])?;
            let to = checkpoint_for(conn, to)?;
            // A proof from a larger log to a smaller one does not exist (RFC 9162 §2.1.4).
            if from > to.tree_size {
                return Err(ApiError::NotFound);
            }
            // Any smaller size has a proof, whether or not this database still holds a
            // checkpoint of it: an auditor's own checkpoint is what the proof is checked
            // against, and a log whose checkpoints were removed must still answer for it.
            let older = store::checkpoint_of_size(conn, from)?;
            let proof =
                merkle::consistency_proof(&mut |l, i| store::node(conn, l, i), from, to.tree_size)?;
            Ok(ConsistencyProof {
                from_size: from,
                to_size: to.tree_size,
                older,
                newer: to,
                proof: hexes(&proof),
            })
        })
    })
    .await
}
