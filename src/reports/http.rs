//! `GET /v1/reports/utilization`: the portal's own employer's counts, suppressed.

use actix_web::http::header;
use actix_web::{get, web, HttpResponse};
use serde::Deserialize;
use utoipa::IntoParams;
use validator::Validate;

use super::model::{self, GroupBy, Month};
use super::service::{self, Utilization};
use crate::auth::HrPortal;
use crate::error::{ApiError, ErrorCode, FieldError, Problem};
use crate::extract::ApiQuery;
use crate::state::AppState;

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
    pub from_month: String,
    /// How many months from `from_month`, 1–24 (default 12). Only months that ended at least 48 hours
    /// ago are reported (so nothing can still be added to them); later ones are left out, and
    /// the response's `from_month`/`to_month` say which months it covers.
    #[validate(range(min = 1, max = 24))]
    #[param(minimum = 1, maximum = 24, example = 6)]
    pub months: Option<u32>,
    /// The second dimension: `service_type`, `urgency` or `modality` (by month of submission),
    /// or `outcome` (by month of closing; `cancelled` included).
    pub group_by: GroupBy,
}

/// `from`'s documented pattern (the attribute above repeats the literal; a test compares).
const MONTH_PATTERN: &str = "^2[0-9]{3}-(0[1-9]|1[0-2])$";

/// Months reported when `months` is not given.
const DEFAULT_MONTHS: u32 = 12;

fn month_field(field: &str, raw: &str) -> Result<Month, ApiError> {
    Month::parse(raw).ok_or_else(|| {
        // The schema check refuses text not of the pattern first; this is the second line.
        ApiError::Validation(vec![FieldError::parameter(
            field,
            ErrorCode::Pattern,
            "must be a month as YYYY-MM (years 2000–2999)",
        )
        .expecting(crate::validation::expected_for_pattern(MONTH_PATTERN))])
    })
}

/// Utilisation of the caller's employer: counts per month and one other dimension. Cells below
/// the minimum (`min_cell`) are suppressed, with complementary suppression so that no hidden
/// count can be derived from the shown cells and totals, nor from another report over an
/// overlapping window: each month is suppressed on its own counts, complements are chosen in
/// the fixed category order (never by value), and only months that ended at least 48 hours ago
/// are reported, so a month reads the same in every report. Later months of the window asked
/// for are left out (any well-formed question has an answer, possibly with no month);
/// `from_month` and `to_month` in the response give the months covered.
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
    let from = month_field("from_month", &q.from_month)?;
    let months = model::window(from, q.months.unwrap_or(DEFAULT_MONTHS), crate::db::now());
    let report = service::utilization(
        portal.caller,
        &state.db,
        portal.employer_id,
        months,
        q.group_by,
        state.config.report_min_cell,
    )
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(report))
}

#[cfg(test)]
mod tests {
    use utoipa::IntoParams;

    /// `month_field` names the expected form by the documented pattern.
    #[test]
    fn the_month_pattern_is_the_documented_one() {
        // Found by its pattern, not its name: the month is the one parameter with a pattern.
        let params = super::UtilizationQuery::into_params(|| None);
        let patterns: Vec<serde_json::Value> = params
            .iter()
            .map(|p| serde_json::to_value(&p.schema).unwrap()["pattern"].clone())
            .filter(|p| !p.is_null())
            .collect();
        assert_eq!(patterns, [super::MONTH_PATTERN]);
    }
}
