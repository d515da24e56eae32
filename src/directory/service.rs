//! What each directory request does: its reads and writes in one write transaction with its
//! access-log events (`Caller::audited`), and the checks that need the database (bindings to
//! unknown or inactive objects, one contract per pair).

use std::sync::Arc;

use chrono::NaiveDateTime;

use super::model::{shifted_end, window_end, ENDS_TOO_LATE};
use super::store::{
    self, ContractChange, ContractRow, EmployerRow, NewContract, ProviderChange, ProviderRow,
};
use crate::auth::caller::Caller;
use crate::config::OfferTtl;
use crate::db::{AnyConnection, Db};
use crate::error::ApiError;
use crate::ids::{ContractId, EmployerId, ProviderId};
use crate::keys::Keys;
use crate::routing::affiliations;

const CONTRACT_EXISTS: &str =
    "this employer already has a contract with this provider; update it instead";

/// A provider with the referrals it holds now.
pub type LoadedProvider = (ProviderRow, i64);

// ---------------------------------------------------------------------------------------------
// Employers

/// An employer with the providers it is affiliated with.
pub type EmployerView = (EmployerRow, Vec<String>);

/// What setting an employer's affiliations needs: they re-route offers already made.
pub struct Rerouting {
    pub ttl: OfferTtl,
    pub keys: Arc<Keys>,
}

/// Each employer with its affiliations (one query for the page).
fn with_affiliations(
    conn: &mut AnyConnection,
    rows: Vec<EmployerRow>,
) -> Result<Vec<EmployerView>, ApiError> {
    let ids: Vec<String> = rows.iter().map(|r| r.id.to_string()).collect();
    let mut affiliated = store::affiliations(conn, &ids)?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let providers = affiliated.remove(r.id.as_str()).unwrap_or_default();
            (r, providers)
        })
        .collect())
}

fn one_with_affiliations(
    conn: &mut AnyConnection,
    id: &EmployerId,
) -> Result<EmployerView, ApiError> {
    let row = store::find_employer(conn, id)?.ok_or(ApiError::NotFound)?;
    with_affiliations(conn, vec![row])?
        .pop()
        .ok_or(ApiError::NotFound)
}

pub async fn create_employer(
    caller: Caller,
    db: &Db,
    name: String,
    affiliated: Vec<ProviderId>,
    rerouting: Rerouting,
) -> Result<EmployerView, ApiError> {
    caller
        .audited(db, move |conn| {
            let row = store::insert_employer(conn, &name)?;
            let Rerouting { ttl, keys } = &rerouting;
            let now = crate::db::now();
            affiliations::set(conn, ttl, &keys.master, &row.id, &affiliated, now)?;
            let view = one_with_affiliations(conn, &row.id)?;
            Ok((view, vec![row.id.to_string()]))
        })
        .await
}

pub async fn list_employers(
    caller: Caller,
    db: &Db,
    after: Option<String>,
    limit: i64,
) -> Result<Vec<EmployerView>, ApiError> {
    caller
        .audited(db, move |conn| {
            let rows = store::list_employers(conn, after.as_deref(), limit)?;
            let ids = rows.iter().map(|r| r.id.to_string()).collect();
            Ok((with_affiliations(conn, rows)?, ids))
        })
        .await
}

pub async fn get_employer(
    caller: Caller,
    db: &Db,
    id: EmployerId,
) -> Result<EmployerView, ApiError> {
    caller
        .audited(db, move |conn| {
            let view = one_with_affiliations(conn, &id)?;
            Ok((view, vec![id.into_string()]))
        })
        .await
}

/// What an employer update changes; `None` leaves a field as it is.
#[derive(Default)]
pub struct EmployerUpdate {
    pub name: Option<String>,
    /// `Some(false)` deactivates.
    pub active: Option<bool>,
    /// Replaces the affiliations (with `Rerouting` for the offers they withdraw).
    pub affiliated: Option<(Vec<ProviderId>, Rerouting)>,
}

/// Renames an employer, deactivates it, and/or replaces its affiliations.
pub async fn update_employer(
    caller: Caller,
    db: &Db,
    id: EmployerId,
    update: EmployerUpdate,
) -> Result<EmployerView, ApiError> {
    caller
        .audited(db, move |conn| {
            let EmployerUpdate {
                name,
                active,
                affiliated,
            } = &update;
            if store::update_employer(conn, &id, name.as_deref(), *active)? == 0 {
                return Err(ApiError::NotFound);
            }
            if let Some((providers, Rerouting { ttl, keys })) = affiliated {
                let now = crate::db::now();
                affiliations::set(conn, ttl, &keys.master, &id, providers, now)?;
            }
            let view = one_with_affiliations(conn, &id)?;
            Ok((view, vec![id.to_string()]))
        })
        .await
}

