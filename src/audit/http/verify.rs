//! The server's verification of the sealed log.

use actix_web::{get, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use crate::audit::model::{Checkpoint, Finding, PublicKeys, Report};
use crate::audit::verify;
use crate::auth::caller::Auditor;
use crate::error::{ApiError, Problem};
use crate::extract::ApiQuery;
use crate::state::AppState;

#[derive(Debug, Deserialize, Validate, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct VerifyQuery {
    /// First log position to check (default 0).
    #[validate(range(max = 9_223_372_036_854_775_807u64))]
    #[param(minimum = 0, maximum = 9_223_372_036_854_775_807i64)]
    pub from_size: Option<u64>,
    /// One past the last position to check (default: the latest checkpoint's size). A range
    /// with `to_size` at or before `from_size` is empty: nothing in it can be wrong.
    #[validate(range(max = 9_223_372_036_854_775_807u64))]
    #[param(minimum = 0, maximum = 9_223_372_036_854_775_807i64)]
    pub to_size: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VerifyResponse {
    /// No problem found, and the range reproduced the latest signed checkpoint.
    pub ok: bool,
    /// The first problem in log order.
    pub first_problem: Option<Finding>,
    /// Every problem found (at most 100 listed).
    pub findings: Vec<Finding>,
    pub findings_total: usize,
    pub start: u64,
    pub end: u64,
    pub events: u64,
    pub checkpoint: Option<Checkpoint>,
    pub root_verified: bool,
}

impl From<Report> for VerifyResponse {
    fn from(r: Report) -> Self {
        let ok = r.ok();
        let findings_total = r.findings.len();
        let mut findings = r.findings;
        findings.truncate(100);
        VerifyResponse {
            ok,
            first_problem: findings.first().cloned(),
            findings,
            findings_total,
            start: r.start,
            end: r.end,
            events: r.events,
            checkpoint: r.checkpoint,
            root_verified: r.root_verified,
        }
    }
}

/// Re-derives a range of the log from the database — every event's leaf, the tree and the
/// latest signed checkpoint — and reports the first problem: a modified, missing, inserted or
/// reordered event (named), or a tree that no longer matches its signature. Also reports an
/// unsealed event that claims to predate the latest checkpoint (a row slipped in behind the
/// sealer). With `EAP_OUTSIDE_LOG` set, also compares the log with the checkpoints kept there
/// and reports a tail that was removed (`truncated`) or replaced (`rewritten`) in the
/// database. Costs one pass over the range.
#[utoipa::path(
    tag = "audit",
    security(("bearer" = [])),
    params(VerifyQuery),
    responses(
        (status = 200, description = "The verdict (also when problems are found)",
         body = VerifyResponse),
        (status = 409, description = "No checkpoint has been issued yet",
         body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown or malformed parameter",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/v1/audit/verify")]
pub async fn verify_log(
    auditor: Auditor,
    state: web::Data<AppState>,
    query: ApiQuery<VerifyQuery>,
) -> Result<web::Json<VerifyResponse>, ApiError> {
    let q = query.into_inner()?;
    let keys = PublicKeys::of(&state.keys.checkpoint);
    let event = auditor.0.event(None);
    let range = (q.from_size.unwrap_or(0), q.to_size);
    let outside = state.outside.path().map(Into::into);
    let report = verify::verify(&state.db, event, keys, range, outside).await?;
    Ok(web::Json(report.into()))
}
