//! Routing that protects helping professionals, over a real socket: the employer's affiliations,
//! the person's own exclusions, out-of-area care and specialist ranking; and what the portal, the
//! provider and the admin can learn from it.

mod common;

use common::provider::{act, get_referral, provider_token};
use common::{problem, referral_body, request_id, spawn_app, Portal, TestApp};
use serde_json::{json, Value};

/// A provider serving `regions` by video and phone, contracted to the portal's employer at
/// `priority`.
async fn contracted(
    app: &TestApp,
    portal: &Portal,
    name: &str,
    regions: &[&str],
    priority: i32,
) -> String {
    contracted_with(app, portal, name, regions, priority, false).await
}

async fn contracted_with(
    app: &TestApp,
    portal: &Portal,
    name: &str,
    regions: &[&str],
    priority: i32,
    specialist: bool,
) -> String {
    let body = json!({
        "name": name, "services": ["counselling"], "languages": ["en"], "regions": regions,
        "modalities": ["video", "phone"], "capacity": 5,
        "serves_helping_professionals": specialist,
    });
    app.contracted_provider(portal, &body, priority).await
}

/// Submits `body`; the 201's id.
async fn submitted(app: &TestApp, portal: &Portal, body: &Value) -> String {
    let resp = app.submit_json(&portal.token, body).await;
    assert_eq!(resp.status(), 201);
    resp.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn with(changes: Value) -> Value {
    let mut body = referral_body();
    for (k, v) in changes.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

async fn unroutable_item(app: &TestApp, portal: &Portal, id: &str) -> Value {
    let page: Value = app
        .get("/v1/admin/unroutable", &portal.admin_token)
        .await
        .json()
        .await
        .unwrap();
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == id)
        .unwrap_or_else(|| panic!("{id} not queued: {page}"))
        .clone()
}

async fn assign(app: &TestApp, portal: &Portal, id: &str, provider: &str) -> reqwest::Response {
    app.post_json(
        &format!("/v1/admin/unroutable/{id}/assign"),
        &portal.admin_token,
        &json!({"provider_id": provider}),
    )
    .await
}

#[actix_web::test]
async fn the_portal_lists_only_its_employers_contracted_active_providers_without_load() {
    let app = spawn_app().await;
    let portal = app.setup_portal(4).await;
    let other = app.setup_portal(4).await;
    let specialist = contracted_with(&app, &portal, "Clinicians Care", &["GB-SCT"], 2, true).await;
    let paused = contracted(&app, &portal, "Paused Care", &["GB"], 3).await;
    let resp = app
        .patch_json(
            &format!("/v1/admin/providers/{paused}"),
            &portal.admin_token,
            &json!({"status": "paused"}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let uncontracted = app.create_provider(&portal.admin_token, "Elsewhere").await;

    let resp = app.get("/v1/portal/providers", &portal.token).await;
    let rid = request_id(&resp);
    assert_eq!(resp.status(), 200);
    let page: Value = resp.json().await.unwrap();
    let mut ids: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    let mut expected = vec![portal.provider.as_str(), specialist.as_str()];
    expected.sort_unstable();
    assert_eq!(
        ids, expected,
        "not {paused}, {uncontracted} nor the other employer's"
    );
    let first = &page["items"][0];
    let mut fields: Vec<&str> = first
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "id",
            "languages",
            "modalities",
            "name",
            "regions",
            "serves_helping_professionals",
            "services"
        ],
        "never capacity or load"
    );
    let events = app.audit_for_request(&rid);
    assert_eq!(events.len(), 2, "one access event per provider listed");
    assert!(events.iter().all(|e| e.action == "provider.portal_list"));

    // Paged with the shared paging parameters.
    let page: Value = app
        .get("/v1/portal/providers?limit=1", &portal.token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    let next = page["next_cursor"].as_str().unwrap();
    let rest: Value = app
        .get(
            &format!("/v1/portal/providers?limit=1&after={next}"),
            &portal.token,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    assert_ne!(rest["items"][0]["id"], page["items"][0]["id"]);

    // The other employer's portal sees only its own provider; admins and providers may not call.
    let theirs: Value = app
        .get("/v1/portal/providers", &other.token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(theirs["items"].as_array().unwrap().len(), 1);
    assert_eq!(theirs["items"][0]["id"], other.provider.as_str());
    problem(
        app.get("/v1/portal/providers", &portal.admin_token).await,
        403,
    )
    .await;
}

#[actix_web::test]
async fn an_excluded_provider_is_never_offered_and_is_refused_like_a_full_one() {
    let app = spawn_app().await;
    let portal = app.setup_portal(4).await;
    let second = contracted(&app, &portal, "Second Care", &["GB"], 2).await;
    let third = contracted(&app, &portal, "Third Care", &["GB"], 3).await;

    // Priority 1 is excluded: the offer goes to priority 2.
    let id = submitted(
        &app,
        &portal,
        &with(json!({"exclude_providers": [portal.provider]})),
    )
    .await;
    assert_eq!(
        app.referral(&id).provider_id.as_deref(),
        Some(second.as_str())
    );

    // Declined by the second: the third, never the excluded first.
    let second_token = provider_token(&app, &portal, &second).await;
    let (_, etag, _) = get_referral(&app, &second_token, &id).await;
    let body = json!({"reason": "not_a_fit"});
    let resp = act(&app, &second_token, &id, "decline", Some(&etag), Some(body)).await;
    assert_eq!(resp.status(), 204);
    assert_eq!(
        app.referral(&id).provider_id.as_deref(),
        Some(third.as_str())
    );

    // Declined by the third: unroutable, though the first has room.
    let third_token = provider_token(&app, &portal, &third).await;
    let (_, etag, _) = get_referral(&app, &third_token, &id).await;
    let body = json!({"reason": "not_a_fit"});
    let resp = act(&app, &third_token, &id, "decline", Some(&etag), Some(body)).await;
    assert_eq!(resp.status(), 204);
    assert_eq!(app.referral(&id).status, "unroutable");

    // Assigning it to the excluded provider answers exactly what a full provider answers.
    let excluded = problem(assign(&app, &portal, &id, &portal.provider).await, 409).await;
    let full = app.setup_portal(0).await;
    let full_id = submitted(&app, &full, &referral_body()).await;
    let at_capacity = problem(assign(&app, &full, &full_id, &full.provider).await, 409).await;
    assert_eq!(excluded["detail"], at_capacity["detail"]);
    assert!(
        excluded["detail"]
            .as_str()
            .unwrap()
            .starts_with("provider_not_eligible"),
        "{excluded}"
    );
    // A provider the rules merely passed over may still be chosen by the admin.
    assert_eq!(assign(&app, &portal, &id, &second).await.status(), 200);
}

#[actix_web::test]
async fn an_offer_expired_by_the_sweeper_moves_on_but_never_to_an_excluded_provider() {
    let app = spawn_app().await;
    let portal = app.setup_portal(4).await;
    let second = contracted(&app, &portal, "Second Care", &["GB"], 2).await;
    let third = contracted(&app, &portal, "Third Care", &["GB"], 3).await;
    let id = submitted(&app, &portal, &with(json!({"exclude_providers": [second]}))).await;
    assert_eq!(
        app.referral(&id).provider_id.as_deref(),
        Some(portal.provider.as_str())
    );

    let mut conn = app.conn();
    let later = eap_referrals::db::now() + chrono::TimeDelta::days(30);
    let ttl = &app.state.config.offer_ttl;
    let expired =
        eap_referrals::workflow::sweep::sweep(&mut conn, ttl, &app.state.keys.master, later)
            .unwrap();
    drop(conn);
    assert_eq!(expired, 1);
    assert_eq!(
        app.referral(&id).provider_id.as_deref(),
        Some(third.as_str())
    );
}

#[actix_web::test]
async fn exclusions_must_come_from_the_portal_list_and_number_at_most_twenty() {
    let app = spawn_app().await;
    let portal = app.setup_portal(4).await;
    let other = app.setup_portal(4).await;
    let body = with(json!({"exclude_providers": [portal.provider, other.provider, "not-an-id"]}));
    let p = problem(app.submit_json(&portal.token, &body).await, 422).await;
    let pointers: Vec<&str> = p["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap())
        .collect();
    assert_eq!(
        pointers,
        ["/exclude_providers/2"],
        "the malformed one first: {p}"
    );
    assert!(!p.to_string().contains("not-an-id"), "never echoed: {p}");

    let body = with(json!({"exclude_providers": [portal.provider, other.provider]}));
    let p = problem(app.submit_json(&portal.token, &body).await, 422).await;
    assert_eq!(p["errors"][0]["pointer"], "/exclude_providers/1", "{p}");
    assert!(
        !p.to_string().contains(&other.provider),
        "never echoed: {p}"
    );
    assert_eq!(app.count("referrals"), 0, "nothing stored");

    let many: Vec<String> = (0..21).map(|_| portal.provider.clone()).collect();
    let p = problem(
        app.submit_json(&portal.token, &with(json!({"exclude_providers": many})))
            .await,
        422,
    )
    .await;
    assert_eq!(p["errors"][0]["pointer"], "/exclude_providers", "{p}");
}

#[actix_web::test]
async fn out_of_area_care_is_remote_elsewhere_in_the_same_country() {
    let app = spawn_app().await;
    let portal = app.setup_portal(4).await; // Serves all of GB: overlaps any GB subdivision.
    let scottish = contracted(&app, &portal, "Highland Care", &["GB-SCT"], 1).await;
    let french = contracted(&app, &portal, "Paris Care", &["FR"], 1).await;
    let english = contracted(&app, &portal, "Thames Care", &["GB-ENG", "FR-IDF"], 9).await;

    let body = with(json!({"region": "GB-SCT", "out_of_area": true}));
    let id = submitted(&app, &portal, &body).await;
    assert_eq!(
        app.referral(&id).provider_id.as_deref(),
        Some(english.as_str()),
        "not GB (contains GB-SCT), not {scottish}, not {french} (another country)"
    );

    let p = problem(
        app.submit_json(
            &portal.token,
            &with(json!({"region": "GB", "out_of_area": true})),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(p["errors"][0]["pointer"], "/region", "{p}");
    assert!(
        p["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("subdivision"),
        "{p}"
    );
    let body = with(json!({"region": "GB-SCT", "out_of_area": true, "modality": "in_person"}));
    let p = problem(app.submit_json(&portal.token, &body).await, 422).await;
    assert_eq!(p["errors"][0]["pointer"], "/modality", "{p}");
    assert!(
        p["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("in_person"),
        "{p}"
    );

    // Unroutable once the only fitting provider is gone; assigning one that serves the
    // person's area is refused like any ineligible provider.
    let resp = app
        .post_json(
            &format!("/v1/admin/providers/{english}/deactivate"),
            &portal.admin_token,
            &json!({}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let id = submitted(
        &app,
        &portal,
        &with(json!({"region": "GB-SCT", "out_of_area": true})),
    )
    .await;
    assert_eq!(app.referral(&id).status, "unroutable");
    let p = problem(assign(&app, &portal, &id, &scottish).await, 409).await;
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .starts_with("provider_not_eligible"),
        "{p}"
    );
    let p = problem(assign(&app, &portal, &id, &french).await, 409).await;
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .starts_with("provider_not_eligible"),
        "never across borders: {p}"
    );
}

#[actix_web::test]
async fn a_helping_professional_is_offered_to_a_specialist_first_but_never_left_unroutable() {
    let app = spawn_app().await;
    let portal = app.setup_portal(4).await;
    let specialist = contracted_with(&app, &portal, "Clinicians Care", &["GB"], 5, true).await;
    let id = submitted(&app, &portal, &with(json!({"helping_professional": true}))).await;
    assert_eq!(
        app.referral(&id).provider_id.as_deref(),
        Some(specialist.as_str())
    );
    let id = submitted(&app, &portal, &referral_body()).await;
    assert_eq!(
        app.referral(&id).provider_id.as_deref(),
        Some(portal.provider.as_str()),
        "contract priority for everyone else"
    );
    let body = with(json!({"helping_professional": true, "exclude_providers": [specialist]}));
    let id = submitted(&app, &portal, &body).await;
    assert_eq!(
        app.referral(&id).provider_id.as_deref(),
        Some(portal.provider.as_str()),
        "no eligible specialist: the next best, not unroutable"
    );
}

#[actix_web::test]
async fn affiliations_are_checked_shown_and_withdraw_open_offers() {
    let app = spawn_app().await;
    let portal = app.setup_portal(4).await;
    let second = contracted(&app, &portal, "Second Care", &["GB"], 2).await;

    let unknown = uuid::Uuid::new_v4().to_string();
    let body = json!({"name": "Trust", "affiliated_provider_ids": [unknown]});
    problem(
        app.post_json("/v1/admin/employers", &portal.admin_token, &body)
            .await,
        409,
    )
    .await;
    let body = json!({"name": "Trust", "affiliated_provider_ids": [second]});
    let resp = app
        .post_json("/v1/admin/employers", &portal.admin_token, &body)
        .await;
    assert_eq!(resp.status(), 201);
    let created: Value = resp.json().await.unwrap();
    assert_eq!(created["affiliated_provider_ids"], json!([second]));

    let id = submitted(&app, &portal, &referral_body()).await;
    assert_eq!(
        app.referral(&id).provider_id.as_deref(),
        Some(portal.provider.as_str())
    );

    // Affiliated while the offer is open: withdrawn, the provider told, re-routed.
    let path = format!("/v1/admin/employers/{}", portal.employer);
    let body = json!({"affiliated_provider_ids": [portal.provider]});
    let resp = app.patch_json(&path, &portal.admin_token, &body).await;
    assert_eq!(resp.status(), 200);
    let employer: Value = resp.json().await.unwrap();
    assert_eq!(
        employer["affiliated_provider_ids"],
        json!([portal.provider])
    );
    let read: Value = app
        .get(&path, &portal.admin_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(read["affiliated_provider_ids"], json!([portal.provider]));
    assert_eq!(
        app.referral(&id).provider_id.as_deref(),
        Some(second.as_str())
    );
    assert_eq!(app.provider_load(&portal.provider), 0, "its slot is freed");
    let mut conn = app.conn();
    let feed = eap_referrals::referrals::store::events_for(&mut conn, &portal.provider).unwrap();
    drop(conn);
    assert_eq!(
        feed,
        vec![
            (id.clone(), "offered".to_owned()),
            (id.clone(), "cancelled".to_owned())
        ]
    );

    // New referrals skip it; the admin may not assign to it, and is told why by name.
    let id = submitted(&app, &portal, &referral_body()).await;
    assert_eq!(
        app.referral(&id).provider_id.as_deref(),
        Some(second.as_str())
    );
    let resp = app
        .patch_json(
            &format!("/v1/admin/providers/{second}"),
            &portal.admin_token,
            &json!({"status": "paused"}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let id = submitted(&app, &portal, &referral_body()).await;
    assert_eq!(app.referral(&id).status, "unroutable");
    let item = unroutable_item(&app, &portal, &id).await;
    let mine = item["routing"]["reports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["provider_id"] == portal.provider.as_str())
        .unwrap()
        .clone();
    assert_eq!(
        mine["reasons"],
        json!(["affiliated_provider"]),
        "shown per provider: {item}"
    );
    let p = problem(assign(&app, &portal, &id, &portal.provider).await, 409).await;
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .starts_with("affiliated_provider"),
        "{p}"
    );
}

#[actix_web::test]
async fn admin_views_with_and_without_exclusions_differ_only_in_the_decision_wide_reasons() {
    let app = spawn_app().await;
    let portal = app.setup_portal(4).await;
    let second = contracted(&app, &portal, "Second Care", &["GB"], 2).await;
    // Nobody offers legal advice, so both are unroutable and queued for an admin.
    let plain = with(json!({"service_type": "legal", "helping_professional": true}));
    let excluding = with(json!({
        "service_type": "legal", "helping_professional": true, "exclude_providers": [second]
    }));
    let a = submitted(&app, &portal, &plain).await;
    let b = submitted(&app, &portal, &excluding).await;

    let view_a = unroutable_item(&app, &portal, &a).await;
    let view_b = unroutable_item(&app, &portal, &b).await;
    for view in [&view_a, &view_b] {
        assert_eq!(
            view["routing"]["reports"],
            json!([]),
            "no per-provider verdicts: {view}"
        );
        assert!(!view.to_string().contains(&second), "{view}");
        assert!(!view.to_string().contains(&portal.provider), "{view}");
    }
    assert_eq!(
        view_a["routing"]["summary"],
        json!({"considered": 2, "eligible": 0, "reasons": [
            {"reason": "service_not_offered", "providers": 2},
        ]})
    );
    assert_eq!(
        view_b["routing"]["summary"],
        json!({"considered": 2, "eligible": 0, "reasons": [
            {"reason": "service_not_offered", "providers": 2},
            {"reason": "excluded_for_confidentiality", "providers": 1},
        ]})
    );
    // Everything else alike, the stored reasons included.
    let strip = |v: &Value| {
        let mut v = v.clone();
        for k in ["id", "created_at"] {
            v.as_object_mut().unwrap().remove(k);
        }
        v["routing"]["summary"]["reasons"] = json!(null);
        v
    };
    assert_eq!(strip(&view_a), strip(&view_b));
    let stored = |id: &str| -> Value {
        serde_json::from_str(&app.referral(id).routing_reasons.unwrap()).unwrap()
    };
    assert_eq!(stored(&a), view_a["routing"]);
    assert_eq!(stored(&b), view_b["routing"]);
}

#[actix_web::test]
async fn the_persons_preferences_are_sealed_and_shredded_with_the_contact_data() {
    let app = spawn_app().await;
    let portal = app.setup_portal(4).await;
    let second = contracted(&app, &portal, "Second Care", &["GB"], 2).await;
    let body = with(json!({"exclude_providers": [second], "helping_professional": true}));
    let id = submitted(&app, &portal, &body).await;
    let row = || {
        let mut conn = app.conn();
        let id = eap_referrals::ids::ReferralId::from_trusted(id.clone());
        eap_referrals::referrals::store::find_referral(&mut conn, &id)
            .unwrap()
            .unwrap()
    };
    let sealed = row().sealed_preferences.expect("sealed at intake");
    assert!(!sealed.windows(second.len()).any(|w| w == second.as_bytes()));
    // A referral without preferences is sealed the same size: length tells nothing.
    let plain = submitted(&app, &portal, &referral_body()).await;
    let mut conn = app.conn();
    let plain = eap_referrals::ids::ReferralId::from_trusted(plain);
    let plain = eap_referrals::referrals::store::find_referral(&mut conn, &plain)
        .unwrap()
        .unwrap();
    drop(conn);
    assert_eq!(
        plain.sealed_preferences.map(|s| s.len()),
        Some(sealed.len())
    );

    let resp = app
        .delete(
            &format!("/v1/admin/referrals/{id}/personal-data"),
            &portal.admin_token,
        )
        .await;
    assert_eq!(resp.status(), 204);
    let erased = row();
    assert_eq!(erased.sealed_preferences, None, "shredded");
    assert_eq!(erased.sealed_contact, None);
}
