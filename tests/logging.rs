//! What the service logs, read from the real binary's stderr: JSON lines carrying the request
//! id, and never a secret, a token, a request body or a query string.

mod common;

use common::{post_json_at, request_token_at, Binary};
use serde_json::{json, Value};

#[actix_web::test]
async fn json_logs_carry_request_ids_and_no_secrets_tokens_bodies_or_queries() {
    let dir = tempfile::tempdir().unwrap();
    let (vars, pg) = common::test_vars(dir.path());
    let admin = Binary::create_client(&vars, "admin", "ops");
    let server = Binary::start(&vars);
    let base = server.base.clone();
    let http = reqwest::Client::new();

    let token: Value = request_token_at(&http, &base, &admin.id, &admin.secret)
        .await
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap().to_owned();
    let query_secret = "QUERYSECRET0123456789";
    let resp = http
        .get(format!("{base}/v1/admin/clients?after={query_secret}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 422);
    let body = json!({"name": "BODYMARKER Trust"});
    let resp = post_json_at(&http, &base, "/v1/admin/employers", &token, &body).await;
    assert_eq!(resp.status(), 201);
    let resp = http
        .get(format!("{base}/v1/admin/clients"))
        .header("authorization", "Bearer FORGEDTOKENMARKER.abc.def")
        .header("x-request-id", "log-check-1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);

    let lines = server.stop();
    let all = lines.join("\n");
    for needle in [
        admin.secret.as_str(),
        token.as_str(),
        query_secret,
        "BODYMARKER",
        "FORGEDTOKENMARKER",
        "Bearer",
        "authorization",
    ] {
        assert!(!all.contains(needle), "the log holds {needle:?}:\n{all}");
    }
    let finished: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
        .filter(|v| v["fields"]["message"] == "request finished")
        .collect();
    assert_eq!(finished.len(), 4, "one line per request:\n{all}");
    for v in &finished {
        let span = &v["span"];
        assert!(
            span["request_id"].as_str().is_some_and(|r| !r.is_empty()),
            "{v}"
        );
        assert!(
            span["route"].is_string() && span["method"].is_string(),
            "{v}"
        );
        assert!(
            v["fields"]["status"].is_u64() && v["fields"]["latency_ms"].is_number(),
            "{v}"
        );
    }
    assert!(finished
        .iter()
        .any(|v| v["span"]["request_id"] == "log-check-1"));
    assert!(
        finished
            .iter()
            .any(|v| v["span"]["route"] == "/v1/admin/clients"),
        "route templates, not paths"
    );
    common::drop_pg_database(pg);
}
