//! The routing decision (docs/ROUTING.md): which provider a referral is offered to, and for
//! every provider considered, why it was passed over or where it ranked. Pure: the store layer
//! loads one employer's candidates at one moment and calls [`route`]; nothing here touches I/O,
//! so the rules can be tested exhaustively and the decision replayed from the report.

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashSet};

use serde::{Deserialize, Serialize};
use utoipa::{PartialSchema, ToSchema};

use crate::directory::model::{Language, Modality, Region, Service, Urgency};

/// What the referral asks for (routing attributes only; never contact data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutingRequest {
    pub service: Service,
    pub urgency: Urgency,
    pub modality: Modality,
    pub language: Language,
    pub region: Region,
    /// The person's own; sealed at rest and only ever opened to build this request.
    pub preferences: Preferences,
}

/// The person's own routing preferences. They reveal where the person works or trained, so
/// they are personal data: sealed with the referral's data key, and a decision for a referral
/// that carries any of them is stored and shown only as a [`Summary`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preferences {
    /// Providers the person does not want to be seen by.
    #[serde(default)]
    pub exclude_providers: BTreeSet<String>,
    /// Care from a provider in the same country that serves none of the person's area.
    #[serde(default)]
    pub out_of_area: bool,
    /// The person is a health, care or mental-health worker: specialists rank first.
    #[serde(default)]
    pub helping_professional: bool,
}

impl Preferences {
    /// Whether the person stated any preference (and so the decision must not be itemised).
    pub fn any(&self) -> bool {
        !self.exclude_providers.is_empty() || self.out_of_area || self.helping_professional
    }
}

/// One provider as seen for one employer at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub provider_id: String,
    /// Provider status active (not paused or deactivated).
    pub active: bool,
    /// An active contract with this employer covers now.
    pub contracted: bool,
    /// Lower number = preferred.
    pub contract_priority: i32,
    pub services: Vec<Service>,
    pub languages: Vec<Language>,
    /// Offers interpretation for any language.
    pub interpretation: bool,
    pub regions: Vec<Region>,
    pub modalities: Vec<Modality>,
    /// 24/7 crisis capable.
    pub crisis_capable: bool,
    /// Most active referrals the provider takes at once.
    pub capacity: u32,
    pub active_referrals: u32,
    /// The referral's employer is affiliated with this provider.
    pub affiliated: bool,
    /// Staffed to treat health, care and mental-health workers.
    pub serves_helping_professionals: bool,
}

/// Why a provider was passed over. Reports list these in declaration order.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Exclusion {
    /// Paused or deactivated.
    Inactive,
    /// No contract with this employer in force now.
    NotContracted,
    /// The employer is affiliated with the provider (its own clinical services, a sister
    /// organisation, shared staff).
    AffiliatedProvider,
    ServiceNotOffered,
    RegionNotServed,
    /// Neither speaks the language nor offers interpretation.
    LanguageNotSpoken,
    ModalityNotOffered,
    /// The referral is a crisis and the provider is not 24/7 crisis capable.
    NotCrisisCapable,
    /// Active referrals have reached capacity.
    AtCapacity,
    /// Already offered this referral (declined or let the offer expire).
    AlreadyTried,
    /// Ruled out by the person's own preferences (a provider they excluded, or one serving
    /// their own area when they asked for care out of it). Which one is never said.
    ExcludedForConfidentiality,
}

/// One provider's part in a decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CandidateReport {
    pub provider_id: String,
    #[serde(flatten)]
    pub verdict: Verdict,
}

/// Eligible providers are ranked; the rest carry every rule they failed, so an admin looking at
/// an unroutable referral sees everything that would have to change, not only the first miss.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    Ranked { rank: usize },
    Excluded { reasons: Vec<Exclusion> },
}

/// The documented shape of a [`CandidateReport`]: one named object per verdict, told apart by
/// `verdict`. Written out because utoipa would describe the flattened enum as an `allOf` over a
/// `oneOf`, which client generators cannot make a class of.
impl utoipa::PartialSchema for CandidateReport {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let refs = CANDIDATE_VARIANTS
            .map(|(name, ..)| serde_json::json!({"$ref": format!("#/components/schemas/{name}")}));
        let mapping: serde_json::Map<_, _> = CANDIDATE_VARIANTS
            .iter()
            .map(|(name, verdict, _)| {
                (
                    (*verdict).to_owned(),
                    format!("#/components/schemas/{name}").into(),
                )
            })
            .collect();
        serde_json::from_value(serde_json::json!({
            "description": "One provider's part in a decision.",
            "oneOf": refs,
            "discriminator": {"propertyName": "verdict", "mapping": mapping},
        }))
        .expect("a valid schema")
    }
}

/// The verdict's own property and its schema, as a JSON object of one entry.
type OwnProperty = fn() -> serde_json::Value;

/// (component name, `verdict`, the verdict's own property).
const CANDIDATE_VARIANTS: [(&str, &str, OwnProperty); 2] = [
    ("RankedCandidate", "ranked", || {
        serde_json::json!({"rank": {
            "type": "integer", "minimum": 1, "description": "1 = chosen."
        }})
    }),
    ("ExcludedCandidate", "excluded", || {
        serde_json::json!({"reasons": {
            "type": "array", "minItems": 1,
            "items": {"$ref": "#/components/schemas/Exclusion"},
            "description": "Every rule the provider fails, in the order the rules are listed."
        }})
    }),
];

