//! The access log: who touched what, when, from where, and whether they were allowed.
//!
//! Every event is written through [`store::record`] inside the transaction of the work it
//! records; if it cannot be written the request fails with 503 and nothing is committed.

pub mod http;
pub mod merkle;
pub mod model;
pub mod seal;
pub mod store;

pub use model::{operation, AuditEvent, Operation, Outcome};
pub use store::record;

use crate::auth::Caller;
use crate::db::{write_tx, AnyConnection, Db};
use crate::error::ApiError;

/// Runs `work` in one write transaction and records, in that same transaction, one event for
/// each resource id it returns (none for an empty read). If the events cannot be written the
/// work is rolled back and the caller gets 503.
pub async fn audited<T, F>(db: &Db, caller: Caller, status: u16, work: F) -> Result<T, ApiError>
where
    F: FnOnce(&mut AnyConnection) -> Result<(T, Vec<String>), ApiError> + Send + 'static,
    T: Send + 'static,
{
    db.run(move |conn| {
        write_tx(conn, |conn| {
            let (value, ids) = work(conn)?;
            let events: Vec<AuditEvent> = ids
                .iter()
                .map(|id| caller.event(Some(id), status))
                .collect();
            record(conn, &events)?;
            Ok(value)
        })
    })
    .await
}
