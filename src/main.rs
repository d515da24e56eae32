use std::process::ExitCode;

use clap::{Parser, Subcommand};
use eap_referrals::app::StartError;
use eap_referrals::auth::clients::create_from_cli;
use eap_referrals::auth::model::Code;
use eap_referrals::auth::store::NewClient;
use eap_referrals::auth::Role;
use eap_referrals::error::ApiError;
use eap_referrals::ids::{EmployerId, ProviderId};
use eap_referrals::{config::Config, db::Db, telemetry, Application};

// See Cargo.toml: memory per idle connection and after password hashing.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(
    name = "eap-referrals",
    version,
    about = "Confidential EAP referral service"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the OpenAPI document.
    Openapi,
    /// Destroy the personal data of referrals past their retention period (EAP_RETENTION_*);
    /// the server also does this every EAP_PURGE_INTERVAL_SECS.
    Purge {
        /// List what would be destroyed (referral ids, statuses, rules, due dates); change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Key management.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Administration without the API (bootstrap).
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Development only: create an employer, two providers, their contracts, a client per
    /// role and a sample referral, then print the credentials and curl commands for each role.
    /// Refused when EAP_ENV=production.
    Demo,
    /// The access log, offline.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Erasures recorded outside the database (EAP_OUTSIDE_LOG).
    Erasures {
        #[command(subcommand)]
        command: ErasuresCommand,
    },
}

