use chrono::{NaiveDateTime, TimeDelta};
use diesel::prelude::*;

use crate::db::schema::{idempotency_keys, provider_events, referral_attempts, referrals};
use crate::db::{write_tx, AnyConnection};
use crate::error::ApiError;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = referrals)]
pub struct ReferralRow {
    pub id: String,
    pub employer_id: String,
    pub service_type: String,
    pub urgency: String,
    pub modality: String,
    pub language: String,
    pub region: String,
    pub employee_ref_hmac: Option<String>,
    pub status: String,
    pub outcome: Option<String>,
    pub provider_id: Option<String>,
    pub offer_expires_at: Option<NaiveDateTime>,
    pub version: i32,
    pub status_token_hash: String,
    pub key_id: Option<String>,
    pub wrapped_key: Option<Vec<u8>>,
    pub sealed_contact: Option<Vec<u8>>,
    pub sealed_note: Option<Vec<u8>>,
    pub routing_reasons: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub closed_at: Option<NaiveDateTime>,
}

pub fn insert_referral(conn: &mut AnyConnection, row: &ReferralRow) -> QueryResult<()> {
    diesel::insert_into(referrals::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

pub fn find_referral(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<ReferralRow>> {
    referrals::table
        .find(id)
        .select(ReferralRow::as_select())
        .first(conn)
        .optional()
}

/// Moves a referral to `status` if it is still at `version`; returns whether it did.
pub fn set_status(
    conn: &mut AnyConnection,
    id: &str,
    version: i32,
    status: &str,
    now: NaiveDateTime,
    closed: bool,
) -> QueryResult<bool> {
    diesel::update(
        referrals::table
            .find(id)
            .filter(referrals::version.eq(version)),
    )
    .set((
        referrals::status.eq(status),
        referrals::version.eq(version + 1),
        referrals::updated_at.eq(now),
        referrals::offer_expires_at.eq(None::<NaiveDateTime>),
        referrals::closed_at.eq(closed.then_some(now)),
    ))
    .execute(conn)
    .map(|n| n == 1)
}

pub fn insert_attempt(
    conn: &mut AnyConnection,
    referral_id: &str,
    provider_id: &str,
    now: NaiveDateTime,
) -> QueryResult<()> {
    diesel::insert_into(referral_attempts::table)
        .values((
            referral_attempts::referral_id.eq(referral_id),
            referral_attempts::provider_id.eq(provider_id),
            referral_attempts::offered_at.eq(now),
        ))
        .execute(conn)
        .map(|_| ())
}

pub fn close_attempt(
    conn: &mut AnyConnection,
    referral_id: &str,
    provider_id: &str,
    outcome: &str,
) -> QueryResult<()> {
    diesel::update(
        referral_attempts::table
            .find((referral_id, provider_id))
            .filter(referral_attempts::outcome.is_null()),
    )
    .set(referral_attempts::outcome.eq(outcome))
    .execute(conn)
    .map(|_| ())
}

pub fn tried_providers(conn: &mut AnyConnection, referral_id: &str) -> QueryResult<Vec<String>> {
    referral_attempts::table
        .filter(referral_attempts::referral_id.eq(referral_id))
        .select(referral_attempts::provider_id)
        .load(conn)
}

/// Appends to a provider's feed (ids only; the provider reads details through the API).
pub fn push_event(
    conn: &mut AnyConnection,
    provider_id: &str,
    referral_id: &str,
    kind: &str,
    now: NaiveDateTime,
) -> QueryResult<()> {
    diesel::insert_into(provider_events::table)
        .values((
            provider_events::provider_id.eq(provider_id),
            provider_events::referral_id.eq(referral_id),
            provider_events::kind.eq(kind),
            provider_events::created_at.eq(now),
        ))
        .execute(conn)
        .map(|_| ())
}

pub fn events_for(
    conn: &mut AnyConnection,
    provider_id: &str,
) -> QueryResult<Vec<(String, String)>> {
    provider_events::table
        .filter(provider_events::provider_id.eq(provider_id))
        .order(provider_events::id.asc())
        .select((provider_events::referral_id, provider_events::kind))
        .load(conn)
}

// ---------------------------------------------------------------------------------------------
// Idempotency keys (draft-ietf-httpapi-idempotency-key-header)

/// How long a completed key replays its response.
pub const IDEMPOTENCY_TTL: TimeDelta = TimeDelta::hours(24);
/// An unfinished claim older than this was abandoned (the process died mid-request).
pub const IN_FLIGHT_TIMEOUT: TimeDelta = TimeDelta::seconds(60);

#[derive(Debug)]
pub enum Claim {
    /// This request owns the key; do the work, then `complete_key` (or `release_key`).
    Claimed,
    /// Done before with the same body: replay this response.
    Replay {
        referral_id: String,
        status: u16,
        sealed: Vec<u8>,
    },
    /// The first request with this key has not finished.
    InFlight,
    /// The key was used with a different body.
    Mismatch,
}

#[derive(Queryable)]
struct KeyRow {
    request_hash: String,
    referral_id: Option<String>,
    response_status: Option<i32>,
    response_sealed: Option<Vec<u8>>,
    created_at: NaiveDateTime,
}

/// Claims `key` for `client` in a transaction of its own, committed before the work starts, so
/// a second request with the key sees it in flight.
pub fn claim_key(
    conn: &mut AnyConnection,
    client: &str,
    key: &str,
    request_hash: &str,
    now: NaiveDateTime,
) -> Result<Claim, ApiError> {
    let result = write_tx(conn, |conn| {
        let existing: Option<KeyRow> = idempotency_keys::table
            .find((client, key))
            .select((
                idempotency_keys::request_hash,
                idempotency_keys::referral_id,
                idempotency_keys::response_status,
                idempotency_keys::response_sealed,
                idempotency_keys::created_at,
            ))
            .first(conn)
            .optional()?;
        if let Some(row) = existing {
            let expired = row.created_at + IDEMPOTENCY_TTL < now;
            let abandoned =
                row.response_status.is_none() && row.created_at + IN_FLIGHT_TIMEOUT < now;
            if !(expired || abandoned) {
                return Ok(
                    match (
                        row.request_hash == request_hash,
                        row.response_status,
                        row.referral_id,
                        row.response_sealed,
                    ) {
                        (false, _, _, _) => Claim::Mismatch,
                        (true, Some(status), Some(referral_id), Some(sealed)) => Claim::Replay {
                            referral_id,
                            status: status as u16,
                            sealed,
                        },
                        _ => Claim::InFlight,
                    },
                );
            }
            diesel::delete(idempotency_keys::table.find((client, key))).execute(conn)?;
        }
        diesel::insert_into(idempotency_keys::table)
            .values((
                idempotency_keys::client_id.eq(client),
                idempotency_keys::idem_key.eq(key),
                idempotency_keys::request_hash.eq(request_hash),
                idempotency_keys::created_at.eq(now),
            ))
            .execute(conn)?;
        Ok::<_, diesel::result::Error>(Claim::Claimed)
    });
    match result {
        Ok(claim) => Ok(claim),
        // Two first requests raced to insert the key: the loser sees it in flight.
        Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        )) => Ok(Claim::InFlight),
        Err(e) => Err(e.into()),
    }
}

/// Stores the response, in the same transaction as the work it answers.
pub fn complete_key(
    conn: &mut AnyConnection,
    client: &str,
    key: &str,
    referral_id: &str,
    status: u16,
    sealed: &[u8],
) -> QueryResult<()> {
    diesel::update(idempotency_keys::table.find((client, key)))
        .set((
            idempotency_keys::referral_id.eq(referral_id),
            idempotency_keys::response_status.eq(i32::from(status)),
            idempotency_keys::response_sealed.eq(sealed),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Frees a claim whose work failed, so the client can retry with the same key.
pub fn release_key(conn: &mut AnyConnection, client: &str, key: &str) -> QueryResult<()> {
    diesel::delete(
        idempotency_keys::table
            .find((client, key))
            .filter(idempotency_keys::response_status.is_null()),
    )
    .execute(conn)
    .map(|_| ())
}

/// Re-wraps every data key not yet under the active (first) master key, in batches; the
/// ciphertexts are not touched. Returns how many keys were re-wrapped.
pub fn rewrap_all(
    conn: &mut AnyConnection,
    masters: &[crate::keys::MasterKey],
) -> Result<usize, ApiError> {
    let active = &masters[0];
    let mut total = 0;
    loop {
        let batch: Vec<(String, Option<String>, Option<Vec<u8>>)> = referrals::table
            .filter(referrals::key_id.is_not_null())
            .filter(referrals::key_id.ne(&active.id))
            .select((referrals::id, referrals::key_id, referrals::wrapped_key))
            .order(referrals::id.asc())
            .limit(500)
            .load(conn)?;
        if batch.is_empty() {
            return Ok(total);
        }
        write_tx(conn, |conn| {
            for (id, key_id, wrapped) in &batch {
                let (Some(key_id), Some(wrapped)) = (key_id, wrapped) else {
                    continue;
                };
                let key = super::seal::unwrap(masters, key_id, id, wrapped)
                    .map_err(|e| ApiError::Internal(format!("referral {id}: {e}")))?;
                let (new_id, new_wrapped) = super::seal::wrap(active, id, &key);
                diesel::update(
                    referrals::table
                        .find(id)
                        .filter(referrals::key_id.eq(key_id)),
                )
                .set((
                    referrals::key_id.eq(new_id),
                    referrals::wrapped_key.eq(new_wrapped),
                ))
                .execute(conn)?;
            }
            Ok::<_, ApiError>(())
        })?;
        total += batch.len();
    }
}
