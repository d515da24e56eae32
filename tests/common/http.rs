//! Requests to a spawned app, and the checks every error response must pass.

use reqwest::{Method, RequestBuilder, Response};
use serde_json::Value;

use super::{Client, TestApp};

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// A request to `path`, with a bearer token when one is given and the extra headers; for
    /// the shapes the helpers below do not cover.
    pub fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
    ) -> RequestBuilder {
        let mut req = self.client.request(method, self.url(path));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        req
    }

    pub async fn get(&self, path: &str, token: &str) -> Response {
        self.get_with_headers(path, Some(token), &[]).await
    }

    /// A GET with no credentials at all.
    pub async fn get_anonymous(&self, path: &str) -> Response {
        self.anonymous(Method::GET, path).await
    }

    /// A request with no credentials and no body.
    pub async fn anonymous(&self, method: Method, path: &str) -> Response {
        send(self.request(method, path, None, &[])).await
    }

    pub async fn get_with_headers(
        &self,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Response {
        send(self.request(Method::GET, path, token, headers)).await
    }

    pub async fn post_json(&self, path: &str, token: &str, body: &Value) -> Response {
        send(
            self.request(Method::POST, path, Some(token), &[])
                .json(body),
        )
        .await
    }

    pub async fn patch_json(&self, path: &str, token: &str, body: &Value) -> Response {
        send(
            self.request(Method::PATCH, path, Some(token), &[])
                .json(body),
        )
        .await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Response {
        send(self.request(Method::DELETE, path, Some(token), &[])).await
    }

    /// Posts exactly `body`, labelled `content_type` (which need not describe it).
    pub async fn post_raw(
        &self,
        path: &str,
        token: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> Response {
        let headers = [("content-type", content_type)];
        send(
            self.request(Method::POST, path, Some(token), &headers)
                .body(body),
        )
        .await
    }

    /// A portal's call on one referral: its bearer token and the referral's status token.
    pub async fn portal_call(
        &self,
        method: Method,
        path: &str,
        portal_token: &str,
        referral_token: &str,
    ) -> Response {
        let headers = [("referral-token", referral_token)];
        send(self.request(method, path, Some(portal_token), &headers)).await
    }

    /// `POST /oauth/token` with `form` as the body and no Basic credentials.
    pub async fn token_form<T: serde::Serialize + ?Sized>(&self, form: &T) -> Response {
        send(
            self.request(Method::POST, "/oauth/token", None, &[])
                .form(form),
        )
        .await
    }

    /// A client-credentials token request, authenticated with Basic.
    pub async fn token_request(&self, id: &str, secret: &str) -> Response {
        let req = self.request(Method::POST, "/oauth/token", None, &[]);
        let req = req.basic_auth(id, Some(secret));
        send(req.form(&[("grant_type", "client_credentials")])).await
    }

    /// [`TestApp::token_request`] sent from another loopback address (any of 127.0.0.0/8), as
    /// a caller elsewhere would: the service sees it as the socket peer.
    pub async fn token_request_from(&self, source: &str, id: &str, secret: &str) -> Response {
        let from = reqwest::Client::builder()
            .local_address(Some(source.parse().unwrap()))
            .build()
            .unwrap();
        let req = from
            .post(self.url("/oauth/token"))
            .basic_auth(id, Some(secret));
        send(req.form(&[("grant_type", "client_credentials")])).await
    }

    pub async fn token_response(&self, client: &Client) -> Response {
        self.token_request(&client.id, &client.secret).await
    }
}

async fn send(req: RequestBuilder) -> Response {
    req.send().await.unwrap()
}

/// Reads the request id the server echoed.
pub fn request_id(resp: &Response) -> String {
    resp.headers()
        .get("x-request-id")
        .expect("every response carries X-Request-Id")
        .to_str()
        .unwrap()
        .to_owned()
}

/// Asserts an RFC 9457 body with the given status, and returns it.
pub async fn problem(resp: Response, status: u16) -> Value {
    assert_eq!(resp.status(), status);
    assert_eq!(
        resp.headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap()),
        Some("application/problem+json")
    );
    let rid = request_id(&resp);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], status);
    assert!(body["type"]
        .as_str()
        .unwrap()
        .starts_with("urn:eap-referrals:problem:"));
    assert!(body["title"].is_string());
    assert_eq!(
        body["request_id"],
        rid.as_str(),
        "the body names the request id"
    );
    body
}
