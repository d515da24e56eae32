//! `GET /v1/reports/utilization`: the portal's own employer's counts, suppressed.

use actix_web::http::header;
use actix_web::{get, web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use super::model::{self, GroupBy, Month};
use super::store;
use crate::app::AppState;
use crate::auth::HrPortal;
use crate::error::{ApiError, Problem};
use crate::extract::ApiQuery;

#[derive(Debug, Deserialize, Validate, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UtilizationQuery {
    /// First month, `YYYY-MM` (UTC calendar months, years 2000–2999).
    #[param(
        pattern = "^2[0-9]{3}-(0[1-9]|1[0-2])$",
        min_length = 7,
        max_length = 7,
        example = "2026-01"
    )]
    pub from: String,
    /// How many months from `from`, 1–24 (default 12). Only months that ended at least 48 hours
    /// ago are reported (so nothing can still be added to them); later ones are left out, and
    /// the response's `from`/`to` say which months it covers.
    #[validate(range(min = 1, max = 24))]
    #[param(minimum = 1, maximum = 24, example = 6)]
    pub months: Option<u32>,
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
    /// The first month reported, `YYYY-MM`; null when no month asked for has settled yet.
    pub from: Option<String>,
    /// The last month reported, `YYYY-MM`; null when no month asked for has settled yet.
    pub to: Option<String>,
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

/// Months reported when `months` is not given.
const DEFAULT_MONTHS: u32 = 12;

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
/// are reported, so a month reads the same in every report. Later months of the window asked
/// for are left out (any well-formed question has an answer, possibly with no month); `from`
/// and `to` in the response give the months covered.
#[utoipa::path(
    tag = "reports",
    security(("bearer" = [])),
    params(UtilizationQuery),
    responses(
        (status = 200, description = "The report", body = Utilization),
        (status = 422, description = "Missing, unknown or malformed parameters",
         body = Problem, content_type = "application/problem+json"),
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
    let months = model::window(from, q.months.unwrap_or(DEFAULT_MONTHS), crate::db::now());
    let min = state.config.report_min_cell;
    let employer = portal.employer_id.clone();
    let group_by = q.group_by;
    let caller = portal.caller;
    // A plain read, not a write transaction: settled months never change, and on SQLite a write
    // transaction would hold every writer back for the whole scan.
    let report = state
        .db
        .run(move |conn| {
            // No settled month: nothing to read, and nothing before `from` is ever counted.
            let items = match (months.first(), months.last()) {
                (Some(first), Some(last)) => store::items(
                    conn,
                    &employer,
                    group_by,
                    first.start(),
                    last.next().start(),
                )?,
                _ => Vec::new(),
            };
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
                from: months.first().map(Month::to_string),
                to: months.last().map(Month::to_string),
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
            // One access-log event per report, naming the employer whose counts were read; committed
            // before the counts leave, so a report the log cannot record is not sent.
            crate::audit::store::record_alone(conn, &[caller.event(Some(&employer), 200)])?;
            Ok(report)
        })
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(report))
}
