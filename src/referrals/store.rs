use chrono::{NaiveDateTime, TimeDelta};
use diesel::prelude::*;

use super::model::Status;
use crate::db::schema::{
    idempotency_keys, provider_events, referral_attempts, referral_keys, referrals,
};
use crate::db::AnyConnection;
use crate::directory::capacity::release_slot;
use crate::directory::model::{Code, Modality, Service, Urgency};
use crate::error::ApiError;
use crate::ids::{ClientId, EmployerId, ProviderId, ReferralId};
use crate::workflow::model::{AttemptOutcome, FeedKind, Outcome};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = referrals)]
pub struct ReferralRow {
    pub id: ReferralId,
    pub employer_id: EmployerId,
    pub service_type: Service,
    pub urgency: Urgency,
    pub modality: Modality,
    pub language: String,
    pub region: String,
    pub employee_ref_hmac: Option<String>,
    pub status: Status,
    pub outcome: Option<Outcome>,
    pub provider_id: Option<ProviderId>,
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
    /// When the personal data was destroyed (purge or erasure); null while it is held.
    pub erased_at: Option<NaiveDateTime>,
    /// The person's routing preferences, sealed (routing/preferences.rs); null before they
    /// existed and once shredded.
    pub sealed_preferences: Option<Vec<u8>>,
}

pub fn insert_referral(conn: &mut AnyConnection, row: &ReferralRow) -> QueryResult<()> {
    use diesel::sql_types::{Binary, Integer, Nullable, Text, Timestamp};
    let c = match conn {
        AnyConnection::Postgresql(c) => c,
        AnyConnection::Sqlite(_) => {
            return diesel::insert_into(referrals::table)
                .values(row)
                .execute(conn)
                .map(|_| ());
        }
    };
    // Every column, prepared once per connection: diesel would parse an insert with nullable
    // values anew on every submission. (Destructured, so a new field cannot be left out.)
    let ReferralRow {
        id,
        employer_id,
        service_type,
        urgency,
        modality,
        language,
        region,
        employee_ref_hmac,
        status,
        outcome,
        provider_id,
        offer_expires_at,
        version,
        status_token_hash,
        key_id,
        wrapped_key,
        sealed_contact,
        sealed_note,
        routing_reasons,
        created_at,
        updated_at,
        closed_at,
        erased_at,
        sealed_preferences,
    } = row;
    crate::db::prepared::prepared(
        "INSERT INTO referrals (id, employer_id, service_type, urgency, modality, language, \
           region, employee_ref_hmac, status, outcome, provider_id, offer_expires_at, version, \
           status_token_hash, key_id, wrapped_key, sealed_contact, sealed_note, routing_reasons, \
           created_at, updated_at, closed_at, erased_at, sealed_preferences) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
           $18, $19, $20, $21, $22, $23, $24)",
    )
    .bind::<Text, _>(id)
    .bind::<Text, _>(employer_id)
    .bind::<Text, _>(service_type)
    .bind::<Text, _>(urgency)
    .bind::<Text, _>(modality)
    .bind::<Text, _>(language)
    .bind::<Text, _>(region)
    .bind::<Nullable<Text>, _>(employee_ref_hmac)
    .bind::<Text, _>(status)
    .bind::<Nullable<Text>, _>(outcome)
    .bind::<Nullable<Text>, _>(provider_id)
    .bind::<Nullable<Timestamp>, _>(offer_expires_at)
    .bind::<Integer, _>(version)
    .bind::<Text, _>(status_token_hash)
    .bind::<Nullable<Text>, _>(key_id)
    .bind::<Nullable<Binary>, _>(wrapped_key)
    .bind::<Nullable<Binary>, _>(sealed_contact)
    .bind::<Nullable<Binary>, _>(sealed_note)
    .bind::<Nullable<Text>, _>(routing_reasons)
    .bind::<Timestamp, _>(created_at)
    .bind::<Timestamp, _>(updated_at)
    .bind::<Nullable<Timestamp>, _>(closed_at)
    .bind::<Nullable<Timestamp>, _>(erased_at)
    .bind::<Nullable<Binary>, _>(sealed_preferences)
    .execute(c)
    .map(|_| ())
}

