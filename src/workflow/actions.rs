//! What a provider does to a referral offered to or held by it: read it, accept, decline,
//! report progress, and reveal the sealed contact block. Every change locks the referral first
//! (then the provider's slots), under the `If-Match` version the provider sent.

use std::sync::Arc;

use diesel::QueryResult;

use super::model::{
    next, Action, AttemptOutcome, DeclineReason, FeedKind, Outcome, Precondition, TransitionError,
};
use crate::audit::{self, store::record_alone};
use crate::auth::ProviderCaller;
use crate::config::OfferTtl;
use crate::db::{write_tx, AnyConnection, Db};
use crate::directory::capacity::release_slot;
use crate::directory::model::Code;
use crate::error::{ApiError, ErrorCode, FieldError};
use crate::ids::{ProviderId, ReferralId};
use crate::keys::{Keys, MasterKey};
use crate::referrals::keystore;
use crate::referrals::model::{aad, Contact, Status};
use crate::referrals::seal::{self, DataKey};
use crate::referrals::store::{self as referrals, Move, ReferralRow, SealedContactRow};
use crate::routing::offer::reoffer;

const EXPIRED: &str = "the offer has expired; it is being offered elsewhere";
const NOT_ALLOWED: &str = "this action is not allowed in the referral's current status";
const NOT_HELD: &str =
    "contact details are shown only for a referral this provider has accepted and not closed";
const ERASED: &str = "the personal data of this referral has been erased";

/// The provider's referral, or a logged 404: another provider's referral, one no longer offered
/// to it, and an id that does not exist all look the same.
fn mine(
    conn: &mut AnyConnection,
    provider: &ProviderCaller,
    id: Option<&str>,
) -> Result<ReferralRow, ApiError> {
    let row = match id {
        Some(id) => referrals::find_referral(conn, &ReferralId::from_trusted(id.to_owned()))?,
        None => None,
    };
    match row.filter(|r| holds(r, provider)) {
        Some(r) => Ok(r),
        None => provider.caller.refuse(conn, id, ApiError::NotFound),
    }
}

fn holds(row: &ReferralRow, provider: &ProviderCaller) -> bool {
    row.provider_id
        .as_ref()
        .is_some_and(|p| *p == provider.provider_id)
}

fn provider_id(provider: &ProviderCaller) -> ProviderId {
    provider.provider_id.clone()
}

/// Runs `work` on the provider's referral, locked, in one write transaction, and logs the
/// refusals worth an auditor's eye once that transaction has rolled back: a referral that is
/// not this provider's (the same logged 404 as a read's) and an attempt to reach erased contact
/// data (410). The referral is looked up and locked in one statement, and only if it is the
/// provider's: no read before the transaction, no lock on another provider's row.
fn on_locked_mine<T>(
    conn: &mut AnyConnection,
    provider: &ProviderCaller,
    id: Option<String>,
    work: impl FnOnce(&mut AnyConnection, ReferralRow) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    on_locked(
        conn,
        provider,
        id,
        referrals::lock_providers_referral,
        |conn, _, row| work(conn, row),
    )
}

/// [`on_locked_mine`] with the locking read given: `lock` finds and locks the row only if it is
/// the provider's (`None` otherwise), and reads what `work` needs of it.
fn on_locked<R, T>(
    conn: &mut AnyConnection,
    provider: &ProviderCaller,
    id: Option<String>,
    lock: impl FnOnce(&mut AnyConnection, &ReferralId, &ProviderId) -> QueryResult<Option<R>>,
    work: impl FnOnce(&mut AnyConnection, &ReferralId, R) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    let Some(id) = id.map(ReferralId::from_trusted) else {
        return provider.caller.refuse(conn, None, ApiError::NotFound);
    };
    let result = write_tx(conn, |conn| {
        let row = lock(conn, &id, &provider.provider_id)?.ok_or(ApiError::NotFound)?;
        work(conn, &id, row)
    });
    match result {
        Err(e @ (ApiError::NotFound | ApiError::Gone(_))) => {
            provider.caller.refuse(conn, Some(id.as_str()), e)
        }
        _ => result,
    }
}

fn transition_error(e: TransitionError) -> ApiError {
    match e {
        TransitionError::NotAllowed(allowed) => ApiError::Conflict {
            detail: NOT_ALLOWED.into(),
            allowed: Some(allowed.iter().map(|a| action_name(*a)).collect()),
        },
        TransitionError::Outcome(allowed) => {
            let codes: Vec<&str> = allowed.iter().map(|o| o.code()).collect();
            ApiError::Validation(vec![FieldError::member(
                "/outcome",
                ErrorCode::InvalidValue,
                "is not an outcome of closing from this status",
            )
            .expecting(format!("one of: {}", codes.join(", ")))])
        }
    }
}

