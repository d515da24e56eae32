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
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
    fn id(&self) -> String {
        self.headers["webhook-id"].to_str().unwrap().to_owned()
    }
}

/// How a receiver answers: status and `Retry-After`, given the payload and how many requests
/// came before.
type Answer = Arc<dyn Fn(&Value, usize) -> (u16, Option<u64>) + Send + Sync>;

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
                        });
                        s.len() - 1
                    };
                    let (status, retry_after) = answer(&payload, n);
                    let mut resp =
                        HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap());
                    if let Some(r) = retry_after {
                        resp.insert_header(("retry-after", r.to_string()));
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

fn verify(secret: &str, r: &Received) -> bool {
    standardwebhooks::Webhook::new(secret)
        .unwrap()
        .verify(&r.body, &r.headers)
        .is_ok()
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
    let mut expected = vec![first, second];
    expected.sort();
    assert_eq!(ids, expected);
    assert!(delivered
        .iter()
        .all(|r| r.actor_role.as_deref() == Some("provider")));
}

#[actix_web::test]
async fn during_a_rotation_both_the_old_and_the_new_secret_verify() {
    let (app, portal, token) = setup(&[]).await;
    let receiver = Receiver::start(always(200)).await;
    let endpoint = register(&app, &token, &receiver.url).await;
    let old = endpoint["secret"].as_str().unwrap().to_owned();
    let id = endpoint["id"].as_str().unwrap();

    let resp = app
        .post_json(
            &format!("/v1/provider/webhooks/{id}/rotate-secret"),
            &token,
            &json!({}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let rotated: Value = resp.json().await.unwrap();
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
        Arc::new(|_, n| if n == 0 { (503, Some(1)) } else { (200, None) }),
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
        let resp = app
            .request(method.clone(), &path, Some(&other_token), &[])
            .send()
            .await
            .unwrap();
        let request_id = common::request_id(&resp);
        problem(resp, 404).await;
        let rows = app.audit_for_request(&request_id);
        assert_eq!(rows.len(), 1, "{method} {path} logged");
        assert_eq!(rows[0].http_status, 404);
    }
    // The portal's role is not a provider's: 403.
    let resp = app.get("/v1/provider/webhooks", &portal.token).await;
    problem(resp, 403).await;

    // At most five per provider; the sixth is a logged 409.
    for _ in 0..4 {
        register(&app, &token, "http://127.0.0.1:9/hook").await;
    }
    let resp = app
        .post_json(
            "/v1/provider/webhooks",
            &token,
            &json!({"url": "http://127.0.0.1:9/6"}),
        )
        .await;
    let request_id = common::request_id(&resp);
    problem(resp, 409).await;
    assert_eq!(app.audit_for_request(&request_id)[0].http_status, 409);

    // Deleted: gone for good.
    let resp = app
        .delete(&format!("/v1/provider/webhooks/{id}"), &token)
        .await;
    assert_eq!(resp.status(), 204);
    let resp = app
        .get(&format!("/v1/provider/webhooks/{id}"), &token)
        .await;
    problem(resp, 404).await;
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
