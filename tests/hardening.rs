//! Hardening: request budgets (429 with RateLimit headers), the token endpoint's throttle,
//! and the security headers on every response.

mod common;

use std::time::{Duration, Instant};

use common::{problem, request_id, spawn_app, spawn_app_with, TestApp};
use reqwest::Method;
use serde_json::Value;

fn header<'a>(resp: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

#[actix_web::test]
async fn a_client_over_its_budget_gets_429_and_others_are_unaffected() {
    let app = spawn_app_with(|v| {
        v.insert("EAP_RATE_LIMIT_ADMIN".into(), "3".into());
    })
    .await;
    let first = app.admin_token().await;
    let second = app.admin_token().await;
    let before = app.audit_rows().len();
    // (An empty list logs nothing, so every row added below would be the 429's.)
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let resp = app.get("/v1/admin/employers", &first).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(
            header(&resp, "ratelimit-policy"),
            Some("\"admin\";q=3;w=60")
        );
        let state = header(&resp, "ratelimit").unwrap().to_owned();
        remaining.push(
            state
                .split(";r=")
                .nth(1)
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(remaining, ["2", "1", "0"]);
    let resp = app.get("/v1/admin/employers", &first).await;
    assert_eq!(resp.status(), 429);
    let retry: u64 = header(&resp, "retry-after").unwrap().parse().unwrap();
    assert!(
        (1..=20).contains(&retry),
        "one request comes back every 20 s: {retry}"
    );
    assert!(header(&resp, "ratelimit")
        .unwrap()
        .starts_with("\"admin\";r=0;t="));
    let id = request_id(&resp);
    let body = problem(resp, 429).await;
    assert_eq!(body["type"], "urn:eap-referrals:problem:rate-limited");
    // Nothing was touched, so the refusal is not an access event.
    assert!(app.audit_for_request(&id).is_empty());
    assert_eq!(app.audit_rows().len(), before);
    // Another client of the same role has its own budget.
    let resp = app.get("/v1/admin/employers", &second).await;
    assert_eq!(resp.status(), 200);
}

#[actix_web::test]
async fn an_anonymous_or_invalid_caller_spends_no_clients_budget() {
    let app = spawn_app_with(|v| {
        v.insert("EAP_RATE_LIMIT_ADMIN".into(), "1".into());
    })
    .await;
    let token = app.admin_token().await;
    for _ in 0..5 {
        let resp = app.get("/v1/admin/employers", "not-a-token").await;
        assert_eq!(resp.status(), 401);
        assert!(header(&resp, "ratelimit").is_none());
    }
    let resp = app.get("/v1/admin/employers", &token).await;
    assert_eq!(resp.status(), 200);
}

#[actix_web::test]
async fn secret_guessing_is_throttled_per_client_before_hashing_and_logged() {
    let app = spawn_app_with(|v| {
        v.insert("EAP_RATE_LIMIT_TOKEN".into(), "2".into());
    })
    .await;
    let admin = app.bootstrap_admin();
    for _ in 0..2 {
        let resp = app.token_request(&admin.id, "wrong-secret").await;
        assert_eq!(resp.status(), 401);
        assert_eq!(
            header(&resp, "ratelimit-policy"),
            Some("\"token\";q=2;w=60")
        );
    }
    // The third attempt is refused even with the right secret: the budget is the client id's.
    let resp = app.token_request(&admin.id, &admin.secret).await;
    assert_eq!(resp.status(), 429);
    assert!(header(&resp, "retry-after").is_some());
    let id = request_id(&resp);
    let events = app.audit_for_request(&id);
    assert_eq!(
        events.len(),
        1,
        "a throttled token request is a failed one, logged"
    );
    assert_eq!(events[0].action, "token.issue");
    assert_eq!(events[0].http_status, 429);
    assert_eq!(events[0].outcome, "failure");
    // Another client id is not affected.
    let other = app.bootstrap_admin();
    assert_eq!(
        app.token_request(&other.id, &other.secret).await.status(),
        200
    );
    // Text that cannot be a client id names no client and gets no budget of its own (the
    // limiter keeps no key for it): it is an unknown client every time, limited only by the
    // source address's budget, and the log does not keep the text.
    let junk = format!("not-a-client-{}", "x".repeat(1000));
    for _ in 0..3 {
        let resp = app.token_request(&junk, "wrong-secret").await;
        assert_eq!(resp.status(), 401);
        let events = app.audit_for_request(&request_id(&resp));
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].actor_client_id, None);
    }
}

