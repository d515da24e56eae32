//! `GET /v1/reports/utilization`: the portal's own employer's counts, suppressed.

use actix_web::http::header;
use actix_web::{get, web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use super::model::{self, GroupBy, Month, WindowError};
use super::store;
use crate::app::AppState;
use crate::audit::audited;
use crate::auth::HrPortal;
use crate::error::{ApiError, Problem};
use crate::extract::ApiQuery;

#[derive(Debug, Deserialize, Validate, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UtilizationQuery {
    /// First month, `YYYY-MM` (UTC calendar months).
    #[param(pattern = "^[0-9]{4}-[0-9]{2}$", example = "2026-01")]
    pub from: String,
    /// Last month, `YYYY-MM`, inclusive; it must have ended at least 48 hours ago (so nothing
    /// can still be added to it), and the window may span at most 24 months.
    #[param(pattern = "^[0-9]{4}-[0-9]{2}$", example = "2026-06")]
    pub to: String,
    /// The second dimension: `service_type`, `urgency` or `modality` (by month of submission),
    /// or `outcome` (by month of closing; `cancelled` included).
    pub group_by: GroupBy,
}

/// One published number, or the fact that it is suppressed.
#[derive(Debug, Serialize, ToSchema)]
pub struct Count {
    /// Absent (null) when suppressed.
    pub count: Option<u64>,
    pub suppressed: bool,
}

impl From<Option<u64>> for Count {
    fn from(n: Option<u64>) -> Self {
        Count {
            count: n,
            suppressed: n.is_none(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Cell {
    pub category: String,
    #[serde(flatten)]
    pub value: Count,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MonthRow {
    /// `YYYY-MM`.
    pub month: String,
    /// One per category, in `categories` order.
    pub cells: Vec<Cell>,
    pub total: Count,
}

/// Aggregate counts only: no referral, id or time finer than a month ever appears.
#[derive(Debug, Serialize, ToSchema)]
pub struct Utilization {
    pub employer_id: String,
    pub from: String,
    pub to: String,
    pub group_by: GroupBy,
    /// Counts below this are suppressed, and enough others with them that none can be derived.
    pub min_cell: u32,
    pub categories: Vec<String>,
    pub months: Vec<MonthRow>,
    /// Per category over the window; suppressed when any of its months' cells is.
    pub totals: Vec<Cell>,
    /// Over the window; suppressed when any month total is.
    pub total: Count,
}

fn month_field(field: &str, raw: &str) -> Result<Month, ApiError> {
    Month::parse(raw).ok_or_else(|| {
        ApiError::validation(
            field,
            "month",
            "must be a month as YYYY-MM (years 2000–2999)",
        )
    })
}

/// Utilisation of the caller's employer: counts per month and one other dimension. Cells below
/// the minimum (`min_cell`) are suppressed, with complementary suppression so that no hidden
/// count can be derived from the shown cells and totals, nor from another report over an
/// overlapping window: each month is suppressed on its own counts, complements are chosen in
/// the fixed category order (never by value), and only months that ended at least 48 hours ago
/// can be reported, so a month reads the same in every report.
#[utoipa::path(
    tag = "reports",
    security(("bearer" = [])),
    params(UtilizationQuery),
    responses(
        (status = 200, description = "The report", body = Utilization),
        (status = 401, description = "Missing or invalid access token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an HR portal", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Missing, unknown or malformed parameters; `to` before `from`, ended less than 48 hours ago, or more than 24 months after it", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Database or access log unavailable", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/v1/reports/utilization")]
pub async fn utilization(
    portal: HrPortal,
    state: web::Data<AppState>,
    query: ApiQuery<UtilizationQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner()?;
    let from = month_field("from", &q.from)?;
    let to = month_field("to", &q.to)?;
    let months = model::window(from, to, crate::db::now()).map_err(|e| match e {
        WindowError::Reversed => {
            ApiError::validation("to", "before_from", "must not be before `from`")
        }
        WindowError::TooLong => ApiError::validation(
            "to",
            "range_too_long",
            format!("the window may span at most {} months", model::MAX_MONTHS),
        ),
        WindowError::NotEnded => ApiError::validation(
            "to",
            "not_ended",
            format!(
                "only months that ended at least {} hours ago can be reported",
                model::SETTLE_HOURS
            ),
        ),
    })?;
    let min = state.config.report_min_cell;
    let employer = portal.employer_id.clone();
    let group_by = q.group_by;
    // One access-log event per report, naming the employer whose counts were read.
    let report = audited(&state.db, portal.caller, 200, move |conn| {
        let items = store::items(conn, &employer, group_by, from.start(), to.next().start())?;
        let categories = group_by.categories();
        let counts = model::tally(
            &months,
            &categories,
            items.iter().map(|(at, c)| (Month::of(*at), c.as_str())),
        );
        let published = model::publish(&counts, categories.len(), u64::from(min));
        let cells = |values: &[Option<u64>]| -> Vec<Cell> {
            categories
                .iter()
                .zip(values)
                .map(|(c, v)| Cell {
                    category: (*c).to_owned(),
                    value: Count::from(*v),
                })
                .collect()
        };
        let report = Utilization {
            employer_id: employer.clone(),
            from: from.to_string(),
            to: to.to_string(),
            group_by,
            min_cell: min,
            categories: categories.iter().map(|c| (*c).to_owned()).collect(),
            months: months
                .iter()
                .enumerate()
                .map(|(i, m)| MonthRow {
                    month: m.to_string(),
                    cells: cells(&published.cells[i]),
                    total: Count::from(published.month_totals[i]),
                })
                .collect(),
            totals: cells(&published.category_totals),
            total: Count::from(published.grand_total),
        };
        Ok((report, vec![employer]))
    })
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(report))
}
