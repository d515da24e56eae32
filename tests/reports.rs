//! Utilisation reports over a real socket: counts of the caller's employer only, small cells and
//! their complements suppressed, the same month reading the same in overlapping windows, and
//! clear 422s for bad windows. Referrals are inserted directly with the months they need.

mod common;

use chrono::{Datelike, NaiveDate, NaiveDateTime};
use common::{problem, spawn_app, Portal, TestApp};
use eap_referrals::codes::Code;
use eap_referrals::ids::{EmployerId, ReferralId};
use eap_referrals::referrals::store::{insert_referral, ReferralRow};
use serde_json::{json, Value};

fn at(y: i32, m: u32, d: u32, h: u32, min: u32, s: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(y, m, d)
        .unwrap()
        .and_hms_opt(h, min, s)
        .unwrap()
}

struct Spec<'a> {
    created: NaiveDateTime,
    service: &'a str,
    status: &'a str,
    outcome: Option<&'a str>,
    closed: Option<NaiveDateTime>,
}

fn insert(app: &TestApp, employer: &str, spec: &Spec, n: usize) {
    let mut conn = app.conn();
    for _ in 0..n {
        let row = ReferralRow {
            id: ReferralId::generate(),
            employer_id: EmployerId::from_trusted(employer.to_owned()),
            service_type: Code::from_code(spec.service).unwrap(),
            urgency: Code::from_code("routine").unwrap(),
            modality: Code::from_code("video").unwrap(),
            language: "en".into(),
            region: "GB".into(),
            employee_ref_hmac: None,
            status: Code::from_code(spec.status).unwrap(),
            outcome: spec.outcome.map(|o| Code::from_code(o).unwrap()),
            provider_id: None,
            offer_expires_at: None,
            version: 1,
            status_token_hash: "x".into(),
            key_id: None,
            wrapped_key: None,
            sealed_contact: None,
            sealed_note: None,
            routing_reasons: None,
            created_at: spec.created,
            updated_at: spec.created,
            closed_at: spec.closed,
            erased_at: None,
            sealed_preferences: None,
        };
        insert_referral(&mut conn, &row).unwrap();
    }
}

fn submitted(created: NaiveDateTime, service: &str) -> Spec<'_> {
    Spec {
        created,
        service,
        status: "unroutable",
        outcome: None,
        closed: None,
    }
}

/// Acme's referrals: January has one small cell, February is small as a whole, March is all
/// large; another employer's referrals and April's must not count.
async fn arrange(app: &TestApp) -> Portal {
    let portal = app.setup_portal(3).await;
    let jan = at(2025, 1, 10, 9, 0, 0);
    insert(app, &portal.employer, &submitted(jan, "counselling"), 18);
    insert(app, &portal.employer, &submitted(jan, "crisis"), 3);
    insert(app, &portal.employer, &submitted(jan, "financial"), 20);
    insert(
        app,
        &portal.employer,
        &submitted(at(2025, 2, 1, 0, 0, 0), "counselling"),
        4,
    );
    let mar = at(2025, 3, 15, 12, 0, 0);
    insert(app, &portal.employer, &submitted(mar, "counselling"), 11);
    // The last second of March counts in March, the first of April does not.
    insert(
        app,
        &portal.employer,
        &submitted(at(2025, 3, 31, 23, 59, 59), "counselling"),
        1,
    );
    insert(
        app,
        &portal.employer,
        &submitted(at(2025, 4, 1, 0, 0, 0), "counselling"),
        1,
    );
    for service in [
        "crisis",
        "financial",
        "legal",
        "family",
        "substance_use",
        "workplace",
    ] {
        insert(app, &portal.employer, &submitted(mar, service), 11);
    }
    let other = app.create_employer(&portal.admin_token, "Other Co").await;
    insert(app, &other, &submitted(jan, "crisis"), 50);
    portal
}

async fn report(app: &TestApp, token: &str, query: &str) -> reqwest::Response {
    app.get(&format!("/v1/reports/utilization?{query}"), token)
        .await
}

fn cells(row: &Value) -> Vec<Option<u64>> {
    row["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            assert_eq!(c["suppressed"], c["count"].is_null());
            c["count"].as_u64()
        })
        .collect()
}

