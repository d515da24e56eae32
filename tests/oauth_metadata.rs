//! RFC 8414 authorization server metadata: what it advertises is what the server does.

mod common;

use common::{free_port, spawn_app_with, Client, TestApp};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::Method;
use serde_json::Value;

const METADATA: &str = "/.well-known/oauth-authorization-server";

/// An app whose default issuer, `http://$EAP_LISTEN`, is the address it really serves on.
async fn app_on_a_known_port() -> TestApp {
    let listen = format!("127.0.0.1:{}", free_port());
    spawn_app_with(|v| {
        v.insert("EAP_LISTEN".into(), listen);
    })
    .await
}

async fn metadata(app: &TestApp) -> Value {
    let resp = app.get_anonymous(METADATA).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers().get("cache-control").unwrap(),
        "public, max-age=300",
        "cacheable like the keys"
    );
    resp.json().await.unwrap()
}

/// A token request with one advertised client authentication method.
async fn token_with(app: &TestApp, url: &str, method: &str, grant: &str, c: &Client) -> Value {
    let req = app.client.post(url);
    let req = match method {
        "client_secret_basic" => req
            .basic_auth(&c.id, Some(&c.secret))
            .form(&[("grant_type", grant)]),
        "client_secret_post" => req.form(&[
            ("grant_type", grant),
            ("client_id", c.id.as_str()),
            ("client_secret", c.secret.as_str()),
        ]),
        other => panic!("{other} is advertised: teach this test to use it"),
    };
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), 200, "{method} with {grant}");
    resp.json().await.unwrap()
}

#[actix_web::test]
async fn the_metadata_is_found_under_the_issuer_and_every_url_in_it_resolves() {
    let app = app_on_a_known_port().await;
    let m = metadata(&app).await;
    let issuer = m["issuer"].as_str().unwrap();
    assert_eq!(issuer, app.address, "the default issuer is where it serves");
    // RFC 8414 §3: the document is at the issuer plus the well-known path, and names that
    // same issuer (§3.3).
    let again: Value = app
        .client
        .get(format!("{issuer}{METADATA}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again, m);
    let jwks = app
        .client
        .get(m["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(jwks.status(), 200);
    assert!(jwks.json::<Value>().await.unwrap()["keys"][0]["kid"].is_string());
    let docs = app
        .client
        .get(m["service_documentation"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(docs.status(), 200);
    assert!(docs.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    // The token endpoint exists, and takes only POST.
    let token = m["token_endpoint"].as_str().unwrap();
    assert_eq!(token, format!("{issuer}/oauth/token"));
    let get = app.client.get(token).send().await.unwrap();
    assert_eq!(get.status(), 405);
    assert_eq!(get.headers()["allow"], "POST");
}

/// Every advertised grant type with every advertised client authentication method gets a
/// token, signed by a key at `jwks_uri`, whose `iss` is the advertised issuer.
#[actix_web::test]
async fn every_advertised_grant_and_client_authentication_method_gets_a_token() {
    let app = app_on_a_known_port().await;
    let m = metadata(&app).await;
    let admin = app.bootstrap_admin();
    let jwks: Value = app
        .client
        .get(m["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let x = jwks["keys"][0]["x"].as_str().unwrap();
    let key = DecodingKey::from_ed_components(x).unwrap();
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_audience(&["eap-referrals"]);
    validation.set_issuer(&[m["issuer"].as_str().unwrap()]);
    let methods = m["token_endpoint_auth_methods_supported"]
        .as_array()
        .unwrap();
    let grants = m["grant_types_supported"].as_array().unwrap();
    assert_eq!(grants, &[Value::from("client_credentials")]);
    assert_eq!(methods.len(), 2, "{methods:?}");
    for grant in grants {
        for method in methods {
            let url = m["token_endpoint"].as_str().unwrap();
            let (method, grant) = (method.as_str().unwrap(), grant.as_str().unwrap());
            let body = token_with(&app, url, method, grant, &admin).await;
            let token = body["access_token"].as_str().unwrap();
            let claims = jsonwebtoken::decode::<Value>(token, &key, &validation)
                .unwrap_or_else(|e| panic!("{method}: {e}"))
                .claims;
            assert_eq!(claims["client_id"], admin.id.as_str());
            let resp = app
                .request(Method::GET, "/v1/admin/employers", Some(token), &[])
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200, "the token of {method} works");
        }
    }
}

/// No authorization endpoint, so no response type: the required member is there, and empty.
/// Scopes do not exist (a `scope` is accepted and ignored), so none are advertised.
#[actix_web::test]
async fn it_claims_no_response_type_and_no_scope() {
    let app = app_on_a_known_port().await;
    let m = metadata(&app).await;
    assert_eq!(m["response_types_supported"], Value::Array(Vec::new()));
    assert!(m.get("scopes_supported").is_none());
    assert!(m.get("authorization_endpoint").is_none());
}

/// An explicit issuer (the public URL behind a proxy) is kept exactly, and every URL is built
/// under it.
#[actix_web::test]
async fn a_configured_issuer_is_the_base_of_every_advertised_url() {
    let app = spawn_app_with(|v| {
        v.insert("EAP_TOKEN_ISSUER".into(), "https://eap.example.org/".into());
    })
    .await;
    let m = metadata(&app).await;
    assert_eq!(m["issuer"], "https://eap.example.org/");
    assert_eq!(m["token_endpoint"], "https://eap.example.org/oauth/token");
    assert_eq!(
        m["jwks_uri"],
        "https://eap.example.org/.well-known/jwks.json"
    );
    assert_eq!(m["service_documentation"], "https://eap.example.org/docs/");
}
