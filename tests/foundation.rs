//! The service foundation over a real socket: probes, request ids, problem+json errors,
//! configuration errors, the OpenAPI document.

mod common;

use common::{problem, request_id, spawn_app};
use eap_referrals::db::Backend;
use reqwest::Method;
use serde_json::{json, Value};

/// CI sets EAP_TEST_EXPECT_BACKEND=postgres for the PostgreSQL run, so a run that silently
/// fell back to SQLite fails instead of passing.
#[actix_web::test]
async fn tests_run_on_the_expected_backend() {
    let app = spawn_app().await;
    let expected = match std::env::var("EAP_TEST_EXPECT_BACKEND").as_deref() {
        Ok("postgres") => Backend::Postgres,
        Ok("sqlite") | Err(_) => {
            if common::pg_admin_url().is_some() {
                Backend::Postgres
            } else {
                Backend::Sqlite
            }
        }
        Ok(other) => panic!("EAP_TEST_EXPECT_BACKEND={other} is not postgres or sqlite"),
    };
    assert_eq!(app.backend, expected);
    let resp = app.get_anonymous("/readyz").await;
    assert_eq!(resp.status(), 200);
}

#[actix_web::test]
async fn healthz_answers_ok() {
    let app = spawn_app().await;
    let resp = app.get_anonymous("/healthz").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({"status": "ok"}));
}

#[actix_web::test]
async fn readyz_answers_ready_when_migrated() {
    let app = spawn_app().await;
    let resp = app.get_anonymous("/readyz").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"status": "ready"})
    );
}

#[actix_web::test]
async fn readyz_is_503_when_a_migration_is_missing() {
    let app = spawn_app().await;
    app.exec("DELETE FROM __diesel_schema_migrations");
    let resp = app.get_anonymous("/readyz").await;
    let body = problem(resp, 503).await;
    assert!(
        !body.to_string().contains("migrations pending"),
        "causes stay in the log"
    );
}

/// A pooled connection is handed out untested only within 500 ms of a clean use (no `SELECT 1`
/// per request). One the database ended meanwhile fails at most the one request that finds it,
/// and one ended while it sat idle longer is tested at checkout and replaced: no request fails.
/// PostgreSQL only: SQLite has no server to end a session.
#[actix_web::test]
async fn a_connection_the_database_ended_fails_at_most_the_request_that_finds_it() {
    let app = spawn_app().await;
    if app.backend != Backend::Postgres {
        return;
    }
    let ready = |app: &common::TestApp| {
        let app = app.address.clone();
        async move {
            reqwest::get(format!("{app}/readyz"))
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let end_sessions = |app: &common::TestApp| -> usize {
        use diesel::prelude::*;
        #[derive(QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut conn = app.conn();
        let c: &mut eap_referrals::db::AnyConnection = &mut conn;
        let ended: N = diesel::sql_query(
            "SELECT count(*) AS n FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()) t",
        )
        .get_result(c)
        .unwrap();
        ended.n as usize
    };
    // Several pooled connections, all just used cleanly.
    let concurrent: Vec<_> = (0..6).map(|_| ready(&app)).collect();
    for status in futures_util::future::join_all(concurrent).await {
        assert_eq!(status, 200);
    }

    // Ended within the window: each ended connection fails at most one request.
    let ended = end_sessions(&app);
    assert!(ended > 0, "the pool had sessions to end");
    let mut failed = 0;
    for _ in 0..(ended + 10) {
        match ready(&app).await {
            200 => {}
            503 => failed += 1,
            other => panic!("readyz answered {other}"),
        }
    }
    assert!(
        failed <= ended,
        "{failed} failed requests for {ended} ended sessions"
    );
    for _ in 0..10 {
        assert_eq!(ready(&app).await, 200, "a replaced connection works");
    }

    // Ended while idle past the window: tested at checkout and replaced, nothing fails.
    let concurrent: Vec<_> = (0..6).map(|_| ready(&app)).collect();
    futures_util::future::join_all(concurrent).await;
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    assert!(end_sessions(&app) > 0);
    for _ in 0..20 {
        assert_eq!(ready(&app).await, 200, "an idle connection is tested first");
    }
}

/// On SQLite the test holds the only pooled connection, so the request cannot get one in time;
/// on PostgreSQL it drops the database out from under the app.
#[actix_web::test]
async fn database_unreachable_is_503_with_retry_after() {
    let app = common::spawn_app_with(|vars| {
        vars.insert("EAP_DB_POOL_SIZE".into(), "1".into());
        vars.insert("EAP_DB_TIMEOUT_MS".into(), "200".into());
    })
    .await;
    let held = match app.backend {
        Backend::Sqlite => Some(app.conn()),
        Backend::Postgres => {
            use diesel::connection::SimpleConnection;
            use diesel::Connection;
            let eap_referrals::db::DatabaseUrl::Postgres(url) = &app.database_url else {
                unreachable!()
            };
            let name = url
                .rsplit('/')
                .next()
                .unwrap()
                .split('?')
                .next()
                .unwrap()
                .to_owned();
            let mut c = diesel::PgConnection::establish(&common::pg_admin_url().unwrap()).unwrap();
            c.batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))
                .unwrap();
            None
        }
    };
    let resp = app.get_anonymous("/readyz").await;
    assert_eq!(resp.headers().get("retry-after").unwrap(), "5");
    let body = problem(resp, 503).await;
    assert_eq!(body["type"], "urn:eap-referrals:problem:unavailable");
    drop(held);
}

