//! Webhook endpoints: a provider's own (`/v1/provider/webhooks`), and every provider's for an
//! admin (`/v1/admin/provider-webhooks`). A secret is shown once, when created or rotated.

use actix_web::http::{header, StatusCode};
use actix_web::{delete, get, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use super::model::{AddressPolicy, EndpointStatus};
use super::service::{self, Scope, UrlRules};
use super::store::{AttemptRow, EndpointRow};
use crate::auth::{Admin, ProviderCaller};
use crate::config::Environment;
use crate::error::{ApiError, Problem};
use crate::extract::{ApiJson, ApiQuery, PathId};
use crate::pagination::{Cursor, Page, PageQuery, Paging};
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

/// An endpoint as its owner sees it (never its secret). An operator endpoint is exactly this; a
/// provider's adds its `provider_id`.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointView {
    pub id: String,
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

/// A provider's endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookView {
    pub provider_id: String,
    #[serde(flatten)]
    pub endpoint: EndpointView,
}

impl From<EndpointRow> for WebhookView {
    fn from(r: EndpointRow) -> Self {
        WebhookView {
            // Every row read through the provider routes has one (the column is NOT NULL).
            provider_id: r
                .provider_id
                .clone()
                .map(|p| p.into_string())
                .unwrap_or_default(),
            endpoint: r.into(),
        }
    }
}

impl From<EndpointRow> for EndpointView {
    fn from(r: EndpointRow) -> Self {
        let now = crate::db::now();
        EndpointView {
            previous_secret_valid_until: r
                .previous_secret_until
                .filter(|t| *t > now)
                .map(|t| t.and_utc()),
            id: r.id,
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

/// An operator endpoint with its signing secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct OperatorWebhookWithSecret {
    #[serde(flatten)]
    pub webhook: EndpointView,
    /// `whsec_` and 32 random bytes in base64, as Standard Webhooks libraries take it; store it
    /// now, it is never shown again.
    pub secret: String,
}

/// A created (201, with its `Location` under `base`) or rotated (200) endpoint with its secret,
/// never cached.
pub(super) fn secret_response<V: Serialize>(
    status: StatusCode,
    base: &str,
    (row, secret): service::WithSecret,
    view: impl FnOnce(EndpointRow, String) -> V,
) -> HttpResponse {
    let location = format!("{base}/{}", row.id);
    let mut resp = HttpResponse::build(status);
    resp.insert_header((header::CACHE_CONTROL, "no-store"));
    if status == StatusCode::CREATED {
        resp.insert_header((header::LOCATION, location));
    }
    resp.json(view(row, secret))
}

const PROVIDER_BASE: &str = "/v1/provider/webhooks";

fn with_secret(row: EndpointRow, secret: String) -> WebhookWithSecret {
    WebhookWithSecret {
        webhook: row.into(),
        secret,
    }
}

pub(super) fn rules(state: &AppState) -> UrlRules {
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
        state.keys.clone(),
        Scope::Provider(provider.provider_id),
        body.url,
        description,
        rules(&state),
    )
    .await?;
    let created = StatusCode::CREATED;
    Ok(secret_response(created, PROVIDER_BASE, row, with_secret))
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
    let keys = state.keys.clone();
    let row = service::rotate_secret(&state.db, provider.caller, keys, scope, id).await?;
    Ok(secret_response(
        StatusCode::OK,
        PROVIDER_BASE,
        row,
        with_secret,
    ))
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

/// An attempts page's cursor: the last attempt handed out, as `delivery.attempt` in decimal
/// (newest first, so the next page holds older attempts). Every text of the documented pattern
/// is a position (18 digits fit an i64, 9 an i32), so a well-formed cursor is never refused.
pub struct AttemptPosition;

impl Cursor for AttemptPosition {
    type Position = (i64, i32);
    const ABOUT: &'static str =
        "The `next_cursor` of the previous page (older attempts follow); omit for the newest.";
    const PATTERN: &'static str = r"^[0-9]{1,18}\.[0-9]{1,9}$";
    const MIN_LENGTH: usize = 3;
    const MAX_LENGTH: usize = 28;

    fn decode(c: &str) -> Result<(i64, i32), ApiError> {
        let digits =
            |s: &str, max| (1..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
        c.split_once('.')
            .filter(|(d, a)| digits(d, 18) && digits(a, 9))
            .and_then(|(d, a)| Some((d.parse().ok()?, a.parse().ok()?)))
            .ok_or_else(|| crate::pagination::bad_cursor::<Self>("must be a cursor from this API"))
    }
}

/// The deliveries list's paging: 1–200 attempts a page (default 50), newest first.
pub type AttemptsQuery = Paging<AttemptPosition, 200, 50>;

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

/// One page of attempts, newest first; `next_cursor` is absent on the last page.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryAttempts {
    pub items: Vec<DeliveryAttempt>,
    pub next_cursor: Option<String>,
}

/// The endpoint's delivery attempts, newest first, a page at a time.
#[utoipa::path(
    tag = "provider", security(("bearer" = [])),
    params(("id" = String, Path, description = "Endpoint id"), AttemptsQuery),
    responses(
        (status = 200, description = "One page of attempts", body = DeliveryAttempts),
        (status = 404, description = "No such endpoint of this provider",
         body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid cursor or limit",
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
    let scope = scope(&provider);
    deliveries_page(&state, provider.caller, scope, id, query).await
}

/// One page of an endpoint's attempts, for its provider or (operator endpoints) an admin.
pub(super) async fn deliveries_page(
    state: &AppState,
    caller: crate::auth::Caller,
    scope: Scope,
    id: PathId,
    query: ApiQuery<AttemptsQuery>,
) -> Result<web::Json<DeliveryAttempts>, ApiError> {
    let (before, limit) = query.into_inner()?.resolve()?;
    let id = id.get()?;
    let endpoint = id.clone();
    let rows = service::deliveries(&state.db, caller, scope, id, before, limit).await?;
    // A full page may have more behind it (the next one may then be empty, as other lists').
    let next_cursor = (rows.len() as i64 == limit)
        .then(|| {
            rows.last()
                .map(|a| format!("{}.{}", a.delivery_id, a.attempt))
        })
        .flatten();
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
        next_cursor,
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
