//! Provider capacity: a slot row per referral a provider may hold, claimed and released
//! atomically, with the held count kept in sharded rows; and the routing snapshot that reads it.

use diesel::prelude::*;
use diesel::sql_types::Text;

use std::collections::HashMap;

use chrono::NaiveDateTime;

use super::model::ProviderStatus;
use super::store::LOAD_SHARDS;
use crate::db::schema::{contracts, provider_load_shards, provider_slots, providers};
use crate::db::AnyConnection;
use crate::ids::{EmployerId, ProviderId, ReferralId};

/// PostgreSQL's claim of a free slot ($1 the holder, $2 the provider, $3 whether to start at a
/// random slot, $4 the holder's load shard), with the lock clause of the subquery: the slot's
/// row and the held count's shard in one statement.
macro_rules! pg_claim {
    ($lock:literal) => {
        concat!(
            "WITH c AS ( \
               UPDATE provider_slots SET referral_id = $1 \
               WHERE provider_id = $2 AND slot = ( \
                 SELECT s.slot FROM provider_slots s \
                 JOIN providers p ON p.id = s.provider_id \
                 WHERE s.provider_id = $2 AND s.referral_id IS NULL \
                   AND p.active AND p.status = 'active' \
                   AND s.slot >= $3 * (SELECT floor(random() * capacity)::int \
                                       FROM providers WHERE id = $2) \
                 ORDER BY s.slot LIMIT 1 ",
            $lock,
            ") RETURNING slot), \
             l AS ( \
               UPDATE provider_load_shards SET held = held + 1 \
               WHERE provider_id = $2 AND shard = $4 AND EXISTS (SELECT 1 FROM c)) \
             SELECT slot FROM c"
        )
    };
}
const PG_CLAIM_SKIPPING: &str = pg_claim!("FOR UPDATE OF s SKIP LOCKED");
const PG_CLAIM_WAITING: &str = pg_claim!("FOR UPDATE OF s");

/// Takes a free slot of an active provider for `holder` (a referral id). A single UPDATE of
/// one slot row: on PostgreSQL `FOR UPDATE SKIP LOCKED` lets concurrent claims take different
/// slots instead of queueing on one row; SQLite runs one writer at a time. There are only as many
/// free rows as the provider may still take, so it is never booked past its capacity.
pub fn claim_slot(
    conn: &mut AnyConnection,
    provider_id: &ProviderId,
    holder: &ReferralId,
) -> QueryResult<bool> {
    // A concurrent claim can commit on the very row this one picked; PostgreSQL then re-checks
    // and finds it taken. A retry picks another, so only "no free slot" reports false.
    for attempt in 0..3 {
        // The last attempt waits for locked rows instead of skipping them: a capacity change
        // holds every slot row of the provider, and "full" must not be the answer then.
        let claim = if attempt < 2 {
            PG_CLAIM_SKIPPING
        } else {
            PG_CLAIM_WAITING
        };
        let claimed = match conn {
            // The first attempt starts at a random slot. Each claim leaves a dead entry in the
            // free-slot index until vacuum; always starting at the lowest slot made every claim
            // walk all the entries claimed since the last vacuum (540 buffers and 2 ms a claim
            // after 30,000 submissions). From a random start the walk is a few entries long.
            // The held count's shard is updated in the same statement, only if a slot was
            // claimed: one round trip while the slot's row lock is held, not two.
            AnyConnection::Postgresql(c) => {
                #[derive(QueryableByName)]
                struct Claimed {
                    #[diesel(sql_type = diesel::sql_types::Integer)]
                    #[allow(dead_code)] // read by the row count only
                    slot: i32,
                }
                crate::db::prepared::prepared(claim)
                    .bind::<Text, _>(holder)
                    .bind::<Text, _>(provider_id)
                    .bind::<diesel::sql_types::Integer, _>(i32::from(attempt == 0))
                    .bind::<diesel::sql_types::Integer, _>(shard_of(holder))
                    .load::<Claimed>(c)?
                    .len()
                    == 1
            }
            AnyConnection::Sqlite(c) => {
                let n = diesel::sql_query(
                    "UPDATE provider_slots SET referral_id = ? \
                     WHERE provider_id = ? AND slot = ( \
                       SELECT s.slot FROM provider_slots s JOIN providers p ON p.id = s.provider_id \
                       WHERE s.provider_id = ? AND s.referral_id IS NULL \
                         AND p.active AND p.status = 'active' \
                       ORDER BY s.slot LIMIT 1)",
                )
                .bind::<Text, _>(holder)
                .bind::<Text, _>(provider_id)
                .bind::<Text, _>(provider_id)
                .execute(c)?;
                n == 1 && {
                    add_load(conn, provider_id, holder, 1)?;
                    true
                }
            }
        };
        if claimed {
            return Ok(true);
        }
        if !has_free_slot(conn, provider_id)? {
            return Ok(false);
        }
    }
    Ok(false)
}

fn has_free_slot(conn: &mut AnyConnection, provider_id: &ProviderId) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        provider_slots::table
            .inner_join(providers::table)
            .filter(provider_slots::provider_id.eq(provider_id))
            .filter(provider_slots::referral_id.is_null())
            .filter(providers::active.eq(true))
            .filter(providers::status.eq("active")),
    ))
    .get_result(conn)
}

