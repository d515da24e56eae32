//! Validation errors as a client meets them: every invalid member or parameter in one 422,
//! each located by JSON pointer or parameter name with the expected form, never repeating
//! what was sent; and one rule for codes: case-insensitive in, canonical out.

mod common;

use common::provider::{get_referral, provider_token};
use common::{post_json_at, problem, referral_body, request_token_at, spawn_app, Binary};
use serde_json::{json, Value};

/// `(pointer or ?parameter, code)` of each entry of a 422, in the answer's order.
fn entries(p: &Value) -> Vec<(String, String)> {
    p["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors in {p}"))
        .iter()
        .map(|e| {
            let at = match (e["pointer"].as_str(), e["parameter"].as_str()) {
                (Some(pointer), None) => pointer.to_owned(),
                (None, Some(name)) => format!("?{name}"),
                _ => panic!("exactly one of pointer and parameter: {e}"),
            };
            (at, e["code"].as_str().unwrap().to_owned())
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, c)| ((*a).to_owned(), (*c).to_owned()))
        .collect()
}

#[actix_web::test]
async fn a_referral_with_bad_language_region_phone_and_email_answers_all_four_in_one_422() {
    let app = spawn_app().await;
    let portal = app.setup_portal(2).await;
    let mut body = referral_body();
    body["language"] = json!("english");
    body["region"] = json!("Great Britain");
    body["contact"]["phone"] = json!("07700 900123");
    body["contact"]["email"] = json!("sam at example.org");

    let p = problem(app.submit_json(&portal.token, &body).await, 422).await;

    assert_eq!(
        entries(&p),
        pairs(&[
            ("/contact/email", "format"),
            ("/contact/phone", "pattern"),
            ("/language", "pattern"),
            ("/region", "pattern"),
        ])
    );
    let expected: Vec<&str> = p["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["expected"].as_str().unwrap())
        .collect();
    assert!(expected[0].ends_with("e.g. sam@example.org"), "{p}");
    assert!(expected[1].starts_with("E.164") && expected[1].contains("+447700900123"));
    assert!(
        expected[2].starts_with("BCP 47 primary language subtag") && expected[2].contains("en")
    );
    assert!(expected[3].starts_with("ISO 3166-1 alpha-2") && expected[3].contains("GB-SCT"));
    let text = p.to_string();
    for sent in ["english", "Great Britain", "07700", "sam at example"] {
        assert!(!text.contains(sent), "{sent} echoed: {text}");
    }
    assert_eq!(app.count("referrals"), 0);
}

#[actix_web::test]
async fn codes_are_accepted_in_any_case_and_stored_canonical() {
    let app = spawn_app().await;
    let portal = app.setup_portal(2).await;
    // A provider described in odd case is stored, returned and routed to in canonical form.
    let body = json!({
        "name": "Mixed Case Counselling", "services": ["counselling"], "languages": ["EN", "Fr"],
        "regions": ["gb", "gb-sct"], "modalities": ["video"], "capacity": 1,
    });
    let resp = app
        .post_json("/v1/admin/providers", &portal.admin_token, &body)
        .await;
    assert_eq!(resp.status(), 201);
    let provider: Value = resp.json().await.unwrap();
    assert_eq!(provider["languages"], json!(["en", "fr"]));
    assert_eq!(provider["regions"], json!(["GB", "GB-SCT"]));
    let id = provider["id"].as_str().unwrap();
    let read: Value = app
        .get(&format!("/v1/admin/providers/{id}"), &portal.admin_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (&read["languages"], &read["regions"]),
        (&json!(["en", "fr"]), &json!(["GB", "GB-SCT"]))
    );

    let mut body = referral_body();
    body["language"] = json!("EN");
    body["region"] = json!("gb-eng");
    let resp = app.submit_json(&portal.token, &body).await;
    assert_eq!(resp.status(), 201);
    let submitted: Value = resp.json().await.unwrap();
    let referral = submitted["id"].as_str().unwrap();
    // `EN` in `gb-eng` matched the portal's provider (`en`, `GB`): offered, not unroutable.
    let token = provider_token(&app, &portal, &portal.provider).await;
    let (status, _, seen) = get_referral(&app, &token, referral).await;
    assert_eq!(status, 200, "{seen}");
    assert_eq!(
        (&seen["language"], &seen["region"]),
        (&json!("en"), &json!("GB-ENG"))
    );
    assert_eq!(seen["status"], "offered");
}

#[actix_web::test]
async fn codes_of_the_wrong_shape_or_with_spaces_are_refused_with_the_expected_form() {
    let app = spawn_app().await;
    let portal = app.setup_portal(2).await;
    for (pointer, value) in [
        ("/language", "e1"),
        ("/language", " en"),
        ("/language", "en-GB"),
        ("/region", "GBR"),
        ("/region", "GB "),
        ("/region", "GB_SCT"),
    ] {
        let mut body = referral_body();
        *body.pointer_mut(pointer).unwrap() = json!(value);
        let p = problem(app.submit_json(&portal.token, &body).await, 422).await;
        assert_eq!(entries(&p), pairs(&[(pointer, "pattern")]), "{value:?}");
        assert!(
            p["errors"][0]["expected"]
                .as_str()
                .is_some_and(|e| e.contains("in any case")),
            "{p}"
        );
    }
    // Enum values are exact: no case folding there.
    let mut body = referral_body();
    body["service_type"] = json!("Counselling");
    body["urgency"] = json!("ROUTINE");
    let p = problem(app.submit_json(&portal.token, &body).await, 422).await;
    assert_eq!(
        entries(&p),
        pairs(&[
            ("/service_type", "invalid_value"),
            ("/urgency", "invalid_value")
        ])
    );
    assert_eq!(
        p["errors"][1]["expected"],
        "one of: routine, urgent, crisis"
    );
    // The same rule on a provider's lists, each item by its index.
    let body = json!({
        "name": "P", "services": ["counselling"], "languages": ["en", "e1"],
        "regions": ["GB", "GBR"], "modalities": ["video"], "capacity": 1,
    });
    let p = problem(
        app.post_json("/v1/admin/providers", &portal.admin_token, &body)
            .await,
        422,
    )
    .await;
    assert_eq!(
        entries(&p),
        pairs(&[("/languages/1", "pattern"), ("/regions/1", "pattern")])
    );
    assert_eq!(app.count("referrals"), 0);
}

#[actix_web::test]
async fn several_bad_query_parameters_are_all_named_in_one_422() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let auditor = app
        .create_client(&admin, json!({"name": "auditor", "role": "auditor"}))
        .await;
    let token = app.token(&auditor).await;

    let resp = app
        .get(
            "/v1/audit/events?outcome=ok&limit=0&from=yesterday&actor=&bogus=1",
            &token,
        )
        .await;
    let p = problem(resp, 422).await;

    assert_eq!(
        entries(&p),
        pairs(&[
            ("?actor", "length"),
            ("?bogus", "unknown_field"),
            ("?from", "format"),
            ("?limit", "range"),
            ("?outcome", "invalid_value"),
        ])
    );
    let by_name = |name: &str| {
        p["errors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["parameter"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(
        by_name("outcome")["expected"],
        "one of: success, denied, failure"
    );
    assert!(by_name("from")["expected"]
        .as_str()
        .unwrap()
        .contains("RFC 3339"));
    assert!(by_name("bogus")["expected"]
        .as_str()
        .unwrap()
        .starts_with("one of: from, to, actor"));
    assert!(!p.to_string().contains("yesterday"));
}

#[actix_web::test]
async fn a_missing_required_parameter_and_a_repeated_one_are_both_reported() {
    let app = spawn_app().await;
    let portal = app.setup_portal(1).await;
    let resp = app
        .get(
            "/v1/reports/utilization?from_month=2025-01&months=2&months=3",
            &portal.token,
        )
        .await;
    let p = problem(resp, 422).await;
    assert_eq!(
        entries(&p),
        pairs(&[("?group_by", "required"), ("?months", "invalid_value")])
    );
}

/// Names a client makes up are repeated only when they are plain identifiers; otherwise the
/// entry points at the object holding the member (or, for a parameter, gives its position).
/// The personal data in such a name reaches neither the answer nor the log.
#[actix_web::test]
async fn unknown_names_carrying_personal_data_are_neither_echoed_nor_logged() {
    let dir = tempfile::tempdir().unwrap();
    let (vars, pg) = common::test_vars(dir.path());
    let admin = Binary::create_client(&vars, "admin", "ops");
    let server = Binary::start(&vars);
    let base = server.base.clone();
    let http = reqwest::Client::new();
    let token_of = |v: Value| v["access_token"].as_str().unwrap().to_owned();
    let admin_token = token_of(
        request_token_at(&http, &base, &admin.id, &admin.secret)
            .await
            .json()
            .await
            .unwrap(),
    );
    let employer: Value = post_json_at(
        &http,
        &base,
        "/v1/admin/employers",
        &admin_token,
        &json!({"name": "Acme"}),
    )
    .await
    .json()
    .await
    .unwrap();
    let portal: Value = post_json_at(
        &http,
        &base,
        "/v1/admin/clients",
        &admin_token,
        &json!({"name": "portal", "role": "hr_portal", "employer_id": employer["id"]}),
    )
    .await
    .json()
    .await
    .unwrap();
    let portal_token = token_of(
        request_token_at(
            &http,
            &base,
            portal["client_id"].as_str().unwrap(),
            portal["client_secret"].as_str().unwrap(),
        )
        .await
        .json()
        .await
        .unwrap(),
    );

    let mut body = referral_body();
    body["contact"]["ssn 123-45-6789"] = json!(1);
    body["nhs_number"] = json!("943 476 5919");
    let resp = http
        .post(format!("{base}/v1/referrals"))
        .bearer_auth(&portal_token)
        .header("idempotency-key", "k-1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 422);
    let p: Value = resp.json().await.unwrap();
    assert_eq!(
        entries(&p),
        pairs(&[
            ("/contact", "unknown_field"),
            ("/nhs_number", "unknown_field")
        ])
    );
    let resp = http
        .get(format!(
            "{base}/v1/admin/clients?limit=5&dob%201990-01-01=x"
        ))
        .bearer_auth(&admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 422);
    let q: Value = resp.json().await.unwrap();
    assert_eq!(entries(&q), pairs(&[("?", "unknown_field")]));
    assert!(q["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("parameter 2 "));

    let log = server.stop().join("\n");
    common::drop_pg_database(pg);
    for leak in ["123-45-6789", "ssn", "943 476 5919", "1990-01-01", "dob"] {
        assert!(!p.to_string().contains(leak), "answer holds {leak}: {p}");
        assert!(!q.to_string().contains(leak), "answer holds {leak}: {q}");
        assert!(!log.contains(leak), "the log holds {leak}");
    }
}

/// Names are shown to people: bidirectional overrides, isolates and marks, and zero-width
/// characters (which make one name display as another, or two names look the same) are
/// refused with the pointer and the expected form, as control characters are.
#[actix_web::test]
async fn names_with_bidi_overrides_or_zero_width_characters_are_refused_with_the_expected_form() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    for name in [
        "Acme\u{202e}moc.evil",
        "Ac\u{200b}me",
        "\u{2066}Acme\u{2069}",
        "Acme\u{200d}",
        "Acme\u{feff}",
    ] {
        let resp = app
            .post_json("/v1/admin/employers", &token, &json!({ "name": name }))
            .await;
        let p = problem(resp, 422).await;
        assert_eq!(entries(&p), pairs(&[("/name", "pattern")]), "{name:?}");
        let expected = p["errors"][0]["expected"].as_str().unwrap();
        assert!(
            expected.contains("no bidirectional") && expected.contains("zero-width"),
            "{expected}"
        );
    }
    let resp = app
        .post_json(
            "/v1/admin/employers",
            &token,
            &json!({ "name": "Zoë & Co — 名前" }),
        )
        .await;
    assert_eq!(resp.status(), 201);
}
