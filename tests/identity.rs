//! Identity and access over a real socket: tokens, attacks on them, clients, roles, and the
//! access-log events each request must leave — exactly one, with the right outcome.

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::{problem, request_id, spawn_app, Client, TestApp};
use eap_referrals::ids::ClientId;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

fn dev_signing_key(app: &TestApp) -> EncodingKey {
    let pem = std::fs::read(app.data_dir.path().join("keys/token-signing.pem")).unwrap();
    EncodingKey::from_ed_pem(&pem).unwrap()
}

fn kid(app: &TestApp) -> String {
    app.state.keys.token[0].kid.clone()
}

fn secret_version(app: &TestApp, client: &str) -> i64 {
    let mut conn = app.conn();
    eap_referrals::auth::store::find(&mut conn, &ClientId::from_trusted(client.into()))
        .unwrap()
        .unwrap()
        .secret_version()
}

fn claims(app: &TestApp, client: &str) -> Value {
    let t = now();
    json!({
        "iss": app.state.config.token_issuer, "aud": app.state.config.token_audience,
        "sub": client, "client_id": client, "iat": t, "nbf": t, "exp": t + 300,
        "jti": uuid::Uuid::new_v4().to_string(), "role": "admin", "sv": secret_version(app, client),
    })
}

fn sign(
    app: &TestApp,
    header_typ: Option<&str>,
    kid_value: Option<String>,
    claims: &Value,
) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.typ = header_typ.map(str::to_owned);
    header.kid = kid_value;
    jsonwebtoken::encode(&header, claims, &dev_signing_key(app)).unwrap()
}

/// Calls an admin route with `token` and asserts 401 with exactly one denied access event.
async fn assert_refused(app: &TestApp, token: &str, why: &str) {
    let resp = app.get("/v1/admin/employers", token).await;
    assert_eq!(
        resp.headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap()),
        Some(r#"Bearer realm="eap-referrals", error="invalid_token""#),
        "{why}"
    );
    let rid = request_id(&resp);
    problem(resp, 401).await;
    let events = app.audit_for_request(&rid);
    assert_eq!(events.len(), 1, "{why}: one access event, got {events:?}");
    let e = &events[0];
    assert_eq!(
        (e.action.as_str(), e.outcome.as_str(), e.http_status),
        ("employer.list", "denied", 401),
        "{why}"
    );
    assert_eq!(
        e.actor_client_id, None,
        "{why}: an unverified token names no actor"
    );
    assert_eq!(e.source_addr.as_deref(), Some("127.0.0.1"));
}

#[actix_web::test]
async fn a_token_carries_rfc9068_claims_and_verifies_with_the_published_key() {
    let app = spawn_app().await;
    let admin_token = app.admin_token().await;
    let employer = app.create_employer(&admin_token, "Acme").await;
    let portal = app
        .create_client(
            &admin_token,
            json!({"name": "Acme portal", "role": "hr_portal", "employer_id": employer}),
        )
        .await;
    let resp = app.token_response(&portal).await;
    assert_eq!(resp.headers().get("cache-control").unwrap(), "no-store");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 600);
    let token = body["access_token"].as_str().unwrap();

    let jwks: Value = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jwk = &jwks["keys"][0];
    assert_eq!(
        (
            jwk["kty"].as_str(),
            jwk["crv"].as_str(),
            jwk["alg"].as_str()
        ),
        (Some("OKP"), Some("Ed25519"), Some("EdDSA"))
    );
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    assert_eq!(header.kid.as_deref(), jwk["kid"].as_str());

    let key = jsonwebtoken::DecodingKey::from_ed_components(jwk["x"].as_str().unwrap()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(Algorithm::EdDSA);
    validation.set_audience(&["eap-referrals"]);
    let c = jsonwebtoken::decode::<Value>(token, &key, &validation)
        .unwrap()
        .claims;
    assert_eq!(c["sub"], portal.id.as_str());
    assert_eq!(c["client_id"], portal.id.as_str());
    assert_eq!(c["role"], "hr_portal");
    assert_eq!(c["employer_id"], employer.as_str());
    assert_eq!(c["iss"], app.state.config.token_issuer.as_str());
    assert!(c["jti"].as_str().is_some_and(|j| !j.is_empty()));
    let lifetime = c["exp"].as_u64().unwrap() - c["iat"].as_u64().unwrap();
    assert!(lifetime <= 900);
}

