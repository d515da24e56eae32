//! The auditor's API: read and export the sealed access log, fetch signed checkpoints and
//! proofs, and have the server re-derive the log. Every call by an auditor is itself logged
//! (one event per call, never one per row returned), before anything is sent.

mod events;
mod proofs;
mod stats;
mod verify;

pub use events::{export_events, list_events, EventQuery, ExportQuery};
pub use proofs::{consistency_proof, inclusion_proof, list_checkpoints, public_key};
pub use stats::audit_stats;
pub use verify::verify_log;

pub use crate::audit::cursor::EventPaging;