#[actix_web::test]
async fn request_id_is_echoed_when_given() {
    let app = spawn_app().await;
    let resp = app
        .get_with_headers("/healthz", None, &[("x-request-id", "portal-42.a:b_c")])
        .await;
    assert_eq!(request_id(&resp), "portal-42.a:b_c");
}

#[actix_web::test]
async fn request_id_is_generated_when_absent_or_unsafe() {
    let app = spawn_app().await;
    let a = app.get_anonymous("/healthz").await;
    let b = app.get_anonymous("/healthz").await;
    assert_ne!(request_id(&a), request_id(&b));
    assert!(uuid::Uuid::parse_str(&request_id(&a)).is_ok());
    let unsafe_id = "x\u{1b}[31m injected";
    let c = app
        .get_with_headers(
            "/healthz",
            None,
            &[("x-request-id", "has space and \"quotes\"")],
        )
        .await;
    assert!(
        uuid::Uuid::parse_str(&request_id(&c)).is_ok(),
        "{unsafe_id} style ids are replaced"
    );
    let long = "a".repeat(129);
    let d = app
        .get_with_headers("/healthz", None, &[("x-request-id", &long)])
        .await;
    assert_ne!(request_id(&d), long);
}

#[actix_web::test]
async fn unknown_route_is_404_problem() {
    let app = spawn_app().await;
    let resp = app.get_anonymous("/v1/nothing-here").await;
    let body = problem(resp, 404).await;
    assert_eq!(body["instance"], "/v1/nothing-here");
}

#[actix_web::test]
async fn wrong_method_is_405_with_allow() {
    let app = spawn_app().await;
    // Every GET also answers HEAD, so both are allowed where one is.
    let resp = app.anonymous(Method::DELETE, "/healthz").await;
    assert_eq!(resp.headers().get("allow").unwrap(), "GET, HEAD");
    problem(resp, 405).await;
    let resp = app.anonymous(Method::PUT, "/v1/admin/clients").await;
    assert_eq!(resp.headers().get("allow").unwrap(), "GET, HEAD, POST");
    let body = problem(resp, 405).await;
    assert_eq!(body["allowed"], json!(["GET", "HEAD", "POST"]));
    let resp = app
        .anonymous(Method::DELETE, "/v1/admin/clients/some-id/revoke")
        .await;
    assert_eq!(resp.headers().get("allow").unwrap(), "POST");
}

/// Posts `body`, labelled `content_type`, to the employers collection.
async fn post_raw(
    app: &common::TestApp,
    token: &str,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    app.post_raw("/v1/admin/employers", token, content_type, body)
        .await
}

#[actix_web::test]
async fn body_over_the_limit_is_413() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let big = format!(r#"{{"name":"{}"}}"#, "a".repeat(70 * 1024));
    let body = problem(post_raw(&app, &token, "application/json", big).await, 413).await;
    assert!(body["detail"].as_str().unwrap().contains("65536"));
}

#[actix_web::test]
async fn wrong_content_type_is_415() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    problem(
        post_raw(&app, &token, "text/plain", r#"{"name":"x"}"#).await,
        415,
    )
    .await;
    problem(
        post_raw(&app, &token, "application/x-www-form-urlencoded", "name=x").await,
        415,
    )
    .await;
}

#[actix_web::test]
async fn malformed_json_is_400() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    problem(
        post_raw(&app, &token, "application/json", r#"{"name": "#).await,
        400,
    )
    .await;
    problem(post_raw(&app, &token, "application/json", "").await, 400).await;
}