#[actix_web::test]
async fn token_requests_are_throttled_per_source_address() {
    let app = spawn_app_with(|v| {
        v.insert("EAP_RATE_LIMIT_TOKEN_ADDRESS".into(), "3".into());
    })
    .await;
    for i in 0..3 {
        let resp = app
            .token_request(&uuid::Uuid::new_v4().to_string(), "guess")
            .await;
        assert_eq!(resp.status(), 401, "attempt {i}");
    }
    // A fresh client id from the same address: the address's budget is spent.
    let admin = app.bootstrap_admin();
    let resp = app.token_request(&admin.id, &admin.secret).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(
        header(&resp, "ratelimit-policy"),
        Some("\"token_address\";q=3;w=60")
    );
}

#[actix_web::test]
async fn every_response_carries_the_security_headers() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let api = app.get("/v1/admin/employers", &token).await;
    let missing = app.get("/v1/no-such-thing", &token).await;
    let health = app.get_anonymous("/healthz").await;
    let spec = app.get_anonymous("/openapi.json").await;
    let jwks = app.get_anonymous("/.well-known/jwks.json").await;
    for resp in [&api, &missing, &health, &spec, &jwks] {
        assert_eq!(header(resp, "x-content-type-options"), Some("nosniff"));
        assert_eq!(header(resp, "x-frame-options"), Some("DENY"));
        assert_eq!(header(resp, "referrer-policy"), Some("no-referrer"));
    }
    for resp in [&api, &missing, &health] {
        assert_eq!(
            header(resp, "cache-control"),
            Some("no-store"),
            "{}",
            resp.url()
        );
    }
    // The API description may be cached; the public keys set their own lifetime.
    assert_eq!(header(&spec, "cache-control"), None);
    assert_eq!(header(&jwks, "cache-control"), Some("public, max-age=300"));
    // No TLS configured here, so no HSTS (it would pin a plain-HTTP host).
    assert_eq!(header(&api, "strict-transport-security"), None);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["status"], 404);
}

