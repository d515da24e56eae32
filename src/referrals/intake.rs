//! A submission: the Idempotency-Key taken in the submission's own transaction, the referral
//! sealed, routed and offered, the response stored for replays, and the access event.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::crisis::{crisis_resources, CrisisResource, CrisisTable};
use super::keystore;
use super::model::{
    aad, employee_ref_digest, generate_status_token, hash_token, CoarseStatus, NewReferral, Status,
};
use super::seal::{self, DataKey};
use super::store::{self, KeyRecord, ReferralRow};
use crate::audit;
use crate::auth::{Caller, HrPortal};
use crate::config::OfferTtl;
use crate::db::{write_tx, AnyConnection, Db};
use crate::directory::model::Urgency;
use crate::directory::store as directory;
use crate::error::{ApiError, ErrorCode, FieldError};
use crate::ids::{EmployerId, ReferralId};
use crate::keys::Keys;
use crate::routing::cache::SnapshotCache;
use crate::routing::model::{Preferences, RoutingRequest};
use crate::routing::offer::{chosen, offer, to_json, Slot, Target};
use crate::routing::preferences;
use crate::routing::store::place;
use crate::webhooks::model::OperatorEvent;
use crate::webhooks::store::enqueue_alert;

const IN_FLIGHT: &str =
    "a request with this Idempotency-Key is still being processed; retry shortly";
const NOT_LISTED: &str = "not one of this employer's providers (GET /v1/portal/providers)";
const ERASED: &str =
    "this Idempotency-Key answered a referral whose personal data has since been erased";

/// What the portal gets back from a submission.
#[derive(Debug, Serialize, ToSchema)]
pub struct Submitted {
    /// UUIDv7.
    #[schema(value_type = String)]
    pub id: ReferralId,
    pub status: CoarseStatus,
    pub created_at: DateTime<Utc>,
    /// Shown once: present it as `Referral-Token` to read or cancel this referral. Only its
    /// hash is stored.
    pub status_token: String,
    /// For `urgency: crisis`: where the person can turn right now, without waiting for a
    /// provider.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crisis_resources: Option<Vec<CrisisResource>>,
}

/// A submission's answer: the referral, the HTTP status and JSON body to send, and whether it
/// replays an earlier answer.
pub struct Answer {
    pub id: ReferralId,
    pub status: u16,
    pub body: Vec<u8>,
    pub replayed: bool,
}

/// What the referral's own transaction needs besides the database.
struct Intake {
    keys: Arc<Keys>,
    ttl: OfferTtl,
    snapshots: Arc<SnapshotCache>,
    crisis: Option<Vec<CrisisResource>>,
}

/// Submits a referral under an Idempotency-Key (`key`, with the body's keyed `fingerprint`).
/// One transaction: the key, the work, the stored response and the access event commit together
/// or not at all, so a failed attempt leaves the key free for a retry.
#[allow(clippy::too_many_arguments)]
pub async fn submit(
    db: &Db,
    keys: Arc<Keys>,
    ttl: OfferTtl,
    snapshots: Arc<SnapshotCache>,
    crisis: &CrisisTable,
    portal: HrPortal,
    key: String,
    fingerprint: String,
    new: NewReferral,
) -> Result<Answer, ApiError> {
    let intake = Intake {
        keys,
        ttl,
        snapshots,
        crisis: (new.urgency == Urgency::Crisis).then(|| crisis_resources(crisis, &new.region)),
    };
    db.run(move |conn| {
        let employer = portal.employer_id.clone();
        let answer = write_tx(conn, |conn| {
            let caller = &portal.caller;
            let lock = store::lock_key(conn, caller.client_id.as_str(), &key, &employer)?;
            if !lock.employer_active {
                // Refused before any work, and logged below on its own.
                return Ok(None);
            }
            if !lock.taken {
                return Err(conflict(IN_FLIGHT));
            }
            let answer =
                match store::find_key(conn, caller.client_id.as_str(), &key, crate::db::now())? {
                    None => {
                        let keyed = (key.as_str(), fingerprint.as_str());
                        let (id, body) = create(conn, &intake, caller, &employer, new, keyed)?;
                        Answer {
                            id,
                            status: 201,
                            body,
                            replayed: false,
                        }
                    }
                    Some(record) => {
                        replay_record(conn, &intake.keys, caller, record, &fingerprint)?
                    }
                };
            Ok(Some(answer))
        })?;
        match answer {
            Some(answer) => Ok(answer),
            // A portal of a deactivated (or removed) employer.
            None => portal.caller.refuse(conn, None, ApiError::Forbidden),
        }
    })
    .await
}