#[actix_web::test]
async fn invalid_fields_are_422_with_a_list() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let body = problem(
        post_raw(&app, &token, "application/json", r#"{"name": ""}"#).await,
        422,
    )
    .await;
    // Every rule the empty name breaks, each with the member's pointer.
    let entries: Vec<(&Value, &Value)> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (&e["pointer"], &e["code"]))
        .collect();
    assert_eq!(
        entries,
        [
            (&json!("/name"), &json!("pattern")),
            (&json!("/name"), &json!("length"))
        ]
    );
    let body = problem(
        post_raw(
            &app,
            &token,
            "application/json",
            r#"{"name":"x","ssn":"078-05-1120"}"#,
        )
        .await,
        422,
    )
    .await;
    assert_eq!(body["errors"][0]["pointer"], "/ssn");
    assert_eq!(body["errors"][0]["code"], "unknown_field");
    assert!(
        !body.to_string().contains("078-05-1120"),
        "the value is never echoed"
    );
    let body = problem(
        post_raw(&app, &token, "application/json", r#"{"name": 12}"#).await,
        422,
    )
    .await;
    assert_eq!(body["errors"][0]["code"], "invalid_type");
}

#[actix_web::test]
async fn unexpected_failures_are_opaque_500s() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    // Damage the schema under the running app: the query fails in a way no handler expects.
    app.exec("ALTER TABLE employers RENAME TO employers_gone");
    let resp = app.get("/v1/admin/employers", &token).await;
    let body = problem(resp, 500).await;
    let mut keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        ["instance", "request_id", "status", "title", "type"],
        "no cause in the body: {body}"
    );
    assert!(!body.to_string().to_lowercase().contains("table"), "{body}");
}

#[actix_web::test]
async fn served_spec_equals_the_committed_one() {
    let app = spawn_app().await;
    let served: Value = app
        .get_anonymous("/openapi.json")
        .await
        .json()
        .await
        .unwrap();
    let committed: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json"))
            .expect("openapi/openapi.json exists"),
    )
    .unwrap();
    assert!(
        served == committed,
        "openapi/openapi.json is stale. Regenerate it with:\n    cargo run -q -- openapi > openapi/openapi.json"
    );
    assert_eq!(served["openapi"], "3.1.0");
}

#[actix_web::test]
async fn every_operation_documents_its_errors() {
    let spec = eap_referrals::openapi::spec();
    let doc: Value = serde_json::to_value(&spec).unwrap();
    // Schemas are named after their types; two types with one name would silently share one.
    let health = &doc["paths"]["/healthz"]["get"]["responses"]["200"]["content"]
        ["application/json"]["schema"]["$ref"];
    assert_eq!(health, "#/components/schemas/Health");
    assert!(doc["components"]["schemas"]["Health"]["properties"]
        .get("status")
        .is_some());
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            let codes: Vec<&String> = responses.keys().collect();
            assert!(
                codes.iter().any(|c| c.starts_with('2')),
                "{method} {path} has no success response"
            );
            // Static answers with no failure path: liveness, the two public key sets and the
            // authorization server's metadata.
            let static_answers = [
                "/healthz",
                "/.well-known/jwks.json",
                "/.well-known/oauth-authorization-server",
                "/v1/audit/public-key",
            ];
            if !static_answers.contains(&path.as_str()) {
                assert!(
                    codes
                        .iter()
                        .any(|c| c.starts_with('4') || c.starts_with('5')),
                    "{method} {path} documents no errors"
                );
            }
            let takes_json = op["requestBody"]["content"]
                .get("application/json")
                .is_some();
            if takes_json {
                for code in ["400", "413", "415", "422"] {
                    assert!(
                        responses.contains_key(code),
                        "{method} {path} takes JSON but does not document {code}"
                    );
                }
            }
            // Bearer operations; the token operation's client authentication has no 403.
            let secured = op["security"]
                .as_array()
                .is_some_and(|s| s.iter().any(|r| r.get("bearer").is_some()));
            if secured {
                for code in ["401", "403", "429", "503"] {
                    assert!(responses.contains_key(code), "{method} {path} lacks {code}");
                }
            }
        }
    }
}

