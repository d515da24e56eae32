//! The outbound HTTP client for deliveries. A webhook URL is attacker-controlled input, so every
//! address a delivery connects to is checked where the connection is made: in the client's own
//! resolver (a name that resolves to a private address, or rebinds to one between checks,
//! cannot slip past), and for a literal IP before the client is called at all (the client never
//! resolves those). No proxy, no redirects, a time limit, and no response body is read.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::model::{self, check_url, AddressPolicy, AttemptResult, UrlRefusal};

/// What an attempt answered, for the attempt record: no body, no URL.
#[derive(Debug, Clone)]
pub struct Sent {
    pub result: AttemptResult,
    pub status: Option<u16>,
    /// A closed code when no response came: `timeout`, `connect`, `address_refused`,
    /// `invalid_url`, `request`.
    pub error: Option<&'static str>,
    pub latency: Duration,
}

/// Resolves with the system resolver and keeps only the addresses the policy allows; none
/// left is an error, so the connection is never attempted.
struct PolicyResolver {
    policy: AddressPolicy,
}

#[derive(Debug, thiserror::Error)]
#[error("every address of the host is refused by the outbound address policy")]
struct AddressRefused;

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            if !policy.may_resolve(&host) {
                return Err(Box::new(AddressRefused) as Box<dyn std::error::Error + Send + Sync>);
            }
            let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let allowed: Vec<SocketAddr> = found.filter(|a| policy.allows(a.ip())).collect();
            if allowed.is_empty() {
                return Err(Box::new(AddressRefused) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// The delivery client and the rules it sends under.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    policy: AddressPolicy,
    https_only: bool,
}

impl Client {
    pub fn new(policy: AddressPolicy, https_only: bool, timeout: Duration) -> Self {
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout)
            .https_only(https_only)
            .dns_resolver(Arc::new(PolicyResolver { policy }))
            .user_agent(concat!(
                "eap-referrals-webhooks/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .expect("a rustls client with no system configuration builds");
        Client {
            http,
            policy,
            https_only,
        }
    }

    /// Sends one signed delivery. The URL is checked again (a literal address must pass the
    /// policy before anything is sent; the resolver checks names).
    pub async fn send(
        &self,
        url: &str,
        headers: Vec<(&'static str, String)>,
        body: Vec<u8>,
    ) -> Sent {
        let started = Instant::now();
        let sent = |result, status, error| Sent {
            result,
            status,
            error,
            latency: started.elapsed(),
        };
        let retry = AttemptResult::Retry { retry_after: None };
        let url = match check_url(url, self.https_only, self.policy) {
            Ok(u) => u,
            Err(UrlRefusal::Address) => return sent(retry, None, Some("address_refused")),
            Err(_) => return sent(retry, None, Some("invalid_url")),
        };
        let mut req = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        for (name, value) in headers {
            req = req.header(name, value);
        }
        match req.send().await {
            // The body is never read: the status and Retry-After are all a delivery needs, and
            // a receiver cannot make the service buffer anything.
            Ok(resp) => {
                let status = resp.status().as_u16();
                let result = match status {
                    200..=299 => AttemptResult::Delivered,
                    410 => AttemptResult::Gone,
                    _ => AttemptResult::Retry {
                        retry_after: retry_after(resp.headers()),
                    },
                };
                sent(result, Some(status), None)
            }
            Err(e) => {
                let error = if refused_by_policy(&e) {
                    "address_refused"
                } else if e.is_timeout() {
                    "timeout"
                } else if e.is_connect() {
                    "connect"
                } else {
                    "request"
                };
                sent(retry, None, Some(error))
            }
        }
    }
}

fn refused_by_policy(e: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.downcast_ref::<AddressRefused>().is_some() {
            return true;
        }
        source = s.source();
    }
    false
}

/// `Retry-After`, in delay-seconds or as an HTTP-date ([`model::parse_retry_after`]).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    model::parse_retry_after(v, chrono::Utc::now())
}
