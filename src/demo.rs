//! `eap-referrals demo`: a development sandbox in one command. On the configured database it
//! creates an employer, two providers under contract to it, one API client per role and one
//! sample referral, then prints the credentials and, for each role, shell commands that work
//! against `cargo run` on the configured address.
//!
//! Everything goes through the code the API runs: the directory's services, the command line's
//! client creation (`create_from_cli`) and the submission path (`referrals::intake::submit`:
//! routing, sealing, the offer, the access log). The command line is the actor in the access
//! log, as for `admin create-client`: role `operator`, source `local-cli`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use validator::Validate;

use crate::auth::caller::{Caller, HrPortal};
use crate::auth::clients::create_from_cli;
use crate::auth::model::Code;
use crate::auth::store::{ClientRow, NewClient};
use crate::auth::Role;
use crate::config::{Config, Environment};
use crate::db::{Db, DbInitError};
use crate::directory::http::ProviderInput;
use crate::directory::service;
use crate::directory::store::{EmployerRow, NewContract, ProviderRow};
use crate::error::ApiError;
use crate::extract::parse_json;
use crate::ids::{ProviderId, ReferralId};
use crate::keys::{KeyError, Keys};
use crate::referrals::model::{request_fingerprint, NewReferral};

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(
        "the demo is for development only: it creates sample data and prints client secrets, \
         so EAP_ENV=production refuses it (nothing was created)"
    )]
    Production,
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error("EAP_CRISIS_RESOURCES_FILE: {0}")]
    Crisis(String),
    #[error("database: {0}")]
    Db(#[from] DbInitError),
    #[error("{0}")]
    Api(#[from] ApiError),
}

/// What the demo created.
pub struct Sandbox {
    /// Appended to every name, so a second run makes a second, distinct set.
    pub tag: String,
    pub employer: EmployerRow,
    /// In contract priority order: routing offers to the first.
    pub providers: Vec<ProviderRow>,
    pub admin: Credentials,
    pub auditor: Credentials,
    pub portal: Credentials,
    /// One per provider, in the same order.
    pub provider_clients: Vec<Credentials>,
    pub referral: SampleReferral,
}

/// A client and its secret (shown here only because this is a sandbox).
pub struct Credentials {
    pub client_id: String,
    pub secret: String,
    pub role: Role,
}

pub struct SampleReferral {
    pub id: ReferralId,
    pub status_token: String,
    /// The provider it was offered to (`None` when it could not be routed).
    pub offered_to: Option<ProviderId>,
}

/// Creates the sandbox. Refused in production before anything is read or written.
pub async fn create(config: &Config) -> Result<Sandbox, DemoError> {
    if config.env == Environment::Production {
        return Err(DemoError::Production);
    }
    // The server started afterwards loads the same keys, so it can open what is sealed here.
    let keys = Arc::new(Keys::load(config)?);
    let crisis = crate::referrals::crisis::load(config.crisis_resources_file.as_deref())
        .map_err(DemoError::Crisis)?;
    let db = Db::connect(&config.database_url, 2, config.db_timeout)?;
    db.migrate()?;
    let tag = uuid::Uuid::new_v4().simple().to_string()[..6].to_owned();

    let (admin_row, admin) = client(&db, Role::Admin, &tag, None).await?;
    let as_admin = |route| Caller::at_command_line(&admin_row, "POST", route);
    let rerouting = service::Rerouting {
        ttl: config.offer_ttl,
        keys: keys.clone(),
    };
    let (employer, _) = service::create_employer(
        as_admin("/v1/admin/employers")?,
        &db,
        format!("Demo Employer {tag}"),
        Vec::new(),
        rerouting,
    )
    .await?;
    let mut providers = Vec::new();
    for (priority, letter) in [(1, "A"), (2, "B")] {
        let (input, _) = validated::<ProviderInput>(
            "/v1/admin/providers",
            &json!({
                "name": format!("Demo Provider {letter} {tag}"),
                "services": ["counselling"],
                "languages": ["en"],
                "regions": ["GB"],
                "modalities": ["video", "phone"],
                "capacity": 10,
            }),
        )?;
        let caller = as_admin("/v1/admin/providers")?;
        let (provider, _) = service::create_provider(caller, &db, input.into()).await?;
        let now = crate::db::now();
        let contract = NewContract {
            employer_id: employer.id.clone(),
            provider_id: provider.id.clone(),
            priority,
            starts_at: now,
            ends_at: None,
        };
        service::create_contract(as_admin("/v1/admin/contracts")?, &db, contract).await?;
        providers.push(provider);
    }
    let (_, auditor) = client(&db, Role::Auditor, &tag, None).await?;
    let portal_binding = Binding::Employer(&employer);
    let (portal_row, portal) = client(&db, Role::HrPortal, &tag, Some(portal_binding)).await?;
    let mut provider_clients = Vec::new();
    for p in &providers {
        let binding = Some(Binding::Provider(p));
        provider_clients.push(client(&db, Role::Provider, &tag, binding).await?.1);
    }
    let referral = submit_sample(config, &db, keys, &crisis, &portal_row, &tag).await?;
    Ok(Sandbox {
        tag,
        employer,
        providers,
        admin,
        auditor,
        portal,
        provider_clients,
        referral,
    })
}

enum Binding<'a> {
    Employer(&'a EmployerRow),
    Provider(&'a ProviderRow),
}

/// Creates a client as `admin create-client` does (logged with the operator as the actor).
async fn client(
    db: &Db,
    role: Role,
    tag: &str,
    binding: Option<Binding<'_>>,
) -> Result<(ClientRow, Credentials), ApiError> {
    let (name, employer_id, provider_id) = match binding {
        None => (format!("demo {} {tag}", role.code()), None, None),
        Some(Binding::Employer(e)) => (format!("{} portal", e.name), Some(e.id.clone()), None),
        Some(Binding::Provider(p)) => (format!("{} system", p.name), None, Some(p.id.clone())),
    };
    let new = NewClient {
        name,
        role,
        employer_id,
        provider_id,
    };
    let (row, secret) = db.run(move |conn| create_from_cli(conn, &new)).await?;
    let credentials = Credentials {
        client_id: row.id.to_string(),
        secret,
        role,
    };
    Ok((row, credentials))
}

/// A body checked, parsed and validated exactly as the API does a request's to `route`
/// (`POST`): against the document's schema, by serde, by its `validator` rules; and its bytes.
fn validated<T: DeserializeOwned + Validate>(
    route: &str,
    body: &Value,
) -> Result<(T, Vec<u8>), ApiError> {
    let schemas = &crate::app::from_document()
        .map_err(ApiError::Internal)?
        .schemas;
    schemas.check_body(&actix_web::http::Method::POST, route, body)?;
    let raw = serde_json::to_vec(body).map_err(|e| ApiError::Internal(e.to_string()))?;
    let value: T = parse_json(&raw)?;
    value
        .validate()
        .map_err(|e| crate::validation::validator_errors(&e, true))?;
    Ok((value, raw))
}

/// Made-up contact details: a number from Ofcom's drama range and an example.org address.
fn sample_referral(tag: &str) -> Value {
    json!({
        "service_type": "counselling",
        "urgency": "routine",
        "modality": "video",
        "language": "en",
        "region": "GB-ENG",
        "employee_ref": format!("DEMO-{tag}"),
        "contact": {
            "preferred_name": "Sample Person",
            "phone": "+447700900000",
            "email": "sample.person@example.org",
            "best_time_to_contact": "weekday mornings",
            "voicemail_consent": false
        },
        "note": "A sample referral created by eap-referrals demo."
    })
}

/// Submits the sample referral as the portal's submission would be (same fingerprint, key,
/// sealing, routing and offer), with the command line as the actor.
async fn submit_sample(
    config: &Config,
    db: &Db,
    keys: Arc<Keys>,
    crisis: &crate::referrals::crisis::CrisisTable,
    portal: &ClientRow,
    tag: &str,
) -> Result<SampleReferral, ApiError> {
    let (new, raw) = validated::<NewReferral>("/v1/referrals", &sample_referral(tag))?;
    let fingerprint = request_fingerprint(&keys.pepper, portal.id.as_str(), &raw);
    let employer_id = portal
        .employer_id
        .clone()
        .ok_or_else(|| ApiError::Internal("the demo portal has no employer".into()))?;
    let caller = HrPortal {
        caller: Caller::at_command_line(portal, "POST", "/v1/referrals")?,
        employer_id,
    };
    let key = format!("demo-{tag}");
    let ttl = config.offer_ttl;
    // A command-line run routes once: nothing to keep a snapshot for.
    let snapshots = Arc::new(crate::routing::cache::SnapshotCache::new(usize::MAX));
    let answer = crate::referrals::intake::submit(
        db,
        keys,
        ttl,
        snapshots,
        crisis,
        caller,
        key,
        fingerprint,
        new,
    )
    .await?;
    let body: Value =
        serde_json::from_slice(&answer.body).map_err(|e| ApiError::Internal(e.to_string()))?;
    let status_token = body["status_token"]
        .as_str()
        .ok_or_else(|| ApiError::Internal("a submission without its status token".into()))?
        .to_owned();
    let id = answer.id.clone();
    let row = db
        .run_read(move |conn| Ok(crate::referrals::store::find_referral(conn, &id)?))
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(SampleReferral {
        id: answer.id,
        status_token,
        offered_to: row.provider_id,
    })
}

/// Where `cargo run` with the same settings answers: the configured listen address, with an
/// unspecified one (`0.0.0.0`, `::`) reached through the loopback.
pub fn base_url(config: &Config) -> String {
    let mut addr = config.listen;
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => addr.set_ip(Ipv4Addr::LOCALHOST.into()),
        IpAddr::V6(ip) if ip.is_unspecified() => addr.set_ip(Ipv6Addr::LOCALHOST.into()),
        _ => {}
    }
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    format!("{scheme}://{addr}")
}

/// Reads the access token out of the token response with `sed`, so the commands need nothing
/// beyond `curl` and a POSIX shell.
const TOKEN_FROM_JSON: &str = r#"sed -E 's/.*"access_token":"([^"]+)".*/\1/'"#;
const AUTH: &str = r#"-H "Authorization: Bearer $TOKEN""#;

/// The first lines of every role's block: the base URL and a token by HTTP Basic.
fn token_lines(base: &str, c: &Credentials) -> String {
    format!(
        "BASE={base}\n\
         TOKEN=$(curl -s -u '{}:{}' -d grant_type=client_credentials \"$BASE/oauth/token\" \
         | {TOKEN_FROM_JSON})\n",
        c.client_id, c.secret
    )
}

/// What the command prints: what was created, the credentials, and a block of shell commands
/// per role, each standing alone (a comment line first, no blank line inside).
pub fn instructions(s: &Sandbox, base: &str, database: &str) -> String {
    let name_of = |id: &ProviderId| {
        s.providers
            .iter()
            .find(|p| &p.id == id)
            .map_or("an unknown provider", |p| p.name.as_str())
    };
    let offered = match &s.referral.offered_to {
        Some(p) => format!("offered to {}", name_of(p)),
        None => "unroutable: no provider could take it".to_owned(),
    };
    let mut out = format!(
        "eap-referrals demo: a development sandbox (run {tag}) on {database}\n\n\
         Created:\n\
         \x20 employer  {} ({})\n",
        s.employer.name,
        s.employer.id,
        tag = s.tag,
    );
    for (i, p) in s.providers.iter().enumerate() {
        out += &format!(
            "  provider  {} ({}), contract priority {}\n",
            p.name,
            p.id,
            i + 1
        );
    }
    out += &format!(
        "  referral  {} ({offered}), status token {}\n\n",
        s.referral.id, s.referral.status_token
    );
    out += "API clients. Their secrets are printed because this is a development sandbox: never \
            print or share a real client's secret.\n";
    let mut clients = vec![(&s.admin, String::new()), (&s.auditor, String::new())];
    clients.push((&s.portal, format!(" for {}", s.employer.name)));
    for (c, p) in s.provider_clients.iter().zip(&s.providers) {
        clients.push((c, format!(" for {}", p.name)));
    }
    for (c, whom) in &clients {
        out += &format!(
            "  {:<9} client_id {}  client_secret {}{whom}\n",
            c.role.code(),
            c.client_id,
            c.secret
        );
    }
    out += &format!(
        "\nStart the server with the same EAP_* settings as this command (`cargo run`), then \
         paste a role's block into a shell (curl and sed only; tokens last \
         EAP_TOKEN_TTL_SECS, 600 s by default).\n\n\
         # admin: the referrals no provider could take (none unless routing failed)\n\
         {}curl -s {AUTH} \"$BASE/v1/admin/unroutable\"; echo\n\n",
        token_lines(base, &s.admin)
    );
    out += &format!(
        "# auditor: search the access log (events show once sealed, every \
         EAP_AUDIT_CHECKPOINT_SECS, 60 s by default), then verify it\n\
         {}curl -s {AUTH} \"$BASE/v1/audit/events?limit=5\"; echo\n\
         curl -s {AUTH} \"$BASE/v1/audit/verify\"; echo\n\n",
        token_lines(base, &s.auditor)
    );
    let body = sample_referral(&format!("{}-2", s.tag));
    out += &format!(
        "# hr_portal: submit a referral (the same Idempotency-Key again replays the answer), then \
         read the sample referral's status with its status token\n\
         {}curl -s -X POST {AUTH} -H 'Content-Type: application/json' \
         -H 'Idempotency-Key: demo-{tag}-2' -d '{body}' \"$BASE/v1/referrals\"; echo\n\
         curl -s {AUTH} -H 'Referral-Token: {token}' \"$BASE/v1/referrals/{id}\"; echo\n\n",
        token_lines(base, &s.portal),
        tag = s.tag,
        token = s.referral.status_token,
        id = s.referral.id,
    );
    for (c, p) in s.provider_clients.iter().zip(&s.providers) {
        out += &provider_block(s, base, c, p);
    }
    out
}

/// A provider's block: the one the sample was offered to long-polls its feed, reads the
/// referral's ETag with a HEAD and accepts; another waits briefly on an empty feed.
fn provider_block(s: &Sandbox, base: &str, c: &Credentials, p: &ProviderRow) -> String {
    let mut block = token_lines(base, c);
    if s.referral.offered_to.as_ref() == Some(&p.id) {
        block = format!(
            "# provider {name}: long-poll the feed (the sample referral is there), then accept \
             it (If-Match: its ETag, read with HEAD)\n\
             {block}curl -s {AUTH} \"$BASE/v1/provider/events?wait=30\"; echo\n\
             REFERRAL={id}\n\
             ETAG=$(curl -sI {AUTH} \"$BASE/v1/provider/referrals/$REFERRAL\" | tr -d '\\r' \
             | sed -n 's/^[Ee][Tt][Aa][Gg]: //p')\n\
             curl -s -X POST {AUTH} -H \"If-Match: $ETAG\" \
             \"$BASE/v1/provider/referrals/$REFERRAL/accept\"; echo\n\n",
            name = p.name,
            id = s.referral.id,
        );
    } else {
        block = format!(
            "# provider {name}: long-poll the feed for 5 s (empty: the sample went to the \
             first provider; a decline there offers it here)\n\
             {block}curl -s {AUTH} \"$BASE/v1/provider/events?wait=5\"; echo\n\n",
            name = p.name,
        );
    }
    block
}
