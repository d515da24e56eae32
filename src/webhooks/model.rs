//! Webhooks without I/O: Standard Webhooks signing, the id-only payload, the retry schedule,
//! and the policy on URLs and on the addresses a delivery may connect to.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chrono::NaiveDateTime;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;

use crate::codes::Code;
use crate::workflow::model::FeedKind;

/// The prefix Standard Webhooks libraries expect on a secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// How long the previous secret keeps signing beside the new one after a rotation.
pub const ROTATION_OVERLAP: chrono::TimeDelta = chrono::TimeDelta::hours(24);

/// A receiver that has not answered within this long is retried later.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest wait between two attempts, however many came before (and however long a
/// `Retry-After` asks for).
pub const MAX_RETRY_WAIT: Duration = Duration::from_secs(6 * 3600);

/// Endpoints a provider may hold: each is a delivery per event, so the bound keeps one
/// provider from multiplying the outbound traffic.
pub const MAX_ENDPOINTS_PER_PROVIDER: i64 = 5;

/// An endpoint's state, stored as its code.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    utoipa::ToSchema,
    diesel::AsExpression,
    diesel::FromSqlRow,
)]
#[diesel(sql_type = diesel::sql_types::Text)]
#[serde(rename_all = "snake_case")]
pub enum EndpointStatus {
    /// Receives events.
    Active,
    /// An event was still undelivered when its retries ran out; new events still go out.
    Failing,
    /// Answered 410 Gone, or disabled by an admin: nothing is sent.
    Disabled,
}

impl Code for EndpointStatus {
    const ALL: &'static [EndpointStatus] = &[
        EndpointStatus::Active,
        EndpointStatus::Failing,
        EndpointStatus::Disabled,
    ];
    fn code(self) -> &'static str {
        match self {
            EndpointStatus::Active => "active",
            EndpointStatus::Failing => "failing",
            EndpointStatus::Disabled => "disabled",
        }
    }
}

/// A delivery's state, stored as its code.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    utoipa::ToSchema,
    diesel::AsExpression,
    diesel::FromSqlRow,
)]
#[diesel(sql_type = diesel::sql_types::Text)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    Pending,
    Delivered,
    /// Retries ran out, or the endpoint answered 410.
    Failed,
}

impl Code for DeliveryState {
    const ALL: &'static [DeliveryState] = &[
        DeliveryState::Pending,
        DeliveryState::Delivered,
        DeliveryState::Failed,
    ];
    fn code(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
        }
    }
}

crate::text_code!(EndpointStatus, DeliveryState);

/// The `webhook-id` of a delivery: the same on every retry of one event to one endpoint.
pub fn message_id(endpoint_id: &str, delivery_id: i64) -> String {
    format!("msg_{}_{}", endpoint_id.replace('-', ""), delivery_id)
}

/// A fresh signing secret: 32 random bytes, base64, with the `whsec_` prefix.
pub fn generate_secret() -> String {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).expect("the operating system's random source works");
    format!("{SECRET_PREFIX}{}", B64.encode(key))
}

/// The `v1` signature of one message under one secret: base64 HMAC-SHA256 over
/// `id.timestamp.body`, keyed with the secret's decoded bytes. `None` for a secret not of the
/// `whsec_<base64>` form (never stored: the service makes its secrets).
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
    let key = B64.decode(secret.strip_prefix(SECRET_PREFIX)?).ok()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(format!("v1,{}", B64.encode(mac.finalize().into_bytes())))
}

