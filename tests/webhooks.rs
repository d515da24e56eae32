//! Webhooks: a provider's endpoints, signed id-only deliveries that are never lost, and the
//! outbound address policy. Receivers are small servers on 127.0.0.1 started by each test; no
//! test sends anything to an address outside loopback.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::provider::{provider_token, read_feed, submit};
use common::{problem, spawn_app_with, Portal, TestApp};
use reqwest::Method;
use serde_json::{json, Value};

/// One request a receiver got.
#[derive(Debug, Clone)]
struct Received {
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
    at: Instant,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
    fn id(&self) -> String {
        self.headers["webhook-id"].to_str().unwrap().to_owned()
    }
}

/// How a receiver answers: status and `Retry-After` (delay-seconds or an HTTP-date), given the
/// payload and how many requests came before.
type Answer = Arc<dyn Fn(&Value, usize) -> (u16, Option<String>) + Send + Sync>;

/// A webhook receiver on 127.0.0.1.
struct Receiver {
    url: String,
    seen: Arc<Mutex<Vec<Received>>>,
    server: actix_web::dev::ServerHandle,
}

impl Receiver {
    async fn start(answer: Answer) -> Receiver {
        Self::start_on(std::net::TcpListener::bind("127.0.0.1:0").unwrap(), answer).await
    }

