//! The access log: who touched what, when, from where, and whether they were allowed.
//!
//! Every event is written through [`store::record`] inside the transaction of the work it
//! records (a caller's `audited` runs work and events together); if it cannot be written the
//! request fails with 503 and nothing is committed.

pub mod cursor;
pub mod export;
pub mod http;
pub mod merkle;
pub mod model;
pub mod outside;
pub mod proofs;
pub mod seal;
pub mod search;
pub mod stats;
pub mod store;
pub mod verify;

pub use model::{operation, AuditEvent, Operation, Outcome};
pub use store::record;
