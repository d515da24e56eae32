//! What a portal may do with a referral after submitting it: read its coarse status, cancel it.
//! Both need the referral's id and status token.

use super::model::hash_token;
use super::store::{self, ReferralRow};
use crate::audit;
use crate::auth::HrPortal;
use crate::db::{write_tx, AnyConnection, Db};
use crate::directory::model::Code;
use crate::error::ApiError;
use crate::ids::ReferralId;
use crate::workflow::model::{AttemptOutcome, FeedKind};

/// Finds the caller's referral by id and status token. Any mismatch — no such id, another
/// employer's referral, a wrong or missing token — is the same 404, and is logged as a denial.
pub fn authorised(
    conn: &mut AnyConnection,
    portal: &HrPortal,
    id: Option<&str>,
    token: Option<&str>,
) -> Result<ReferralRow, ApiError> {
    let row = match id {
        Some(id) => store::find_referral(conn, &ReferralId::from_trusted(id.to_owned()))?,
        None => None,
    };
    let ok = row.filter(|r| {
        r.employer_id == portal.employer_id
            && token.is_some_and(|t| hash_token(t) == r.status_token_hash)
    });
    match ok {
        Some(r) => Ok(r),
        None => portal.caller.refuse(conn, id, ApiError::NotFound),
    }
}

/// The referral, for its coarse status; the read is logged.
pub async fn read(
    db: &Db,
    portal: HrPortal,
    id: Option<String>,
    token: Option<String>,
) -> Result<ReferralRow, ApiError> {
    db.run(move |conn| {
        let row = authorised(conn, &portal, id.as_deref(), token.as_deref())?;
        audit::store::record_alone(conn, &[portal.caller.event(Some(row.id.as_str()))])?;
        Ok(row)
    })
    .await
}

/// Cancels the referral: the provider holding it gets its slot back and a `cancelled` event.
/// Returns the referral as cancelled.
pub async fn cancel(
    db: &Db,
    portal: HrPortal,
    id: Option<String>,
    token: Option<String>,
) -> Result<ReferralRow, ApiError> {
    db.run(move |conn| {
        // Authorise first, on its own, so a refusal stays logged after the rollback below.
        let id = authorised(conn, &portal, id.as_deref(), token.as_deref())?.id;
        write_tx(conn, |conn| {
            let row = store::lock_referral(conn, &id)?.ok_or(ApiError::NotFound)?;
            if row.status.is_final() {
                return Err(ApiError::Conflict {
                    detail: format!("the referral is already {}", row.status.code()),
                    allowed: Some(vec![]),
                });
            }
            let now = crate::db::now();
            if let Some(provider) = store::withdraw(conn, &row, AttemptOutcome::Cancelled, now)? {
                store::push_event(conn, provider, &id, FeedKind::Cancelled, now)?;
            }
            audit::record(conn, &[portal.caller.event(Some(id.as_str()))])?;
            store::find_referral(conn, &id)?.ok_or(ApiError::NotFound)
        })
    })
    .await
}