    async fn start_on(listener: std::net::TcpListener, answer: Answer) -> Receiver {
        use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
        let port = listener.local_addr().unwrap().port();
        let seen: Arc<Mutex<Vec<Received>>> = Arc::default();
        let state = (seen.clone(), answer);
        let server = HttpServer::new(move || {
            let (seen, answer) = state.clone();
            App::new().default_service(web::to(move |req: HttpRequest, body: web::Bytes| {
                let (seen, answer) = (seen.clone(), answer.clone());
                async move {
                    let mut headers = reqwest::header::HeaderMap::new();
                    for (k, v) in req.headers() {
                        headers.insert(
                            reqwest::header::HeaderName::from_bytes(k.as_str().as_bytes()).unwrap(),
                            reqwest::header::HeaderValue::from_bytes(v.as_bytes()).unwrap(),
                        );
                    }
                    let payload: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    let n = {
                        let mut s = seen.lock().unwrap();
                        s.push(Received {
                            headers,
                            body: body.to_vec(),
                            at: Instant::now(),
                        });
                        s.len() - 1
                    };
                    let (mut status, retry_after) = answer(&payload, n);
                    if status == HOLD {
                        // Longer than the delivery timeout: the sender is killed meanwhile.
                        actix_web::rt::time::sleep(Duration::from_secs(30)).await;
                        status = 200;
                    }
                    let mut resp =
                        HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap());
                    if let Some(r) = retry_after {
                        resp.insert_header(("retry-after", r));
                    }
                    resp.finish()
                }
            }))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        Receiver {
            url: format!("http://127.0.0.1:{port}/hook"),
            seen,
            server: handle,
        }
    }

    fn seen(&self) -> Vec<Received> {
        self.seen.lock().unwrap().clone()
    }

    /// Waits (bounded) until `pred` holds for what arrived.
    async fn wait_for(&self, what: &str, pred: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let give_up = Instant::now() + Duration::from_secs(30);
        loop {
            let seen = self.seen();
            if pred(&seen) {
                return seen;
            }
            assert!(Instant::now() < give_up, "{what}: got {seen:?}");
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The distinct referral ids delivered as `referral.offered`.
    fn offered(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .seen()
            .iter()
            .map(Received::json)
            .filter(|p| p["type"] == "referral.offered")
            .map(|p| p["data"]["referral_id"].as_str().unwrap().to_owned())
            .collect();
        ids.dedup();
        ids
    }
}

/// An answer that holds the request open instead (30 s, beyond the 10 s delivery timeout).
const HOLD: u16 = 0;

fn always(status: u16) -> Answer {
    Arc::new(move |_, _| (status, None))
}

/// Asks `probe` every 50 ms until it answers `Some`, failing after 20 s with its last answer.
async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Value>>,
{
    let give_up = Instant::now() + Duration::from_secs(20);
    loop {
        match probe().await {
            Ok(found) => return found,
            Err(last) => assert!(Instant::now() < give_up, "{what}: {last}"),
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

/// GET `path` as JSON.
async fn read(app: &TestApp, token: &str, path: &str) -> Value {
    app.get(path, token).await.json().await.unwrap()
}

/// A service whose worker looks every 50 ms and retries after 100 ms, doubling.
async fn app_with_webhooks(extra: &'static [(&'static str, &'static str)]) -> TestApp {
    spawn_app_with(|v| {
        v.insert("EAP_WEBHOOK_ALLOW_LOOPBACK".into(), "true".into());
        v.insert("EAP_WEBHOOK_INTERVAL_MS".into(), "50".into());
        v.insert("EAP_WEBHOOK_RETRY_BASE_MS".into(), "100".into());
        for (k, val) in extra {
            v.insert((*k).into(), (*val).into());
        }
    })
    .await
}

async fn register(app: &TestApp, token: &str, url: &str) -> Value {
    let resp = app
        .post_json(
            "/v1/provider/webhooks",
            token,
            &json!({"url": url, "description": "case system"}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    resp.json().await.unwrap()
}

/// Rotates the endpoint's secret: the answer holds the new one.
async fn rotate(app: &TestApp, token: &str, id: &str) -> Value {
    let resp = app
        .post_json(
            &format!("/v1/provider/webhooks/{id}/rotate-secret"),
            token,
            &json!({}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

fn verify(secret: &str, r: &Received) -> bool {
    standardwebhooks::Webhook::new(secret)
        .unwrap()
        .verify(&r.body, &r.headers)
        .is_ok()
}

/// The `webhook.delivered` access events, after checking they name exactly `referral_ids`,
/// one each.
fn delivered_exactly(app: &TestApp, mut referral_ids: Vec<String>) -> Vec<common::AuditRow> {
    let delivered: Vec<_> = app
        .audit_rows()
        .into_iter()
        .filter(|r| r.action == "webhook.delivered")
        .collect();
    let mut ids: Vec<_> = delivered
        .iter()
        .filter_map(|r| r.resource_id.clone())
        .collect();
    ids.sort();
    referral_ids.sort();
    assert_eq!(ids, referral_ids);
    delivered
}

async fn setup(extra: &'static [(&'static str, &'static str)]) -> (TestApp, Portal, String) {
    let app = app_with_webhooks(extra).await;
    let portal = app.setup_portal(20).await;
    let token = provider_token(&app, &portal, &portal.provider).await;
    (app, portal, token)
}

#[actix_web::test]
async fn every_feed_event_arrives_signed_with_ids_only_and_the_cursor_resumes_the_feed() {
    let (app, portal, token) = setup(&[]).await;
    let receiver = Receiver::start(always(200)).await;
    let endpoint = register(&app, &token, &receiver.url).await;
    let secret = endpoint["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"));

    let (first, _) = submit(&app, &portal).await;
    let (second, _) = submit(&app, &portal).await;
    let seen = receiver.wait_for("two offers", |s| s.len() >= 2).await;

    for r in &seen {
        assert!(
            verify(secret, r),
            "an independent implementation verifies {r:?}"
        );
        let p = r.json();
        let keys: Vec<&String> = p.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["data", "timestamp", "type"], "id-only: {p}");
        let data: Vec<&String> = p["data"].as_object().unwrap().keys().collect();
        assert_eq!(data, ["cursor", "kind", "referral_id"], "id-only: {p}");
        assert_eq!(p["type"], "referral.offered");
        assert_eq!(p["data"]["kind"], "offered");
    }
    assert_eq!(
        receiver.offered(),
        [first.clone(), second.clone()],
        "feed order while healthy"
    );

    // The first webhook's cursor resumes the feed right after it: the second event is next.
    let cursor = seen[0].json()["data"]["cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    let (events, _) = read_feed(&app, &token, Some(&cursor), 1).await;
    assert_eq!(events[0]["referral_id"], second.as_str());

    // Each delivered referral id is an access event of the provider's client.
    let delivered = delivered_exactly(&app, vec![first, second]);
    assert!(delivered
        .iter()
        .all(|r| r.actor_role.as_deref() == Some("provider")));
}

#[actix_web::test]
async fn every_kind_a_provider_acts_on_or_is_told_of_is_pushed_with_its_own_type_and_ids_only() {
    let (app, portal, token) = setup(&[]).await;
    let receiver = Receiver::start(always(200)).await;
    let endpoint = register(&app, &token, &receiver.url).await;
    let secret = endpoint["secret"].as_str().unwrap().to_owned();
    let (accepted, _) = submit(&app, &portal).await;
    let (declined, _) = submit(&app, &portal).await;
    let (cancelled, cancel_token) = submit(&app, &portal).await;
    let (erased, _) = submit(&app, &portal).await;

    // Each comes from another path: the provider's own actions, the portal, an erasure.
    for (id, action, body) in [
        (&accepted, "accept", None),
        (&declined, "decline", Some(json!({"reason": "not_a_fit"}))),
    ] {
        let (_, etag, _) = common::provider::get_referral(&app, &token, id).await;
        let resp = common::provider::act(&app, &token, id, action, Some(&etag), body).await;
        assert!(resp.status().is_success(), "{action}: {}", resp.status());
    }
    let path = format!("/v1/referrals/{cancelled}/cancel");
    let resp = app
        .portal_call(Method::POST, &path, &portal.token, &cancel_token)
        .await;
    assert_eq!(resp.status(), 200);
    let path = format!("/v1/admin/referrals/{erased}/personal-data");
    assert_eq!(app.delete(&path, &portal.admin_token).await.status(), 204);

    let expected = [
        ("referral.accepted", &accepted),
        ("referral.declined", &declined),
        ("referral.cancelled", &cancelled),
        ("referral.erased", &erased),
    ];
    let seen = receiver
        .wait_for("each kind", |s| {
            let types: Vec<Value> = s.iter().map(|r| r.json()["type"].clone()).collect();
            expected.iter().all(|(t, _)| types.contains(&json!(t)))
        })
        .await;
    for (kind, id) in expected {
        let r = seen
            .iter()
            .find(|r| r.json()["type"] == kind)
            .expect("delivered");
        assert!(verify(&secret, r), "{kind} is signed");
        let p = r.json();
        assert_eq!(p["data"]["referral_id"], id.as_str(), "{kind}");
        assert_eq!(
            p["data"]["kind"],
            kind.trim_start_matches("referral."),
            "{kind}"
        );
        let data: Vec<&String> = p["data"].as_object().unwrap().keys().collect();
        assert_eq!(data, ["cursor", "kind", "referral_id"], "id-only: {p}");
    }
    // Nothing personal in any of them: the contact data the portal sent appears in no body.
    for r in &seen {
        let body = String::from_utf8_lossy(&r.body);
        for personal in ["Sam", "+447700900123", "sam@example.org", "EMP-0001"] {
            assert!(!body.contains(personal), "{personal} in {body}");
        }
    }
}

/// A receiver that answers every request with a 307 to `target`, counting the requests.
async fn redirecting_to(target: &str) -> (String, Arc<Mutex<usize>>) {
    use actix_web::{web, App, HttpResponse, HttpServer};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits: Arc<Mutex<usize>> = Arc::default();
    let (counted, target) = (hits.clone(), target.to_owned());
    let server = HttpServer::new(move || {
        let (counted, target) = (counted.clone(), target.clone());
        App::new().default_service(web::to(move || {
            *counted.lock().unwrap() += 1;
            let target = target.clone();
            async move {
                HttpResponse::TemporaryRedirect()
                    .insert_header(("location", target))
                    .finish()
            }
        }))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    actix_web::rt::spawn(server);
    (format!("http://127.0.0.1:{port}/hook"), hits)
}

#[actix_web::test]
async fn a_redirect_is_never_followed_and_counts_as_a_failed_attempt() {
    let (app, portal, token) = setup(&[]).await;
    // Where the redirect points (loopback, so allowed as a URL): it must never be called.
    let elsewhere = Receiver::start(always(200)).await;
    let (url, hits) = redirecting_to(&elsewhere.url).await;
    let endpoint = register(&app, &token, &url).await;
    submit(&app, &portal).await;

    let deliveries = format!(
        "/v1/provider/webhooks/{}/deliveries",
        endpoint["id"].as_str().unwrap()
    );
    eventually(
        "the 307 recorded as a failed attempt with a retry",
        || async {
            let attempts = read(&app, &token, &deliveries).await;
            let items = attempts["items"].as_array().unwrap();
            let redirected =
                |a: &Value| a["status_code"] == 307 && a["next_attempt_at"].is_string();
            (items.len() >= 2 && items.iter().all(redirected))
                .then_some(())
                .ok_or(attempts)
        },
    )
    .await;
    assert!(
        *hits.lock().unwrap() >= 2,
        "the redirecting receiver was tried again"
    );
    assert!(
        elsewhere.seen().is_empty(),
        "the redirect was followed: {:?}",
        elsewhere.seen()
    );
}

#[actix_web::test]
async fn during_a_rotation_both_the_old_and_the_new_secret_verify() {
    let (app, portal, token) = setup(&[]).await;
    let receiver = Receiver::start(always(200)).await;
    let endpoint = register(&app, &token, &receiver.url).await;
    let old = endpoint["secret"].as_str().unwrap().to_owned();
    let id = endpoint["id"].as_str().unwrap();

    let rotated = rotate(&app, &token, id).await;
    let new = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert!(rotated["previous_secret_valid_until"].is_string());

    submit(&app, &portal).await;
    let seen = receiver.wait_for("one offer", |s| !s.is_empty()).await;
    let signatures = seen[0].headers["webhook-signature"].to_str().unwrap();
    assert_eq!(signatures.split(' ').count(), 2, "{signatures}");
    assert!(verify(&old, &seen[0]), "the old secret still verifies");
    assert!(verify(&new, &seen[0]), "the new secret verifies");
    let other = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    assert!(!verify(other, &seen[0]), "another secret does not");
}

#[actix_web::test]
async fn a_receiver_that_is_down_gets_every_event_with_a_stable_id() {
    let (app, portal, token) = setup(&[]).await;
    // A port nobody listens on yet: connections are refused.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let url = format!("http://{addr}/hook");
    let endpoint = register(&app, &token, &url).await;
    let id = endpoint["id"].as_str().unwrap().to_owned();
    let (first, _) = submit(&app, &portal).await;
    let (second, _) = submit(&app, &portal).await;

    // Refused at least once…
    let deliveries = format!("/v1/provider/webhooks/{id}/deliveries");
    eventually("a refused attempt", || async {
        let attempts = read(&app, &token, &deliveries).await;
        let items = attempts["items"].as_array().unwrap();
        let refused = |a: &Value| a["error"] == "connect" && a["next_attempt_at"].is_string();
        items.iter().any(refused).then_some(()).ok_or(attempts)
    })
    .await;
    // …then up, answering 503 with Retry-After: 1 to its first request, then 200.
    let receiver = Receiver::start_on(
        std::net::TcpListener::bind(addr).unwrap(),
        Arc::new(|_, n| {
            if n == 0 {
                (503, Some("1".into()))
            } else {
                (200, None)
            }
        }),
    )
    .await;
    let seen = receiver
        .wait_for("both offers after the 503", |s| {
            let ok: Vec<_> = s.iter().skip(1).map(Received::json).collect();
            [&first, &second]
                .iter()
                .all(|id| ok.iter().any(|p| p["data"]["referral_id"] == id.as_str()))
        })
        .await;
    // The 503'd delivery came again with the same webhook-id, not sooner than Retry-After.
    let refused = &seen[0];
    let again = seen[1..]
        .iter()
        .find(|r| r.json()["data"] == refused.json()["data"])
        .expect("the 503'd event is retried");
    assert_eq!(again.id(), refused.id());
    let ids: std::collections::HashSet<String> = seen.iter().map(Received::id).collect();
    assert_eq!(ids.len(), 2, "one id per event");
    receiver.server.stop(false).await;
}

#[actix_web::test]
async fn a_retry_after_http_date_is_honoured() {
    let (app, portal, token) = setup(&[]).await;
    // The first request is answered 503 with `Retry-After` as an HTTP-date 3 s ahead (whole
    // seconds, so at least 2 s from now); the backoff alone would retry after ~100 ms.
    let receiver = Receiver::start(Arc::new(|_, n| {
        if n == 0 {
            let at = chrono::Utc::now() + chrono::TimeDelta::seconds(3);
            (
                503,
                Some(at.format("%a, %d %b %Y %H:%M:%S GMT").to_string()),
            )
        } else {
            (200, None)
        }
    }))
    .await;
    register(&app, &token, &receiver.url).await;
    submit(&app, &portal).await;
    let seen = receiver.wait_for("the offer again", |s| s.len() >= 2).await;
    assert_eq!(seen[1].id(), seen[0].id(), "the same delivery, retried");
    let waited = seen[1].at - seen[0].at;
    assert!(
        waited >= Duration::from_secs(2),
        "retried {waited:?} after a 503 asking for 3 s by date"
    );
    // …and not much later than asked (a bound, not a timing claim: the worker looks every
    // 50 ms).
    assert!(waited < Duration::from_secs(10), "{waited:?}");
    receiver.server.stop(false).await;
}

#[actix_web::test]
async fn an_event_that_keeps_failing_does_not_hold_back_later_ones() {
    let (app, portal, token) = setup(&[]).await;
    // The receiver refuses every `ping` (500) and takes everything else.
    let receiver = Receiver::start(Arc::new(|p, _| {
        if p["type"] == "ping" {
            (500, None)
        } else {
            (200, None)
        }
    }))
    .await;
    let endpoint = register(&app, &token, &receiver.url).await;
    let id = endpoint["id"].as_str().unwrap();
    let resp = app
        .post_json(
            &format!("/v1/provider/webhooks/{id}/ping"),
            &token,
            &json!({}),
        )
        .await;
    assert_eq!(resp.status(), 202);
    receiver.wait_for("the ping, twice", |s| s.len() >= 2).await;
    let (later, _) = submit(&app, &portal).await;
    let (latest, _) = submit(&app, &portal).await;
    let seen = receiver
        .wait_for("the offers behind the failing ping", |s| {
            let ids: Vec<Value> = s
                .iter()
                .map(|r| r.json()["data"]["referral_id"].clone())
                .collect();
            ids.contains(&json!(later)) && ids.contains(&json!(latest))
        })
        .await;
    let pings: Vec<&Received> = seen.iter().filter(|r| r.json()["type"] == "ping").collect();
    assert!(pings.len() >= 2, "the ping is still being retried");
    assert!(
        pings.iter().all(|p| p.id() == pings[0].id()),
        "with one webhook-id"
    );
}

/// A receiver that takes the whole delivery timeout holds back only its own deliveries: another
/// provider's event, committed while that request hangs, arrives at once.
#[actix_web::test]
async fn a_receiver_that_never_answers_does_not_hold_back_other_endpoints() {
    let (app, _portal, slow_token) = setup(&[]).await;
    let other = app.setup_portal(20).await;
    let fast_token = provider_token(&app, &other, &other.provider).await;
    let slow = Receiver::start(always(HOLD)).await;
    let fast = Receiver::start(always(200)).await;
    let slow_id = register(&app, &slow_token, &slow.url).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let fast_id = register(&app, &fast_token, &fast.url).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let ping = |token: &str, id: &str| {
        let path = format!("/v1/provider/webhooks/{id}/ping");
        let token = token.to_owned();
        let app = &app;
        async move {
            let resp = app.post_json(&path, &token, &json!({})).await;
            assert_eq!(resp.status(), 202);
        }
    };
    ping(&slow_token, &slow_id).await;
    let hanging = slow
        .wait_for("the ping that hangs", |s| !s.is_empty())
        .await;
    let hung_at = hanging[0].at;
    ping(&fast_token, &fast_id).await;
    let arrived = fast
        .wait_for("the other endpoint's ping", |s| !s.is_empty())
        .await;
    let waited = arrived[0].at - hung_at;
    assert!(
        waited < Duration::from_secs(5),
        "the other endpoint waited {waited:?} behind a receiver that takes the 10 s timeout"
    );
}

#[actix_web::test]
async fn the_attempts_list_pages_newest_first_with_a_cursor() {
    let (app, _portal, token) = setup(&[]).await;
    // The first request is refused (503), so the first ping has two attempts: the cursor must
    // tell attempts of one delivery apart, not only deliveries.
    let receiver = Receiver::start(Arc::new(
        |_, n| if n == 0 { (503, None) } else { (200, None) },
    ))
    .await;
    let endpoint = register(&app, &token, &receiver.url).await;
    let id = endpoint["id"].as_str().unwrap();
    let ping = format!("/v1/provider/webhooks/{id}/ping");
    for _ in 0..3 {
        assert_eq!(app.post_json(&ping, &token, &json!({})).await.status(), 202);
    }
    receiver
        .wait_for("three pings, one twice", |s| s.len() >= 4)
        .await;
    let deliveries = format!("/v1/provider/webhooks/{id}/deliveries");
    let everything = eventually("four attempts recorded", || async {
        let all = read(&app, &token, &deliveries).await;
        (all["items"].as_array().unwrap().len() == 4)
            .then(|| all.clone())
            .ok_or(all)
    })
    .await;
    assert!(
        everything["next_cursor"].is_null(),
        "one page: {everything}"
    );
    let key = |a: &Value| {
        (
            a["webhook_id"].as_str().unwrap().to_owned(),
            a["attempt"].as_i64().unwrap(),
        )
    };
    let all: Vec<_> = everything["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(key)
        .collect();

    // Two at a time: full pages carry a cursor, and the pages together are the whole list, in
    // the same order, nothing repeated.
    let mut paged = Vec::new();
    let mut path = format!("{deliveries}?limit=2");
    let mut pages = 0;
    loop {
        let page = read(&app, &token, &path).await;
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2, "{page}");
        paged.extend(items.iter().map(key));
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(c) => {
                assert_eq!(items.len(), 2, "only a full page has a cursor: {page}");
                path = format!("{deliveries}?limit=2&after={c}");
            }
            None => break,
        }
        assert!(pages < 5, "the pages end");
    }
    assert_eq!(paged, all);
    let first = all.last().unwrap();
    let retried: Vec<_> = all.iter().filter(|(w, _)| *w == first.0).collect();
    assert_eq!(retried.len(), 2, "the first ping's two attempts: {all:?}");

    // A cursor that is not of the documented form is a 422 naming `after`; so is a bad limit.
    for bad in [
        "after=abc",
        "after=1.",
        "after=.1",
        "after=1.1234567890",
        "after=0190f5c4-0000-7000-8000-000000000000",
        "limit=0",
        "limit=201",
    ] {
        let body = problem(app.get(&format!("{deliveries}?{bad}"), &token).await, 422).await;
        let name = bad.split('=').next().unwrap();
        assert_eq!(body["errors"][0]["parameter"], name, "{bad}: {body}");
    }
    receiver.server.stop(false).await;
}

#[actix_web::test]
async fn a_receiver_answering_410_disables_its_endpoint() {
    let (app, portal, token) = setup(&[]).await;
    let receiver = Receiver::start(always(410)).await;
    let endpoint = register(&app, &token, &receiver.url).await;
    let id = endpoint["id"].as_str().unwrap();
    submit(&app, &portal).await;
    receiver.wait_for("the offer", |s| !s.is_empty()).await;
    let path = format!("/v1/provider/webhooks/{id}");
    eventually("the endpoint disabled", || async {
        let view = read(&app, &token, &path).await;
        (view["status"] == "disabled").then_some(()).ok_or(view)
    })
    .await;
    submit(&app, &portal).await;
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.seen().len(), 1, "nothing more is sent");
    let resp = app
        .post_json(
            &format!("/v1/provider/webhooks/{id}/ping"),
            &token,
            &json!({}),
        )
        .await;
    problem(resp, 409).await;
}

#[actix_web::test]
async fn retries_run_out_after_the_configured_time_and_the_admin_sees_the_endpoint_failing() {
    let (app, portal, token) = setup(&[("EAP_WEBHOOK_RETRY_FOR_SECS", "2")]).await;
    let receiver = Receiver::start(always(503)).await;
    let endpoint = register(&app, &token, &receiver.url).await;
    let id = endpoint["id"].as_str().unwrap().to_owned();
    submit(&app, &portal).await;
    eventually("the admin sees the endpoint failing", || async {
        let page = read(&app, &portal.admin_token, "/v1/admin/provider-webhooks").await;
        let items = page["items"].as_array().unwrap();
        let item = items.iter().find(|e| e["id"] == id.as_str()).unwrap();
        (item["status"] == "failing")
            .then_some(())
            .ok_or(item.clone())
    })
    .await;
    let attempts = read(
        &app,
        &token,
        &format!("/v1/provider/webhooks/{id}/deliveries"),
    )
    .await;
    let items = attempts["items"].as_array().unwrap();
    assert!(items.len() >= 2, "retried before giving up: {attempts}");
    assert!(
        items[0]["next_attempt_at"].is_null(),
        "the last attempt: {attempts}"
    );
    assert!(items.iter().all(|a| a["status_code"] == 503));

    // The admin disables it: nothing more is sent, even a ping.
    let resp = app
        .post_json(
            &format!("/v1/admin/provider-webhooks/{id}/disable"),
            &portal.admin_token,
            &json!({}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let view: Value = resp.json().await.unwrap();
    assert_eq!(view["status"], "disabled");
}

/// Sends `method path` as `token`: refused with `status`, and the refusal is one access event.
async fn refused_and_logged(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    status: u16,
) -> common::AuditRow {
    let resp = app
        .request(method.clone(), path, Some(token), &[])
        .send()
        .await
        .unwrap();
    let request_id = common::request_id(&resp);
    problem(resp, status).await;
    let mut rows = app.audit_for_request(&request_id);
    assert_eq!(rows.len(), 1, "{method} {path} logged");
    assert_eq!(rows[0].http_status, i32::from(status));
    rows.remove(0)
}

/// With endpoint `id` registered at `path`, four more fill the owner's five; the sixth is a
/// logged 409. Then `id` is deleted, and gone for good.
async fn at_most_five_then_delete(app: &TestApp, token: &str, path: &str, id: &str) {
    for n in 0..4 {
        let url = format!("http://127.0.0.1:9/hook{n}");
        let resp = app.post_json(path, token, &json!({ "url": url })).await;
        assert_eq!(resp.status(), 201);
    }
    let sixth = json!({"url": "http://127.0.0.1:9/6"});
    let resp = app.post_json(path, token, &sixth).await;
    let request_id = common::request_id(&resp);
    problem(resp, 409).await;
    assert_eq!(app.audit_for_request(&request_id)[0].http_status, 409);

    let resp = app.delete(&format!("{path}/{id}"), token).await;
    assert_eq!(resp.status(), 204);
    problem(app.get(&format!("{path}/{id}"), token).await, 404).await;
}

#[actix_web::test]
async fn endpoints_are_the_providers_own_and_every_change_is_logged() {
    // Nothing listens on the discard port, and nothing is ever sent (the worker is off).
    let (app, portal, token) = setup(&[("EAP_WEBHOOK_DELIVERY", "off")]).await;
    let created = register(&app, &token, "http://127.0.0.1:9/hook?key=abc").await;
    let id = created["id"].as_str().unwrap().to_owned();

    // Listed and read without the secret.
    let page: Value = app
        .get("/v1/provider/webhooks", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert!(page["items"][0].get("secret").is_none());
    let one: Value = app
        .get(&format!("/v1/provider/webhooks/{id}"), &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(one["status"], "active");
    assert!(one.get("secret").is_none());

    // Another provider's client sees none of it: 404 on every route, logged as refusals.
    let other = app.create_provider(&portal.admin_token, "Elsewhere").await;
    let other_token = provider_token(&app, &portal, &other).await;
    let page: Value = app
        .get("/v1/provider/webhooks", &other_token)
        .await
        .json()
        .await
        .unwrap();
    assert!(page["items"].as_array().unwrap().is_empty());
    for (method, path) in [
        (Method::GET, format!("/v1/provider/webhooks/{id}")),
        (Method::DELETE, format!("/v1/provider/webhooks/{id}")),
        (
            Method::POST,
            format!("/v1/provider/webhooks/{id}/rotate-secret"),
        ),
        (Method::POST, format!("/v1/provider/webhooks/{id}/ping")),
        (
            Method::GET,
            format!("/v1/provider/webhooks/{id}/deliveries"),
        ),
    ] {
        refused_and_logged(&app, method, &path, &other_token, 404).await;
    }
    // The portal's role is not a provider's: 403.
    let resp = app.get("/v1/provider/webhooks", &portal.token).await;
    problem(resp, 403).await;

    at_most_five_then_delete(&app, &token, "/v1/provider/webhooks", &id).await;
    // An admin sees every provider's endpoints.
    let all: Value = app
        .get("/v1/admin/provider-webhooks", &portal.admin_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(all["items"].as_array().unwrap().len(), 4);
    let resp = app
        .post_json(
            "/v1/admin/provider-webhooks/0190f5c4-0000-7000-8000-000000000000/disable",
            &portal.admin_token,
            &json!({}),
        )
        .await;
    problem(resp, 404).await;
}

#[actix_web::test]
async fn urls_naming_refused_addresses_are_422_naming_the_field() {
    // Loopback is not allowed here, as in production.
    let app = spawn_app_with(|v| {
        v.insert("EAP_WEBHOOK_ALLOW_LOOPBACK".into(), "false".into());
    })
    .await;
    let portal = app.setup_portal(5).await;
    let token = provider_token(&app, &portal, &portal.provider).await;
    for url in [
        "http://127.0.0.1/hook",
        "http://10.0.0.1/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0.0.0.0/hook",
        "http://100.64.0.1/hook",
        "http://[fd00::1]/hook",
        "https://user:secret@example.org/hook",
        "ftp://example.org/hook",
    ] {
        let resp = app
            .post_json("/v1/provider/webhooks", &token, &json!({"url": url}))
            .await;
        let body = problem(resp, 422).await;
        assert_eq!(body["errors"][0]["pointer"], "/url", "{url}: {body}");
        assert!(
            !body.to_string().contains(url),
            "the URL is not echoed: {body}"
        );
    }
}

#[actix_web::test]
async fn a_name_resolving_to_loopback_is_refused_when_loopback_is_not_allowed() {
    let app = spawn_app_with(|v| {
        v.insert("EAP_WEBHOOK_ALLOW_LOOPBACK".into(), "false".into());
        v.insert("EAP_WEBHOOK_INTERVAL_MS".into(), "50".into());
        v.insert("EAP_WEBHOOK_RETRY_BASE_MS".into(), "100".into());
    })
    .await;
    let portal = app.setup_portal(5).await;
    let token = provider_token(&app, &portal, &portal.provider).await;
    let receiver = Receiver::start(always(200)).await;
    let port = receiver
        .url
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap();
    let endpoint = register(&app, &token, &format!("http://localhost:{port}/hook")).await;
    let id = endpoint["id"].as_str().unwrap();
    submit(&app, &portal).await;
    let deliveries = format!("/v1/provider/webhooks/{id}/deliveries");
    let first = eventually("an attempt", || async {
        let attempts = read(&app, &token, &deliveries).await;
        attempts["items"].get(0).cloned().ok_or(attempts)
    })
    .await;
    assert_eq!(first["error"], "address_refused", "{first}");
    assert!(first["status_code"].is_null());
    assert!(
        receiver.seen().is_empty(),
        "no request reached the receiver"
    );
}

#[actix_web::test]
async fn the_client_refuses_a_private_address_before_connecting() {
    use eap_referrals::webhooks::client::Client;
    use eap_referrals::webhooks::model::AddressPolicy;
    // Even with loopback allowed, 10.0.0.1 is refused by the policy check that runs before the
    // client is called: the error is the policy's, never a connection's or a timeout's (the
    // timeout here is long, and the answer comes at once).
    let client = Client::new(
        AddressPolicy {
            allow_loopback: true,
        },
        false,
        Duration::from_secs(30),
    );
    for url in [
        "http://10.0.0.1/hook",
        "http://169.254.169.254/latest",
        "http://[::ffff:10.0.0.1]/hook",
        "http://0.0.0.0/hook",
    ] {
        let started = Instant::now();
        let sent = client.send(url, vec![], b"{}".to_vec()).await;
        assert_eq!(sent.error, Some("address_refused"), "{url}");
        assert_eq!(sent.status, None);
        assert!(started.elapsed() < Duration::from_secs(1), "{url}");
    }
}

#[actix_web::test]
async fn two_instances_deliver_each_event_once() {
    let (app, portal, token) = setup(&[]).await;
    if app.backend != eap_referrals::db::Backend::Postgres {
        // One SQLite database has one instance; the PostgreSQL run covers this.
        return;
    }
    let other = app.spawn_another_instance().await;
    let receiver = Receiver::start(always(200)).await;
    register(&app, &token, &receiver.url).await;
    let mut submitted = Vec::new();
    for _ in 0..10 {
        submitted.push(submit(&app, &portal).await.0);
    }
    let seen = receiver.wait_for("ten offers", |s| s.len() >= 10).await;
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    let seen_after = receiver.seen();
    assert_eq!(seen_after.len(), seen.len(), "no duplicates arrived later");
    let mut ids: Vec<String> = seen.iter().map(Received::id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 10, "each event once");
    drop(other);
}

#[actix_web::test]
async fn metrics_count_deliveries_and_the_unroutable_queue() {
    let (app, portal, token) = setup(&[(
        "EAP_METRICS_TOKEN",
        "mmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmm",
    )])
    .await;
    let receiver = Receiver::start(always(200)).await;
    register(&app, &token, &receiver.url).await;
    submit(&app, &portal).await;
    receiver.wait_for("the offer", |s| !s.is_empty()).await;
    actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    let text = app
        .get("/metrics", &"m".repeat(40))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("eap_webhook_deliveries_total{outcome=\"delivered\"} 1\n"),
        "{text}"
    );
    assert!(text.contains("eap_webhook_delivery_duration_seconds_count 1\n"));
    assert!(text.contains("eap_webhook_retries_pending 0\n"));
    assert!(text.contains("eap_referrals_unroutable{urgency=\"crisis\"} 0\n"));
}

#[actix_web::test]
async fn an_event_committed_before_a_sigkill_is_delivered_after_the_restart() {
    // The test's own app only arranges (its worker is off); the real binary delivers.
    let (app, portal, token) = setup(&[("EAP_WEBHOOK_DELIVERY", "off")]).await;
    let receiver = Receiver::start(always(200)).await;
    register(&app, &token, &receiver.url).await;
    let vars = |delivery: &str| {
        let mut v = std::collections::HashMap::new();
        for (k, val) in [
            ("EAP_DATABASE_URL", app.database_url_var()),
            ("EAP_DATA_DIR", app.data_dir.path().display().to_string()),
            ("EAP_LISTEN", "127.0.0.1:0".into()),
            ("EAP_HOUSEKEEPING", "off".into()),
            ("EAP_WEBHOOK_ALLOW_LOOPBACK", "true".into()),
            ("EAP_WEBHOOK_INTERVAL_MS", "50".into()),
            ("EAP_WEBHOOK_DELIVERY", delivery.into()),
        ] {
            v.insert(k.to_owned(), val);
        }
        v
    };
    // A server that has not delivered yet (its worker is off, so the timing cannot race) is
    // killed with SIGKILL after the event committed.
    let first = common::Binary::start(&vars("off"));
    let (referral, _) = submit(&app, &portal).await;
    first.stop(); // SIGKILL
    assert!(
        receiver.seen().is_empty(),
        "nothing was sent before the kill"
    );

    let second = common::Binary::start(&vars("on"));
    let seen = receiver
        .wait_for("the offer after the restart", |s| !s.is_empty())
        .await;
    assert_eq!(seen[0].json()["data"]["referral_id"], referral.as_str());
    second.stop();
}

#[actix_web::test]
async fn a_sigkill_while_deliveries_are_claimed_and_in_flight_loses_none_and_keeps_their_ids() {
    // The test's own app only arranges (its worker is off); the real binary delivers.
    let (app, portal, token) = setup(&[("EAP_WEBHOOK_DELIVERY", "off")]).await;
    // The first request is held open (the sender is killed while waiting for the answer);
    // everything after is taken.
    let receiver = Receiver::start(Arc::new(
        |_, n| if n == 0 { (HOLD, None) } else { (200, None) },
    ))
    .await;
    register(&app, &token, &receiver.url).await;
    let url = app.database_url_var();
    let vars = {
        let mut v = std::collections::HashMap::new();
        for (k, val) in [
            ("EAP_DATABASE_URL", url.clone()),
            ("EAP_DATA_DIR", app.data_dir.path().display().to_string()),
            ("EAP_LISTEN", "127.0.0.1:0".into()),
            ("EAP_HOUSEKEEPING", "off".into()),
            ("EAP_WEBHOOK_ALLOW_LOOPBACK", "true".into()),
            ("EAP_WEBHOOK_INTERVAL_MS", "50".into()),
            // A short claim, so the restarted instance takes the dead one's deliveries soon.
            ("EAP_WEBHOOK_LEASE_SECS", "2".into()),
        ] {
            v.insert(k.to_owned(), val);
        }
        v
    };
    // Three events committed before the instance starts: its first pass claims all three,
    // sends the first (held open) and holds the other two behind it, in feed order.
    let mut referrals = Vec::new();
    for _ in 0..3 {
        referrals.push(submit(&app, &portal).await.0);
    }
    let first = common::Binary::start(&vars);
    let in_flight = receiver
        .wait_for("the first offer in flight", |s| !s.is_empty())
        .await;
    assert_eq!(
        in_flight[0].json()["data"]["referral_id"],
        referrals[0].as_str()
    );
    let claimed = common::count_in(
        &url,
        "SELECT count(*) AS n FROM webhook_deliveries WHERE state = 'pending' AND attempts = 0",
    );
    assert_eq!(
        claimed, 3,
        "all three still pending, none recorded as attempted"
    );
    first.crash(); // SIGKILL while the first is in flight and the others wait behind it
    assert_eq!(
        common::count_in(&url, "SELECT count(*) AS n FROM webhook_attempts"),
        0,
        "the killed instance recorded nothing"
    );

    let second = common::Binary::start(&vars);
    let seen = receiver
        .wait_for("every offer answered after the restart", |s| {
            let after: Vec<Value> = s[1..]
                .iter()
                .map(|r| r.json()["data"]["referral_id"].clone())
                .collect();
            referrals.iter().all(|r| after.contains(&json!(r)))
        })
        .await;
    // The event that was in flight comes again with the webhook-id it had.
    let again: Vec<&Received> = seen[1..]
        .iter()
        .filter(|r| r.json()["data"] == in_flight[0].json()["data"])
        .collect();
    assert!(!again.is_empty(), "the in-flight event is sent again");
    assert!(
        again.iter().all(|r| r.id() == in_flight[0].id()),
        "with the same webhook-id"
    );
    // One webhook-id per event, and each event delivered: nothing lost.
    let ids: std::collections::HashSet<String> = seen.iter().map(Received::id).collect();
    assert_eq!(ids.len(), 3, "one id per event");
    let delivered = eventually("all three recorded as delivered", || async {
        let n = common::count_in(
            &url,
            "SELECT count(*) AS n FROM webhook_deliveries WHERE state = 'delivered'",
        );
        (n == 3).then_some(n).ok_or(json!(n))
    })
    .await;
    assert_eq!(delivered, 3);
    second.stop();
}

#[actix_web::test]
async fn a_delivered_body_matches_the_documents_webhook_schema() {
    let (app, portal, token) = setup(&[]).await;
    let receiver = Receiver::start(always(200)).await;
    register(&app, &token, &receiver.url).await;
    submit(&app, &portal).await;
    let seen = receiver.wait_for("the offer", |s| !s.is_empty()).await;
    let document = serde_json::to_value(eap_referrals::openapi::spec()).unwrap();
    let operation = &document["webhooks"]["referralEvent"]["post"];
    let reference = &operation["requestBody"]["content"]["application/json"]["schema"];
    let schema = json!({"$ref": reference["$ref"], "components": document["components"]});
    let validator = jsonschema::validator_for(&schema).unwrap();
    assert!(validator.is_valid(&seen[0].json()), "{}", seen[0].json());
    let headers: Vec<&str> = operation["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for h in &headers {
        assert!(seen[0].headers.contains_key(*h), "{h} is sent");
    }
}

#[actix_web::test]
async fn no_referral_id_is_sent_before_its_access_event_is_written_and_a_retry_writes_no_second() {
    let (app, portal, token) = setup(&[]).await;
    // The receiver's first answer is a 503, so the delivery is retried once it goes out.
    let receiver = Receiver::start(Arc::new(
        |_, n| {
            if n == 0 {
                (503, None)
            } else {
                (200, None)
            }
        },
    ))
    .await;
    let endpoint = register(&app, &token, &receiver.url).await;
    let id = endpoint["id"].as_str().unwrap().to_owned();
    // Only the delivery's own access event fails: the submission and the reads still log.
    app.break_audit_log_when("NEW.action = 'webhook.delivered'");
    let (referral, _) = submit(&app, &portal).await;

    // The worker looks every 50 ms and holds the delivery 100 ms at a time: many chances to
    // send, none taken.
    actix_web::rt::time::sleep(Duration::from_millis(1500)).await;
    assert!(receiver.seen().is_empty(), "nothing reaches the receiver");
    let deliveries = format!("/v1/provider/webhooks/{id}/deliveries");
    let attempts = read(&app, &token, &deliveries).await;
    assert_eq!(attempts["items"], json!([]), "no attempt counted");

    app.repair_audit_log();
    let seen = receiver
        .wait_for("the 503 and its retry", |s| s.len() >= 2)
        .await;
    assert_eq!(seen[0].id(), seen[1].id(), "the same delivery, retried");
    assert_eq!(seen[1].json()["data"]["referral_id"], referral.as_str());
    eventually("the retry recorded as delivered", || async {
        let attempts = read(&app, &token, &deliveries).await;
        (attempts["items"][0]["status_code"] == 200)
            .then_some(())
            .ok_or(attempts)
    })
    .await;
    let rows = app.audit_rows();
    let registrar = rows
        .iter()
        .find(|r| r.action == "webhook.create")
        .and_then(|r| r.actor_client_id.clone());
    let logged: Vec<_> = rows
        .into_iter()
        .filter(|r| r.action == "webhook.delivered")
        .collect();
    assert_eq!(
        logged.len(),
        1,
        "one access event across retries: {logged:?}"
    );
    assert_eq!(logged[0].resource_id.as_deref(), Some(referral.as_str()));
    assert_eq!(logged[0].actor_role.as_deref(), Some("provider"));
    assert_eq!(
        logged[0].actor_client_id, registrar,
        "the registering client"
    );
}

/// Whether `needle` is anywhere the database keeps data: SQLite's files (the database, its
/// write-ahead log and shared memory), or every row of PostgreSQL's `webhook_endpoints` as
/// text.
fn stored_anywhere(app: &TestApp, needle: &str) -> bool {
    use diesel::RunQueryDsl;
    match app.backend {
        eap_referrals::db::Backend::Sqlite => std::fs::read_dir(app.data_dir.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("eap.sqlite3"))
            .any(|e| {
                let bytes = std::fs::read(e.path()).unwrap();
                bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
            }),
        eap_referrals::db::Backend::Postgres => {
            #[derive(diesel::QueryableByName)]
            struct Row {
                #[diesel(sql_type = diesel::sql_types::Text)]
                row: String,
            }
            let rows: Vec<Row> =
                diesel::sql_query("SELECT CAST(w AS TEXT) AS row FROM webhook_endpoints w")
                    .load(&mut **app.conn())
                    .unwrap();
            rows.iter().any(|r| r.row.contains(needle))
        }
    }
}

#[actix_web::test]
async fn signing_secrets_are_stored_sealed_and_still_sign_after_keys_rotate_master() {
    const M1: &str = "m1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
    const M2: &str = "m2:AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";
    // This instance sends nothing: after the rotation it could not open the secrets.
    let (app, portal, token) =
        setup(&[("EAP_MASTER_KEY", M1), ("EAP_WEBHOOK_DELIVERY", "off")]).await;
    let receiver = Receiver::start(always(200)).await;
    let created = register(&app, &token, &receiver.url).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let first = created["secret"].as_str().unwrap().to_owned();
    let rotated = rotate(&app, &token, &id).await;
    let second = rotated["secret"].as_str().unwrap().to_owned();

    let url_stored = receiver.url.trim_start_matches("http://");
    assert!(
        stored_anywhere(&app, url_stored),
        "the search finds what is stored"
    );
    for secret in [&first, &second] {
        let key = secret.strip_prefix("whsec_").unwrap();
        assert!(!stored_anywhere(&app, key), "{secret} is stored in plain");
    }

    let (url, dir) = (
        app.database_url_var(),
        app.data_dir.path().display().to_string(),
    );
    let vars = std::collections::HashMap::from([
        ("EAP_DATABASE_URL".to_owned(), url.clone()),
        ("EAP_DATA_DIR".to_owned(), dir.clone()),
        ("EAP_MASTER_KEY".to_owned(), format!("{M2}\n{M1}")),
    ]);
    let said = common::Binary::run(&vars, &["keys", "rotate-master"]);
    assert!(
        said.contains("re-sealed 1 webhook secret(s) under master key m2"),
        "{said}"
    );

    // An instance holding only the new master key signs with both secrets.
    let next = spawn_app_with(|v| {
        v.insert("EAP_DATABASE_URL".into(), url);
        v.insert("EAP_DATA_DIR".into(), dir);
        v.insert("EAP_MASTER_KEY".into(), M2.into());
        v.insert("EAP_WEBHOOK_INTERVAL_MS".into(), "50".into());
    })
    .await;
    submit(&next, &portal).await;
    let seen = receiver.wait_for("the offer", |s| !s.is_empty()).await;
    assert!(verify(&second, &seen[0]), "the current secret verifies");
    assert!(
        verify(&first, &seen[0]),
        "the previous one too, within its overlap"
    );
    let key = second.strip_prefix("whsec_").unwrap();
    assert!(
        !stored_anywhere(&next, key),
        "still sealed after re-sealing"
    );
}

// Operator endpoints: alerts for the EAP's on-call staff.

/// Registers an operator endpoint as the admin.
async fn register_operator(app: &TestApp, admin: &str, url: &str) -> Value {
    let body = json!({"url": url, "description": "on-call pager"});
    let resp = app.post_json("/v1/admin/webhooks", admin, &body).await;
    assert_eq!(resp.status(), 201);
    assert!(resp.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/v1/admin/webhooks/"));
    resp.json().await.unwrap()
}

/// The alerts a receiver got, as (type, referral id, urgency), after checking each one's
/// signature with the independent implementation and that it carries exactly
/// `{type, timestamp, data: {referral_id, urgency}}`.
fn alerts(secret: &str, seen: &[Received]) -> Vec<(String, String, String)> {
    seen.iter()
        .filter(|r| r.json()["type"] != "ping")
        .map(|r| {
            assert!(
                verify(secret, r),
                "an independent implementation verifies {r:?}"
            );
            let p = r.json();
            let keys: Vec<&String> = p.as_object().unwrap().keys().collect();
            assert_eq!(
                keys,
                ["data", "timestamp", "type"],
                "id and urgency only: {p}"
            );
            let data: Vec<&String> = p["data"].as_object().unwrap().keys().collect();
            assert_eq!(data, ["referral_id", "urgency"], "id and urgency only: {p}");
            let text = |v: &Value| v.as_str().unwrap().to_owned();
            (
                text(&p["type"]),
                text(&p["data"]["referral_id"]),
                text(&p["data"]["urgency"]),
            )
        })
        .collect()
}

/// Nothing of the referral but its id and urgency is in any body: no contact field, note,
/// employee reference, employer or provider.
fn assert_nothing_personal(seen: &[Received], portal: &Portal) {
    let body = common::referral_body();
    let contact = body["contact"].as_object().unwrap();
    let mut needles: Vec<String> = contact
        .values()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    needles.extend([
        body["note"].as_str().unwrap().to_owned(),
        body["employee_ref"].as_str().unwrap().to_owned(),
        portal.employer.clone(),
        portal.provider.clone(),
        "not_a_fit".to_owned(),
    ]);
    for r in seen {
        let text = String::from_utf8_lossy(&r.body);
        for n in &needles {
            assert!(!text.contains(n.as_str()), "{n} in {text}");
        }
    }
}

#[actix_web::test]
async fn referrals_that_become_unroutable_alert_the_operators_with_their_id_and_urgency_only() {
    // One slot: the first submission is offered, the second has nowhere to go.
    let app = app_with_webhooks(&[]).await;
    let portal = app.setup_portal(1).await;
    let receiver = Receiver::start(always(200)).await;
    let endpoint = register_operator(&app, &portal.admin_token, &receiver.url).await;
    let secret = endpoint["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    assert!(endpoint.get("provider_id").is_none(), "{endpoint}");

    let (offered, _) = submit(&app, &portal).await;
    let mut crisis = common::referral_body();
    crisis["urgency"] = json!("crisis");
    crisis["service_type"] = json!("crisis");
    crisis["modality"] = json!("phone");
    let resp = app.submit_json(&portal.token, &crisis).await;
    assert_eq!(resp.status(), 201);
    let queued = resp.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(app.referral(&queued).status, "unroutable");

    // The offered one, declined by the only provider, becomes unroutable too.
    let token = provider_token(&app, &portal, &portal.provider).await;
    let (_, etag, _) = common::provider::get_referral(&app, &token, &offered).await;
    let body = json!({"reason": "not_a_fit"});
    let resp =
        common::provider::act(&app, &token, &offered, "decline", Some(&etag), Some(body)).await;
    assert_eq!(resp.status(), 204);
    assert_eq!(app.referral(&offered).status, "unroutable");

    let seen = receiver.wait_for("two alerts", |s| s.len() >= 2).await;
    let unroutable = "operator.referral_unroutable".to_owned();
    let mut got = alerts(&secret, &seen);
    got.sort();
    let mut expected = vec![
        (unroutable.clone(), queued.clone(), "crisis".to_owned()),
        (unroutable, offered.clone(), "routine".to_owned()),
    ];
    expected.sort();
    assert_eq!(got, expected, "one alert per referral made unroutable");
    assert_nothing_personal(&seen, &portal);

    // Each alert handed a referral id over: one access event each, the actor being the admin
    // client that registered the endpoint, with no tenant.
    let registered_by = app
        .audit_rows()
        .into_iter()
        .find(|r| r.action == "operator_webhook.create")
        .unwrap()
        .actor_client_id;
    for r in &delivered_exactly(&app, vec![queued, offered]) {
        assert_eq!(r.actor_role.as_deref(), Some("admin"));
        assert_eq!(r.actor_client_id, registered_by);
        assert_eq!(r.tenant_id, None);
    }
}

#[actix_web::test]
async fn an_expired_offer_alerts_the_operators_and_so_does_the_queue_it_leaves() {
    let app = app_with_webhooks(&[]).await;
    let portal = app.setup_portal(1).await;
    let receiver = Receiver::start(always(200)).await;
    let endpoint = register_operator(&app, &portal.admin_token, &receiver.url).await;
    let secret = endpoint["secret"].as_str().unwrap().to_owned();
    let (id, _) = submit(&app, &portal).await;

    // The routine offer's 48 hours run out; no other provider: it expires, then queues.
    let mut conn = app.conn();
    let later = eap_referrals::db::now() + chrono::TimeDelta::hours(49);
    let ttl = &app.state.config.offer_ttl;
    let masters = &app.state.keys.master;
    assert_eq!(
        eap_referrals::workflow::sweep::sweep(&mut conn, ttl, masters, later).unwrap(),
        1
    );
    // The alerts were written at the sweep's clock, 49 hours ahead: bring them due now.
    {
        use diesel::prelude::*;
        use eap_referrals::db::schema::operator_webhook_deliveries as d;
        let n = diesel::update(d::table)
            .set(d::next_attempt_at.eq(eap_referrals::db::now()))
            .execute(&mut **conn)
            .unwrap();
        assert_eq!(n, 2, "an alert for the expiry and one for the queue");
    }
    drop(conn);
    assert_eq!(app.referral(&id).status, "unroutable");

    let seen = receiver.wait_for("two alerts", |s| s.len() >= 2).await;
    let routine = "routine".to_owned();
    assert_eq!(
        alerts(&secret, &seen),
        [
            (
                "operator.offer_expired".to_owned(),
                id.clone(),
                routine.clone()
            ),
            ("operator.referral_unroutable".to_owned(), id, routine),
        ],
        "in the order the events happened"
    );
    assert_nothing_personal(&seen, &portal);
    // Provider endpoints get nothing of the operators' alerts, and the reverse: an operator
    // receiver got no `referral.*` event.
    assert!(seen
        .iter()
        .all(|r| r.json()["type"].as_str().unwrap().starts_with("operator.")));
}

#[actix_web::test]
async fn operator_endpoints_are_the_admins_and_every_change_is_logged() {
    let app = app_with_webhooks(&[]).await;
    let portal = app.setup_portal(5).await;
    let admin = portal.admin_token.clone();
    let receiver = Receiver::start(always(200)).await;
    let created = register_operator(&app, &admin, &receiver.url).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let old = created["secret"].as_str().unwrap().to_owned();

    // Listed and read without the secret.
    let page = read(&app, &admin, "/v1/admin/webhooks").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1, "{page}");
    assert!(page["items"][0].get("secret").is_none());
    let one = read(&app, &admin, &format!("/v1/admin/webhooks/{id}")).await;
    assert_eq!(one["status"], "active");
    assert!(one.get("secret").is_none() && one.get("provider_id").is_none());

    // Rotated: a ping is signed by both secrets, and shows in the attempts.
    let resp = app
        .post_json(
            &format!("/v1/admin/webhooks/{id}/rotate-secret"),
            &admin,
            &json!({}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let rotated: Value = resp.json().await.unwrap();
    let new = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    let resp = app
        .post_json(&format!("/v1/admin/webhooks/{id}/ping"), &admin, &json!({}))
        .await;
    assert_eq!(resp.status(), 202);
    let seen = receiver.wait_for("the ping", |s| !s.is_empty()).await;
    assert_eq!(seen[0].json()["type"], "ping");
    assert!(verify(&old, &seen[0]) && verify(&new, &seen[0]));
    let path = format!("/v1/admin/webhooks/{id}/deliveries");
    let attempts = eventually("the ping's attempt", || async {
        let v = read(&app, &admin, &path).await;
        (v["items"].as_array().is_some_and(|i| !i.is_empty()))
            .then_some(v.clone())
            .ok_or(v)
    })
    .await;
    assert_eq!(attempts["items"][0]["status_code"], 200);
    assert_eq!(attempts["items"][0]["webhook_id"], seen[0].id().as_str());

    // A provider's endpoint is not reachable through the operator routes, nor an operator's
    // through the provider routes or the admin's provider-webhooks routes: 404, logged.
    let provider_token = provider_token(&app, &portal, &portal.provider).await;
    let theirs = register(&app, &provider_token, "http://127.0.0.1:9/hook").await;
    let theirs = theirs["id"].as_str().unwrap().to_owned();
    let operator_paths = |id: &str| {
        [
            (Method::GET, format!("/v1/admin/webhooks/{id}")),
            (Method::DELETE, format!("/v1/admin/webhooks/{id}")),
            (
                Method::POST,
                format!("/v1/admin/webhooks/{id}/rotate-secret"),
            ),
            (Method::POST, format!("/v1/admin/webhooks/{id}/ping")),
            (Method::GET, format!("/v1/admin/webhooks/{id}/deliveries")),
        ]
    };
    let mut crossed: Vec<(Method, String, &str)> = operator_paths(&theirs)
        .into_iter()
        .map(|(m, p)| (m, p, admin.as_str()))
        .collect();
    crossed.extend([
        (
            Method::GET,
            format!("/v1/provider/webhooks/{id}"),
            provider_token.as_str(),
        ),
        (
            Method::POST,
            format!("/v1/admin/provider-webhooks/{id}/disable"),
            admin.as_str(),
        ),
    ]);
    for (method, path, token) in crossed {
        refused_and_logged(&app, method, &path, token, 404).await;
    }
    let page = read(&app, &admin, "/v1/admin/webhooks").await;
    assert_eq!(
        page["items"].as_array().unwrap().len(),
        1,
        "operators' only: {page}"
    );
    let page = read(&app, &admin, "/v1/admin/provider-webhooks").await;
    assert_eq!(
        page["items"].as_array().unwrap().len(),
        1,
        "providers' only: {page}"
    );
    assert_eq!(page["items"][0]["id"], theirs.as_str());

    // Every other role is refused on every route, and the refusal is logged.
    let auditor = app
        .create_client(&admin, json!({"name": "auditor", "role": "auditor"}))
        .await;
    let auditor = app.token(&auditor).await;
    let mut routes = operator_paths(&id).to_vec();
    routes.extend([
        (Method::GET, "/v1/admin/webhooks".to_owned()),
        (Method::POST, "/v1/admin/webhooks".to_owned()),
    ]);
    for token in [&portal.token, &provider_token, &auditor] {
        for (method, path) in &routes {
            let row = refused_and_logged(&app, method.clone(), path, token, 403).await;
            assert!(row.action.starts_with("operator_webhook."), "{row:?}");
        }
    }

    // Refused URLs are 422 naming the field, as for providers.
    let resp = app
        .post_json(
            "/v1/admin/webhooks",
            &admin,
            &json!({"url": "http://10.0.0.1/hook"}),
        )
        .await;
    let body = problem(resp, 422).await;
    assert_eq!(body["errors"][0]["pointer"], "/url", "{body}");

    // At most five; the sixth is a logged 409. Deleted: gone, with its deliveries.
    at_most_five_then_delete(&app, &admin, "/v1/admin/webhooks", &id).await;
    {
        use diesel::prelude::*;
        use eap_referrals::db::schema::operator_webhook_attempts as a;
        use eap_referrals::db::schema::operator_webhook_deliveries as d;
        let mut conn = app.conn();
        let of = |n: QueryResult<i64>| n.unwrap();
        let left = of(d::table
            .filter(d::endpoint_id.eq(&id))
            .count()
            .get_result(&mut **conn));
        let tried = of(a::table
            .filter(a::endpoint_id.eq(&id))
            .count()
            .get_result(&mut **conn));
        assert_eq!(
            (left, tried),
            (0, 0),
            "the ping's delivery and attempt went with it"
        );
    }

    // Every change is an access event of the admin, with the endpoint's id.
    let rows = app.audit_rows();
    for action in [
        "operator_webhook.create",
        "operator_webhook.list",
        "operator_webhook.read",
        "operator_webhook.rotate_secret",
        "operator_webhook.ping",
        "operator_webhook.deliveries",
        "operator_webhook.delete",
    ] {
        assert!(
            rows.iter().any(|r| r.action == action
                && r.outcome == "success"
                && r.actor_role.as_deref() == Some("admin")),
            "{action} logged"
        );
    }
    assert!(rows
        .iter()
        .any(|r| r.action == "operator_webhook.delete"
            && r.resource_id.as_deref() == Some(id.as_str())));
}