/// Gives back the slot `holder` took (the referral closed, was declined or cancelled). While the
/// provider holds more than its (lowered) capacity the row is deleted instead of freed.
pub fn release_slot(
    conn: &mut AnyConnection,
    provider_id: &ProviderId,
    holder: &ReferralId,
) -> QueryResult<bool> {
    // Read the capacity under a lock that conflicts with a capacity change and with other
    // releases, so "delete or free" is decided on numbers nobody else is changing.
    let capacity: i32 = match conn {
        AnyConnection::Postgresql(c) => providers::table
            .find(provider_id)
            .select(providers::capacity)
            .for_no_key_update()
            .first(c)?,
        AnyConnection::Sqlite(c) => providers::table
            .find(provider_id)
            .select(providers::capacity)
            .first(c)?,
    };
    let rows: i64 = provider_slots::table
        .filter(provider_slots::provider_id.eq(provider_id))
        .count()
        .get_result(conn)?;
    let mine = provider_slots::table
        .filter(provider_slots::provider_id.eq(provider_id))
        .filter(provider_slots::referral_id.eq(holder));
    let n = if rows > i64::from(capacity) {
        diesel::delete(mine).execute(conn)?
    } else {
        diesel::update(mine)
            .set(provider_slots::referral_id.eq(None::<String>))
            .execute(conn)?
    };
    if n == 1 {
        add_load(conn, provider_id, holder, -1)?;
    }
    Ok(n == 1)
}

/// The holder's shard: the same for its claim and its release, spread across holders.
fn shard_of(holder: &ReferralId) -> i32 {
    // FNV-1a: stable across processes and versions, unlike the std hasher.
    let h = holder.as_str().bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    });
    (h % LOAD_SHARDS as u64) as i32
}

fn add_load(
    conn: &mut AnyConnection,
    provider_id: &ProviderId,
    holder: &ReferralId,
    delta: i32,
) -> QueryResult<()> {
    diesel::update(provider_load_shards::table.find((provider_id, shard_of(holder))))
        .set(provider_load_shards::held.eq(provider_load_shards::held + delta))
        .execute(conn)
        .map(|_| ())
}

/// A contract's terms as routing reads them.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = contracts)]
pub struct ContractTerms {
    pub priority: i32,
    pub starts_at: NaiveDateTime,
    pub ends_at: Option<NaiveDateTime>,
    pub active: bool,
}

impl ContractTerms {
    pub fn in_force(&self, now: NaiveDateTime) -> bool {
        super::model::in_force(self.active, self.starts_at, self.ends_at, now)
    }
}

/// A provider's routing attributes: no name or timestamps, which routing never reads and which
/// would cost a parse per provider on every submission.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = providers)]
pub struct RoutingAttributes {
    pub id: ProviderId,
    pub active: bool,
    pub status: ProviderStatus,
    pub services: String,
    pub languages: String,
    pub regions: String,
    pub modalities: String,
    pub interpretation: bool,
    pub crisis_capable: bool,
    pub capacity: i32,
    pub serves_helping_professionals: bool,
}

/// Every provider under contract with the employer, with the contract's terms: the routing
/// snapshot's directory part (one query).
pub fn contracted_providers(
    conn: &mut AnyConnection,
    employer_id: &EmployerId,
) -> QueryResult<Vec<(ContractTerms, RoutingAttributes)>> {
    contracts::table
        .inner_join(providers::table)
        .filter(contracts::employer_id.eq(employer_id))
        .select((ContractTerms::as_select(), RoutingAttributes::as_select()))
        .load(conn)
}

/// (SQLite reads `$1` as a parameter named "$1", the first one bound.)
const VERSION_AND_LOADS: &str =
    "SELECT NULL AS provider_id, version AS n FROM directory_version WHERE id = 1 \
     UNION ALL \
     SELECT provider_id, sum(held) AS n FROM provider_load_shards \
     WHERE provider_id IN (SELECT provider_id FROM contracts WHERE employer_id = $1) \
     GROUP BY provider_id";

/// The directory's counter (`routing::cache`) and [`contracted_loads`], read in one statement:
/// first routing on a small network needs both on every submission, and they are one round
/// trip instead of two (and the same snapshot of the database).
pub fn directory_version_and_loads(
    conn: &mut AnyConnection,
    employer_id: &EmployerId,
) -> QueryResult<(i64, HashMap<String, i64>)> {
    #[derive(QueryableByName)]
    struct Row {
        /// NULL on the counter's row.
        #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
        provider_id: Option<String>,
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
        n: Option<i64>,
    }
    let rows = match conn {
        AnyConnection::Postgresql(c) => crate::db::prepared::prepared(VERSION_AND_LOADS)
            .bind::<Text, _>(employer_id)
            .load::<Row>(c)?,
        AnyConnection::Sqlite(c) => diesel::sql_query(VERSION_AND_LOADS)
            .bind::<Text, _>(employer_id)
            .load::<Row>(c)?,
    };
    let mut version = None;
    let mut loads = HashMap::with_capacity(rows.len());
    for row in rows {
        match row.provider_id {
            None => version = row.n,
            Some(id) => {
                loads.insert(id, row.n.unwrap_or(0));
            }
        }
    }
    // The migration inserts the counter's one row; without it there is nothing to key on.
    let version = version.ok_or(diesel::result::Error::NotFound)?;
    Ok((version, loads))
}

/// The referrals each provider under contract with the employer holds now, summed by the
/// database (one row per provider, not one per load shard); a provider holding none may be
/// missing.
pub fn contracted_loads(
    conn: &mut AnyConnection,
    employer_id: &EmployerId,
) -> QueryResult<HashMap<String, i64>> {
    Ok(provider_load_shards::table
        .filter(
            provider_load_shards::provider_id.eq_any(
                contracts::table
                    .filter(contracts::employer_id.eq(employer_id))
                    .select(contracts::provider_id),
            ),
        )
        .group_by(provider_load_shards::provider_id)
        .select((
            provider_load_shards::provider_id,
            diesel::dsl::sum(provider_load_shards::held),
        ))
        .load::<(String, Option<i64>)>(conn)?
        .into_iter()
        .map(|(id, held)| (id, held.unwrap_or(0)))
        .collect())
}
