use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{get, web, FromRequest, HttpRequest, HttpResponse};
use diesel::prelude::*;
use sha2::{Digest, Sha256};

use super::Gauges;
use crate::db::schema::{audit_checkpoints, referrals};
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
    responses(
        (status = 200, description = "Prometheus text exposition format 0.0.4", body = String,
         content_type = "text/plain; version=0.0.4"),
        (status = 401, description = "Missing or wrong metrics token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Metrics are off (`EAP_METRICS_TOKEN` is not set)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Database unavailable", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/metrics")]
pub async fn metrics(
    _scraper: Scraper,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (pending, overdue, checkpoint) = state
        .db
        .run(|conn| {
            let offered = referrals::table.filter(referrals::status.eq("offered"));
            let pending: i64 = offered.count().get_result(conn)?;
            let overdue: i64 = offered
                .filter(referrals::offer_expires_at.lt(crate::db::now()))
                .count()
                .get_result(conn)?;
            let checkpoint: Option<(i64, chrono::NaiveDateTime)> = audit_checkpoints::table
                .order(audit_checkpoints::n.desc())
                .select((audit_checkpoints::tree_size, audit_checkpoints::issued_at))
                .first(conn)
                .optional()?;
            Ok((pending, overdue, checkpoint))
        })
        .await?;
    let pool = state.db.pool_state();
    let gauges = Gauges {
        pool_connections: pool.0,
        pool_idle: pool.1,
        pool_max: state.config.db_pool_size,
        long_polls_waiting: state.db.notifier.waiting(),
        long_polls_max: state.config.max_long_polls,
        offers_pending: pending,
        offers_overdue: overdue,
        audit_sealed: checkpoint.map_or(0, |c| c.0),
        audit_checkpoint_age_secs: checkpoint
            .map(|c| (crate::db::now() - c.1).num_milliseconds() as f64 / 1000.0),
    };
    Ok(HttpResponse::Ok()
        .insert_header((
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(state.metrics.render(&gauges)))
}
