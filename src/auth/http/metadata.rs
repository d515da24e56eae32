//! The authorization server's metadata (RFC 8414), so a client library configures itself from
//! the issuer: where to get a token, how to authenticate there, and where the keys are.

use actix_web::http::header;
use actix_web::{get, web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::token::{CLIENT_AUTH_METHODS, GRANT_TYPES};
use crate::state::AppState;

/// RFC 8414 §2 authorization server metadata. There is no `scopes_supported`: the token
/// endpoint accepts a `scope` and ignores it, access being decided by the client's role.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServerMetadata {
    /// The issuer identifier: exactly the `iss` of the access tokens (`EAP_TOKEN_ISSUER`).
    #[schema(example = "https://eap.example.org")]
    pub issuer: String,
    /// The token endpoint, under the issuer.
    #[schema(example = "https://eap.example.org/oauth/token")]
    pub token_endpoint: String,
    /// The JWK Set that verifies access tokens.
    #[schema(example = "https://eap.example.org/.well-known/jwks.json")]
    pub jwks_uri: String,
    /// `client_credentials` only.
    pub grant_types_supported: Vec<String>,
    /// `client_secret_basic` (HTTP Basic) and `client_secret_post` (form fields).
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// Empty: response types are values for an authorization endpoint, and this server has
    /// none (the client credentials grant uses the token endpoint alone). RFC 8414 requires
    /// the member, so it is present and lists nothing.
    pub response_types_supported: Vec<String>,
    /// The API reference (Swagger UI).
    #[schema(example = "https://eap.example.org/docs/")]
    pub service_documentation: String,
}

impl ServerMetadata {
    /// The document for `issuer`, with every endpoint under it. The configuration checks that
    /// the issuer is an http(s) URL with no query or fragment (RFC 8414 §2).
    pub fn for_issuer(issuer: &str) -> Self {
        let base = issuer.trim_end_matches('/');
        let owned = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect();
        ServerMetadata {
            issuer: issuer.to_owned(),
            token_endpoint: format!("{base}/oauth/token"),
            jwks_uri: format!("{base}/.well-known/jwks.json"),
            grant_types_supported: owned(GRANT_TYPES),
            token_endpoint_auth_methods_supported: owned(CLIENT_AUTH_METHODS),
            response_types_supported: Vec::new(),
            service_documentation: format!("{base}/docs/"),
        }
    }
}

/// Authorization server metadata (RFC 8414): the issuer, the token endpoint and how a client
/// authenticates there, and the keys that verify the tokens. Public, and cacheable like the
/// keys.
#[utoipa::path(
    tag = "auth",
    responses((status = 200, description = "RFC 8414 metadata", body = ServerMetadata)),
)]
#[get("/.well-known/oauth-authorization-server")]
pub async fn server_metadata(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .json(ServerMetadata::for_issuer(&state.config.token_issuer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_endpoint_lies_under_the_issuer_which_is_kept_as_configured() {
        for issuer in ["https://eap.example.org", "https://eap.example.org/"] {
            let m = ServerMetadata::for_issuer(issuer);
            assert_eq!(m.issuer, issuer, "the tokens' iss, byte for byte");
            assert_eq!(m.token_endpoint, "https://eap.example.org/oauth/token");
            assert_eq!(m.jwks_uri, "https://eap.example.org/.well-known/jwks.json");
            assert_eq!(m.service_documentation, "https://eap.example.org/docs/");
        }
        let m = ServerMetadata::for_issuer("https://example.org/eap");
        assert_eq!(m.token_endpoint, "https://example.org/eap/oauth/token");
    }

    #[test]
    fn it_advertises_what_the_token_endpoint_accepts_and_no_response_type() {
        let m = ServerMetadata::for_issuer("http://127.0.0.1:8080");
        assert_eq!(m.grant_types_supported, ["client_credentials"]);
        assert_eq!(
            m.token_endpoint_auth_methods_supported,
            ["client_secret_basic", "client_secret_post"]
        );
        assert!(m.response_types_supported.is_empty());
        let json = serde_json::to_value(&m).unwrap();
        assert!(json["response_types_supported"].is_array(), "required");
        assert!(json.get("scopes_supported").is_none(), "no scopes exist");
        assert!(json.get("authorization_endpoint").is_none());
    }
}