/// The providers an HR portal's people may be referred to (and may exclude), one page in id
/// order, each an access event.
pub async fn portal_providers(
    caller: Caller,
    db: &Db,
    employer: EmployerId,
    after: Option<String>,
    limit: i64,
) -> Result<Vec<ProviderRow>, ApiError> {
    caller
        .audited(db, move |conn| {
            let after = after.unwrap_or_default();
            let rows: Vec<ProviderRow> =
                store::portal_providers(conn, &employer, crate::db::now())?
                    .into_iter()
                    .filter(|p| p.id.as_str() > after.as_str())
                    .take(usize::try_from(limit).unwrap_or(0))
                    .collect();
            let ids = rows.iter().map(|r| r.id.to_string()).collect();
            Ok((rows, ids))
        })
        .await
}

// ---------------------------------------------------------------------------------------------
// Providers

pub async fn create_provider(
    caller: Caller,
    db: &Db,
    attrs: ProviderChange,
) -> Result<LoadedProvider, ApiError> {
    caller
        .audited(db, move |conn| {
            let row = store::insert_provider(conn, &attrs)?;
            let id = row.id.to_string();
            Ok(((row, 0), vec![id]))
        })
        .await
}

pub async fn list_providers(
    caller: Caller,
    db: &Db,
    after: Option<String>,
    limit: i64,
) -> Result<Vec<LoadedProvider>, ApiError> {
    caller
        .audited(db, move |conn| {
            let rows = store::list_providers(conn, after.as_deref(), limit)?;
            let ids: Vec<String> = rows.iter().map(|r| r.id.to_string()).collect();
            let loads = store::loads(conn, &ids)?;
            let rows = rows
                .into_iter()
                .map(|r| {
                    let load = loads.get(r.id.as_str()).copied().unwrap_or(0);
                    (r, load)
                })
                .collect();
            Ok((rows, ids))
        })
        .await
}

pub async fn get_provider(
    caller: Caller,
    db: &Db,
    id: ProviderId,
) -> Result<LoadedProvider, ApiError> {
    caller
        .audited(db, move |conn| {
            Ok((with_load(conn, &id)?, vec![id.into_string()]))
        })
        .await
}

/// Changes the attributes `change` sets; a new capacity resizes the provider's slots in the
/// same transaction (`store::update_provider`).
pub async fn update_provider(
    caller: Caller,
    db: &Db,
    id: ProviderId,
    change: ProviderChange,
) -> Result<LoadedProvider, ApiError> {
    caller
        .audited(db, move |conn| {
            store::find_provider(conn, &id)?.ok_or(ApiError::NotFound)?;
            if !change_is_empty(&change) {
                store::update_provider(conn, &id, &change)?;
            }
            Ok((with_load(conn, &id)?, vec![id.into_string()]))
        })
        .await
}

/// Deactivates a provider. Idempotent.
pub async fn deactivate_provider(
    caller: Caller,
    db: &Db,
    id: ProviderId,
) -> Result<LoadedProvider, ApiError> {
    caller
        .audited(db, move |conn| {
            let change = ProviderChange {
                active: Some(false),
                ..Default::default()
            };
            if store::update_provider(conn, &id, &change)? == 0 {
                return Err(ApiError::NotFound);
            }
            Ok((with_load(conn, &id)?, vec![id.into_string()]))
        })
        .await
}

fn with_load(conn: &mut AnyConnection, id: &ProviderId) -> Result<LoadedProvider, ApiError> {
    let row = store::find_provider(conn, id)?.ok_or(ApiError::NotFound)?;
    let load = store::load(conn, id.as_str())?;
    Ok((row, load))
}

fn change_is_empty(c: &ProviderChange) -> bool {
    c.name.is_none()
        && c.status.is_none()
        && c.services.is_none()
        && c.languages.is_none()
        && c.regions.is_none()
        && c.modalities.is_none()
        && c.interpretation.is_none()
        && c.crisis_capable.is_none()
        && c.capacity.is_none()
        && c.active.is_none()
}

// ---------------------------------------------------------------------------------------------
// Contracts