/// Answers a retry from its key's record.
fn replay_record(
    conn: &mut AnyConnection,
    keys: &Keys,
    caller: &Caller,
    record: KeyRecord,
    fingerprint: &str,
) -> Result<Answer, ApiError> {
    match record {
        // Erased since: the record keeps neither the body's fingerprint nor the response, and
        // the same person must not be submitted again by a retry.
        KeyRecord {
            referral_id: Some(_),
            response_sealed: None,
            ..
        } => Err(conflict(ERASED)),
        KeyRecord {
            referral_id: Some(id),
            response_status: Some(status),
            response_sealed: Some(sealed),
            request_hash,
            ..
        } => {
            let Some(key) = keystore::data_key(conn, &keys.master, &id)? else {
                return Err(conflict(ERASED));
            };
            if request_hash != fingerprint_under(&key, fingerprint) {
                return Err(ApiError::invalid_parameter(
                    "Idempotency-Key",
                    ErrorCode::Reused,
                    "this key was already used with a different request body",
                ));
            }
            let body = replay(conn, caller, &id, &key, &sealed)?;
            Ok(Answer {
                id,
                status: status as u16,
                body,
                replayed: true,
            })
        }
        _ => Err(ApiError::Internal(
            "an idempotency record without its response".into(),
        )),
    }
}

fn conflict(detail: &str) -> ApiError {
    ApiError::Conflict {
        detail: detail.into(),
        allowed: None,
    }
}

fn internal(e: impl ToString) -> ApiError {
    ApiError::Internal(e.to_string())
}

fn replay_aad(referral_id: &ReferralId) -> Vec<u8> {
    aad(referral_id.as_str(), "idempotent-response")
}

