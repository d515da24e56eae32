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
use crate::keys::{open_under, seal_under, MasterKey, SealError};
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

/// Operator endpoints in all: an on-call pager, a chat channel and a spare or two. Every
/// unroutable referral and every expired offer is a delivery to each, so the bound keeps the
/// alert traffic (and the access events it writes) proportional to the events.
pub const MAX_OPERATOR_ENDPOINTS: i64 = 5;

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

/// An endpoint's signing secrets sealed under one master key: the current one, and the
/// previous one while it still signs after a rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedSecrets {
    pub key_id: String,
    pub current: Vec<u8>,
    pub previous: Option<Vec<u8>>,
}

/// What a sealed secret is bound to: the master key and the endpoint, so a sealed secret copied
/// into another endpoint's row does not open there.
fn secret_aad(key_id: &str, endpoint_id: &str) -> Vec<u8> {
    format!("eap-referrals/webhook-secret/{key_id}/{endpoint_id}").into_bytes()
}

/// Seals an endpoint's secrets under `master` (the database never holds them in plain).
pub fn seal_secrets(
    master: &MasterKey,
    endpoint_id: &str,
    current: &str,
    previous: Option<&str>,
) -> SealedSecrets {
    let aad = secret_aad(&master.id, endpoint_id);
    SealedSecrets {
        key_id: master.id.clone(),
        current: seal_under(master, &aad, current.as_bytes()),
        previous: previous.map(|p| seal_under(master, &aad, p.as_bytes())),
    }
}

/// Opens one sealed secret of `endpoint_id`, with whichever master key sealed it.
pub fn open_secret(
    masters: &[MasterKey],
    key_id: &str,
    endpoint_id: &str,
    sealed: &[u8],
) -> Result<zeroize::Zeroizing<String>, SealError> {
    let bytes = zeroize::Zeroizing::new(open_under(
        masters,
        key_id,
        &secret_aad(key_id, endpoint_id),
        sealed,
    )?);
    std::str::from_utf8(&bytes)
        .map(|s| zeroize::Zeroizing::new(s.to_owned()))
        .map_err(|_| SealError::Damaged)
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

/// An alert for the EAP's on-call staff, stored as its code.
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
pub enum OperatorEvent {
    /// A referral became unroutable: at intake, or when a decline or an expired offer found
    /// no other provider.
    ReferralUnroutable,
    /// A provider let an offer expire.
    OfferExpired,
}

impl Code for OperatorEvent {
    const ALL: &'static [OperatorEvent] = &[
        OperatorEvent::ReferralUnroutable,
        OperatorEvent::OfferExpired,
    ];
    fn code(self) -> &'static str {
        match self {
            OperatorEvent::ReferralUnroutable => "referral_unroutable",
            OperatorEvent::OfferExpired => "offer_expired",
        }
    }
}

crate::text_code!(OperatorEvent);

/// What an operator alert carries: its type, when, and the referral's id and urgency, nothing
/// else. Reasons, employer and provider stay behind the audited API
/// (`GET /v1/admin/unroutable`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OperatorPayload {
    /// `operator.referral_unroutable` or `operator.offer_expired`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// When the event happened (RFC 3339).
    pub timestamp: chrono::DateTime<chrono::Utc>,
    pub data: OperatorPayloadData,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OperatorPayloadData {
    pub referral_id: String,
    pub urgency: crate::directory::model::Urgency,
}

/// An operator alert as a delivery carries it.
#[derive(Debug, Clone)]
pub struct AlertRef {
    pub event: OperatorEvent,
    pub referral_id: String,
    pub urgency: crate::directory::model::Urgency,
}

/// What a delivery is about: a provider's feed event or an operator alert (`None`: a ping).
#[derive(Debug, Clone)]
pub enum Event {
    Feed(EventRef),
    Alert(AlertRef),
}

impl Event {
    /// The referral id the delivery hands over (its `webhook.delivered` access event's).
    pub fn referral_id(&self) -> &str {
        match self {
            Event::Feed(e) => &e.referral_id,
            Event::Alert(a) => &a.referral_id,
        }
    }
}