#[actix_web::test]
async fn the_openapi_document_lists_429_for_every_authenticated_operation() {
    let doc = serde_json::to_value(eap_referrals::openapi::spec()).unwrap();
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if common::client_operation(op) {
                assert_eq!(
                    op["responses"]["429"]["$ref"], "#/components/responses/TooManyRequests",
                    "{method} {path}"
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 20);
    assert!(doc["components"]["responses"]["TooManyRequests"]["headers"]
        .get("Retry-After")
        .is_some());
}

#[actix_web::test]
async fn long_polls_beyond_the_cap_get_429_and_plain_polls_still_work() {
    let app = spawn_app_with(|v| {
        v.insert("EAP_MAX_LONG_POLLS".into(), "1".into());
    })
    .await;
    let admin = app.admin_token().await;
    let provider = app.create_provider(&admin, "Quiet").await;
    let client = app
        .create_client(
            &admin,
            serde_json::json!({"name": "poller", "role": "provider", "provider_id": provider}),
        )
        .await;
    let token = app.token(&client).await;
    let waiting = {
        let (http, url, token) = (
            app.client.clone(),
            app.url("/v1/provider/events?wait=3"),
            token.clone(),
        );
        actix_web::rt::spawn(async move {
            http.get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    // Let the first poll settle into its wait.
    for _ in 0..100 {
        if app.state.db.notifier.waiting() == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(app.state.db.notifier.waiting(), 1);
    let resp = app.get("/v1/provider/events?wait=3", &token).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(header(&resp, "retry-after"), Some("1"));
    let body = problem(resp, 429).await;
    assert!(body["detail"].as_str().unwrap().contains("long polls"));
    // A poll that does not wait is answered as usual.
    assert_eq!(app.get("/v1/provider/events", &token).await.status(), 200);
    assert_eq!(waiting.await.unwrap(), 200);
    assert_eq!(app.state.db.notifier.waiting(), 0, "the slot is given back");
}

#[actix_web::test]
async fn metrics_need_their_token_and_label_routes_not_ids() {
    let metrics_token = "m".repeat(40);
    let app = spawn_app_with(|v| {
        v.insert("EAP_METRICS_TOKEN".into(), "m".repeat(40));
    })
    .await;
    let admin = app.admin_token().await;
    let employer = app.create_employer(&admin, "Acme").await;
    assert_eq!(
        app.get(&format!("/v1/admin/employers/{employer}"), &admin)
            .await
            .status(),
        200
    );
    let resp = app.get_anonymous("/metrics").await;
    assert_eq!(resp.status(), 401);
    // An API token is not the metrics token.
    assert_eq!(app.get("/metrics", &admin).await.status(), 401);
    let resp = app.get("/metrics", &metrics_token).await;
    assert_eq!(resp.status(), 200);
    assert!(header(&resp, "content-type")
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = resp.text().await.unwrap();
    assert!(text.contains(
        "eap_http_requests_total{route=\"/v1/admin/employers/{id}\",method=\"GET\",status=\"200\"} 1"
    ));
    assert!(text.contains("eap_http_request_duration_seconds_bucket{route=\"/oauth/token\",method=\"POST\",status=\"200\",le=\"+Inf\"} 1"));
    assert!(text.contains("eap_long_polls_waiting 0\n"));
    assert!(text.contains("eap_offers_pending 0\n"));
    assert!(text.contains("eap_db_pool_max 4\n"));
    assert!(!text.contains(&employer), "no ids in labels");
    assert!(!text.contains(&admin), "no tokens");

    // Without a configured token the endpoint is off.
    let plain = spawn_app().await;
    let resp = plain.get_anonymous("/metrics").await;
    assert_eq!(resp.status(), 404);
}

fn self_signed(dir: &std::path::Path) -> (String, String) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let out = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert.display().to_string(), key.display().to_string())
}

#[actix_web::test]
async fn tls_serves_https_with_hsts_and_refuses_plain_http() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path());
    let app = spawn_app_with(|v| {
        v.insert("EAP_TLS_CERT".into(), cert.clone());
        v.insert("EAP_TLS_KEY".into(), key.clone());
    })
    .await;
    let https = app.address.replace("http://", "https://");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("curl")
            .args(["-sS", "--cacert", &cert, "-D", "-", "-o", "/dev/null"])
            .arg(format!("{https}/healthz"))
            .output()
            .expect("curl runs")
    })
    .await
    .unwrap();
    let head = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(
        head.contains("strict-transport-security: max-age=31536000"),
        "{head}"
    );
    assert!(head.contains("x-content-type-options: nosniff"));
    // Plain HTTP to the TLS port gets no HTTP answer.
    let plain = app.client.get(app.url("/healthz")).send().await;
    assert!(plain.is_err() || plain.unwrap().status() != 200);
}

