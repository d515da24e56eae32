use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{get, web, FromRequest, HttpRequest, HttpResponse};
use sha2::{Digest, Sha256};

use super::service;
use crate::error::{ApiError, Problem};
use crate::state::AppState;

/// The caller of `/metrics`: whoever presents `EAP_METRICS_TOKEN`. Not an API client (a
/// scraper has no role and no tenant), so it has its own extractor; without the setting the
/// endpoint does not exist.
pub struct Scraper;

impl FromRequest for Scraper {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let expected = req
            .app_data::<web::Data<AppState>>()
            .and_then(|s| s.config.metrics_token.clone());
        let Some(expected) = expected else {
            return std::future::ready(Err(ApiError::NotFound));
        };
        let presented = crate::auth::caller::bearer_token(req).unwrap_or_default();
        // Compare digests, so the comparison takes the same time wherever the strings differ.
        std::future::ready(
            if Sha256::digest(presented.as_bytes()) == Sha256::digest(expected.as_bytes()) {
                Ok(Scraper)
            } else {
                Err(ApiError::Unauthorized(
                    "send the metrics token: Authorization: Bearer TOKEN",
                ))
            },
        )
    }
}

/// Prometheus metrics for this instance. Needs `Authorization: Bearer $EAP_METRICS_TOKEN`;
/// without that setting the endpoint does not exist (404), so it is never open by accident.
#[utoipa::path(
    tag = "operations",
    security(("metrics_token" = [])),
    responses(
        (status = 200, description = "Prometheus text exposition format 0.0.4", body = String,
         content_type = "text/plain; version=0.0.4"),
        (status = 401, description = "Missing or wrong metrics token",
         body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Metrics are off (`EAP_METRICS_TOKEN` is not set)",
         body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Database unavailable",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/metrics")]
pub async fn metrics(
    _scraper: Scraper,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let gauges = service::gauges(&state.db, &state.config).await?;
    Ok(HttpResponse::Ok()
        .insert_header((
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(state.metrics.render(&gauges)))
}
