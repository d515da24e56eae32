use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::schema::{contracts, employers, providers};
use crate::db::AnyConnection;

// ---------------------------------------------------------------------------------------------
// Employers

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = employers)]
pub struct EmployerRow {
    pub id: String,
    pub name: String,
    pub active: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

pub fn insert_employer(conn: &mut AnyConnection, name: &str) -> QueryResult<EmployerRow> {
    let now = crate::db::now();
    let row = EmployerRow {
        id: uuid::Uuid::now_v7().to_string(),
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

pub fn find_employer(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<EmployerRow>> {
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
    id: &str,
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

// ---------------------------------------------------------------------------------------------
// Providers

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = providers)]
pub struct ProviderRow {
    pub id: String,
    pub name: String,
    pub active: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub status: String,
    pub services: String,
    pub languages: String,
    pub regions: String,
    pub modalities: String,
    pub interpretation: bool,
    pub crisis_capable: bool,
    pub capacity: i32,
    pub active_referrals: i32,
}

/// The attributes an admin sets; every field of an update is optional.
#[derive(Debug, Clone, Default, AsChangeset)]
#[diesel(table_name = providers)]
pub struct ProviderChange {
    pub name: Option<String>,
    pub status: Option<String>,
    pub services: Option<String>,
    pub languages: Option<String>,
    pub regions: Option<String>,
    pub modalities: Option<String>,
    pub interpretation: Option<bool>,
    pub crisis_capable: Option<bool>,
    pub capacity: Option<i32>,
    pub active: Option<bool>,
}

/// Inserts a provider; `attrs` must have every field set (the handler checks).
pub fn insert_provider(
    conn: &mut AnyConnection,
    attrs: &ProviderChange,
) -> QueryResult<ProviderRow> {
    let now = crate::db::now();
    let id = uuid::Uuid::now_v7().to_string();
    diesel::insert_into(providers::table)
        .values((
            providers::id.eq(&id),
            providers::name.eq(attrs.name.clone().unwrap_or_default()),
            providers::active.eq(true),
            providers::created_at.eq(now),
            providers::updated_at.eq(now),
            providers::status.eq(attrs.status.clone().unwrap_or_else(|| "active".into())),
            providers::services.eq(attrs.services.clone().unwrap_or_default()),
            providers::languages.eq(attrs.languages.clone().unwrap_or_default()),
            providers::regions.eq(attrs.regions.clone().unwrap_or_default()),
            providers::modalities.eq(attrs.modalities.clone().unwrap_or_default()),
            providers::interpretation.eq(attrs.interpretation.unwrap_or(false)),
            providers::crisis_capable.eq(attrs.crisis_capable.unwrap_or(false)),
            providers::capacity.eq(attrs.capacity.unwrap_or(0)),
            providers::active_referrals.eq(0),
        ))
        .execute(conn)?;
    find_provider(conn, &id)?.ok_or(diesel::result::Error::NotFound)
}

pub fn find_provider(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<ProviderRow>> {
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
    id: &str,
    change: &ProviderChange,
) -> QueryResult<usize> {
    diesel::update(providers::table.find(id))
        .set((change, providers::updated_at.eq(crate::db::now())))
        .execute(conn)
}

/// Takes one of the provider's slots if it has one free: a single conditional UPDATE, so two
/// transactions racing for the last slot cannot both succeed (PostgreSQL re-checks the row
/// after the first commits; SQLite runs writers one at a time).
pub fn claim_slot(conn: &mut AnyConnection, provider_id: &str) -> QueryResult<bool> {
    diesel::update(
        providers::table
            .find(provider_id)
            .filter(providers::active.eq(true))
            .filter(providers::status.eq("active"))
            .filter(providers::active_referrals.lt(providers::capacity)),
    )
    .set(providers::active_referrals.eq(providers::active_referrals + 1))
    .execute(conn)
    .map(|n| n == 1)
}

/// Gives a slot back (a referral closed, was declined or cancelled).
pub fn release_slot(conn: &mut AnyConnection, provider_id: &str) -> QueryResult<bool> {
    diesel::update(
        providers::table
            .find(provider_id)
            .filter(providers::active_referrals.gt(0)),
    )
    .set(providers::active_referrals.eq(providers::active_referrals - 1))
    .execute(conn)
    .map(|n| n == 1)
}

// ---------------------------------------------------------------------------------------------
// Contracts

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = contracts)]
pub struct ContractRow {
    pub id: String,
    pub employer_id: String,
    pub provider_id: String,
    pub priority: i32,
    pub starts_at: NaiveDateTime,
    pub ends_at: Option<NaiveDateTime>,
    pub active: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl ContractRow {
    /// In force: not deactivated and `now` within [starts_at, ends_at).
    pub fn in_force(&self, now: NaiveDateTime) -> bool {
        self.active && self.starts_at <= now && self.ends_at.is_none_or(|end| now < end)
    }
}

pub struct NewContract {
    pub employer_id: String,
    pub provider_id: String,
    pub priority: i32,
    pub starts_at: NaiveDateTime,
    pub ends_at: Option<NaiveDateTime>,
}

pub fn insert_contract(conn: &mut AnyConnection, new: &NewContract) -> QueryResult<ContractRow> {
    let now = crate::db::now();
    let row = ContractRow {
        id: uuid::Uuid::now_v7().to_string(),
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

pub fn find_contract(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<ContractRow>> {
    contracts::table
        .find(id)
        .select(ContractRow::as_select())
        .first(conn)
        .optional()
}

pub fn contract_exists(
    conn: &mut AnyConnection,
    employer_id: &str,
    provider_id: &str,
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
    employer_id: Option<&str>,
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
        query = query.filter(contracts::employer_id.eq(e.to_owned()));
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
    id: &str,
    change: &ContractChange,
) -> QueryResult<usize> {
    diesel::update(contracts::table.find(id))
        .set((change, contracts::updated_at.eq(crate::db::now())))
        .execute(conn)
}

/// Every provider under contract with the employer, with its contract, in one query: the
/// routing snapshot.
pub fn contracted_providers(
    conn: &mut AnyConnection,
    employer_id: &str,
) -> QueryResult<Vec<(ContractRow, ProviderRow)>> {
    contracts::table
        .inner_join(providers::table)
        .filter(contracts::employer_id.eq(employer_id))
        .select((ContractRow::as_select(), ProviderRow::as_select()))
        .load(conn)
}
