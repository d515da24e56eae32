//! Webhook endpoints, the outbox of deliveries and their attempts, for both sides: providers'
//! endpoints (`webhook_*` tables, feed events) and the operators' (`operator_webhook_*`, alerts).
//! The two sides have tables of their own (so the previous release's worker, which reads only
//! the provider tables, never meets an operator row) with the same columns but the owner, and
//! one text of each query serves both through [`on_side!`].

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text, Timestamp};

use zeroize::Zeroizing;

use super::model::{
    self, AlertRef, DeliveryState, EndpointStatus, Event, EventRef, OperatorEvent, SealedSecrets,
};
use crate::db::schema::{
    operator_webhook_deliveries, operator_webhook_endpoints, provider_events, webhook_deliveries,
    webhook_endpoints,
};
use crate::db::AnyConnection;
use crate::directory::model::{Code, Urgency};
use crate::error::ApiError;
use crate::ids::{ClientId, ProviderId, ReferralId};
use crate::keys::{MasterKey, SealError};
use crate::workflow::model::FeedKind;

/// Whose endpoints: a provider's (its feed events) or the EAP operators' (alerts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Provider,
    Operator,
}

impl Side {
    pub const BOTH: [Side; 2] = [Side::Provider, Side::Operator];
}

/// Runs `$body` with `$e`, `$d`, `$a` naming the side's endpoint, delivery and attempt tables,
/// and `$owner()` the endpoint's provider id as a nullable expression (NULL on the operators'
/// side): the same query text, typed against each side's tables.
macro_rules! on_side {
    ($side:expr, |$e:ident, $d:ident, $a:ident, $owner:ident| $body:expr) => {
        match $side {
            Side::Provider => {
                #[allow(unused_imports)]
                use crate::db::schema::{
                    webhook_attempts as $a, webhook_deliveries as $d, webhook_endpoints as $e,
                };
                #[allow(unused_variables)]
                let $owner = || $e::provider_id.nullable();
                $body
            }
            Side::Operator => {
                #[allow(unused_imports)]
                use crate::db::schema::{
                    operator_webhook_attempts as $a, operator_webhook_deliveries as $d,
                    operator_webhook_endpoints as $e,
                };
                #[allow(unused_variables)]
                let $owner = || diesel::dsl::sql::<Nullable<Text>>("NULL");
                $body
            }
        }
    };
}

/// The columns an [`EndpointRow`] is read from, on either side.
macro_rules! endpoint_columns {
    ($e:ident, $owner:expr) => {
        (
            $e::id,
            $owner,
            $e::url,
            $e::description,
            $e::secret,
            $e::previous_secret,
            $e::previous_secret_until,
            $e::status,
            $e::created_by,
            $e::created_at,
            $e::status_changed_at,
            $e::secret_key_id,
            $e::secret_sealed,
            $e::previous_secret_sealed,
        )
    };
}

#[derive(Debug, Clone, Queryable)]
pub struct EndpointRow {
    pub id: String,
    /// `None` for an operator endpoint.
    pub provider_id: Option<ProviderId>,
    pub url: String,
    pub description: Option<String>,
    /// In plain only in a row not sealed yet; '' once sealed.
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_secret_until: Option<NaiveDateTime>,
    pub status: EndpointStatus,
    pub created_by: ClientId,
    pub created_at: NaiveDateTime,
    pub status_changed_at: NaiveDateTime,
    pub secret_key_id: Option<String>,
    pub secret_sealed: Option<Vec<u8>>,
    pub previous_secret_sealed: Option<Vec<u8>>,
}

type Opened = Zeroizing<String>;

impl EndpointRow {
    pub fn side(&self) -> Side {
        match self.provider_id {
            Some(_) => Side::Provider,
            None => Side::Operator,
        }
    }

    /// The current and the previous secret in plain: opened with the master key that sealed
    /// them, or, in a row not sealed yet (written before sealing, or by an instance of the
    /// previous release), read as stored.
    pub fn secrets(&self, masters: &[MasterKey]) -> Result<(Opened, Option<Opened>), SealError> {
        match (&self.secret_key_id, &self.secret_sealed) {
            (Some(key_id), Some(sealed)) => {
                let open = |s: &[u8]| model::open_secret(masters, key_id, &self.id, s);
                let previous = self.previous_secret_sealed.as_deref().map(open);
                Ok((open(sealed)?, previous.transpose()?))
            }
            _ => Ok((
                Zeroizing::new(self.secret.clone()),
                self.previous_secret.clone().map(Zeroizing::new),
            )),
        }
    }

