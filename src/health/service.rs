//! Readiness: the database answers, every migration is applied, the access log takes a
//! write, and a write commits (the disk is neither read-only nor full). Every request that touches data must log first (fail closed), so an instance whose
//! log cannot be written would answer every such request 503: it is not ready, and a balancer
//! should send traffic elsewhere.

use crate::audit::{self, AuditEvent};
use crate::db::Db;
use crate::error::ApiError;
use crate::extract::RequestCtx;

/// Why the probe's transaction is rolled back: its row must never reach the log.
const PROBE_ONLY: &str = "readiness probe rolled back";

pub async fn ready(db: &Db) -> Result<(), ApiError> {
    db.run(|conn| {
        crate::db::check_ready(conn).map_err(ApiError::Unavailable)?;
        probe_access_log(conn)?;
        probe_disk(conn)
    })
    .await
}

/// Commits one small write: the access-log probe is rolled back, and a write rolled back on
/// SQLite never reaches its file, so only a commit shows that the disk takes writes (a disk
/// turned read-only or full answers 503 here, as every request would). The counter makes every
/// commit write: SQLite leaves a row whose bytes would not change unwritten, and two probes in
/// one second set the same timestamp.
fn probe_disk(conn: &mut crate::db::AnyConnection) -> Result<(), ApiError> {
    use diesel::RunQueryDsl;
    let updated = crate::db::write_tx(conn, |c| {
        diesel::sql_query(
            "UPDATE readiness_probe SET probed_at = CURRENT_TIMESTAMP, probes = probes + 1 \
             WHERE id = 1",
        )
        .execute(c)
    });
    match updated {
        Ok(1) => Ok(()),
        Ok(n) => Err(ApiError::Internal(format!(
            "the readiness probe's row is missing ({n} updated)"
        ))),
        Err(e) => Err(ApiError::Unavailable(format!(
            "the database does not take a committed write: {e}"
        ))),
    }
}

/// Writes one access event in a transaction that is always rolled back.
fn probe_access_log(conn: &mut crate::db::AnyConnection) -> Result<(), ApiError> {
    let op = audit::operation("POST", "/oauth/token")
        .ok_or_else(|| ApiError::Internal("token operation missing".into()))?;
    let probe = AuditEvent::anonymous(&RequestCtx::command_line(), op, op.ok);
    let outcome = crate::db::write_tx(conn, |c| {
        audit::store::record(c, &[probe])?;
        Err::<(), _>(ApiError::Internal(PROBE_ONLY.into()))
    });
    match outcome {
        Err(ApiError::Internal(m)) if m == PROBE_ONLY => Ok(()),
        Err(e) => Err(ApiError::Unavailable(format!(
            "the access log cannot be written: {e}"
        ))),
        Ok(()) => Err(ApiError::Internal(PROBE_ONLY.into())),
    }
}