#[derive(Subcommand)]
enum ErasuresCommand {
    /// After restoring a backup: destroy again the personal data of every referral erased or
    /// purged according to the outside log, each with an access-log event. Idempotent.
    Replay {
        /// The outside log (EAP_OUTSIDE_LOG of the servers that did the erasures).
        #[arg(long)]
        from: std::path::PathBuf,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Verify an NDJSON export against signed checkpoints with nothing but the public key:
    /// names each modified, missing, inserted or reordered event. Exits 0 when the export is
    /// intact, 1 when a problem is found, 2 when a file cannot be read.
    Verify {
        /// The export (`GET /v1/audit/export`, NDJSON).
        #[arg(long)]
        events: std::path::PathBuf,
        /// Checkpoints (the body of `GET /v1/audit/checkpoints`, or a JSON array of them).
        #[arg(long)]
        checkpoints: std::path::PathBuf,
        /// The checkpoint public key (the body of `GET /v1/audit/public-key`).
        #[arg(long)]
        public_key: std::path::PathBuf,
        /// The outside log (EAP_OUTSIDE_LOG), copied before the export was taken: the export
        /// is also compared with the checkpoints kept there, which catches a tail truncated or
        /// rewritten in the database.
        #[arg(long)]
        outside: Option<std::path::PathBuf>,
        /// Print the full report as JSON instead of one line per finding.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Re-wrap every referral's data key under the first key of EAP_MASTER_KEY; the other keys
    /// listed there must still include every key id in use. Ciphertexts are not touched.
    RotateMaster,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create an API client; prints JSON with its client_id and client_secret (shown once).
    CreateClient {
        /// hr_portal, provider, auditor or admin
        #[arg(long)]
        role: String,
        #[arg(long)]
        name: String,
        /// Employer id (required for hr_portal)
        #[arg(long)]
        employer: Option<String>,
        /// Provider id (required for provider)
        #[arg(long)]
        provider: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command.unwrap_or(Command::Serve) {
        // Offline: these need no configuration, no database and no private key.
        Command::Openapi => {
            let spec = eap_referrals::openapi::spec();
            println!("{}", spec.to_pretty_json().expect("the spec serialises"));
            return ExitCode::SUCCESS;
        }
        Command::Audit {
            command:
                AuditCommand::Verify {
                    events,
                    checkpoints,
                    public_key,
                    outside,
                    json,
                },
        } => return audit_verify(&events, &checkpoints, &public_key, outside.as_deref(), json),
        Command::Serve => configured().and_then(serve),
        Command::Migrate => configured().and_then(|c| migrate(&c)),
        Command::Admin { command } => configured().and_then(|c| admin(&c, command)),
        Command::Purge { dry_run } => configured().and_then(|c| purge(&c, dry_run)),
        Command::Demo => configured().and_then(|c| demo(&c)),
        Command::Erasures {
            command: ErasuresCommand::Replay { from },
        } => configured().and_then(|c| replay_erasures(&c, &from)),
        Command::Keys {
            command: KeysCommand::RotateMaster,
        } => configured().and_then(|c| rotate_master(&c)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Config(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
        Err(Failure::Runtime(message)) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The settings from the environment, with logging set up by them; a bad one exits 2.
fn configured() -> Result<Config, Failure> {
    let config = Config::from_env().map_err(|e| Failure::Config(e.to_string()))?;
    telemetry::init(config.log_format);
    Ok(config)
}

/// A bad setting or key exits 2, like a bad variable; anything else (the database, the port) 1.
enum Failure {
    Config(String),
    Runtime(String),
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Failure::Runtime(message)
    }
}

fn serve(config: Config) -> Result<(), Failure> {
    actix_web::rt::System::new().block_on(async {
        let app = Application::build(config).map_err(|e| match e {
            StartError::Keys(k) => Failure::Config(k.to_string()),
            e @ StartError::Crisis(_) => Failure::Config(e.to_string()),
            e @ StartError::Tls(_) => Failure::Config(e.to_string()),
            other => Failure::Runtime(other.to_string()),
        })?;
        app.run_until_stopped()
            .await
            .map_err(|e| Failure::Runtime(e.to_string()))
    })
}

fn migrate(config: &Config) -> Result<(), Failure> {
    let db = Db::connect(&config.database_url, 1, config.db_timeout).map_err(|e| e.to_string())?;
    let applied = db.migrate().map_err(|e| e.to_string())?;
    println!(
        "applied {} migration(s){}",
        applied.len(),
        if applied.is_empty() {
            String::new()
        } else {
            format!(": {}", applied.join(", "))
        }
    );
    Ok(())
}

fn admin(config: &Config, command: AdminCommand) -> Result<(), Failure> {
    let AdminCommand::CreateClient {
        role,
        name,
        employer,
        provider,
    } = command;
    let role = Role::from_code(&role).ok_or_else(|| {
        Failure::Config(format!(
            "--role {role:?} is not hr_portal, provider, auditor or admin"
        ))
    })?;
    let name = name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(Failure::Config(
            "--name must be 1–100 printable characters".into(),
        ));
    }
    let db = Db::connect(&config.database_url, 1, config.db_timeout).map_err(|e| e.to_string())?;
    db.migrate().map_err(|e| e.to_string())?;
    let mut conn = db.get().map_err(|e| e.to_string())?;
    // Text of another shape names no employer or provider: the same answer as an unknown id.
    let employer = employer
        .map(|e| EmployerId::parse(&e).ok_or_else(|| ApiError::unbound("employer")))
        .transpose();
    let provider = provider
        .map(|p| ProviderId::parse(&p).ok_or_else(|| ApiError::unbound("provider")))
        .transpose();
    let new = employer.and_then(|employer_id| {
        Ok(NewClient {
            name,
            role,
            employer_id,
            provider_id: provider?,
        })
    });
    let created = new.and_then(|new| create_from_cli(&mut conn, &new));
    let (row, secret) = created.map_err(|e| match e {
        ApiError::Validation(fields) => fields
            .iter()
            .map(|f| format!("{}: {}", f.at, f.message))
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    })?;
    let out = serde_json::json!({
        "client_id": row.id,
        "client_secret": secret,
        "role": role.code(),
        "name": row.name,
        "employer_id": row.employer_id,
        "provider_id": row.provider_id,
    });
    println!("{out}");
    Ok(())
}

fn demo(config: &Config) -> Result<(), Failure> {
    use eap_referrals::demo::{self, DemoError};
    let created = actix_web::rt::System::new().block_on(demo::create(config));
    let sandbox = created.map_err(|e| match e {
        e @ (DemoError::Production | DemoError::Keys(_) | DemoError::Crisis(_)) => {
            Failure::Config(e.to_string())
        }
        other => Failure::Runtime(other.to_string()),
    })?;
    let base = demo::base_url(config);
    let database = config.database_url.redacted();
    print!("{}", demo::instructions(&sandbox, &base, &database));
    Ok(())
}

fn audit_verify(
    events: &std::path::Path,
    checkpoints: &std::path::Path,
    public_key: &std::path::Path,
    outside: Option<&std::path::Path>,
    json: bool,
) -> ExitCode {
    use eap_referrals::audit::model::{
        parse_checkpoints, verify_export_against_outside, PublicKeys,
    };
    let read = |p: &std::path::Path| {
        std::fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
    };
    let setup = (|| {
        let keys = PublicKeys::from_jwks(&read(public_key)?)
            .map_err(|e| format!("{}: {e}", public_key.display()))?;
        let checkpoints = parse_checkpoints(&read(checkpoints)?)
            .map_err(|e| format!("{}: {e}", checkpoints.display()))?;
        let file = std::fs::File::open(events)
            .map_err(|e| format!("cannot read {}: {e}", events.display()))?;
        // Without the file nothing is compared; a named file that cannot be read is an error,
        // not an empty outside log.
        let kept = match outside {
            Some(path) => eap_referrals::audit::outside::kept(path).map_err(|e| e.to_string())?,
            None => Vec::new(),
        };
        Ok::<_, String>((keys, checkpoints, file, kept))
    })();
    let (keys, checkpoints, file, kept) = match setup {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let started = std::time::Instant::now();
    let (report, comparison) = match verify_export_against_outside(
        std::io::BufReader::with_capacity(1 << 20, file),
        &checkpoints,
        &keys,
        &kept,
    ) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", events.display());
            return ExitCode::from(2);
        }
    };
    let elapsed = started.elapsed().as_secs_f64();
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("the report serialises")
        );
    } else {
        for f in &report.findings {
            let kind = serde_json::to_value(f.kind).unwrap_or_default();
            println!(
                "{}\tseq={}\tevent={}\t{}",
                kind.as_str().unwrap_or("?").to_uppercase(),
                f.seq.map_or("-".into(), |s| s.to_string()),
                f.event_id.as_deref().unwrap_or("-"),
                f.detail
            );
        }
        let verdict = if report.ok() { "OK" } else { "FAILED" };
        let against = report
            .checkpoint
            .as_ref()
            .map_or(String::from("no checkpoint"), |c| {
                format!(
                    "checkpoint {} (size {}, issued {})",
                    c.n, c.tree_size, c.issued_at
                )
            });
        let rate = report.events as f64 / elapsed.max(1e-9);
        println!(
            "{verdict}: positions {}..{}, {} events, {} problem(s), against {against}; \
             {rate:.0} events/s",
            report.start,
            report.end,
            report.events,
            report.findings.len(),
        );
        if outside.is_some() {
            println!(
                "outside log: {} checkpoint(s) compared, {} not comparable with this export \
                 (before its range, or off its proof's subtree boundaries)",
                comparison.compared, comparison.not_compared
            );
        }
    }
    if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn rotate_master(config: &Config) -> Result<(), Failure> {
    let keys =
        eap_referrals::keys::Keys::load(config).map_err(|e| Failure::Config(e.to_string()))?;
    let db = Db::connect(&config.database_url, 1, config.db_timeout).map_err(|e| e.to_string())?;
    db.migrate().map_err(|e| e.to_string())?;
    let mut conn = db.get().map_err(|e| e.to_string())?;
    let n = eap_referrals::referrals::keystore::rewrap_all(&mut conn, &keys.master)
        .map_err(|e| e.to_string())?;
    println!(
        "re-wrapped {n} data key(s) under master key {}",
        keys.master[0].id
    );
    let n = eap_referrals::webhooks::store::reseal_all(&mut conn, &keys.master)
        .map_err(|e| e.to_string())?;
    println!(
        "re-sealed {n} webhook secret(s) under master key {}",
        keys.master[0].id
    );
    Ok(())
}

fn purge(config: &Config, dry_run: bool) -> Result<(), Failure> {
    use eap_referrals::privacy::{model::RetentionPolicy, store};
    let policy = RetentionPolicy::from_config(config);
    let outside = eap_referrals::outside::OutsideLog::new(config.outside_log.clone());
    let db = Db::connect(&config.database_url, 1, config.db_timeout).map_err(|e| e.to_string())?;
    db.migrate().map_err(|e| e.to_string())?;
    let mut conn = db.get().map_err(|e| e.to_string())?;
    let mut compacted = Vec::new();
    let (list, busy) = if dry_run {
        let list =
            store::due(&mut conn, &policy, eap_referrals::db::now()).map_err(|e| e.to_string())?;
        (list, false)
    } else {
        let run = store::purge(&mut conn, &policy, eap_referrals::db::now, &outside)
            .map_err(|e| e.to_string())?;
        compacted = run.compacted;
        (run.purged, run.busy)
    };
    if busy && list.is_empty() {
        // Not "purged 0": this run did nothing because another one is doing it.
        println!(
            "not purged: another instance holds the purge lock and is purging now; it destroys \
             what is due"
        );
        return Ok(());
    }
    // Ids, statuses and dates only: what an operator needs to check the policy, nothing personal.
    for d in &list {
        println!(
            "{} {} status={} rule={} due={}",
            if dry_run { "would purge" } else { "purged" },
            d.referral_id,
            d.status,
            d.rule.code(),
            d.due_at.and_utc().format("%Y-%m-%dT%H:%M:%SZ"),
        );
    }
    println!(
        "{} {} referral(s) (closed: {} days after closing; \
         never accepted: {} days after submission)",
        if dry_run { "would purge" } else { "purged" },
        list.len(),
        config.retention_closed_days,
        config.retention_unaccepted_days,
    );
    if busy {
        println!("stopped early: another instance took the purge lock and purges the rest");
    }
    // Last, after the referrals: the rewrite of the key partitions that held destroyed keys is
    // what makes this run's (and earlier erasures') destruction physical on PostgreSQL.
    if !compacted.is_empty() {
        // The lock times are what bench/key-compaction.sh reads.
        let mut ms: Vec<f64> = compacted.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        ms.sort_by(f64::total_cmp);
        println!(
            "rewrote {} key partition(s) that held destroyed keys; key table locked per \
             partition: median {:.2} ms, p95 {:.2} ms, max {:.2} ms",
            ms.len(),
            ms[ms.len() / 2],
            ms[ms.len() * 95 / 100],
            ms[ms.len() - 1],
        );
    }
    Ok(())
}

fn replay_erasures(config: &Config, from: &std::path::Path) -> Result<(), Failure> {
    use eap_referrals::privacy::{service, store::ErasureRecord};
    let records = eap_referrals::outside::read::<ErasureRecord>(from)
        .map_err(|e| Failure::Config(e.to_string()))?;
    let db = Db::connect(&config.database_url, 1, config.db_timeout).map_err(|e| e.to_string())?;
    db.migrate().map_err(|e| e.to_string())?;
    let mut conn = db.get().map_err(|e| e.to_string())?;
    let done = service::replay_erasures(&mut conn, &records).map_err(|e| e.to_string())?;
    // Ids only, as the access log holds them.
    for id in &done.erased {
        println!("erased again {id}");
    }
    println!(
        "replayed {} recorded erasure(s): {} erased again, {} already erased, {} not in this \
         database",
        records.len(),
        done.erased.len(),
        done.already,
        done.absent
    );
    Ok(())
}
