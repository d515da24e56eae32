//! Webhook endpoints: a provider's own (`/v1/provider/webhooks`), and every provider's for an
//! admin (`/v1/admin/provider-webhooks`). A secret is shown once, when created or rotated.

use actix_web::http::{header, StatusCode};
use actix_web::{delete, get, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use super::model::{AddressPolicy, EndpointStatus};
use super::service::{self, Scope, UrlRules};
use super::store::{AttemptRow, EndpointRow};
use crate::auth::{Admin, ProviderCaller};
use crate::config::Environment;
use crate::error::{ApiError, Problem};
use crate::extract::{ApiJson, ApiQuery, PathId};
use crate::pagination::{Page, PageQuery};
use crate::state::AppState;

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// Where events are sent: an absolute `https` URL (`http` is accepted outside production),
    /// with no user name or password; it must not name a loopback, private, shared, link-local
    /// or metadata address, and the addresses its name resolves to are checked on every
    /// delivery. Treated as a secret: never logged.
    #[validate(length(min = 1, max = 2000))]
    #[schema(
        min_length = 1,
        max_length = 2000,
        example = "https://cases.example.org/eap-hook"
    )]
    pub url: String,
    /// A label for people.
    #[validate(
        length(min = 1, max = 200),
        custom(function = "crate::extract::plain_text")
    )]
    #[schema(
        min_length = 1,
        max_length = 200,
        example = "Case system, production",
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200B-\\u200F\\u202A-\\u202E\\u2060-\\u2064\\u2066-\\u2069\\uFEFF]*\
                   [^\\s\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200B-\\u200F\\u202A-\\u202E\\u2060-\\u2064\\u2066-\\u2069\\uFEFF]\
                   [^\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200B-\\u200F\\u202A-\\u202E\\u2060-\\u2064\\u2066-\\u2069\\uFEFF]*$"
    )]
    pub description: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookView {
    pub id: String,
    pub provider_id: String,
    pub url: String,
    pub description: Option<String>,
    /// `failing`: an event's retries ran out undelivered (new events are still sent);
    /// `disabled`: the receiver answered 410 or an admin disabled it, and nothing is sent.
    pub status: EndpointStatus,
    pub created_at: DateTime<Utc>,
    pub status_changed_at: DateTime<Utc>,
    /// After a rotation, until when the previous secret still signs beside the new one.
    pub previous_secret_valid_until: Option<DateTime<Utc>>,
}

impl From<EndpointRow> for WebhookView {
    fn from(r: EndpointRow) -> Self {
        let now = crate::db::now();
        WebhookView {
            previous_secret_valid_until: r
                .previous_secret_until
                .filter(|t| *t > now)
                .map(|t| t.and_utc()),
            id: r.id,
            provider_id: r.provider_id.into_string(),
            url: r.url,
            description: r.description,
            status: r.status,
            created_at: r.created_at.and_utc(),
            status_changed_at: r.status_changed_at.and_utc(),
        }
    }
}

/// An endpoint with its signing secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookWithSecret {
    #[serde(flatten)]
    pub webhook: WebhookView,
    /// `whsec_` and 32 random bytes in base64, as Standard Webhooks libraries take it; store it
    /// now, it is never shown again.
    pub secret: String,
}

fn secret_response(status: StatusCode, row: EndpointRow) -> HttpResponse {
    let location = format!("/v1/provider/webhooks/{}", row.id);
    let secret = row.secret.clone();
    let mut resp = HttpResponse::build(status);
    resp.insert_header((header::CACHE_CONTROL, "no-store"));
    if status == StatusCode::CREATED {
        resp.insert_header((header::LOCATION, location));
    }
    resp.json(WebhookWithSecret {
        webhook: row.into(),
        secret,
    })
}

fn rules(state: &AppState) -> UrlRules {
    UrlRules {
        https_only: state.config.env == Environment::Production,
        policy: AddressPolicy {
            allow_loopback: state.config.webhooks.allow_loopback,
        },
    }
}

fn scope(p: &ProviderCaller) -> Scope {
    Scope::Provider(p.provider_id.clone())
}

