//! Offering a referral to a provider: the one place that does it, for intake (first routing at
//! submission), re-offers (an expired offer, a decline) and an admin's manual assignment.

use std::collections::HashSet;

use chrono::NaiveDateTime;

use super::model::{Decision, RoutingRequest};
use super::store::{place, Snapshot};
use crate::config::OfferTtl;
use crate::db::AnyConnection;
use crate::directory::capacity::claim_slot;
use crate::directory::model::{Language, Region, Urgency};
use crate::error::ApiError;
use crate::ids::{ProviderId, ReferralId};
use crate::keys::MasterKey;
use crate::referrals::model::Status;
use crate::referrals::store::{self, Move, ReferralRow};
use crate::webhooks::model::OperatorEvent;
use crate::webhooks::store::enqueue_alert;
use crate::workflow::model::FeedKind;

/// The one answer for every provider a person may not choose for this referral (inactive,
/// paused, full, uncontracted, or ruled out by the person's own preferences): trying providers
/// one by one must tell nothing the directory does not already show.
pub const NOT_ELIGIBLE: &str =
    "provider_not_eligible: provider_id: this provider cannot take this referral now";

/// When an offer made at `now` lapses: the provider has this long to accept or decline.
pub fn offer_deadline(ttl: &OfferTtl, urgency: Urgency, now: NaiveDateTime) -> NaiveDateTime {
    let ttl = match urgency {
        Urgency::Crisis => ttl.crisis,
        Urgency::Urgent => ttl.urgent,
        Urgency::Routine => ttl.routine,
    };
    now + chrono::TimeDelta::from_std(ttl).unwrap_or(chrono::TimeDelta::hours(48))
}

/// The referral an offer is written to.
pub enum Target<'a> {
    /// Being submitted: inserted already offered, at its first version.
    New(Box<ReferralRow>),
    /// Stored, read under lock: changed only if still at the version read.
    Stored(&'a ReferralRow),
}

impl Target<'_> {
    fn id(&self) -> &ReferralId {
        match self {
            Target::New(row) => &row.id,
            Target::Stored(row) => &row.id,
        }
    }
}

/// Whose capacity the offer takes.
pub enum Slot {
    /// Routing already claimed the slot (`place` claims it for the provider it chooses).
    Claimed,
    /// A person chose the provider: claim its slot now, 409 when it has none free.
    Claim,
}

/// Offers the referral to `provider`: takes its slot, sets provider, status, offer deadline and
/// version, records the attempt and tells the provider through its feed. `reasons` (the routing
/// decision as JSON) replaces the stored ones when given. A stored referral that moved on since
/// it was read is `PreconditionFailed`. Returns the offer's deadline.
pub fn offer(
    conn: &mut AnyConnection,
    ttl: &OfferTtl,
    target: Target<'_>,
    provider: &ProviderId,
    slot: Slot,
    reasons: Option<String>,
    now: NaiveDateTime,
) -> Result<NaiveDateTime, ApiError> {
    if let Slot::Claim = slot {
        if !claim_slot(conn, provider, target.id())? {
            return Err(ApiError::Conflict {
                detail: NOT_ELIGIBLE.into(),
                allowed: None,
            });
        }
    }
    let id = target.id().clone();
    let first = matches!(target, Target::New(_));
    let deadline = match target {
        Target::New(mut row) => {
            let deadline = offer_deadline(ttl, row.urgency, now);
            row.status = Status::Offered;
            row.provider_id = Some(provider.clone());
            row.offer_expires_at = Some(deadline);
            if reasons.is_some() {
                row.routing_reasons = reasons;
            }
            store::insert_referral(conn, &row)?;
            deadline
        }
        Target::Stored(row) => {
            let deadline = offer_deadline(ttl, row.urgency, now);
            let change = Move {
                status: Some(Status::Offered),
                provider_id: Some(Some(provider.clone())),
                offer_expires_at: Some(Some(deadline)),
                routing_reasons: reasons.map(Some),
                ..Default::default()
            };
            if !store::apply(conn, &row.id, row.version, &change, now)? {
                return Err(ApiError::PreconditionFailed);
            }
            deadline
        }
    };
    if first {
        // A referral being submitted has no attempts yet: no renewal to try first.
        store::insert_attempt(conn, &id, provider, now)?;
    } else {
        store::offer_attempt(conn, &id, provider, now)?;
    }
    store::push_event(conn, provider, &id, FeedKind::Offered, now)?;
    Ok(deadline)
}

/// What routing matches a stored referral on, the person's sealed preferences opened.
pub fn request_of(
    conn: &mut AnyConnection,
    masters: &[MasterKey],
    row: &ReferralRow,
) -> Result<RoutingRequest, ApiError> {
    let unknown = |e: &str| ApiError::Internal(format!("referral {}: {e}", row.id));
    Ok(RoutingRequest {
        service: row.service_type,
        urgency: row.urgency,
        modality: row.modality,
        language: Language::parse(&row.language).map_err(unknown)?,
        region: Region::parse(&row.region).map_err(unknown)?,
        preferences: super::preferences::open(conn, masters, row)?,
    })
}

/// Offers a stored referral (read under lock) to the next eligible provider never tried for it,
/// or queues it as unroutable. After a decline, and for an offer that expired.
pub fn reoffer(
    conn: &mut AnyConnection,
    ttl: &OfferTtl,
    masters: &[MasterKey],
    row: &ReferralRow,
    now: NaiveDateTime,
) -> Result<(), ApiError> {
    let request = request_of(conn, masters, row)?;
    let tried: HashSet<String> = store::tried_providers(conn, &row.id)?.into_iter().collect();
    let (snapshot, loads) = Snapshot::read_fresh(conn, &row.employer_id)?;
    let decision = place(conn, (&snapshot, &loads), &request, &tried, &row.id, now)?;
    let reasons = Some(to_json(&decision)?);
    match chosen(&decision) {
        Some(p) => offer(
            conn,
            ttl,
            Target::Stored(row),
            &p,
            Slot::Claimed,
            reasons,
            now,
        )
        .map(|_| ()),
        None => {
            let change = Move {
                status: Some(Status::Unroutable),
                provider_id: Some(None),
                offer_expires_at: Some(None),
                routing_reasons: Some(reasons),
                ..Default::default()
            };
            if !store::apply(conn, &row.id, row.version, &change, now)? {
                return Err(ApiError::PreconditionFailed);
            }
            // In the same transaction as the move: the alert goes out if, and only if, the
            // referral is unroutable.
            let unroutable = OperatorEvent::ReferralUnroutable;
            enqueue_alert(conn, unroutable, &row.id, row.urgency, now)?;
            Ok(())
        }
    }
}

/// The provider routing chose (and claimed a slot with), if any.
pub fn chosen(decision: &Decision) -> Option<ProviderId> {
    decision.chosen.clone().map(ProviderId::from_trusted)
}

pub fn to_json(decision: &Decision) -> Result<String, ApiError> {
    serde_json::to_string(decision).map_err(|e| ApiError::Internal(e.to_string()))
}
