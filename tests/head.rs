//! `HEAD` on every `GET` route: the same status, headers, authorization, tenancy, rate budget
//! and access-log entry as the `GET`, and no body; and `Allow` listing `HEAD` beside `GET`.

mod common;

use std::time::{Duration, Instant};

use common::provider::{act, get_referral, provider_token, submit};
use common::{request_id, spawn_app_with, AuditRow, Portal, TestApp};
use reqwest::{Method, Response};
use serde_json::{json, Value};

/// The headers a HEAD must carry exactly as its GET does. `RateLimit` is compared for presence
/// only: the GET spent one request of the budget it reports.
const SAME_HEADERS: &[&str] = &[
    "content-type",
    "etag",
    "cache-control",
    "location",
    "retry-after",
    "allow",
    "www-authenticate",
    "preference-applied",
    "ratelimit-policy",
    "transfer-encoding",
];

/// An access-log row without its request id, which differs between the two requests.
type Entry = (
    String,
    String,
    i32,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn entries(app: &TestApp, request_id: &str) -> Vec<(Entry, Option<String>)> {
    app.audit_for_request(request_id)
        .into_iter()
        .map(|r: AuditRow| {
            let entry = (
                r.action,
                r.outcome,
                r.http_status,
                r.actor_client_id,
                r.resource_id,
                r.actor_role,
            );
            (entry, r.tenant_id)
        })
        .collect()
}

/// One request shape, sent once as GET and once as HEAD.
struct Case<'a> {
    label: &'static str,
    path: String,
    token: Option<&'a str>,
    headers: Vec<(&'static str, String)>,
    status: u16,
    /// The body is the same both times, so `Content-Length` must be: every route but the
    /// metrics, whose counters the GET itself moved.
    same_length: bool,
}

impl Case<'_> {
    async fn send(&self, app: &TestApp, method: Method) -> Response {
        let headers: Vec<(&str, &str)> =
            self.headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        app.request(method, &self.path, self.token, &headers)
            .send()
            .await
            .unwrap()
    }

    /// Sends the GET, then the HEAD, and holds the HEAD to the GET.
    async fn check(&self, app: &TestApp) {
        let what = format!("HEAD {} ({})", self.path, self.label);
        let get = self.send(app, Method::GET).await;
        let head = self.send(app, Method::HEAD).await;
        assert_eq!(
            get.status(),
            self.status,
            "GET {} ({})",
            self.path,
            self.label
        );
        assert_eq!(head.status(), get.status(), "{what}");
        for name in SAME_HEADERS {
            assert_eq!(
                head.headers().get(*name),
                get.headers().get(*name),
                "{what}: {name}"
            );
        }
        if self.same_length {
            let length = |r: &Response| r.headers().get("content-length").cloned();
            assert_eq!(length(&head), length(&get), "{what}: Content-Length");
        }
        assert_eq!(
            head.headers().contains_key("ratelimit"),
            get.headers().contains_key("ratelimit"),
            "{what}: RateLimit"
        );
        let (get_id, head_id) = (request_id(&get), request_id(&head));
        assert_ne!(get_id, head_id, "each carries its own X-Request-Id");
        assert!(head.bytes().await.unwrap().is_empty(), "{what}: a body");
        assert_eq!(
            entries(app, &head_id),
            entries(app, &get_id),
            "{what}: the access log"
        );
    }
}

