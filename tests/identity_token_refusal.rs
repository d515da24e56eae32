//! Bearer tokens the service refuses: missing, forged, tampered, expired, for another audience,
//! or whose client was revoked or rotated; each refusal is a 401 with one denied access event.

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::{problem, request_id, spawn_app, Client, TestApp};
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

fn claims(app: &TestApp, client: &str) -> Value {
    let t = now();
    json!({
        "iss": app.state.config.token_issuer, "aud": app.state.config.token_audience,
        "sub": client, "client_id": client, "iat": t, "nbf": t, "exp": t + 300,
        "jti": uuid::Uuid::new_v4().to_string(), "role": "admin", "sv": app.secret_version(client),
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
async fn missing_token_is_401_without_an_error_code_and_logged() {
    let app = spawn_app().await;
    let resp = app.get_anonymous("/v1/admin/clients").await;
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

/// A second admin client, and a token of its own.
async fn second_admin(app: &TestApp, admin_token: &str) -> (Client, String) {
    let other = app
        .create_client(
            admin_token,
            json!({"name": "second admin", "role": "admin"}),
        )
        .await;
    let token = app.token(&other).await;
    (other, token)
}

async fn revoke(app: &TestApp, admin_token: &str, id: &str) -> reqwest::Response {
    app.post_json(
        &format!("/v1/admin/clients/{id}/revoke"),
        admin_token,
        &json!(null),
    )
    .await
}

#[actix_web::test]
async fn a_revoked_client_is_refused_at_once() {
    let app = spawn_app().await;
    let admin_token = app.admin_token().await;
    let (other, other_token) = second_admin(&app, &admin_token).await;
    assert_eq!(
        app.get("/v1/admin/clients", &other_token).await.status(),
        200
    );

    let resp = revoke(&app, &admin_token, &other.id).await;
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

/// The claims of a token the service issued, as JSON.
fn payload(token: &str) -> Value {
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// Defence in depth: a token carrying another tenant than its client's stored binding (one
/// minted with a leaked signing key, say) is refused, though its signature is good.
#[actix_web::test]
async fn a_token_whose_tenant_is_not_its_clients_binding_is_refused() {
    let app = spawn_app().await;
    let portal = app.setup_portal(1).await;
    let other_provider = app.create_provider(&portal.admin_token, "Elsewhere").await;
    let token = common::provider::provider_token(&app, &portal, &portal.provider).await;
    let claims = payload(&token);

    let same = sign(&app, Some("at+jwt"), Some(kid(&app)), &claims);
    let resp = app.get("/v1/provider/referrals", &same).await;
    assert_eq!(resp.status(), 200, "re-signed unchanged, it is accepted");

    let mut moved = claims.clone();
    moved["provider_id"] = json!(other_provider);
    moved["jti"] = json!(uuid::Uuid::new_v4().to_string());
    let forged = sign(&app, Some("at+jwt"), Some(kid(&app)), &moved);
    let resp = app.get("/v1/provider/referrals", &forged).await;
    let rid = request_id(&resp);
    problem(resp, 401).await;
    let events = app.audit_for_request(&rid);
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].outcome.as_str(), events[0].tenant_id.as_deref()),
        ("denied", None),
        "refused, and logged under no tenant"
    );
}

/// RFC 7515 §4.1.6: a `crit` header names extensions the recipient must understand; this
/// service understands none, so such a token is refused whatever else it holds.
#[actix_web::test]
async fn a_token_with_a_crit_header_is_refused() {
    let app = spawn_app().await;
    let admin = app.bootstrap_admin();
    let c = claims(&app, &admin.id);
    let plain = sign(&app, Some("at+jwt"), Some(kid(&app)), &c);
    assert_eq!(app.get("/v1/admin/employers", &plain).await.status(), 200);
    let mut header = Header::new(Algorithm::EdDSA);
    header.typ = Some("at+jwt".into());
    header.kid = Some(kid(&app));
    header.crit = Some(vec!["exp".into()]);
    let critical = jsonwebtoken::encode(&header, &c, &dev_signing_key(&app)).unwrap();
    assert_refused(&app, &critical, "crit header").await;
}

/// A second instance beside `a`, an admin token, and another admin client with its token,
/// whose status the second instance has read and now holds in its cache.
async fn cached_on_another_instance(a: &TestApp) -> (TestApp, String, Client, String) {
    let b = a.spawn_another_instance().await;
    let admin_token = a.admin_token().await;
    let (other, other_token) = second_admin(a, &admin_token).await;
    assert_eq!(b.get("/v1/admin/clients", &other_token).await.status(), 200);
    (b, admin_token, other, other_token)
}

/// Instance `b` refuses `token` within 500 ms of `changed` (it answers 200 until then).
async fn refused_within_500_ms(b: &TestApp, token: &str, changed: std::time::Instant) {
    loop {
        let status = b.get("/v1/admin/clients", token).await.status();
        if status == 401 {
            break;
        }
        assert_eq!(status, 200);
        assert!(
            changed.elapsed() < std::time::Duration::from_millis(500),
            "instance B still admits the changed client after 500 ms"
        );
        actix_web::rt::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Revoking a client on one instance reaches the others when it commits (PostgreSQL
/// LISTEN/NOTIFY), not when their cached status expires seconds later.
#[actix_web::test]
async fn a_client_revoked_on_one_instance_is_refused_on_another_within_500_ms() {
    let a = spawn_app().await;
    if a.backend != eap_referrals::db::Backend::Postgres {
        return; // instances share a database only on PostgreSQL
    }
    let (b, admin_token, other, other_token) = cached_on_another_instance(&a).await;
    assert_eq!(revoke(&a, &admin_token, &other.id).await.status(), 200);
    refused_within_500_ms(&b, &other_token, std::time::Instant::now()).await;
}

/// Rotating a client's secret is announced the same way: a token issued before the rotation
/// (a leaked one, say, which is why secrets are rotated) stops working on every instance when
/// the rotation commits.
#[actix_web::test]
async fn a_client_rotated_on_one_instance_is_refused_on_another_within_500_ms() {
    let a = spawn_app().await;
    if a.backend != eap_referrals::db::Backend::Postgres {
        return; // instances share a database only on PostgreSQL
    }
    let (b, admin_token, other, old_token) = cached_on_another_instance(&a).await;
    let path = format!("/v1/admin/clients/{}/rotate-secret", other.id);
    let resp = a.post_json(&path, &admin_token, &json!(null)).await;
    assert_eq!(resp.status(), 200);
    refused_within_500_ms(&b, &old_token, std::time::Instant::now()).await;
}