#[actix_web::test]
async fn each_token_request_leaves_one_access_event() {
    let app = spawn_app().await;
    let admin = app.bootstrap_admin();
    let ok = app.token_response(&admin).await;
    let rid = request_id(&ok);
    assert_eq!(ok.status(), 200);
    let events = app.audit_for_request(&rid);
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].action.as_str(), events[0].outcome.as_str()),
        ("token.issue", "success")
    );
    assert_eq!(
        events[0].actor_client_id.as_deref(),
        Some(admin.id.as_str())
    );

    let wrong = Client {
        id: admin.id.clone(),
        secret: "eapcs_wrong".into(),
    };
    let resp = app.token_response(&wrong).await;
    let rid = request_id(&resp);
    assert_eq!(resp.status(), 401);
    let events = app.audit_for_request(&rid);
    assert_eq!(events.len(), 1);
    assert_eq!(
        (
            events[0].action.as_str(),
            events[0].outcome.as_str(),
            events[0].http_status
        ),
        ("token.issue", "denied", 401)
    );
    assert_eq!(
        events[0].actor_client_id.as_deref(),
        Some(admin.id.as_str()),
        "the client id as given"
    );
    let everything = format!("{:?}", app.audit_rows());
    assert!(
        !everything.contains(&admin.secret) && !everything.contains("eapcs_wrong"),
        "never a secret"
    );
}

#[actix_web::test]
async fn unknown_client_and_wrong_secret_get_the_same_answer_in_similar_time() {
    let app = spawn_app().await;
    let admin = app.bootstrap_admin();
    let unknown = Client {
        id: uuid::Uuid::now_v7().to_string(),
        secret: admin.secret.clone(),
    };
    let wrong = Client {
        id: admin.id.clone(),
        secret: format!("{}x", admin.secret),
    };
    // Warm up both paths once (the dummy hash is built on first use), then sample.
    app.token_response(&unknown).await;
    app.token_response(&wrong).await;
    let mut times = [Vec::new(), Vec::new()];
    let mut bodies = Vec::new();
    for _ in 0..7 {
        for (i, c) in [&unknown, &wrong].into_iter().enumerate() {
            let started = std::time::Instant::now();
            let resp = app.token_response(c).await;
            times[i].push(started.elapsed());
            assert_eq!(resp.status(), 401);
            bodies.push(resp.text().await.unwrap());
        }
    }
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "identical bodies: {bodies:?}"
    );
    let median = |v: &mut Vec<std::time::Duration>| {
        v.sort();
        v[v.len() / 2].as_secs_f64()
    };
    let (u, w) = (median(&mut times[0]), median(&mut times[1]));
    // Both run one argon2id verification; without the dummy hash an unknown id returns in
    // well under a millisecond while argon2 takes tens.
    assert!(
        u > w * 0.4 && u < w * 2.5,
        "unknown {u:.4}s vs wrong secret {w:.4}s"
    );
}

