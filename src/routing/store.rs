//! Routing against the database: one query for the snapshot, then an atomic capacity claim.

use std::collections::HashSet;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::model::{route, Candidate, Decision, RoutingRequest};
use crate::db::schema::referrals;
use crate::db::AnyConnection;
use crate::directory::capacity::{claim_slot, contracted_providers};
use crate::directory::model::{split_codes, Language, Region};
use crate::directory::store::{ContractRow, ProviderRow};
use crate::ids::{EmployerId, ProviderId, ReferralId};
use crate::referrals::model::Status;
use crate::referrals::store::ReferralRow;

fn candidate(contract: ContractRow, p: ProviderRow, load: i64, now: NaiveDateTime) -> Candidate {
    Candidate {
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
/// candidate. The returned decision's `chosen` provider holds a slot claimed for `holder`.
pub fn place(
    conn: &mut AnyConnection,
    employer_id: &EmployerId,
    req: &RoutingRequest,
    tried: &HashSet<String>,
    holder: &ReferralId,
    now: NaiveDateTime,
) -> QueryResult<Decision> {
    let mut candidates: Vec<Candidate> = contracted_providers(conn, employer_id)?
        .into_iter()
        .map(|(c, p, load)| candidate(c, p, load, now))
        .collect();
    loop {
        let decision = route(req, &candidates, tried);
        let Some(chosen) = decision.chosen.clone() else {
            return Ok(decision);
        };
        if claim_slot(conn, &ProviderId::from_trusted(chosen.clone()), holder)? {
            return Ok(decision);
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