impl ToSchema for CandidateReport {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        for (name, verdict, own) in CANDIDATE_VARIANTS {
            let mut properties = own();
            let own_field = properties
                .as_object()
                .unwrap()
                .keys()
                .next()
                .unwrap()
                .clone();
            let required = ["provider_id", "verdict", own_field.as_str()].map(str::to_owned);
            properties["provider_id"] = serde_json::json!({"type": "string"});
            properties["verdict"] = serde_json::json!({"type": "string", "enum": [verdict]});
            let schema = serde_json::json!({
                "type": "object",
                "required": required,
                "properties": properties,
            });
            schemas.push((
                name.to_owned(),
                serde_json::from_value(schema).expect("a valid schema"),
            ));
        }
        schemas.push((Exclusion::name().into(), Exclusion::schema()));
    }
}

/// The outcome of routing one referral. Reports list the ranked providers in rank order, then
/// the excluded ones by provider id, so the same snapshot always yields the same report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Decision {
    /// The provider to offer the referral to; null when the referral is unroutable.
    pub chosen: Option<String>,
    /// One per candidate considered; empty when `summary` is given.
    pub reports: Vec<CandidateReport>,
    /// For a referral carrying the person's own preferences: the decision as a whole, with no
    /// per-provider verdicts (who is missing would tell whom the person excluded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<Summary>,
}

/// A decision without per-provider verdicts: counts, and every rule that passed somebody over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Summary {
    /// Providers considered (every provider under contract with the employer).
    pub considered: usize,
    /// How many of them passed every rule.
    pub eligible: usize,
    /// Each rule at least one provider failed, with how many failed it, in rule order.
    pub reasons: Vec<ReasonCount>,
}

/// How many providers one rule passed over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReasonCount {
    pub reason: Exclusion,
    pub providers: usize,
}

impl Decision {
    /// The decision as it may be stored and shown: itemised, or for a referral carrying the
    /// person's preferences, folded into a [`Summary`].
    pub fn for_record(self, req: &RoutingRequest) -> Decision {
        if req.preferences.any() {
            self.summarised()
        } else {
            self
        }
    }

    /// The same decision with its reports folded into a [`Summary`].
    pub fn summarised(self) -> Decision {
        let mut tally = Tally::default();
        for r in &self.reports {
            match &r.verdict {
                Verdict::Ranked { .. } => tally.eligible += 1,
                Verdict::Excluded { reasons } => tally.excluded(reasons.iter().copied()),
            }
        }
        tally.decision(self.reports.len(), self.chosen)
    }
}

/// What a [`Summary`] counts, gathered one candidate at a time.
#[derive(Default)]
struct Tally {
    eligible: usize,
    reasons: std::collections::BTreeMap<Exclusion, usize>,
}

impl Tally {
    fn excluded(&mut self, reasons: impl Iterator<Item = Exclusion>) {
        for reason in reasons {
            *self.reasons.entry(reason).or_default() += 1;
        }
    }

    fn decision(self, considered: usize, chosen: Option<String>) -> Decision {
        Decision {
            summary: Some(Summary {
                considered,
                eligible: self.eligible,
                reasons: self
                    .reasons
                    .into_iter()
                    .map(|(reason, providers)| ReasonCount { reason, providers })
                    .collect(),
            }),
            chosen,
            reports: Vec::new(),
        }
    }
}

/// A candidate as one routing sees it: the provider's standing terms, borrowed, and what
/// changes from one submission to the next (whether a contract covers now, the load). A
/// submission routes over the kept snapshot's candidates through these instead of copying each
/// one (its id and four lists) to set two fields: at 1,000 providers the copies were a
/// measurable part of a submission, inside SQLite's writers' turn.
#[derive(Debug, Clone, Copy)]
pub struct Live<'a> {
    pub candidate: &'a Candidate,
    pub contracted: bool,
    pub active_referrals: u32,
}

impl<'a> From<&'a Candidate> for Live<'a> {
    fn from(c: &'a Candidate) -> Self {
        Live {
            candidate: c,
            contracted: c.contracted,
            active_referrals: c.active_referrals,
        }
    }
}

impl Live<'_> {
    /// The candidate with these live fields, as an owned value.
    pub fn to_candidate(self) -> Candidate {
        Candidate {
            contracted: self.contracted,
            active_referrals: self.active_referrals,
            ..self.candidate.clone()
        }
    }

    fn provider_id(&self) -> &str {
        &self.candidate.provider_id
    }
}

/// Every rule the candidate fails, in [`Exclusion`] order. All rules are evaluated (no
/// short-circuit) because reports must list them all; none of them allocates.
fn failed_rules<'a>(
    req: &RoutingRequest,
    live: Live<'a>,
    tried: &HashSet<String>,
) -> impl Iterator<Item = Exclusion> + 'a {
    let prefs = &req.preferences;
    let c = live.candidate;
    let checks = [
        (Exclusion::Inactive, !c.active),
        (Exclusion::NotContracted, !live.contracted),
        (Exclusion::AffiliatedProvider, c.affiliated),
        (
            Exclusion::ServiceNotOffered,
            !c.services.contains(&req.service),
        ),
        (Exclusion::RegionNotServed, !serves_region(req, c)),
        (
            Exclusion::LanguageNotSpoken,
            !(c.interpretation || c.languages.contains(&req.language)),
        ),
        (
            Exclusion::ModalityNotOffered,
            !c.modalities.contains(&req.modality),
        ),
        (
            Exclusion::NotCrisisCapable,
            req.urgency == Urgency::Crisis && !c.crisis_capable,
        ),
        (Exclusion::AtCapacity, live.active_referrals >= c.capacity),
        (Exclusion::AlreadyTried, tried.contains(&c.provider_id)),
        (
            Exclusion::ExcludedForConfidentiality,
            prefs.exclude_providers.contains(&c.provider_id)
                || (prefs.out_of_area && !out_of_area_fits(req, c)),
        ),
    ];
    checks
        .into_iter()
        .filter_map(|(reason, failed)| failed.then_some(reason))
}

