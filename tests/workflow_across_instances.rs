//! Two instances of one deployment on one PostgreSQL database, taking turns at every call:
//! nothing duplicated, nothing lost.

mod common;

use common::provider::{act, get_referral, portal_status, provider_token, read_feed};
use common::{referral_body, spawn_app};
use serde_json::{json, Value};

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
    let b = a.spawn_another_instance().await;
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
