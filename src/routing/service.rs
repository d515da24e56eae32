//! The admin's work on the unroutable queue: listing it, and assigning a referral by hand.

use chrono::NaiveDateTime;

use super::offer::{offer, Slot, Target};
use crate::auth::Caller;
use crate::config::OfferTtl;
use crate::db::{AnyConnection, Db};
use crate::directory::capacity::contracted_providers;
use crate::directory::model::Code;
use crate::error::ApiError;
use crate::ids::{ProviderId, ReferralId};
use crate::referrals::model::Status;
use crate::referrals::store::{self as referrals, ReferralRow};

const UNCONTRACTED: &str = "provider_id: no contract in force with this referral's employer";

/// Offers an unroutable referral to the provider an admin chose, with the admin's access event
/// in the same transaction. Returns the offer's deadline.
pub async fn assign(
    db: &Db,
    ttl: OfferTtl,
    admin: Caller,
    id: ReferralId,
    provider: ProviderId,
) -> Result<NaiveDateTime, ApiError> {
    admin
        .audited(db, move |conn| {
            let deadline = assign_in(conn, &ttl, &id, &provider, crate::db::now())?;
            Ok((deadline, vec![id.into_string()]))
        })
        .await
}

/// The referral (locked first) must be unroutable, and the provider under a contract in force
/// with its employer and with a free slot.
fn assign_in(
    conn: &mut AnyConnection,
    ttl: &OfferTtl,
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
    let contracted = contracted_providers(conn, &row.employer_id)?
        .iter()
        .any(|(c, p, _)| p.id.as_str() == provider.as_str() && c.in_force(now));
    if !contracted {
        // The directory's current state, not the request's shape: 409, like an unknown binding
        // elsewhere.
        return Err(conflict(UNCONTRACTED.into()));
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