#[actix_web::test]
async fn bad_tls_settings_stop_start_up_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, _key) = self_signed(dir.path());
    let (mut vars, pg) = common::test_vars(dir.path());
    vars.insert("EAP_TLS_CERT".into(), cert.clone());
    let err = eap_referrals::Config::from_map(&vars).unwrap_err();
    assert_eq!(err.var, "EAP_TLS_KEY");
    // A key that does not parse.
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a key").unwrap();
    vars.insert("EAP_TLS_KEY".into(), junk.display().to_string());
    let config = eap_referrals::Config::from_map(&vars).unwrap();
    let err = match eap_referrals::Application::build(config) {
        Ok(_) => panic!("started with a junk key"),
        Err(e) => e.to_string(),
    };
    assert!(err.starts_with("EAP_TLS_KEY:"), "{err}");
    common::drop_pg_database(pg);
}

#[actix_web::test]
async fn deeply_nested_or_oversized_json_is_a_clear_4xx() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    // 10,000 levels: past serde_json's recursion limit, under the body limit.
    let deep = format!("{{\"name\": {}{}}}", "[".repeat(10_000), "]".repeat(10_000));
    let resp = app
        .post_raw("/v1/admin/employers", &token, "application/json", deep)
        .await;
    let status = resp.status().as_u16();
    assert!(status == 400 || status == 422, "{status}");
    let body = problem(resp, status).await;
    assert!(body["detail"].is_string());
    // A body over the limit is refused before it is parsed.
    let big = format!("{{\"name\": \"{}\"}}", "x".repeat(70_000));
    let resp = app
        .post_raw("/v1/admin/employers", &token, "application/json", big)
        .await;
    assert_eq!(resp.status(), 413);
}

/// Client ids are not secret: guesses sent for one from another address spend that address's
/// budget for the id, never the budget the real client's own address uses.
#[actix_web::test]
async fn guesses_from_another_address_never_lock_the_real_client_out() {
    let app = spawn_app_with(|v| {
        v.insert("EAP_RATE_LIMIT_TOKEN".into(), "3".into());
    })
    .await;
    let admin = app.bootstrap_admin();
    for _ in 0..3 {
        let resp = app
            .token_request_from("127.0.0.2", &admin.id, "guess")
            .await;
        assert_eq!(resp.status(), 401);
    }
    let resp = app
        .token_request_from("127.0.0.2", &admin.id, "guess")
        .await;
    assert_eq!(resp.status(), 429, "the guesser is throttled");
    let events = app.audit_for_request(&request_id(&resp));
    assert_eq!(events[0].source_addr.as_deref(), Some("127.0.0.2"));
    for _ in 0..3 {
        let resp = app.token_request(&admin.id, &admin.secret).await;
        assert_eq!(resp.status(), 200, "the real client still gets tokens");
    }
}

/// Guesses spread over many addresses meet the client's ceiling for addresses that never
/// obtained a token for it; an address the client has used is never held to that ceiling.
#[actix_web::test]
async fn guesses_from_many_addresses_meet_a_ceiling_that_spares_the_clients_own_address() {
    let app = spawn_app_with(|v| {
        v.insert("EAP_RATE_LIMIT_TOKEN_CLIENT".into(), "4".into());
    })
    .await;
    let admin = app.bootstrap_admin();
    // The client's first token from its address counts (the address was not yet known).
    assert_eq!(app.token_response(&admin).await.status(), 200);
    for source in ["127.0.0.2", "127.0.0.2", "127.0.0.3"] {
        let resp = app.token_request_from(source, &admin.id, "guess").await;
        assert_eq!(resp.status(), 401, "{source}");
    }
    let resp = app
        .token_request_from("127.0.0.4", &admin.id, "guess")
        .await;
    assert_eq!(resp.status(), 429, "the ceiling is spent");
    assert_eq!(
        header(&resp, "ratelimit-policy"),
        Some("\"token_client\";q=4;w=60")
    );
    assert_eq!(
        app.token_response(&admin).await.status(),
        200,
        "the client's own address is spared"
    );
    // While the ceiling is spent, a new address of the client waits like any other.
    let resp = app
        .token_request_from("127.0.0.5", &admin.id, &admin.secret)
        .await;
    assert_eq!(resp.status(), 429);
}