#[actix_web::test]
async fn token_endpoint_errors_follow_rfc6749() {
    let app = spawn_app().await;
    let admin = app.bootstrap_admin();
    let post = |form: Vec<(&'static str, String)>| {
        app.client.post(app.url("/oauth/token")).form(&form).send()
    };
    let err = |resp: reqwest::Response| async move {
        let status = resp.status().as_u16();
        assert_eq!(resp.headers().get("cache-control").unwrap(), "no-store");
        let body: Value = resp.json().await.unwrap();
        (status, body["error"].as_str().unwrap().to_owned())
    };
    let id = admin.id.clone();
    let secret = admin.secret.clone();
    let creds = |grant: &str| {
        vec![
            ("grant_type", grant.to_owned()),
            ("client_id", id.clone()),
            ("client_secret", secret.clone()),
        ]
    };
    assert_eq!(
        err(post(creds("password")).await.unwrap()).await,
        (400, "unsupported_grant_type".into())
    );
    assert_eq!(
        err(post(vec![
            ("client_id", id.clone()),
            ("client_secret", secret.clone())
        ])
        .await
        .unwrap())
        .await,
        (400, "invalid_request".into())
    );
    assert_eq!(
        err(post(vec![("grant_type", "client_credentials".into())])
            .await
            .unwrap())
        .await,
        (401, "invalid_client".into())
    );
    let both = app
        .client
        .post(app.url("/oauth/token"))
        .basic_auth(&id, Some(&secret))
        .form(&creds("client_credentials"))
        .send()
        .await
        .unwrap();
    assert_eq!(err(both).await, (400, "invalid_request".into()));
    let json_body = app
        .client
        .post(app.url("/oauth/token"))
        .json(&json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    assert_eq!(err(json_body).await, (400, "invalid_request".into()));
    let basic_wrong = app
        .client
        .post(app.url("/oauth/token"))
        .basic_auth(&id, Some("nope"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert!(basic_wrong
        .headers()
        .get("www-authenticate")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("Basic"));
    assert_eq!(err(basic_wrong).await, (401, "invalid_client".into()));
    // A client id that cannot be one (a NUL byte: PostgreSQL refuses it in text) is an unknown
    // client, by form or by Basic, and the failure is still logged.
    assert_eq!(
        err(post(vec![
            ("grant_type", "client_credentials".into()),
            ("client_id", "a\u{0}b".into()),
            ("client_secret", secret.clone()),
        ])
        .await
        .unwrap())
        .await,
        (401, "invalid_client".into())
    );
    let basic_nul = app
        .client
        .post(app.url("/oauth/token"))
        .basic_auth("a\u{0}b", Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(err(basic_nul).await, (401, "invalid_client".into()));
    // Form-field client authentication works as well as Basic.
    assert_eq!(
        post(creds("client_credentials")).await.unwrap().status(),
        200
    );
    // Every one of those requests, good or bad, left exactly one token.issue event.
    let token_events = app
        .audit_rows()
        .into_iter()
        .filter(|e| e.action == "token.issue")
        .count();
    assert_eq!(token_events, 9);
}

#[actix_web::test]
async fn missing_token_is_401_without_an_error_code_and_logged() {
    let app = spawn_app().await;
    let resp = app
        .client
        .get(app.url("/v1/admin/clients"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers().get("www-authenticate").unwrap(),
        r#"Bearer realm="eap-referrals""#
    );
    let rid = request_id(&resp);
    problem(resp, 401).await;
    let events = app.audit_for_request(&rid);
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].action.as_str(), events[0].outcome.as_str()),
        ("client.list", "denied")
    );
}

#[actix_web::test]
async fn alg_none_is_refused() {
    let app = spawn_app().await;
    let admin = app.bootstrap_admin();
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"at+jwt"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims(&app, &admin.id).to_string());
    assert_refused(&app, &format!("{header}.{payload}."), "alg none").await;
}

#[actix_web::test]
async fn hs256_signed_with_the_public_key_is_refused() {
    let app = spawn_app().await;
    let admin = app.bootstrap_admin();
    let public = app.state.keys.token[0].signing.verifying_key().to_bytes();
    let x = app.state.keys.token[0].public_x();
    for secret in [public.to_vec(), x.into_bytes()] {
        let mut header = Header::new(Algorithm::HS256);
        header.typ = Some("at+jwt".into());
        header.kid = Some(kid(&app));
        let token = jsonwebtoken::encode(
            &header,
            &claims(&app, &admin.id),
            &EncodingKey::from_secret(&secret),
        )
        .unwrap();
        assert_refused(&app, &token, "algorithm confusion").await;
    }
}

#[actix_web::test]
async fn unknown_kid_is_refused() {
    let app = spawn_app().await;
    let admin = app.bootstrap_admin();
    let token = sign(
        &app,
        Some("at+jwt"),
        Some("not-a-key-we-have".into()),
        &claims(&app, &admin.id),
    );
    assert_refused(&app, &token, "wrong kid").await;
    let token = sign(&app, Some("at+jwt"), None, &claims(&app, &admin.id));
    assert_refused(&app, &token, "no kid").await;
}

#[actix_web::test]
async fn a_token_signed_by_another_key_under_our_kid_is_refused() {
    let app = spawn_app().await;
    let admin = app.bootstrap_admin();
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    let other = ed25519_dalek::SigningKey::from_bytes(&[42; 32])
        .to_pkcs8_der()
        .unwrap();
    let mut header = Header::new(Algorithm::EdDSA);
    header.typ = Some("at+jwt".into());
    header.kid = Some(kid(&app));
    let token = jsonwebtoken::encode(
        &header,
        &claims(&app, &admin.id),
        &EncodingKey::from_ed_der(other.as_bytes()),
    )
    .unwrap();
    assert_refused(&app, &token, "foreign signature").await;
}

#[actix_web::test]
async fn time_claims_are_enforced() {
    let app = spawn_app().await;
    let admin = app.bootstrap_admin();
    let mut c = claims(&app, &admin.id);
    c["iat"] = json!(now() - 1000);
    c["nbf"] = json!(now() - 1000);
    c["exp"] = json!(now() - 120);
    assert_refused(
        &app,
        &sign(&app, Some("at+jwt"), Some(kid(&app)), &c),
        "expired",
    )
    .await;
    let mut c = claims(&app, &admin.id);
    c["nbf"] = json!(now() + 600);
    assert_refused(
        &app,
        &sign(&app, Some("at+jwt"), Some(kid(&app)), &c),
        "not yet valid",
    )
    .await;
    let mut c = claims(&app, &admin.id);
    c.as_object_mut().unwrap().remove("exp");
    assert_refused(
        &app,
        &sign(&app, Some("at+jwt"), Some(kid(&app)), &c),
        "no exp",
    )
    .await;
}

#[actix_web::test]
async fn audience_issuer_and_type_are_enforced() {
    let app = spawn_app().await;
    let admin = app.bootstrap_admin();
    let mut c = claims(&app, &admin.id);
    c["aud"] = json!("another-api");
    assert_refused(
        &app,
        &sign(&app, Some("at+jwt"), Some(kid(&app)), &c),
        "wrong aud",
    )
    .await;
    let mut c = claims(&app, &admin.id);
    c["iss"] = json!("https://evil.example");
    assert_refused(
        &app,
        &sign(&app, Some("at+jwt"), Some(kid(&app)), &c),
        "wrong iss",
    )
    .await;
    let c = claims(&app, &admin.id);
    assert_refused(
        &app,
        &sign(&app, Some("JWT"), Some(kid(&app)), &c),
        "typ JWT (an ID token, say)",
    )
    .await;
    assert_refused(&app, &sign(&app, None, Some(kid(&app)), &c), "no typ").await;
    // The same claims with the right header are accepted: the refusals above are for the reason named.
    let resp = app
        .get(
            "/v1/admin/employers",
            &sign(&app, Some("at+jwt"), Some(kid(&app)), &c),
        )
        .await;
    assert_eq!(resp.status(), 200);
}

#[actix_web::test]
async fn a_tampered_payload_is_refused() {
    let app = spawn_app().await;
    let admin_token = app.admin_token().await;
    let employer = app.create_employer(&admin_token, "Acme").await;
    let portal = app
        .create_client(
            &admin_token,
            json!({"name": "p", "role": "hr_portal", "employer_id": employer}),
        )
        .await;
    let token = app.token(&portal).await;
    let parts: Vec<&str> = token.split('.').collect();
    let mut payload: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    payload["role"] = json!("admin");
    payload.as_object_mut().unwrap().remove("employer_id");
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(payload.to_string()),
        parts[2]
    );
    assert_refused(&app, &forged, "role escalation by editing the payload").await;
    assert_refused(&app, "not.a.jwt", "garbage").await;
}

