//! The provider's side over a real socket: feed, referral views, accept/decline/status with
//! If-Match, the audited contact reveal, re-offers, isolation between providers.

mod common;

use common::{problem, referral_body, request_id, spawn_app, Portal, TestApp};
use eap_referrals::ids::{ProviderId, ReferralId};
use serde_json::{json, Value};

/// A provider client for `provider_id`, and its token.
async fn provider_token(app: &TestApp, portal: &Portal, provider_id: &str) -> String {
    let client = app
        .create_client(
            &portal.admin_token,
            json!({"name": "provider system", "role": "provider", "provider_id": provider_id}),
        )
        .await;
    app.token(&client).await
}

/// Reads the feed like a client: long polls from `after` until `count` events have arrived
/// (PostgreSQL may hold an event back briefly while an older transaction, anywhere in the
/// cluster, is still open). Returns the events and the cursor after them.
async fn read_feed(
    app: &TestApp,
    token: &str,
    after: Option<&str>,
    count: usize,
) -> (Vec<Value>, String) {
    let mut events = Vec::new();
    let mut cursor = after.map(str::to_owned);
    // Bounded by time, not by polls: each poll returns as soon as one event is there, so a
    // trickle of writes can take many polls.
    let give_up = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::time::Instant::now() < give_up {
        let path = match &cursor {
            Some(c) => format!("/v1/provider/events?wait=2&after={c}"),
            None => "/v1/provider/events?wait=2".to_owned(),
        };
        let page: Value = app.get(&path, token).await.json().await.unwrap();
        events.extend(page["events"].as_array().unwrap().iter().cloned());
        cursor = Some(page["next_cursor"].as_str().unwrap().to_owned());
        if events.len() >= count {
            break;
        }
    }
    assert_eq!(events.len(), count, "{events:?}");
    (events, cursor.unwrap())
}

fn kinds(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["kind"].as_str().unwrap()).collect()
}

async fn submit(app: &TestApp, portal: &Portal) -> (String, String) {
    let v: Value = app
        .submit_json(&portal.token, &referral_body())
        .await
        .json()
        .await
        .unwrap();
    (
        v["id"].as_str().unwrap().to_owned(),
        v["status_token"].as_str().unwrap().to_owned(),
    )
}

async fn get_referral(
    app: &TestApp,
    token: &str,
    id: &str,
) -> (reqwest::StatusCode, String, Value) {
    let resp = app
        .get(&format!("/v1/provider/referrals/{id}"), token)
        .await;
    let status = resp.status();
    let etag = resp
        .headers()
        .get("etag")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, etag, resp.json().await.unwrap())
}