/// Ticks of the sealer until every event so far is sealed, as the background job would (on
/// PostgreSQL a tick seals only what is older than every open transaction in the cluster, and
/// other tests share it); the checkpoint's tree size.
fn seal_everything(app: &TestApp) -> u64 {
    let target = app.count("audit_events") as u64;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut conn = app.conn();
        let checkpoint = eap_referrals::audit::seal::run(
            &mut conn,
            &app.state.keys.checkpoint,
            eap_referrals::db::now(),
        )
        .unwrap()
        .expect("the only instance leads");
        if checkpoint.tree_size >= target {
            return checkpoint.tree_size;
        }
        assert!(Instant::now() < deadline, "sealing did not catch up");
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Everything the walk needs: two tenants, each with a referral offered to its provider (ours
/// accepted), an auditor, and a sealed access log.
struct World {
    app: TestApp,
    doc: Value,
    ours: Portal,
    provider: String,
    auditor: String,
    metrics: String,
    /// Ours, and its status token.
    referral: (String, String),
    /// Another tenant's, and its status token.
    foreign: (String, String),
    /// The tree size of the one signed checkpoint.
    checkpoint_size: u64,
    /// A webhook endpoint of our provider's, and one of theirs.
    webhooks: (String, String),
    /// An operator alert endpoint (an admin's).
    operator_webhook: String,
}

impl World {
    async fn new() -> World {
        let metrics = "m".repeat(40);
        let app = spawn_app_with(|v| {
            v.insert("EAP_METRICS_TOKEN".into(), "m".repeat(40));
            // Budgets on, so the RateLimit headers are there to compare.
            for role in ["ADMIN", "HR_PORTAL", "PROVIDER", "AUDITOR"] {
                v.insert(format!("EAP_RATE_LIMIT_{role}"), "100000".into());
            }
            // The walk's webhook endpoints name no reachable host: nothing is ever sent.
            v.insert("EAP_WEBHOOK_DELIVERY".into(), "off".into());
        })
        .await;
        let ours = app.setup_portal(5).await;
        let theirs = app.setup_portal(5).await;
        let provider = provider_token(&app, &ours, &ours.provider).await;
        let referral = submit(&app, &ours).await;
        // Accepted, so its contact block can be revealed.
        let (_, etag, _) = get_referral(&app, &provider, &referral.0).await;
        let accepted = act(&app, &provider, &referral.0, "accept", Some(&etag), None).await;
        assert_eq!(accepted.status(), 200);
        let foreign = submit(&app, &theirs).await;
        let auditor = app
            .create_client(
                &ours.admin_token,
                json!({"name": "auditor", "role": "auditor"}),
            )
            .await;
        let auditor = app.token(&auditor).await;
        let their_provider = provider_token(&app, &theirs, &theirs.provider).await;
        let mut webhooks = Vec::new();
        for token in [&provider, &their_provider] {
            let body = json!({"url": "http://127.0.0.1:9/hook"});
            let resp = app.post_json("/v1/provider/webhooks", token, &body).await;
            assert_eq!(resp.status(), 201);
            let created: Value = resp.json().await.unwrap();
            webhooks.push(created["id"].as_str().unwrap().to_owned());
        }
        let body = json!({"url": "http://127.0.0.1:9/alerts"});
        let resp = app
            .post_json("/v1/admin/webhooks", &ours.admin_token, &body)
            .await;
        assert_eq!(resp.status(), 201);
        let created: Value = resp.json().await.unwrap();
        let operator_webhook = created["id"].as_str().unwrap().to_owned();
        let checkpoint_size = seal_everything(&app);
        let doc: Value = app
            .get_anonymous("/openapi.json")
            .await
            .json()
            .await
            .unwrap();
        World {
            app,
            doc,
            ours,
            provider,
            auditor,
            metrics,
            referral,
            foreign,
            checkpoint_size,
            webhooks: (webhooks[0].clone(), webhooks[1].clone()),
            operator_webhook,
        }
    }

    /// A value for a required query parameter, from its schema in the served document: its
    /// example, the first value of an enumeration, or an integer's minimum. A consistency
    /// proof's `to_size` must be a checkpoint's (404 otherwise), which no schema can say.
    fn required_value(&self, path: &str, param: &Value) -> String {
        let schema = &param["schema"];
        if path == "/v1/audit/consistency" && schema["type"] == "integer" {
            return self.checkpoint_size.to_string();
        }
        if let Some(example) = param["example"].as_str().or(schema["example"].as_str()) {
            return example.to_owned();
        }
        if let Some(name) = schema["$ref"].as_str().and_then(|r| r.rsplit('/').next()) {
            let first = &self.doc["components"]["schemas"][name]["enum"][0];
            return first
                .as_str()
                .expect("an enumeration of strings")
                .to_owned();
        }
        if schema["type"] == "integer" {
            return schema["minimum"].as_i64().unwrap_or(0).to_string();
        }
        panic!("{path}: no value for the required parameter {param}; give it an example")
    }

    async fn first_id(&self, path: &str, token: &str) -> String {
        let page: Value = self.app.get(path, token).await.json().await.unwrap();
        page["items"][0]["id"].as_str().expect("an item").to_owned()
    }

    /// The token of the role a documented operation serves, by its tag, and a token of
    /// another role; `None` for an operation without bearer security.
    fn tokens(&self, op: &Value) -> Option<(&str, &str)> {
        if !common::client_operation(op) {
            return None;
        }
        let admin = self.ours.admin_token.as_str();
        Some(match op["tags"][0].as_str().unwrap() {
            "admin" => (admin, self.auditor.as_str()),
            "provider" => (self.provider.as_str(), admin),
            "referrals" | "reports" => (self.ours.token.as_str(), admin),
            "audit" => (self.auditor.as_str(), admin),
            other => panic!("no role for the tag {other}"),
        })
    }
}

#[actix_web::test]
async fn every_get_route_answers_head_with_its_status_headers_access_log_and_no_body() {
    let w = World::new().await;
    let app = &w.app;
    let admin = w.ours.admin_token.as_str();
    let contract = w.first_id("/v1/admin/contracts", admin).await;
    let event = w.first_id("/v1/audit/events?limit=1", &w.auditor).await;
    let unknown = uuid::Uuid::now_v7().to_string();
    let paths = w.doc["paths"].as_object().unwrap().clone();
    let mut walked = 0;
    for (template, item) in &paths {
        let Some(op) = item.get("get") else { continue };
        walked += 1;
        // Our own object for each id, and an object that is not ours: another tenant's where
        // the route has tenants, an id that names nothing where it has not.
        let (own, foreign) = match template.as_str() {
            "/v1/admin/clients/{id}" => (w.ours.client.id.clone(), unknown.clone()),
            "/v1/admin/contracts/{id}" => (contract.clone(), unknown.clone()),
            "/v1/admin/employers/{id}" => (w.ours.employer.clone(), unknown.clone()),
            "/v1/admin/providers/{id}" => (w.ours.provider.clone(), unknown.clone()),
            "/v1/audit/events/{id}/proof" => (event.clone(), unknown.clone()),
            "/v1/provider/referrals/{id}"
            | "/v1/provider/referrals/{id}/contact"
            | "/v1/referrals/{id}" => (w.referral.0.clone(), w.foreign.0.clone()),
            "/v1/provider/webhooks/{id}" | "/v1/provider/webhooks/{id}/deliveries" => {
                (w.webhooks.0.clone(), w.webhooks.1.clone())
            }
            // A provider's endpoint is not an operator endpoint.
            "/v1/admin/webhooks/{id}" | "/v1/admin/webhooks/{id}/deliveries" => {
                (w.operator_webhook.clone(), w.webhooks.0.clone())
            }
            t if t.contains('{') => panic!("{t}: add its objects to this walk"),
            _ => (String::new(), String::new()),
        };
        let query: Vec<String> = op["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["in"] == "query" && p["required"] == true)
            .map(|p| {
                format!(
                    "{}={}",
                    p["name"].as_str().unwrap(),
                    w.required_value(template, p)
                )
            })
            .collect();
        let with = |id: &str| {
            let path = template.replace("{id}", id);
            match query.is_empty() {
                true => path,
                false => format!("{path}?{}", query.join("&")),
            }
        };
        // The portal reads a referral with the status token it was given for it.
        let status_token = |id: &str| {
            let token = if id == w.foreign.0 {
                &w.foreign.1
            } else {
                &w.referral.1
            };
            match template.as_str() {
                "/v1/referrals/{id}" => vec![("referral-token", token.clone())],
                _ => Vec::new(),
            }
        };
        let case = |label, id: &str, token, status| Case {
            label,
            path: with(id),
            token,
            headers: status_token(id),
            status,
            same_length: true,
        };
        match (template.as_str(), w.tokens(op)) {
            ("/metrics", _) => {
                let scrape = case("metrics token", "", Some(&w.metrics), 200);
                Case {
                    same_length: false,
                    ..scrape
                }
                .check(app)
                .await;
                case("an API token", "", Some(admin), 401).check(app).await;
                case("no token", "", None, 401).check(app).await;
            }
            (_, None) => case("public", &own, None, 200).check(app).await,
            (_, Some((right, wrong))) => {
                case("its role", &own, Some(right), 200).check(app).await;
                case("another role", &own, Some(wrong), 403)
                    .check(app)
                    .await;
                case("no token", &own, None, 401).check(app).await;
                if template.contains("{id}") {
                    case("not its object", &foreign, Some(right), 404)
                        .check(app)
                        .await;
                }
            }
        }
    }
    assert!(walked >= 25, "only {walked} GET routes in the document");
    // Outside the documented API: the document itself and its viewer.
    for (path, status) in [("/openapi.json", 200), ("/docs", 308), ("/docs/", 200)] {
        let case = Case {
            label: "public",
            path: path.into(),
            token: None,
            headers: Vec::new(),
            status,
            same_length: true,
        };
        case.check(app).await;
    }
}

#[actix_web::test]
async fn a_head_fails_closed_like_its_get_when_the_access_log_cannot_be_written() {
    let w = World::new().await;
    w.app.break_audit_log();
    let path = format!("/v1/provider/referrals/{}", w.referral.0);
    for method in [Method::GET, Method::HEAD] {
        let resp = w
            .app
            .request(method.clone(), &path, Some(&w.provider), &[])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 503, "{method}");
        assert!(
            resp.headers().get("etag").is_none(),
            "{method}: nothing of the referral"
        );
    }
    w.app.repair_audit_log();
    let resp = w
        .app
        .request(Method::HEAD, &path, Some(&w.provider), &[])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let rows = w.app.audit_for_request(&request_id(&resp));
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].action, "referral.read");
    assert_eq!(rows[0].resource_id.as_deref(), Some(w.referral.0.as_str()));
}

