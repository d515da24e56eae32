//! The directory over HTTP (employers, providers, contracts) and the capacity claim under
//! concurrent transactions.

mod common;

use std::sync::{Arc, Barrier};

use common::{problem, request_id, spawn_app, TestApp};
use eap_referrals::db::{write_tx, Backend};
use eap_referrals::directory::{capacity, store};
use eap_referrals::ids::{ProviderId, ReferralId};
use serde_json::{json, Value};

fn provider_body() -> Value {
    json!({
        "name": "Harbour Counselling",
        "services": ["counselling", "crisis"],
        "languages": ["en", "CY"],
        "regions": ["GB", "ie"],
        "modalities": ["video", "phone"],
        "interpretation": true,
        "crisis_capable": true,
        "capacity": 5
    })
}

#[actix_web::test]
async fn providers_are_created_read_updated_and_deactivated() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let resp = app
        .post_json("/v1/admin/providers", &token, &provider_body())
        .await;
    assert_eq!(resp.status(), 201);
    let location = resp
        .headers()
        .get("location")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let p: Value = resp.json().await.unwrap();
    assert_eq!(
        location,
        format!("/v1/admin/providers/{}", p["id"].as_str().unwrap())
    );
    assert_eq!(p["languages"], json!(["cy", "en"]), "normalised and sorted");
    assert_eq!(p["regions"], json!(["GB", "IE"]));
    assert_eq!(p["services"], json!(["counselling", "crisis"]));
    assert_eq!(
        (
            p["status"].as_str(),
            p["capacity"].as_u64(),
            p["active_referrals"].as_u64()
        ),
        (Some("active"), Some(5), Some(0))
    );

    let read: Value = app.get(&location, &token).await.json().await.unwrap();
    assert_eq!(read, p);

    let resp = app
        .patch_json(
            &location,
            &token,
            &json!({"status": "paused", "capacity": 2, "regions": ["GB-SCT"]}),
        )
        .await;
    let rid = request_id(&resp);
    assert_eq!(resp.status(), 200);
    let updated: Value = resp.json().await.unwrap();
    assert_eq!(
        (updated["status"].as_str(), updated["capacity"].as_u64()),
        (Some("paused"), Some(2))
    );
    assert_eq!(updated["regions"], json!(["GB-SCT"]));
    assert_eq!(updated["services"], p["services"], "absent fields stay");
    let events = app.audit_for_request(&rid);
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].action.as_str(), events[0].resource_id.as_deref()),
        ("provider.update", p["id"].as_str())
    );

    let resp = app
        .post_json(&format!("{location}/deactivate"), &token, &json!(null))
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap()["active"], false);
    problem(
        app.patch_json("/v1/admin/providers/nope", &token, &json!({"capacity": 1}))
            .await,
        404,
    )
    .await;
}

#[actix_web::test]
async fn unknown_codes_and_bad_values_are_422_naming_the_field() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let cases = [
        (
            "services",
            json!(["counselling", "astrology"]),
            "/services/1",
        ),
        ("modalities", json!(["telepathy"]), "/modalities/0"),
        ("languages", json!(["english"]), "/languages/0"),
        ("regions", json!(["GBR"]), "/regions/0"),
        ("services", json!([]), "/services"),
        ("capacity", json!(-1), "/capacity"),
        ("status", json!("retired"), "/status"),
    ];
    for (field, value, path) in cases {
        let mut body = provider_body();
        body[field] = value.clone();
        let p = problem(
            app.post_json("/v1/admin/providers", &token, &body).await,
            422,
        )
        .await;
        assert_eq!(p["errors"][0]["pointer"], path, "{field}={value}");
    }
    let mut body = provider_body();
    body["date_of_birth"] = json!("1990-01-01");
    let p = problem(
        app.post_json("/v1/admin/providers", &token, &body).await,
        422,
    )
    .await;
    assert_eq!(p["errors"][0]["code"], "unknown_field");
    let mut body = provider_body();
    body.as_object_mut().unwrap().remove("capacity");
    let p = problem(
        app.post_json("/v1/admin/providers", &token, &body).await,
        422,
    )
    .await;
    assert_eq!(
        (
            p["errors"][0]["pointer"].as_str(),
            p["errors"][0]["code"].as_str()
        ),
        (Some("/capacity"), Some("required"))
    );
}

