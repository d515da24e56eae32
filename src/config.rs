//! Typed settings, read from `EAP_*` environment variables and validated once at start-up.
//!
//! Every failure names the variable, so an operator sees one line that says what to fix.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::db::DatabaseUrl;

mod variables;

pub use variables::VARIABLES;

#[derive(Debug, thiserror::Error)]
#[error("{var}: {message}")]
pub struct ConfigError {
    pub var: &'static str,
    pub message: String,
}

impl ConfigError {
    fn new(var: &'static str, message: impl Into<String>) -> Self {
        Self {
            var,
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Development,
    Production,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Where one secret comes from: inline in the environment, or a file path.
#[derive(Clone)]
pub enum SecretSource {
    Inline(String),
    File(PathBuf),
}

impl std::fmt::Debug for SecretSource {
    // Never print inline key material, even in a debug dump of the config.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretSource::Inline(_) => f.write_str("Inline(<redacted>)"),
            SecretSource::File(p) => write!(f, "File({})", p.display()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct KeySources {
    pub token_signing: Option<SecretSource>,
    pub master: Option<SecretSource>,
    pub hmac_pepper: Option<SecretSource>,
    pub checkpoint: Option<SecretSource>,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub env: Environment,
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: DatabaseUrl,
    pub database_url_explicit: bool,
    pub db_pool_size: u32,
    pub db_timeout: Duration,
    pub log_format: LogFormat,
    pub workers: usize,
    pub body_limit_bytes: usize,
    pub token_issuer: String,
    pub token_audience: String,
    pub token_ttl: Duration,
    pub keys: KeySources,
    /// How long a provider has to answer an offer, by urgency.
    pub offer_ttl: OfferTtl,
    pub crisis_resources_file: Option<PathBuf>,
    /// How often overdue offers are looked for.
    pub sweep_interval: Duration,
    /// Background jobs (offer sweeper, key purge, access-log sealer); tests turn them off to
    /// drive them by hand.
    pub housekeeping: bool,
    /// Days a closed or cancelled referral keeps its personal data after closing.
    pub retention_closed_days: u32,
    /// Days a referral no provider has accepted keeps its personal data after submission.
    pub retention_unaccepted_days: u32,
    /// How often the retention purge runs.
    pub purge_interval: Duration,
    /// An append-only file outside the database: every erasure and checkpoint is written there
    /// too, so a restored backup can be re-erased and a rewritten log tail caught.
    pub outside_log: Option<PathBuf>,
    /// Smallest count a utilisation report shows (never below 5).
    pub report_min_cell: u32,
    /// How often the access log is sealed and a signed checkpoint issued (even when idle).
    pub checkpoint_interval: Duration,
    pub rate_limits: RateLimitConfig,
    /// Long polls that may wait at once on this instance.
    pub max_long_polls: usize,
    /// PEM certificate chain and private key: serve HTTPS (and send HSTS).
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Bearer token for `GET /metrics`; without it the endpoint is off.
    pub metrics_token: Option<String>,
    /// An idle keep-alive connection is closed after this long.
    pub keep_alive: Duration,
    /// A client that has not sent its request head within this long gets 408.
    pub request_timeout: Duration,
    /// A request body not received in full within this long (from the end of the head) gets
    /// 408 and the connection is closed, so a trickled body cannot hold a connection open.
    pub body_timeout: Duration,
    /// Reverse proxies whose `Forwarded` / `X-Forwarded-For` headers name the client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub webhooks: WebhookConfig,
    /// From this many contracted providers, an employer's loads are kept a moment between
    /// submissions (`routing::cache`).
    pub routing_keep_loads_from: usize,
}

/// Webhook delivery settings.
#[derive(Debug, Clone, Copy)]
pub struct WebhookConfig {
    /// The delivery worker runs in this instance (instances coordinate through the outbox).
    pub delivery: bool,
    /// How often the worker looks for due deliveries.
    pub interval: Duration,
    /// The first retry's wait; each later one doubles it.
    pub retry_base: Duration,
    /// A delivery still failing this long after its event is given up.
    pub max_age: Duration,
    /// How long a claimed delivery is held by the instance that claimed it: one that dies
    /// mid-send leaves it to be claimed again after this.
    pub lease: Duration,
    /// Development and tests only: loopback receivers are allowed (never private ranges).
    pub allow_loopback: bool,
}

/// Requests per minute, per client (by role) and on the token endpoint; 0 turns a limit off.
#[derive(Debug, Clone, Copy)]
pub struct RateLimitConfig {
    pub admin: u32,
    pub hr_portal: u32,
    pub provider: u32,
    pub auditor: u32,
    /// Token requests per claimed client id from one source address.
    pub token_client: u32,
    /// Token requests per claimed client id from every address that has not yet authenticated
    /// as that client: a ceiling on guessing spread over many addresses, which never touches
    /// an address the client already uses.
    pub token_client_unproven: u32,
    /// Token requests per source address (IPv6 by /64).
    pub token_address: u32,
}

#[derive(Debug, Clone, Copy)]
pub struct OfferTtl {
    pub crisis: Duration,
    pub urgent: Duration,
    pub routine: Duration,
}

const NOT_A_SOCKET_ADDRESS: &str =
    "is not a socket address (expected HOST:PORT, e.g. 127.0.0.1:8080)";

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_map(&std::env::vars().collect())
    }

    /// Reads settings from a map so tests can build a config without touching the process env.
    pub fn from_map(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let get = |k: &str| vars.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());

        let env = match get("EAP_ENV").unwrap_or("development") {
            "development" => Environment::Development,
            "production" => Environment::Production,
            other => {
                return Err(ConfigError::new(
                    "EAP_ENV",
                    format!("{other:?} is not `development` or `production`"),
                ))
            }
        };
        let listen_raw = get("EAP_LISTEN").unwrap_or("127.0.0.1:8080");
        let listen: SocketAddr = listen_raw.parse().map_err(|_| {
            ConfigError::new(
                "EAP_LISTEN",
                format!("{listen_raw:?} {NOT_A_SOCKET_ADDRESS}"),
            )
        })?;
        let data_dir = PathBuf::from(get("EAP_DATA_DIR").unwrap_or("./data"));
        let database_url_explicit = get("EAP_DATABASE_URL").is_some();
        let database_url = match get("EAP_DATABASE_URL") {
            Some(raw) => {
                DatabaseUrl::parse(raw).map_err(|m| ConfigError::new("EAP_DATABASE_URL", m))?
            }
            None => DatabaseUrl::Sqlite(data_dir.join("eap.sqlite3")),
        };
        if env == Environment::Production && !database_url_explicit {
            return Err(ConfigError::new(
                "EAP_DATABASE_URL",
                "must be set when EAP_ENV=production (the default SQLite file is for development)",
            ));
        }
        let log_format = match get("EAP_LOG_FORMAT").unwrap_or("text") {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(ConfigError::new(
                    "EAP_LOG_FORMAT",
                    format!("{other:?} is not `text` or `json`"),
                ))
            }
        };
        let default_workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        let workers = number(get("EAP_WORKERS"), "EAP_WORKERS", default_workers, 1, 256)?;
        let db_pool_size = number(get("EAP_DB_POOL_SIZE"), "EAP_DB_POOL_SIZE", 10, 1, 200)? as u32;
        let db_timeout_ms = number(
            get("EAP_DB_TIMEOUT_MS"),
            "EAP_DB_TIMEOUT_MS",
            5000,
            100,
            60_000,
        )?;
        let body_limit_bytes = number(
            get("EAP_BODY_LIMIT_BYTES"),
            "EAP_BODY_LIMIT_BYTES",
            64 * 1024,
            1024,
            10 * 1024 * 1024,
        )?;
        let token_ttl = number(
            get("EAP_TOKEN_TTL_SECS"),
            "EAP_TOKEN_TTL_SECS",
            600,
            60,
            900,
        )?;
        let token_issuer = get("EAP_TOKEN_ISSUER")
            .map(str::to_owned)
            .unwrap_or_else(|| {
                let scheme = if get("EAP_TLS_CERT").is_some() {
                    "https"
                } else {
                    "http"
                };
                format!("{scheme}://{listen}")
            });
        check_issuer(&token_issuer)?;
        let token_audience = get("EAP_TOKEN_AUDIENCE")
            .unwrap_or("eap-referrals")
            .to_owned();

        let ttl = |var: &'static str, default: usize| {
            number(get(var), var, default, 60, 7 * 24 * 3600).map(|s| Duration::from_secs(s as u64))
        };
        let offer_ttl = OfferTtl {
            crisis: ttl("EAP_OFFER_TTL_CRISIS_SECS", 900)?,
            urgent: ttl("EAP_OFFER_TTL_URGENT_SECS", 4 * 3600)?,
            routine: ttl("EAP_OFFER_TTL_ROUTINE_SECS", 48 * 3600)?,
        };
        let crisis_resources_file = get("EAP_CRISIS_RESOURCES_FILE").map(PathBuf::from);
        let outside_log = get("EAP_OUTSIDE_LOG")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from);
        let sweep_interval = Duration::from_secs(number(
            get("EAP_SWEEP_INTERVAL_SECS"),
            "EAP_SWEEP_INTERVAL_SECS",
            5,
            1,
            300,
        )? as u64);
        let housekeeping = match get("EAP_HOUSEKEEPING").unwrap_or("on") {
            "on" => true,
            "off" => false,
            other => {
                return Err(ConfigError::new(
                    "EAP_HOUSEKEEPING",
                    format!("{other:?} is not `on` or `off`"),
                ))
            }
        };
        let per_minute = |var: &'static str, default: usize| {
            number(get(var), var, default, 0, 1_000_000).map(|n| n as u32)
        };
        let rate_limits = RateLimitConfig {
            admin: per_minute("EAP_RATE_LIMIT_ADMIN", 600)?,
            hr_portal: per_minute("EAP_RATE_LIMIT_HR_PORTAL", 1200)?,
            provider: per_minute("EAP_RATE_LIMIT_PROVIDER", 3000)?,
            auditor: per_minute("EAP_RATE_LIMIT_AUDITOR", 600)?,
            token_client: per_minute("EAP_RATE_LIMIT_TOKEN", 30)?,
            token_client_unproven: per_minute("EAP_RATE_LIMIT_TOKEN_CLIENT", 300)?,
            token_address: per_minute("EAP_RATE_LIMIT_TOKEN_ADDRESS", 120)?,
        };
        let retention_closed_days = number(
            get("EAP_RETENTION_CLOSED_DAYS"),
            "EAP_RETENTION_CLOSED_DAYS",
            30,
            1,
            3650,
        )? as u32;
        let retention_unaccepted_days = number(
            get("EAP_RETENTION_UNACCEPTED_DAYS"),
            "EAP_RETENTION_UNACCEPTED_DAYS",
            90,
            1,
            3650,
        )? as u32;
        let purge_interval = Duration::from_secs(number(
            get("EAP_PURGE_INTERVAL_SECS"),
            "EAP_PURGE_INTERVAL_SECS",
            3600,
            60,
            86_400,
        )? as u64);
        // Below 5 a cell identifies too few people for any published policy (CMS uses 11).
        let report_min_cell = number(
            get("EAP_REPORT_MIN_CELL"),
            "EAP_REPORT_MIN_CELL",
            11,
            5,
            1000,
        )? as u32;
        let routing_keep_loads_from = number(
            get("EAP_ROUTING_KEEP_LOADS_FROM"),
            "EAP_ROUTING_KEEP_LOADS_FROM",
            64,
            1,
            1_000_000,
        )?;
        let max_long_polls = number(
            get("EAP_MAX_LONG_POLLS"),
            "EAP_MAX_LONG_POLLS",
            10_000,
            1,
            1_000_000,
        )?;
        let secs = |var: &'static str, default: usize, max: usize| {
            number(get(var), var, default, 1, max).map(|s| Duration::from_secs(s as u64))
        };
        let keep_alive = secs("EAP_KEEP_ALIVE_SECS", 5, 300)?;
        let request_timeout = secs("EAP_REQUEST_TIMEOUT_SECS", 5, 60)?;
        let body_timeout = secs("EAP_BODY_TIMEOUT_SECS", 10, 300)?;
        let trusted_proxies = trusted_proxies(get("EAP_TRUSTED_PROXIES"))?;
        let tls = match (get("EAP_TLS_CERT"), get("EAP_TLS_KEY")) {
            (Some(c), Some(k)) => Some((PathBuf::from(c), PathBuf::from(k))),
            (None, None) => None,
            (Some(_), None) => {
                return Err(ConfigError::new(
                    "EAP_TLS_KEY",
                    "must be set with EAP_TLS_CERT",
                ))
            }
            (None, Some(_)) => {
                return Err(ConfigError::new(
                    "EAP_TLS_CERT",
                    "must be set with EAP_TLS_KEY",
                ))
            }
        };
        let metrics_token = match get("EAP_METRICS_TOKEN") {
            Some(t) if t.len() < 32 => {
                return Err(ConfigError::new(
                    "EAP_METRICS_TOKEN",
                    "must be at least 32 characters (e.g. `openssl rand -hex 32`)",
                ))
            }
            t => t.map(str::to_owned),
        };
        let checkpoint_interval = Duration::from_secs(number(
            get("EAP_AUDIT_CHECKPOINT_SECS"),
            "EAP_AUDIT_CHECKPOINT_SECS",
            60,
            1,
            3600,
        )? as u64);
        let webhooks = WebhookConfig {
            delivery: switch(
                get("EAP_WEBHOOK_DELIVERY"),
                "EAP_WEBHOOK_DELIVERY",
                ["on", "off"],
                true,
            )?,
            interval: Duration::from_millis(number(
                get("EAP_WEBHOOK_INTERVAL_MS"),
                "EAP_WEBHOOK_INTERVAL_MS",
                500,
                10,
                60_000,
            )? as u64),
            retry_base: Duration::from_millis(number(
                get("EAP_WEBHOOK_RETRY_BASE_MS"),
                "EAP_WEBHOOK_RETRY_BASE_MS",
                5_000,
                10,
                3_600_000,
            )? as u64),
            max_age: Duration::from_secs(number(
                get("EAP_WEBHOOK_RETRY_FOR_SECS"),
                "EAP_WEBHOOK_RETRY_FOR_SECS",
                72 * 3600,
                1,
                30 * 24 * 3600,
            )? as u64),
            lease: Duration::from_secs(number(
                get("EAP_WEBHOOK_LEASE_SECS"),
                "EAP_WEBHOOK_LEASE_SECS",
                300,
                1,
                3600,
            )? as u64),
            allow_loopback: switch(
                get("EAP_WEBHOOK_ALLOW_LOOPBACK"),
                "EAP_WEBHOOK_ALLOW_LOOPBACK",
                ["true", "false"],
                false,
            )?,
        };
        if env == Environment::Production && webhooks.allow_loopback {
            return Err(ConfigError::new(
                "EAP_WEBHOOK_ALLOW_LOOPBACK",
                "must not be true when EAP_ENV=production",
            ));
        }
        let keys = KeySources {
            token_signing: secret(vars, "EAP_TOKEN_SIGNING_KEY", "EAP_TOKEN_SIGNING_KEY_FILE")?,
            master: secret(vars, "EAP_MASTER_KEY", "EAP_MASTER_KEY_FILE")?,
            hmac_pepper: secret(vars, "EAP_HMAC_PEPPER", "EAP_HMAC_PEPPER_FILE")?,
            checkpoint: secret(
                vars,
                "EAP_AUDIT_CHECKPOINT_KEY",
                "EAP_AUDIT_CHECKPOINT_KEY_FILE",
            )?,
        };

        Ok(Config {
            env,
            listen,
            data_dir,
            database_url,
            database_url_explicit,
            db_pool_size,
            db_timeout: Duration::from_millis(db_timeout_ms as u64),
            log_format,
            workers,
            body_limit_bytes,
            token_issuer,
            token_audience,
            token_ttl: Duration::from_secs(token_ttl as u64),
            keys,
            offer_ttl,
            crisis_resources_file,
            sweep_interval,
            housekeeping,
            rate_limits,
            max_long_polls,
            routing_keep_loads_from,
            tls,
            metrics_token,
            keep_alive,
            request_timeout,
            body_timeout,
            trusted_proxies,
            retention_closed_days,
            retention_unaccepted_days,
            purge_interval,
            outside_log,
            report_min_cell,
            checkpoint_interval,
            webhooks,
        })
    }
}