/// Whether the provider serves where the care is wanted: the person's region, or for care out of
/// area, somewhere in the same country (never across borders).
fn serves_region(req: &RoutingRequest, c: &Candidate) -> bool {
    if req.preferences.out_of_area {
        let country = req.region.country();
        c.regions.iter().any(|r| r.country() == country)
    } else {
        c.regions.iter().any(|r| r.covers(&req.region))
    }
}

/// For care out of area: none of the provider's regions contains or lies in the person's own
/// (`GB` overlaps `GB-SCT`, `GB-ENG` does not), and the care is remote.
fn out_of_area_fits(req: &RoutingRequest, c: &Candidate) -> bool {
    req.modality != Modality::InPerson
        && !c
            .regions
            .iter()
            .any(|r| r.covers(&req.region) || req.region.covers(r))
}

/// Why a person's manual choice of provider is refused, if it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The employer's affiliation: named, because it is the employer's, not the person's.
    Affiliated,
    /// Inactive, uncontracted, full, or ruled out by the person's preferences: one answer for
    /// all, so trying providers one by one tells nothing the directory does not.
    NotEligible,
}

/// Whether an admin may assign the referral to `c` by hand. An admin may override where and
/// how the care is given when no match exists (modality, crisis capability, region, a provider
/// tried before), but never what care it is (the service, a language the provider speaks or
/// interprets), the directory's state (contract, status, capacity), the employer's affiliations
/// nor the person's preferences; for care out of area that includes staying in the country and
/// the requested remote modality.
pub fn assign_refusal(req: &RoutingRequest, c: &Candidate) -> Option<Refusal> {
    let no_tries = HashSet::new();
    let binding = |e: &Exclusion| match e {
        Exclusion::AffiliatedProvider
        | Exclusion::Inactive
        | Exclusion::NotContracted
        | Exclusion::AtCapacity
        | Exclusion::ServiceNotOffered
        | Exclusion::LanguageNotSpoken
        | Exclusion::ExcludedForConfidentiality => true,
        Exclusion::RegionNotServed | Exclusion::ModalityNotOffered => req.preferences.out_of_area,
        Exclusion::NotCrisisCapable | Exclusion::AlreadyTried => false,
    };
    let refused: Vec<Exclusion> = failed_rules(req, c.into(), &no_tries)
        .filter(binding)
        .collect();
    if refused.contains(&Exclusion::AffiliatedProvider) {
        Some(Refusal::Affiliated)
    } else if refused.is_empty() {
        None
    } else {
        Some(Refusal::NotEligible)
    }
}

/// Whether the candidate may be offered this referral: it passes every rule of
/// docs/ROUTING.md.
pub fn is_eligible(req: &RoutingRequest, c: &Candidate, tried: &HashSet<String>) -> bool {
    failed_rules(req, c.into(), tried).next().is_none()
}

/// Preference among eligible candidates: for a helping professional, specialists first; then
/// contract priority, then load ratio, then provider id.
/// Load ratios are compared by cross-multiplying in u64 (exact for any u32 pair) because floats
/// would call near-equal ratios equal and let the id decide. Eligible candidates have
/// capacity > 0, so no ratio is undefined.
fn rank_order(specialists_first: bool, a: &Live, b: &Live) -> Ordering {
    let load = |x: &Live, y: &Live| u64::from(x.active_referrals) * u64::from(y.candidate.capacity);
    let specialism = |x: &Live| specialists_first && x.candidate.serves_helping_professionals;
    specialism(b)
        .cmp(&specialism(a))
        .then_with(|| {
            a.candidate
                .contract_priority
                .cmp(&b.candidate.contract_priority)
        })
        .then_with(|| load(a, b).cmp(&load(b, a)))
        .then_with(|| a.provider_id().cmp(b.provider_id()))
}

/// Chooses the provider for a referral among one employer's `candidates`, skipping those in
/// `tried` (already offered this referral). Unroutable when `chosen` is `None`.
///
/// `candidates` holds each provider once: a provider with several contracts with the employer
/// is one candidate, contracted if any contract is in force, at the best priority among those.
pub fn route(req: &RoutingRequest, candidates: &[Candidate], tried: &HashSet<String>) -> Decision {
    route_live(req, candidates.iter().map(Live::from), tried)
}

/// [`route`] over candidates seen live.
pub fn route_live<'a>(
    req: &RoutingRequest,
    candidates: impl Iterator<Item = Live<'a>>,
    tried: &HashSet<String>,
) -> Decision {
    let mut eligible: Vec<Live> = Vec::new();
    let mut excluded: Vec<CandidateReport> = Vec::new();
    let mut considered = 0;
    for c in candidates {
        considered += 1;
        // An empty collect does not allocate, so eligible candidates cost nothing here.
        let reasons: Vec<Exclusion> = failed_rules(req, c, tried).collect();
        if reasons.is_empty() {
            eligible.push(c);
        } else {
            excluded.push(CandidateReport {
                provider_id: c.provider_id().to_owned(),
                verdict: Verdict::Excluded { reasons },
            });
        }
    }
    // Provider ids are unique in a snapshot, so both orders are total and a stable sort would
    // only add its scratch buffer (n/2 reports) for nothing.
    let specialists_first = req.preferences.helping_professional;
    eligible.sort_unstable_by(|a, b| rank_order(specialists_first, a, b));
    excluded.sort_unstable_by(|a, b| a.provider_id.cmp(&b.provider_id));

    let mut reports = Vec::with_capacity(considered);
    reports.extend(eligible.iter().enumerate().map(|(i, c)| CandidateReport {
        provider_id: c.provider_id().to_owned(),
        verdict: Verdict::Ranked { rank: i + 1 },
    }));
    reports.append(&mut excluded);
    Decision {
        chosen: eligible.first().map(|c| c.provider_id().to_owned()),
        reports,
        summary: None,
    }
}

