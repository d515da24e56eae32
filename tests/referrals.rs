//! Referral intake over a real socket: submission, validation, idempotency, status tokens,
//! cancellation, crisis resources, sealing and master-key rotation.

mod common;

use common::{problem, referral_body, request_id, spawn_app};
use eap_referrals::referrals::seal;
use reqwest::Method;
use serde_json::{json, Value};

#[actix_web::test]
async fn a_portal_submits_reads_and_cancels_a_referral() {
    let app = spawn_app().await;
    let portal = app.setup_portal(2).await;
    let resp = app.submit_json(&portal.token, &referral_body()).await;
    assert_eq!(resp.status(), 201);
    assert_eq!(resp.headers().get("cache-control").unwrap(), "no-store");
    let rid = request_id(&resp);
    let location = resp
        .headers()
        .get("location")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = resp.json().await.unwrap();
    let id = body["id"].as_str().unwrap().to_owned();
    assert_eq!(location, format!("/v1/referrals/{id}"));
    assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 7);
    assert_eq!(body["status"], "received");
    assert!(body.get("crisis_resources").is_none(), "only for crisis");
    let token = body["status_token"].as_str().unwrap().to_owned();
    assert!(token.len() >= 43);

    // Routed in the same transaction: offered to the contracted provider, with a deadline.
    let row = app.referral(&id);
    assert_eq!(
        (row.status.as_str(), row.provider_id.as_deref()),
        ("offered", Some(portal.provider.as_str()))
    );
    assert!(row.offer_expires_at.is_some());
    assert_ne!(row.status_token_hash, token);
    assert_eq!(app.provider_load(&portal.provider), 1);
    let mut conn = app.conn();
    let events = eap_referrals::referrals::store::events_for(&mut conn, &portal.provider).unwrap();
    drop(conn);
    assert_eq!(events, vec![(id.clone(), "offered".to_owned())]);
    let audit = app.audit_for_request(&rid);
    assert_eq!(audit.len(), 1);
    assert_eq!(
        (audit[0].action.as_str(), audit[0].resource_id.as_deref()),
        ("referral.create", Some(id.as_str()))
    );
    assert_eq!(
        audit[0].tenant_id.as_deref(),
        Some(portal.employer.as_str())
    );

    let resp = app
        .portal_call(Method::GET, &location, &portal.token, &token)
        .await;
    assert_eq!(resp.status(), 200);
    let view: Value = resp.json().await.unwrap();
    assert_eq!(view["status"], "received");
    let keys: Vec<&String> = view.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["closed_at", "created_at", "id", "status"],
        "coarse only: no provider, no contact, no workflow timing"
    );

    let cancel_path = format!("{location}/cancel");
    let resp = app
        .portal_call(Method::POST, &cancel_path, &portal.token, &token)
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap()["status"], "cancelled");
    assert_eq!(app.provider_load(&portal.provider), 0, "the slot is freed");
    let mut conn = app.conn();
    let events = eap_referrals::referrals::store::events_for(&mut conn, &portal.provider).unwrap();
    drop(conn);
    assert_eq!(
        events.last().unwrap(),
        &(id.clone(), "cancelled".to_owned())
    );
    let again = app
        .portal_call(Method::POST, &cancel_path, &portal.token, &token)
        .await;
    let again = problem(again, 409).await;
    assert_eq!(again["allowed"], json!([]));
}

#[actix_web::test]
async fn no_eligible_provider_means_unroutable_with_reasons() {
    let app = spawn_app().await;
    let portal = app.setup_portal(2).await;
    let mut body = referral_body();
    body["service_type"] = json!("legal");
    let resp = app.submit_json(&portal.token, &body).await;
    assert_eq!(resp.status(), 201);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["status"], "received", "the portal sees no routing detail");
    let row = app.referral(v["id"].as_str().unwrap());
    assert_eq!((row.status.as_str(), row.provider_id), ("unroutable", None));
    let reasons: Value = serde_json::from_str(row.routing_reasons.as_deref().unwrap()).unwrap();
    assert!(
        reasons.to_string().contains("service_not_offered"),
        "{reasons}"
    );
    assert_eq!(app.provider_load(&portal.provider), 0);
}

