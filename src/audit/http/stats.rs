//! Counts of the sealed log over time, for charts.

use actix_web::{get, web, HttpResponse};
use serde::Deserialize;
use utoipa::IntoParams;
use validator::Validate;

use super::events::parse_time;
use crate::audit::model::stats::{check_window, Bucket, GroupBy, WindowError};
use crate::audit::model::Outcome;
use crate::audit::stats::{self, Stats, StatsSelection};
use crate::auth::caller::Auditor;
use crate::error::{ApiError, ErrorCode, FieldError, Problem};
use crate::extract::ApiQuery;
use crate::state::AppState;

#[derive(Debug, Deserialize, Validate, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StatsQuery {
    /// Count events that occurred at or after this time (RFC 3339).
    #[param(format = DateTime, example = "2026-11-30T00:00:00Z")]
    pub from: String,
    /// … and before this time (RFC 3339): after `from`, and at most 31 days later for hourly
    /// buckets, 366 days for daily ones.
    #[param(format = DateTime, example = "2026-12-01T00:00:00Z")]
    pub to: String,
    /// `hour` (the default) or `day`. Buckets are aligned to UTC.
    #[param(value_type = Option<Bucket>)]
    pub bucket: Option<Bucket>,
    /// `outcome` (the default) or `actor`.
    #[param(value_type = Option<GroupBy>)]
    pub by: Option<GroupBy>,
    /// Only events of this outcome (e.g. `denied`, for refusals by actor).
    #[param(value_type = Option<Outcome>)]
    pub outcome: Option<Outcome>,
}

impl StatsQuery {
    fn selection(self) -> Result<StatsSelection, ApiError> {
        let from = parse_time("from", &Some(self.from))?.expect("given");
        let to = parse_time("to", &Some(self.to))?.expect("given");
        let bucket = self.bucket.unwrap_or(Bucket::Hour);
        check_window(from, to, bucket).map_err(|e| {
            let message = match e {
                WindowError::Empty => "must be after `from`".to_owned(),
                WindowError::TooWide { max } => format!(
                    "must be at most {} days after `from` with `bucket={}` (narrow the window \
                     or use daily buckets)",
                    max.num_days(),
                    match bucket {
                        Bucket::Hour => "hour",
                        Bucket::Day => "day",
                    }
                ),
            };
            ApiError::Validation(vec![FieldError::parameter("to", ErrorCode::Range, message)])
        })?;
        Ok(StatsSelection {
            from,
            to,
            bucket,
            by: self.by.unwrap_or(GroupBy::Outcome),
            outcome: self.outcome,
        })
    }
}

/// Counts the sealed access log per hour or day, by outcome or by actor.
///
/// The counts are made by the database over the log as of the latest checkpoint, so they agree
/// with `GET /v1/audit/events` for the same window. Buckets with no events are left out. The
/// window is bounded (31 days of hours, 366 days of days); a wider one is refused, not thinned.
/// The call is logged once (`audit.stats`).
#[utoipa::path(
    tag = "audit",
    security(("bearer" = [])),
    params(StatsQuery),
    responses(
        (status = 200, description = "Counts per bucket and key", body = Stats),
        (status = 422, description = "Invalid query: missing or malformed time, `to` not after \
            `from`, window too wide for the bucket, unknown bucket, grouping, outcome or \
            parameter",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/v1/audit/stats")]
pub async fn audit_stats(
    auditor: Auditor,
    state: web::Data<AppState>,
    query: ApiQuery<StatsQuery>,
) -> Result<HttpResponse, ApiError> {
    let sel = query.into_inner()?.selection()?;
    let counts = stats::stats(&state.db, auditor.0.event(None), sel).await?;
    Ok(HttpResponse::Ok().json(counts))
}
