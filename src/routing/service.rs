//! The admin's work on the unroutable queue: listing it, and assigning a referral by hand.

use std::sync::Arc;

use chrono::NaiveDateTime;

use super::model::{assign_refusal, Refusal};
use super::offer::{offer, request_of, Slot, Target, NOT_ELIGIBLE};
use crate::auth::Caller;
use crate::config::OfferTtl;
use crate::db::{AnyConnection, Db};
use crate::directory::model::Code;
use crate::error::ApiError;
use crate::ids::{ProviderId, ReferralId};
use crate::keys::{Keys, MasterKey};
use crate::referrals::model::Status;
use crate::referrals::store::{self as referrals, ReferralRow};

const AFFILIATED: &str =
    "affiliated_provider: the referral's employer is affiliated with this provider";

/// Offers an unroutable referral to the provider an admin chose, with the admin's access event
/// in the same transaction. Returns the offer's deadline.
pub async fn assign(
    db: &Db,
    ttl: OfferTtl,
    keys: Arc<Keys>,
    admin: Caller,
    id: ReferralId,
    provider: ProviderId,
) -> Result<NaiveDateTime, ApiError> {
    admin
        .audited(db, move |conn| {
            let now = crate::db::now();
            let deadline = assign_in(conn, &ttl, &keys.master, &id, &provider, now)?;
            Ok((deadline, vec![id.into_string()]))
        })
        .await
}

/// The referral (locked first) must be unroutable, and the provider under a contract in force
/// with its employer, active, with a free slot, not affiliated with the employer and not ruled
/// out by the person's preferences (`assign_refusal`).
fn assign_in(
    conn: &mut AnyConnection,
    ttl: &OfferTtl,
    masters: &[MasterKey],
    id: &ReferralId,
    provider: &ProviderId,
    now: NaiveDateTime,
) -> Result<NaiveDateTime, ApiError> {
    let row = referrals::lock_referral(conn, id)?.ok_or(ApiError::NotFound)?;
    if row.status != Status::Unroutable {
        return Err(conflict(format!(
            "the referral is {}, not unroutable",
            row.status.code()
        )));
    }
    // The directory's current state, not the request's shape: 409, like an unknown binding
    // elsewhere.
    let candidate = super::store::candidate_for(conn, &row.employer_id, provider, now)?;
    let request = request_of(conn, masters, &row)?;
    let refusal = match &candidate {
        None => Some(Refusal::NotEligible),
        Some(c) => assign_refusal(&request, c),
    };
    match refusal {
        Some(Refusal::Affiliated) => return Err(conflict(AFFILIATED.into())),
        Some(Refusal::NotEligible) => return Err(conflict(NOT_ELIGIBLE.into())),
        None => {}
    }
    // A provider tried before (it declined, or its offer expired) may be chosen again by a
    // person; its attempt then records the new offer.
    match offer(
        conn,
        ttl,
        Target::Stored(&row),
        provider,
        Slot::Claim,
        None,
        now,
    ) {
        Err(ApiError::PreconditionFailed) => Err(conflict("the referral changed; retry".into())),
        other => other,
    }
}

fn conflict(detail: String) -> ApiError {
    ApiError::Conflict {
        detail,
        allowed: None,
    }
}

/// One page of the unroutable queue, oldest first; each referral listed is an access event.
pub async fn list_unroutable(
    db: &Db,
    admin: Caller,
    after: Option<String>,
    limit: i64,
) -> Result<Vec<ReferralRow>, ApiError> {
    admin
        .audited(db, move |conn| {
            let rows = super::store::unroutable(conn, after.as_deref(), limit)?;
            let ids = rows.iter().map(|r| r.id.to_string()).collect();
            Ok((rows, ids))
        })
        .await
}
