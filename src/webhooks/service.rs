//! What each webhook request does: endpoints for a provider (its own only), for an admin (any
//! provider's), and the operators' alert endpoints (an admin's). Every change and every read is an access-log event in the work's own
//! transaction; a refusal (404, 409, 422) is logged in a transaction of its own.

use super::model::{self, check_url, AddressPolicy, EndpointStatus};
use super::store::{self, AttemptRow, EndpointRow, NewEndpoint, Side};
use crate::auth::Caller;
use crate::db::{AnyConnection, Db};
use crate::error::{ApiError, ErrorCode, FieldError};
use crate::ids::ProviderId;
use crate::keys::Keys;

/// What creating or rotating answers: the endpoint, and its new secret in plain, shown once.
pub type WithSecret = (EndpointRow, String);

fn unsealed(e: crate::keys::SealError) -> ApiError {
    ApiError::Internal(format!("webhook secret: {e}"))
}

/// The rules a new URL is checked against (the same the delivery client sends under).
#[derive(Debug, Clone, Copy)]
pub struct UrlRules {
    pub https_only: bool,
    pub policy: AddressPolicy,
}

/// Whose endpoints a caller may touch: a provider its own, an admin every provider's (through
/// the provider-webhooks routes) or the operators' (through the operator routes). The scopes
/// never overlap: a provider's endpoint is 404 through the operator routes, and the reverse.
#[derive(Debug, Clone)]
pub enum Scope {
    Provider(ProviderId),
    Admin,
    Operator,
}

impl Scope {
    fn provider(&self) -> Option<&ProviderId> {
        match self {
            Scope::Provider(p) => Some(p),
            Scope::Admin | Scope::Operator => None,
        }
    }

    fn side(&self) -> Side {
        match self {
            Scope::Provider(_) | Scope::Admin => Side::Provider,
            Scope::Operator => Side::Operator,
        }
    }
}

const LIMIT_REACHED: &str = "this provider already has the most webhook endpoints allowed (5); \
    delete one first";
const OPERATOR_LIMIT_REACHED: &str = "there are already the most operator webhook endpoints \
    allowed (5); delete one first";

/// The endpoint `id` if the scope may see it; another provider's is 404, like a missing one.
fn visible(conn: &mut AnyConnection, scope: &Scope, id: &str) -> Result<EndpointRow, ApiError> {
    let row = store::find(conn, scope.side(), id)?.ok_or(ApiError::NotFound)?;
    match scope.provider() {
        Some(p) if row.provider_id.as_ref() != Some(p) => Err(ApiError::NotFound),
        _ => Ok(row),
    }
}

/// Creates an endpoint (a provider's, or with [`Scope::Operator`] an operators' one); its
/// secret, sealed in the database, is returned this once.
pub async fn create(
    db: &Db,
    caller: Caller,
    keys: std::sync::Arc<Keys>,
    scope: Scope,
    url: String,
    description: Option<String>,
    rules: UrlRules,
) -> Result<WithSecret, ApiError> {
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
            let provider_id = scope.provider();
            let (max, refusal) = match provider_id {
                Some(_) => (model::MAX_ENDPOINTS_PER_PROVIDER, LIMIT_REACHED),
                None => (model::MAX_OPERATOR_ENDPOINTS, OPERATOR_LIMIT_REACHED),
            };
            store::lock_owner(conn, provider_id)?;
            if store::count_for_owner(conn, provider_id)? >= max {
                return Err(ApiError::Conflict {
                    detail: refusal.into(),
                    allowed: None,
                });
            }
            let id = uuid::Uuid::now_v7().to_string();
            let secret = model::generate_secret();
            store::insert_endpoint(
                conn,
                &NewEndpoint {
                    id: &id,
                    provider_id,
                    url: checked.as_str(),
                    description: description.as_deref(),
                    secrets: &model::seal_secrets(&keys.master[0], &id, &secret, None),
                    created_by: &created_by,
                    now: crate::db::now(),
                },
            )?;
            let row = store::find(conn, scope.side(), &id)?.ok_or(ApiError::NotFound)?;
            Ok(((row, secret), vec![id]))
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
            let rows = store::list(
                conn,
                scope.side(),
                scope.provider(),
                after.as_deref(),
                limit,
            )?;
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
            store::delete_endpoint(conn, scope.side(), &id)?;
            Ok(((), vec![id]))
        })
        .await
}

/// A new secret; the old one keeps signing beside it for [`model::ROTATION_OVERLAP`]. Returns
/// the row and the new secret, shown this once.
pub async fn rotate_secret(
    db: &Db,
    caller: Caller,
    keys: std::sync::Arc<Keys>,
    scope: Scope,
    id: String,
) -> Result<WithSecret, ApiError> {
    caller
        .audited_with_refusals(db, Some(id.clone()), move |conn| {
            let row = visible(conn, &scope, &id)?;
            let (old, _) = row.secrets(&keys.master).map_err(unsealed)?;
            let secret = model::generate_secret();
            let sealed = model::seal_secrets(&keys.master[0], &id, &secret, Some(&old));
            let until = crate::db::now() + model::ROTATION_OVERLAP;
            store::rotate_secret(conn, scope.side(), &id, &sealed, until)?;
            let row = store::find(conn, scope.side(), &id)?.ok_or(ApiError::NotFound)?;
            Ok(((row, secret), vec![id]))
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
            store::enqueue_ping(conn, scope.side(), &id, crate::db::now())?;
            Ok(((), vec![id]))
        })
        .await
}

/// The endpoint's attempts, newest first, older than `before` (`(delivery, attempt)`).
pub async fn deliveries(
    db: &Db,
    caller: Caller,
    scope: Scope,
    id: String,
    before: Option<(i64, i32)>,
    limit: i64,
) -> Result<Vec<AttemptRow>, ApiError> {
    caller
        .audited_with_refusals(db, Some(id.clone()), move |conn| {
            visible(conn, &scope, &id)?;
            let rows = store::attempts(conn, scope.side(), &id, before, limit)?;
            Ok((rows, vec![id]))
        })
        .await
}

/// An admin stops every delivery to an endpoint (undelivered events stay, unsent).
pub async fn disable(db: &Db, caller: Caller, id: String) -> Result<EndpointRow, ApiError> {
    caller
        .audited_with_refusals(db, Some(id.clone()), move |conn| {
            visible(conn, &Scope::Admin, &id)?;
            let now = crate::db::now();
            store::set_status(conn, Side::Provider, &id, EndpointStatus::Disabled, now)?;
            let row = store::find(conn, Side::Provider, &id)?.ok_or(ApiError::NotFound)?;
            Ok((row, vec![id]))
        })
        .await
}
