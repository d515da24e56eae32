//! The provider's side of a referral, as the workflow suites drive it: a provider's token, its
//! event feed, its view of a referral (with the ETag), and the actions that need `If-Match`.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::{referral_body, Portal, TestApp};

/// A provider client for `provider_id`, and its token.
pub async fn provider_token(app: &TestApp, portal: &Portal, provider_id: &str) -> String {
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
pub async fn read_feed(
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

pub fn kinds(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["kind"].as_str().unwrap()).collect()
}

/// Submits the standard referral through the portal: its id and status token.
pub async fn submit(app: &TestApp, portal: &Portal) -> (String, String) {
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

/// The provider's view of a referral: status, ETag (empty when none) and body.
pub async fn get_referral(app: &TestApp, token: &str, id: &str) -> (StatusCode, String, Value) {
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

/// `POST /v1/provider/referrals/{id}/{what}`, with `If-Match: etag` and a JSON body when given.
pub async fn act(
    app: &TestApp,
    token: &str,
    id: &str,
    what: &str,
    etag: Option<&str>,
    body: Option<Value>,
) -> reqwest::Response {
    let path = format!("/v1/provider/referrals/{id}/{what}");
    let if_match: Vec<_> = etag.map(|e| ("if-match", e)).into_iter().collect();
    let mut req = app.request(Method::POST, &path, Some(token), &if_match);
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await.unwrap()
}

/// The status the portal sees for a referral, read with its status token.
pub async fn portal_status(app: &TestApp, portal: &Portal, id: &str, token: &str) -> String {
    let path = format!("/v1/referrals/{id}");
    let resp = app
        .portal_call(Method::GET, &path, &portal.token, token)
        .await;
    let v: Value = resp.json().await.unwrap();
    v["status"].as_str().unwrap().to_owned()
}