#[actix_web::test]
async fn a_head_spends_the_clients_request_budget_like_a_get() {
    let app = spawn_app_with(|v| {
        v.insert("EAP_RATE_LIMIT_ADMIN".into(), "2".into());
    })
    .await;
    let admin = app.admin_token().await;
    let head = |token: String| {
        let req = app.request(Method::HEAD, "/v1/admin/employers", Some(&token), &[]);
        async move { req.send().await.unwrap() }
    };
    assert_eq!(app.get("/v1/admin/employers", &admin).await.status(), 200);
    assert_eq!(head(admin.clone()).await.status(), 200);
    let limited = head(admin.clone()).await;
    assert_eq!(limited.status(), 429, "the HEAD spent the second request");
    assert!(limited.headers().contains_key("retry-after"));
    assert!(limited.headers().get("ratelimit").is_some());
    assert_eq!(app.get("/v1/admin/employers", &admin).await.status(), 429);
}

/// The events a long poll waits for travel in its body, which a HEAD never gets.
#[actix_web::test]
async fn a_head_on_the_feed_answers_at_once_instead_of_waiting() {
    let w = World::new().await;
    let app = &w.app;
    // Past the feed's events (the offer and the acceptance), so a GET would wait.
    let (_, cursor) = common::provider::read_feed(app, &w.provider, None, 2).await;
    let path = format!("/v1/provider/events?after={cursor}&wait=30");
    let started = Instant::now();
    let resp = app
        .request(Method::HEAD, &path, Some(&w.provider), &[])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let prefer = [("prefer", "wait=30")];
    let path = format!("/v1/provider/events?after={cursor}");
    let resp = app
        .request(Method::HEAD, &path, Some(&w.provider), &prefer)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(
        resp.headers().get("preference-applied").is_none(),
        "a HEAD does not wait, so it does not say it did"
    );
    // A GET waits as asked, and says so.
    let prefer = [("prefer", "wait=1")];
    let resp = app
        .request(Method::GET, &path, Some(&w.provider), &prefer)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers().get("preference-applied").unwrap(), "wait=1");
}

