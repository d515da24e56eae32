//! Long polls on the provider's feed wake as soon as an event is committed, on the instance
//! that wrote it or on another.
//!
//! On PostgreSQL any open transaction in the cluster holds new events back, a `CREATE` or
//! `DROP DATABASE` included (each test app makes and drops one, and under load that takes
//! seconds). These tests time wake-ups in milliseconds, so they live apart from the feed-order
//! tests, whose transactions stay open on purpose, and take turns with each other.

mod common;

use common::provider::{provider_token, submit};
use common::{spawn_app, TestApp};
use serde_json::{json, Value};

/// Held for the whole of a test, the drop of its databases included.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Polls with `wait`, and returns how long after `trigger` ran the poll answered.
async fn wake_latency(
    poller: &TestApp,
    token: &str,
    trigger: impl std::future::Future<Output = ()>,
) -> (std::time::Duration, Value) {
    let poll = poller.get("/v1/provider/events?wait=10", token);
    let timed = async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        trigger.await;
        std::time::Instant::now()
    };
    let (resp, fired) = futures_util::future::join(poll, timed).await;
    let answered = std::time::Instant::now();
    (answered - fired, resp.json().await.unwrap())
}

#[actix_web::test]
async fn a_long_poll_wakes_as_soon_as_an_event_is_committed() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let app = spawn_app().await;
    let portal = app.setup_portal(3).await;
    let token = provider_token(&app, &portal, &portal.provider).await;
    let started = std::time::Instant::now();
    let empty = app.get("/v1/provider/events?wait=1", &token).await;
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(950),
        "waits when nothing happens"
    );
    assert_eq!(empty.json::<Value>().await.unwrap()["events"], json!([]));
    let prefer = app
        .get_with_headers("/v1/provider/events", Some(&token), &[("prefer", "wait=1")])
        .await;
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
    let _turn = ONE_AT_A_TIME.lock().await;
    let a = spawn_app().await;
    if a.backend != eap_referrals::db::Backend::Postgres {
        // Two instances share a database only on PostgreSQL (CI runs this suite there too);
        // SQLite wake-ups are in-process and covered by the test above.
        return;
    }
    // Instances of one deployment share the database and the keys.
    let b = a.spawn_another_instance().await;
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
