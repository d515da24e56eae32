use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::model::Role;
use crate::db::schema::api_clients;
use crate::db::AnyConnection;
use crate::ids::{ClientId, EmployerId, ProviderId};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = api_clients)]
pub struct ClientRow {
    pub id: ClientId,
    pub name: String,
    pub role: Role,
    pub employer_id: Option<EmployerId>,
    pub provider_id: Option<ProviderId>,
    pub secret_hash: String,
    pub created_at: NaiveDateTime,
    pub secret_rotated_at: NaiveDateTime,
    pub revoked_at: Option<NaiveDateTime>,
}

impl ClientRow {
    /// Changes with every secret rotation; access tokens carry it as `sv`.
    pub fn secret_version(&self) -> i64 {
        self.secret_rotated_at.and_utc().timestamp_micros()
    }
}

#[derive(Debug, Clone)]
pub struct NewClient {
    pub name: String,
    pub role: Role,
    pub employer_id: Option<EmployerId>,
    pub provider_id: Option<ProviderId>,
}

/// Inserts a client; its binding was checked (`auth::clients`).
pub fn insert(
    conn: &mut AnyConnection,
    new: &NewClient,
    secret_hash: &str,
) -> QueryResult<ClientRow> {
    let now = crate::db::now();
    let row = ClientRow {
        id: ClientId::generate(),
        name: new.name.clone(),
        role: new.role,
        employer_id: new.employer_id.clone(),
        provider_id: new.provider_id.clone(),
        secret_hash: secret_hash.to_owned(),
        created_at: now,
        secret_rotated_at: now,
        revoked_at: None,
    };
    diesel::insert_into(api_clients::table)
        .values((
            api_clients::id.eq(&row.id),
            api_clients::name.eq(&row.name),
            api_clients::role.eq(&row.role),
            api_clients::employer_id.eq(&row.employer_id),
            api_clients::provider_id.eq(&row.provider_id),
            api_clients::secret_hash.eq(&row.secret_hash),
            api_clients::created_at.eq(row.created_at),
            api_clients::secret_rotated_at.eq(row.secret_rotated_at),
        ))
        .execute(conn)?;
    Ok(row)
}

pub fn find(conn: &mut AnyConnection, id: &ClientId) -> QueryResult<Option<ClientRow>> {
    api_clients::table
        .find(id)
        .select(ClientRow::as_select())
        .first(conn)
        .optional()
}

/// One page in id order (ids are UUIDv7, so this is creation order).
pub fn list(
    conn: &mut AnyConnection,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<ClientRow>> {
    let mut query = api_clients::table
        .select(ClientRow::as_select())
        .order(api_clients::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(api_clients::id.gt(after.to_owned()));
    }
    query.load(conn)
}

pub fn set_secret(
    conn: &mut AnyConnection,
    id: &ClientId,
    hash: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        api_clients::table
            .find(id)
            .filter(api_clients::revoked_at.is_null()),
    )
    .set((
        api_clients::secret_hash.eq(hash),
        api_clients::secret_rotated_at.eq(now),
    ))
    .execute(conn)
}

pub fn revoke(conn: &mut AnyConnection, id: &ClientId, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(
        api_clients::table
            .find(id)
            .filter(api_clients::revoked_at.is_null()),
    )
    .set(api_clients::revoked_at.eq(now))
    .execute(conn)
}
