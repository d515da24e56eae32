//! Logging set-up and the request middleware: request id, span, access line, error rendering.
//!
//! This replaces tracing-actix-web's root span on purpose: that span records `http.target`,
//! the full query string, which may carry tokens. Ours records the route template instead.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::HttpMessage;
use tracing::Instrument;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;
use crate::error::{from_actix, render};
use crate::extract::RequestId;

pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

pub const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
pub const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'";
const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' data:; font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; \
    base-uri 'none'; form-action 'none'";
/// The console: its own files only, no inline script or style (so API data that slipped into
/// markup could not run), and calls to this origin only.
pub const CONSOLE_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self'; connect-src 'self'; object-src 'none'; frame-ancestors 'none'; \
    base-uri 'none'; form-action 'none'";

/// Headers on every response. API data is never stored by a cache or browser (a shared
/// proxy keeping a referral's status or a contact block would be a leak); only the API
/// description and its viewer, and the public keys (which set their own max-age), may be.
/// Responses are data, never documents: no sniffing them into HTML, no framing, no referrer.
fn security_headers(headers: &mut actix_web::http::header::HeaderMap, path: &str, tls: bool) {
    use actix_web::http::header;
    // Only over TLS: on plain HTTP the header is ignored by browsers and would only mislead.
    if tls {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    let public = path == "/openapi.json" || path == "/docs" || path.starts_with("/docs/");
    // The API answers data, never a page: nothing in it may run or load. The docs page is
    // Swagger UI, served from this origin: its scripts and styles are files here (its
    // components also set inline styles), it draws data: images, and it fetches the document
    // and, for "try it out", the API itself.
    let policy = if path == "/docs" || path.starts_with("/docs/") {
        DOCS_CSP
    } else if path == "/console" || path.starts_with("/console/") {
        CONSOLE_CSP
    } else {
        API_CSP
    };
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(policy),
    );
    if !public && !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

/// Installs the global subscriber. `RUST_LOG` sets the level (default `info`).
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (tests start many apps in one process) is harmless, so ignore it.
    let _ = match format {
        LogFormat::Text => builder.with_target(false).try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
}

/// Accepts a caller's `X-Request-Id` only when it is short and plain, so it cannot inject
/// into logs; otherwise a fresh UUIDv7 is used.
fn request_id_from(req: &ServiceRequest) -> String {
    req.headers()
        .get(&REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 128
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string())
}

pub async fn request_lifecycle(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let request_id = request_id_from(&req);
    req.extensions_mut().insert(RequestId(request_id.clone()));
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    // A standard method clones without allocating.
    let method = req.method().clone();
    let state = req
        .app_data::<actix_web::web::Data<crate::state::AppState>>()
        .cloned();
    let tls = state.as_ref().is_some_and(|s| s.config.tls.is_some());
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %req.method(),
        route = %route,
    );
    // Only the path is kept: cloning the request here would stop the router from matching.
    let path = req.path().to_owned();
    let result = next.call(req).instrument(span.clone()).await;

    let response = match result {
        Ok(res) => match res.response().error() {
            // Re-render every error — ours and actix-web's — once, with id and path.
            Some(err) => {
                let api = from_actix(err);
                let (req, _) = res.into_parts();
                let body = render(&api, Some(&request_id), Some(req.path()));
                log_cause(&span, &api);
                ServiceResponse::new(req, body).map_into_boxed_body()
            }
            None => res.map_into_boxed_body(),
        },
        Err(err) => {
            // No response to attach to: hand actix an error that renders itself in full.
            let api = from_actix(&err);
            log_cause(&span, &api);
            // Counted like every other answer.
            if let Some(state) = &state {
                let status = actix_web::ResponseError::status_code(&api).as_u16();
                state
                    .metrics
                    .observe(route, method.as_str(), status, started.elapsed());
            }
            return Err(Rendered {
                api,
                request_id,
                path,
                tls,
            }
            .into());
        }
    };
    let mut response = response;
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    let applied = response
        .request()
        .extensions()
        .get::<crate::ratelimit::Applied>()
        .copied();
    if let Some(crate::ratelimit::Applied(verdict)) = applied {
        let (policy, state) = verdict.headers();
        for (name, value) in [(RATELIMIT_POLICY, policy), (RATELIMIT, state)] {
            if let Ok(v) = HeaderValue::from_str(&value) {
                response.headers_mut().insert(name, v);
            }
        }
    }
    security_headers(response.headers_mut(), &path, tls);
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    if let Some(state) = &state {
        state
            .metrics
            .observe(route, method.as_str(), status, elapsed);
    }
    let latency_ms = elapsed.as_secs_f64() * 1000.0;
    span.in_scope(|| {
        if status >= 500 {
            tracing::warn!(status, latency_ms, "request finished");
        } else {
            tracing::info!(status, latency_ms, "request finished");
        }
    });
    Ok(response)
}

fn log_cause(span: &tracing::Span, err: &crate::error::ApiError) {
    if let Some(cause) = err.hidden_cause() {
        span.in_scope(|| tracing::error!(cause, "request failed"));
    }
}

/// An error that renders with its request id and path when no response exists to rewrite.
#[derive(Debug)]
struct Rendered {
    api: crate::error::ApiError,
    request_id: String,
    path: String,
    tls: bool,
}

impl std::fmt::Display for Rendered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.api.fmt(f)
    }
}

impl actix_web::ResponseError for Rendered {
    fn status_code(&self) -> actix_web::http::StatusCode {
        self.api.status_code()
    }

    fn error_response(&self) -> actix_web::HttpResponse {
        let mut resp = render(&self.api, Some(&self.request_id), Some(&self.path));
        if let Ok(v) = HeaderValue::from_str(&self.request_id) {
            resp.headers_mut().insert(REQUEST_ID_HEADER, v);
        }
        security_headers(resp.headers_mut(), &self.path, self.tls);
        resp
    }
}