/// The `webhook-signature` header: one signature per secret in force, space-separated, so a
/// receiver holding either the old or the new secret verifies during a rotation.
pub fn signature_header(secrets: &[&str], id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets
        .iter()
        .filter_map(|s| sign(s, id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// What a delivery carries: the event's type and ids only. The receiver reads the referral
/// through the API, where each read is an access-log event; nothing personal leaves here.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WebhookPayload {
    /// `referral.<kind>` for a feed event (`referral.offered`, `referral.erased`, …), or
    /// `ping`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// When the event happened (RFC 3339).
    pub timestamp: chrono::DateTime<chrono::Utc>,
    pub data: WebhookPayloadData,
}

/// A feed event's ids; empty for a `ping`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WebhookPayloadData {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub referral_id: Option<String>,
    /// The feed event's kind, as `GET /v1/provider/events` names it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub kind: Option<FeedKind>,
    /// The event's feed position: `GET /v1/provider/events?after=<cursor>` resumes right
    /// after it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub cursor: Option<String>,
}

/// A feed event as a delivery carries it.
#[derive(Debug, Clone)]
pub struct EventRef {
    pub referral_id: String,
    pub kind: FeedKind,
    pub txid: i64,
    pub id: i64,
}

pub fn payload(event: Option<&EventRef>, at: NaiveDateTime) -> WebhookPayload {
    match event {
        Some(e) => WebhookPayload {
            event_type: format!("referral.{}", e.kind.code()),
            timestamp: at.and_utc(),
            data: WebhookPayloadData {
                referral_id: Some(e.referral_id.clone()),
                kind: Some(e.kind),
                cursor: Some(format!("{}.{}", e.txid, e.id)),
            },
        },
        None => WebhookPayload {
            event_type: "ping".into(),
            timestamp: at.and_utc(),
            data: WebhookPayloadData {
                referral_id: None,
                kind: None,
                cursor: None,
            },
        },
    }
}

/// The retry schedule: exponential from `base`, each wait at most `cap`, with jitter.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub base: Duration,
    /// After this long since the event, a failing delivery is given up (72 h by default).
    pub max_age: Duration,
    pub cap: Duration,
}

/// What one attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptResult {
    /// 2xx.
    Delivered,
    /// 410: the receiver asks never to be called again.
    Gone,
    /// Any other answer, a timeout, a refused connection or a refused address: try again.
    Retry { retry_after: Option<Duration> },
}

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Done,
    DisableEndpoint,
    RetryAfter(Duration),
    /// Retries ran out: the delivery fails and the endpoint is marked failing.
    GiveUp,
}

impl RetryPolicy {
    /// The wait before attempt `attempts + 1` (attempts made so far ≥ 1), before jitter:
    /// base·2^(attempts−1), at most `cap`.
    pub fn backoff(&self, attempts: u32) -> Duration {
        let factor = 1u32
            .checked_shl(attempts.saturating_sub(1).min(31))
            .unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The decision after an attempt: `age` is the time since the event, `jitter` a number in
    /// [0, 1) that spreads retries of many deliveries over the last quarter of the wait, so
    /// receivers coming back up are not hit by every retry at once. A `Retry-After` is
    /// honoured when it asks for longer (up to `cap`).
    pub fn next(&self, result: AttemptResult, attempts: u32, age: Duration, jitter: f64) -> Next {
        match result {
            AttemptResult::Delivered => Next::Done,
            AttemptResult::Gone => Next::DisableEndpoint,
            AttemptResult::Retry { retry_after } => {
                let wait = self.backoff(attempts);
                let wait = wait.mul_f64(0.75 + 0.25 * jitter.clamp(0.0, 1.0));
                let wait = retry_after.map_or(wait, |r| wait.max(r.min(self.cap)));
                // A delivery is retried at least once, however late its first attempt came
                // (the commit-order horizon can hold an event back).
                if attempts > 1 && age + wait > self.max_age {
                    Next::GiveUp
                } else {
                    Next::RetryAfter(wait)
                }
            }
        }
    }
}

/// Which outbound addresses a delivery may connect to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressPolicy {
    /// Development and tests only (`EAP_WEBHOOK_ALLOW_LOOPBACK`): loopback and nothing else —
    /// not the private ranges, and not public addresses or names either (only `localhost`,
    /// which is never sent to a DNS server), so a test or fuzz run cannot send traffic, a DNS
    /// query included, off the machine.
    pub allow_loopback: bool,
}

impl AddressPolicy {
    /// Whether `ip` is a public unicast address (or loopback when allowed). An IPv4-mapped
    /// IPv6 address is judged as the IPv4 address it maps, so `::ffff:127.0.0.1` is loopback.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(v6),
            },
            v4 => v4,
        };
        if self.allow_loopback || ip.is_loopback() {
            return self.allow_loopback && ip.is_loopback();
        }
        match ip {
            IpAddr::V4(v4) => public_v4(v4),
            IpAddr::V6(v6) => public_v6(v6),
        }
    }
}