/// The server's address as HOST:PORT.
fn host(app: &TestApp) -> String {
    app.address.trim_start_matches("http://").to_owned()
}

/// A body sent a byte at a time (here one byte, then nothing) is cut off at the body deadline:
/// 408, and the connection closed, instead of a connection held open for as long as the
/// sender likes.
#[actix_web::test]
async fn a_trickled_body_is_cut_off_at_the_body_deadline() {
    let app = spawn_app_with(|v| {
        v.insert("EAP_BODY_TIMEOUT_SECS".into(), "1".into());
    })
    .await;
    let server = host(&app);
    let (elapsed, answer) = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(server).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream
            .write_all(
                b"POST /oauth/token HTTP/1.1\r\nHost: test\r\n\
                  Content-Type: application/x-www-form-urlencoded\r\n\
                  Content-Length: 1000\r\n\r\ng",
            )
            .unwrap();
        let started = Instant::now();
        let mut answer = Vec::new();
        // Read to the end: a timeout here (an error) means the connection stayed open.
        stream
            .read_to_end(&mut answer)
            .expect("the server closes the connection within 10 s");
        (
            started.elapsed(),
            String::from_utf8_lossy(&answer).into_owned(),
        )
    })
    .await
    .unwrap();
    assert!(
        elapsed < Duration::from_secs(4),
        "closed {elapsed:?} after the head"
    );
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains("urn:eap-referrals:problem:body-timeout"),
        "{answer}"
    );
}

/// A request head of 100 KB is refused with 431 before any handler runs; an ordinary large
/// head (a few KB of headers) is not.
#[actix_web::test]
async fn a_request_head_of_100_kb_is_refused_with_431() {
    let app = spawn_app().await;
    let filler = "x".repeat(100 * 1024);
    let resp = app
        .get_with_headers("/healthz", None, &[("x-filler", &filler)])
        .await;
    let body = problem(resp, 431).await;
    assert_eq!(body["type"], "urn:eap-referrals:problem:head-too-large");
    let modest = "x".repeat(8 * 1024);
    let resp = app
        .get_with_headers("/healthz", None, &[("x-filler", &modest)])
        .await;
    assert_eq!(resp.status(), 200);
}

/// The API answers data that nothing may run; the docs page runs only its own files.
#[actix_web::test]
async fn responses_carry_a_content_security_policy_and_the_docs_page_a_strict_one() {
    let app = spawn_app().await;
    let api = app.get_anonymous("/healthz").await;
    assert_eq!(
        header(&api, "content-security-policy"),
        Some("default-src 'none'; frame-ancestors 'none'; base-uri 'none'")
    );
    let docs = app.get_anonymous("/docs/").await;
    assert_eq!(docs.status(), 200);
    let csp = header(&docs, "content-security-policy").unwrap().to_owned();
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{directive} in {csp}");
    }
    assert!(!csp.contains("unsafe-eval"), "{csp}");
    let html = docs.text().await.unwrap();
    assert!(
        !html.contains("<script>"),
        "no inline script, which script-src 'self' would block"
    );
}