/// Binds an employer to a provider: both must exist and be active (409 otherwise), and the
/// pair must not have a contract yet (409).
pub async fn create_contract(
    caller: Caller,
    db: &Db,
    new: NewContract,
) -> Result<ContractRow, ApiError> {
    caller
        .audited(db, move |conn| {
            if !store::find_employer(conn, &new.employer_id)?.is_some_and(|e| e.active) {
                return Err(ApiError::unbound("employer"));
            }
            if !store::find_provider(conn, &new.provider_id)?.is_some_and(|p| p.active) {
                return Err(ApiError::unbound("provider"));
            }
            if store::contract_exists(conn, &new.employer_id, &new.provider_id)? {
                return Err(contract_exists());
            }
            // Two creates can race past the check above; the UNIQUE constraint decides, and the
            // loser gets the same 409.
            let row = store::insert_contract(conn, &new).map_err(|e| match e {
                diesel::result::Error::DatabaseError(
                    diesel::result::DatabaseErrorKind::UniqueViolation,
                    _,
                ) => contract_exists(),
                other => other.into(),
            })?;
            let id = row.id.to_string();
            Ok((row, vec![id]))
        })
        .await
}

fn contract_exists() -> ApiError {
    ApiError::Conflict {
        detail: CONTRACT_EXISTS.into(),
        allowed: None,
    }
}

pub async fn list_contracts(
    caller: Caller,
    db: &Db,
    employer: Option<EmployerId>,
    after: Option<String>,
    limit: i64,
) -> Result<Vec<ContractRow>, ApiError> {
    caller
        .audited(db, move |conn| {
            let rows = store::list_contracts(conn, employer.as_ref(), after.as_deref(), limit)?;
            let ids = rows.iter().map(|r| r.id.to_string()).collect();
            Ok((rows, ids))
        })
        .await
}

pub async fn get_contract(
    caller: Caller,
    db: &Db,
    id: ContractId,
) -> Result<ContractRow, ApiError> {
    caller
        .audited(db, move |conn| {
            let row = store::find_contract(conn, &id)?.ok_or(ApiError::NotFound)?;
            Ok((row, vec![id.into_string()]))
        })
        .await
}

/// A 422 for a window that would end after `model::LATEST_END`, at the member that put it there.
pub fn too_late(pointer: &str) -> ApiError {
    ApiError::invalid_member(pointer, crate::error::ErrorCode::Range, ENDS_TOO_LATE)
}

/// A change to a contract; absent fields stay as they are.
pub struct ContractEdit {
    pub priority: Option<i32>,
    /// Moves the window; its length is kept unless `days` is given too.
    pub starts_at: Option<NaiveDateTime>,
    /// A new length from the (new) start; `Some(None)` makes the contract open-ended.
    pub days: Option<Option<u32>>,
}

pub async fn update_contract(
    caller: Caller,
    db: &Db,
    id: ContractId,
    edit: ContractEdit,
) -> Result<ContractRow, ApiError> {
    caller
        .audited(db, move |conn| {
            let current = store::find_contract(conn, &id)?.ok_or(ApiError::NotFound)?;
            let start = edit.starts_at.unwrap_or(current.starts_at);
            // A new length, or the current one kept when only the start moves: the window stays
            // non-empty whatever is sent.
            let ends_at = match edit.days {
                Some(days) => Some(
                    days.map(|d| window_end(start, d).ok_or_else(|| too_late("/days")))
                        .transpose()?,
                ),
                None => match (edit.starts_at, current.ends_at) {
                    (Some(_), Some(end)) => Some(Some(
                        shifted_end(start, end - current.starts_at)
                            .ok_or_else(|| too_late("/starts_at"))?,
                    )),
                    (Some(_), None) => Some(None),
                    (None, _) => None,
                },
            };
            let change = ContractChange {
                priority: edit.priority,
                starts_at: edit.starts_at,
                ends_at,
                active: None,
            };
            if change.priority.is_some() || change.starts_at.is_some() || change.ends_at.is_some() {
                store::update_contract(conn, &id, &change)?;
            }
            let row = store::find_contract(conn, &id)?.ok_or(ApiError::NotFound)?;
            Ok((row, vec![id.into_string()]))
        })
        .await
}

/// Ends a contract at once.
pub async fn deactivate_contract(
    caller: Caller,
    db: &Db,
    id: ContractId,
) -> Result<ContractRow, ApiError> {
    caller
        .audited(db, move |conn| {
            let change = ContractChange {
                active: Some(false),
                ..Default::default()
            };
            if store::update_contract(conn, &id, &change)? == 0 {
                return Err(ApiError::NotFound);
            }
            let row = store::find_contract(conn, &id)?.ok_or(ApiError::NotFound)?;
            Ok((row, vec![id.into_string()]))
        })
        .await
}
