//! What the service logs, read from the real binary's stderr: JSON lines carrying the request
//! id, and never a secret, a token, a request body or a query string.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{json, Value};

#[actix_web::test]
async fn json_logs_carry_request_ids_and_no_secrets_tokens_bodies_or_queries() {
    let dir = tempfile::tempdir().unwrap();
    let (vars, pg) = common::test_vars(dir.path());
    let bin = env!("CARGO_BIN_EXE_eap-referrals");
    let out = Command::new(bin)
        .envs(&vars)
        .args(["admin", "create-client", "--role", "admin", "--name", "ops"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let admin: Value = serde_json::from_slice(&out.stdout).unwrap();
    let (id, secret) = (
        admin["client_id"].as_str().unwrap(),
        admin["client_secret"].as_str().unwrap(),
    );

    let mut child = Command::new(bin)
        .envs(&vars)
        .env("EAP_LOG_FORMAT", "json")
        .env("RUST_LOG", "debug")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let port = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the server logs that it listens");
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        lines.push(line);
        if v["fields"]["message"] == "listening" {
            break v["fields"]["addr"]
                .as_str()
                .unwrap()
                .rsplit(':')
                .next()
                .unwrap()
                .parse::<u16>()
                .unwrap();
        }
    };
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();

    let token: Value = http
        .post(format!("{base}/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", secret),
        ])
        .send()
        .await
        .unwrap()
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
    let resp = http
        .post(format!("{base}/v1/admin/employers"))
        .bearer_auth(&token)
        .json(&json!({"name": "BODYMARKER Trust"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let resp = http
        .get(format!("{base}/v1/admin/clients"))
        .header("authorization", "Bearer FORGEDTOKENMARKER.abc.def")
        .header("x-request-id", "log-check-1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);

    // Let the last lines arrive, then stop the server.
    std::thread::sleep(Duration::from_millis(300));
    let _ = child.kill();
    let _ = child.wait();
    while let Ok(line) = rx.recv_timeout(Duration::from_millis(500)) {
        lines.push(line);
    }
    let all = lines.join("\n");
    for needle in [
        secret,
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

    if let Some((admin, name)) = pg {
        use diesel::connection::SimpleConnection;
        use diesel::Connection;
        let mut c = diesel::PgConnection::establish(&admin).unwrap();
        c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .unwrap();
    }
}