/// `route(req, candidates, tried).summarised()`, without ranking every eligible candidate or
/// writing a report per provider: the first in [`rank_order`] is found in one pass. A submission
/// routes over the employer's whole network: at 1,000 providers, sorting them and copying 1,000
/// ids into reports that the summary then dropped showed in the server's profile (sorting,
/// string compares, copies, allocation), inside SQLite's writers' turn.
pub fn route_summarised(
    req: &RoutingRequest,
    candidates: &[Candidate],
    tried: &HashSet<String>,
) -> Decision {
    route_summarised_live(req, candidates.iter().map(Live::from), tried)
}

/// [`route_summarised`] over candidates seen live.
pub fn route_summarised_live<'a>(
    req: &RoutingRequest,
    candidates: impl Iterator<Item = Live<'a>>,
    tried: &HashSet<String>,
) -> Decision {
    let specialists_first = req.preferences.helping_professional;
    let mut tally = Tally::default();
    let mut best: Option<Live> = None;
    let mut considered = 0;
    for c in candidates {
        considered += 1;
        let mut reasons = failed_rules(req, c, tried).peekable();
        if reasons.peek().is_some() {
            tally.excluded(reasons);
            continue;
        }
        tally.eligible += 1;
        if best.is_none_or(|b| rank_order(specialists_first, &c, &b) == Ordering::Less) {
            best = Some(c);
        }
    }
    tally.decision(considered, best.map(|c| c.provider_id().to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::model::Code;
    use proptest::prelude::*;

    fn region(s: &str) -> Region {
        Region::parse(s).unwrap()
    }

    fn lang(s: &str) -> Language {
        Language::parse(s).unwrap()
    }

    fn request() -> RoutingRequest {
        RoutingRequest {
            service: Service::Counselling,
            urgency: Urgency::Routine,
            modality: Modality::Video,
            language: lang("en"),
            region: region("GB-SCT"),
            preferences: Preferences::default(),
        }
    }

    /// Eligible for [`request`] on every rule, with room to spare.
    fn eligible(id: &str) -> Candidate {
        Candidate {
            provider_id: id.to_owned(),
            active: true,
            contracted: true,
            contract_priority: 1,
            services: vec![Service::Counselling, Service::Family],
            languages: vec![lang("en"), lang("gd")],
            interpretation: false,
            regions: vec![region("GB-SCT")],
            modalities: vec![Modality::Video, Modality::Phone],
            crisis_capable: false,
            capacity: 10,
            active_referrals: 3,
            affiliated: false,
            serves_helping_professionals: false,
        }
    }

    fn no_tries() -> HashSet<String> {
        HashSet::new()
    }

    fn verdict_of<'a>(d: &'a Decision, id: &str) -> &'a Verdict {
        &d.reports
            .iter()
            .find(|r| r.provider_id == id)
            .unwrap_or_else(|| panic!("no report for {id}"))
            .verdict
    }

    fn excluded(reasons: &[Exclusion]) -> Verdict {
        Verdict::Excluded {
            reasons: reasons.to_vec(),
        }
    }

    fn chosen_of(req: &RoutingRequest, candidates: &[Candidate]) -> Option<String> {
        route(req, candidates, &no_tries()).chosen
    }

    #[test]
    fn a_fully_eligible_candidate_is_chosen() {
        let d = route(&request(), &[eligible("p1")], &no_tries());
        assert_eq!(d.chosen.as_deref(), Some("p1"));
        assert_eq!(
            d.reports,
            vec![CandidateReport {
                provider_id: "p1".into(),
                verdict: Verdict::Ranked { rank: 1 },
            }]
        );
        assert!(is_eligible(&request(), &eligible("p1"), &no_tries()));
    }

    #[test]
    fn each_rule_alone_excludes_with_exactly_its_reason() {
        type Break = fn(&mut RoutingRequest, &mut Candidate, &mut HashSet<String>);
        let cases: [(Exclusion, Break); 13] = [
            (Exclusion::Inactive, |_, c, _| c.active = false),
            (Exclusion::NotContracted, |_, c, _| c.contracted = false),
            (Exclusion::AffiliatedProvider, |_, c, _| c.affiliated = true),
            (Exclusion::ServiceNotOffered, |r, _, _| {
                r.service = Service::Legal
            }),
            (Exclusion::RegionNotServed, |_, c, _| {
                c.regions = vec![region("GB-WLS"), region("IE")]
            }),
            (Exclusion::LanguageNotSpoken, |r, _, _| {
                r.language = lang("pl")
            }),
            (Exclusion::ModalityNotOffered, |r, _, _| {
                r.modality = Modality::InPerson
            }),
            (Exclusion::NotCrisisCapable, |r, _, _| {
                r.urgency = Urgency::Crisis
            }),
            (Exclusion::AtCapacity, |_, c, _| c.active_referrals = 10),
            (Exclusion::AlreadyTried, |_, c, t| {
                t.insert(c.provider_id.clone());
            }),
            (Exclusion::ExcludedForConfidentiality, |r, c, _| {
                r.preferences
                    .exclude_providers
                    .insert(c.provider_id.clone());
            }),
            // Out of area from GB-SCT: GB-ENG is elsewhere in the country, GB-SCT is not.
            (Exclusion::ExcludedForConfidentiality, |r, _, _| {
                r.preferences.out_of_area = true
            }),
            (Exclusion::RegionNotServed, |r, c, _| {
                r.preferences.out_of_area = true;
                c.regions = vec![region("IE")];
            }),
        ];
        for (reason, break_rule) in cases {
            let (mut req, mut c, mut tried) = (request(), eligible("p1"), no_tries());
            break_rule(&mut req, &mut c, &mut tried);
            let d = route(&req, std::slice::from_ref(&c), &tried);
            assert_eq!(d.chosen, None, "{reason:?}");
            assert_eq!(d.reports.len(), 1, "{reason:?}");
            assert_eq!(d.reports[0].verdict, excluded(&[reason]), "{reason:?}");
            assert!(!is_eligible(&req, &c, &tried), "{reason:?}");
        }
    }

    #[test]
    fn every_failing_rule_is_listed() {
        let mut req = request();
        req.urgency = Urgency::Crisis;
        let c = Candidate {
            active: false,
            languages: vec![lang("fr")],
            modalities: vec![Modality::Chat],
            capacity: 0,
            active_referrals: 0,
            ..eligible("p1")
        };
        let tried = HashSet::from(["p1".to_owned()]);
        let d = route(&req, &[c], &tried);
        assert_eq!(d.chosen, None);
        assert_eq!(
            d.reports[0].verdict,
            excluded(&[
                Exclusion::Inactive,
                Exclusion::LanguageNotSpoken,
                Exclusion::ModalityNotOffered,
                Exclusion::NotCrisisCapable,
                Exclusion::AtCapacity,
                Exclusion::AlreadyTried,
            ])
        );
    }

    #[test]
    fn contract_priority_outranks_load() {
        let preferred_but_busy = Candidate {
            contract_priority: 1,
            capacity: 10,
            active_referrals: 9,
            ..eligible("b")
        };
        let idle_fallback = Candidate {
            contract_priority: 2,
            capacity: 10,
            active_referrals: 0,
            ..eligible("a")
        };
        let d = route(
            &request(),
            &[idle_fallback, preferred_but_busy],
            &no_tries(),
        );
        assert_eq!(d.chosen.as_deref(), Some("b"));
        assert_eq!(verdict_of(&d, "a"), &Verdict::Ranked { rank: 2 });
    }

    #[test]
    fn negative_priorities_rank_first() {
        let urgent_contract = Candidate {
            contract_priority: -1,
            ..eligible("z")
        };
        let d = chosen_of(&request(), &[eligible("a"), urgent_contract]);
        assert_eq!(d.as_deref(), Some("z"));
    }

    #[test]
    fn lower_load_ratio_wins_at_equal_priority() {
        // 2/10 is lighter than 1/3 although it has more referrals in absolute terms.
        let big = Candidate {
            capacity: 10,
            active_referrals: 2,
            ..eligible("b")
        };
        let small = Candidate {
            capacity: 3,
            active_referrals: 1,
            ..eligible("a")
        };
        assert_eq!(chosen_of(&request(), &[small, big]).as_deref(), Some("b"));
    }

    #[test]
    fn load_ratio_is_compared_exactly() {
        // These ratios differ by about 5e-20, far below f64 resolution near 1; a float
        // comparison would tie them and hand the referral to "a" on the id.
        let lighter = Candidate {
            capacity: u32::MAX - 1,
            active_referrals: u32::MAX - 2,
            ..eligible("b")
        };
        let heavier = Candidate {
            capacity: u32::MAX,
            active_referrals: u32::MAX - 1,
            ..eligible("a")
        };
        assert_eq!(
            (lighter.active_referrals as f64 / lighter.capacity as f64),
            (heavier.active_referrals as f64 / heavier.capacity as f64),
            "the case no longer defeats floats"
        );
        assert_eq!(
            chosen_of(&request(), &[heavier, lighter]).as_deref(),
            Some("b")
        );
    }

    #[test]
    fn equal_priority_and_ratio_fall_back_to_provider_id() {
        let half_of_four = Candidate {
            capacity: 4,
            active_referrals: 2,
            ..eligible("p2")
        };
        let half_of_two = Candidate {
            capacity: 2,
            active_referrals: 1,
            ..eligible("p10")
        };
        // Lexicographic: "p10" < "p2".
        let d = route(&request(), &[half_of_four, half_of_two], &no_tries());
        assert_eq!(d.chosen.as_deref(), Some("p10"));
        assert_eq!(verdict_of(&d, "p2"), &Verdict::Ranked { rank: 2 });
    }

    #[test]
    fn reports_list_ranked_in_rank_order_then_excluded_by_id() {
        let candidates = [
            Candidate {
                active: false,
                ..eligible("c")
            },
            Candidate {
                contract_priority: 5,
                ..eligible("a")
            },
            Candidate {
                contracted: false,
                ..eligible("b")
            },
            eligible("d"),
        ];
        let d = route(&request(), &candidates, &no_tries());
        let order: Vec<(&str, &Verdict)> = d
            .reports
            .iter()
            .map(|r| (r.provider_id.as_str(), &r.verdict))
            .collect();
        assert_eq!(
            order,
            vec![
                ("d", &Verdict::Ranked { rank: 1 }),
                ("a", &Verdict::Ranked { rank: 2 }),
                ("b", &excluded(&[Exclusion::NotContracted])),
                ("c", &excluded(&[Exclusion::Inactive])),
            ]
        );
    }

    #[test]
    fn interpretation_lets_a_non_speaker_qualify() {
        let mut req = request();
        req.language = lang("uk");
        let interpreter = Candidate {
            languages: vec![],
            interpretation: true,
            ..eligible("p1")
        };
        assert!(is_eligible(&req, &interpreter, &no_tries()));
        assert!(!is_eligible(&req, &eligible("p2"), &no_tries()));
    }

    #[test]
    fn a_country_covers_its_subdivisions_but_not_the_reverse() {
        let national = Candidate {
            regions: vec![region("GB")],
            ..eligible("p1")
        };
        let scottish = eligible("p2");
        let mut req = request();
        req.region = region("GB-SCT");
        assert!(is_eligible(&req, &national, &no_tries()));
        req.region = region("GB");
        assert!(!is_eligible(&req, &scottish, &no_tries()));
        req.region = region("FR-IDF");
        assert!(!is_eligible(&req, &national, &no_tries()));
    }

    #[test]
    fn only_crisis_urgency_needs_a_crisis_capable_provider() {
        let ordinary = eligible("p1");
        let crisis_line = Candidate {
            crisis_capable: true,
            ..eligible("p2")
        };
        for urgency in [Urgency::Routine, Urgency::Urgent] {
            let req = RoutingRequest {
                urgency,
                ..request()
            };
            assert!(is_eligible(&req, &ordinary, &no_tries()), "{urgency:?}");
        }
        let req = RoutingRequest {
            urgency: Urgency::Crisis,
            ..request()
        };
        assert!(!is_eligible(&req, &ordinary, &no_tries()));
        assert!(is_eligible(&req, &crisis_line, &no_tries()));
    }

    #[test]
    fn capacity_zero_is_always_at_capacity() {
        let closed = Candidate {
            capacity: 0,
            active_referrals: 0,
            ..eligible("p1")
        };
        let d = route(&request(), &[closed], &no_tries());
        assert_eq!(d.chosen, None);
        assert_eq!(d.reports[0].verdict, excluded(&[Exclusion::AtCapacity]));
    }

    #[test]
    fn all_tried_is_unroutable() {
        let candidates = [eligible("p1"), eligible("p2"), eligible("p3")];
        let tried: HashSet<String> = ["p1", "p2", "p3", "gone"].map(String::from).into();
        let d = route(&request(), &candidates, &tried);
        assert_eq!(d.chosen, None);
        assert_eq!(d.reports.len(), 3);
        for r in &d.reports {
            assert_eq!(r.verdict, excluded(&[Exclusion::AlreadyTried]));
        }
    }

    #[test]
    fn no_candidates_is_unroutable() {
        let d = route(&request(), &[], &no_tries());
        assert_eq!(
            d,
            Decision {
                chosen: None,
                reports: vec![],
                summary: None,
            }
        );
    }

    #[test]
    fn decisions_serialise_with_snake_case_codes() {
        let candidates = [
            eligible("p1"),
            Candidate {
                active: false,
                capacity: 0,
                ..eligible("p2")
            },
        ];
        let d = route(&request(), &candidates, &no_tries());
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "chosen": "p1",
                "reports": [
                    {"provider_id": "p1", "verdict": "ranked", "rank": 1},
                    {
                        "provider_id": "p2",
                        "verdict": "excluded",
                        "reasons": ["inactive", "at_capacity"]
                    },
                ]
            })
        );
        assert_eq!(serde_json::from_value::<Decision>(json).unwrap(), d);
    }

    // ---- Property tests ------------------------------------------------------------------
    //
    // Small value domains, so that candidates often share priorities, ratios (1/2 = 2/4) and
    // attributes, and a fair share of cases are routable and unroutable.

    const SERVICES: [Service; 3] = [Service::Counselling, Service::Crisis, Service::Legal];
    const LANGUAGES: [&str; 3] = ["en", "fr", "cy"];
    const PROVIDER_REGIONS: [&str; 4] = ["GB", "GB-SCT", "GB-WLS", "FR"];
    const REQUEST_REGIONS: [&str; 5] = ["GB", "GB-SCT", "GB-WLS", "FR", "FR-IDF"];

    fn subset<T: Clone + std::fmt::Debug>(all: Vec<T>, p: f64) -> impl Strategy<Value = Vec<T>> {
        let n = all.len();
        proptest::collection::vec(proptest::bool::weighted(p), n).prop_map(move |keep| {
            all.iter()
                .zip(keep)
                .filter(|(_, keep)| *keep)
                .map(|(x, _)| x.clone())
                .collect()
        })
    }

    fn arb_request() -> impl Strategy<Value = RoutingRequest> {
        (
            proptest::sample::select(SERVICES.to_vec()),
            proptest::sample::select(Urgency::ALL),
            proptest::sample::select(Modality::ALL),
            proptest::sample::select(LANGUAGES.to_vec()),
            proptest::sample::select(REQUEST_REGIONS.to_vec()),
            proptest::bool::weighted(0.3),
            proptest::bool::weighted(0.3),
        )
            .prop_map(|(service, urgency, modality, l, r, out_of_area, hp)| {
                RoutingRequest {
                    service,
                    urgency,
                    modality,
                    language: lang(l),
                    region: region(r),
                    preferences: Preferences {
                        exclude_providers: BTreeSet::new(),
                        out_of_area,
                        helping_professional: hp,
                    },
                }
            })
    }

    /// A candidate without its id, plus whether it was already tried and whether the person
    /// excluded it.
    fn arb_candidate() -> impl Strategy<Value = (Candidate, bool, bool)> {
        (
            (
                proptest::bool::weighted(0.9),
                proptest::bool::weighted(0.85),
                -1i32..3,
                subset(SERVICES.to_vec(), 0.7),
                subset(LANGUAGES.map(lang).to_vec(), 0.6),
                proptest::bool::weighted(0.2),
            ),
            (
                subset(PROVIDER_REGIONS.map(region).to_vec(), 0.4),
                subset(Modality::ALL.to_vec(), 0.7),
                proptest::bool::weighted(0.5),
                0u32..7,
                0u32..5,
                proptest::bool::weighted(0.15),
            ),
            (
                proptest::bool::weighted(0.15),
                proptest::bool::weighted(0.3),
                proptest::bool::weighted(0.15),
            ),
        )
            .prop_map(
                |(
                    (active, contracted, contract_priority, services, languages, interpretation),
                    (regions, modalities, crisis_capable, capacity, active_referrals, tried),
                    (affiliated, serves_helping_professionals, excluded),
                )| {
                    let c = Candidate {
                        provider_id: String::new(),
                        active,
                        contracted,
                        contract_priority,
                        services,
                        languages,
                        interpretation,
                        regions,
                        modalities,
                        crisis_capable,
                        capacity,
                        active_referrals,
                        affiliated,
                        serves_helping_professionals,
                    };
                    (c, tried, excluded)
                },
            )
    }

    /// A request, candidates with distinct ids handed out in shuffled order (so input order
    /// and id order disagree), the tried set (which may name providers no longer present),
    /// and the same candidates in another order.
    fn arb_case() -> impl Strategy<
        Value = (
            RoutingRequest,
            Vec<Candidate>,
            HashSet<String>,
            Vec<Candidate>,
        ),
    > {
        (
            arb_request(),
            proptest::collection::vec(arb_candidate(), 0..40),
        )
            .prop_flat_map(|(req, drawn)| {
                let ids: Vec<usize> = (0..drawn.len()).collect();
                (Just(req), Just(drawn), Just(ids).prop_shuffle())
            })
            .prop_flat_map(|(mut req, drawn, ids)| {
                let mut tried: HashSet<String> = HashSet::from(["gone".to_owned()]);
                let candidates: Vec<Candidate> = drawn
                    .into_iter()
                    .zip(ids)
                    .map(|((c, was_tried, excluded), id)| {
                        let provider_id = format!("p{id}");
                        if was_tried {
                            tried.insert(provider_id.clone());
                        }
                        if excluded {
                            let prefs = &mut req.preferences;
                            prefs.exclude_providers.insert(provider_id.clone());
                        }
                        Candidate { provider_id, ..c }
                    })
                    .collect();
                let shuffled = Just(candidates.clone()).prop_shuffle();
                (Just(req), Just(candidates), Just(tried), shuffled)
            })
    }

    /// The rules of docs/DESIGN.md §4 written out again, one by one, independently of
    /// `failed_rules`.
    fn oracle_failures(
        req: &RoutingRequest,
        c: &Candidate,
        tried: &HashSet<String>,
    ) -> Vec<Exclusion> {
        let mut out = Vec::new();
        if !c.active {
            out.push(Exclusion::Inactive);
        }
        if !c.contracted {
            out.push(Exclusion::NotContracted);
        }
        if c.affiliated {
            out.push(Exclusion::AffiliatedProvider);
        }
        if !c.services.contains(&req.service) {
            out.push(Exclusion::ServiceNotOffered);
        }
        let wanted = req.region.as_str();
        let prefs = &req.preferences;
        let overlaps = |r: &str| {
            r == wanted
                || (r.len() == 2 && wanted.starts_with(&format!("{r}-")))
                || (wanted.len() == 2 && r.starts_with(&format!("{wanted}-")))
        };
        let served = if prefs.out_of_area {
            c.regions.iter().any(|r| r.as_str()[..2] == wanted[..2])
        } else {
            c.regions.iter().any(|r| {
                let r = r.as_str();
                r == wanted || (r.len() == 2 && wanted.starts_with(&format!("{r}-")))
            })
        };
        if !served {
            out.push(Exclusion::RegionNotServed);
        }
        let speaks = c
            .languages
            .iter()
            .any(|l| l.as_str() == req.language.as_str());
        if !speaks && !c.interpretation {
            out.push(Exclusion::LanguageNotSpoken);
        }
        if !c.modalities.contains(&req.modality) {
            out.push(Exclusion::ModalityNotOffered);
        }
        if matches!(req.urgency, Urgency::Crisis) && !c.crisis_capable {
            out.push(Exclusion::NotCrisisCapable);
        }
        if c.capacity == 0 || c.active_referrals >= c.capacity {
            out.push(Exclusion::AtCapacity);
        }
        if tried.iter().any(|t| *t == c.provider_id) {
            out.push(Exclusion::AlreadyTried);
        }
        let out_of_area_fails = prefs.out_of_area
            && (req.modality == Modality::InPerson
                || c.regions.iter().any(|r| overlaps(r.as_str())));
        if prefs.exclude_providers.iter().any(|e| *e == c.provider_id) || out_of_area_fails {
            out.push(Exclusion::ExcludedForConfidentiality);
        }
        out
    }

    /// Whether `a` is strictly preferable to `b`, with the load ratio compared in u128 so the
    /// check does not share the implementation's arithmetic.
    fn strictly_better(req: &RoutingRequest, a: &Candidate, b: &Candidate) -> bool {
        let a_load = u128::from(a.active_referrals) * u128::from(b.capacity);
        let b_load = u128::from(b.active_referrals) * u128::from(a.capacity);
        if req.preferences.helping_professional
            && a.serves_helping_professionals != b.serves_helping_professionals
        {
            return a.serves_helping_professionals;
        }
        a.contract_priority < b.contract_priority
            || (a.contract_priority == b.contract_priority
                && (a_load < b_load || (a_load == b_load && a.provider_id < b.provider_id)))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn routing_obeys_the_rules_and_the_ranking(
            (req, candidates, tried, shuffled) in arb_case()
        ) {
            let d = route(&req, &candidates, &tried);
            let passing: Vec<&Candidate> = candidates
                .iter()
                .filter(|c| oracle_failures(&req, c, &tried).is_empty())
                .collect();

            // (a) The chosen one passes every rule and nothing eligible beats it.
            if let Some(id) = &d.chosen {
                let chosen = candidates.iter().find(|c| &c.provider_id == id).unwrap();
                prop_assert_eq!(oracle_failures(&req, chosen, &tried), vec![]);
                for other in &passing {
                    prop_assert!(
                        !strictly_better(&req, other, chosen),
                        "{} outranks chosen {}", other.provider_id, id
                    );
                }
            }

            // (b) Unroutable exactly when nobody passes every rule.
            prop_assert_eq!(d.chosen.is_none(), passing.is_empty());

            // (c) One report per candidate, agreeing with the rules and the ranking.
            prop_assert_eq!(d.reports.len(), candidates.len());
            for c in &candidates {
                let mut mine = d.reports.iter().filter(|r| r.provider_id == c.provider_id);
                let report = mine.next();
                prop_assert!(report.is_some(), "no report for {}", c.provider_id);
                prop_assert!(mine.next().is_none(), "two reports for {}", c.provider_id);
                let failures = oracle_failures(&req, c, &tried);
                prop_assert_eq!(is_eligible(&req, c, &tried), failures.is_empty());
                match &report.unwrap().verdict {
                    Verdict::Excluded { reasons } => prop_assert_eq!(reasons, &failures),
                    Verdict::Ranked { rank } => {
                        prop_assert!(failures.is_empty());
                        let ahead = passing.iter().filter(|o| strictly_better(&req, o, c)).count();
                        prop_assert_eq!(*rank, ahead + 1);
                    }
                }
            }

            // (d) The order rows arrive in changes nothing.
            let again = route(&req, &shuffled, &tried);
            prop_assert_eq!(&again.chosen, &d.chosen);
            prop_assert_eq!(&again, &d);

            // (e) The one-pass summary a submission uses is the full decision summarised, in
            // whatever order the rows arrive.
            prop_assert_eq!(route_summarised(&req, &candidates, &tried), d.clone().summarised());
            prop_assert_eq!(route_summarised(&req, &shuffled, &tried), d.summarised());
        }

        /// First routing, then every re-offer (a decline and an expiry both add the provider
        /// to the tried set and route again), then a manual assignment to each provider: the
        /// employer's affiliations and the person's preferences hold throughout.
        #[test]
        fn no_offer_reaches_an_affiliated_or_excluded_provider_over_a_referrals_life(
            (req, candidates, tried, _) in arb_case()
        ) {
            let prefs = &req.preferences;
            let overlaps = |r: &Region| {
                let (a, b) = (r.as_str(), req.region.as_str());
                a == b || b.starts_with(&format!("{a}-")) || a.starts_with(&format!("{b}-"))
            };
            let mut tried = tried;
            let mut offers = 0;
            while let Some(id) = route(&req, &candidates, &tried).chosen {
                let c = candidates.iter().find(|c| c.provider_id == id).unwrap();
                prop_assert!(!c.affiliated, "offered to affiliated {}", id);
                prop_assert!(!prefs.exclude_providers.contains(&id), "offered to excluded {}", id);
                if prefs.out_of_area {
                    prop_assert!(req.modality != Modality::InPerson);
                    prop_assert!(!c.regions.iter().any(overlaps), "{} overlaps", id);
                    prop_assert!(c.regions.iter().any(|r| r.country() == req.region.country()));
                }
                let specialist_eligible = candidates.iter().any(|o| {
                    o.serves_helping_professionals && oracle_failures(&req, o, &tried).is_empty()
                });
                if prefs.helping_professional && specialist_eligible {
                    prop_assert!(c.serves_helping_professionals, "{} is no specialist", id);
                }
                tried.insert(id);
                offers += 1;
                prop_assert!(offers <= candidates.len());
            }
            for c in &candidates {
                let refusal = assign_refusal(&req, c);
                let out_of_area_fails = prefs.out_of_area
                    && (req.modality == Modality::InPerson
                        || c.regions.iter().any(overlaps)
                        || !c.regions.iter().any(|r| r.country() == req.region.country()));
                // What care it is and the directory's state bind every assignment; where and
                // how (region, modality, crisis) only bind care out of area.
                let wrong_care = !c.services.contains(&req.service)
                    || !(c.interpretation || c.languages.contains(&req.language));
                let unavailable =
                    !c.active || !c.contracted || c.active_referrals >= c.capacity;
                let remote_mismatch = prefs.out_of_area && !c.modalities.contains(&req.modality);
                if c.affiliated {
                    prop_assert_eq!(refusal, Some(Refusal::Affiliated));
                } else if prefs.exclude_providers.contains(&c.provider_id)
                    || out_of_area_fails
                    || wrong_care
                    || unavailable
                    || remote_mismatch
                {
                    prop_assert_eq!(refusal, Some(Refusal::NotEligible));
                } else {
                    prop_assert_eq!(refusal, None, "{} refused", &c.provider_id);
                }
            }
        }

        /// What is stored and shown for a referral with preferences: counts only, which agree
        /// with the itemised decision; with none, the itemised decision itself.
        #[test]
        fn a_summary_counts_exactly_what_the_reports_would_have_itemised(
            (req, candidates, tried, _) in arb_case()
        ) {
            let full = route(&req, &candidates, &tried);
            let stored = full.clone().for_record(&req);
            if !req.preferences.any() {
                prop_assert_eq!(stored, full);
                return Ok(());
            }
            prop_assert_eq!(&stored.chosen, &full.chosen);
            prop_assert!(stored.reports.is_empty());
            let summary = stored.summary.unwrap();
            prop_assert_eq!(summary.considered, candidates.len());
            let passing = candidates
                .iter()
                .filter(|c| oracle_failures(&req, c, &tried).is_empty())
                .count();
            prop_assert_eq!(summary.eligible, passing);
            for ReasonCount { reason, providers } in &summary.reasons {
                let failing = candidates
                    .iter()
                    .filter(|c| oracle_failures(&req, c, &tried).contains(reason))
                    .count();
                prop_assert_eq!(*providers, failing, "{:?}", reason);
                prop_assert!(failing > 0);
            }
        }
    }
}