    /// The secrets that sign at `now`: the current one, and the previous one during its
    /// overlap after a rotation.
    pub fn signing_secrets(
        &self,
        masters: &[MasterKey],
        now: NaiveDateTime,
    ) -> Result<Vec<Opened>, SealError> {
        let (current, previous) = self.secrets(masters)?;
        let mut s = vec![current];
        if let (Some(prev), Some(until)) = (previous, self.previous_secret_until) {
            if until > now {
                s.push(prev);
            }
        }
        Ok(s)
    }
}

pub struct NewEndpoint<'a> {
    pub id: &'a str,
    /// `None`: an operator endpoint.
    pub provider_id: Option<&'a ProviderId>,
    pub url: &'a str,
    pub description: Option<&'a str>,
    pub secrets: &'a SealedSecrets,
    pub created_by: &'a ClientId,
    pub now: NaiveDateTime,
}

/// The values of a new endpoint's row but its owner, on either side.
macro_rules! endpoint_values {
    ($e:ident, $n:expr) => {
        (
            $e::id.eq($n.id),
            $e::url.eq($n.url),
            $e::description.eq($n.description),
            $e::secret.eq(""),
            $e::secret_key_id.eq(&$n.secrets.key_id),
            $e::secret_sealed.eq(&$n.secrets.current),
            $e::status.eq(EndpointStatus::Active),
            $e::created_by.eq($n.created_by),
            $e::created_at.eq($n.now),
            $e::status_changed_at.eq($n.now),
        )
    };
}

pub fn insert_endpoint(conn: &mut AnyConnection, e: &NewEndpoint) -> QueryResult<()> {
    match e.provider_id {
        Some(p) => diesel::insert_into(webhook_endpoints::table)
            .values((
                webhook_endpoints::provider_id.eq(p),
                endpoint_values!(webhook_endpoints, e),
            ))
            .execute(conn),
        None => diesel::insert_into(operator_webhook_endpoints::table)
            .values(endpoint_values!(operator_webhook_endpoints, e))
            .execute(conn),
    }
    .map(|_| ())
}

/// Locks what bounds the number of endpoints (the provider's row; on the operators' side their
/// endpoint table), so two concurrent creations cannot both pass the limit. On SQLite the
/// write transaction already excludes every other writer.
pub fn lock_owner(conn: &mut AnyConnection, provider_id: Option<&ProviderId>) -> QueryResult<()> {
    use crate::db::schema::providers;
    let AnyConnection::Postgresql(c) = conn else {
        return Ok(());
    };
    match provider_id {
        Some(p) => providers::table
            .find(p)
            .select(providers::id)
            .for_update()
            .first::<String>(c)
            .optional()
            .map(|_| ()),
        None => {
            diesel::sql_query("LOCK TABLE operator_webhook_endpoints IN SHARE ROW EXCLUSIVE MODE")
                .execute(c)
                .map(|_| ())
        }
    }
}

/// A provider's endpoints, or (`None`) the operators'.
pub fn count_for_owner(
    conn: &mut AnyConnection,
    provider_id: Option<&ProviderId>,
) -> QueryResult<i64> {
    match provider_id {
        Some(p) => webhook_endpoints::table
            .filter(webhook_endpoints::provider_id.eq(p))
            .count()
            .get_result(conn),
        None => operator_webhook_endpoints::table.count().get_result(conn),
    }
}

