//! First routing keeps each employer's routing snapshot in memory while the directory does not
//! change, and for large networks the loads for a moment (src/routing/cache.rs). Over a real
//! socket, with loads kept from the first provider on (`EAP_ROUTING_KEEP_LOADS_FROM=1`): every
//! change to the directory is seen by the next submission, whoever makes it (the API, or SQL as
//! another instance or an earlier release would), and kept loads never let a provider pass its
//! capacity.

mod common;

use common::{referral_body, spawn_app_with, Portal, TestApp};
use serde_json::{json, Value};

async fn app_keeping_loads() -> TestApp {
    spawn_app_with(|v| {
        v.insert("EAP_ROUTING_KEEP_LOADS_FROM".into(), "1".into());
    })
    .await
}

/// A counselling provider for the portal's region, contracted to its employer at `priority`.
async fn contracted(app: &TestApp, portal: &Portal, name: &str, priority: i32, cap: u32) -> String {
    let body = json!({
        "name": name, "services": ["counselling"], "languages": ["en"], "regions": ["GB"],
        "modalities": ["video", "phone"], "capacity": cap,
    });
    app.contracted_provider(portal, &body, priority).await
}

/// Submits a referral; the provider it was offered to, if any.
async fn offered_to(app: &TestApp, portal: &Portal) -> Option<String> {
    let resp = app.submit_json(&portal.token, &referral_body()).await;
    assert_eq!(resp.status(), 201);
    let id = resp.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.referral(&id).provider_id
}

async fn patch(app: &TestApp, portal: &Portal, path: String, body: Value) {
    let resp = app.patch_json(&path, &portal.admin_token, &body).await;
    assert_eq!(resp.status(), 200, "{path}");
}

#[actix_web::test]
async fn a_kept_snapshot_follows_every_change_to_the_directory_whoever_makes_it() {
    let app = app_keeping_loads().await;
    let portal = app.setup_portal(50).await;
    let (first, employer) = (portal.provider.clone(), portal.employer.clone());
    let second = contracted(&app, &portal, "Second Care", 2, 50).await;
    let first_path = format!("/v1/admin/providers/{first}");
    let employer_path = format!("/v1/admin/employers/{employer}");
    let some = |s: &str| Some(s.to_owned());

    assert_eq!(offered_to(&app, &portal).await, some(&first), "priority 1");
    assert_eq!(
        offered_to(&app, &portal).await,
        some(&first),
        "kept, unchanged"
    );

    patch(
        &app,
        &portal,
        first_path.clone(),
        json!({"status": "paused"}),
    )
    .await;
    assert_eq!(offered_to(&app, &portal).await, some(&second), "paused");
    patch(
        &app,
        &portal,
        first_path.clone(),
        json!({"status": "active"}),
    )
    .await;
    assert_eq!(
        offered_to(&app, &portal).await,
        some(&first),
        "active again"
    );

    let affiliated = json!({"affiliated_provider_ids": [first]});
    patch(&app, &portal, employer_path.clone(), affiliated).await;
    assert_eq!(offered_to(&app, &portal).await, some(&second), "affiliated");
    let none = json!({"affiliated_provider_ids": []});
    patch(&app, &portal, employer_path, none).await;
    assert_eq!(offered_to(&app, &portal).await, some(&first), "no longer");

    patch(
        &app,
        &portal,
        first_path.clone(),
        json!({"services": ["legal"]}),
    )
    .await;
    assert_eq!(offered_to(&app, &portal).await, some(&second), "service");
    patch(
        &app,
        &portal,
        first_path.clone(),
        json!({"services": ["counselling"]}),
    )
    .await;
    assert_eq!(
        offered_to(&app, &portal).await,
        some(&first),
        "service back"
    );

    // A new provider at a better priority is seen at once.
    let third = contracted(&app, &portal, "Third Care", 0, 50).await;
    assert_eq!(
        offered_to(&app, &portal).await,
        some(&third),
        "a new contract"
    );

    // Changes made in SQL, as another instance or the previous release would make them,
    // without this instance's knowledge.
    app.exec(&format!(
        "UPDATE contracts SET active = false WHERE provider_id = '{third}'"
    ));
    assert_eq!(
        offered_to(&app, &portal).await,
        some(&first),
        "contract ended"
    );
    app.exec(&format!(
        "UPDATE providers SET status = 'paused' WHERE id = '{first}'"
    ));
    assert_eq!(
        offered_to(&app, &portal).await,
        some(&second),
        "paused in SQL"
    );
    app.exec(&format!(
        "DELETE FROM employer_affiliations WHERE employer_id = '{employer}'; \
         INSERT INTO employer_affiliations (employer_id, provider_id) VALUES ('{employer}', '{second}')"
    ));
    assert_eq!(offered_to(&app, &portal).await, None, "affiliated in SQL");

    // And the capacity: a provider lowered to what it holds is full at once.
    app.exec(&format!(
        "DELETE FROM employer_affiliations WHERE employer_id = '{employer}'; \
         UPDATE providers SET status = 'active' WHERE id = '{first}'"
    ));
    let held = app.provider_load(&first);
    patch(&app, &portal, first_path, json!({"capacity": held})).await;
    assert_eq!(offered_to(&app, &portal).await, some(&second), "full");
    assert_eq!(app.provider_load(&first), held, "never past its capacity");
}

#[actix_web::test]
async fn with_loads_kept_equal_providers_share_the_offers_and_none_passes_its_capacity() {
    let app = app_keeping_loads().await;
    let portal = app.setup_portal(3).await;
    let first = portal.provider.clone();
    let second = contracted(&app, &portal, "Second Care", 1, 3).await;

    // One after another: the instance counts its own offers in the loads it keeps, so equal
    // providers alternate rather than one taking every offer until the loads are read again.
    let mut offers = Vec::new();
    for _ in 0..4 {
        offers.push(offered_to(&app, &portal).await.expect("routed"));
    }
    let to = |p: &str| offers.iter().filter(|o| o.as_str() == p).count();
    assert_eq!((to(&first), to(&second)), (2, 2), "{offers:?}");

    // Then all at once, past the six slots there are: the claim decides, not the kept loads.
    let sends = (0..6).map(|_| offered_to(&app, &portal));
    let routed = futures_util::future::join_all(sends).await;
    assert_eq!(
        routed.iter().filter(|r| r.is_some()).count(),
        2,
        "{routed:?}"
    );
    assert_eq!(app.provider_load(&first), 3);
    assert_eq!(app.provider_load(&second), 3);
}
