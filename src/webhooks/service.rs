//! What each webhook request does: endpoints for a provider (its own only) and for an admin
//! (any provider's). Every change and every read is an access-log event in the work's own
//! transaction; a refusal (404, 409, 422) is logged in a transaction of its own.

use super::model::{self, check_url, AddressPolicy, EndpointStatus};
use super::store::{self, AttemptRow, EndpointRow, NewEndpoint};
use crate::auth::Caller;
use crate::db::{AnyConnection, Db};
use crate::error::{ApiError, ErrorCode, FieldError};
use crate::ids::ProviderId;

/// The rules a new URL is checked against (the same the delivery client sends under).
#[derive(Debug, Clone, Copy)]
pub struct UrlRules {
    pub https_only: bool,
    pub policy: AddressPolicy,
}

/// Whose endpoints a caller may touch: a provider its own, an admin everyone's.
#[derive(Debug, Clone)]
pub enum Scope {
    Provider(ProviderId),
    Admin,
}

impl Scope {
    fn provider(&self) -> Option<&ProviderId> {
        match self {
            Scope::Provider(p) => Some(p),
            Scope::Admin => None,
        }
    }
}

const LIMIT_REACHED: &str = "this provider already has the most webhook endpoints allowed (5); \
    delete one first";

/// The endpoint `id` if the scope may see it; another provider's is 404, like a missing one.
fn visible(conn: &mut AnyConnection, scope: &Scope, id: &str) -> Result<EndpointRow, ApiError> {
    let row = store::find(conn, id)?.ok_or(ApiError::NotFound)?;
    match scope.provider() {
        Some(p) if &row.provider_id != p => Err(ApiError::NotFound),
        _ => Ok(row),
    }
}

/// Creates an endpoint; its secret is in the returned row, shown this once.
pub async fn create(
    db: &Db,
    caller: Caller,
    provider_id: ProviderId,
    url: String,
    description: Option<String>,
    rules: UrlRules,
) -> Result<EndpointRow, ApiError> {
    let created_by = caller.client_id.clone();
    caller
        .audited_with_refusals(db, None, move |conn| {
            let checked = check_url(&url, rules.https_only, rules.policy).map_err(|why| {
                ApiError::Validation(vec![FieldError::member(
                    "/url",
                    ErrorCode::InvalidValue,
                    why.message(),
                )])
            })?;
            store::lock_provider(conn, &provider_id)?;
            if store::count_for_provider(conn, &provider_id)? >= model::MAX_ENDPOINTS_PER_PROVIDER {
                return Err(ApiError::Conflict {
                    detail: LIMIT_REACHED.into(),
                    allowed: None,
                });
            }
            let id = uuid::Uuid::now_v7().to_string();
            let secret = model::generate_secret();
            store::insert_endpoint(
                conn,
                &NewEndpoint {
                    id: &id,
                    provider_id: &provider_id,
                    url: checked.as_str(),
                    description: description.as_deref(),
                    secret: &secret,
                    created_by: &created_by,
                    now: crate::db::now(),
                },
            )?;
            let row = store::find(conn, &id)?.ok_or(ApiError::NotFound)?;
            Ok((row, vec![id]))
        })
        .await
}

pub async fn list(
    db: &Db,
    caller: Caller,
    scope: Scope,
    after: Option<String>,
    limit: i64,
) -> Result<Vec<EndpointRow>, ApiError> {
    caller
        .audited_with_refusals(db, None, move |conn| {
            let rows = store::list(conn, scope.provider(), after.as_deref(), limit)?;
            let ids = rows.iter().map(|r| r.id.clone()).collect();
            Ok((rows, ids))
        })
        .await
}

pub async fn get(
    db: &Db,
    caller: Caller,
    scope: Scope,
    id: String,
) -> Result<EndpointRow, ApiError> {
    caller
        .audited_with_refusals(db, Some(id.clone()), move |conn| {
            let row = visible(conn, &scope, &id)?;
            Ok((row, vec![id]))
        })
        .await
}

/// Deletes an endpoint with its undelivered events: nothing more is sent to it.
pub async fn delete(db: &Db, caller: Caller, scope: Scope, id: String) -> Result<(), ApiError> {
    caller
        .audited_with_refusals(db, Some(id.clone()), move |conn| {
            visible(conn, &scope, &id)?;
            store::delete_endpoint(conn, &id)?;
            Ok(((), vec![id]))
        })
        .await
}

/// A new secret; the old one keeps signing beside it for [`model::ROTATION_OVERLAP`]. Returns
/// the row with the new secret, shown this once.
pub async fn rotate_secret(
    db: &Db,
    caller: Caller,
    scope: Scope,
    id: String,
) -> Result<EndpointRow, ApiError> {
    caller
        .audited_with_refusals(db, Some(id.clone()), move |conn| {
            let row = visible(conn, &scope, &id)?;
            let now = crate::db::now();
            store::rotate_secret(
                conn,
                &row,
                &model::generate_secret(),
                now + model::ROTATION_OVERLAP,
            )?;
            let row = store::find(conn, &id)?.ok_or(ApiError::NotFound)?;
            Ok((row, vec![id]))
        })
        .await
}

const PING_DISABLED: &str = "the endpoint is disabled; nothing is sent to it";

/// Queues a `ping` delivery, sent and retried like any event.
pub async fn ping(db: &Db, caller: Caller, scope: Scope, id: String) -> Result<(), ApiError> {
    caller
        .audited_with_refusals(db, Some(id.clone()), move |conn| {
            let row = visible(conn, &scope, &id)?;
            if row.status == EndpointStatus::Disabled {
                return Err(ApiError::Conflict {
                    detail: PING_DISABLED.into(),
                    allowed: None,
                });
            }
            store::enqueue_ping(conn, &id, crate::db::now())?;
            Ok(((), vec![id]))
        })
        .await
}

/// The endpoint's latest attempts, newest first.
pub async fn deliveries(
    db: &Db,
    caller: Caller,
    scope: Scope,
    id: String,
    limit: i64,
) -> Result<Vec<AttemptRow>, ApiError> {
    caller
        .audited_with_refusals(db, Some(id.clone()), move |conn| {
            visible(conn, &scope, &id)?;
            let rows = store::attempts(conn, &id, None, limit)?;
            Ok((rows, vec![id]))
        })
        .await
}

/// An admin stops every delivery to an endpoint (undelivered events stay, unsent).
pub async fn disable(db: &Db, caller: Caller, id: String) -> Result<EndpointRow, ApiError> {
    caller
        .audited_with_refusals(db, Some(id.clone()), move |conn| {
            visible(conn, &Scope::Admin, &id)?;
            store::set_status(conn, &id, EndpointStatus::Disabled, crate::db::now())?;
            let row = store::find(conn, &id)?.ok_or(ApiError::NotFound)?;
            Ok((row, vec![id]))
        })
        .await
}
