//! The `Referral-Token` header: the status token a portal was given at submission, which every
//! later request about that referral presents (status, cancellation, erasure).

use actix_web::http::header::HeaderName;
use actix_web::HttpRequest;

pub const REFERRAL_TOKEN: HeaderName = HeaderName::from_static("referral-token");

/// The header's value, trimmed; absent or unreadable is `None` (then no referral matches).
pub fn referral_token(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(REFERRAL_TOKEN)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_owned())
}