#[actix_web::test]
async fn a_report_suppresses_small_cells_and_their_complements() {
    let app = spawn_app().await;
    let portal = arrange(&app).await;
    let resp = report(
        &app,
        &portal.token,
        "from_month=2025-01&months=3&group_by=service_type",
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers().get("cache-control").unwrap(), "no-store");
    let rid = common::request_id(&resp);
    let r: Value = resp.json().await.unwrap();
    assert_eq!(r["employer_id"], portal.employer.as_str());
    assert_eq!(r["min_cell"], 11);
    assert_eq!(
        r["categories"],
        json!([
            "counselling",
            "crisis",
            "financial",
            "legal",
            "family",
            "substance_use",
            "workplace"
        ])
    );
    let months = r["months"].as_array().unwrap();
    assert_eq!(months.len(), 3);
    // January: crisis 3 and the empty services are hidden; they add up to 3, so the first
    // service in category order that is not small (counselling 18) is hidden too, bringing the
    // hidden sum to 21 = 2·11 − 1. Financial and the total stay.
    assert_eq!(months[0]["month"], "2025-01");
    assert_eq!(
        cells(&months[0]),
        [None, None, Some(20), None, None, None, None]
    );
    assert_eq!(
        months[0]["total"],
        json!({"count": 41, "suppressed": false})
    );
    // February: 4 referrals in all, so nothing of it shows.
    assert_eq!(cells(&months[1]), [None; 7]);
    assert_eq!(
        months[1]["total"],
        json!({"count": null, "suppressed": true})
    );
    // March: every cell large.
    assert_eq!(
        cells(&months[2]),
        [
            Some(12),
            Some(11),
            Some(11),
            Some(11),
            Some(11),
            Some(11),
            Some(11)
        ]
    );
    assert_eq!(months[2]["total"]["count"], 78);
    // Totals over months are shown only when nothing under them is hidden.
    assert!(r["totals"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["suppressed"] == true));
    assert_eq!(r["total"]["suppressed"], true);
    assert!(!r.to_string().contains("\"id\""), "no referral-level data");

    let events = app.audit_for_request(&rid);
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].action.as_str(), events[0].outcome.as_str()),
        ("report.read", "success")
    );
    assert_eq!(
        events[0].resource_id.as_deref(),
        Some(portal.employer.as_str())
    );
}

#[actix_web::test]
async fn overlapping_windows_show_the_same_months_identically() {
    let app = spawn_app().await;
    let portal = arrange(&app).await;
    let get = |q: &'static str| {
        let app = &app;
        let token = portal.token.clone();
        async move { report(app, &token, q).await.json::<Value>().await.unwrap() }
    };
    let wide = get("from_month=2025-01&months=3&group_by=service_type").await;
    let early = get("from_month=2025-01&months=2&group_by=service_type").await;
    let late = get("from_month=2025-03&months=1&group_by=service_type").await;
    assert_eq!(wide["months"][0], early["months"][0]);
    assert_eq!(wide["months"][1], early["months"][1]);
    assert_eq!(wide["months"][2], late["months"][0]);
    // A window with nothing hidden shows its totals; they are sums of shown cells.
    assert_eq!(late["total"]["count"], 78);
    assert_eq!(
        late["totals"][0],
        json!({"category": "counselling", "count": 12, "suppressed": false})
    );
}

#[actix_web::test]
async fn outcomes_count_by_month_of_closing() {
    let app = spawn_app().await;
    let portal = app.setup_portal(3).await;
    let created = at(2024, 12, 20, 9, 0, 0);
    let closed = at(2025, 2, 3, 9, 0, 0);
    let spec = |status, outcome| Spec {
        created,
        service: "counselling",
        status,
        outcome,
        closed: Some(closed),
    };
    insert(
        &app,
        &portal.employer,
        &spec("closed", Some("completed")),
        30,
    );
    insert(&app, &portal.employer, &spec("closed", Some("no_show")), 12);
    insert(&app, &portal.employer, &spec("cancelled", None), 2);
    // Still open: no outcome yet, not counted.
    insert(
        &app,
        &portal.employer,
        &submitted(created, "counselling"),
        5,
    );
    let r: Value = report(
        &app,
        &portal.token,
        "from_month=2025-01&months=2&group_by=outcome",
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        r["categories"],
        json!([
            "completed",
            "no_show",
            "unable_to_contact",
            "declined_by_employee",
            "referred_elsewhere",
            "cancelled"
        ])
    );
    assert_eq!(
        r["months"][0]["total"]["suppressed"], true,
        "nothing closed in January"
    );
    // February: cancelled 2 and the zeros hide; the first outcome in category order that is
    // not small (completed 30) joins them, whatever its value (hidden sum 32 ≥ 21).
    assert_eq!(
        cells(&r["months"][1]),
        [None, Some(12), None, None, None, None]
    );
    assert_eq!(r["months"][1]["total"]["count"], 44);
}