/// An action as the API spells it.
fn action_name(action: Action) -> String {
    serde_json::to_value(action)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The provider's referral; the read is logged.
pub async fn read(
    db: &Db,
    provider: ProviderCaller,
    id: Option<String>,
) -> Result<ReferralRow, ApiError> {
    db.run(move |conn| {
        let row = mine(conn, &provider, id.as_deref())?;
        record_alone(conn, &[provider.caller.event(Some(row.id.as_str()))])?;
        Ok(row)
    })
    .await
}

/// One page of the provider's referrals (offered to it or held by it), optionally in one status;
/// each listed referral is an access event.
pub async fn list(
    db: &Db,
    provider: ProviderCaller,
    status: Option<Status>,
    after: Option<String>,
    limit: i64,
) -> Result<Vec<ReferralRow>, ApiError> {
    let me = provider_id(&provider);
    provider
        .caller
        .audited(db, move |conn| {
            let rows =
                super::store::provider_referrals(conn, &me, status, after.as_deref(), limit)?;
            let ids = rows.iter().map(|r| r.id.to_string()).collect();
            Ok((rows, ids))
        })
        .await
}

/// Applies a provider action under `If-Match`, in one transaction with its access event and
/// the provider's own feed entry. Capacity is given back when the referral closes.
pub async fn act(
    db: &Db,
    provider: ProviderCaller,
    id: Option<String>,
    expected: Precondition,
    action: Action,
    outcome: Option<Outcome>,
) -> Result<ReferralRow, ApiError> {
    db.run(move |conn| {
        on_locked_mine(conn, &provider, id, |conn, row| {
            apply_action(conn, &provider, &row, &expected, action, outcome)?;
            audit::record(conn, &[provider.caller.event(Some(row.id.as_str()))])?;
            referrals::find_referral(conn, &row.id)?.ok_or(ApiError::NotFound)
        })
    })
    .await
}

fn apply_action(
    conn: &mut AnyConnection,
    provider: &ProviderCaller,
    row: &ReferralRow,
    expected: &Precondition,
    action: Action,
    outcome: Option<Outcome>,
) -> Result<(), ApiError> {
    if !expected.holds(row.version) {
        return Err(ApiError::PreconditionFailed);
    }
    let now = crate::db::now();
    if action == Action::Accept && row.offer_expires_at.is_some_and(|t| t <= now) {
        return Err(ApiError::Conflict {
            detail: EXPIRED.into(),
            allowed: Some(vec![]),
        });
    }
    let to = next(row.status, action, outcome).map_err(transition_error)?;
    let closing = to == Status::Closed;
    let change = Move {
        status: Some(to),
        outcome: closing.then_some(outcome),
        offer_expires_at: (action == Action::Accept).then_some(None),
        closed_at: closing.then_some(Some(now)),
        ..Default::default()
    };
    if !referrals::apply(conn, &row.id, row.version, &change, now)? {
        return Err(ApiError::PreconditionFailed);
    }
    let provider = provider_id(provider);
    if action == Action::Accept {
        referrals::close_attempt(conn, &row.id, &provider, AttemptOutcome::Accepted)?;
    }
    if closing {
        release_slot(conn, &provider, &row.id)?;
    }
    referrals::push_event(conn, &provider, &row.id, FeedKind::from(action), now)?;
    Ok(())
}

/// A decline: its reason, and a comment for the EAP's administrators.
pub struct Declined {
    pub reason: DeclineReason,
    pub comment: Option<String>,
}

/// Declines an offer under `If-Match`: the provider's slot is freed, the comment sealed with the
/// referral's key, and the referral offered to the next eligible provider never tried (or
/// queued as unroutable), in one transaction with the access event.
pub async fn decline(
    db: &Db,
    keys: Arc<Keys>,
    ttl: OfferTtl,
    provider: ProviderCaller,
    id: Option<String>,
    expected: Precondition,
    declined: Declined,
) -> Result<(), ApiError> {
    db.run(move |conn| {
        on_locked_mine(conn, &provider, id, |conn, row| {
            let id = &row.id;
            if !expected.holds(row.version) {
                return Err(ApiError::PreconditionFailed);
            }
            next(row.status, Action::Decline, None).map_err(transition_error)?;
            let now = crate::db::now();
            let me = provider_id(&provider);
            let comment = match &declined.comment {
                Some(c) => seal_decline_comment(conn, &keys.master, &row, &me, c)?,
                None => None,
            };
            release_slot(conn, &me, id)?;
            let reason = declined.reason.code();
            super::store::record_decline(conn, id, &me, reason, comment.as_deref())?;
            referrals::push_event(conn, &me, id, FeedKind::Declined, now)?;
            reoffer(conn, &ttl, &keys.master, &row, now)?;
            audit::record(conn, &[provider.caller.event(Some(id.as_str()))])?;
            Ok(())
        })
    })
    .await
}

/// A decline comment sealed under the referral's key (so erasure destroys it with the rest),
/// bound to the declining provider; `None` when the personal data is already gone.
fn seal_decline_comment(
    conn: &mut AnyConnection,
    masters: &[MasterKey],
    row: &ReferralRow,
    provider: &ProviderId,
    comment: &str,
) -> Result<Option<Vec<u8>>, ApiError> {
    let Some(key) = keystore::data_key(conn, masters, &row.id)? else {
        return Ok(None);
    };
    let field = format!("decline/{provider}");
    Ok(Some(seal::seal(
        &key,
        &aad(row.id.as_str(), &field),
        comment.as_bytes(),
    )))
}

/// How to reach the person, and their note: what a reveal hands out.
pub struct Revealed {
    pub referral_id: ReferralId,
    pub contact: Contact,
    pub note: Option<String>,
}

/// Reveals the sealed contact block and note of a referral this provider has accepted and not
/// closed. Read under lock and logged in the same transaction: a cancellation or erasure that
/// commits meanwhile either happens before (nothing is shown) or waits. Fail closed: the event
/// is committed with the read, before any of it leaves.
pub async fn reveal_contact(
    db: &Db,
    keys: Arc<Keys>,
    provider: ProviderCaller,
    id: Option<String>,
) -> Result<Revealed, ApiError> {
    db.run(move |conn| {
        on_locked(
            conn,
            &provider,
            id,
            referrals::lock_providers_contact,
            |conn, id, row| {
                let revealed = unseal_contact(&keys.master, id, &row)?;
                audit::record(conn, &[provider.caller.event(Some(id.as_str()))])?;
                Ok(revealed)
            },
        )
    })
    .await
}

/// Opens the contact block and note, if the provider may see them now.
fn unseal_contact(
    masters: &[MasterKey],
    referral_id: &ReferralId,
    row: &SealedContactRow,
) -> Result<Revealed, ApiError> {
    // Erased or purged: gone for good, whatever the status, so a provider stops retrying.
    if row.erased_at.is_some() {
        return Err(ApiError::Gone(ERASED));
    }
    let held = [
        Status::Accepted,
        Status::Contacted,
        Status::Scheduled,
        Status::InProgress,
    ];
    if !held.contains(&row.status) {
        return Err(conflict(NOT_HELD));
    }
    let Some(sealed) = row.sealed_contact.as_deref() else {
        return Err(conflict(ERASED));
    };
    let (Some(key_id), Some(wrapped)) = (row.key_id.as_deref(), row.wrapped_key.as_deref()) else {
        return Err(conflict(ERASED));
    };
    let key = keystore::unwrap(masters, referral_id, key_id, wrapped)?;
    let id = referral_id.as_str();
    let contact = open(&key, id, "contact", sealed)?;
    let contact: Contact = serde_json::from_slice(&contact).map_err(|e| {
        // serde's message would quote decrypted text; keep only where it failed.
        let at = format!("{:?} at {}:{}", e.classify(), e.line(), e.column());
        ApiError::Internal(format!("contact block does not parse ({at})"))
    })?;
    let note = match row.sealed_note.as_deref() {
        Some(n) => Some(
            String::from_utf8(open(&key, id, "note", n)?)
                .map_err(|e| ApiError::Internal(e.to_string()))?,
        ),
        None => None,
    };
    Ok(Revealed {
        referral_id: referral_id.clone(),
        contact,
        note,
    })
}

fn open(key: &DataKey, id: &str, field: &str, sealed: &[u8]) -> Result<Vec<u8>, ApiError> {
    seal::open(key, &aad(id, field), sealed).map_err(|e| ApiError::Internal(format!("open: {e}")))
}

fn conflict(detail: &str) -> ApiError {
    ApiError::Conflict {
        detail: detail.into(),
        allowed: None,
    }
}