#[actix_web::test]
async fn a_revoked_client_is_refused_at_once() {
    let app = spawn_app().await;
    let admin_token = app.admin_token().await;
    let other = app
        .create_client(
            &admin_token,
            json!({"name": "second admin", "role": "admin"}),
        )
        .await;
    let other_token = app.token(&other).await;
    assert_eq!(
        app.get("/v1/admin/clients", &other_token).await.status(),
        200
    );

    let resp = app
        .post_json(
            &format!("/v1/admin/clients/{}/revoke", other.id),
            &admin_token,
            &json!(null),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let rid = request_id(&resp);
    let view: Value = resp.json().await.unwrap();
    assert_eq!(view["status"], "revoked");
    let events = app.audit_for_request(&rid);
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].action.as_str(), events[0].resource_id.as_deref()),
        ("client.revoke", Some(other.id.as_str()))
    );

    assert_refused(&app, &other_token, "revoked client's token").await;
    let resp = app.token_response(&other).await;
    assert_eq!(resp.status(), 401);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"],
        "invalid_client"
    );
    let again = app
        .post_json(
            &format!("/v1/admin/clients/{}/revoke", other.id),
            &admin_token,
            &json!(null),
        )
        .await;
    assert_eq!(again.status(), 200, "revoking twice is harmless");
}

