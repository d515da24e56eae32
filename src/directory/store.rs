use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{Integer, Text};

use super::model::ProviderStatus;
use crate::db::schema::{
    contracts, employer_affiliations, employers, provider_load_shards, provider_slots, providers,
};
use crate::db::AnyConnection;
use crate::ids::{ContractId, EmployerId, ProviderId};

// ---------------------------------------------------------------------------------------------
// Employers

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = employers)]
pub struct EmployerRow {
    pub id: EmployerId,
    pub name: String,
    pub active: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

pub fn insert_employer(conn: &mut AnyConnection, name: &str) -> QueryResult<EmployerRow> {
    let now = crate::db::now();
    let row = EmployerRow {
        id: EmployerId::generate(),
        name: name.to_owned(),
        active: true,
        created_at: now,
        updated_at: now,
    };
    diesel::insert_into(employers::table)
        .values((
            employers::id.eq(&row.id),
            employers::name.eq(&row.name),
            employers::active.eq(true),
            employers::created_at.eq(now),
            employers::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(row)
}

pub fn find_employer(
    conn: &mut AnyConnection,
    id: &EmployerId,
) -> QueryResult<Option<EmployerRow>> {
    employers::table
        .find(id)
        .select(EmployerRow::as_select())
        .first(conn)
        .optional()
}

/// One page in id order (UUIDv7 ids, so creation order).
pub fn list_employers(
    conn: &mut AnyConnection,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<EmployerRow>> {
    employers::table
        .filter(employers::id.gt(after.unwrap_or("").to_owned()))
        .order(employers::id.asc())
        .limit(limit)
        .select(EmployerRow::as_select())
        .load(conn)
}

/// Sets the name and/or ends the employer's active life; returns rows touched (0 = no such id).
pub fn update_employer(
    conn: &mut AnyConnection,
    id: &EmployerId,
    name: Option<&str>,
    active: Option<bool>,
) -> QueryResult<usize> {
    #[derive(AsChangeset)]
    #[diesel(table_name = employers)]
    struct Change<'a> {
        name: Option<&'a str>,
        active: Option<bool>,
        updated_at: NaiveDateTime,
    }
    diesel::update(employers::table.find(id))
        .set(Change {
            name,
            active,
            updated_at: crate::db::now(),
        })
        .execute(conn)
}

/// The providers each of `employers` is affiliated with, by employer id, in provider id order.
pub fn affiliations(
    conn: &mut AnyConnection,
    employers: &[String],
) -> QueryResult<HashMap<String, Vec<String>>> {
    let rows: Vec<(String, String)> = employer_affiliations::table
        .filter(employer_affiliations::employer_id.eq_any(employers))
        .order((
            employer_affiliations::employer_id,
            employer_affiliations::provider_id,
        ))
        .select((
            employer_affiliations::employer_id,
            employer_affiliations::provider_id,
        ))
        .load(conn)?;
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for (employer, provider) in rows {
        out.entry(employer).or_default().push(provider);
    }
    Ok(out)
}

/// Replaces the employer's affiliations with `providers`; returns those newly added.
pub fn set_affiliations(
    conn: &mut AnyConnection,
    employer: &EmployerId,
    providers: &[ProviderId],
) -> QueryResult<Vec<ProviderId>> {
    let before = affiliations(conn, &[employer.to_string()])?
        .remove(employer.as_str())
        .unwrap_or_default();
    diesel::delete(
        employer_affiliations::table.filter(employer_affiliations::employer_id.eq(employer)),
    )
    .execute(conn)?;
    let rows: Vec<_> = providers
        .iter()
        .map(|p| {
            (
                employer_affiliations::employer_id.eq(employer),
                employer_affiliations::provider_id.eq(p),
            )
        })
        .collect();
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    match conn {
        AnyConnection::Postgresql(c) => diesel::insert_into(employer_affiliations::table)
            .values(&rows)
            .execute(c)?,
        AnyConnection::Sqlite(c) => diesel::insert_into(employer_affiliations::table)
            .values(&rows)
            .execute(c)?,
    };
    Ok(providers
        .iter()
        .filter(|p| !before.iter().any(|b| b == p.as_str()))
        .cloned()
        .collect())
}

/// The providers the employer's people may be referred to and may exclude: under a contract in
/// force now, active and not paused; in id order.
pub fn portal_providers(
    conn: &mut AnyConnection,
    employer_id: &EmployerId,
    now: NaiveDateTime,
) -> QueryResult<Vec<ProviderRow>> {
    let rows: Vec<(ContractRow, ProviderRow)> = contracts::table
        .inner_join(providers::table)
        .filter(contracts::employer_id.eq(employer_id))
        .filter(providers::active.eq(true))
        .filter(providers::status.eq(ProviderStatus::Active))
        .order(providers::id.asc())
        .select((ContractRow::as_select(), ProviderRow::as_select()))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter(|(c, _)| c.in_force(now))
        .map(|(_, p)| p)
        .collect())
}

/// How many of `ids` name existing providers.
pub fn count_providers(conn: &mut AnyConnection, ids: &[ProviderId]) -> QueryResult<i64> {
    providers::table
        .filter(providers::id.eq_any(ids))
        .count()
        .get_result(conn)
}

// ---------------------------------------------------------------------------------------------
// Providers

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = providers)]
pub struct ProviderRow {
    pub id: ProviderId,
    pub name: String,
    pub active: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
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

/// The attributes an admin sets; every field of an update is optional.
#[derive(Debug, Clone, Default, AsChangeset)]
#[diesel(table_name = providers)]
pub struct ProviderChange {
    pub name: Option<String>,
    pub status: Option<ProviderStatus>,
    pub services: Option<String>,
    pub languages: Option<String>,
    pub regions: Option<String>,
    pub modalities: Option<String>,
    pub interpretation: Option<bool>,
    pub crisis_capable: Option<bool>,
    pub capacity: Option<i32>,
    pub active: Option<bool>,
    pub serves_helping_professionals: Option<bool>,
}

/// Inserts a provider; `attrs` must have every field set (the request's schema requires them).
pub fn insert_provider(
    conn: &mut AnyConnection,
    attrs: &ProviderChange,
) -> QueryResult<ProviderRow> {
    let now = crate::db::now();
    let id = ProviderId::generate();
    diesel::insert_into(providers::table)
        .values((
            providers::id.eq(&id),
            providers::name.eq(attrs.name.clone().unwrap_or_default()),
            providers::active.eq(true),
            providers::created_at.eq(now),
            providers::updated_at.eq(now),
            providers::status.eq(attrs.status.unwrap_or_default()),
            providers::services.eq(attrs.services.clone().unwrap_or_default()),
            providers::languages.eq(attrs.languages.clone().unwrap_or_default()),
            providers::regions.eq(attrs.regions.clone().unwrap_or_default()),
            providers::modalities.eq(attrs.modalities.clone().unwrap_or_default()),
            providers::interpretation.eq(attrs.interpretation.unwrap_or(false)),
            providers::crisis_capable.eq(attrs.crisis_capable.unwrap_or(false)),
            providers::capacity.eq(attrs.capacity.unwrap_or(0)),
            providers::serves_helping_professionals
                .eq(attrs.serves_helping_professionals.unwrap_or(false)),
        ))
        .execute(conn)?;
    let shards: Vec<_> = (0..LOAD_SHARDS)
        .map(|n| {
            (
                provider_load_shards::provider_id.eq(&id),
                provider_load_shards::shard.eq(n),
            )
        })
        .collect();
    match conn {
        AnyConnection::Postgresql(c) => diesel::insert_into(provider_load_shards::table)
            .values(&shards)
            .execute(c)?,
        AnyConnection::Sqlite(c) => diesel::insert_into(provider_load_shards::table)
            .values(&shards)
            .execute(c)?,
    };
    sync_slots(conn, id.as_str(), attrs.capacity.unwrap_or(0))?;
    find_provider(conn, &id)?.ok_or(diesel::result::Error::NotFound)
}

pub fn find_provider(
    conn: &mut AnyConnection,
    id: &ProviderId,
) -> QueryResult<Option<ProviderRow>> {
    providers::table
        .find(id)
        .select(ProviderRow::as_select())
        .first(conn)
        .optional()
}

pub fn list_providers(
    conn: &mut AnyConnection,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<ProviderRow>> {
    providers::table
        .filter(providers::id.gt(after.unwrap_or("").to_owned()))
        .order(providers::id.asc())
        .limit(limit)
        .select(ProviderRow::as_select())
        .load(conn)
}

pub fn update_provider(
    conn: &mut AnyConnection,
    id: &ProviderId,
    change: &ProviderChange,
) -> QueryResult<usize> {
    let n = diesel::update(providers::table.find(id))
        .set((change, providers::updated_at.eq(crate::db::now())))
        .execute(conn)?;
    if let (1, Some(capacity)) = (n, change.capacity) {
        sync_slots(conn, id.as_str(), capacity)?;
    }
    Ok(n)
}

/// Keeps exactly max(capacity, held) slot rows for the provider, so the free rows are exactly
/// the referrals it may still take. Growing adds rows; shrinking deletes free rows (held ones go
/// when released).
fn sync_slots(conn: &mut AnyConnection, provider_id: &str, capacity: i32) -> QueryResult<()> {
    // Lock the provider's slots first, so an in-flight claim cannot take a row this deletes.
    let slots: Vec<(i32, Option<String>)> = match conn {
        AnyConnection::Postgresql(c) => provider_slots::table
            .filter(provider_slots::provider_id.eq(provider_id))
            .select((provider_slots::slot, provider_slots::referral_id))
            .for_update()
            .load(c)?,
        AnyConnection::Sqlite(c) => provider_slots::table
            .filter(provider_slots::provider_id.eq(provider_id))
            .select((provider_slots::slot, provider_slots::referral_id))
            .load(c)?,
    };
    let rows = slots.len() as i32;
    let held = slots.iter().filter(|(_, r)| r.is_some()).count() as i32;
    let wanted = capacity.max(held);
    if wanted > rows {
        let first = slots.iter().map(|(n, _)| n + 1).max().unwrap_or(0);
        let last = first + (wanted - rows) - 1;
        match conn {
            AnyConnection::Postgresql(c) => diesel::sql_query(
                "INSERT INTO provider_slots (provider_id, slot) \
                 SELECT $1, n FROM generate_series($2::int, $3::int) AS n",
            )
            .bind::<Text, _>(provider_id)
            .bind::<Integer, _>(first)
            .bind::<Integer, _>(last)
            .execute(c)?,
            AnyConnection::Sqlite(c) => diesel::sql_query(
                "INSERT INTO provider_slots (provider_id, slot) \
                 WITH RECURSIVE s(n) AS (SELECT ? UNION ALL SELECT n + 1 FROM s WHERE n < ?) \
                 SELECT ?, n FROM s",
            )
            .bind::<Integer, _>(first)
            .bind::<Integer, _>(last)
            .bind::<Text, _>(provider_id)
            .execute(c)?,
        };
    } else if wanted < rows {
        // By subquery, not a list of slot numbers: a large cut would exceed SQLite's bind limit.
        let surplus = rows - wanted;
        match conn {
            AnyConnection::Postgresql(c) => diesel::sql_query(
                "DELETE FROM provider_slots WHERE provider_id = $1 AND slot IN ( \
                   SELECT slot FROM provider_slots WHERE provider_id = $1 AND referral_id IS NULL \
                   ORDER BY slot DESC LIMIT $2)",
            )
            .bind::<Text, _>(provider_id)
            .bind::<Integer, _>(surplus)
            .execute(c)?,
            AnyConnection::Sqlite(c) => diesel::sql_query(
                "DELETE FROM provider_slots WHERE provider_id = ? AND slot IN ( \
                   SELECT slot FROM provider_slots WHERE provider_id = ? AND referral_id IS NULL \
                   ORDER BY slot DESC LIMIT ?)",
            )
            .bind::<Text, _>(provider_id)
            .bind::<Text, _>(provider_id)
            .bind::<Integer, _>(surplus)
            .execute(c)?,
        };
    }
    Ok(())
}

/// Rows per provider in `provider_load_shards`, so concurrent claims rarely update the same one.
pub(super) const LOAD_SHARDS: i32 = 16;

/// Referrals each provider holds now (its taken slots).
pub fn loads(
    conn: &mut AnyConnection,
    provider_ids: &[String],
) -> QueryResult<HashMap<String, i64>> {
    let rows: Vec<(String, i32)> = provider_load_shards::table
        .filter(provider_load_shards::provider_id.eq_any(provider_ids))
        .select((
            provider_load_shards::provider_id,
            provider_load_shards::held,
        ))
        .load(conn)?;
    let mut out: HashMap<String, i64> = HashMap::new();
    for (id, held) in rows {
        *out.entry(id).or_default() += i64::from(held);
    }
    Ok(out)
}

pub fn load(conn: &mut AnyConnection, provider_id: &str) -> QueryResult<i64> {
    Ok(loads(conn, &[provider_id.to_owned()])?
        .get(provider_id)
        .copied()
        .unwrap_or(0))
}

// ---------------------------------------------------------------------------------------------
// Contracts

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = contracts)]
pub struct ContractRow {
    pub id: ContractId,
    pub employer_id: EmployerId,
    pub provider_id: ProviderId,
    pub priority: i32,
    pub starts_at: NaiveDateTime,
    pub ends_at: Option<NaiveDateTime>,
    pub active: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl ContractRow {
    pub fn in_force(&self, now: NaiveDateTime) -> bool {
        super::model::in_force(self.active, self.starts_at, self.ends_at, now)
    }
}

pub struct NewContract {
    pub employer_id: EmployerId,
    pub provider_id: ProviderId,
    pub priority: i32,
    pub starts_at: NaiveDateTime,
    pub ends_at: Option<NaiveDateTime>,
}

pub fn insert_contract(conn: &mut AnyConnection, new: &NewContract) -> QueryResult<ContractRow> {
    let now = crate::db::now();
    let row = ContractRow {
        id: ContractId::generate(),
        employer_id: new.employer_id.clone(),
        provider_id: new.provider_id.clone(),
        priority: new.priority,
        starts_at: new.starts_at,
        ends_at: new.ends_at,
        active: true,
        created_at: now,
        updated_at: now,
    };
    diesel::insert_into(contracts::table)
        .values((
            contracts::id.eq(&row.id),
            contracts::employer_id.eq(&row.employer_id),
            contracts::provider_id.eq(&row.provider_id),
            contracts::priority.eq(row.priority),
            contracts::starts_at.eq(row.starts_at),
            contracts::ends_at.eq(row.ends_at),
            contracts::active.eq(true),
            contracts::created_at.eq(now),
            contracts::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(row)
}

pub fn find_contract(
    conn: &mut AnyConnection,
    id: &ContractId,
) -> QueryResult<Option<ContractRow>> {
    contracts::table
        .find(id)
        .select(ContractRow::as_select())
        .first(conn)
        .optional()
}

pub fn contract_exists(
    conn: &mut AnyConnection,
    employer_id: &EmployerId,
    provider_id: &ProviderId,
) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        contracts::table
            .filter(contracts::employer_id.eq(employer_id))
            .filter(contracts::provider_id.eq(provider_id)),
    ))
    .get_result(conn)
}

pub fn list_contracts(
    conn: &mut AnyConnection,
    employer_id: Option<&EmployerId>,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<ContractRow>> {
    let mut query = contracts::table
        .filter(contracts::id.gt(after.unwrap_or("").to_owned()))
        .order(contracts::id.asc())
        .limit(limit)
        .select(ContractRow::as_select())
        .into_boxed();
    if let Some(e) = employer_id {
        query = query.filter(contracts::employer_id.eq(e.clone()));
    }
    query.load(conn)
}

#[derive(Debug, Clone, Default, AsChangeset)]
#[diesel(table_name = contracts)]
pub struct ContractChange {
    pub priority: Option<i32>,
    pub starts_at: Option<NaiveDateTime>,
    pub ends_at: Option<Option<NaiveDateTime>>,
    pub active: Option<bool>,
}

pub fn update_contract(
    conn: &mut AnyConnection,
    id: &ContractId,
    change: &ContractChange,
) -> QueryResult<usize> {
    diesel::update(contracts::table.find(id))
        .set((change, contracts::updated_at.eq(crate::db::now())))
        .execute(conn)
}