#[actix_web::test]
async fn employers_are_renamed_and_deactivated() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let id = app.create_employer(&token, "Acme").await;
    let resp = app
        .patch_json(
            &format!("/v1/admin/employers/{id}"),
            &token,
            &json!({"name": "Acme Health"}),
        )
        .await;
    assert_eq!(resp.json::<Value>().await.unwrap()["name"], "Acme Health");
    problem(
        app.patch_json(
            &format!("/v1/admin/employers/{id}"),
            &token,
            &json!({"active": false}),
        )
        .await,
        422,
    )
    .await;
    let resp = app
        .post_json(
            &format!("/v1/admin/employers/{id}/deactivate"),
            &token,
            &json!(null),
        )
        .await;
    assert_eq!(resp.json::<Value>().await.unwrap()["active"], false);
    // A deactivated employer takes no new portal clients.
    let p = problem(
        app.post_json(
            "/v1/admin/clients",
            &token,
            &json!({"name": "p", "role": "hr_portal", "employer_id": id}),
        )
        .await,
        409,
    )
    .await;
    assert!(
        p["detail"].as_str().unwrap().starts_with("employer_id:"),
        "{p}"
    );
}

/// A new employer and a new provider, by id, to bind with a contract.
async fn employer_and_provider(app: &TestApp, token: &str) -> (String, String) {
    let employer = app.create_employer(token, "Acme").await;
    let provider: Value = app
        .post_json("/v1/admin/providers", token, &provider_body())
        .await
        .json()
        .await
        .unwrap();
    (employer, provider["id"].as_str().unwrap().to_owned())
}