/// Registers an endpoint for this provider's events and returns its signing secret once. At
/// most 5 per provider.
#[utoipa::path(
    tag = "provider", security(("bearer" = [])),
    request_body = CreateWebhook,
    responses(
        (status = 201, description = "Created; the secret is in this response only",
         body = WebhookWithSecret,
         headers(("Location" = String, description = "The new endpoint"))),
        (status = 409, description = "The provider already has 5 endpoints",
         body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields; a URL that is not http(s), carries \
            credentials or a fragment, is not https in production, or names a refused address",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/v1/provider/webhooks")]
pub async fn create_webhook(
    provider: ProviderCaller,
    state: web::Data<AppState>,
    body: ApiJson<CreateWebhook>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner()?;
    let description = body.description.map(|d| d.trim().to_owned());
    let row = service::create(
        &state.db,
        provider.caller,
        provider.provider_id,
        body.url,
        description,
        rules(&state),
    )
    .await?;
    Ok(secret_response(StatusCode::CREATED, row))
}

/// This provider's endpoints (never their secrets).
#[utoipa::path(
    tag = "provider", security(("bearer" = [])),
    params(PageQuery),
    responses((status = 200, description = "One page of endpoints", body = Page<WebhookView>)),
)]
#[get("/v1/provider/webhooks")]
pub async fn list_webhooks(
    provider: ProviderCaller,
    state: web::Data<AppState>,
    query: ApiQuery<PageQuery>,
) -> Result<web::Json<Page<WebhookView>>, ApiError> {
    let (after, limit) = query.into_inner()?.resolve()?;
    let scope = scope(&provider);
    let rows = service::list(&state.db, provider.caller, scope, after, limit).await?;
    Ok(web::Json(Page::from_rows(
        rows,
        limit,
        |r| &r.id,
        WebhookView::from,
    )))
}