#[actix_web::test]
async fn rotating_a_secret_stops_the_old_secret_and_old_tokens() {
    let app = spawn_app().await;
    let admin_token = app.admin_token().await;
    let other = app
        .create_client(&admin_token, json!({"name": "rotating", "role": "auditor"}))
        .await;
    let old_token = app.token(&other).await;
    let resp = app
        .post_json(
            &format!("/v1/admin/clients/{}/rotate-secret", other.id),
            &admin_token,
            &json!(null),
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers().get("cache-control").unwrap(), "no-store");
    let body: Value = resp.json().await.unwrap();
    let new = Client {
        id: other.id.clone(),
        secret: body["client_secret"].as_str().unwrap().to_owned(),
    };
    assert_ne!(new.secret, other.secret);

    assert_eq!(app.token_response(&other).await.status(), 401, "old secret");
    let new_token = app.token(&new).await;
    // An auditor token reaches an admin route only to be refused for its role: 403, not 401.
    assert_eq!(app.get("/v1/admin/clients", &new_token).await.status(), 403);
    assert_refused(&app, &old_token, "token from before the rotation").await;
}

#[actix_web::test]
async fn a_second_signing_key_keeps_old_tokens_valid_after_rotation() {
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    let old = ed25519_dalek::SigningKey::from_bytes(&[7; 32])
        .to_pkcs8_pem(Default::default())
        .unwrap();
    let new = ed25519_dalek::SigningKey::from_bytes(&[8; 32])
        .to_pkcs8_pem(Default::default())
        .unwrap();
    let before = common::spawn_app_with(|v| {
        v.insert("EAP_TOKEN_SIGNING_KEY".into(), old.to_string());
    })
    .await;
    let admin = before.bootstrap_admin();
    let old_token = before.token(&admin).await;
    // The same database and old key, now behind a new active key: what an operator does.
    let db_url = before.database_url.clone();
    let after = common::spawn_app_with(|v| {
        v.insert(
            "EAP_TOKEN_SIGNING_KEY".into(),
            format!("{}{}", new.as_str(), old.as_str()),
        );
        v.insert(
            "EAP_DATABASE_URL".into(),
            match &db_url {
                eap_referrals::db::DatabaseUrl::Postgres(u) => u.clone(),
                eap_referrals::db::DatabaseUrl::Sqlite(p) => format!("sqlite://{}", p.display()),
            },
        );
    })
    .await;
    let jwks: Value = after
        .client
        .get(after.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
    assert_eq!(
        after.get("/v1/admin/clients", &old_token).await.status(),
        200,
        "old key still verifies"
    );
    let new_token = after.token(&admin).await;
    let kid = jsonwebtoken::decode_header(&new_token)
        .unwrap()
        .kid
        .unwrap();
    assert_eq!(
        kid, after.state.keys.token[0].kid,
        "new tokens are signed by the new key"
    );
    assert_ne!(kid, before.state.keys.token[0].kid);
}

#[actix_web::test]
async fn every_admin_route_refuses_other_roles_with_403_and_logs_it() {
    let app = spawn_app().await;
    let admin_token = app.admin_token().await;
    let employer = app.create_employer(&admin_token, "Acme").await;
    let provider = app.create_provider(&admin_token, "Care Co").await;
    let others = [
        app.create_client(
            &admin_token,
            json!({"name": "p", "role": "hr_portal", "employer_id": employer}),
        )
        .await,
        app.create_client(
            &admin_token,
            json!({"name": "q", "role": "provider", "provider_id": provider}),
        )
        .await,
        app.create_client(&admin_token, json!({"name": "a", "role": "auditor"}))
            .await,
    ];
    let spec: Value = serde_json::to_value(eap_referrals::openapi::spec()).unwrap();
    let mut checked = 0;
    for client in &others {
        let token = app.token(client).await;
        for (path, item) in spec["paths"].as_object().unwrap() {
            if !path.starts_with("/v1/admin/") {
                continue;
            }
            for method in item.as_object().unwrap().keys() {
                let url = app.url(&path.replace("{id}", &employer));
                let req = match method.as_str() {
                    "get" => app.client.get(url),
                    "post" => app.client.post(url).json(&json!({"name": "x"})),
                    "patch" => app.client.patch(url).json(&json!({"name": "x"})),
                    "delete" => app.client.delete(url),
                    other => panic!("unexpected method {other}"),
                };
                let resp = req.bearer_auth(&token).send().await.unwrap();
                let rid = request_id(&resp);
                problem(resp, 403).await;
                let events = app.audit_for_request(&rid);
                assert_eq!(events.len(), 1, "{method} {path}");
                let e = &events[0];
                assert_eq!(
                    (e.outcome.as_str(), e.http_status),
                    ("denied", 403),
                    "{method} {path}"
                );
                assert_eq!(e.actor_client_id.as_deref(), Some(client.id.as_str()));
                assert!(e.actor_role.is_some());
                checked += 1;
            }
        }
    }
    assert_eq!(
        checked,
        3 * 23,
        "every admin operation for every other role"
    );
}

#[actix_web::test]
async fn every_protected_operation_is_in_the_access_log_table() {
    let spec: Value = serde_json::to_value(eap_referrals::openapi::spec()).unwrap();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if op.get("security").is_some() || path == "/oauth/token" {
                assert!(
                    eap_referrals::audit::operation(&method.to_uppercase(), path).is_some(),
                    "{method} {path} has no access-log action"
                );
            }
        }
    }
    for (method, route) in eap_referrals::audit::model::protected_routes() {
        let item = &spec["paths"][route];
        assert!(
            item.get(method.to_lowercase()).is_some(),
            "{method} {route} is not an operation"
        );
    }
}