pub fn find_referral(
    conn: &mut AnyConnection,
    id: &ReferralId,
) -> QueryResult<Option<ReferralRow>> {
    referrals::table
        .find(id)
        .select(ReferralRow::as_select())
        .first(conn)
        .optional()
}

/// Reads a referral to change it. On PostgreSQL the row is locked first, so every action takes
/// its locks in one order — the referral, then the provider's slots — and none can deadlock
/// another (the sweeper and cancellation do the same).
pub fn lock_referral(
    conn: &mut AnyConnection,
    id: &ReferralId,
) -> QueryResult<Option<ReferralRow>> {
    match conn {
        AnyConnection::Postgresql(c) => referrals::table
            .find(id)
            .select(ReferralRow::as_select())
            .for_update()
            .first(c)
            .optional(),
        AnyConnection::Sqlite(c) => referrals::table
            .find(id)
            .select(ReferralRow::as_select())
            .first(c)
            .optional(),
    }
}

/// [`lock_referral`], for a referral `provider` holds or is offered: another's is `None` and
/// is not locked, so probing an id holds up no one's work.
pub fn lock_providers_referral(
    conn: &mut AnyConnection,
    id: &ReferralId,
    provider: &ProviderId,
) -> QueryResult<Option<ReferralRow>> {
    let mine = referrals::table
        .find(id)
        .filter(referrals::provider_id.eq(provider));
    match conn {
        AnyConnection::Postgresql(c) => mine
            .select(ReferralRow::as_select())
            .for_update()
            .first(c)
            .optional(),
        AnyConnection::Sqlite(c) => mine.select(ReferralRow::as_select()).first(c).optional(),
    }
}

/// What a contact reveal needs of a referral, and its wrapped data key beside it (`None` once
/// destroyed).
#[derive(Debug, Queryable)]
pub struct SealedContactRow {
    pub status: Status,
    pub erased_at: Option<NaiveDateTime>,
    pub sealed_contact: Option<Vec<u8>>,
    pub sealed_note: Option<Vec<u8>>,
    pub key_id: Option<String>,
    pub wrapped_key: Option<Vec<u8>>,
}

/// [`lock_providers_referral`] for a contact reveal: the same row, found and locked only if it
/// is the provider's, but only the columns the reveal reads, with the data key read in the
/// same statement (the reveal's one read: a round trip fewer, a sixth of the columns).
pub fn lock_providers_contact(
    conn: &mut AnyConnection,
    id: &ReferralId,
    provider: &ProviderId,
) -> QueryResult<Option<SealedContactRow>> {
    let key = referral_keys::table.find(id);
    let mine = referrals::table
        .find(id)
        .filter(referrals::provider_id.eq(provider))
        .select((
            referrals::status,
            referrals::erased_at,
            referrals::sealed_contact,
            referrals::sealed_note,
            key.select(referral_keys::key_id).single_value(),
            key.select(referral_keys::wrapped_key).single_value(),
        ));
    match conn {
        // FOR UPDATE locks the referral's row only: a subquery in the select list is not locked.
        AnyConnection::Postgresql(c) => mine.for_update().first(c).optional(),
        AnyConnection::Sqlite(c) => mine.first(c).optional(),
    }
}

/// The changes an action makes to a referral, applied only at `version`.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = referrals)]
pub struct Move {
    pub status: Option<Status>,
    pub outcome: Option<Option<Outcome>>,
    pub provider_id: Option<Option<ProviderId>>,
    pub offer_expires_at: Option<Option<NaiveDateTime>>,
    pub routing_reasons: Option<Option<String>>,
    pub closed_at: Option<Option<NaiveDateTime>>,
}

/// Applies `change` if the referral is still at `version`, bumping it; false when it moved on.
pub fn apply(
    conn: &mut AnyConnection,
    id: &ReferralId,
    version: i32,
    change: &Move,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    diesel::update(
        referrals::table
            .find(id)
            .filter(referrals::version.eq(version)),
    )
    .set((
        change,
        referrals::version.eq(version + 1),
        referrals::updated_at.eq(now),
    ))
    .execute(conn)
    .map(|n| n == 1)
}

