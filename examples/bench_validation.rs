//! Time to check one referral submission against the published document, the work `ApiJson`
//! adds to every submission before serde reads it.
//!
//! ```text
//! cargo run --release --example bench_validation
//! ```
//!
//! Three cases, each timed call by call after a warm-up so the p99 shows the tail: the schema
//! check of a valid `NewReferral` already parsed (the fast path, `is_valid`); the same with the
//! parse of the bytes into a JSON value that the check needs; and an invalid body with four bad
//! members, whose error walk builds the 422's entries.

use std::hint::black_box;
use std::time::{Duration, Instant};

use actix_web::http::Method;
use eap_referrals::validation::RequestSchemas;
use serde_json::{json, Value};

fn referral() -> Value {
    json!({
        "service_type": "counselling",
        "urgency": "routine",
        "modality": "video",
        "language": "EN",
        "region": "gb-eng",
        "employee_ref": "EMP-0001",
        "contact": {
            "preferred_name": "Sam",
            "phone": "+447700900123",
            "email": "sam@example.org",
            "best_time_to_contact": "weekday evenings",
            "voicemail_consent": true
        },
        "note": "Prefers a counsellor with NHS experience."
    })
}

/// A named case: one call of the work measured.
type Case<'a> = (&'static str, Box<dyn FnMut() + 'a>);

/// Runs `f` for at least `span` after a warm-up; mean and p99 per call.
fn measure(span: Duration, mut f: impl FnMut()) -> (Duration, Duration) {
    for _ in 0..1_000 {
        f();
    }
    let mut times = Vec::new();
    let started = Instant::now();
    while started.elapsed() < span {
        let t = Instant::now();
        f();
        times.push(t.elapsed());
    }
    times.sort_unstable();
    let mean = times.iter().sum::<Duration>() / times.len() as u32;
    (mean, times[times.len() * 99 / 100])
}

fn main() {
    let document = serde_json::to_value(eap_referrals::openapi::spec()).expect("serializes");
    let started = Instant::now();
    let schemas = RequestSchemas::from_document(&document).expect("the schemas compile");
    println!(
        "compiling every operation's request schemas: {:?}",
        started.elapsed()
    );
    let (post, path) = (Method::POST, "/v1/referrals");
    let valid = referral();
    let bytes = serde_json::to_vec(&valid).unwrap();
    let mut invalid = referral();
    invalid["language"] = json!("english");
    invalid["region"] = json!("GBR");
    invalid["contact"]["phone"] = json!("07700 900123");
    invalid["contact"]["email"] = json!("not an email");
    assert!(schemas.check_body(&post, path, &valid).is_ok());
    assert!(schemas.check_body(&post, path, &invalid).is_err());

    let span = Duration::from_secs(2);
    let cases: [Case; 3] = [
        (
            "schema check, valid body",
            Box::new(|| {
                black_box(schemas.check_body(&post, path, black_box(&valid))).unwrap();
            }),
        ),
        (
            "parse + schema check, valid body",
            Box::new(|| {
                let value: Value = serde_json::from_slice(black_box(&bytes)).unwrap();
                black_box(schemas.check_body(&post, path, &value)).unwrap();
            }),
        ),
        (
            "schema check, four invalid members",
            Box::new(|| {
                black_box(schemas.check_body(&post, path, black_box(&invalid))).unwrap_err();
            }),
        ),
    ];
    println!("| case | mean | p99 |\n|---|---|---|");
    for (name, mut f) in cases {
        let (mean, p99) = measure(span, &mut f);
        println!("| {name} | {mean:.2?} | {p99:.2?} |");
    }
}