#[actix_web::test]
async fn docs_render_from_vendored_assets() {
    let app = spawn_app().await;
    let resp = app.get_anonymous("/docs").await;
    assert_eq!(resp.status(), 308);
    assert_eq!(resp.headers().get("location").unwrap(), "/docs/");
    let html = app.get_anonymous("/docs/").await.text().await.unwrap();
    assert!(html.contains("swagger-ui"));
    assert!(
        !html.contains("://unpkg") && !html.contains("cdn"),
        "no CDN: the page must work offline"
    );
    for asset in [
        "/docs/swagger-ui.css",
        "/docs/swagger-ui-bundle.js",
        "/docs/swagger-initializer.js",
    ] {
        let resp = app.get_anonymous(asset).await;
        assert_eq!(resp.status(), 200, "{asset}");
    }
    let init = app
        .get_anonymous("/docs/swagger-initializer.js")
        .await
        .text()
        .await
        .unwrap();
    assert!(init.contains("/openapi.json"));
}

/// What a client generator needs to make one class per schema and type every field: list
/// items point at their component, no `allOf` wraps a `oneOf`, and every `oneOf` variant is a
/// named component told apart by a discriminator.
#[test]
fn the_document_gives_generators_named_types() {
    let doc: Value = serde_json::to_value(eap_referrals::openapi::spec()).unwrap();
    let schemas = doc["components"]["schemas"].clone();
    // A part of an allOf, its $ref followed.
    let resolve = |s: &Value| -> Value {
        match s["$ref"].as_str() {
            Some(r) => schemas[r.trim_start_matches("#/components/schemas/")].clone(),
            None => s.clone(),
        }
    };
    fn go(at: &str, v: &Value, problems: &mut Vec<String>, resolve: &dyn Fn(&Value) -> Value) {
        match v {
            Value::Object(m) => {
                if let Some(all) = m.get("allOf").and_then(Value::as_array) {
                    if all.iter().any(|s| resolve(s).get("oneOf").is_some()) {
                        problems.push(format!("{at}: allOf over a oneOf"));
                    }
                }
                if let Some(one) = m.get("oneOf").and_then(Value::as_array) {
                    let nullable = one.iter().any(|s| s["type"] == "null");
                    let named = one
                        .iter()
                        .all(|s| s.get("$ref").is_some() || s["type"] == "null");
                    if !nullable && (!named || m.get("discriminator").is_none()) {
                        problems.push(format!("{at}: oneOf of unnamed variants"));
                    }
                }
                for (k, v) in m {
                    go(&format!("{at}/{k}"), v, problems, resolve);
                }
            }
            Value::Array(a) => a.iter().for_each(|v| go(at, v, problems, resolve)),
            _ => {}
        }
    }
    let mut problems = Vec::new();
    go("", &doc, &mut problems, &resolve);
    for (name, schema) in doc["components"]["schemas"].as_object().unwrap() {
        if name.starts_with("Page") || name.ends_with("Page") {
            let items = &schema["properties"]["items"]["items"];
            if items.get("$ref").is_none() {
                problems.push(format!("{name}: items are not a $ref"));
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

/// A field typed on the way in is typed the same on the way out: where a request body's
/// property is an enum or a named schema, a response property of that name is too, and every
/// time in a response is a `date-time`.
#[test]
fn responses_type_their_fields_as_requests_do() {
    let doc: Value = serde_json::to_value(eap_referrals::openapi::spec()).unwrap();
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let mut bodies = std::collections::BTreeSet::new();
    for item in doc["paths"].as_object().unwrap().values() {
        for op in item.as_object().unwrap().values() {
            for content in op["requestBody"]["content"]
                .as_object()
                .into_iter()
                .flatten()
            {
                if let Some(r) = content.1["schema"]["$ref"].as_str() {
                    bodies.insert(r.trim_start_matches("#/components/schemas/").to_owned());
                }
            }
        }
    }
    let properties = |schema: &Value| -> Vec<(String, Value)> {
        std::iter::once(schema)
            .chain(schema["allOf"].as_array().into_iter().flatten())
            .flat_map(|s| s["properties"].as_object().cloned().unwrap_or_default())
            .collect()
    };
    let typed = |p: &Value| {
        let p = if p["type"] == "array" { &p["items"] } else { p };
        p.get("$ref").is_some() || p.get("enum").is_some() || p.get("oneOf").is_some()
    };
    let mut typed_in_requests = std::collections::BTreeSet::new();
    for name in &bodies {
        for (field, p) in properties(&schemas[name]) {
            if typed(&p) {
                typed_in_requests.insert(field);
            }
        }
    }
    assert!(
        typed_in_requests.contains("service_type"),
        "{typed_in_requests:?}"
    );
    let mut untyped = Vec::new();
    for (name, schema) in schemas {
        if bodies.contains(name) {
            continue;
        }
        for (field, p) in properties(schema) {
            // (`status` is also RFC 9457's integer in a problem: another type, not a code.)
            let code = p["type"] == "string" || p["type"] == "array";
            if code && typed_in_requests.contains(&field) && !typed(&p) {
                untyped.push(format!("{name}.{field}"));
            }
            let time = field.ends_with("_at") || field == "at";
            if time && p["format"] != "date-time" {
                untyped.push(format!("{name}.{field} is not a date-time"));
            }
        }
    }
    assert!(untyped.is_empty(), "{untyped:#?}");
}

/// The headers the service sends are in the document: the request id on every response, the
/// rate-limit state on every response of a budgeted operation, `Retry-After` on 429 and 503 —
/// and a real answer carries them.
#[actix_web::test]
async fn response_headers_are_documented_and_sent() {
    let doc: Value = serde_json::to_value(eap_referrals::openapi::spec()).unwrap();
    let shared = &doc["components"]["responses"];
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let budgeted = common::client_operation(op);
            for (status, response) in op["responses"].as_object().unwrap() {
                let response = match response["$ref"].as_str() {
                    Some(r) => &shared[r.trim_start_matches("#/components/responses/")],
                    None => response,
                };
                let headers = &response["headers"];
                let at = format!("{method} {path} {status}");
                assert!(headers.get("X-Request-Id").is_some(), "{at}");
                if budgeted {
                    assert!(headers.get("RateLimit").is_some(), "{at}");
                    assert!(headers.get("RateLimit-Policy").is_some(), "{at}");
                }
                if status == "429" || status == "503" {
                    assert!(headers.get("Retry-After").is_some(), "{at}");
                }
            }
        }
    }
    let token_op = &doc["paths"]["/oauth/token"]["post"];
    assert_eq!(token_op["security"], json!([{"client_basic": []}, {}]));
    assert_eq!(
        doc["components"]["securitySchemes"]["client_basic"]["scheme"],
        "basic"
    );

    // (Budgets are off in tests; `hardening` checks the rate-limit headers are sent.)
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let ok = app.get("/v1/admin/employers", &token).await;
    assert_eq!(ok.status(), 200);
    let refused = app.get_anonymous("/v1/admin/employers").await;
    assert_eq!(refused.status(), 401);
    for resp in [ok, refused] {
        assert!(resp.headers().get("x-request-id").is_some());
    }
}

/// One meaning per parameter name: wherever a query parameter name appears, it has the same
/// type and format (`from` is always an RFC 3339 time, tree sizes are `from_size`/`to_size`,
/// report months `from_month`).
#[test]
fn a_parameter_name_means_one_thing() {
    let doc: Value = serde_json::to_value(eap_referrals::openapi::spec()).unwrap();
    let mut seen: std::collections::BTreeMap<String, (String, Value)> = Default::default();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for p in op["parameters"].as_array().into_iter().flatten() {
                let name = p["name"].as_str().unwrap().to_owned();
                let schema = &p["schema"];
                let kind = json!([schema["type"], schema["format"]]);
                let at = format!("{method} {path}");
                match seen.get(&name) {
                    Some((first, k)) => assert_eq!(k, &kind, "{name}: {first} vs {at}"),
                    None => {
                        seen.insert(name, (at, kind));
                    }
                }
            }
        }
    }
    assert_eq!(seen["from"].1, json!(["string", "date-time"]));
    assert!(seen.contains_key("from_size") && seen.contains_key("from_month"));
}

/// Every request that touches data logs first and fails closed, so an instance whose access
/// log cannot be written would answer them all 503: it says it is not ready, and its probe
/// leaves nothing in the log.
#[actix_web::test]
async fn readyz_is_not_ready_while_the_access_log_cannot_be_written() {
    let app = spawn_app().await;
    let rows = app.audit_rows().len();
    assert_eq!(app.get_anonymous("/readyz").await.status(), 200);
    assert_eq!(app.audit_rows().len(), rows, "the probe is rolled back");
    app.break_audit_log();
    let resp = app.get_anonymous("/readyz").await;
    assert!(resp.headers().contains_key("retry-after"));
    problem(resp, 503).await;
    app.repair_audit_log();
    assert_eq!(app.get_anonymous("/readyz").await.status(), 200);
}
