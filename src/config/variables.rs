//! Every variable the service reads, with its default and meaning; the README table mirrors it.

pub const VARIABLES: &[(&str, &str, &str)] = &[
    (
        "EAP_ENV",
        "development",
        "`development` or `production` (production refuses dev keys and the default database)",
    ),
    (
        "EAP_LISTEN",
        "127.0.0.1:8080",
        "address and port to serve on",
    ),
    (
        "EAP_DATA_DIR",
        "./data",
        "directory for the default SQLite database and development keys",
    ),
    (
        "EAP_DATABASE_URL",
        "sqlite://$EAP_DATA_DIR/eap.sqlite3",
        "`sqlite://PATH` or `postgres://…`",
    ),
    (
        "EAP_DB_POOL_SIZE",
        "10",
        "maximum database connections (1–200)",
    ),
    (
        "EAP_DB_TIMEOUT_MS",
        "5000",
        "wait for a pooled connection before answering 503 (100–60000)",
    ),
    (
        "EAP_LOG_FORMAT",
        "text",
        "`text` or `json`; `RUST_LOG` sets the level (default `info`)",
    ),
    (
        "EAP_WORKERS",
        "number of CPUs",
        "HTTP worker threads (1–256)",
    ),
    (
        "EAP_BODY_LIMIT_BYTES",
        "65536",
        "largest accepted request body (1024–10485760)",
    ),
    (
        "EAP_TOKEN_ISSUER",
        "http://$EAP_LISTEN (https with TLS)",
        "`iss` of issued access tokens (the service's public URL)",
    ),
    (
        "EAP_TOKEN_AUDIENCE",
        "eap-referrals",
        "`aud` of issued access tokens",
    ),
    (
        "EAP_TOKEN_TTL_SECS",
        "600",
        "access-token lifetime in seconds (60–900)",
    ),
    (
        "EAP_OFFER_TTL_CRISIS_SECS",
        "900",
        "time a provider has to accept a crisis offer (60–604800)",
    ),
    (
        "EAP_OFFER_TTL_URGENT_SECS",
        "14400",
        "time to accept an urgent offer (60–604800)",
    ),
    (
        "EAP_OFFER_TTL_ROUTINE_SECS",
        "172800",
        "time to accept a routine offer (60–604800)",
    ),
    (
        "EAP_SWEEP_INTERVAL_SECS",
        "5",
        "how often overdue offers are expired and re-offered (1–300)",
    ),
    (
        "EAP_HOUSEKEEPING",
        "on",
        "`on` or `off`: background jobs (offer sweeper, expired-key purge, retention purge, \
         access-log sealer); keep on in every instance, they coordinate",
    ),
    (
        "EAP_WEBHOOK_DELIVERY",
        "on",
        "`on` or `off`: this instance sends webhook deliveries (instances share the outbox)",
    ),
    (
        "EAP_WEBHOOK_INTERVAL_MS",
        "500",
        "how often due webhook deliveries are looked for (10–60000)",
    ),
    (
        "EAP_ROUTING_KEEP_LOADS_FROM",
        "64",
        "from this many providers under contract with one employer, submissions rank them by \
         loads read at most 250 ms before (plus this instance's own offers since) instead of \
         reading every provider's load each time; capacity is still decided by the slot claim \
         (1–1000000)",
    ),
    (
        "EAP_WEBHOOK_RETRY_BASE_MS",
        "5000",
        "first webhook retry's wait; each later one doubles, with jitter (10–3600000)",
    ),
    (
        "EAP_WEBHOOK_RETRY_FOR_SECS",
        "259200",
        "a webhook delivery still failing this long after its event is given up (1–2592000)",
    ),
    (
        "EAP_WEBHOOK_LEASE_SECS",
        "300",
        "how long a claimed webhook delivery is held; one whose instance died mid-send is sent \
         again after this (1–3600; keep it well above a batch's sending time, 10 s per \
         unanswered receiver, or live deliveries are sent twice)",
    ),
    (
        "EAP_WEBHOOK_ALLOW_LOOPBACK",
        "false",
        "`true`: webhooks go to loopback receivers only (`127.0.0.1`, `::1`, `localhost`) and \
         nowhere else, not even public addresses (development and tests; refused in \
         production); no setting opens private ranges",
    ),
    (
        "EAP_RETENTION_CLOSED_DAYS",
        "30",
        "days a closed or cancelled referral keeps its contact block, note and employee reference \
         after closing (1–3650)",
    ),
    (
        "EAP_RETENTION_UNACCEPTED_DAYS",
        "90",
        "days a referral no provider accepted keeps them after submission (1–3650)",
    ),
    (
        "EAP_PURGE_INTERVAL_SECS",
        "3600",
        "how often the retention purge runs (60–86400)",
    ),
    (
        "EAP_OUTSIDE_LOG",
        "none",
        "append-only file, kept where database backups do not reach, that receives every erasure (ids and times) and every signed checkpoint; `eap-referrals erasures replay` and the audit verification read it",
    ),
    (
        "EAP_REPORT_MIN_CELL",
        "11",
        "smallest count a utilisation report shows; smaller cells are suppressed (5–1000)",
    ),
    (
        "EAP_AUDIT_CHECKPOINT_SECS",
        "60",
        "how often new access events are sealed into the Merkle log and a signed checkpoint is \
         issued, even when idle (1–3600)",
    ),
    (
        "EAP_CRISIS_RESOURCES_FILE",
        "built-in table",
        "JSON object: ISO country code (or `*` for any other) → list of {name, phone, text, url, \
         hours}",
    ),
    (
        "EAP_MAX_LONG_POLLS",
        "10000",
        "long polls that may wait at once on one instance; more get 429 (1–1000000)",
    ),
    (
        "EAP_KEEP_ALIVE_SECS",
        "5",
        "idle keep-alive connections are closed after this many seconds (1–300)",
    ),
    (
        "EAP_REQUEST_TIMEOUT_SECS",
        "5",
        "a request head not received within this many seconds gets 408 (1–60)",
    ),
    (
        "EAP_BODY_TIMEOUT_SECS",
        "10",
        "a request body not received in full within this many seconds after its head gets 408 and the connection is closed (1–300)",
    ),
    (
        "EAP_TRUSTED_PROXIES",
        "(none)",
        "comma-separated CIDRs of reverse proxies; only a request from one of them has its client address read from `Forwarded` / `X-Forwarded-For` (the rightmost address not itself trusted)",
    ),
    (
        "EAP_METRICS_TOKEN",
        "unset (metrics off)",
        "bearer token for `GET /metrics` (at least 32 characters); unset, the endpoint answers 404",
    ),
    (
        "EAP_TLS_CERT",
        "unset (plain HTTP)",
        "PEM certificate chain: serve HTTPS with rustls (TLS 1.2/1.3) and send HSTS; needs \
         `EAP_TLS_KEY`",
    ),
    (
        "EAP_TLS_KEY",
        "unset",
        "PEM private key (PKCS#8, PKCS#1 or SEC1) for `EAP_TLS_CERT`",
    ),
    (
        "EAP_RATE_LIMIT_ADMIN",
        "600",
        "requests per minute per admin client (0 = no limit)",
    ),
    (
        "EAP_RATE_LIMIT_HR_PORTAL",
        "1200",
        "requests per minute per HR-portal client (0 = no limit)",
    ),
    (
        "EAP_RATE_LIMIT_PROVIDER",
        "3000",
        "requests per minute per provider client (0 = no limit)",
    ),
    (
        "EAP_RATE_LIMIT_AUDITOR",
        "600",
        "requests per minute per auditor client (0 = no limit)",
    ),
    (
        "EAP_RATE_LIMIT_TOKEN",
        "30",
        "token requests per minute per client id from one source address (0 = no limit)",
    ),
    (
        "EAP_RATE_LIMIT_TOKEN_CLIENT",
        "300",
        "token requests per minute per client id from all addresses that never obtained a token for it, together (0 = no limit)",
    ),
    (
        "EAP_RATE_LIMIT_TOKEN_ADDRESS",
        "120",
        "token requests per minute per source address, IPv6 by /64 (0 = no limit)",
    ),
    (
        "EAP_TOKEN_SIGNING_KEY / _FILE",
        "dev key in $EAP_DATA_DIR/keys",
        "Ed25519 private keys, PKCS#8 PEM; the first signs, the rest only verify",
    ),
    (
        "EAP_MASTER_KEY / _FILE",
        "dev key in $EAP_DATA_DIR/keys",
        "data-key wrapping keys, `KEY_ID:BASE64(32 bytes)` entries separated by newlines or \
         commas; the first wraps",
    ),
    (
        "EAP_HMAC_PEPPER / _FILE",
        "dev key in $EAP_DATA_DIR/keys",
        "pepper for keyed hashes, base64 of ≥ 32 bytes",
    ),
    (
        "EAP_AUDIT_CHECKPOINT_KEY / _FILE",
        "dev key in $EAP_DATA_DIR/keys",
        "Ed25519 private key, PKCS#8 PEM, that signs access-log checkpoints (keep it apart from \
         the token key)",
    ),
];
