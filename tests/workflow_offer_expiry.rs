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

#[actix_web::test]
async fn the_unroutable_age_counts_from_becoming_unroutable_not_from_submission() {
    let token = "m".repeat(40);
    let app = common::spawn_app_with(|v| {
        v.insert("EAP_METRICS_TOKEN".into(), "m".repeat(40));
    })
    .await;
    let portal = app.setup_portal(3).await;
    let (id, _) = submit(&app, &portal).await;
    // Submitted two days ago, its offer ran out an hour ago: the sweep now finds no provider
    // left to try, so it becomes unroutable now.
    {
        use diesel::prelude::*;
        use eap_referrals::db::schema::referrals::dsl as r;
        let now = eap_referrals::db::now();
        let mut conn = app.conn();
        diesel::update(r::referrals.find(&id))
            .set((
                r::created_at.eq(now - chrono::TimeDelta::hours(49)),
                r::updated_at.eq(now - chrono::TimeDelta::hours(49)),
                r::offer_expires_at.eq(Some(now - chrono::TimeDelta::hours(1))),
            ))
            .execute(&mut **conn)
            .unwrap();
    }
    assert_eq!(sweep_at(&app, 0), 1);
    assert_eq!(app.referral(&id).status, "unroutable");

    let text = app.get("/metrics", &token).await.text().await.unwrap();
    assert!(
        text.contains("eap_referrals_unroutable{urgency=\"routine\"} 1\n"),
        "{text}"
    );
    let age: f64 = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("eap_referrals_unroutable_oldest_age_seconds{urgency=\"routine\"} ")
        })
        .expect("the age gauge")
        .parse()
        .unwrap();
    assert!(
        (0.0..60.0).contains(&age),
        "seconds since it became unroutable, not the 49 h since submission: {age}"
    );
}