#[actix_web::test]
async fn a_broken_access_log_fails_closed() {
    let app = spawn_app().await;
    let admin_token = app.admin_token().await;
    let before = (app.count("employers"), app.count("audit_events"));
    app.break_audit_log();

    let resp = app
        .post_json(
            "/v1/admin/employers",
            &admin_token,
            &json!({"name": "Never"}),
        )
        .await;
    let body = problem(resp, 503).await;
    assert_eq!(body["type"], "urn:eap-referrals:problem:audit-unavailable");
    assert!(
        !body.to_string().contains("broken by test"),
        "the cause stays in the log"
    );
    let refused = app
        .client
        .get(app.url("/v1/admin/employers"))
        .send()
        .await
        .unwrap();
    problem(refused, 503).await;
    let token = app
        .client
        .post(app.url("/oauth/token"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), 503, "no token without its access event");

    app.repair_audit_log();
    assert_eq!(
        (app.count("employers"), app.count("audit_events")),
        before,
        "nothing was committed"
    );
    let resp = app
        .post_json("/v1/admin/employers", &admin_token, &json!({"name": "Now"}))
        .await;
    assert_eq!(resp.status(), 201);
}

#[actix_web::test]
async fn the_access_log_is_append_only() {
    let app = spawn_app().await;
    app.admin_token().await;
    let mut conn = app.conn();
    use diesel::connection::SimpleConnection;
    let c: &mut eap_referrals::db::AnyConnection = &mut conn;
    assert!(c
        .batch_execute("UPDATE audit_events SET outcome = 'success'")
        .is_err());
    assert!(c.batch_execute("DELETE FROM audit_events").is_err());
    if app.backend == eap_referrals::db::Backend::Postgres {
        assert!(c.batch_execute("TRUNCATE audit_events").is_err());
    }
    drop(conn);
    assert_eq!(
        app.count("audit_events"),
        2,
        "client.create by the CLI, token.issue"
    );
}

