//! An employer's affiliations with providers: set by an admin, and applied at once to offers
//! already made (an offer to a provider the employer is now affiliated with is withdrawn and
//! the referral routed again).

use chrono::NaiveDateTime;

use super::offer::reoffer;
use crate::config::OfferTtl;
use crate::db::AnyConnection;
use crate::directory::capacity::release_slot;
use crate::directory::store as directory;
use crate::error::ApiError;
use crate::ids::{EmployerId, ProviderId};
use crate::keys::MasterKey;
use crate::referrals::store as referrals;
use crate::workflow::model::{AttemptOutcome, FeedKind};

/// Replaces the employer's affiliations, inside the caller's transaction. Every id must name an
/// existing provider (409 otherwise, like any binding to an unknown object). An open offer of
/// one of the employer's referrals to a newly affiliated provider is withdrawn: the slot freed,
/// the attempt closed and the provider told `cancelled` (what it is told of any offer withdrawn
/// from it), and the referral offered to the next eligible provider or queued as unroutable.
pub fn set(
    conn: &mut AnyConnection,
    ttl: &OfferTtl,
    masters: &[MasterKey],
    employer: &EmployerId,
    providers: &[ProviderId],
    now: NaiveDateTime,
) -> Result<(), ApiError> {
    let mut wanted = providers.to_vec();
    wanted.sort();
    wanted.dedup();
    if directory::count_providers(conn, &wanted)? != wanted.len() as i64 {
        return Err(ApiError::Conflict {
            detail: "affiliated_provider_ids: no provider has one of these ids".into(),
            allowed: None,
        });
    }
    let added = directory::set_affiliations(conn, employer, &wanted)?;
    if added.is_empty() {
        return Ok(());
    }
    for row in super::store::open_offers_to(conn, employer, &added)? {
        let Some(provider) = row.provider_id.clone() else {
            continue;
        };
        release_slot(conn, &provider, &row.id)?;
        referrals::close_attempt(conn, &row.id, &provider, AttemptOutcome::Cancelled)?;
        referrals::push_event(conn, &provider, &row.id, FeedKind::Cancelled, now)?;
        reoffer(conn, ttl, masters, &row, now)?;
    }
    Ok(())
}