/// A token request with forwarding headers, and the source address its access event records.
async fn logged_source(app: &TestApp, headers: &[(&str, &str)]) -> (u16, Option<String>) {
    let resp = app
        .request(Method::POST, "/oauth/token", None, headers)
        .basic_auth(uuid::Uuid::new_v4().to_string(), Some("guess"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let events = app.audit_for_request(&request_id(&resp));
    assert_eq!(events.len(), 1);
    (status, events[0].source_addr.clone())
}

/// Without trusted proxies a forwarding header is the caller's to forge: ignored for the log
/// and for the per-address budget.
#[actix_web::test]
async fn forwarding_headers_from_an_untrusted_peer_are_ignored() {
    let app = spawn_app_with(|v| {
        v.insert("EAP_RATE_LIMIT_TOKEN_ADDRESS".into(), "1".into());
    })
    .await;
    let (status, source) = logged_source(&app, &[("x-forwarded-for", "203.0.113.7")]).await;
    assert_eq!((status, source.as_deref()), (401, Some("127.0.0.1")));
    let (status, source) = logged_source(&app, &[("forwarded", "for=203.0.113.8")]).await;
    assert_eq!(
        (status, source.as_deref()),
        (429, Some("127.0.0.1")),
        "another claimed address shares the peer's budget"
    );
}

/// Behind a trusted proxy the client is the rightmost address in the chain that is not itself
/// a trusted proxy; each such client has its own per-address budget.
#[actix_web::test]
async fn behind_a_trusted_proxy_the_client_is_the_rightmost_untrusted_hop() {
    let app = spawn_app_with(|v| {
        v.insert(
            "EAP_TRUSTED_PROXIES".into(),
            "127.0.0.0/8, 10.0.0.0/8".into(),
        );
        v.insert("EAP_RATE_LIMIT_TOKEN_ADDRESS".into(), "1".into());
    })
    .await;
    let chain = [("x-forwarded-for", "198.51.100.1, 203.0.113.7, 10.1.2.3")];
    let (status, source) = logged_source(&app, &chain).await;
    assert_eq!(
        (status, source.as_deref()),
        (401, Some("203.0.113.7")),
        "the left entry is the client's own claim, not trusted"
    );
    let (status, _) = logged_source(&app, &chain).await;
    assert_eq!(status, 429, "that client's budget is spent");
    let forwarded = [("forwarded", "for=\"[2001:db8::7]:4711\";proto=https")];
    let (status, source) = logged_source(&app, &forwarded).await;
    assert_eq!(
        (status, source.as_deref()),
        (401, Some("2001:db8::7")),
        "another client behind the same proxy has its own budget"
    );
    let (status, source) = logged_source(&app, &[]).await;
    assert_eq!(
        (status, source.as_deref()),
        (401, Some("127.0.0.1")),
        "with no header the proxy itself is the source"
    );
}

/// The console is served by the binary from this origin, under a policy that lets it run only
/// its own files: no inline script or style, no framing, calls to this origin only.
#[actix_web::test]
async fn the_console_is_served_from_the_binary_under_a_strict_content_security_policy() {
    let app = spawn_app().await;
    let page = app.get_anonymous("/console/").await;
    assert_eq!(page.status(), 200);
    assert_eq!(
        header(&page, "content-type"),
        Some("text/html; charset=utf-8")
    );
    let csp = header(&page, "content-security-policy").unwrap().to_owned();
    let directives: Vec<&str> = csp.split(';').map(str::trim).collect();
    for directive in [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
    ] {
        assert!(directives.contains(&directive), "{directive} in {csp}");
    }
    assert!(
        !csp.contains("unsafe"),
        "no unsafe-inline or unsafe-eval: {csp}"
    );
    assert_eq!(header(&page, "x-frame-options"), Some("DENY"));
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"<script type="module" src="app.js">"#));
    assert!(!html.contains("<script>") && !html.contains("<style"));

    let module = app.get_anonymous("/console/app.js").await;
    assert_eq!(module.status(), 200);
    assert_eq!(
        header(&module, "content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(
        header(&module, "content-security-policy"),
        Some(csp.as_str())
    );

    let bare = app.get_anonymous("/console").await;
    assert_eq!(bare.status(), 308);
    assert_eq!(header(&bare, "location"), Some("/console/"));
    for missing in ["/console/nope.js", "/console/..%2Fapp.rs", "/console/a/b"] {
        assert_eq!(app.get_anonymous(missing).await.status(), 404, "{missing}");
    }
    // The API keeps its own policy: nothing in an answer may run.
    assert_eq!(
        header(
            &app.get_anonymous("/healthz").await,
            "content-security-policy"
        ),
        Some("default-src 'none'; frame-ancestors 'none'; base-uri 'none'")
    );
}
