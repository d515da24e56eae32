//! Time per routing decision at 1,000 and 10,000 providers; and at 1,000 with the person's
//! preferences (20 excluded providers, helping professional) and the employer's affiliations
//! (5% of providers), the decision then folded into its summary as it is stored.
//!
//! ```text
//! cargo run --release --example bench_routing
//! ```
//!
//! Candidates are generated from a fixed seed so runs compare like with like. Each size runs
//! for at least a second after a warm-up; every decision is timed on its own so the p99 shows
//! the tail, not only the mean.

use std::collections::{BTreeSet, HashSet};
use std::hint::black_box;
use std::time::{Duration, Instant};

use eap_referrals::directory::model::{Code, Language, Modality, Region, Service, Urgency};
use eap_referrals::routing::model::{
    is_eligible, route, Candidate, Decision, Preferences, RoutingRequest,
};

/// Knuth's MMIX constants; quality is irrelevant here, repeatability is the point.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) as u32
    }

    fn below(&mut self, n: u32) -> u32 {
        self.next() % n
    }

    fn chance(&mut self, percent: u32) -> bool {
        self.below(100) < percent
    }

    fn some_of<T: Clone>(&mut self, all: &[T], percent: u32) -> Vec<T> {
        all.iter()
            .filter(|_| self.chance(percent))
            .cloned()
            .collect()
    }
}

fn candidates(n: usize, rng: &mut Lcg, affiliations: bool) -> Vec<Candidate> {
    let languages: Vec<Language> = ["en", "fr", "de", "es", "pl", "ar", "cy", "gd"]
        .iter()
        .map(|l| Language::parse(l).unwrap())
        .collect();
    let regions: Vec<Region> = ["GB", "GB-SCT", "GB-WLS", "GB-ENG", "GB-NIR", "IE", "FR"]
        .iter()
        .map(|r| Region::parse(r).unwrap())
        .collect();
    (0..n)
        .map(|i| {
            let capacity = rng.below(40);
            Candidate {
                provider_id: format!("{:08x}-provider-{i}", rng.next()),
                active: rng.chance(95),
                contracted: rng.chance(90),
                contract_priority: rng.below(5) as i32,
                services: rng.some_of(Service::ALL, 60),
                languages: rng.some_of(&languages, 30),
                interpretation: rng.chance(20),
                regions: rng.some_of(&regions, 35),
                modalities: rng.some_of(Modality::ALL, 70),
                crisis_capable: rng.chance(30),
                capacity,
                active_referrals: rng.below(capacity + 1),
                affiliated: affiliations && rng.chance(5),
                serves_helping_professionals: rng.chance(20),
            }
        })
        .collect()
}

fn bench(n: usize, with_preferences: bool) {
    let mut rng = Lcg(0x5eed_0000 + n as u64);
    let providers = candidates(n, &mut rng, with_preferences);
    let preferences = if with_preferences {
        Preferences {
            // Spread over the directory, as a person picks from the whole list.
            exclude_providers: providers
                .iter()
                .step_by(n / 20)
                .take(20)
                .map(|c| c.provider_id.clone())
                .collect::<BTreeSet<_>>(),
            out_of_area: false,
            helping_professional: true,
        }
    } else {
        Preferences::default()
    };
    let req = RoutingRequest {
        service: Service::Counselling,
        urgency: Urgency::Urgent,
        modality: Modality::Video,
        language: Language::parse("en").unwrap(),
        region: Region::parse("GB-SCT").unwrap(),
        preferences,
    };
    // What the service does with every decision: fold it when the person stated preferences.
    let decide = |req: &RoutingRequest, tried: &HashSet<String>| -> Decision {
        route(req, &providers, tried).for_record(req)
    };
    // A referral that has already been declined by a few providers.
    let tried: HashSet<String> = providers
        .iter()
        .step_by(n / 3)
        .map(|c| c.provider_id.clone())
        .collect();
    let eligible = providers
        .iter()
        .filter(|c| is_eligible(&req, c, &tried))
        .count();

    for _ in 0..100 {
        black_box(decide(black_box(&req), black_box(&tried)));
    }

    let mut samples: Vec<Duration> = Vec::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(1) || samples.len() < 1_000 {
        let t = Instant::now();
        let decision = decide(black_box(&req), black_box(&tried));
        samples.push(t.elapsed());
        black_box(decision);
    }
    samples.sort_unstable();
    let micros = |d: Duration| d.as_secs_f64() * 1e6;
    let mean = samples.iter().map(|d| micros(*d)).sum::<f64>() / samples.len() as f64;
    let p99 = micros(samples[samples.len() * 99 / 100]);
    let with = if with_preferences {
        ", 20 excluded + affiliations"
    } else {
        ""
    };
    println!(
        "{n:>6} providers{with} ({eligible} eligible): {:>7} decisions, mean {mean:8.1} µs, p99 {p99:8.1} µs",
        samples.len()
    );
}

fn main() {
    for n in [1_000, 10_000] {
        bench(n, false);
    }
    bench(1_000, true);
}