/// The streamed export is logged before its first byte; a HEAD is logged the same way, gets the
/// export's headers and framing, and reads nothing it would have to throw away.
#[actix_web::test]
async fn a_head_on_an_export_is_logged_and_framed_like_the_export() {
    let w = World::new().await;
    for format in ["ndjson", "csv"] {
        let case = Case {
            label: format,
            path: format!("/v1/audit/export?format={format}"),
            token: Some(&w.auditor),
            headers: Vec::new(),
            status: 200,
            same_length: true,
        };
        case.check(&w.app).await;
    }
    let resp = w
        .app
        .request(Method::HEAD, "/v1/audit/export", Some(&w.auditor), &[])
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers().get("content-type").unwrap(),
        "application/x-ndjson"
    );
    assert!(
        resp.headers().get("content-length").is_none(),
        "streamed: no length"
    );
    let rows = w.app.audit_for_request(&request_id(&resp));
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].action, "audit.export");
}

#[actix_web::test]
async fn a_405_on_a_path_with_a_get_allows_head() {
    let app = spawn_app_with(|_| {}).await;
    let admin = app.admin_token().await;
    let employer = app.create_employer(&admin, "Acme").await;
    for (method, path, allow) in [
        (Method::POST, "/healthz".to_owned(), "GET, HEAD"),
        (Method::DELETE, "/openapi.json".to_owned(), "GET, HEAD"),
        (
            Method::PUT,
            "/.well-known/oauth-authorization-server".to_owned(),
            "GET, HEAD",
        ),
        (
            Method::DELETE,
            format!("/v1/admin/employers/{employer}"),
            "GET, HEAD, PATCH",
        ),
        (
            Method::PUT,
            "/v1/admin/employers".to_owned(),
            "GET, HEAD, POST",
        ),
        // No GET, so no HEAD either: a HEAD there is refused like any other missing method.
        (Method::HEAD, "/oauth/token".to_owned(), "POST"),
        (Method::HEAD, "/v1/referrals".to_owned(), "POST"),
    ] {
        let resp = app
            .request(method.clone(), &path, Some(&admin), &[])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 405, "{method} {path}");
        assert_eq!(
            resp.headers().get("allow").unwrap(),
            allow,
            "{method} {path}"
        );
    }
}