impl AddressPolicy {
    /// Whether a host name may be looked up at all: any name normally, only `localhost` when
    /// the policy is loopback-only.
    pub fn may_resolve(&self, name: &str) -> bool {
        !self.allow_loopback || name.trim_end_matches('.').eq_ignore_ascii_case("localhost")
    }
}

fn public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_private()
        || ip.is_link_local() // 169.254/16, the cloud metadata service among them
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space, 100.64/10
        || (a == 192 && b == 0 && ip.octets()[2] == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240)
}

fn public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local, fc00::/7
        || (first & 0xffc0) == 0xfe80 // link-local, fe80::/10
        || (first & 0xffc0) == 0xfec0 // site-local (deprecated), fec0::/10
        || first == 0x2001 && ip.segments()[1] == 0x0db8 // documentation
        || first == 0x0064 && ip.segments()[1] == 0xff9b // NAT64, maps IPv4 inside
        || first == 0x2002 // 6to4, maps IPv4 inside
        || ip.segments()[..6] == [0, 0, 0, 0, 0, 0]) // IPv4-compatible (deprecated)
}

/// Why a webhook URL is refused, said without repeating it (a URL may carry a token).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlRefusal {
    NotAUrl,
    Scheme,
    HttpsRequired,
    Credentials,
    Fragment,
    Address,
    TooLong,
}

impl UrlRefusal {
    pub fn message(self) -> &'static str {
        match self {
            UrlRefusal::NotAUrl => "must be an absolute http or https URL with a host",
            UrlRefusal::Scheme => "must be an http or https URL",
            UrlRefusal::HttpsRequired => "must be an https URL",
            UrlRefusal::Credentials => "must not carry a user name or password",
            UrlRefusal::Fragment => "must not carry a fragment",
            UrlRefusal::Address => {
                "must not name a loopback, private, shared, link-local, metadata or \
                 unspecified address"
            }
            UrlRefusal::TooLong => "must be at most 2000 characters",
        }
    }
}

pub const MAX_URL_LENGTH: usize = 2000;

