//! Routing against the database: the snapshot of an employer's providers, their loads, then an
//! atomic capacity claim.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::model::{route_live, route_summarised_live, Candidate, Decision, Live, RoutingRequest};
use crate::db::schema::referrals;
use crate::db::AnyConnection;
use crate::directory::capacity::{
    claim_slot, contracted_loads, contracted_providers, ContractTerms, RoutingAttributes,
};
use crate::directory::model::{split_codes, Language, Region};
use crate::directory::store::affiliations;
use crate::ids::{EmployerId, ProviderId, ReferralId};
use crate::referrals::model::Status;
use crate::referrals::store::ReferralRow;

/// One employer's contracted providers as routing reads them, parsed once: everything but the
/// loads (which change with every offer) and whether each contract is in force (which changes
/// with the clock). First routing keeps it in memory between submissions (`super::cache`).
#[derive(Debug)]
pub struct Snapshot {
    providers: Vec<(ContractTerms, Candidate)>,
}

/// Each contracted provider's held referrals, by provider id.
pub type Loads = HashMap<String, i64>;

impl Snapshot {
    /// Providers under contract with the employer.
    pub(super) fn len(&self) -> usize {
        self.providers.len()
    }

    /// The snapshot and the loads, both read now in the caller's transaction (re-offers and
    /// manual assignment, and first routing when nothing is kept).
    pub fn read_fresh(
        conn: &mut AnyConnection,
        employer_id: &EmployerId,
    ) -> QueryResult<(Snapshot, Loads)> {
        Ok((
            Snapshot::read(conn, employer_id)?,
            contracted_loads(conn, employer_id)?,
        ))
    }

    /// Read now, in the caller's transaction.
    pub(super) fn read(
        conn: &mut AnyConnection,
        employer_id: &EmployerId,
    ) -> QueryResult<Snapshot> {
        let affiliated = affiliations(conn, &[employer_id.to_string()])?
            .remove(employer_id.as_str())
            .unwrap_or_default();
        let providers = contracted_providers(conn, employer_id)?
            .into_iter()
            .map(|(terms, p)| {
                let c = candidate(&terms, p, &affiliated);
                (terms, c)
            })
            .collect();
        Ok(Snapshot { providers })
    }

    /// The candidates at `now` with the current `loads`, borrowed from the snapshot.
    fn live<'a>(&'a self, loads: &'a Loads, now: NaiveDateTime) -> impl Iterator<Item = Live<'a>> {
        self.providers.iter().map(move |(terms, c)| Live {
            candidate: c,
            contracted: terms.in_force(now),
            active_referrals: loads
                .get(&c.provider_id)
                .map_or(0, |l| (*l).clamp(0, i64::from(u32::MAX)) as u32),
        })
    }

    /// [`Snapshot::live`], with the providers in `filled` seen at capacity.
    fn live_but<'a>(
        &'a self,
        loads: &'a Loads,
        now: NaiveDateTime,
        filled: &'a HashSet<String>,
    ) -> impl Iterator<Item = Live<'a>> {
        self.live(loads, now).map(move |mut c| {
            // A set, not a list: with stale kept loads a submission may lose many claims in a
            // row, and each pass looks up every candidate.
            if !filled.is_empty() && filled.contains(&c.candidate.provider_id) {
                c.active_referrals = c.candidate.capacity;
            }
            c
        })
    }
}

/// A provider as a candidate, not yet placed in time (`contracted` false) nor loaded.
fn candidate(contract: &ContractTerms, p: RoutingAttributes, affiliated: &[String]) -> Candidate {
    Candidate {
        affiliated: affiliated.iter().any(|a| a == p.id.as_str()),
        serves_helping_professionals: p.serves_helping_professionals,
        contracted: false,
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
        active_referrals: 0,
        provider_id: p.id.into_string(),
    }
}

/// One candidate per provider: `contracts` is UNIQUE (employer_id, provider_id), which `route`
/// relies on.
///
/// Routes among the employer's contracted providers (`snapshot`, read in this transaction or
/// kept while the directory has not changed) at their `loads` (read in this transaction, or
/// for a large network kept a moment: `super::cache`) and claims a slot with the one chosen.
/// The loads only rank: capacity is decided by the claim, which also re-checks that the
/// provider is active. If another transaction took that provider's last slot between the read
/// and the claim, it counts as full and routing runs again, so the loop ends after at most one
/// pass per candidate. The returned decision's `chosen` provider holds a slot claimed for `holder`;
/// the decision is as it may be stored: summarised when a provider was chosen or the person
/// stated preferences, itemised for an unroutable referral without them.
pub fn place(
    conn: &mut AnyConnection,
    (snapshot, loads): (&Snapshot, &Loads),
    req: &RoutingRequest,
    tried: &HashSet<String>,
    holder: &ReferralId,
    now: NaiveDateTime,
) -> QueryResult<Decision> {
    // Providers whose last slot another transaction took after the loads were read.
    let mut filled: HashSet<String> = HashSet::new();
    loop {
        // An offered referral keeps the summary only: the itemised reports are read for
        // unroutable referrals alone (a re-offer that finds nobody stores its own), and writing
        // one per provider with every submission made its cost grow with the network (about 70
        // bytes a provider). So the summary is routed first, and the full decision only for a
        // referral nobody can take.
        let decision = route_summarised_live(req, snapshot.live_but(loads, now, &filled), tried);
        let Some(chosen) = decision.chosen.clone() else {
            return Ok(
                route_live(req, snapshot.live_but(loads, now, &filled), tried).for_record(req),
            );
        };
        if claim_slot(conn, &ProviderId::from_trusted(chosen.clone()), holder)? {
            return Ok(decision);
        }
        filled.insert(chosen);
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
    let (snapshot, loads) = Snapshot::read_fresh(conn, employer_id)?;
    let found = snapshot
        .live(&loads, now)
        .find(|c| c.candidate.provider_id == provider.as_str())
        .map(Live::to_candidate);
    Ok(found)
}
