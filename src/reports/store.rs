//! The rows a report counts: one (timestamp, category) per referral, no identifiers. Grouping
//! by month happens in Rust, so one query serves both backends (their date functions differ).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::model::GroupBy;
use crate::db::schema::referrals;
use crate::db::AnyConnection;
use crate::directory::model::Code;
use crate::ids::EmployerId;
use crate::referrals::model::Status;

/// (month-defining time, category) of the employer's referrals in `[from, until)`: submission
/// time and attribute, or for outcomes the closing time and how it ended.
pub fn items(
    conn: &mut AnyConnection,
    employer_id: &EmployerId,
    group_by: GroupBy,
    from: NaiveDateTime,
    until: NaiveDateTime,
) -> QueryResult<Vec<(NaiveDateTime, String)>> {
    let submitted = referrals::table
        .filter(referrals::employer_id.eq(employer_id))
        .filter(referrals::created_at.ge(from))
        .filter(referrals::created_at.lt(until));
    match group_by {
        GroupBy::ServiceType => submitted
            .select((referrals::created_at, referrals::service_type))
            .load(conn),
        GroupBy::Urgency => submitted
            .select((referrals::created_at, referrals::urgency))
            .load(conn),
        GroupBy::Modality => submitted
            .select((referrals::created_at, referrals::modality))
            .load(conn),
        GroupBy::Outcome => {
            let rows: Vec<(Option<NaiveDateTime>, String, Option<String>)> = referrals::table
                .filter(referrals::employer_id.eq(employer_id))
                .filter(referrals::status.eq_any([Status::Closed.code(), Status::Cancelled.code()]))
                .filter(referrals::closed_at.ge(from))
                .filter(referrals::closed_at.lt(until))
                .select((referrals::closed_at, referrals::status, referrals::outcome))
                .load(conn)?;
            Ok(rows
                .into_iter()
                .filter_map(|(at, status, outcome)| {
                    let category = if status == Status::Cancelled.code() {
                        status
                    } else {
                        outcome?
                    };
                    Some((at?, category))
                })
                .collect())
        }
    }
}
