//! `HEAD` for every `GET` (RFC 9110 §9.3.2): the same status and headers, no body.
//!
//! A `HEAD` is turned into a `GET` before routing, so it goes through exactly the `GET`'s code:
//! its route, the caller extractor (authentication, role, rate budget), tenancy, the access-log
//! event (looked up by method and route template, so it is the `GET`'s operation) and the
//! handler that sets the headers. Registering `HEAD` beside each handler instead would need a
//! second entry per route in the access-log table and in the document, and each could drift
//! from its `GET`. The connection still knows the request was a `HEAD` (actix-http records it
//! when it parses the request line), so it sends the headers, with the `GET`'s
//! `Content-Length`, and drops the body. A handler whose body costs work of its own (the
//! streamed audit export, the long poll) asks `is_head` and skips what nobody would receive.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest};

/// Marks a request that arrived as `HEAD` and is being served as a `GET`.
#[derive(Debug, Clone, Copy)]
struct Head;

/// Serves a `HEAD` as the `GET` of the same path. A path with no `GET` then answers 405 with
/// the `Allow` of its methods, as it would for any other method it lacks.
pub async fn as_get(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if req.method() == Method::HEAD {
        req.head_mut().method = Method::GET;
        req.extensions_mut().insert(Head);
    }
    next.call(req).await
}

/// Whether the request arrived as `HEAD`: its response body will not be sent.
pub fn is_head(req: &HttpRequest) -> bool {
    req.extensions().get::<Head>().is_some()
}
