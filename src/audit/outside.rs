//! Checkpoints kept outside the database (`EAP_OUTSIDE_LOG`): each signed checkpoint is appended
//! there after it commits, and verification compares the log with them (see
//! [`compare_outside`](super::model::compare_outside)).

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::model::Checkpoint;
use crate::outside::{self, OutsideError, OutsideLog};

/// One line of the outside log: `{"kind":"checkpoint", …the checkpoint's fields…}`.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename = "checkpoint")]
struct Kept {
    #[serde(flatten)]
    checkpoint: Checkpoint,
}

/// Appends a checkpoint the database has committed.
pub fn keep(log: &OutsideLog, checkpoint: &Checkpoint) -> Result<(), OutsideError> {
    log.append(&Kept {
        checkpoint: checkpoint.clone(),
    })
}

/// The checkpoints kept in the outside log at `path`, in the order written.
pub fn kept(path: &Path) -> Result<Vec<Checkpoint>, OutsideError> {
    Ok(outside::read::<Kept>(path)?
        .into_iter()
        .map(|k| k.checkpoint)
        .collect())
}