#[actix_web::test]
async fn contracts_bind_employers_to_providers_within_a_window() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let (employer, provider) = employer_and_provider(&app, &token).await;

    let body = json!({"employer_id": employer, "provider_id": provider, "priority": 1});
    let resp = app.post_json("/v1/admin/contracts", &token, &body).await;
    assert_eq!(resp.status(), 201);
    let c: Value = resp.json().await.unwrap();
    assert_eq!(
        (c["in_force"].as_bool(), c["ends_at"].is_null()),
        (Some(true), true)
    );
    problem(
        app.post_json("/v1/admin/contracts", &token, &body).await,
        409,
    )
    .await;

    let id = c["id"].as_str().unwrap();
    let later = json!({"starts_at": "2099-01-01T00:00:00Z"});
    let resp = app
        .patch_json(&format!("/v1/admin/contracts/{id}"), &token, &later)
        .await;
    assert_eq!(
        resp.json::<Value>().await.unwrap()["in_force"],
        false,
        "not started yet"
    );
    // A window is a start and a length in days, so no request can make it empty.
    let c: Value = app
        .patch_json(
            &format!("/v1/admin/contracts/{id}"),
            &token,
            &json!({"days": 30.0}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (c["starts_at"].as_str(), c["ends_at"].as_str()),
        (Some("2099-01-01T00:00:00Z"), Some("2099-01-31T00:00:00Z"))
    );
    // Moving the start keeps the length.
    let c: Value = app
        .patch_json(
            &format!("/v1/admin/contracts/{id}"),
            &token,
            &json!({"starts_at": "2020-01-01T00:00:00Z"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(c["ends_at"], "2020-01-31T00:00:00Z");
    assert_eq!(c["in_force"], false, "ended");
    for bad in [
        json!({"days": 0}),
        json!({"days": 36501}),
        json!({"days": 1.5}),
        json!({"ends_at": null}),
    ] {
        problem(
            app.patch_json(&format!("/v1/admin/contracts/{id}"), &token, &bad)
                .await,
            422,
        )
        .await;
    }
    let resp = app
        .patch_json(
            &format!("/v1/admin/contracts/{id}"),
            &token,
            &json!({"starts_at": "2020-01-01T00:00:00Z", "days": null}),
        )
        .await;
    assert_eq!(resp.json::<Value>().await.unwrap()["in_force"], true);
    let resp = app
        .post_json(
            &format!("/v1/admin/contracts/{id}/deactivate"),
            &token,
            &json!(null),
        )
        .await;
    let c: Value = resp.json().await.unwrap();
    assert_eq!(
        (c["active"].as_bool(), c["in_force"].as_bool()),
        (Some(false), Some(false))
    );

    let listed: Value = app
        .get(
            &format!("/v1/admin/contracts?employer_id={employer}"),
            &token,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    const UNKNOWN: &str = "00000000-0000-4000-8000-000000000000";
    let none: Value = app
        .get(
            &format!("/v1/admin/contracts?employer_id={UNKNOWN}"),
            &token,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(none["items"], json!([]));
    // Text that cannot be an id is malformed (422), a NUL byte included: PostgreSQL refuses
    // one in text, so it must be stopped before SQL.
    for bad in ["other", "a%00b"] {
        let p = problem(
            app.get(&format!("/v1/admin/contracts?employer_id={bad}"), &token)
                .await,
            422,
        )
        .await;
        assert_eq!(p["errors"][0]["parameter"], "employer_id", "{p}");
    }
    for body in [
        json!({"employer_id": "nope", "provider_id": provider, "priority": 1}),
        json!({"employer_id": employer, "provider_id": "a\u{0}b", "priority": 1}),
    ] {
        let p = problem(
            app.post_json("/v1/admin/contracts", &token, &body).await,
            422,
        )
        .await;
        assert_eq!(p["errors"][0]["code"], "pattern", "{p}");
    }

    // A well-formed id of nothing is the directory's state: 409, naming the field.
    let p = problem(
        app.post_json(
            "/v1/admin/contracts",
            &token,
            &json!({"employer_id": UNKNOWN, "provider_id": provider, "priority": 1}),
        )
        .await,
        409,
    )
    .await;
    assert!(
        p["detail"].as_str().unwrap().starts_with("employer_id:"),
        "{p}"
    );
    let p = problem(
        app.post_json(
            "/v1/admin/contracts",
            &token,
            &json!({"employer_id": employer, "provider_id": UNKNOWN, "priority": 1}),
        )
        .await,
        409,
    )
    .await;
    assert!(
        p["detail"].as_str().unwrap().starts_with("provider_id:"),
        "{p}"
    );
    let p = problem(
        app.post_json(
            "/v1/admin/contracts",
            &token,
            &json!({"employer_id": employer, "provider_id": provider, "priority": 5000}),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(p["errors"][0]["pointer"], "/priority");
}

/// Runs `racers` concurrent transactions that each check the provider's load and then claim a
/// slot; returns how many claims succeeded and the provider's final load.
fn race_for_slots(app: &TestApp, provider: &str, racers: usize) -> (usize, i64) {
    let start = Arc::new(Barrier::new(racers));
    // On PostgreSQL every transaction reads the load before any of them claims, so all of them
    // believe a slot is free: the check-then-act race. SQLite's BEGIN IMMEDIATE lets only one
    // writer in at a time, so there the racers only start together.
    let read_all = (app.backend == Backend::Postgres).then(|| Arc::new(Barrier::new(racers)));
    let handles: Vec<_> = (0..racers)
        .map(|_| {
            let db = app.state.db.clone();
            let provider = provider.to_owned();
            let start = start.clone();
            let read_all = read_all.clone();
            std::thread::spawn(move || {
                let mut conn = db.get().unwrap();
                let holder = uuid::Uuid::new_v4().to_string();
                start.wait();
                write_tx(&mut conn, |conn| {
                    let p =
                        store::find_provider(conn, &ProviderId::from_trusted(provider.clone()))?
                            .unwrap();
                    let load = store::load(conn, &provider)?;
                    assert!(
                        read_all.is_none() || load < i64::from(p.capacity),
                        "every racer saw a free slot"
                    );
                    if let Some(b) = &read_all {
                        b.wait();
                    }
                    capacity::claim_slot(conn, &pid(&provider), &rid(&holder))
                })
                .unwrap()
            })
        })
        .collect();
    let wins = handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .filter(|won| *won)
        .count();
    let taken = {
        use diesel::prelude::*;
        use eap_referrals::db::schema::provider_slots::dsl as s;
        let mut conn = app.conn();
        s::provider_slots
            .filter(s::provider_id.eq(provider))
            .filter(s::referral_id.is_not_null())
            .count()
            .get_result::<i64>(&mut **conn)
            .unwrap()
    };
    assert_eq!(
        app.provider_load(provider),
        taken,
        "the load counter agrees with the slots"
    );
    (wins, taken)
}

#[actix_web::test]
async fn racing_claims_never_overbook_a_provider() {
    let app = common::spawn_app_with(|v| {
        v.insert("EAP_DB_POOL_SIZE".into(), "12".into());
    })
    .await;
    let token = app.admin_token().await;
    let mut body = provider_body();
    body["capacity"] = json!(1);
    let last_slot: Value = app
        .post_json("/v1/admin/providers", &token, &body)
        .await
        .json()
        .await
        .unwrap();
    let last_slot = last_slot["id"].as_str().unwrap().to_owned();
    assert_eq!(
        race_for_slots(&app, &last_slot, 8),
        (1, 1),
        "one racer gets the last slot"
    );

    body["capacity"] = json!(3);
    let three: Value = app
        .post_json("/v1/admin/providers", &token, &body)
        .await
        .json()
        .await
        .unwrap();
    let three = three["id"].as_str().unwrap().to_owned();
    assert_eq!(race_for_slots(&app, &three, 10), (3, 3));

    // Released slots can be claimed again; a paused provider's cannot; a smaller capacity
    // holds as held slots are released.
    let mut conn = app.conn();
    assert!(
        capacity::claim_slot(&mut conn, &pid(&three), &rid("x1")).is_ok_and(|won| !won),
        "full"
    );
    let holder: String = {
        use diesel::prelude::*;
        use eap_referrals::db::schema::provider_slots::dsl as s;
        s::provider_slots
            .filter(s::provider_id.eq(&three))
            .filter(s::referral_id.is_not_null())
            .select(s::referral_id.assume_not_null())
            .first(&mut **conn)
            .unwrap()
    };
    assert!(capacity::release_slot(&mut conn, &pid(&three), &rid(&holder)).unwrap());
    assert!(capacity::claim_slot(&mut conn, &pid(&three), &rid("x1")).unwrap());
    assert!(!capacity::claim_slot(&mut conn, &pid(&three), &rid("x2")).unwrap());
    assert!(capacity::release_slot(&mut conn, &pid(&three), &rid("x1")).unwrap());
    drop(conn);
    app.patch_json(
        &format!("/v1/admin/providers/{three}"),
        &token,
        &json!({"status": "paused"}),
    )
    .await;
    let mut conn = app.conn();
    assert!(
        !capacity::claim_slot(&mut conn, &pid(&three), &rid("x3")).unwrap(),
        "paused providers take no new referrals"
    );
    drop(conn);
    let resp = app
        .patch_json(
            &format!("/v1/admin/providers/{three}"),
            &token,
            &json!({"status": "active", "capacity": 1}),
        )
        .await;
    assert_eq!(
        resp.json::<Value>().await.unwrap()["active_referrals"],
        2,
        "still holding two of the earlier three"
    );
    let mut conn = app.conn();
    assert!(
        !capacity::claim_slot(&mut conn, &pid(&three), &rid("x4")).unwrap(),
        "over the new capacity"
    );
    let held: Vec<String> = {
        use diesel::prelude::*;
        use eap_referrals::db::schema::provider_slots::dsl as s;
        s::provider_slots
            .filter(s::provider_id.eq(&three))
            .filter(s::referral_id.is_not_null())
            .select(s::referral_id.assume_not_null())
            .load(&mut **conn)
            .unwrap()
    };
    for h in &held {
        capacity::release_slot(&mut conn, &pid(&three), &rid(h)).unwrap();
    }
    assert!(capacity::claim_slot(&mut conn, &pid(&three), &rid("x5")).unwrap());
    assert!(
        !capacity::claim_slot(&mut conn, &pid(&three), &rid("x6")).unwrap(),
        "capacity 1 now"
    );
}

/// An assignment refused with the one generic answer for any provider that cannot take it.
async fn refused_as_not_eligible(app: &TestApp, path: &str, admin: &str, provider: &str) {
    let p = problem(
        app.post_json(path, admin, &json!({"provider_id": provider}))
            .await,
        409,
    )
    .await;
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .starts_with("provider_not_eligible"),
        "{p}"
    );
}

#[actix_web::test]
async fn unroutable_referrals_queue_for_admins_without_personal_data() {
    let app = spawn_app().await;
    let portal = app.setup_portal(2).await;
    let mut body = common::referral_body();
    body["service_type"] = json!("legal");
    let v: Value = app
        .submit_json(&portal.token, &body)
        .await
        .json()
        .await
        .unwrap();
    let id = v["id"].as_str().unwrap().to_owned();

    let resp = app.get("/v1/admin/unroutable", &portal.admin_token).await;
    let rid = request_id(&resp);
    let page: Value = resp.json().await.unwrap();
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    let item = &items[0];
    assert_eq!(
        (
            item["id"].as_str(),
            item["service_type"].as_str(),
            item["region"].as_str()
        ),
        (Some(id.as_str()), Some("legal"), Some("GB-ENG"))
    );
    let report = &item["routing"]["reports"][0];
    assert_eq!(report["provider_id"], portal.provider.as_str());
    assert!(
        report.to_string().contains("service_not_offered"),
        "{report}"
    );
    let text = page.to_string();
    for private in [
        "contact",
        "Sam",
        "+447700900123",
        "sam@example.org",
        "NHS",
        "EMP-0001",
        "employee_ref",
        "status_token",
    ] {
        assert!(!text.contains(private), "the queue shows {private}");
    }
    assert_eq!(
        app.audit_for_request(&rid).len(),
        1,
        "one event per referral shown"
    );

    // Manual assignment: only to a provider under contract, with room.
    let stranger = app
        .create_provider(&portal.admin_token, "Uncontracted")
        .await;
    let path = format!("/v1/admin/unroutable/{id}/assign");
    refused_as_not_eligible(&app, &path, &portal.admin_token, &stranger).await;
    // Text that cannot be an id, a NUL byte included, is malformed before any lookup.
    let p = problem(
        app.post_json(
            &path,
            &portal.admin_token,
            &json!({"provider_id": "a\u{0}b"}),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(p["errors"][0]["pointer"], "/provider_id", "{p}");
    // A provider that does not offer the service is refused like any other ineligible one:
    // an admin may override where and how care is given, never what care it is.
    refused_as_not_eligible(&app, &path, &portal.admin_token, &portal.provider).await;
    // Once the provider offers it, the admin assigns the queued referral by hand.
    let resp = app
        .patch_json(
            &format!("/v1/admin/providers/{}", portal.provider),
            &portal.admin_token,
            &json!({"services": ["counselling", "crisis", "legal"]}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let resp = app
        .post_json(
            &path,
            &portal.admin_token,
            &json!({"provider_id": portal.provider}),
        )
        .await;
    let rid = request_id(&resp);
    assert_eq!(resp.status(), 200);
    let assigned: Value = resp.json().await.unwrap();
    assert_eq!(
        (
            assigned["status"].as_str(),
            assigned["provider_id"].as_str()
        ),
        (Some("offered"), Some(portal.provider.as_str()))
    );
    assert_eq!(app.provider_load(&portal.provider), 1);
    let events = app.audit_for_request(&rid);
    assert_eq!(
        (
            events.len(),
            events[0].action.as_str(),
            events[0].resource_id.as_deref()
        ),
        (1, "referral.assign", Some(id.as_str()))
    );
    let mut conn = app.conn();
    let feed = eap_referrals::referrals::store::events_for(&mut conn, &portal.provider).unwrap();
    drop(conn);
    assert_eq!(feed, vec![(id.clone(), "offered".to_owned())]);
    problem(
        app.post_json(
            &path,
            &portal.admin_token,
            &json!({"provider_id": portal.provider}),
        )
        .await,
        409,
    )
    .await;
    let page: Value = app
        .get("/v1/admin/unroutable", &portal.admin_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"], json!([]), "off the queue");
}

#[actix_web::test]
async fn a_full_provider_cannot_be_assigned_more() {
    let app = spawn_app().await;
    let portal = app.setup_portal(1).await;
    app.submit_json(&portal.token, &common::referral_body())
        .await;
    let v: Value = app
        .submit_json(&portal.token, &common::referral_body())
        .await
        .json()
        .await
        .unwrap();
    let id = v["id"].as_str().unwrap();
    assert_eq!(
        app.referral(id).status,
        "unroutable",
        "capacity 1 is taken by the first"
    );
    refused_as_not_eligible(
        &app,
        &format!("/v1/admin/unroutable/{id}/assign"),
        &portal.admin_token,
        &portal.provider,
    )
    .await;
    assert_eq!(app.provider_load(&portal.provider), 1, "never overbooked");
}

#[actix_web::test]
async fn large_capacity_changes_and_non_object_bodies() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let mut body = provider_body();
    body["capacity"] = json!(40000);
    let p: Value = app
        .post_json("/v1/admin/providers", &token, &body)
        .await
        .json()
        .await
        .unwrap();
    let path = format!("/v1/admin/providers/{}", p["id"].as_str().unwrap());
    // Cutting 40,000 free slots at once once overflowed SQLite's bind-variable limit.
    let resp = app.patch_json(&path, &token, &json!({"capacity": 1})).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap()["capacity"], 1);
    assert_eq!(app.count("provider_slots"), 1);
    // serde would read a struct from a JSON array; the API takes objects only.
    for bad in [json!([null]), json!(["renamed"]), json!("x"), json!(3)] {
        let p = problem(app.patch_json(&path, &token, &bad).await, 422).await;
        assert_eq!(p["errors"][0]["pointer"], "", "{bad}");
    }
}

fn pid(id: &str) -> ProviderId {
    ProviderId::from_trusted(id.to_owned())
}

fn rid(id: &str) -> ReferralId {
    ReferralId::from_trusted(id.to_owned())
}

/// A window ending after 9999-12-31T23:59:59.999999Z cannot be written in RFC 3339 nor compared
/// as SQLite stores times: it is a 422 at the member that put the end there, on both backends,
/// and the contract is not changed.
#[actix_web::test]
async fn a_contract_window_ending_after_the_year_9999_is_a_422_at_its_member() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let (employer, provider) = employer_and_provider(&app, &token).await;
    let last = json!({
        "employer_id": employer, "provider_id": provider, "priority": 1,
        "starts_at": "9999-12-31T23:59:59Z", "days": 36500,
    });
    let body = problem(
        app.post_json("/v1/admin/contracts", &token, &last).await,
        422,
    )
    .await;
    assert_eq!(body["errors"][0]["pointer"], "/days", "{body}");
    assert_eq!(body["errors"][0]["code"], "range", "{body}");

    let fits = json!({
        "employer_id": employer, "provider_id": provider, "priority": 1,
        "starts_at": "9999-12-30T00:00:00Z", "days": 1,
    });
    let resp = app.post_json("/v1/admin/contracts", &token, &fits).await;
    assert_eq!(resp.status(), 201);
    let c: Value = resp.json().await.unwrap();
    assert_eq!(c["ends_at"], "9999-12-31T00:00:00Z");
    let path = format!("/v1/admin/contracts/{}", c["id"].as_str().unwrap());
    // Moving the start keeps the length, which would now end in the year 10000.
    let moved = json!({"starts_at": "9999-12-31T12:00:00Z"});
    let body = problem(app.patch_json(&path, &token, &moved).await, 422).await;
    assert_eq!(body["errors"][0]["pointer"], "/starts_at", "{body}");
    let now: Value = app.get(&path, &token).await.json().await.unwrap();
    assert_eq!(now["ends_at"], "9999-12-31T00:00:00Z", "unchanged");
    // Listing still works and orders the contract (the 500 came from reading it back).
    assert_eq!(app.get("/v1/admin/contracts", &token).await.status(), 200);
}
