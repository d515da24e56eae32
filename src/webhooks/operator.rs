//! Operator webhook endpoints (`/v1/admin/webhooks`, admin role): where the EAP's on-call staff
//! receive `operator.referral_unroutable` and `operator.offer_expired` alerts, signed and
//! delivered like the providers' webhooks. Only operator endpoints are reachable here; a
//! provider's endpoint id answers 404, as a missing one.

use actix_web::http::StatusCode;
use actix_web::{delete, get, post, web, HttpResponse};

use super::http::{
    deliveries_page, rules, secret_response, AttemptsQuery, CreateWebhook, DeliveryAttempts,
    EndpointView, OperatorWebhookWithSecret,
};
use super::service::{self, Scope};
use super::store::EndpointRow;
use crate::auth::Admin;
use crate::error::{ApiError, Problem};
use crate::extract::{ApiJson, ApiQuery, PathId};
use crate::pagination::{Page, PageQuery};
use crate::state::AppState;

const BASE: &str = "/v1/admin/webhooks";

fn with_secret(row: EndpointRow, secret: String) -> OperatorWebhookWithSecret {
    OperatorWebhookWithSecret {
        webhook: row.into(),
        secret,
    }
}

/// Registers an operator endpoint, which receives an alert when a referral becomes unroutable
/// and when an offer expires (the referral's id and urgency only), and returns its signing
/// secret once. At most 5 operator endpoints.
#[utoipa::path(
    tag = "admin", security(("bearer" = [])),
    request_body = CreateWebhook,
    responses(
        (status = 201, description = "Created; the secret is in this response only",
         body = OperatorWebhookWithSecret,
         headers(("Location" = String, description = "The new endpoint"))),
        (status = 409, description = "There are already 5 operator endpoints",
         body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields; a URL that is not http(s), carries \
            credentials or a fragment, is not https in production, or names a refused address",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/v1/admin/webhooks")]
pub async fn create_operator_webhook(
    admin: Admin,
    state: web::Data<AppState>,
    body: ApiJson<CreateWebhook>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner()?;
    let description = body.description.map(|d| d.trim().to_owned());
    let keys = state.keys.clone();
    let (url, rules) = (body.url, rules(&state));
    let created = service::create(
        &state.db,
        admin.0,
        keys,
        Scope::Operator,
        url,
        description,
        rules,
    )
    .await?;
    Ok(secret_response(
        StatusCode::CREATED,
        BASE,
        created,
        with_secret,
    ))
}

/// The operator endpoints (never their secrets), with their status: `failing` ones had an
/// alert whose retries ran out.
#[utoipa::path(
    tag = "admin", security(("bearer" = [])),
    params(PageQuery),
    responses((status = 200, description = "One page of endpoints", body = Page<EndpointView>)),
)]
#[get("/v1/admin/webhooks")]
pub async fn list_operator_webhooks(
    admin: Admin,
    state: web::Data<AppState>,
    query: ApiQuery<PageQuery>,
) -> Result<web::Json<Page<EndpointView>>, ApiError> {
    let (after, limit) = query.into_inner()?.resolve()?;
    let rows = service::list(&state.db, admin.0, Scope::Operator, after, limit).await?;
    let page = Page::from_rows(rows, limit, |r| &r.id, EndpointView::from);
    Ok(web::Json(page))
}

/// One operator endpoint.
#[utoipa::path(
    tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "Endpoint id")),
    responses(
        (status = 200, description = "The endpoint", body = EndpointView),
        (status = 404, description = "No such operator endpoint",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/v1/admin/webhooks/{id}")]
pub async fn get_operator_webhook(
    admin: Admin,
    state: web::Data<AppState>,
    id: PathId,
) -> Result<web::Json<EndpointView>, ApiError> {
    let row = service::get(&state.db, admin.0, Scope::Operator, id.get()?).await?;
    Ok(web::Json(row.into()))
}

/// Deletes an operator endpoint; its undelivered alerts are dropped and nothing more is sent
/// to it.
#[utoipa::path(
    tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "Endpoint id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such operator endpoint",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[delete("/v1/admin/webhooks/{id}")]
pub async fn delete_operator_webhook(
    admin: Admin,
    state: web::Data<AppState>,
    id: PathId,
) -> Result<HttpResponse, ApiError> {
    service::delete(&state.db, admin.0, Scope::Operator, id.get()?).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A new signing secret, shown once. The previous one keeps signing beside it for 24 hours
/// (two `v1` signatures in `webhook-signature`), so the receiver can switch without a gap.
#[utoipa::path(
    tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "Endpoint id")),
    responses(
        (status = 200, description = "The endpoint with its new secret",
         body = OperatorWebhookWithSecret),
        (status = 404, description = "No such operator endpoint",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/v1/admin/webhooks/{id}/rotate-secret")]
pub async fn rotate_operator_webhook_secret(
    admin: Admin,
    state: web::Data<AppState>,
    id: PathId,
) -> Result<HttpResponse, ApiError> {
    let keys = state.keys.clone();
    let row = service::rotate_secret(&state.db, admin.0, keys, Scope::Operator, id.get()?).await?;
    Ok(secret_response(StatusCode::OK, BASE, row, with_secret))
}

/// Queues a `ping` event to the operator endpoint, signed, sent and retried like an alert.
#[utoipa::path(
    tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "Endpoint id")),
    responses(
        (status = 202, description = "Queued; its attempts appear under `deliveries`"),
        (status = 404, description = "No such operator endpoint",
         body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The endpoint is disabled",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/v1/admin/webhooks/{id}/ping")]
pub async fn ping_operator_webhook(
    admin: Admin,
    state: web::Data<AppState>,
    id: PathId,
) -> Result<HttpResponse, ApiError> {
    service::ping(&state.db, admin.0, Scope::Operator, id.get()?).await?;
    Ok(HttpResponse::Accepted().finish())
}

/// The operator endpoint's delivery attempts, newest first, a page at a time.
#[utoipa::path(
    tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "Endpoint id"), AttemptsQuery),
    responses(
        (status = 200, description = "One page of attempts", body = DeliveryAttempts),
        (status = 404, description = "No such operator endpoint",
         body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid cursor or limit",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/v1/admin/webhooks/{id}/deliveries")]
pub async fn list_operator_webhook_deliveries(
    admin: Admin,
    state: web::Data<AppState>,
    id: PathId,
    query: ApiQuery<AttemptsQuery>,
) -> Result<web::Json<DeliveryAttempts>, ApiError> {
    deliveries_page(&state, admin.0, Scope::Operator, id, query).await
}
