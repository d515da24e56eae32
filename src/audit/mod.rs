//! The access log: who touched what, when, from where, and whether they were allowed.
//!
//! Every event is written through [`store::record`] inside the transaction of the work it
//! records; if it cannot be written the request fails with 503 and nothing is committed.

pub mod model;
pub mod store;

pub use model::{operation, AuditEvent, Operation, Outcome};
pub use store::record;
