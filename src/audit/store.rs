use diesel::prelude::*;

use super::model::AuditEvent;
use crate::db::schema::audit_events;
use crate::db::AnyConnection;
use crate::error::ApiError;

#[derive(Insertable)]
#[diesel(table_name = audit_events)]
struct NewRow<'a> {
    id: &'a str,
    occurred_at: chrono::NaiveDateTime,
    actor_client_id: Option<&'a str>,
    actor_role: Option<&'a str>,
    tenant_id: Option<&'a str>,
    action: &'a str,
    resource_type: &'a str,
    resource_id: Option<&'a str>,
    outcome: &'a str,
    http_status: i32,
    request_id: &'a str,
    source_addr: Option<&'a str>,
}

/// Appends events in the caller's transaction. Any failure is `AuditUnavailable` (503), which
/// rolls the transaction back: no access-log entry, no committed change.
pub fn record(conn: &mut AnyConnection, events: &[AuditEvent]) -> Result<(), ApiError> {
    if events.is_empty() {
        return Ok(());
    }
    let rows: Vec<NewRow> = events
        .iter()
        .map(|e| NewRow {
            id: &e.id,
            occurred_at: e.occurred_at,
            actor_client_id: e.actor_client_id.as_deref(),
            actor_role: e.actor_role.as_deref(),
            tenant_id: e.tenant_id.as_deref(),
            action: &e.action,
            resource_type: &e.resource_type,
            resource_id: e.resource_id.as_deref(),
            outcome: e.outcome.as_str(),
            http_status: i32::from(e.http_status),
            request_id: &e.request_id,
            source_addr: e.source_addr.as_deref(),
        })
        .collect();
    // One statement for the whole batch (a page of ten referrals is ten events). The derived
    // MultiConnection cannot batch-insert, so the statement goes to the inner connection.
    let insert = diesel::insert_into(audit_events::table).values(&rows);
    match conn {
        AnyConnection::Postgresql(c) => insert.execute(c),
        AnyConnection::Sqlite(c) => insert.execute(c),
    }
    .map(|_| ())
    .map_err(|e| ApiError::AuditUnavailable(format!("access-log write failed: {e}")))
}

/// Writes events on their own, for refusals that have no other work to commit.
pub fn record_alone(conn: &mut AnyConnection, events: &[AuditEvent]) -> Result<(), ApiError> {
    crate::db::write_tx(conn, |conn| record(conn, events))
}
