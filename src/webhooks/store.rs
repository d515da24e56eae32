//! Webhook endpoints, the outbox of deliveries and their attempts.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Timestamp};

use super::model::{DeliveryState, EndpointStatus, EventRef};
use crate::db::schema::{provider_events, webhook_attempts, webhook_deliveries, webhook_endpoints};
use crate::db::AnyConnection;
use crate::ids::{ClientId, ProviderId, ReferralId};
use crate::workflow::model::FeedKind;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = webhook_endpoints)]
pub struct EndpointRow {
    pub id: String,
    pub provider_id: ProviderId,
    pub url: String,
    pub description: Option<String>,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_secret_until: Option<NaiveDateTime>,
    pub status: EndpointStatus,
    pub created_by: ClientId,
    pub created_at: NaiveDateTime,
    pub status_changed_at: NaiveDateTime,
}

impl EndpointRow {
    /// The secrets that sign at `now`: the current one, and the previous one during its
    /// overlap after a rotation.
    pub fn signing_secrets(&self, now: NaiveDateTime) -> Vec<&str> {
        let mut s = vec![self.secret.as_str()];
        if let (Some(prev), Some(until)) = (&self.previous_secret, self.previous_secret_until) {
            if until > now {
                s.push(prev);
            }
        }
        s
    }
}

pub struct NewEndpoint<'a> {
    pub id: &'a str,
    pub provider_id: &'a ProviderId,
    pub url: &'a str,
    pub description: Option<&'a str>,
    pub secret: &'a str,
    pub created_by: &'a ClientId,
    pub now: NaiveDateTime,
}