async fn act(
    app: &TestApp,
    token: &str,
    id: &str,
    what: &str,
    etag: Option<&str>,
    body: Option<Value>,
) -> reqwest::Response {
    let mut req = app
        .client
        .post(app.url(&format!("/v1/provider/referrals/{id}/{what}")))
        .bearer_auth(token);
    if let Some(e) = etag {
        req = req.header("if-match", e);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await.unwrap()
}

async fn portal_status(app: &TestApp, portal: &Portal, id: &str, token: &str) -> String {
    let v: Value = app
        .client
        .get(app.url(&format!("/v1/referrals/{id}")))
        .bearer_auth(&portal.token)
        .header("referral-token", token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["status"].as_str().unwrap().to_owned()
}

#[actix_web::test]
async fn a_provider_takes_a_referral_from_offer_to_close() {
    let app = spawn_app().await;
    let portal = app.setup_portal(3).await;
    let token = provider_token(&app, &portal, &portal.provider).await;
    let (id, status_token) = submit(&app, &portal).await;

    let (events, cursor) = read_feed(&app, &token, None, 1).await;
    assert_eq!(events[0]["referral_id"], id.as_str());
    assert_eq!(events[0]["kind"], "offered");
    let resp = app
        .get(&format!("/v1/provider/events?after={cursor}"), &token)
        .await;
    let rid = request_id(&resp);
    let empty: Value = resp.json().await.unwrap();
    assert_eq!(empty["events"], json!([]), "no repeats after the cursor");
    assert_eq!(empty["next_cursor"], cursor.as_str());
    assert!(
        app.audit_for_request(&rid).is_empty(),
        "an empty poll is not an access"
    );

    let (status, etag, view) = get_referral(&app, &token, &id).await;
    assert_eq!(status, 200);
    assert_eq!(etag, "\"1\"");
    assert_eq!(view["status"], "offered");
    assert_eq!(view["allowed_actions"], json!(["accept", "decline"]));
    assert!(view.get("contact").is_none() && !view.to_string().contains("Sam"));
    problem(
        app.get(&format!("/v1/provider/referrals/{id}/contact"), &token)
            .await,
        409,
    )
    .await;

    problem(act(&app, &token, &id, "accept", None, None).await, 428).await;
    problem(
        act(&app, &token, &id, "accept", Some("\"7\""), None).await,
        412,
    )
    .await;
    let resp = act(&app, &token, &id, "accept", Some(&etag), None).await;
    assert_eq!(resp.status(), 200);
    let etag = resp
        .headers()
        .get("etag")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        resp.json::<Value>().await.unwrap()["allowed_actions"],
        json!(["contacted", "close"])
    );
    assert_eq!(
        portal_status(&app, &portal, &id, &status_token).await,
        "in_progress"
    );

    let resp = app
        .get(&format!("/v1/provider/referrals/{id}/contact"), &token)
        .await;
    assert_eq!(resp.headers().get("cache-control").unwrap(), "no-store");
    let rid = request_id(&resp);
    let reveal: Value = resp.json().await.unwrap();
    assert_eq!(reveal["contact"], referral_body()["contact"]);
    assert_eq!(reveal["note"], referral_body()["note"]);
    let events = app.audit_for_request(&rid);
    assert_eq!(
        (
            events.len(),
            events[0].action.as_str(),
            events[0].resource_id.as_deref()
        ),
        (1, "contact.read", Some(id.as_str()))
    );

    let p = problem(
        act(
            &app,
            &token,
            &id,
            "status",
            Some(&etag),
            Some(json!({"status": "in_progress"})),
        )
        .await,
        409,
    )
    .await;
    assert_eq!(p["allowed"], json!(["contacted", "close"]));
    let mut etag = etag;
    for step in ["contacted", "scheduled", "in_progress"] {
        let resp = act(
            &app,
            &token,
            &id,
            "status",
            Some(&etag),
            Some(json!({"status": step})),
        )
        .await;
        assert_eq!(resp.status(), 200, "{step}");
        etag = resp
            .headers()
            .get("etag")
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
    }
    let p = problem(
        act(
            &app,
            &token,
            &id,
            "status",
            Some(&etag),
            Some(json!({"status": "closed"})),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(p["errors"][0]["field"], "outcome");
    let resp = act(
        &app,
        &token,
        &id,
        "status",
        Some(&etag),
        Some(json!({"status": "closed", "outcome": "completed"})),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let closed: Value = resp.json().await.unwrap();
    assert_eq!(
        (closed["status"].as_str(), closed["outcome"].as_str()),
        (Some("closed"), Some("completed"))
    );
    assert_eq!(closed["allowed_actions"], json!([]));
    assert_eq!(
        app.provider_load(&portal.provider),
        0,
        "closing frees the slot"
    );
    assert_eq!(
        portal_status(&app, &portal, &id, &status_token).await,
        "closed"
    );
    problem(
        app.get(&format!("/v1/provider/referrals/{id}/contact"), &token)
            .await,
        409,
    )
    .await;

    let (events, _) = read_feed(&app, &token, Some(&cursor), 5).await;
    assert_eq!(
        kinds(&events),
        [
            "accepted",
            "contacted",
            "scheduled",
            "in_progress",
            "closed"
        ]
    );
}

#[actix_web::test]
async fn a_decline_reoffers_to_the_next_provider_never_one_already_tried() {
    let app = spawn_app().await;
    let portal = app.setup_portal(3).await;
    let second = app
        .create_provider(&portal.admin_token, "Second Care")
        .await;
    let resp = app
        .post_json(
            "/v1/admin/contracts",
            &portal.admin_token,
            &json!({"employer_id": portal.employer, "provider_id": second, "priority": 2}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let first_token = provider_token(&app, &portal, &portal.provider).await;
    let second_token = provider_token(&app, &portal, &second).await;
    let (id, _) = submit(&app, &portal).await;
    assert_eq!(
        app.referral(&id).provider_id.as_deref(),
        Some(portal.provider.as_str()),
        "priority 1 first"
    );

    let (_, etag, _) = get_referral(&app, &first_token, &id).await;
    problem(
        act(
            &app,
            &first_token,
            &id,
            "decline",
            Some(&etag),
            Some(json!({"reason": "astrology"})),
        )
        .await,
        422,
    )
    .await;
    let resp = act(
        &app,
        &first_token,
        &id,
        "decline",
        Some(&etag),
        Some(json!({"reason": "not_a_fit", "comment": "specialist needed"})),
    )
    .await;
    assert_eq!(resp.status(), 204);
    assert_eq!(
        app.referral(&id).provider_id.as_deref(),
        Some(second.as_str())
    );
    assert_eq!(app.provider_load(&portal.provider), 0);
    assert_eq!(app.provider_load(&second), 1);
    let (status, _, _) = get_referral(&app, &first_token, &id).await;
    assert_eq!(status, 404, "gone from the decliner");
    let (events, _) = read_feed(&app, &second_token, None, 1).await;
    assert_eq!(events[0]["kind"], "offered");

    let (_, etag, _) = get_referral(&app, &second_token, &id).await;
    assert_eq!(
        act(
            &app,
            &second_token,
            &id,
            "decline",
            Some(&etag),
            Some(json!({"reason": "at_capacity"}))
        )
        .await
        .status(),
        204
    );
    let row = app.referral(&id);
    assert_eq!(
        (row.status.as_str(), row.provider_id),
        ("unroutable", None),
        "both tried: none left"
    );
    assert!(
        !format!("{:?}", app.audit_rows()).contains("specialist needed"),
        "the comment is sealed, not logged"
    );
}

#[actix_web::test]
async fn providers_cannot_touch_each_others_referrals() {
    let app = spawn_app().await;
    let portal = app.setup_portal(3).await;
    let other = app.create_provider(&portal.admin_token, "Other Care").await;
    let mine = provider_token(&app, &portal, &portal.provider).await;
    let theirs = provider_token(&app, &portal, &other).await;
    let (id, _) = submit(&app, &portal).await;
    let (_, etag, _) = get_referral(&app, &mine, &id).await;

    for (method, path) in [
        ("GET", format!("/v1/provider/referrals/{id}")),
        ("GET", format!("/v1/provider/referrals/{id}/contact")),
        ("POST", format!("/v1/provider/referrals/{id}/accept")),
        ("POST", format!("/v1/provider/referrals/{id}/status")),
    ] {
        let req = if method == "GET" {
            app.client.get(app.url(&path))
        } else {
            app.client
                .post(app.url(&path))
                .json(&json!({"status": "contacted"}))
        };
        let resp = req
            .bearer_auth(&theirs)
            .header("if-match", &etag)
            .send()
            .await
            .unwrap();
        let rid = request_id(&resp);
        problem(resp, 404).await;
        let events = app.audit_for_request(&rid);
        assert_eq!(
            (events.len(), events[0].outcome.as_str()),
            (1, "denied"),
            "{method} {path}"
        );
    }
    let listed: Value = app
        .get("/v1/provider/referrals", &theirs)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["items"], json!([]));
    let feed: Value = app
        .get("/v1/provider/events", &theirs)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(feed["events"], json!([]));
    assert_eq!(app.referral(&id).status, "offered", "untouched");
    // The portal role cannot use provider routes at all.
    problem(app.get("/v1/provider/referrals", &portal.token).await, 403).await;
}

#[actix_web::test]
async fn two_accepts_with_the_same_version_one_wins() {
    let app = common::spawn_app_with(|v| {
        v.insert("EAP_DB_POOL_SIZE".into(), "8".into());
    })
    .await;
    let portal = app.setup_portal(3).await;
    let token = provider_token(&app, &portal, &portal.provider).await;
    let (id, _) = submit(&app, &portal).await;
    let (_, etag, _) = get_referral(&app, &token, &id).await;
    let (a, b) = futures_util::future::join(
        act(&app, &token, &id, "accept", Some(&etag), None),
        act(&app, &token, &id, "accept", Some(&etag), None),
    )
    .await;
    let mut codes = vec![a.status().as_u16(), b.status().as_u16()];
    codes.sort();
    assert_eq!(codes, [200, 412]);
    assert_eq!(app.referral(&id).version, 2);
}

#[actix_web::test]
async fn the_feed_never_passes_an_event_that_is_still_committing() {
    let app = spawn_app().await;
    let portal = app.setup_portal(5).await;
    let token = provider_token(&app, &portal, &portal.provider).await;
    let (first, _) = submit(&app, &portal).await;
    let (second, _) = submit(&app, &portal).await;
    let (events, cursor) = read_feed(&app, &token, None, 2).await;
    let ids: Vec<&str> = events
        .iter()
        .map(|e| e["referral_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [first.as_str(), second.as_str()], "in order");

    if app.backend == eap_referrals::db::Backend::Postgres {
        // A slow transaction takes an event id, then a fast one takes a later id and commits.
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let db = app.state.db.clone();
        let provider = portal.provider.clone();
        let slow_referral = first.clone();
        let slow = std::thread::spawn(move || {
            let mut conn = db.get().unwrap();
            eap_referrals::db::write_tx(&mut conn, |c| {
                eap_referrals::referrals::store::append_event(
                    c,
                    &ProviderId::from_trusted(provider),
                    &ReferralId::from_trusted(slow_referral),
                    "slow",
                    eap_referrals::db::now(),
                )?;
                ready_tx.send(()).unwrap();
                go_rx.recv().unwrap();
                Ok::<_, diesel::result::Error>(())
            })
            .unwrap();
        });
        ready_rx.recv().unwrap();
        {
            let mut conn = app.conn();
            eap_referrals::referrals::store::append_event(
                &mut conn,
                &ProviderId::from_trusted(portal.provider.clone()),
                &ReferralId::from_trusted(second.clone()),
                "fast",
                eap_referrals::db::now(),
            )
            .unwrap();
        }
        let feed: Value = app
            .get(&format!("/v1/provider/events?after={cursor}"), &token)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(feed["events"], json!([]), "the fast event waits for the slow one: serving it would move the cursor past the slow one");
        go_tx.send(()).unwrap();
        slow.join().unwrap();
        let (events, _) = read_feed(&app, &token, Some(&cursor), 2).await;
        assert_eq!(kinds(&events), ["slow", "fast"]);
    }
}

fn sweep_at(app: &TestApp, hours_from_now: i64) -> usize {
    let mut conn = app.conn();
    let now = eap_referrals::db::now() + chrono::TimeDelta::hours(hours_from_now);
    eap_referrals::workflow::sweep::sweep(&mut conn, &app.state.config.offer_ttl, now).unwrap()
}

#[actix_web::test]
async fn overdue_offers_expire_and_move_on() {
    let app = spawn_app().await;
    let portal = app.setup_portal(3).await;
    let second = app
        .create_provider(&portal.admin_token, "Second Care")
        .await;
    app.post_json(
        "/v1/admin/contracts",
        &portal.admin_token,
        &json!({"employer_id": portal.employer, "provider_id": second, "priority": 2}),
    )
    .await;
    let first_token = provider_token(&app, &portal, &portal.provider).await;
    let (id, _) = submit(&app, &portal).await;

    assert_eq!(sweep_at(&app, 47), 0, "a routine offer has 48 h");
    assert_eq!(sweep_at(&app, 49), 1);
    let row = app.referral(&id);
    assert_eq!(
        (row.status.as_str(), row.provider_id.as_deref()),
        ("offered", Some(second.as_str()))
    );
    assert_eq!(
        (
            app.provider_load(&portal.provider),
            app.provider_load(&second)
        ),
        (0, 1)
    );
    let (events, _) = read_feed(&app, &first_token, None, 2).await;
    assert_eq!(kinds(&events), ["offered", "offer_expired"]);
    assert!(app
        .audit_rows()
        .iter()
        .any(|e| e.action == "referral.expire"
            && e.resource_id.as_deref() == Some(id.as_str())
            && e.actor_role.as_deref() == Some("system")));

    assert_eq!(sweep_at(&app, 49 + 49), 1, "the second offer expires too");
    let row = app.referral(&id);
    assert_eq!(
        (row.status.as_str(), row.provider_id),
        ("unroutable", None),
        "never back to one already tried"
    );
    assert_eq!(app.provider_load(&second), 0);
}

#[actix_web::test]
async fn racing_sweepers_expire_each_offer_once() {
    let app = common::spawn_app_with(|v| {
        v.insert("EAP_DB_POOL_SIZE".into(), "8".into());
    })
    .await;
    let portal = app.setup_portal(10).await;
    for _ in 0..5 {
        submit(&app, &portal).await;
    }
    let now = eap_referrals::db::now() + chrono::TimeDelta::hours(49);
    let handles: Vec<_> = (0..3)
        .map(|_| {
            let db = app.state.db.clone();
            let state = app.state.clone();
            std::thread::spawn(move || {
                let mut conn = db.get().unwrap();
                eap_referrals::workflow::sweep::sweep(&mut conn, &state.config.offer_ttl, now)
                    .unwrap()
            })
        })
        .collect();
    let total: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(total, 5, "each overdue offer expired exactly once");
    let expire_events = app
        .audit_rows()
        .iter()
        .filter(|e| e.action == "referral.expire")
        .count();
    assert_eq!(expire_events, 5);
    assert_eq!(app.provider_load(&portal.provider), 0);
}

/// Polls with `wait`, and returns how long after `trigger` ran the poll answered.
async fn wake_latency(
    poller: &TestApp,
    token: &str,
    trigger: impl std::future::Future<Output = ()>,
) -> (std::time::Duration, Value) {
    let poll = poller
        .client
        .get(poller.url("/v1/provider/events?wait=10"))
        .bearer_auth(token)
        .send();
    let timed = async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        trigger.await;
        std::time::Instant::now()
    };
    let (resp, fired) = futures_util::future::join(poll, timed).await;
    let answered = std::time::Instant::now();
    (answered - fired, resp.unwrap().json().await.unwrap())
}

#[actix_web::test]
async fn a_long_poll_wakes_as_soon_as_an_event_is_committed() {
    let app = spawn_app().await;
    let portal = app.setup_portal(3).await;
    let token = provider_token(&app, &portal, &portal.provider).await;
    let started = std::time::Instant::now();
    let empty = app
        .client
        .get(app.url("/v1/provider/events?wait=1"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(950),
        "waits when nothing happens"
    );
    assert_eq!(empty.json::<Value>().await.unwrap()["events"], json!([]));
    let prefer = app
        .client
        .get(app.url("/v1/provider/events"))
        .bearer_auth(&token)
        .header("prefer", "wait=1")
        .send()
        .await
        .unwrap();
    assert_eq!(
        prefer.headers().get("preference-applied").unwrap(),
        "wait=1"
    );

    let (latency, feed) = wake_latency(&app, &token, async {
        submit(&app, &portal).await;
    })
    .await;
    assert_eq!(feed["events"][0]["kind"], "offered");
    eprintln!("long-poll wake-up, same instance: {latency:?} after the commit");
    assert!(
        latency < std::time::Duration::from_millis(500),
        "woke {latency:?} after the commit"
    );
}

#[actix_web::test]
async fn a_write_on_one_instance_wakes_a_long_poll_on_another() {
    let a = spawn_app().await;
    if a.backend != eap_referrals::db::Backend::Postgres {
        // Two instances share a database only on PostgreSQL (CI runs this suite there too);
        // SQLite wake-ups are in-process and covered by the test above.
        return;
    }
    let url = match &a.database_url {
        eap_referrals::db::DatabaseUrl::Postgres(u) => u.clone(),
        _ => unreachable!(),
    };
    // Instances of one deployment share the database and the keys.
    let b = common::spawn_app_with(|v| {
        v.insert("EAP_DATABASE_URL".into(), url.clone());
        v.insert(
            "EAP_DATA_DIR".into(),
            a.data_dir.path().display().to_string(),
        );
    })
    .await;
    let portal = a.setup_portal(3).await;
    let token = provider_token(&a, &portal, &portal.provider).await;
    let (latency, feed) = wake_latency(&b, &token, async {
        submit(&a, &portal).await;
    })
    .await;
    assert_eq!(
        feed["events"][0]["kind"], "offered",
        "instance B saw instance A's event"
    );
    eprintln!("long-poll wake-up, across instances: {latency:?} after the commit");
    assert!(
        latency < std::time::Duration::from_millis(500),
        "woke {latency:?} after the commit on the other instance"
    );
}

/// The order that ids alone get wrong: an older transaction writes its event after a younger
/// one and commits first. Served in id order, the cursor would pass the younger event's lower
/// id before it commits, and it would never be delivered.
#[actix_web::test]
async fn an_older_transaction_committing_first_does_not_hide_a_younger_ones_event() {
    let app = spawn_app().await;
    let portal = app.setup_portal(5).await;
    let token = provider_token(&app, &portal, &portal.provider).await;
    let (referral, _) = submit(&app, &portal).await;
    let (_, cursor) = read_feed(&app, &token, None, 1).await;
    if app.backend != eap_referrals::db::Backend::Postgres {
        return; // one writer at a time: this interleaving cannot happen on SQLite
    }
    use diesel::connection::SimpleConnection;
    use std::sync::mpsc::channel;
    let (old_ready_tx, old_ready) = channel();
    let (old_go, old_go_rx) = channel::<()>();
    let (old_done_tx, old_done) = channel();
    let (young_ready_tx, young_ready) = channel();
    let (young_go, young_go_rx) = channel::<()>();
    let now = eap_referrals::db::now;
    let (db, p, r) = (
        app.state.db.clone(),
        ProviderId::from_trusted(portal.provider.clone()),
        ReferralId::from_trusted(referral.clone()),
    );
    let old = std::thread::spawn(move || {
        let mut conn = db.get().unwrap();
        eap_referrals::db::write_tx(&mut conn, |c| {
            c.batch_execute("SELECT pg_current_xact_id()")?; // take the older transaction id now
            old_ready_tx.send(()).unwrap();
            old_go_rx.recv().unwrap();
            eap_referrals::referrals::store::append_event(c, &p, &r, "old", now())
        })
        .unwrap();
        old_done_tx.send(()).unwrap();
    });
    old_ready.recv().unwrap();
    let (db, p, r) = (
        app.state.db.clone(),
        ProviderId::from_trusted(portal.provider.clone()),
        ReferralId::from_trusted(referral.clone()),
    );
    let young = std::thread::spawn(move || {
        let mut conn = db.get().unwrap();
        eap_referrals::db::write_tx(&mut conn, |c| {
            eap_referrals::referrals::store::append_event(c, &p, &r, "young", now())?; // the lower id
            young_ready_tx.send(()).unwrap();
            young_go_rx.recv().unwrap();
            Ok::<_, diesel::result::Error>(())
        })
        .unwrap();
    });
    young_ready.recv().unwrap();
    old_go.send(()).unwrap();
    old_done.recv().unwrap();
    let (events, cursor) = read_feed(&app, &token, Some(&cursor), 1).await;
    assert_eq!(kinds(&events), ["old"]);
    young_go.send(()).unwrap();
    young.join().unwrap();
    old.join().unwrap();
    let (events, _) = read_feed(&app, &token, Some(&cursor), 1).await;
    assert_eq!(
        kinds(&events),
        ["young"],
        "delivered after the cursor moved past a higher id"
    );
}

/// Many writers, one reader: every referral submitted concurrently shows up in the feed exactly
/// once, whatever order the transactions commit in.
#[actix_web::test]
async fn the_feed_under_concurrent_writers_delivers_every_event_once() {
    let app = common::spawn_app_with(|v| {
        v.insert("EAP_DB_POOL_SIZE".into(), "8".into());
        v.insert("EAP_WORKERS".into(), "4".into());
    })
    .await;
    let portal = app.setup_portal(500).await;
    let token = provider_token(&app, &portal, &portal.provider).await;
    let writers = (0..4).map(|_| async {
        let mut ids = Vec::new();
        for _ in 0..20 {
            ids.push(submit(&app, &portal).await.0);
        }
        ids
    });
    let reader = read_feed(&app, &token, None, 80);
    let (written, (events, _)) =
        futures_util::future::join(futures_util::future::join_all(writers), reader).await;
    let mut written: Vec<String> = written.into_iter().flatten().collect();
    let mut delivered: Vec<String> = events
        .iter()
        .map(|e| e["referral_id"].as_str().unwrap().to_owned())
        .collect();
    assert!(events.iter().all(|e| e["kind"] == "offered"));
    written.sort();
    delivered.sort();
    assert_eq!(
        delivered, written,
        "every event once, none skipped, none repeated"
    );
}

#[actix_web::test]
async fn accept_and_decline_racing_one_wins() {
    let app = common::spawn_app_with(|v| {
        v.insert("EAP_DB_POOL_SIZE".into(), "8".into());
    })
    .await;
    let portal = app.setup_portal(3).await;
    let token = provider_token(&app, &portal, &portal.provider).await;
    let (id, _) = submit(&app, &portal).await;
    let (_, etag, _) = get_referral(&app, &token, &id).await;
    let (a, d) = futures_util::future::join(
        act(&app, &token, &id, "accept", Some(&etag), None),
        act(
            &app,
            &token,
            &id,
            "decline",
            Some(&etag),
            Some(json!({"reason": "not_a_fit"})),
        ),
    )
    .await;
    let (a, d) = (a.status().as_u16(), d.status().as_u16());
    let row = app.referral(&id);
    match (a, d) {
        (200, 412) => assert_eq!(row.status, "accepted"),
        (412, 204) | (404, 204) => assert_eq!(
            row.status, "unroutable",
            "declined and nobody else to offer it to"
        ),
        other => panic!("exactly one must win: {other:?}"),
    }
    assert_eq!(app.referral(&id).version, 2, "one change");
}

/// Two server processes' worth of instances on one PostgreSQL, no balancer: every call goes
/// to the other instance than the one before. Each referral goes from submission to closing;
/// nothing is duplicated (one referral per Idempotency-Key, one `offered` per referral, one
/// access event per call) and nothing is lost (every referral closed, every slot given back).
#[actix_web::test]
async fn two_instances_alternating_take_referrals_through_their_whole_lifecycle() {
    let a = spawn_app().await;
    if a.backend != eap_referrals::db::Backend::Postgres {
        return; // instances share a database only on PostgreSQL
    }
    let url = match &a.database_url {
        eap_referrals::db::DatabaseUrl::Postgres(u) => u.clone(),
        _ => unreachable!(),
    };
    let b = common::spawn_app_with(|v| {
        v.insert("EAP_DATABASE_URL".into(), url.clone());
        v.insert(
            "EAP_DATA_DIR".into(),
            a.data_dir.path().display().to_string(),
        );
    })
    .await;
    let apps = [&a, &b];
    let portal = a.setup_portal(20).await;
    let token = provider_token(&b, &portal, &portal.provider).await;
    let mut turn = 0usize;
    let mut next = || {
        turn += 1;
        apps[turn % 2]
    };

    // Submissions, each key also replayed on the other instance: same answer, no second referral.
    let body = serde_json::to_vec(&referral_body()).unwrap();
    let mut referrals = Vec::new();
    for i in 0..6 {
        let key = format!("multi-{i}");
        let first = next().submit(&portal.token, Some(&key), &body).await;
        assert_eq!(first.status(), 201);
        let first: Value = first.json().await.unwrap();
        let replay = next().submit(&portal.token, Some(&key), &body).await;
        assert_eq!(replay.status(), 201);
        let replay: Value = replay.json().await.unwrap();
        assert_eq!(replay["id"], first["id"], "the replay answers the original");
        referrals.push((
            first["id"].as_str().unwrap().to_owned(),
            first["status_token"].as_str().unwrap().to_owned(),
        ));
    }
    assert_eq!(a.count("referrals"), 6);

    // The provider reads its feed from both instances in turn: each offer exactly once.
    let (events, _) = read_feed(next(), &token, None, 6).await;
    let mut offered: Vec<&str> = events
        .iter()
        .filter(|e| e["kind"] == "offered")
        .map(|e| e["referral_id"].as_str().unwrap())
        .collect();
    offered.sort();
    let mut ids: Vec<&str> = referrals.iter().map(|(id, _)| id.as_str()).collect();
    ids.sort();
    assert_eq!(offered, ids, "every referral offered once, none twice");

    for (id, status_token) in &referrals {
        let (_, mut etag, _) = get_referral(next(), &token, id).await;
        let resp = act(next(), &token, id, "accept", Some(&etag), None).await;
        assert_eq!(resp.status(), 200);
        etag = resp.headers()["etag"].to_str().unwrap().to_owned();
        let reveal = next()
            .get(&format!("/v1/provider/referrals/{id}/contact"), &token)
            .await;
        assert_eq!(reveal.status(), 200);
        for (step, extra) in [
            ("contacted", json!({})),
            ("scheduled", json!({})),
            ("in_progress", json!({})),
            ("closed", json!({"outcome": "completed"})),
        ] {
            let mut body = json!({"status": step});
            body.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            let resp = act(next(), &token, id, "status", Some(&etag), Some(body)).await;
            if resp.status() != 200 {
                panic!("{step} on {id}: {}", resp.text().await.unwrap());
            }
            etag = resp.headers()["etag"].to_str().unwrap().to_owned();
        }
        assert_eq!(
            portal_status(next(), &portal, id, status_token).await,
            "closed"
        );
    }

    // Nothing lost: all closed, capacity back. Nothing duplicated: one access event per call.
    let closed = referrals
        .iter()
        .filter(|(id, _)| a.referral(id).status == "closed")
        .count();
    assert_eq!(closed, 6);
    assert_eq!(a.provider_load(&portal.provider), 0);
    let rows = a.audit_rows();
    for (id, _) in &referrals {
        let on = |action: &str| {
            rows.iter()
                .filter(|r| r.action == action && r.resource_id.as_deref() == Some(id.as_str()))
                .count()
        };
        assert_eq!(on("contact.read"), 1, "{id}");
        assert_eq!(on("referral.accept"), 1, "{id}");
    }
    let mut request_ids: Vec<&str> = rows
        .iter()
        .filter(|r| r.action != "referral.list" && r.action != "feed.read")
        .map(|r| r.request_id.as_str())
        .collect();
    let total = request_ids.len();
    request_ids.sort();
    request_ids.dedup();
    assert_eq!(request_ids.len(), total, "no call logged twice");
}

/// RFC 9110 §13.1.1: `If-Match: *` matches any current representation, a list matches when one
/// of its tags does, a weak tag never does. A malformed body is reported before the
/// precondition is evaluated: it is wrong whatever the referral's version.
#[actix_web::test]
async fn if_match_star_and_lists_and_body_before_precondition() {
    let app = spawn_app().await;
    let portal = app.setup_portal(3).await;
    let token = provider_token(&app, &portal, &portal.provider).await;
    let (id, _) = submit(&app, &portal).await;

    // Body errors come first, even with a missing or stale If-Match.
    problem(act(&app, &token, &id, "decline", None, None).await, 415).await;
    problem(
        act(&app, &token, &id, "decline", Some("\"7\""), None).await,
        415,
    )
    .await;
    let p = problem(
        act(
            &app,
            &token,
            &id,
            "decline",
            Some("\"7\""),
            Some(json!({"reason": "nope"})),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(p["errors"][0]["field"], "reason", "{p}");
    problem(
        act(
            &app,
            &token,
            &id,
            "status",
            None,
            Some(json!({"colour": "blue"})),
        )
        .await,
        422,
    )
    .await;
    // A well-formed body still needs the precondition: 428 without it, 412 when it fails.
    problem(
        act(
            &app,
            &token,
            &id,
            "status",
            None,
            Some(json!({"status": "contacted"})),
        )
        .await,
        428,
    )
    .await;
    problem(
        act(&app, &token, &id, "accept", Some("W/\"1\""), None).await,
        412,
    )
    .await;
    problem(
        act(&app, &token, &id, "accept", Some("\"5\", \"6\""), None).await,
        412,
    )
    .await;

    // `*` proceeds, whatever the version.
    let resp = act(&app, &token, &id, "accept", Some("*"), None).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers().get("etag").unwrap(), "\"2\"");
    // A list with the current version among others matches.
    let resp = act(
        &app,
        &token,
        &id,
        "status",
        Some("\"1\", \"2\""),
        Some(json!({"status": "contacted"})),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let resp = act(
        &app,
        &token,
        &id,
        "status",
        Some("*"),
        Some(json!({"status": "closed", "outcome": "referred_elsewhere"})),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap()["status"], "closed");

    // Decline with `*` on a fresh offer.
    let (id, _) = submit(&app, &portal).await;
    let resp = act(
        &app,
        &token,
        &id,
        "decline",
        Some("*"),
        Some(json!({"reason": "other"})),
    )
    .await;
    assert_eq!(resp.status(), 204);
}