/// Creates, seals and routes a referral, inside the caller's transaction. Returns the id and
/// the response body.
fn create(
    conn: &mut AnyConnection,
    intake: &Intake,
    caller: &Caller,
    employer_id: &EmployerId,
    new: NewReferral,
    (key, fingerprint): (&str, &str),
) -> Result<(ReferralId, Vec<u8>), ApiError> {
    let now = crate::db::now();
    let id = ReferralId::generate();
    let token = generate_status_token();
    let data_key = DataKey::generate();
    let contact = serde_json::to_vec(&new.contact).map_err(internal)?;
    let sealed_contact = seal::seal(&data_key, &aad(id.as_str(), "contact"), &contact);
    let sealed_note = new
        .note
        .as_ref()
        .map(|n| seal::seal(&data_key, &aad(id.as_str(), "note"), n.as_bytes()));
    let (key_id, wrapped) = seal::wrap(&intake.keys.master[0], id.as_str(), &data_key);
    let preferences = Preferences {
        exclude_providers: offered_providers(conn, employer_id, &new.exclude_providers, now)?,
        out_of_area: new.out_of_area,
        helping_professional: new.helping_professional,
    };
    let sealed_preferences = preferences::seal(&data_key, id.as_str(), &preferences)?;

    let request = RoutingRequest {
        service: new.service_type,
        urgency: new.urgency,
        modality: new.modality,
        language: new.language.clone(),
        region: new.region.clone(),
        preferences,
    };
    let (snapshot, loads) = intake.snapshots.for_routing(conn, employer_id)?;
    let tried = HashSet::new();
    let decision = place(conn, (&snapshot, &loads), &request, &tried, &id, now)?;
    // Released first, so the kept loads count this offer in place rather than in a copy.
    drop(loads);
    if let Some(provider) = &decision.chosen {
        intake.snapshots.offered(employer_id, provider);
    }
    let row = ReferralRow {
        id: id.clone(),
        employer_id: employer_id.clone(),
        service_type: new.service_type,
        urgency: new.urgency,
        modality: new.modality,
        language: new.language.as_str().to_owned(),
        region: new.region.as_str().to_owned(),
        // The key and the employee reference go to `referral_keys` (see keystore.rs): an
        // update of this row copies every column it holds.
        employee_ref_hmac: None,
        status: Status::Unroutable,
        outcome: None,
        provider_id: None,
        offer_expires_at: None,
        version: 1,
        status_token_hash: hash_token(&token),
        key_id: None,
        wrapped_key: None,
        sealed_contact: Some(sealed_contact),
        sealed_note,
        routing_reasons: Some(to_json(&decision)?),
        created_at: now,
        updated_at: now,
        closed_at: None,
        erased_at: None,
        sealed_preferences: Some(sealed_preferences),
    };
    let status = match chosen(&decision) {
        Some(provider) => {
            let new = Target::New(Box::new(row));
            offer(conn, &intake.ttl, new, &provider, Slot::Claimed, None, now)?;
            Status::Offered
        }
        None => {
            store::insert_referral(conn, &row)?;
            // The operators' alert commits with the referral, or neither does.
            let unroutable = OperatorEvent::ReferralUnroutable;
            enqueue_alert(conn, unroutable, &id, new.urgency, now)?;
            Status::Unroutable
        }
    };
    let employee_ref = new
        .employee_ref
        .as_deref()
        .map(|r| employee_ref_digest(&intake.keys.pepper, employer_id.as_str(), r));
    keystore::insert(conn, &id, (&key_id, &wrapped), employee_ref.as_deref())?;
    let body = serde_json::to_vec(&Submitted {
        id: id.clone(),
        status: status.coarse(),
        created_at: now.and_utc(),
        status_token: token,
        crisis_resources: intake.crisis.clone(),
    })
    .map_err(internal)?;
    // The replayable copy holds the status token, so it is sealed like the contact block.
    let sealed_body = seal::seal(&data_key, &replay_aad(&id), &body);
    let bound = fingerprint_under(&data_key, fingerprint);
    let record = store::NewKey {
        client_id: &caller.client_id,
        idem_key: key,
        request_hash: &bound,
        referral_id: &id,
        response_status: 201,
        response_sealed: &sealed_body,
        created_at: now,
    };
    store::insert_key(conn, &record)?;
    audit::record(conn, &[caller.event(Some(id.as_str()))])?;
    Ok((id, body))
}

/// The body's fingerprint as stored: bound to the referral's data key, so that the stored value
/// confirms no guessed body once the key is destroyed, even to someone holding the pepper and
/// an old copy of the row.
fn fingerprint_under(key: &DataKey, fingerprint: &str) -> String {
    key.bind("idempotency-fingerprint", fingerprint.as_bytes())
}

/// The person's exclusions, each one of the providers the portal may list (the employer's
/// contracted, active ones); 422 naming each other one by position, never by value.
fn offered_providers(
    conn: &mut AnyConnection,
    employer_id: &EmployerId,
    wanted: &[String],
    now: chrono::NaiveDateTime,
) -> Result<BTreeSet<String>, ApiError> {
    if wanted.is_empty() {
        return Ok(BTreeSet::new());
    }
    let listed: HashSet<String> = directory::portal_providers(conn, employer_id, now)?
        .into_iter()
        .map(|p| p.id.into_string())
        .collect();
    let errors: Vec<FieldError> = wanted
        .iter()
        .enumerate()
        .filter(|(_, id)| !listed.contains(*id))
        .map(|(i, _)| {
            FieldError::member(
                format!("/exclude_providers/{i}"),
                ErrorCode::InvalidValue,
                NOT_LISTED,
            )
        })
        .collect();
    if errors.is_empty() {
        Ok(wanted.iter().cloned().collect())
    } else {
        Err(ApiError::Validation(errors))
    }
}

/// Opens a stored response for a replay.
fn replay(
    conn: &mut AnyConnection,
    caller: &Caller,
    referral_id: &ReferralId,
    key: &DataKey,
    sealed: &[u8],
) -> Result<Vec<u8>, ApiError> {
    let body = seal::open(key, &replay_aad(referral_id), sealed)
        .map_err(|e| ApiError::Internal(format!("replay: {e}")))?;
    // A replay hands out the status token again: it is an access like the first.
    audit::record(conn, &[caller.event(Some(referral_id.as_str()))])?;
    Ok(body)
}
