//! Routing against the database: one query for the snapshot, then an atomic capacity claim.

use std::collections::HashSet;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::model::{route, Candidate, Decision, RoutingRequest};
use crate::db::schema::referrals;
use crate::db::AnyConnection;
use crate::directory::capacity::{claim_slot, contracted_providers};
use crate::directory::model::{split_codes, Language, Region};
use crate::directory::store::{affiliations, ContractRow, ProviderRow};
use crate::ids::{EmployerId, ProviderId, ReferralId};
use crate::referrals::model::Status;
use crate::referrals::store::ReferralRow;

fn candidate(
    contract: ContractRow,
    p: ProviderRow,
    load: i64,
    affiliated: &[String],
    now: NaiveDateTime,
) -> Candidate {
    Candidate {
        affiliated: affiliated.iter().any(|a| a == p.id.as_str()),
        serves_helping_professionals: p.serves_helping_professionals,
        contracted: contract.in_force(now),
        contract_priority: contract.priority,
        active: p.active && p.status == crate::directory::model::ProviderStatus::Active,
        services: split_codes(&p.services),
        languages: p
            .languages
            .split(',')
            .filter_map(|l| Language::parse(l).ok())
            .collect(),
        interpretation: p.interpretation,
        regions: p
            .regions
            .split(',')
            .filter_map(|r| Region::parse(r).ok())
            .collect(),
        modalities: split_codes(&p.modalities),
        crisis_capable: p.crisis_capable,
        capacity: p.capacity.max(0) as u32,
        active_referrals: load.max(0) as u32,
        provider_id: p.id.into_string(),
    }
}

/// One candidate per provider: `contracts` is UNIQUE (employer_id, provider_id), which `route`
/// relies on.
///
/// Routes among the employer's contracted providers and claims a slot with the one chosen.
/// If another transaction took that provider's last slot between the snapshot and the claim,
/// it counts as full and routing runs again, so the loop ends after at most one pass per
/// candidate. The returned decision's `chosen` provider holds a slot claimed for `holder`; the
/// decision is as it may be stored (summarised when the person stated preferences).
pub fn place(
    conn: &mut AnyConnection,
    employer_id: &EmployerId,
    req: &RoutingRequest,
    tried: &HashSet<String>,
    holder: &ReferralId,
    now: NaiveDateTime,
) -> QueryResult<Decision> {
    let affiliated = affiliations(conn, &[employer_id.to_string()])?
        .remove(employer_id.as_str())
        .unwrap_or_default();
    let mut candidates: Vec<Candidate> = contracted_providers(conn, employer_id)?
        .into_iter()
        .map(|(c, p, load)| candidate(c, p, load, &affiliated, now))
        .collect();
    loop {
        let decision = route(req, &candidates, tried);
        let Some(chosen) = decision.chosen.clone() else {
            return Ok(decision.for_record(req));
        };
        if claim_slot(conn, &ProviderId::from_trusted(chosen.clone()), holder)? {
            return Ok(decision.for_record(req));
        }
        if let Some(c) = candidates.iter_mut().find(|c| c.provider_id == chosen) {
            c.active_referrals = c.capacity;
        }
    }
}

/// One page of the referrals no provider could take, oldest first.
pub fn unroutable(
    conn: &mut AnyConnection,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<ReferralRow>> {
    referrals::table
        .filter(referrals::status.eq(Status::Unroutable))
        .filter(referrals::id.gt(after.unwrap_or("").to_owned()))
        .order(referrals::id.asc())
        .limit(limit)
        .select(ReferralRow::as_select())
        .load(conn)
}

/// The employer's referrals now offered to one of `providers`, each locked (PostgreSQL) so an
/// accept or decline in flight waits or is waited for.
pub fn open_offers_to(
    conn: &mut AnyConnection,
    employer_id: &EmployerId,
    providers: &[ProviderId],
) -> QueryResult<Vec<ReferralRow>> {
    let query = referrals::table
        .filter(referrals::employer_id.eq(employer_id))
        .filter(referrals::status.eq(Status::Offered))
        .filter(referrals::provider_id.eq_any(providers))
        .order(referrals::id.asc());
    match conn {
        AnyConnection::Postgresql(c) => query.select(ReferralRow::as_select()).for_update().load(c),
        AnyConnection::Sqlite(c) => query.select(ReferralRow::as_select()).load(c),
    }
}

/// One provider as routing would see it for the employer now; `None` when no contract binds
/// the two.
pub fn candidate_for(
    conn: &mut AnyConnection,
    employer_id: &EmployerId,
    provider: &ProviderId,
    now: NaiveDateTime,
) -> QueryResult<Option<Candidate>> {
    let affiliated = affiliations(conn, &[employer_id.to_string()])?
        .remove(employer_id.as_str())
        .unwrap_or_default();
    Ok(contracted_providers(conn, employer_id)?
        .into_iter()
        .find(|(_, p, _)| p.id.as_str() == provider.as_str())
        .map(|(c, p, load)| candidate(c, p, load, &affiliated, now)))
}
