//! API client administration: what each request does, and the `admin create-client` command.
//! Secrets are hashed off the async workers; every change is logged in its own transaction.

use super::cache::AuthCache;
use super::caller::Caller;
use super::model::{generate_secret, hash_secret, Code, Role};
use super::store::{self, ClientRow, NewClient};
use crate::audit::{self, AuditEvent};
use crate::db::{AnyConnection, Db};
use crate::directory::store::{find_employer, find_provider};
use crate::error::{ApiError, ErrorCode};
use crate::ids::ClientId;

const REVOKED_ROTATION: &str = "a revoked client cannot get a new secret";
const SELF_REVOCATION: &str = "a client cannot revoke itself; use another admin client";

/// Creates a client and returns it with its secret (shown once).
pub async fn create(
    caller: Caller,
    db: &Db,
    new: NewClient,
) -> Result<(ClientRow, String), ApiError> {
    let secret = generate_secret();
    let hash = hashed(&secret).await?;
    let row = caller
        .audited(db, move |conn| {
            check_binding(conn, &new)?;
            let row = store::insert(conn, &new, &hash)?;
            let id = row.id.to_string();
            Ok((row, vec![id]))
        })
        .await?;
    Ok((row, secret))
}

pub async fn list(
    caller: Caller,
    db: &Db,
    after: Option<String>,
    limit: i64,
) -> Result<Vec<ClientRow>, ApiError> {
    caller
        .audited(db, move |conn| {
            let rows = store::list(conn, after.as_deref(), limit)?;
            let ids = rows.iter().map(|r| r.id.to_string()).collect();
            Ok((rows, ids))
        })
        .await
}

pub async fn get(caller: Caller, db: &Db, id: ClientId) -> Result<ClientRow, ApiError> {
    caller
        .audited(db, move |conn| {
            let row = store::find(conn, &id)?.ok_or(ApiError::NotFound)?;
            Ok((row, vec![id.into_string()]))
        })
        .await
}

/// Replaces a client's secret; the old one and every token issued under it stop working here
/// at once. Returns the client with its new secret (shown once).
pub async fn rotate_secret(
    caller: Caller,
    db: &Db,
    cache: &AuthCache,
    id: ClientId,
) -> Result<(ClientRow, String), ApiError> {
    let secret = generate_secret();
    let hash = hashed(&secret).await?;
    let row = caller
        .audited(db, move |conn| {
            let now = crate::db::now();
            let row = store::find(conn, &id)?.ok_or(ApiError::NotFound)?;
            if store::set_secret(conn, &id, &hash, now)? == 0 {
                return Err(ApiError::Conflict {
                    detail: REVOKED_ROTATION.into(),
                    allowed: None,
                });
            }
            crate::db::notify::client_changed(conn, id.as_str())?;
            let row = ClientRow {
                secret_rotated_at: now,
                ..row
            };
            Ok((row, vec![id.into_string()]))
        })
        .await?;
    cache.forget_client(row.id.as_str());
    Ok((row, secret))
}

/// Revokes a client for good; revoking a revoked client changes nothing.
pub async fn revoke(
    caller: Caller,
    db: &Db,
    cache: &AuthCache,
    id: ClientId,
) -> Result<ClientRow, ApiError> {
    if id == caller.client_id {
        return Err(ApiError::Conflict {
            detail: SELF_REVOCATION.into(),
            allowed: None,
        });
    }
    let row = caller
        .audited(db, move |conn| {
            let now = crate::db::now();
            store::find(conn, &id)?.ok_or(ApiError::NotFound)?;
            store::revoke(conn, &id, now)?;
            crate::db::notify::client_changed(conn, id.as_str())?;
            let row = store::find(conn, &id)?.ok_or(ApiError::NotFound)?;
            Ok((row, vec![id.into_string()]))
        })
        .await?;
    cache.forget_client(row.id.as_str());
    Ok(row)
}

/// Creates a client outside HTTP (the `admin create-client` command), logged like any other
/// creation. Returns the client and its secret, shown once.
pub fn create_from_cli(
    conn: &mut AnyConnection,
    new: &NewClient,
) -> Result<(ClientRow, String), ApiError> {
    let secret = generate_secret();
    let hash = hash_secret(&secret);
    let ctx = crate::extract::RequestCtx::command_line();
    let op = audit::operation("POST", "/v1/admin/clients")
        .ok_or_else(|| ApiError::Internal("client.create missing".into()))?;
    let row = crate::db::write_tx(conn, |conn| {
        check_binding(conn, new)?;
        let row = store::insert(conn, new, &hash)?;
        let mut event = AuditEvent::anonymous(&ctx, op, op.ok).resource(Some(row.id.as_str()));
        event.actor_role = Some(crate::audit::model::OPERATOR_ROLE.into());
        audit::record(conn, &[event])?;
        Ok::<_, ApiError>(row)
    })?;
    Ok((row, secret))
}

/// Hashing is deliberately slow; keep it off the async workers.
async fn hashed(secret: &str) -> Result<String, ApiError> {
    let s = secret.to_owned();
    tokio::task::spawn_blocking(move || hash_secret(&s))
        .await
        .map_err(|e| ApiError::Internal(format!("hashing task failed: {e}")))
}

/// An `hr_portal` names an existing active employer, a `provider` an existing active provider,
/// and the other roles neither.
fn check_binding(conn: &mut AnyConnection, new: &NewClient) -> Result<(), ApiError> {
    // The same answers the document's per-role schemas give (checked first for a request; the
    // command line reaches only this).
    let unexpected = |pointer: &str| {
        ApiError::invalid_member(
            pointer,
            ErrorCode::UnknownField,
            format!("a {} client is not bound to this", new.role.code()),
        )
    };
    match new.role {
        Role::HrPortal => {
            if new.provider_id.is_some() {
                return Err(unexpected("/provider_id"));
            }
            let id = new.employer_id.as_ref().ok_or_else(|| {
                ApiError::invalid_member(
                    "/employer_id",
                    ErrorCode::Required,
                    "an hr_portal client is bound to one employer",
                )
            })?;
            if !find_employer(conn, id)?.is_some_and(|e| e.active) {
                return Err(ApiError::unbound("employer"));
            }
        }
        Role::Provider => {
            if new.employer_id.is_some() {
                return Err(unexpected("/employer_id"));
            }
            let id = new.provider_id.as_ref().ok_or_else(|| {
                ApiError::invalid_member(
                    "/provider_id",
                    ErrorCode::Required,
                    "a provider client is bound to one provider",
                )
            })?;
            if !find_provider(conn, id)?.is_some_and(|p| p.active) {
                return Err(ApiError::unbound("provider"));
            }
        }
        Role::Auditor | Role::Admin => {
            if new.employer_id.is_some() {
                return Err(unexpected("/employer_id"));
            }
            if new.provider_id.is_some() {
                return Err(unexpected("/provider_id"));
            }
        }
    }
    Ok(())
}