#[actix_web::test]
async fn a_crisis_submission_returns_crisis_resources_at_once() {
    let app = spawn_app().await;
    let portal = app.setup_portal(2).await;
    let mut body = referral_body();
    body["urgency"] = json!("crisis");
    let v: Value = app
        .submit_json(&portal.token, &body)
        .await
        .json()
        .await
        .unwrap();
    let resources = v["crisis_resources"].as_array().unwrap();
    assert_eq!(resources[0]["name"], "Samaritans");
    assert_eq!(resources[0]["phone"], "116 123");
    // Even when no provider can take it, the resources come back.
    body["region"] = json!("FR");
    let v: Value = app
        .submit_json(&portal.token, &body)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["crisis_resources"][0]["name"], "Local emergency services");
    assert_eq!(app.referral(v["id"].as_str().unwrap()).status, "unroutable");
}

#[actix_web::test]
async fn each_validation_rule_names_its_member_by_pointer() {
    let app = spawn_app().await;
    let portal = app.setup_portal(2).await;
    let cases: Vec<(&str, Value, &str)> = vec![
        ("/contact/phone", json!("07700 900123"), "pattern"),
        ("/contact/email", json!("not-an-email"), "format"),
        ("/contact/preferred_name", json!("x".repeat(101)), "length"),
        ("/contact/preferred_name", json!(""), "length"),
        ("/contact/preferred_name", json!("\u{7}bell"), "pattern"),
        (
            "/contact/best_time_to_contact",
            json!("y".repeat(101)),
            "length",
        ),
        ("/note", json!("n".repeat(1001)), "length"),
        ("/employee_ref", json!("r".repeat(129)), "length"),
        ("/service_type", json!("astrology"), "invalid_value"),
        ("/urgency", json!("whenever"), "invalid_value"),
        ("/modality", json!("carrier_pigeon"), "invalid_value"),
        ("/language", json!("english"), "pattern"),
        ("/region", json!("GBR"), "pattern"),
        ("/contact/voicemail_consent", json!("yes"), "invalid_type"),
    ];
    for (pointer, value, code) in cases {
        let mut body = referral_body();
        *body.pointer_mut(pointer).unwrap() = value;
        let p = problem(app.submit_json(&portal.token, &body).await, 422).await;
        let errors = p["errors"].as_array().unwrap();
        assert!(
            errors.iter().all(|e| e["pointer"] == pointer),
            "only {pointer} is wrong: {p}"
        );
        assert!(
            errors.iter().any(|e| e["code"] == code),
            "{pointer}: {code} expected in {p}"
        );
    }
    let mut body = referral_body();
    body["contact"].as_object_mut().unwrap().remove("phone");
    body["contact"].as_object_mut().unwrap().remove("email");
    let p = problem(app.submit_json(&portal.token, &body).await, 422).await;
    assert_eq!(
        p["errors"],
        json!([{
            "pointer": "/contact",
            "code": "required",
            "message": "needs at least one of: phone, email",
        }])
    );
    for (pointer, extra) in [("", "date_of_birth"), ("/contact", "home_address")] {
        let mut body = referral_body();
        body.pointer_mut(pointer).unwrap()[extra] = json!("1990-01-01, 1 High St");
        let p = problem(app.submit_json(&portal.token, &body).await, 422).await;
        assert_eq!(p["errors"][0]["code"], "unknown_field");
        assert_eq!(p["errors"][0]["pointer"], format!("{pointer}/{extra}"));
        assert!(
            !p.to_string().contains("High St"),
            "the value is never echoed"
        );
    }
    let mut body = referral_body();
    body["employer_id"] = json!(portal.employer);
    let p = problem(app.submit_json(&portal.token, &body).await, 422).await;
    assert_eq!(
        p["errors"][0]["pointer"], "/employer_id",
        "the employer comes from the token, never the body"
    );
    assert_eq!(
        app.count("referrals"),
        0,
        "nothing stored for a rejected submission"
    );
}

