use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::model::Role;
use crate::db::schema::{api_clients, employers, providers};
use crate::db::AnyConnection;
use crate::error::ApiError;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = api_clients)]
pub struct ClientRow {
    pub id: String,
    pub name: String,
    pub role: String,
    pub employer_id: Option<String>,
    pub provider_id: Option<String>,
    pub secret_hash: String,
    pub created_at: NaiveDateTime,
    pub secret_rotated_at: NaiveDateTime,
    pub revoked_at: Option<NaiveDateTime>,
}

impl ClientRow {
    pub fn role(&self) -> Option<Role> {
        Role::parse(&self.role)
    }

    /// Changes with every secret rotation; access tokens carry it as `sv`.
    pub fn secret_version(&self) -> i64 {
        self.secret_rotated_at.and_utc().timestamp_micros()
    }
}

#[derive(Debug, Clone)]
pub struct NewClient {
    pub name: String,
    pub role: Role,
    pub employer_id: Option<String>,
    pub provider_id: Option<String>,
}

/// Inserts a client after checking its binding: an `hr_portal` names an existing active
/// employer, a `provider` an existing active provider, and the other roles neither.
pub fn insert(
    conn: &mut AnyConnection,
    new: &NewClient,
    secret_hash: &str,
) -> Result<ClientRow, ApiError> {
    check_binding(conn, new)?;
    let now = crate::db::now();
    let row = ClientRow {
        id: uuid::Uuid::now_v7().to_string(),
        name: new.name.clone(),
        role: new.role.as_str().to_owned(),
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

/// A well-formed binding to an employer or provider that does not exist or is inactive is a
/// conflict with the directory's current state (409), not a malformed request: the same body
/// succeeds once that employer or provider is active.
pub fn unbound(what: &str) -> ApiError {
    ApiError::Conflict {
        detail: format!("{what}_id: no active {what} has this id"),
        allowed: None,
    }
}

fn check_binding(conn: &mut AnyConnection, new: &NewClient) -> Result<(), ApiError> {
    let unexpected = |field: &str| {
        ApiError::validation(
            field,
            "not_allowed",
            format!("a {} client is not bound to this", new.role.as_str()),
        )
    };
    match new.role {
        Role::HrPortal => {
            if new.provider_id.is_some() {
                return Err(unexpected("provider_id"));
            }
            let id = new.employer_id.as_deref().ok_or_else(|| {
                ApiError::validation(
                    "employer_id",
                    "required",
                    "an hr_portal client is bound to one employer",
                )
            })?;
            let active: Option<bool> = employers::table
                .find(id)
                .select(employers::active)
                .first(conn)
                .optional()?;
            if active != Some(true) {
                return Err(unbound("employer"));
            }
        }
        Role::Provider => {
            if new.employer_id.is_some() {
                return Err(unexpected("employer_id"));
            }
            let id = new.provider_id.as_deref().ok_or_else(|| {
                ApiError::validation(
                    "provider_id",
                    "required",
                    "a provider client is bound to one provider",
                )
            })?;
            let active: Option<bool> = providers::table
                .find(id)
                .select(providers::active)
                .first(conn)
                .optional()?;
            if active != Some(true) {
                return Err(unbound("provider"));
            }
        }
        Role::Auditor | Role::Admin => {
            if new.employer_id.is_some() {
                return Err(unexpected("employer_id"));
            }
            if new.provider_id.is_some() {
                return Err(unexpected("provider_id"));
            }
        }
    }
    Ok(())
}

pub fn find(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<ClientRow>> {
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
    id: &str,
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

pub fn revoke(conn: &mut AnyConnection, id: &str, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(
        api_clients::table
            .find(id)
            .filter(api_clients::revoked_at.is_null()),
    )
    .set(api_clients::revoked_at.eq(now))
    .execute(conn)
}

/// Creates a client outside HTTP (the `admin create-client` command), logged like any other
/// creation. Returns the client and its secret, shown once.
pub fn create_from_cli(
    conn: &mut AnyConnection,
    new: &NewClient,
) -> Result<(ClientRow, String), ApiError> {
    use crate::audit::{self, AuditEvent};
    let secret = super::model::generate_secret();
    let hash = super::model::hash_secret(&secret);
    let ctx = crate::extract::RequestCtx {
        request_id: format!("cli-{}", uuid::Uuid::now_v7()),
        source: Some("local-cli".into()),
    };
    let op = audit::operation("POST", "/v1/admin/clients")
        .ok_or_else(|| ApiError::Internal("client.create missing".into()))?;
    let row = crate::db::write_tx(conn, |conn| {
        let row = insert(conn, new, &hash)?;
        let mut event = AuditEvent::anonymous(&ctx, op, op.ok).resource(Some(&row.id));
        event.actor_role = Some("operator".into());
        audit::record(conn, &[event])?;
        Ok::<_, ApiError>(row)
    })?;
    Ok((row, secret))
}