#[actix_web::test]
async fn malformed_parameters_are_422() {
    let app = spawn_app().await;
    let portal = app.setup_portal(3).await;
    for (query, parameter, code) in [
        (
            "from_month=2025-1&group_by=urgency",
            "from_month",
            "pattern",
        ),
        (
            "from_month=2025-13&group_by=urgency",
            "from_month",
            "pattern",
        ),
        (
            "from_month=1999-12&group_by=urgency",
            "from_month",
            "pattern",
        ),
        (
            "from_month=2025-01&months=0&group_by=urgency",
            "months",
            "range",
        ),
        (
            "from_month=2025-01&months=25&group_by=urgency",
            "months",
            "range",
        ),
        // `to` is not a parameter: the window is `from_month` and `months`.
        (
            "from_month=2025-01&to=2025-02&group_by=urgency",
            "to",
            "unknown_field",
        ),
        (
            "from_month=2025-01&months=2&group_by=region",
            "group_by",
            "invalid_value",
        ),
        ("from_month=2025-01&months=2", "group_by", "required"),
        (
            "from_month=2025-01&months=2&group_by=urgency&employer_id=x",
            "employer_id",
            "unknown_field",
        ),
    ] {
        let p = problem(report(&app, &portal.token, query).await, 422).await;
        let entry = &p["errors"][0];
        assert_eq!(
            (&entry["parameter"], &entry["code"]),
            (&json!(parameter), &json!(code)),
            "{query}: {p}"
        );
        let errors = p["errors"].as_array().unwrap();
        assert!(
            errors.iter().all(|e| e["parameter"] == parameter),
            "only {parameter} is wrong: {query}: {p}"
        );
    }
    // Other roles are refused before the query is looked at.
    problem(
        report(
            &app,
            &portal.admin_token,
            "from_month=2025-01&months=2&group_by=urgency",
        )
        .await,
        403,
    )
    .await;
    problem(
        app.get_anonymous("/v1/reports/utilization?from_month=2025-01&months=2&group_by=urgency")
            .await,
        401,
    )
    .await;
}

/// Any well-formed question is answered: months that have not settled (ended 48 hours ago) are
/// left out, and `from_month`/`to_month` say which months the report covers, possibly none.
#[actix_web::test]
async fn unsettled_months_are_left_out_not_refused() {
    let app = spawn_app().await;
    let portal = app.setup_portal(3).await;
    let now = eap_referrals::db::now();
    let this_month = now.format("%Y-%m").to_string();
    let r: Value = report(
        &app,
        &portal.token,
        &format!("from_month={this_month}&group_by=urgency"),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        (&r["from_month"], &r["to_month"]),
        (&Value::Null, &Value::Null),
        "{r}"
    );
    assert_eq!(r["months"], json!([]));
    let r: Value = report(
        &app,
        &portal.token,
        "from_month=2999-12&months=24&group_by=urgency",
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(r["months"], json!([]));
    // A window reaching into the present stops at the last settled month: last month if it
    // ended more than 48 hours ago, else the one before.
    let first_of_month = now
        .date()
        .with_day(1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap();
    let last_settled = if now >= first_of_month + chrono::TimeDelta::hours(48) {
        first_of_month - chrono::TimeDelta::days(1)
    } else {
        first_of_month - chrono::TimeDelta::days(40)
    };
    let from = (first_of_month - chrono::TimeDelta::days(200))
        .format("%Y-%m")
        .to_string();
    let r: Value = report(
        &app,
        &portal.token,
        &format!("from_month={from}&months=24&group_by=urgency"),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(r["from_month"], from.as_str());
    assert_eq!(
        r["to_month"],
        last_settled.format("%Y-%m").to_string().as_str()
    );
    let months = r["months"].as_array().unwrap();
    assert_eq!(months.first().unwrap()["month"], from.as_str());
    assert_eq!(months.last().unwrap()["month"], r["to_month"]);
    // Without `months`, a year from `from_month`.
    let r: Value = report(&app, &portal.token, "from_month=2024-01&group_by=urgency")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (r["from_month"].as_str(), r["to_month"].as_str()),
        (Some("2024-01"), Some("2024-12"))
    );
    assert_eq!(r["months"].as_array().unwrap().len(), 12);
}
