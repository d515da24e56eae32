//! Offers a provider leaves unanswered: the sweeper expires each once, even when sweepers
//! race, and moves the referral on to a provider not yet tried.

mod common;

use common::provider::{kinds, provider_token, read_feed, submit};
use common::{spawn_app, TestApp};
use serde_json::json;

fn sweep_at(app: &TestApp, hours_from_now: i64) -> usize {
    let mut conn = app.conn();
    let now = eap_referrals::db::now() + chrono::TimeDelta::hours(hours_from_now);
    eap_referrals::workflow::sweep::sweep(
        &mut conn,
        &app.state.config.offer_ttl,
        &app.state.keys.master,
        now,
    )
    .unwrap()
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
                eap_referrals::workflow::sweep::sweep(
                    &mut conn,
                    &state.config.offer_ttl,
                    &state.keys.master,
                    now,
                )
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