/// One of this provider's endpoints.
#[utoipa::path(
    tag = "provider", security(("bearer" = [])),
    params(("id" = String, Path, description = "Endpoint id")),
    responses(
        (status = 200, description = "The endpoint", body = WebhookView),
        (status = 404, description = "No such endpoint of this provider",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/v1/provider/webhooks/{id}")]
pub async fn get_webhook(
    provider: ProviderCaller,
    state: web::Data<AppState>,
    id: PathId,
) -> Result<web::Json<WebhookView>, ApiError> {
    let id = id.get()?;
    let scope = scope(&provider);
    let row = service::get(&state.db, provider.caller, scope, id).await?;
    Ok(web::Json(row.into()))
}

/// Deletes an endpoint; its undelivered events are dropped and nothing more is sent to it.
#[utoipa::path(
    tag = "provider", security(("bearer" = [])),
    params(("id" = String, Path, description = "Endpoint id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such endpoint of this provider",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[delete("/v1/provider/webhooks/{id}")]
pub async fn delete_webhook(
    provider: ProviderCaller,
    state: web::Data<AppState>,
    id: PathId,
) -> Result<HttpResponse, ApiError> {
    let id = id.get()?;
    let scope = scope(&provider);
    service::delete(&state.db, provider.caller, scope, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A new signing secret, shown once. The previous one keeps signing beside it for 24 hours
/// (two `v1` signatures in `webhook-signature`), so the receiver can switch without a gap.
#[utoipa::path(
    tag = "provider", security(("bearer" = [])),
    params(("id" = String, Path, description = "Endpoint id")),
    responses(
        (status = 200, description = "The endpoint with its new secret", body = WebhookWithSecret),
        (status = 404, description = "No such endpoint of this provider",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/v1/provider/webhooks/{id}/rotate-secret")]
pub async fn rotate_webhook_secret(
    provider: ProviderCaller,
    state: web::Data<AppState>,
    id: PathId,
) -> Result<HttpResponse, ApiError> {
    let id = id.get()?;
    let scope = scope(&provider);
    let row = service::rotate_secret(&state.db, provider.caller, scope, id).await?;
    Ok(secret_response(StatusCode::OK, row))
}

/// Queues a `ping` event to the endpoint, signed, sent and retried like any other.
#[utoipa::path(
    tag = "provider", security(("bearer" = [])),
    params(("id" = String, Path, description = "Endpoint id")),
    responses(
        (status = 202, description = "Queued; its attempts appear under `deliveries`"),
        (status = 404, description = "No such endpoint of this provider",
         body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The endpoint is disabled",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/v1/provider/webhooks/{id}/ping")]
pub async fn ping_webhook(
    provider: ProviderCaller,
    state: web::Data<AppState>,
    id: PathId,
) -> Result<HttpResponse, ApiError> {
    let id = id.get()?;
    let scope = scope(&provider);
    service::ping(&state.db, provider.caller, scope, id).await?;
    Ok(HttpResponse::Accepted().finish())
}

#[derive(Debug, Deserialize, Validate, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AttemptsQuery {
    /// Attempts to return, newest first, 1–200 (default 50).
    #[validate(range(min = 1, max = 200))]
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

/// One attempt to deliver an event: no body, no URL.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryAttempt {
    /// The delivery's `webhook-id`, the same on every retry of one event.
    pub webhook_id: String,
    /// 1 for the first attempt.
    pub attempt: i32,
    pub attempted_at: DateTime<Utc>,
    /// The receiver's status code; absent when no response came.
    pub status_code: Option<i32>,
    /// Why no response came: `timeout`, `connect`, `address_refused` (the URL's host resolved
    /// to an address webhooks may not reach), `invalid_url` or `request`.
    pub error: Option<String>,
    pub latency_ms: i64,
    /// When the next attempt is due; absent when this was the last one.
    pub next_attempt_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryAttempts {
    pub items: Vec<DeliveryAttempt>,
}

/// The endpoint's latest delivery attempts, newest first.
#[utoipa::path(
    tag = "provider", security(("bearer" = [])),
    params(("id" = String, Path, description = "Endpoint id"), AttemptsQuery),
    responses(
        (status = 200, description = "Latest attempts", body = DeliveryAttempts),
        (status = 404, description = "No such endpoint of this provider",
         body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid limit",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/v1/provider/webhooks/{id}/deliveries")]
pub async fn list_webhook_deliveries(
    provider: ProviderCaller,
    state: web::Data<AppState>,
    id: PathId,
    query: ApiQuery<AttemptsQuery>,
) -> Result<web::Json<DeliveryAttempts>, ApiError> {
    let limit = i64::from(query.into_inner()?.limit.unwrap_or(50));
    let id = id.get()?;
    let scope = scope(&provider);
    let endpoint = id.clone();
    let rows = service::deliveries(&state.db, provider.caller, scope, id, limit).await?;
    let view = |a: AttemptRow| DeliveryAttempt {
        webhook_id: super::model::message_id(&endpoint, a.delivery_id),
        attempt: a.attempt,
        attempted_at: a.attempted_at.and_utc(),
        status_code: a.status_code,
        error: a.error,
        latency_ms: a.latency_ms,
        next_attempt_at: a.next_attempt_at.map(|t| t.and_utc()),
    };
    Ok(web::Json(DeliveryAttempts {
        items: rows.into_iter().map(view).collect(),
    }))
}

/// Every provider's webhook endpoints, with their status (`failing` ones had an event whose
/// retries ran out).
#[utoipa::path(
    tag = "admin", security(("bearer" = [])),
    params(PageQuery),
    responses((status = 200, description = "One page of endpoints", body = Page<WebhookView>)),
)]
#[get("/v1/admin/provider-webhooks")]
pub async fn admin_list_webhooks(
    admin: Admin,
    state: web::Data<AppState>,
    query: ApiQuery<PageQuery>,
) -> Result<web::Json<Page<WebhookView>>, ApiError> {
    let (after, limit) = query.into_inner()?.resolve()?;
    let rows = service::list(&state.db, admin.0, Scope::Admin, after, limit).await?;
    Ok(web::Json(Page::from_rows(
        rows,
        limit,
        |r| &r.id,
        WebhookView::from,
    )))
}

/// Disables a provider's endpoint: nothing more is sent to it. Disabling a disabled endpoint
/// changes nothing and answers the same.
#[utoipa::path(
    tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "Endpoint id")),
    responses(
        (status = 200, description = "The disabled endpoint", body = WebhookView),
        (status = 404, description = "No such endpoint",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/v1/admin/provider-webhooks/{id}/disable")]
pub async fn admin_disable_webhook(
    admin: Admin,
    state: web::Data<AppState>,
    id: PathId,
) -> Result<web::Json<WebhookView>, ApiError> {
    let id = id.get()?;
    let row = service::disable(&state.db, admin.0, id).await?;
    Ok(web::Json(row.into()))
}