/// Withdraws an open referral (`row`, read under lock): cancelled now, no offer deadline. A
/// provider holding it gets its slot back and its attempt closed as `why`; returns that
/// provider. 409 when the referral moved on since `row` was read.
pub fn withdraw<'r>(
    conn: &mut AnyConnection,
    row: &'r ReferralRow,
    why: AttemptOutcome,
    now: NaiveDateTime,
) -> Result<Option<&'r ProviderId>, ApiError> {
    let change = Move {
        status: Some(Status::Cancelled),
        offer_expires_at: Some(None),
        closed_at: Some(Some(now)),
        ..Default::default()
    };
    if !apply(conn, &row.id, row.version, &change, now)? {
        return Err(ApiError::Conflict {
            detail: format!(
                "the referral changed while it was being {}; retry",
                why.code()
            ),
            allowed: None,
        });
    }
    match (&row.provider_id, row.status.holds_capacity()) {
        (Some(provider), true) => {
            release_slot(conn, provider, &row.id)?;
            close_attempt(conn, &row.id, provider, why)?;
            Ok(Some(provider))
        }
        _ => Ok(None),
    }
}

/// Records an offer to `provider`: a new attempt, or a fresh start for one tried before (an
/// admin may choose again a provider that declined or let its offer expire).
pub fn offer_attempt(
    conn: &mut AnyConnection,
    referral_id: &ReferralId,
    provider_id: &ProviderId,
    now: NaiveDateTime,
) -> QueryResult<()> {
    let renewed = diesel::update(referral_attempts::table.find((referral_id, provider_id)))
        .set((
            referral_attempts::offered_at.eq(now),
            referral_attempts::outcome.eq(None::<AttemptOutcome>),
        ))
        .execute(conn)?;
    if renewed == 0 {
        insert_attempt(conn, referral_id, provider_id, now)?;
    }
    Ok(())
}

/// A referral's first attempt with the provider ([`offer_attempt`] renews a later one).
pub fn insert_attempt(
    conn: &mut AnyConnection,
    referral_id: &ReferralId,
    provider_id: &ProviderId,
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
    referral_id: &ReferralId,
    provider_id: &ProviderId,
    outcome: AttemptOutcome,
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

pub fn tried_providers(
    conn: &mut AnyConnection,
    referral_id: &ReferralId,
) -> QueryResult<Vec<String>> {
    referral_attempts::table
        .filter(referral_attempts::referral_id.eq(referral_id))
        .select(referral_attempts::provider_id)
        .load(conn)
}

/// Appends to a provider's feed (ids only; the provider reads details through the API), and
/// queues the event for each of the provider's webhook endpoints. Every feed event goes
/// through here.
pub fn push_event(
    conn: &mut AnyConnection,
    provider_id: &ProviderId,
    referral_id: &ReferralId,
    kind: FeedKind,
    now: NaiveDateTime,
) -> QueryResult<()> {
    // Wake long polls: here after the work returns, elsewhere when PostgreSQL commits.
    crate::db::notify::touched(provider_id.as_str());
    // The webhook outbox, in this same transaction: the event and its deliveries commit
    // together, so no committed event can miss its webhooks.
    match conn {
        // One round trip for the event, its deliveries and the other instances' wake-up: this
        // runs inside every offer, accept, decline and close, while their row locks are held.
        AnyConnection::Postgresql(c) => crate::webhooks::store::insert_event_with_deliveries(
            c,
            provider_id,
            referral_id,
            kind,
            now,
            crate::db::notify::CHANNEL,
        ),
        AnyConnection::Sqlite(_) => {
            diesel::insert_into(provider_events::table)
                .values((
                    provider_events::provider_id.eq(provider_id),
                    provider_events::referral_id.eq(referral_id),
                    provider_events::kind.eq(kind),
                    provider_events::created_at.eq(now),
                ))
                .execute(conn)?;
            crate::webhooks::store::enqueue_event(conn, provider_id, now)
        }
    }
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

/// A key's stored outcome.
#[derive(Debug, Queryable)]
pub struct KeyRecord {
    pub request_hash: String,
    pub referral_id: Option<ReferralId>,
    pub response_status: Option<i32>,
    pub response_sealed: Option<Vec<u8>>,
    pub created_at: NaiveDateTime,
}

/// What a submission's first statement finds.
pub struct KeyLock {
    /// The Idempotency-Key is this transaction's (`false`: a request with it is in flight).
    pub taken: bool,
    /// The portal's employer exists and is active.
    pub employer_active: bool,
}

/// Takes the key for this transaction, and reads whether the portal's employer is active in the
/// same round trip. On PostgreSQL a transaction-scoped advisory lock: a second request with the
/// same key while the first is running is told so (`taken` false) instead of waiting. SQLite
/// runs one writer at a time, so there a duplicate waits and then replays.
pub fn lock_key(
    conn: &mut AnyConnection,
    client: &str,
    key: &str,
    employer_id: &EmployerId,
) -> QueryResult<KeyLock> {
    let c = match conn {
        AnyConnection::Postgresql(c) => c,
        AnyConnection::Sqlite(_) => {
            let employer = crate::directory::store::find_employer(conn, employer_id)?;
            return Ok(KeyLock {
                taken: true,
                employer_active: employer.is_some_and(|e| e.active),
            });
        }
    };
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        taken: bool,
        #[diesel(sql_type = diesel::sql_types::Bool)]
        employer_active: bool,
    }
    // FNV-1a over both parts: stable, and keys of different clients rarely share a lock.
    let h = format!("idempotency\0{client}\0{key}")
        .bytes()
        .fold(0xcbf29ce484222325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
        });
    let row = crate::db::prepared::prepared(
        "SELECT pg_try_advisory_xact_lock($1) AS taken, \
           EXISTS (SELECT 1 FROM employers WHERE id = $2 AND active) AS employer_active",
    )
    .bind::<diesel::sql_types::BigInt, _>(h as i64)
    .bind::<diesel::sql_types::Text, _>(employer_id)
    .get_result::<Row>(c)?;
    Ok(KeyLock {
        taken: row.taken,
        employer_active: row.employer_active,
    })
}