/// A two-valued setting, spelt `[on, off]`; unset is `default`.
fn switch(
    raw: Option<&str>,
    var: &'static str,
    [on, off]: [&str; 2],
    default: bool,
) -> Result<bool, ConfigError> {
    match raw {
        None => Ok(default),
        Some(v) if v == on => Ok(true),
        Some(v) if v == off => Ok(false),
        Some(other) => Err(ConfigError::new(
            var,
            format!("{other:?} is not `{on}` or `{off}`"),
        )),
    }
}

fn number(
    raw: Option<&str>,
    var: &'static str,
    default: usize,
    min: usize,
    max: usize,
) -> Result<usize, ConfigError> {
    let Some(raw) = raw else { return Ok(default) };
    match raw.parse::<usize>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(ConfigError::new(
            var,
            format!("{raw:?} is not a whole number from {min} to {max}"),
        )),
    }
}

/// `EAP_TRUSTED_PROXIES`: CIDRs or single addresses, separated by commas.
fn trusted_proxies(raw: Option<&str>) -> Result<Vec<ipnet::IpNet>, ConfigError> {
    let Some(raw) = raw else {
        return Ok(Vec::new());
    };
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<ipnet::IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map(|net| net.trunc())
                .map_err(|_| {
                    ConfigError::new(
                        "EAP_TRUSTED_PROXIES",
                        format!("{s:?} is not an address or CIDR (e.g. 10.0.0.0/8, ::1)"),
                    )
                })
        })
        .collect()
}

