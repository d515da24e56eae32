//! What a utilisation report request does: read the settled months' rows, count, suppress,
//! and log the read before the counts leave.

use serde::Serialize;
use utoipa::ToSchema;

use super::model::{self, GroupBy, Month};
use super::store;
use crate::auth::caller::Caller;
use crate::db::Db;
use crate::error::ApiError;
use crate::ids::EmployerId;

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
    pub from_month: Option<String>,
    /// The last month reported, `YYYY-MM`; null when no month asked for has settled yet.
    pub to_month: Option<String>,
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

/// The report of `employer`'s referrals over the settled `months`, grouped by `group_by`,
/// with counts below `min` suppressed.
pub async fn utilization(
    caller: Caller,
    db: &Db,
    employer: EmployerId,
    months: Vec<Month>,
    group_by: GroupBy,
    min: u32,
) -> Result<Utilization, ApiError> {
    // A plain read, not a write transaction: settled months never change, and on SQLite a write
    // transaction would hold every writer back for the whole scan.
    db.run(move |conn| {
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
            employer_id: employer.to_string(),
            from_month: months.first().map(Month::to_string),
            to_month: months.last().map(Month::to_string),
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
        // One access-log event per report, naming the employer whose counts were read;
        // committed before the counts leave, so a report the log cannot record is not sent.
        crate::audit::store::record_alone(conn, &[caller.event(Some(employer.as_str()))])?;
        Ok(report)
    })
    .await
}