/// The live record for a key; an expired one is deleted so the key can be used afresh.
pub fn find_key(
    conn: &mut AnyConnection,
    client: &str,
    key: &str,
    now: NaiveDateTime,
) -> QueryResult<Option<KeyRecord>> {
    let row: Option<KeyRecord> = idempotency_keys::table
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
    match row {
        Some(r) if r.created_at + IDEMPOTENCY_TTL < now => {
            diesel::delete(idempotency_keys::table.find((client, key))).execute(conn)?;
            Ok(None)
        }
        other => Ok(other),
    }
}

/// Deletes keys past their replay window (run periodically by the server).
pub fn purge_expired_keys(conn: &mut AnyConnection, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::delete(
        idempotency_keys::table.filter(idempotency_keys::created_at.lt(now - IDEMPOTENCY_TTL)),
    )
    .execute(conn)
}

/// An Idempotency-Key's record: named fields, so the client, the key and the body's fingerprint
/// (all text) cannot be passed in each other's place.
#[derive(Insertable)]
#[diesel(table_name = idempotency_keys)]
pub struct NewKey<'a> {
    pub client_id: &'a ClientId,
    pub idem_key: &'a str,
    /// The keyed fingerprint of the request body.
    pub request_hash: &'a str,
    pub referral_id: &'a ReferralId,
    pub response_status: i32,
    /// The response, sealed with the referral's data key (it holds the status token).
    pub response_sealed: &'a [u8],
    pub created_at: NaiveDateTime,
}

/// Records a key with its response, in the same transaction as the work it answers.
pub fn insert_key(conn: &mut AnyConnection, key: &NewKey<'_>) -> QueryResult<()> {
    use diesel::sql_types::{Binary, Integer, Text, Timestamp};
    match conn {
        // Prepared once per connection: diesel would parse this insert anew on every submission.
        AnyConnection::Postgresql(c) => {
            let NewKey {
                client_id,
                idem_key,
                request_hash,
                referral_id,
                response_status,
                response_sealed,
                created_at,
            } = key;
            crate::db::prepared::prepared(
                "INSERT INTO idempotency_keys (client_id, idem_key, request_hash, referral_id, \
               response_status, response_sealed, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind::<Text, _>(client_id)
            .bind::<Text, _>(idem_key)
            .bind::<Text, _>(request_hash)
            .bind::<Text, _>(referral_id)
            .bind::<Integer, _>(response_status)
            .bind::<Binary, _>(response_sealed)
            .bind::<Timestamp, _>(created_at)
            .execute(c)
        }
        AnyConnection::Sqlite(_) => diesel::insert_into(idempotency_keys::table)
            .values(key)
            .execute(conn),
    }
    .map(|_| ())
}