/// Checks a webhook URL: http(s) (https only when `https_only`), a host, no credentials, no
/// fragment, and a literal IP address only if the address policy allows it. A name is checked
/// again on every delivery, on the addresses it resolves to then.
pub fn check_url(
    raw: &str,
    https_only: bool,
    policy: AddressPolicy,
) -> Result<url::Url, UrlRefusal> {
    if raw.len() > MAX_URL_LENGTH {
        return Err(UrlRefusal::TooLong);
    }
    let url = url::Url::parse(raw).map_err(|_| UrlRefusal::NotAUrl)?;
    match url.scheme() {
        "https" => {}
        "http" if https_only => return Err(UrlRefusal::HttpsRequired),
        "http" => {}
        _ => return Err(UrlRefusal::Scheme),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlRefusal::Credentials);
    }
    if url.fragment().is_some() {
        return Err(UrlRefusal::Fragment);
    }
    match url.host() {
        None => Err(UrlRefusal::NotAUrl),
        Some(url::Host::Ipv4(ip)) if !policy.allows(IpAddr::V4(ip)) => Err(UrlRefusal::Address),
        Some(url::Host::Ipv6(ip)) if !policy.allows(IpAddr::V6(ip)) => Err(UrlRefusal::Address),
        Some(url::Host::Domain(name)) if !policy.may_resolve(name) => Err(UrlRefusal::Address),
        Some(_) => Ok(url),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: AddressPolicy = AddressPolicy {
        allow_loopback: false,
    };
    const DEV: AddressPolicy = AddressPolicy {
        allow_loopback: true,
    };

    #[test]
    fn no_setting_opens_anything_but_loopback() {
        for ip in [
            "10.0.0.1",
            "172.16.0.1",
            "192.168.1.1",
            "100.64.0.1",
            "169.254.169.254",
            "0.0.0.0",
            "::",
            "fc00::1",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "255.255.255.255",
            "224.0.0.1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(!STRICT.allows(ip), "{ip}");
            assert!(!DEV.allows(ip), "{ip} with loopback allowed");
        }
    }

    #[test]
    fn loopback_in_every_form_only_when_allowed() {
        for ip in ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(!STRICT.allows(ip), "{ip}");
            assert!(DEV.allows(ip), "{ip}");
        }
    }

    #[test]
    fn public_addresses_are_allowed() {
        for ip in ["93.184.215.14", "1.1.1.1", "2606:4700:4700::1111"] {
            assert!(STRICT.allows(ip.parse().unwrap()), "{ip}");
            assert!(!DEV.allows(ip.parse().unwrap()), "{ip} with loopback only");
        }
    }

    #[test]
    fn urls_are_checked_before_any_connection() {
        let refused = [
            ("http://127.0.0.1/hook", UrlRefusal::Address),
            ("http://10.0.0.1/hook", UrlRefusal::Address),
            ("http://169.254.169.254/latest", UrlRefusal::Address),
            ("http://[::1]/hook", UrlRefusal::Address),
            ("http://[::ffff:127.0.0.1]/hook", UrlRefusal::Address),
            ("http://0.0.0.0/hook", UrlRefusal::Address),
            ("https://user:pw@example.com/", UrlRefusal::Credentials),
            ("https://example.com/#x", UrlRefusal::Fragment),
            ("ftp://example.com/", UrlRefusal::Scheme),
            ("example.com/hook", UrlRefusal::NotAUrl),
        ];
        for (url, why) in refused {
            assert_eq!(check_url(url, false, STRICT).unwrap_err(), why, "{url}");
        }
        assert_eq!(
            check_url("http://example.com/", true, STRICT).unwrap_err(),
            UrlRefusal::HttpsRequired
        );
        assert!(check_url("https://example.com/hook?t=1", true, STRICT).is_ok());
        assert!(check_url("http://127.0.0.1:9/hook", false, DEV).is_ok());
        assert!(check_url("http://10.0.0.1/hook", false, DEV).is_err());
        assert!(check_url("http://localhost:9/hook", false, DEV).is_ok());
        // Loopback-only means it: no public address, and no name but localhost is looked up.
        assert!(check_url("https://example.com/hook", false, DEV).is_err());
        assert!(check_url("https://93.184.215.14/hook", false, DEV).is_err());
    }

    #[test]
    fn the_signature_is_the_standard_webhooks_one() {
        // The example of the Standard Webhooks specification.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            sign(secret, id, 1614265330, body).unwrap(),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        let two = signature_header(&[secret, secret], id, 1614265330, body);
        assert_eq!(two.split(' ').count(), 2);
        assert_eq!(sign("no-prefix", id, 1, body), None);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_gives_up_after_max_age() {
        let p = RetryPolicy {
            base: Duration::from_secs(5),
            max_age: Duration::from_secs(72 * 3600),
            cap: Duration::from_secs(6 * 3600),
        };
        assert_eq!(p.backoff(1), Duration::from_secs(5));
        assert_eq!(p.backoff(2), Duration::from_secs(10));
        assert_eq!(p.backoff(40), Duration::from_secs(6 * 3600));
        let retry = AttemptResult::Retry { retry_after: None };
        let Next::RetryAfter(w) = p.next(retry, 3, Duration::ZERO, 0.0) else {
            panic!("retries")
        };
        assert_eq!(w, Duration::from_secs(15));
        let asked = AttemptResult::Retry {
            retry_after: Some(Duration::from_secs(120)),
        };
        assert_eq!(
            p.next(asked, 1, Duration::ZERO, 0.5),
            Next::RetryAfter(Duration::from_secs(120))
        );
        assert_eq!(
            p.next(retry, 30, Duration::from_secs(71 * 3600), 0.0),
            Next::GiveUp
        );
        let late = p.next(retry, 1, Duration::from_secs(80 * 3600), 0.0);
        assert!(
            matches!(late, Next::RetryAfter(_)),
            "the first failure is retried"
        );
        assert_eq!(
            p.next(AttemptResult::Gone, 1, Duration::ZERO, 0.0),
            Next::DisableEndpoint
        );
        assert_eq!(
            p.next(AttemptResult::Delivered, 1, Duration::ZERO, 0.0),
            Next::Done
        );
    }
}