#[actix_web::test]
async fn idempotency_keys_replay_refuse_and_scope() {
    let app = spawn_app().await;
    let portal = app.setup_portal(5).await;
    let body = serde_json::to_vec(&referral_body()).unwrap();

    problem(app.submit(&portal.token, None, &body).await, 400).await;

    let first = app.submit(&portal.token, Some("key-1"), &body).await;
    assert_eq!(first.status(), 201);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.unwrap();
    let replay = app.submit(&portal.token, Some("\"key-1\""), &body).await;
    assert_eq!(replay.status(), 201);
    assert_eq!(replay.headers().get("idempotent-replayed").unwrap(), "true");
    assert_eq!(
        replay.json::<Value>().await.unwrap(),
        first,
        "the original response, token included"
    );
    assert_eq!(app.count("referrals"), 1, "one referral for two requests");
    assert_eq!(app.provider_load(&portal.provider), 1);

    let mut other = referral_body();
    other["note"] = json!("something else");
    let p = problem(
        app.submit(
            &portal.token,
            Some("key-1"),
            &serde_json::to_vec(&other).unwrap(),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(p["errors"][0]["parameter"], "Idempotency-Key");
    assert_eq!(p["errors"][0]["code"], "reused");

    // Keys are the client's own: another portal may use the same key.
    let second = app
        .create_client(
            &portal.admin_token,
            json!({"name": "second portal", "role": "hr_portal", "employer_id": portal.employer}),
        )
        .await;
    let second_token = app.token(&second).await;
    let resp = app.submit(&second_token, Some("key-1"), &body).await;
    assert_eq!(resp.status(), 201);
    assert!(resp.headers().get("idempotent-replayed").is_none());
    assert_eq!(app.count("referrals"), 2);

    problem(
        app.submit(&portal.token, Some(&"k".repeat(256)), &body)
            .await,
        400,
    )
    .await;
}

#[actix_web::test]
async fn a_failed_submission_frees_its_idempotency_key() {
    let app = spawn_app().await;
    let portal = app.setup_portal(5).await;
    let body = serde_json::to_vec(&referral_body()).unwrap();
    app.break_audit_log();
    problem(
        app.submit(&portal.token, Some("retry-me"), &body).await,
        503,
    )
    .await;
    app.repair_audit_log();
    assert_eq!(
        (app.count("referrals"), app.provider_load(&portal.provider)),
        (0, 0),
        "nothing committed"
    );
    let resp = app.submit(&portal.token, Some("retry-me"), &body).await;
    assert_eq!(
        resp.status(),
        201,
        "the retry with the same key goes through"
    );
    assert!(resp.headers().get("idempotent-replayed").is_none());
}

#[actix_web::test]
async fn token_misuse_is_an_indistinguishable_404_and_logged() {
    let app = spawn_app().await;
    let portal = app.setup_portal(5).await;
    let a: Value = app
        .submit_json(&portal.token, &referral_body())
        .await
        .json()
        .await
        .unwrap();
    let b: Value = app
        .submit_json(&portal.token, &referral_body())
        .await
        .json()
        .await
        .unwrap();
    let (a_id, a_token, b_token) = (
        a["id"].as_str().unwrap(),
        a["status_token"].as_str().unwrap(),
        b["status_token"].as_str().unwrap(),
    );

    let other_employer = app.create_employer(&portal.admin_token, "Other Co").await;
    let other = app
        .create_client(
            &portal.admin_token,
            json!({"name": "other portal", "role": "hr_portal", "employer_id": other_employer}),
        )
        .await;
    let other_token = app.token(&other).await;

    let attempts = [
        (portal.token.as_str(), a_id.to_owned(), Some(b_token)),
        (portal.token.as_str(), a_id.to_owned(), None),
        (portal.token.as_str(), a_id.to_owned(), Some("eaprt_guess")),
        (other_token.as_str(), a_id.to_owned(), Some(a_token)),
        (
            portal.token.as_str(),
            uuid::Uuid::now_v7().to_string(),
            Some(a_token),
        ),
    ];
    let mut bodies = Vec::new();
    for (bearer, id, token) in attempts {
        for path in [
            format!("/v1/referrals/{id}"),
            format!("/v1/referrals/{id}/cancel"),
        ] {
            let method = if path.ends_with("cancel") {
                Method::POST
            } else {
                Method::GET
            };
            let headers: Vec<_> = token.map(|t| ("referral-token", t)).into_iter().collect();
            let req = app.request(method, &path, Some(bearer), &headers);
            let resp = req.send().await.unwrap();
            let rid = request_id(&resp);
            let mut p = problem(resp, 404).await;
            let events = app.audit_for_request(&rid);
            assert_eq!(events.len(), 1, "{path}");
            assert_eq!(
                (
                    events[0].outcome.as_str(),
                    events[0].http_status,
                    events[0].resource_id.as_deref()
                ),
                ("denied", 404, Some(id.as_str()))
            );
            p.as_object_mut().unwrap().remove("request_id");
            p.as_object_mut().unwrap().remove("instance");
            bodies.push(p);
        }
    }
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "every refusal looks the same"
    );
    assert_eq!(
        app.referral(a_id).status,
        "offered",
        "nothing was cancelled"
    );
}

#[actix_web::test]
async fn other_roles_cannot_submit_and_there_is_no_listing() {
    let app = spawn_app().await;
    let portal = app.setup_portal(5).await;
    problem(
        app.submit_json(&portal.admin_token, &referral_body()).await,
        403,
    )
    .await;
    let resp = app.get("/v1/referrals", &portal.token).await;
    assert_eq!(resp.status(), 405, "no way to list referrals");
}

#[actix_web::test]
async fn rotating_the_master_key_keeps_every_referral_readable() {
    use base64::Engine;
    let b64 = |b: u8| base64::engine::general_purpose::STANDARD.encode([b; 32]);
    let (old, new) = (format!("m1:{}", b64(1)), format!("m2:{}", b64(2)));
    let app = common::spawn_app_with(|v| {
        v.insert("EAP_MASTER_KEY".into(), old.clone());
    })
    .await;
    let portal = app.setup_portal(10).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let mut body = referral_body();
        body["contact"]["preferred_name"] = json!(format!("Person {i}"));
        let v: Value = app
            .submit_json(&portal.token, &body)
            .await
            .json()
            .await
            .unwrap();
        ids.push(v["id"].as_str().unwrap().to_owned());
    }
    let keyring = |spec: &str| {
        let config = eap_referrals::Config::from_map(
            &[
                ("EAP_MASTER_KEY".to_string(), spec.to_string()),
                (
                    "EAP_DATA_DIR".to_string(),
                    app.data_dir.path().display().to_string(),
                ),
            ]
            .into_iter()
            .collect(),
        )
        .unwrap();
        eap_referrals::keys::Keys::load(&config).unwrap().master
    };
    let both = keyring(&format!("{new},{old}"));
    let mut conn = app.conn();
    let n = eap_referrals::referrals::keystore::rewrap_all(&mut conn, &both).unwrap();
    drop(conn);
    assert_eq!(n, 3);
    let only_new = keyring(&new);
    for (i, id) in ids.iter().enumerate() {
        let row = app.referral(id);
        assert_eq!(row.key_id.as_deref(), Some("m2"));
        let key = seal::unwrap(&only_new, "m2", id, row.wrapped_key.as_deref().unwrap()).unwrap();
        let contact = seal::open(
            &key,
            &eap_referrals::referrals::model::aad(id, "contact"),
            row.sealed_contact.as_deref().unwrap(),
        )
        .unwrap();
        let contact: Value = serde_json::from_slice(&contact).unwrap();
        assert_eq!(contact["preferred_name"], format!("Person {i}"));
    }
    let mut conn = app.conn();
    assert_eq!(
        eap_referrals::referrals::keystore::rewrap_all(&mut conn, &both).unwrap(),
        0,
        "nothing left to re-wrap"
    );
}