/// The issuer is the `iss` of every token and the base of the URLs the RFC 8414 metadata
/// advertises, which §2 requires to be a URL with no query or fragment. `http` is allowed
/// because it is the development default (`http://$EAP_LISTEN`); behind TLS it is `https`.
fn check_issuer(issuer: &str) -> Result<(), ConfigError> {
    let rest = issuer
        .strip_prefix("https://")
        .or_else(|| issuer.strip_prefix("http://"));
    let host = rest.map(|r| r.split('/').next().unwrap_or(""));
    let plain = !issuer.contains(['?', '#'])
        && !issuer.chars().any(|c| c.is_whitespace() || c.is_control());
    match host {
        Some(host) if !host.is_empty() && plain => Ok(()),
        _ => Err(ConfigError::new(
            "EAP_TOKEN_ISSUER",
            "must be the service's public URL: http:// or https://, a host, no query or \
             fragment (RFC 8414 §2)",
        )),
    }
}

/// A key may come inline (`NAME`) or from a file (`NAME_FILE`), not both.
fn secret(
    vars: &HashMap<String, String>,
    name: &'static str,
    file_var: &'static str,
) -> Result<Option<SecretSource>, ConfigError> {
    let inline = vars.get(name).filter(|v| !v.trim().is_empty());
    let file = vars.get(file_var).filter(|v| !v.trim().is_empty());
    match (inline, file) {
        (Some(_), Some(_)) => Err(ConfigError::new(
            name,
            format!("set either {name} or {file_var}, not both"),
        )),
        (Some(v), None) => Ok(Some(SecretSource::Inline(v.clone()))),
        (None, Some(p)) => Ok(Some(SecretSource::File(PathBuf::from(p.trim())))),
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_map(
            &pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn the_readme_table_lists_every_variable() {
        let readme = include_str!("../README.md");
        for (name, default, meaning) in VARIABLES {
            let default = if default.contains(' ') {
                default.to_string()
            } else {
                format!("`{default}`")
            };
            let row = format!("| `{name}` | {default} | {meaning} |");
            assert!(
                readme.contains(&row),
                "README.md lacks or differs for:\n{row}"
            );
        }
    }

    #[test]
    fn defaults_are_local_development() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.env, Environment::Development);
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert!(
            matches!(c.database_url, DatabaseUrl::Sqlite(ref p) if p.ends_with("data/eap.sqlite3"))
        );
        assert_eq!(c.token_ttl, Duration::from_secs(600));
        assert_eq!(c.retention_closed_days, 30);
        assert_eq!(c.retention_unaccepted_days, 90);
        assert_eq!(c.report_min_cell, 11);
    }

    #[test]
    fn each_bad_value_names_its_variable() {
        for (var, value) in [
            ("EAP_ENV", "staging"),
            ("EAP_LISTEN", "localhost"),
            ("EAP_DATABASE_URL", "mysql://x"),
            ("EAP_LOG_FORMAT", "xml"),
            ("EAP_WORKERS", "0"),
            ("EAP_DB_POOL_SIZE", "many"),
            ("EAP_BODY_LIMIT_BYTES", "12"),
            ("EAP_TOKEN_TTL_SECS", "3600"),
            ("EAP_REPORT_MIN_CELL", "4"),
            ("EAP_RETENTION_CLOSED_DAYS", "0"),
            ("EAP_RETENTION_UNACCEPTED_DAYS", "forever"),
            ("EAP_PURGE_INTERVAL_SECS", "1"),
            ("EAP_TOKEN_ISSUER", "eap-referrals"),
            ("EAP_TOKEN_ISSUER", "https://"),
            ("EAP_TOKEN_ISSUER", "https://eap.example.org/?tenant=1"),
            ("EAP_TOKEN_ISSUER", "https://eap.example.org/#top"),
        ] {
            let err = cfg(&[(var, value)]).unwrap_err();
            assert_eq!(err.var, var, "{var}={value} blamed {}", err.var);
            assert!(err.to_string().starts_with(var));
        }
    }

    #[test]
    fn the_issuer_is_a_url_by_default_and_when_set() {
        assert_eq!(cfg(&[]).unwrap().token_issuer, "http://127.0.0.1:8080");
        for issuer in ["https://eap.example.org", "https://example.org/eap/"] {
            let c = cfg(&[("EAP_TOKEN_ISSUER", issuer)]).unwrap();
            assert_eq!(c.token_issuer, issuer);
        }
    }

    #[test]
    fn production_demands_an_explicit_database() {
        let err = cfg(&[("EAP_ENV", "production")]).unwrap_err();
        assert_eq!(err.var, "EAP_DATABASE_URL");
        assert!(cfg(&[
            ("EAP_ENV", "production"),
            ("EAP_DATABASE_URL", "postgres://h/db")
        ])
        .is_ok());
    }

    #[test]
    fn a_key_cannot_come_from_two_places() {
        let err = cfg(&[("EAP_HMAC_PEPPER", "a"), ("EAP_HMAC_PEPPER_FILE", "/x")]).unwrap_err();
        assert_eq!(err.var, "EAP_HMAC_PEPPER");
    }

    #[test]
    fn inline_secrets_are_redacted_in_debug_output() {
        let c = cfg(&[("EAP_HMAC_PEPPER", "super-secret-pepper")]).unwrap();
        assert!(!format!("{c:?}").contains("super-secret-pepper"));
    }
}
