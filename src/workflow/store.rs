use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamp};

use super::model::AttemptOutcome;
use crate::db::schema::{provider_events, referral_attempts, referrals};
use crate::db::AnyConnection;
use crate::ids::{ProviderId, ReferralId};
use crate::referrals::model::Status;
use crate::referrals::store::ReferralRow;
use crate::workflow::model::FeedKind;

#[derive(Debug, Clone, QueryableByName, Queryable)]
pub struct EventRow {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = BigInt)]
    pub txid: i64,
    #[diesel(sql_type = Text)]
    pub referral_id: String,
    #[diesel(sql_type = Text)]
    pub kind: FeedKind,
    #[diesel(sql_type = Timestamp)]
    pub created_at: NaiveDateTime,
}

pub use crate::db::notify::Position;

impl EventRow {
    pub fn position(&self) -> Position {
        Position {
            txid: self.txid,
            id: self.id,
        }
    }
}

/// Whether events after `after` exist that the horizon still holds back (PostgreSQL only): the
/// horizon is cluster-wide, so a transaction anywhere can delay it, and no new notification will
/// come when it moves.
pub fn withheld(conn: &mut AnyConnection, provider_id: &str, after: Position) -> QueryResult<bool> {
    #[derive(QueryableByName)]
    struct Exists {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        e: bool,
    }
    match conn {
        AnyConnection::Postgresql(c) => diesel::sql_query(
            "SELECT EXISTS (SELECT 1 FROM provider_events \
             WHERE provider_id = $1 AND (txid, id) > ($2, $3)) AS e",
        )
        .bind::<Text, _>(provider_id)
        .bind::<BigInt, _>(after.txid)
        .bind::<BigInt, _>(after.id)
        .get_result::<Exists>(c)
        .map(|r| r.e),
        AnyConnection::Sqlite(_) => Ok(false),
    }
}

/// One page of a provider's feed after `after`, in commit-safe order. On PostgreSQL only events
/// written by transactions older than every running one are served, ordered by (txid, id):
/// everything below that horizon is final, and any event still to come has a txid at or above
/// it, so it sorts after every served event and a cursor can never pass it. SQLite has one
/// writer at a time, so ids commit in order and txid is 0.
pub fn feed(
    conn: &mut AnyConnection,
    provider_id: &str,
    after: Position,
    limit: i64,
) -> QueryResult<Vec<EventRow>> {
    match conn {
        AnyConnection::Postgresql(c) => diesel::sql_query(
            "SELECT id, txid, referral_id, kind, created_at FROM provider_events \
             WHERE provider_id = $1 AND (txid, id) > ($2, $3) \
               AND txid < pg_snapshot_xmin(pg_current_snapshot())::text::bigint \
             ORDER BY txid, id LIMIT $4",
        )
        .bind::<Text, _>(provider_id)
        .bind::<BigInt, _>(after.txid)
        .bind::<BigInt, _>(after.id)
        .bind::<BigInt, _>(limit)
        .load(c),
        AnyConnection::Sqlite(c) => provider_events::table
            .filter(provider_events::provider_id.eq(provider_id))
            .filter(provider_events::id.gt(after.id))
            .order(provider_events::id.asc())
            .limit(limit)
            .select((
                provider_events::id,
                diesel::dsl::sql::<BigInt>("0"),
                provider_events::referral_id,
                provider_events::kind,
                provider_events::created_at,
            ))
            .load(c),
    }
}

/// The provider's referrals (offered to it or held by it), optionally in one status, by id.
pub fn provider_referrals(
    conn: &mut AnyConnection,
    provider_id: &ProviderId,
    status: Option<Status>,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<ReferralRow>> {
    let mut q = referrals::table
        .filter(referrals::provider_id.eq(provider_id))
        .filter(referrals::id.gt(after.unwrap_or("").to_owned()))
        .order(referrals::id.asc())
        .limit(limit)
        .select(ReferralRow::as_select())
        .into_boxed();
    if let Some(s) = status {
        q = q.filter(referrals::status.eq(s));
    }
    q.load(conn)
}

pub fn record_decline(
    conn: &mut AnyConnection,
    referral_id: &ReferralId,
    provider_id: &ProviderId,
    reason: &str,
    sealed_comment: Option<&[u8]>,
) -> QueryResult<()> {
    diesel::update(referral_attempts::table.find((referral_id, provider_id)))
        .set((
            referral_attempts::outcome.eq(AttemptOutcome::Declined),
            referral_attempts::reason.eq(reason),
            referral_attempts::sealed_comment.eq(sealed_comment),
        ))
        .execute(conn)
        .map(|_| ())
}