#[actix_web::test]
async fn client_bindings_are_validated() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let employer = app.create_employer(&token, "Acme").await;
    let cases = [
        (
            json!({"name": "p", "role": "hr_portal"}),
            "employer_id",
            "required",
        ),
        (
            json!({"name": "p", "role": "admin", "employer_id": employer}),
            "employer_id",
            "not_allowed",
        ),
        (
            json!({"name": "p", "role": "hr_portal", "employer_id": employer, "provider_id": employer}),
            "provider_id",
            "not_allowed",
        ),
        // Text that cannot be an id is malformed, whatever the directory holds; a NUL byte
        // included (PostgreSQL refuses it in text: it must never reach SQL).
        (
            json!({"name": "p", "role": "hr_portal", "employer_id": "no-such"}),
            "employer_id",
            "issued_id",
        ),
        (
            json!({"name": "p", "role": "provider", "provider_id": "a\u{0}b"}),
            "provider_id",
            "issued_id",
        ),
        (
            json!({"name": "p", "role": "hr_portal", "employer_id": employer.to_uppercase()}),
            "employer_id",
            "issued_id",
        ),
        (
            json!({"name": "p", "role": "superuser"}),
            "role",
            "invalid_value",
        ),
        // `null` is not "absent": the documented variants have no nullable binding.
        (
            json!({"name": "p", "role": "admin", "employer_id": null}),
            "employer_id",
            "invalid_type",
        ),
        (
            json!({"name": "p", "role": "hr_portal", "employer_id": employer, "provider_id": null}),
            "provider_id",
            "invalid_type",
        ),
        (
            json!({"name": "\u{7}bell", "role": "admin"}),
            "name",
            "plain_text",
        ),
    ];
    // A well-formed binding to no active employer or provider conflicts with the directory's
    // state: 409, naming the field.
    for (body, field) in [
        (
            json!({"name": "p", "role": "hr_portal", "employer_id": "00000000-0000-4000-8000-000000000000"}),
            "employer_id",
        ),
        (
            json!({"name": "p", "role": "provider", "provider_id": employer}),
            "provider_id",
        ),
    ] {
        let p = problem(app.post_json("/v1/admin/clients", &token, &body).await, 409).await;
        assert!(p["detail"].as_str().unwrap().starts_with(field), "{p}");
    }
    for (body, field, code) in cases {
        let resp = app.post_json("/v1/admin/clients", &token, &body).await;
        let p = problem(resp, 422).await;
        assert_eq!(
            (
                p["errors"][0]["field"].as_str(),
                p["errors"][0]["code"].as_str()
            ),
            (Some(field), Some(code)),
            "{body}"
        );
    }
}

