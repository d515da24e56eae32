//! The provider's event feed: every event delivered once and in commit order, whatever order
//! concurrent transactions commit in.

mod common;

use common::provider::{kinds, provider_token, read_feed, submit};
use common::spawn_app;
use eap_referrals::ids::{ProviderId, ReferralId};
use eap_referrals::workflow::model::FeedKind;
use serde_json::{json, Value};

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
        // A slow transaction (its event: `declined`) takes an event id, then a fast one
        // (`closed`) takes a later id and commits.
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let db = app.state.db.clone();
        let provider = portal.provider.clone();
        let slow_referral = first.clone();
        let slow = std::thread::spawn(move || {
            let mut conn = db.get().unwrap();
            eap_referrals::db::write_tx(&mut conn, |c| {
                eap_referrals::referrals::store::push_event(
                    c,
                    &ProviderId::from_trusted(provider),
                    &ReferralId::from_trusted(slow_referral),
                    FeedKind::Declined,
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
            eap_referrals::referrals::store::push_event(
                &mut conn,
                &ProviderId::from_trusted(portal.provider.clone()),
                &ReferralId::from_trusted(second.clone()),
                FeedKind::Closed,
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
        assert_eq!(kinds(&events), ["declined", "closed"]);
    }
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
            eap_referrals::referrals::store::push_event(c, &p, &r, FeedKind::Accepted, now())
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
            eap_referrals::referrals::store::push_event(c, &p, &r, FeedKind::Contacted, now())?; // lower id
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
    assert_eq!(kinds(&events), ["accepted"]);
    young_go.send(()).unwrap();
    young.join().unwrap();
    old.join().unwrap();
    let (events, _) = read_feed(&app, &token, Some(&cursor), 1).await;
    assert_eq!(
        kinds(&events),
        ["contacted"],
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