/// One page of endpoints by id: one provider's or (`None`) every provider's, or the operators'.
pub fn list(
    conn: &mut AnyConnection,
    side: Side,
    provider_id: Option<&ProviderId>,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<EndpointRow>> {
    on_side!(side, |e, d, a, owner| {
        let mut q = e::table
            .filter(e::id.gt(after.unwrap_or("").to_owned()))
            .order(e::id.asc())
            .limit(limit)
            .select(endpoint_columns!(e, owner()))
            .into_boxed();
        if let Some(p) = provider_id {
            q = q.filter(owner().eq(Some(p.clone())));
        }
        q.load(conn)
    })
}

pub fn find(conn: &mut AnyConnection, side: Side, id: &str) -> QueryResult<Option<EndpointRow>> {
    on_side!(side, |e, d, a, owner| e::table
        .find(id)
        .select(endpoint_columns!(e, owner()))
        .first(conn)
        .optional())
}

pub fn delete_endpoint(conn: &mut AnyConnection, side: Side, id: &str) -> QueryResult<()> {
    // Attempts and deliveries go with it (ON DELETE CASCADE needs foreign keys on, which the
    // SQLite connections have; deleting explicitly keeps the order obvious on both).
    on_side!(side, |e, d, a, owner| {
        diesel::delete(a::table.filter(a::endpoint_id.eq(id))).execute(conn)?;
        diesel::delete(d::table.filter(d::endpoint_id.eq(id))).execute(conn)?;
        diesel::delete(e::table.find(id)).execute(conn).map(|_| ())
    })
}

pub fn set_status(
    conn: &mut AnyConnection,
    side: Side,
    id: &str,
    status: EndpointStatus,
    now: NaiveDateTime,
) -> QueryResult<()> {
    on_side!(side, |e, d, a, owner| diesel::update(e::table.find(id))
        .filter(e::status.ne(status))
        .set((e::status.eq(status), e::status_changed_at.eq(now)))
        .execute(conn)
        .map(|_| ()))
}

/// Stores an endpoint's sealed secrets, emptying the plaintext columns.
fn set_secrets(
    conn: &mut AnyConnection,
    side: Side,
    id: &str,
    s: &SealedSecrets,
) -> QueryResult<()> {
    on_side!(side, |e, d, a, owner| diesel::update(e::table.find(id))
        .set((
            e::secret.eq(""),
            e::previous_secret.eq(None::<String>),
            e::secret_key_id.eq(Some(&s.key_id)),
            e::secret_sealed.eq(Some(&s.current)),
            e::previous_secret_sealed.eq(s.previous.as_ref()),
        ))
        .execute(conn)
        .map(|_| ()))
}

/// A new current secret, the previous one signing beside it until `until` (both sealed).
pub fn rotate_secret(
    conn: &mut AnyConnection,
    side: Side,
    id: &str,
    secrets: &SealedSecrets,
    until: NaiveDateTime,
) -> QueryResult<()> {
    set_secrets(conn, side, id, secrets)?;
    on_side!(side, |e, d, a, owner| diesel::update(e::table.find(id))
        .set(e::previous_secret_until.eq(Some(until)))
        .execute(conn)
        .map(|_| ()))
}

/// Seals under the active (first) master key every endpoint's secrets not sealed under it, on
/// both sides: rows still in plain and rows sealed under an older master key. Run at start and
/// by `keys rotate-master`; returns how many endpoints it sealed. Each row is read again under a
/// lock in its own transaction, so a rotation committed meanwhile is never overwritten.
pub fn reseal_all(conn: &mut AnyConnection, masters: &[MasterKey]) -> Result<usize, ApiError> {
    let active = &masters[0];
    let mut sealed = 0;
    for side in Side::BOTH {
        let ids: Vec<String> = on_side!(side, |e, d, a, owner| e::table
            .filter(
                e::secret_key_id
                    .is_null()
                    .or(e::secret_key_id.ne(&active.id))
            )
            .select(e::id)
            .load(conn))?;
        for id in ids {
            sealed += crate::db::write_tx(conn, |conn| {
                // PostgreSQL: wait for, then read, a rotation committing meanwhile. SQLite:
                // the write transaction already excludes every other writer.
                if let AnyConnection::Postgresql(c) = conn {
                    on_side!(side, |e, d, a, owner| e::table
                        .find(&id)
                        .select(e::id)
                        .for_update()
                        .first::<String>(c)
                        .optional())?;
                }
                let row = find(conn, side, &id)?;
                let Some(row) = row.filter(|r| r.secret_key_id.as_ref() != Some(&active.id)) else {
                    return Ok::<_, ApiError>(0);
                };
                let (current, previous) = row
                    .secrets(masters)
                    .map_err(|e| ApiError::Internal(format!("webhook endpoint {id}: {e}")))?;
                let previous = previous.as_ref().map(|p| p.as_str());
                let resealed = model::seal_secrets(active, &id, &current, previous);
                set_secrets(conn, side, &id, &resealed)?;
                Ok(1)
            })?;
        }
    }
    Ok(sealed)
}

/// The values of a new delivery's row but what it is about, on either side.
macro_rules! delivery_values {
    ($d:ident, $endpoint:expr, $now:expr) => {
        (
            $d::endpoint_id.eq($endpoint),
            $d::created_at.eq($now),
            $d::state.eq(DeliveryState::Pending),
            $d::attempts.eq(0),
            $d::next_attempt_at.eq($now),
        )
    };
}

/// A provider's feed event, one outbox delivery per endpoint of the provider's not disabled, and
/// `pg_notify(channel, provider)` for the long polls of other instances, in one statement
/// (`push_event` on PostgreSQL): the five round trips of [`enqueue_event`]'s path were a third
/// of an offer's statements.
pub fn insert_event_with_deliveries(
    c: &mut diesel::PgConnection,
    provider_id: &ProviderId,
    referral_id: &ReferralId,
    kind: FeedKind,
    now: NaiveDateTime,
    channel: &str,
) -> QueryResult<()> {
    crate::db::prepared::prepared(
        "WITH e AS ( \
           INSERT INTO provider_events (provider_id, referral_id, kind, created_at) \
           VALUES ($1, $2, $3, $4) RETURNING id), \
         d AS ( \
           INSERT INTO webhook_deliveries \
             (endpoint_id, event_id, created_at, state, attempts, next_attempt_at) \
           SELECT w.id, e.id, $4, $5, 0, $4 FROM webhook_endpoints w, e \
           WHERE w.provider_id = $1 AND w.status <> $6) \
         SELECT pg_notify($7, $1)",
    )
    .bind::<Text, _>(provider_id)
    .bind::<Text, _>(referral_id)
    .bind::<Text, _>(kind.code())
    .bind::<Timestamp, _>(now)
    .bind::<Text, _>(DeliveryState::Pending.code())
    .bind::<Text, _>(EndpointStatus::Disabled.code())
    .bind::<Text, _>(channel)
    .execute(c)
    .map(|_| ())
}

/// The outbox: called by `push_event` right after it inserted a feed event, in the same
/// transaction, so the event and its deliveries commit together or not at all. One delivery
/// per endpoint not disabled. (SQLite; PostgreSQL does both in
/// [`insert_event_with_deliveries`].)
pub fn enqueue_event(
    conn: &mut AnyConnection,
    provider_id: &ProviderId,
    now: NaiveDateTime,
) -> QueryResult<()> {
    let endpoints: Vec<String> = webhook_endpoints::table
        .filter(webhook_endpoints::provider_id.eq(provider_id))
        .filter(webhook_endpoints::status.ne(EndpointStatus::Disabled))
        .select(webhook_endpoints::id)
        .load(conn)?;
    if endpoints.is_empty() {
        return Ok(());
    }
    #[derive(QueryableByName)]
    struct Last {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    // The event just inserted on this connection.
    let sql = match conn {
        AnyConnection::Postgresql(_) => {
            "SELECT currval(pg_get_serial_sequence('provider_events', 'id')) AS id"
        }
        AnyConnection::Sqlite(_) => "SELECT last_insert_rowid() AS id",
    };
    let event_id = diesel::sql_query(sql).get_result::<Last>(conn)?.id;
    for endpoint in endpoints {
        diesel::insert_into(webhook_deliveries::table)
            .values((
                delivery_values!(webhook_deliveries, &endpoint, now),
                webhook_deliveries::event_id.eq(Some(event_id)),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// The operators' outbox: called in the transaction that made a referral unroutable or
/// expired its offer, so the change and its alerts commit together or not at all. One
/// delivery per operator endpoint not disabled, carrying the referral's id and urgency only.
pub fn enqueue_alert(
    conn: &mut AnyConnection,
    event: OperatorEvent,
    referral_id: &ReferralId,
    urgency: Urgency,
    now: NaiveDateTime,
) -> QueryResult<()> {
    use operator_webhook_deliveries as d;
    let endpoints: Vec<String> = operator_webhook_endpoints::table
        .filter(operator_webhook_endpoints::status.ne(EndpointStatus::Disabled))
        .select(operator_webhook_endpoints::id)
        .load(conn)?;
    for endpoint in endpoints {
        diesel::insert_into(d::table)
            .values((
                delivery_values!(d, &endpoint, now),
                d::event_type.eq(Some(event)),
                d::referral_id.eq(Some(referral_id.as_str())),
                d::urgency.eq(Some(urgency)),
            ))
            .execute(conn)?;
    }
    Ok(())
}

pub fn enqueue_ping(
    conn: &mut AnyConnection,
    side: Side,
    endpoint_id: &str,
    now: NaiveDateTime,
) -> QueryResult<()> {
    on_side!(side, |e, d, a, owner| diesel::insert_into(d::table)
        .values(delivery_values!(d, endpoint_id, now))
        .execute(conn)
        .map(|_| ()))
}

/// One attempt as the provider and the admin see it.
#[derive(Debug, Clone, Queryable)]
pub struct AttemptRow {
    pub delivery_id: i64,
    pub attempt: i32,
    pub attempted_at: NaiveDateTime,
    pub status_code: Option<i32>,
    pub error: Option<String>,
    pub latency_ms: i64,
    pub next_attempt_at: Option<NaiveDateTime>,
}

/// An endpoint's attempts, newest first, after the cursor `(delivery_id, attempt)`.
pub fn attempts(
    conn: &mut AnyConnection,
    side: Side,
    endpoint_id: &str,
    before: Option<(i64, i32)>,
    limit: i64,
) -> QueryResult<Vec<AttemptRow>> {
    on_side!(side, |e, d, a, owner| {
        let mut q = a::table
            .filter(a::endpoint_id.eq(endpoint_id))
            .order((a::delivery_id.desc(), a::attempt.desc()))
            .limit(limit)
            .select((
                a::delivery_id,
                a::attempt,
                a::attempted_at,
                a::status_code,
                a::error,
                a::latency_ms,
                a::next_attempt_at,
            ))
            .into_boxed();
        if let Some((before_d, before_a)) = before {
            q = q.filter(
                a::delivery_id
                    .lt(before_d)
                    .or(a::delivery_id.eq(before_d).and(a::attempt.lt(before_a))),
            );
        }
        q.load(conn)
    })
}

/// A delivery claimed for sending, with what signing and the payload need.
#[derive(Debug, Clone)]
pub struct Due {
    pub delivery_id: i64,
    pub attempts: i32,
    pub created_at: NaiveDateTime,
    /// Its `webhook.delivered` access event is written (before the first attempt).
    pub audited: bool,
    pub endpoint: EndpointRow,
    /// `None`: a ping.
    pub event: Option<Event>,
}

/// PostgreSQL's claim, for each side: due deliveries to endpoints not disabled, skipping rows
/// another instance is claiming. Provider deliveries wait until their feed event is below the
/// feed's commit-order horizon (a webhook never names an event the feed does not show yet);
/// an alert names no feed position, so an operator delivery is due once committed.
fn claim_sql(side: Side) -> String {
    let (deliveries, endpoints, horizon) = match side {
        Side::Provider => (
            "webhook_deliveries",
            "webhook_endpoints",
            "LEFT JOIN provider_events e ON e.id = d.event_id \
             WHERE (d.event_id IS NULL OR \
                    e.txid < pg_snapshot_xmin(pg_current_snapshot())::text::bigint) AND",
        ),
        Side::Operator => (
            "operator_webhook_deliveries",
            "operator_webhook_endpoints",
            "WHERE",
        ),
    };
    format!(
        "SELECT d.id FROM {deliveries} d JOIN {endpoints} w ON w.id = d.endpoint_id {horizon} \
         d.state = 'pending' AND d.next_attempt_at <= $1 \
         AND w.status <> 'disabled' AND d.endpoint_id <> ALL(string_to_array($3, ',')) \
         ORDER BY d.next_attempt_at, d.id LIMIT $2 \
         FOR UPDATE OF d SKIP LOCKED"
    )
}

/// Claims up to `limit` deliveries of each side due at `now` by pushing their next attempt to
/// `lease_until` (committed), so no other worker takes them while this one sends; if this one
/// dies, they fall due again when the lease ends (at least once). Endpoints in `busy` (this
/// instance is already sending to them) are left alone, to keep each one's order.
pub fn claim_due(
    conn: &mut AnyConnection,
    now: NaiveDateTime,
    lease_until: NaiveDateTime,
    limit: i64,
    busy: &[String],
) -> QueryResult<Vec<Due>> {
    let mut due = Vec::new();
    for side in Side::BOTH {
        let ids = claim_ids(conn, side, now, lease_until, limit, busy)?;
        if !ids.is_empty() {
            due.extend(match side {
                Side::Provider => load_provider_due(conn, &ids)?,
                Side::Operator => load_operator_due(conn, &ids)?,
            });
        }
    }
    Ok(due)
}

fn claim_ids(
    conn: &mut AnyConnection,
    side: Side,
    now: NaiveDateTime,
    lease_until: NaiveDateTime,
    limit: i64,
    busy: &[String],
) -> QueryResult<Vec<i64>> {
    Ok(match conn {
        // Only PostgreSQL reads this SQL (its placeholders and functions).
        AnyConnection::Postgresql(_) => crate::db::write_tx(conn, |conn| {
            #[derive(QueryableByName)]
            struct Id {
                #[diesel(sql_type = BigInt)]
                id: i64,
            }
            let ids: Vec<i64> = diesel::sql_query(claim_sql(side))
                .bind::<Timestamp, _>(now)
                .bind::<BigInt, _>(limit)
                // Issued ids hold no comma; MultiConnection binds no arrays.
                .bind::<Text, _>(busy.join(","))
                .load::<Id>(conn)?
                .into_iter()
                .map(|r| r.id)
                .collect();
            lease(conn, side, &ids, lease_until)?;
            Ok::<_, diesel::result::Error>(ids)
        })?,
        // One worker per SQLite database: read first, and take the write lock only when there
        // is something to claim (an idle pass must not queue behind, or ahead of, requests).
        AnyConnection::Sqlite(_) => {
            let ids: Vec<i64> = on_side!(side, |e, d, a, owner| d::table
                .inner_join(e::table)
                .filter(d::state.eq(DeliveryState::Pending))
                .filter(d::next_attempt_at.le(now))
                .filter(e::status.ne(EndpointStatus::Disabled))
                .filter(d::endpoint_id.ne_all(busy))
                .order((d::next_attempt_at, d::id))
                .limit(limit)
                .select(d::id)
                .load(conn))?;
            if !ids.is_empty() {
                crate::db::write_tx(conn, |conn| lease(conn, side, &ids, lease_until))?;
            }
            ids
        }
    })
}

/// A claimed delivery's columns on either side, with `$about` (what the delivery is about).
macro_rules! due_columns {
    ($d:ident, $e:ident, $owner:expr, $about:expr) => {
        (
            $d::id,
            $d::attempts,
            $d::created_at,
            $d::audited_at.is_not_null(),
            endpoint_columns!($e, $owner),
            $about,
        )
    };
}

type DueRow<T> = (i64, i32, NaiveDateTime, bool, EndpointRow, Option<T>);

fn due_of<T>(row: DueRow<T>, event: impl FnOnce(T) -> Event) -> Due {
    let (delivery_id, attempts, created_at, audited, endpoint, about) = row;
    Due {
        delivery_id,
        attempts,
        created_at,
        audited,
        endpoint,
        event: about.map(event),
    }
}

fn load_provider_due(conn: &mut AnyConnection, ids: &[i64]) -> QueryResult<Vec<Due>> {
    use webhook_deliveries as d;
    use webhook_endpoints as e;
    type FeedEvent = (i64, Option<i64>, ReferralId, FeedKind);
    let rows: Vec<DueRow<FeedEvent>> = d::table
        .inner_join(e::table)
        .left_join(provider_events::table)
        .filter(d::id.eq_any(ids))
        .order((d::created_at, d::id))
        .select(due_columns!(
            d,
            e,
            e::provider_id.nullable(),
            (
                provider_events::id,
                provider_events::txid,
                provider_events::referral_id,
                provider_events::kind,
            )
                .nullable()
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|r| {
            due_of(r, |(id, txid, referral_id, kind)| {
                Event::Feed(EventRef {
                    referral_id: referral_id.into_string(),
                    kind,
                    txid: txid.unwrap_or(0),
                    id,
                })
            })
        })
        .collect())
}

fn load_operator_due(conn: &mut AnyConnection, ids: &[i64]) -> QueryResult<Vec<Due>> {
    use operator_webhook_deliveries as d;
    use operator_webhook_endpoints as e;
    type Row = (
        i64,
        i32,
        NaiveDateTime,
        bool,
        EndpointRow,
        (Option<OperatorEvent>, Option<String>, Option<Urgency>),
    );
    let rows: Vec<Row> = d::table
        .inner_join(e::table)
        .filter(d::id.eq_any(ids))
        .order((d::created_at, d::id))
        .select(due_columns!(
            d,
            e,
            diesel::dsl::sql::<Nullable<Text>>("NULL"),
            (d::event_type, d::referral_id, d::urgency)
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(id, attempts, created_at, audited, endpoint, about)| {
            // A ping has no event type (nor referral); an alert has all three.
            let about = match about {
                (Some(event), Some(referral_id), Some(urgency)) => Some(AlertRef {
                    event,
                    referral_id,
                    urgency,
                }),
                _ => None,
            };
            due_of(
                (id, attempts, created_at, audited, endpoint, about),
                Event::Alert,
            )
        })
        .collect())
}

/// Marks a delivery's access event written; false when it already was (another worker got
/// there first after a lease ran out), so the caller writes no second event.
pub fn mark_audited(
    conn: &mut AnyConnection,
    side: Side,
    delivery_id: i64,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    on_side!(side, |e, d, a, owner| diesel::update(
        d::table.find(delivery_id)
    )
    .filter(d::audited_at.is_null())
    .set(d::audited_at.eq(now))
    .execute(conn)
    .map(|n| n == 1))
}

/// Moves deliveries' next attempt to `at`: claimed ones to the end of their lease, or ones
/// not attempted (their endpoint could not be reached; they go out with the failed one's
/// retry), without counting an attempt.
pub fn postpone(
    conn: &mut AnyConnection,
    side: Side,
    ids: &[i64],
    at: NaiveDateTime,
) -> QueryResult<()> {
    if ids.is_empty() {
        return Ok(());
    }
    on_side!(side, |e, d, a, owner| diesel::update(
        d::table.filter(d::id.eq_any(ids))
    )
    .set(d::next_attempt_at.eq(at))
    .execute(conn)
    .map(|_| ()))
}

fn lease(
    conn: &mut AnyConnection,
    side: Side,
    ids: &[i64],
    until: NaiveDateTime,
) -> QueryResult<()> {
    postpone(conn, side, ids, until)
}

/// One attempt's record.
pub struct Attempt<'a> {
    pub delivery_id: i64,
    pub attempt: i32,
    pub endpoint_id: &'a str,
    pub at: NaiveDateTime,
    pub status_code: Option<i32>,
    pub error: Option<&'a str>,
    pub latency_ms: i64,
    /// `None` when this was the last attempt (delivered or given up).
    pub next_attempt_at: Option<NaiveDateTime>,
    pub state: DeliveryState,
}

pub fn record_attempt(conn: &mut AnyConnection, side: Side, at: &Attempt) -> QueryResult<()> {
    on_side!(side, |e, d, a, owner| {
        diesel::insert_into(a::table)
            .values((
                a::delivery_id.eq(at.delivery_id),
                a::attempt.eq(at.attempt),
                a::endpoint_id.eq(at.endpoint_id),
                a::attempted_at.eq(at.at),
                a::status_code.eq(at.status_code),
                a::error.eq(at.error),
                a::latency_ms.eq(at.latency_ms),
                a::next_attempt_at.eq(at.next_attempt_at),
            ))
            .execute(conn)?;
        diesel::update(d::table.find(at.delivery_id))
            .set((
                d::attempts.eq(at.attempt),
                d::state.eq(at.state),
                d::next_attempt_at.eq(at.next_attempt_at.unwrap_or(at.at)),
                d::delivered_at.eq((at.state == DeliveryState::Delivered).then_some(at.at)),
            ))
            .execute(conn)
            .map(|_| ())
    })
}

/// Deliveries still pending after at least one failed attempt, on both sides (a gauge in
/// `/metrics`).
pub fn retries_pending(conn: &mut AnyConnection) -> QueryResult<i64> {
    let mut n = 0;
    for side in Side::BOTH {
        n += on_side!(side, |e, d, a, owner| d::table
            .filter(d::state.eq(DeliveryState::Pending))
            .filter(d::attempts.gt(0))
            .count()
            .get_result::<i64>(conn))?;
    }
    Ok(n)
}
