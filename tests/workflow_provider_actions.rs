//! A provider's actions on a referral over a real socket: views, accept/decline/status with
//! If-Match, the audited contact reveal, re-offers, isolation between providers, and racing
//! actions of which exactly one wins.

mod common;

use common::provider::{
    act, get_referral, kinds, portal_status, provider_token, read_feed, submit,
};
use common::{problem, referral_body, request_id, spawn_app};
use serde_json::{json, Value};

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
    assert_eq!(p["errors"][0]["pointer"], "/outcome");
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
        let if_match = [("if-match", etag.as_str())];
        let mut req = app.request(method.parse().unwrap(), &path, Some(&theirs), &if_match);
        if method == "POST" {
            req = req.json(&json!({"status": "contacted"}));
        }
        let resp = req.send().await.unwrap();
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
    assert_eq!(p["errors"][0]["pointer"], "/reason", "{p}");
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

/// The person's own words are kept as they spell them: a Persian name with a zero-width
/// non-joiner and an emoji family joined by zero-width joiners are accepted and read back
/// byte for byte; bidirectional controls and other invisible characters are still refused,
/// naming the member.
#[actix_web::test]
async fn a_persons_own_fields_keep_joiners_and_still_refuse_bidi_controls() {
    let app = spawn_app().await;
    let portal = app.setup_portal(3).await;
    let token = provider_token(&app, &portal, &portal.provider).await;
    let name = "محمدرضا می\u{200c}خواهم";
    let when = "evenings 👨\u{200d}👩\u{200d}👧";
    let mut body = referral_body();
    body["contact"]["preferred_name"] = json!(name);
    body["contact"]["best_time_to_contact"] = json!(when);
    let resp = app.submit_json(&portal.token, &body).await;
    assert_eq!(resp.status(), 201);
    let id = resp.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, etag, _) = get_referral(&app, &token, &id).await;
    let accepted = act(&app, &token, &id, "accept", Some(&etag), None).await;
    assert_eq!(accepted.status(), 200);
    let reveal: Value = app
        .get(&format!("/v1/provider/referrals/{id}/contact"), &token)
        .await
        .json()
        .await
        .unwrap();
    let read = |member: &str| {
        reveal["contact"][member]
            .as_str()
            .unwrap()
            .as_bytes()
            .to_vec()
    };
    assert_eq!(read("preferred_name"), name.as_bytes());
    assert_eq!(read("best_time_to_contact"), when.as_bytes());

    for (pointer, value) in [
        ("/contact/preferred_name", "Sam\u{202e}gpj.exe"),
        ("/contact/preferred_name", "\u{2066}Sam\u{2069}"),
        ("/contact/preferred_name", "Sa\u{200b}m"),
        ("/contact/preferred_name", "\u{200c}\u{200d}"),
        ("/contact/best_time_to_contact", "evenings\u{200f}"),
        ("/contact/best_time_to_contact", "\u{feff}mornings"),
    ] {
        let mut body = referral_body();
        *body.pointer_mut(pointer).unwrap() = json!(value);
        let p = problem(app.submit_json(&portal.token, &body).await, 422).await;
        let errors = p["errors"].as_array().unwrap();
        assert_eq!(errors.len(), 1, "{value:?}: {p}");
        assert_eq!(
            (errors[0]["pointer"].as_str(), errors[0]["code"].as_str()),
            (Some(pointer), Some("pattern")),
            "{value:?}: {p}"
        );
        assert!(
            !p.to_string().contains(value),
            "the value is never echoed: {p}"
        );
    }
}

#[actix_web::test]
async fn a_held_referral_whose_data_key_is_gone_reveals_nothing_and_logs_no_read() {
    // The referral's data key is read in the same statement as the locked referral. A key row
    // that is missing while the referral still looks held (a restore that predates the key, a
    // purge caught half way) must answer 409 "erased", not a 500 and not a read.
    let app = spawn_app().await;
    let portal = app.setup_portal(3).await;
    let token = provider_token(&app, &portal, &portal.provider).await;
    let (id, _) = submit(&app, &portal).await;
    let (_, etag, _) = get_referral(&app, &token, &id).await;
    let resp = act(&app, &token, &id, "accept", Some(&etag), None).await;
    assert_eq!(resp.status(), 200);
    let path = format!("/v1/provider/referrals/{id}/contact");
    assert_eq!(app.get(&path, &token).await.status(), 200, "readable first");

    app.exec(&format!(
        "DELETE FROM referral_keys WHERE referral_id = '{id}'"
    ));
    let resp = app.get(&path, &token).await;
    let rid = request_id(&resp);
    let p = problem(resp, 409).await;
    assert_eq!(
        p["detail"],
        "the personal data of this referral has been erased"
    );
    assert!(!p.to_string().contains("Sam"));
    assert!(
        app.audit_for_request(&rid).is_empty(),
        "nothing was revealed, so no contact.read is committed"
    );
    assert_eq!(app.referral(&id).status, "accepted", "untouched");
}