pub fn insert_endpoint(conn: &mut AnyConnection, e: &NewEndpoint) -> QueryResult<()> {
    diesel::insert_into(webhook_endpoints::table)
        .values((
            webhook_endpoints::id.eq(e.id),
            webhook_endpoints::provider_id.eq(e.provider_id),
            webhook_endpoints::url.eq(e.url),
            webhook_endpoints::description.eq(e.description),
            webhook_endpoints::secret.eq(e.secret),
            webhook_endpoints::status.eq(EndpointStatus::Active),
            webhook_endpoints::created_by.eq(e.created_by),
            webhook_endpoints::created_at.eq(e.now),
            webhook_endpoints::status_changed_at.eq(e.now),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Locks the provider's row so two concurrent creations cannot both pass the limit.
pub fn lock_provider(conn: &mut AnyConnection, provider_id: &ProviderId) -> QueryResult<()> {
    use crate::db::schema::providers;
    let q = providers::table.find(provider_id).select(providers::id);
    match conn {
        AnyConnection::Postgresql(c) => q.for_update().first::<String>(c).optional(),
        AnyConnection::Sqlite(c) => q.first::<String>(c).optional(),
    }
    .map(|_| ())
}

pub fn count_for_provider(conn: &mut AnyConnection, provider_id: &ProviderId) -> QueryResult<i64> {
    webhook_endpoints::table
        .filter(webhook_endpoints::provider_id.eq(provider_id))
        .count()
        .get_result(conn)
}

/// One page of endpoints by id, one provider's or (`None`) everyone's.
pub fn list(
    conn: &mut AnyConnection,
    provider_id: Option<&ProviderId>,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<EndpointRow>> {
    let mut q = webhook_endpoints::table
        .filter(webhook_endpoints::id.gt(after.unwrap_or("").to_owned()))
        .order(webhook_endpoints::id.asc())
        .limit(limit)
        .select(EndpointRow::as_select())
        .into_boxed();
    if let Some(p) = provider_id {
        q = q.filter(webhook_endpoints::provider_id.eq(p.clone()));
    }
    q.load(conn)
}

pub fn find(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<EndpointRow>> {
    webhook_endpoints::table
        .find(id)
        .select(EndpointRow::as_select())
        .first(conn)
        .optional()
}

pub fn delete_endpoint(conn: &mut AnyConnection, id: &str) -> QueryResult<()> {
    // Attempts and deliveries go with it (ON DELETE CASCADE needs foreign keys on, which the
    // SQLite connections have; deleting explicitly keeps the order obvious on both).
    diesel::delete(webhook_attempts::table.filter(webhook_attempts::endpoint_id.eq(id)))
        .execute(conn)?;
    diesel::delete(webhook_deliveries::table.filter(webhook_deliveries::endpoint_id.eq(id)))
        .execute(conn)?;
    diesel::delete(webhook_endpoints::table.find(id))
        .execute(conn)
        .map(|_| ())
}

pub fn set_status(
    conn: &mut AnyConnection,
    id: &str,
    status: EndpointStatus,
    now: NaiveDateTime,
) -> QueryResult<()> {
    diesel::update(webhook_endpoints::table.find(id))
        .filter(webhook_endpoints::status.ne(status))
        .set((
            webhook_endpoints::status.eq(status),
            webhook_endpoints::status_changed_at.eq(now),
        ))
        .execute(conn)
        .map(|_| ())
}

pub fn rotate_secret(
    conn: &mut AnyConnection,
    row: &EndpointRow,
    new_secret: &str,
    until: NaiveDateTime,
) -> QueryResult<()> {
    diesel::update(webhook_endpoints::table.find(&row.id))
        .set((
            webhook_endpoints::secret.eq(new_secret),
            webhook_endpoints::previous_secret.eq(Some(&row.secret)),
            webhook_endpoints::previous_secret_until.eq(Some(until)),
        ))
        .execute(conn)
        .map(|_| ())
}

fn insert_delivery(
    conn: &mut AnyConnection,
    endpoint_id: &str,
    event_id: Option<i64>,
    now: NaiveDateTime,
) -> QueryResult<()> {
    diesel::insert_into(webhook_deliveries::table)
        .values((
            webhook_deliveries::endpoint_id.eq(endpoint_id),
            webhook_deliveries::event_id.eq(event_id),
            webhook_deliveries::created_at.eq(now),
            webhook_deliveries::state.eq(DeliveryState::Pending),
            webhook_deliveries::attempts.eq(0),
            webhook_deliveries::next_attempt_at.eq(now),
        ))
        .execute(conn)
        .map(|_| ())
}

/// The outbox: called by `push_event` right after it inserted a feed event, in the same
/// transaction, so the event and its deliveries commit together or not at all. One delivery
/// per endpoint not disabled.
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
        insert_delivery(conn, &endpoint, Some(event_id), now)?;
    }
    Ok(())
}

pub fn enqueue_ping(
    conn: &mut AnyConnection,
    endpoint_id: &str,
    now: NaiveDateTime,
) -> QueryResult<()> {
    insert_delivery(conn, endpoint_id, None, now)
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
    endpoint_id: &str,
    before: Option<(i64, i32)>,
    limit: i64,
) -> QueryResult<Vec<AttemptRow>> {
    let mut q = webhook_attempts::table
        .filter(webhook_attempts::endpoint_id.eq(endpoint_id))
        .order((
            webhook_attempts::delivery_id.desc(),
            webhook_attempts::attempt.desc(),
        ))
        .limit(limit)
        .select((
            webhook_attempts::delivery_id,
            webhook_attempts::attempt,
            webhook_attempts::attempted_at,
            webhook_attempts::status_code,
            webhook_attempts::error,
            webhook_attempts::latency_ms,
            webhook_attempts::next_attempt_at,
        ))
        .into_boxed();
    if let Some((d, a)) = before {
        q = q.filter(
            webhook_attempts::delivery_id
                .lt(d)
                .or(webhook_attempts::delivery_id
                    .eq(d)
                    .and(webhook_attempts::attempt.lt(a))),
        );
    }
    q.load(conn)
}

/// A delivery claimed for sending, with what signing and the payload need.
#[derive(Debug, Clone)]
pub struct Due {
    pub delivery_id: i64,
    pub attempts: i32,
    pub created_at: NaiveDateTime,
    pub endpoint: EndpointRow,
    pub event: Option<EventRef>,
}

type DueRow = (
    i64,
    i32,
    NaiveDateTime,
    EndpointRow,
    Option<(i64, Option<i64>, ReferralId, FeedKind)>,
);

/// Claims up to `limit` deliveries due at `now` by pushing their next attempt to `lease_until`
/// (committed), so no other worker takes them while this one sends; if this one dies, they
/// fall due again when the lease ends (at least once). Only events below the feed's
/// commit-order horizon are taken (PostgreSQL), so a webhook never names an event the feed
/// does not show yet; PostgreSQL instances skip rows another is claiming.
pub fn claim_due(
    conn: &mut AnyConnection,
    now: NaiveDateTime,
    lease_until: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<Due>> {
    let ids: Vec<i64> = match conn {
        // Only PostgreSQL reads this SQL (its placeholders and functions).
        AnyConnection::Postgresql(_) => crate::db::write_tx(conn, |conn| {
            #[derive(QueryableByName)]
            struct Id {
                #[diesel(sql_type = BigInt)]
                id: i64,
            }
            let ids: Vec<i64> = diesel::sql_query(
                "SELECT d.id FROM webhook_deliveries d \
                 JOIN webhook_endpoints w ON w.id = d.endpoint_id \
                 LEFT JOIN provider_events e ON e.id = d.event_id \
                 WHERE d.state = 'pending' AND d.next_attempt_at <= $1 \
                   AND w.status <> 'disabled' \
                   AND (d.event_id IS NULL OR \
                        e.txid < pg_snapshot_xmin(pg_current_snapshot())::text::bigint) \
                 ORDER BY d.next_attempt_at, d.id LIMIT $2 \
                 FOR UPDATE OF d SKIP LOCKED",
            )
            .bind::<Timestamp, _>(now)
            .bind::<BigInt, _>(limit)
            .load::<Id>(conn)?
            .into_iter()
            .map(|r| r.id)
            .collect();
            lease(conn, &ids, lease_until)?;
            Ok::<_, diesel::result::Error>(ids)
        })?,
        // One worker per SQLite database: read first, and take the write lock only when there
        // is something to claim (an idle pass must not queue behind, or ahead of, requests).
        AnyConnection::Sqlite(_) => {
            let ids: Vec<i64> = webhook_deliveries::table
                .inner_join(webhook_endpoints::table)
                .filter(webhook_deliveries::state.eq(DeliveryState::Pending))
                .filter(webhook_deliveries::next_attempt_at.le(now))
                .filter(webhook_endpoints::status.ne(EndpointStatus::Disabled))
                .order((webhook_deliveries::next_attempt_at, webhook_deliveries::id))
                .limit(limit)
                .select(webhook_deliveries::id)
                .load(conn)?;
            if !ids.is_empty() {
                crate::db::write_tx(conn, |conn| lease(conn, &ids, lease_until))?;
            }
            ids
        }
    };
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<DueRow> = webhook_deliveries::table
        .inner_join(webhook_endpoints::table)
        .left_join(provider_events::table)
        .filter(webhook_deliveries::id.eq_any(&ids))
        .order((webhook_deliveries::created_at, webhook_deliveries::id))
        .select((
            webhook_deliveries::id,
            webhook_deliveries::attempts,
            webhook_deliveries::created_at,
            EndpointRow::as_select(),
            (
                provider_events::id,
                provider_events::txid,
                provider_events::referral_id,
                provider_events::kind,
            )
                .nullable(),
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(delivery_id, attempts, created_at, endpoint, event)| Due {
            delivery_id,
            attempts,
            created_at,
            endpoint,
            event: event.map(|(id, txid, referral_id, kind)| EventRef {
                referral_id: referral_id.into_string(),
                kind,
                txid: txid.unwrap_or(0),
                id,
            }),
        })
        .collect())
}

/// Pushes claimed deliveries' next attempt to the end of the lease.
fn lease(conn: &mut AnyConnection, ids: &[i64], until: NaiveDateTime) -> QueryResult<()> {
    if !ids.is_empty() {
        diesel::update(webhook_deliveries::table.filter(webhook_deliveries::id.eq_any(ids)))
            .set(webhook_deliveries::next_attempt_at.eq(until))
            .execute(conn)?;
    }
    Ok(())
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

pub fn record_attempt(conn: &mut AnyConnection, a: &Attempt) -> QueryResult<()> {
    diesel::insert_into(webhook_attempts::table)
        .values((
            webhook_attempts::delivery_id.eq(a.delivery_id),
            webhook_attempts::attempt.eq(a.attempt),
            webhook_attempts::endpoint_id.eq(a.endpoint_id),
            webhook_attempts::attempted_at.eq(a.at),
            webhook_attempts::status_code.eq(a.status_code),
            webhook_attempts::error.eq(a.error),
            webhook_attempts::latency_ms.eq(a.latency_ms),
            webhook_attempts::next_attempt_at.eq(a.next_attempt_at),
        ))
        .execute(conn)?;
    diesel::update(webhook_deliveries::table.find(a.delivery_id))
        .set((
            webhook_deliveries::attempts.eq(a.attempt),
            webhook_deliveries::state.eq(a.state),
            webhook_deliveries::next_attempt_at.eq(a.next_attempt_at.unwrap_or(a.at)),
            webhook_deliveries::delivered_at
                .eq((a.state == DeliveryState::Delivered).then_some(a.at)),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Deliveries still pending after at least one failed attempt (a gauge in `/metrics`).
pub fn retries_pending(conn: &mut AnyConnection) -> QueryResult<i64> {
    webhook_deliveries::table
        .filter(webhook_deliveries::state.eq(DeliveryState::Pending))
        .filter(webhook_deliveries::attempts.gt(0))
        .count()
        .get_result(conn)
}

/// Moves claimed deliveries that were not attempted to `at` (their endpoint could not be
/// reached; they go out with the failed one's retry), without counting an attempt.
pub fn postpone(conn: &mut AnyConnection, ids: &[i64], at: NaiveDateTime) -> QueryResult<()> {
    if ids.is_empty() {
        return Ok(());
    }
    diesel::update(webhook_deliveries::table.filter(webhook_deliveries::id.eq_any(ids)))
        .set(webhook_deliveries::next_attempt_at.eq(at))
        .execute(conn)
        .map(|_| ())
}