#[actix_web::test]
async fn concurrent_submissions_never_overbook_the_last_slot() {
    let app = common::spawn_app_with(|v| {
        v.insert("EAP_DB_POOL_SIZE".into(), "10".into());
        v.insert("EAP_WORKERS".into(), "4".into());
    })
    .await;
    let portal = app.setup_portal(1).await;
    let body = referral_body();
    let sends = (0..8).map(|_| app.submit_json(&portal.token, &body));
    let responses = futures_util::future::join_all(sends).await;
    let mut ids = Vec::new();
    for r in responses {
        assert_eq!(r.status(), 201);
        ids.push(
            r.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let offered = ids
        .iter()
        .filter(|id| app.referral(id).status == "offered")
        .count();
    assert_eq!(offered, 1, "exactly one gets the last slot");
    assert_eq!(app.provider_load(&portal.provider), 1);
}

#[actix_web::test]
async fn a_duplicate_in_flight_is_409_or_a_replay_never_a_second_referral() {
    let app = spawn_app().await;
    let portal = app.setup_portal(5).await;
    let body = serde_json::to_vec(&referral_body()).unwrap();
    let (a, b) = futures_util::future::join(
        app.submit(&portal.token, Some("dup"), &body),
        app.submit(&portal.token, Some("dup"), &body),
    )
    .await;
    let fresh = [&a, &b]
        .iter()
        .filter(|r| r.status() == 201 && r.headers().get("idempotent-replayed").is_none())
        .count();
    assert_eq!(fresh, 1, "exactly one request did the work");
    for r in [&a, &b] {
        assert!(r.status() == 201 || r.status() == 409, "{}", r.status());
    }
    assert_eq!(app.count("referrals"), 1);

    if app.backend == eap_referrals::db::Backend::Postgres {
        // Deterministically in flight: another transaction holds the key, as a first request
        // still working would.
        let (locked_tx, locked_rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let db = app.state.db.clone();
        let client = portal.client.id.clone();
        let employer = eap_referrals::ids::EmployerId::from_trusted(portal.employer.clone());
        let holder = std::thread::spawn(move || {
            let mut conn = db.get().unwrap();
            eap_referrals::db::write_tx(&mut conn, |c| {
                let lock =
                    eap_referrals::referrals::store::lock_key(c, &client, "held", &employer)?;
                assert!(lock.taken && lock.employer_active);
                locked_tx.send(()).unwrap();
                done_rx.recv().unwrap();
                Ok::<_, diesel::result::Error>(())
            })
            .unwrap();
        });
        locked_rx.recv().unwrap();
        let p = problem(app.submit(&portal.token, Some("held"), &body).await, 409).await;
        assert!(p["detail"]
            .as_str()
            .unwrap()
            .contains("still being processed"));
        done_tx.send(()).unwrap();
        holder.join().unwrap();
        assert_eq!(
            app.submit(&portal.token, Some("held"), &body)
                .await
                .status(),
            201,
            "free once the first is done"
        );
    }
}

#[actix_web::test]
async fn malformed_ids_are_a_logged_404_and_never_reach_the_database() {
    let app = spawn_app().await;
    let portal = app.setup_portal(2).await;
    let long = "x".repeat(300);
    for raw in ["not-a-uuid", "%00", "abc%00def", long.as_str()] {
        let path = format!("/v1/referrals/{raw}");
        let resp = app
            .portal_call(Method::GET, &path, &portal.token, "eaprt_x")
            .await;
        let rid = request_id(&resp);
        problem(resp, 404).await;
        let events = app.audit_for_request(&rid);
        assert_eq!(events.len(), 1, "{raw}");
        assert_eq!(
            (events[0].outcome.as_str(), events[0].resource_id.as_deref()),
            ("denied", None)
        );
    }
    // Unauthenticated, with a NUL in the id: still a logged 401, not a failed access-log write.
    let resp = app
        .anonymous(Method::POST, "/v1/referrals/%00/cancel")
        .await;
    let rid = request_id(&resp);
    problem(resp, 401).await;
    assert_eq!(app.audit_for_request(&rid).len(), 1);
    problem(
        app.get("/v1/admin/clients/%00", &portal.admin_token).await,
        404,
    )
    .await;
}

#[actix_web::test]
async fn expired_idempotency_keys_are_purged_and_reusable() {
    let app = spawn_app().await;
    let portal = app.setup_portal(5).await;
    let body = serde_json::to_vec(&referral_body()).unwrap();
    assert_eq!(
        app.submit(&portal.token, Some("old-key"), &body)
            .await
            .status(),
        201
    );
    let fingerprint: String = {
        use diesel::prelude::*;
        use eap_referrals::db::schema::idempotency_keys::dsl as k;
        let mut conn = app.conn();
        k::idempotency_keys
            .select(k::request_hash)
            .first(&mut **conn)
            .unwrap()
    };
    assert!(!fingerprint.is_empty());
    // A plain SHA-256 of the body would let a database reader test guesses; it must not match.
    use sha2::Digest;
    let plain: String = sha2::Sha256::digest(&body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_ne!(fingerprint, plain);

    app.exec(
        "UPDATE idempotency_keys SET created_at = created_at - INTERVAL '25 hours'"
            .replace(
                "created_at - INTERVAL '25 hours'",
                if app.backend == eap_referrals::db::Backend::Sqlite {
                    "datetime(created_at, '-25 hours')"
                } else {
                    "created_at - INTERVAL '25 hours'"
                },
            )
            .as_str(),
    );
    let mut conn = app.conn();
    assert_eq!(
        eap_referrals::referrals::store::purge_expired_keys(&mut conn, eap_referrals::db::now())
            .unwrap(),
        1
    );
    drop(conn);
    let mut other = referral_body();
    other["note"] = json!("a new request");
    let resp = app
        .submit(
            &portal.token,
            Some("old-key"),
            &serde_json::to_vec(&other).unwrap(),
        )
        .await;
    assert_eq!(resp.status(), 201, "the key is free again after 24 h");
    assert!(resp.headers().get("idempotent-replayed").is_none());
}

#[actix_web::test]
async fn a_deactivated_employers_portal_is_refused_and_logged() {
    let app = spawn_app().await;
    let portal = app.setup_portal(2).await;
    let resp = app
        .post_json(
            &format!("/v1/admin/employers/{}/deactivate", portal.employer),
            &portal.admin_token,
            &json!(null),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let resp = app.submit_json(&portal.token, &referral_body()).await;
    let rid = request_id(&resp);
    problem(resp, 403).await;
    let events = app.audit_for_request(&rid);
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].action.as_str(), events[0].outcome.as_str()),
        ("referral.create", "denied")
    );
    assert_eq!(app.count("referrals"), 0);
}

/// On PostgreSQL a submission's statements are prepared once on the connection and reused:
/// the same named statements serve every later submission (none parsed and planned anew, and
/// the connection's statement cache does not grow with traffic).
#[actix_web::test]
async fn on_postgresql_a_submissions_statements_are_prepared_once_per_connection() {
    // One pooled connection, so the one the test reads is the one the submissions used.
    let app = common::spawn_app_with(|vars| {
        vars.insert("EAP_DB_POOL_SIZE".into(), "1".into());
    })
    .await;
    if app.backend != eap_referrals::db::Backend::Postgres {
        // SQLite has no server to parse statements: nothing to prepare.
        return;
    }
    let portal = app.setup_portal(10).await;
    let prepared = |app: &common::TestApp| -> Vec<String> {
        #[derive(diesel::QueryableByName)]
        struct Statement {
            #[diesel(sql_type = diesel::sql_types::Text)]
            statement: String,
        }
        let mut conn = app.state.db.get().unwrap();
        let eap_referrals::db::AnyConnection::Postgresql(c) = &mut **conn else {
            unreachable!("a PostgreSQL app")
        };
        use diesel::RunQueryDsl;
        let mut all: Vec<String> =
            diesel::sql_query("SELECT statement FROM pg_prepared_statements")
                .load::<Statement>(c)
                .unwrap()
                .into_iter()
                .map(|s| s.statement)
                .collect();
        all.sort();
        all
    };
    const SUBMISSION: [&str; 7] = [
        "SELECT pg_try_advisory_xact_lock",
        "SELECT NULL AS provider_id, version",
        "WITH c AS ( UPDATE provider_slots",
        "INSERT INTO referrals ",
        "WITH e AS ( INSERT INTO provider_events",
        "INSERT INTO idempotency_keys ",
        "INSERT INTO audit_events ",
    ];
    // Each of the submission's statements prepared exactly once, and no text prepared twice.
    // (Other statements may join the set meanwhile: a claim that starts at a random slot past
    // the free ones checks for a free slot, once, and the sealer runs in the background.)
    let check = |all: &[String], when: &str| {
        for start in SUBMISSION {
            let n = all.iter().filter(|s| s.starts_with(start)).count();
            assert_eq!(n, 1, "{start}… prepared {n} times {when}: {all:#?}");
        }
        let distinct: std::collections::HashSet<&String> = all.iter().collect();
        assert_eq!(
            distinct.len(),
            all.len(),
            "a text prepared twice {when}: {all:#?}"
        );
    };
    assert_eq!(
        app.submit_json(&portal.token, &referral_body())
            .await
            .status(),
        201
    );
    check(&prepared(&app), "after one submission");
    for _ in 0..3 {
        assert_eq!(
            app.submit_json(&portal.token, &referral_body())
                .await
                .status(),
            201
        );
    }
    check(
        &prepared(&app),
        "after four: later submissions reuse the same statements",
    );
    assert_eq!(app.count("referrals"), 4);
}