/// The body of a delivery.
pub fn body(event: Option<&Event>, at: NaiveDateTime) -> serde_json::Result<Vec<u8>> {
    match event {
        Some(Event::Alert(a)) => serde_json::to_vec(&OperatorPayload {
            event_type: format!("operator.{}", a.event.code()),
            timestamp: at.and_utc(),
            data: OperatorPayloadData {
                referral_id: a.referral_id.clone(),
                urgency: a.urgency,
            },
        }),
        Some(Event::Feed(e)) => serde_json::to_vec(&payload(Some(e), at)),
        None => serde_json::to_vec(&payload(None, at)),
    }
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
                // A `Retry-After` may lengthen the wait, never shorten it below the backoff,
                // and never past the end of the retry window (nor `cap`): a receiver asking
                // for a week, or naming a date after the window, still gets its last attempt
                // at the window's end rather than the event being given up now.
                let window_left = self.max_age.saturating_sub(age);
                let wait = retry_after.map_or(wait, |r| wait.max(r.min(self.cap).min(window_left)));
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

/// A `Retry-After` value (RFC 9110 §10.2.3) as a wait from `now`: delay-seconds, or an
/// HTTP-date in any of the three forms a recipient must accept (IMF-fixdate, and the obsolete
/// RFC 850 and asctime forms). A date already past is no wait; anything else is `None`, and
/// the backoff applies. The wait is bounded by [`RetryPolicy::next`], not here.
pub fn parse_retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // More digits than a u64 holds is still "a very long time".
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    const FORMS: [&str; 3] = [
        "%a, %d %b %Y %H:%M:%S GMT", // IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
        "%A, %d-%b-%y %H:%M:%S GMT", // RFC 850: Sunday, 06-Nov-94 08:49:37 GMT
        "%a %b %e %H:%M:%S %Y",      // asctime: Sun Nov  6 08:49:37 1994
    ];
    let at = FORMS
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(value, f).ok())?
        .and_utc();
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
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

    #[test]
    fn a_sealed_secret_opens_only_for_its_endpoint_and_under_its_master_key() {
        let (m1, m2) = (
            MasterKey {
                id: "m1".into(),
                key: [1; 32],
            },
            MasterKey {
                id: "m2".into(),
                key: [2; 32],
            },
        );
        let secret = generate_secret();
        let sealed = seal_secrets(&m1, "e1", &secret, Some("whsec_old"));
        assert_eq!(sealed.key_id, "m1");
        assert!(!sealed
            .current
            .windows(secret.len())
            .any(|w| w == secret.as_bytes()));
        let both = [m2, m1];
        let opened = open_secret(&both, "m1", "e1", &sealed.current).unwrap();
        assert_eq!(opened.as_str(), secret);
        let previous = sealed.previous.as_deref().unwrap();
        assert_eq!(
            open_secret(&both, "m1", "e1", previous).unwrap().as_str(),
            "whsec_old"
        );
        assert_eq!(
            open_secret(&both, "m1", "e2", &sealed.current).err(),
            Some(SealError::Damaged),
            "moved to another endpoint"
        );
        assert_eq!(
            open_secret(&both[..1], "m1", "e1", &sealed.current).err(),
            Some(SealError::UnknownKeyId("m1".into()))
        );
    }

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
    fn retry_after_is_delay_seconds_or_an_http_date() {
        let now = chrono::DateTime::parse_from_rfc3339("1994-11-06T08:49:07Z")
            .unwrap()
            .to_utc();
        let thirty = Some(Duration::from_secs(30));
        assert_eq!(parse_retry_after("30", now), thirty);
        assert_eq!(parse_retry_after(" 30 ", now), thirty);
        assert_eq!(parse_retry_after("0", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(Duration::from_secs(u64::MAX))
        );
        // The three forms RFC 9110 §5.6.7 has recipients accept, all 30 s after `now`.
        for date in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(parse_retry_after(date, now), thirty, "{date}");
        }
        // A date already past asks for no wait.
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        for junk in [
            "",
            "-1",
            "1.5",
            "soon",
            "Sun, 06 Nov 1994 08:49:37 CET",
            "3e2",
        ] {
            assert_eq!(parse_retry_after(junk, now), None, "{junk:?}");
        }
    }

    #[test]
    fn retry_after_is_bounded_by_the_backoff_and_the_retry_window() {
        let p = RetryPolicy {
            base: Duration::from_secs(60),
            max_age: Duration::from_secs(72 * 3600),
            cap: Duration::from_secs(6 * 3600),
        };
        let asking = |secs| AttemptResult::Retry {
            retry_after: Some(Duration::from_secs(secs)),
        };
        let hour = Duration::from_secs(3600);
        // Sooner than the backoff (a past date is 0): the backoff's minimum still applies.
        for secs in [0, 1, 30] {
            assert_eq!(
                p.next(asking(secs), 1, Duration::ZERO, 0.0),
                Next::RetryAfter(Duration::from_secs(45)),
                "{secs}"
            );
        }
        // Longer than the backoff: honoured, up to `cap`.
        assert_eq!(
            p.next(asking(600), 1, Duration::ZERO, 0.0),
            Next::RetryAfter(Duration::from_secs(600))
        );
        assert_eq!(
            p.next(asking(24 * 3600), 1, Duration::ZERO, 0.0),
            Next::RetryAfter(6 * hour)
        );
        // Past the end of the window: the last attempt comes at the window's end, and the
        // event is not given up early because a receiver asked for longer than is left.
        assert_eq!(
            p.next(asking(5 * 3600), 3, 70 * hour, 0.0),
            Next::RetryAfter(2 * hour)
        );
        assert_eq!(
            p.next(asking(u64::MAX), 3, 71 * hour, 0.0),
            Next::RetryAfter(hour)
        );
        // When even the backoff is past the window, the retries are over.
        assert_eq!(
            p.next(asking(600), 3, 72 * hour - Duration::from_secs(10), 0.0),
            Next::GiveUp
        );
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