#[actix_web::test]
async fn client_lists_page_with_cursors_and_never_show_secrets() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    for i in 0..4 {
        app.create_client(&token, json!({"name": format!("c{i}"), "role": "auditor"}))
            .await;
    }
    let mut seen = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let path = match &next {
            Some(c) => format!("/v1/admin/clients?limit=2&after={c}"),
            None => "/v1/admin/clients?limit=2".into(),
        };
        let resp = app.get(&path, &token).await;
        let rid = request_id(&resp);
        let page: Value = resp.json().await.unwrap();
        let items = page["items"].as_array().unwrap();
        assert!(items
            .iter()
            .all(|c| c.get("client_secret").is_none() && c.get("secret_hash").is_none()));
        // One access event per client delivered, none for an empty page.
        assert_eq!(app.audit_for_request(&rid).len(), items.len());
        seen.extend(
            items
                .iter()
                .map(|c| c["client_id"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => next = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5, "the admin and four more: {seen:?}");
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, seen, "in order, no repeats");
    problem(app.get("/v1/admin/clients?limit=0", &token).await, 422).await;
    problem(app.get("/v1/admin/clients?after=%%%", &token).await, 422).await;
    problem(app.get("/v1/admin/clients?colour=blue", &token).await, 422).await;
}

#[actix_web::test]
async fn a_client_cannot_revoke_itself_and_unknown_ids_are_404() {
    let app = spawn_app().await;
    let admin = app.bootstrap_admin();
    let token = app.token(&admin).await;
    let resp = app
        .post_json(
            &format!("/v1/admin/clients/{}/revoke", admin.id),
            &token,
            &json!(null),
        )
        .await;
    problem(resp, 409).await;
    problem(
        app.get(
            "/v1/admin/clients/00000000-0000-0000-0000-000000000000",
            &token,
        )
        .await,
        404,
    )
    .await;
    problem(app.get("/v1/admin/employers/nope", &token).await, 404).await;
    let resp = app
        .post_json("/v1/admin/clients/nope/rotate-secret", &token, &json!(null))
        .await;
    problem(resp, 404).await;
}

#[actix_web::test]
async fn an_oversized_token_request_is_refused_and_logged() {
    let app = spawn_app().await;
    let resp = app
        .client
        .post(app.url("/oauth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=client_credentials&client_id={}",
            "x".repeat(70 * 1024)
        ))
        .send()
        .await
        .unwrap();
    let rid = request_id(&resp);
    problem(resp, 413).await;
    let events = app.audit_for_request(&rid);
    assert_eq!(events.len(), 1);
    assert_eq!(
        (
            events[0].action.as_str(),
            events[0].outcome.as_str(),
            events[0].http_status
        ),
        ("token.issue", "failure", 413)
    );
}

/// The documented body of `POST /v1/admin/clients` is one variant per role with exactly the
/// fields that role takes: each variant's required fields are accepted, and any property a
/// variant does not list is refused.
#[actix_web::test]
async fn documented_client_variants_are_exactly_what_is_accepted() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let employer = app.create_employer(&token, "Acme").await;
    let provider = app.create_provider(&token, "Care Co").await;
    let spec: Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let variants = spec["components"]["schemas"]["CreateClientRequest"]["oneOf"]
        .as_array()
        .unwrap()
        .clone();
    let mut roles = Vec::new();
    for v in &variants {
        assert_eq!(v["additionalProperties"], false, "{v}");
        let role = v["properties"]["role"]["enum"][0]
            .as_str()
            .unwrap()
            .to_owned();
        let mut body = json!({"name": "n", "role": role});
        for f in v["required"].as_array().unwrap() {
            match f.as_str().unwrap() {
                "employer_id" => body["employer_id"] = json!(employer),
                "provider_id" => body["provider_id"] = json!(provider),
                _ => {}
            }
        }
        let resp = app.post_json("/v1/admin/clients", &token, &body).await;
        assert_eq!(resp.status(), 201, "{body}");
        for (field, value) in [("employer_id", &employer), ("provider_id", &provider)] {
            if v["properties"].get(field).is_none() {
                let mut extra = body.clone();
                extra[field] = json!(value);
                let resp = app.post_json("/v1/admin/clients", &token, &extra).await;
                problem(resp, 422).await;
            }
        }
        roles.push(role);
    }
    roles.sort();
    assert_eq!(roles, ["admin", "auditor", "hr_portal", "provider"]);
}
