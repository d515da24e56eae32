//! Building and running the HTTP application.

use std::net::TcpListener;
use std::sync::{Arc, OnceLock};

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use utoipa_swagger_ui::{Config as SwaggerConfig, SwaggerUi};

use crate::auth::model::TokenService;
use crate::config::Config;
use crate::db::Db;
use crate::error::ApiError;
use crate::keys::Keys;
use crate::openapi::RouteTable;
use crate::routes::routes;
use crate::state::AppState;
use crate::validation::RequestSchemas;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Keys(#[from] crate::keys::KeyError),
    #[error("database: {0}")]
    Db(#[from] crate::db::DbInitError),
    #[error("EAP_CRISIS_RESOURCES_FILE: {0}")]
    Crisis(String),
    #[error("{0}")]
    Tls(String),
    #[error("cannot listen on {0}: {1}")]
    Bind(std::net::SocketAddr, std::io::Error),
    #[error("the OpenAPI document's request schemas: {0}")]
    Schemas(String),
}

pub struct Application {
    server: Server,
    addr: std::net::SocketAddr,
    state: web::Data<AppState>,
    listener: Option<crate::db::notify::Listener>,
}

impl Application {
    /// Loads keys, connects and migrates the database, and binds the listener. The listener is
    /// bound here so a caller (a test) can ask for port 0 and read the port back.
    pub fn build(config: Config) -> Result<Self, StartError> {
        let keys = Keys::load(&config)?;
        let tls = match &config.tls {
            Some((cert, key)) => {
                Some(crate::tls::server_config(cert, key).map_err(StartError::Tls)?)
            }
            None => None,
        };
        let crisis = crate::referrals::crisis::load(config.crisis_resources_file.as_deref())
            .map_err(StartError::Crisis)?;
        let db = Db::connect(&config.database_url, config.db_pool_size, config.db_timeout)?;
        let applied = db.migrate()?;
        if !applied.is_empty() {
            tracing::info!(migrations = ?applied, "applied migrations");
        }
        seal_webhook_secrets(&db, &keys);
        let listener =
            TcpListener::bind(config.listen).map_err(|e| StartError::Bind(config.listen, e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| StartError::Bind(config.listen, e))?;
        let workers = config.workers;
        let tokens = TokenService::new(
            &keys,
            &config.token_issuer,
            &config.token_audience,
            config.token_ttl,
        );
        let limits = crate::ratelimit::Limits::new(&config.rate_limits);
        let outside = crate::outside::OutsideLog::new(config.outside_log.clone());
        let routing = Arc::new(crate::routing::cache::SnapshotCache::new(
            config.routing_keep_loads_from,
        ));
        let state = web::Data::new(AppState {
            outside,
            config: Arc::new(config),
            db,
            keys: Arc::new(keys),
            tokens,
            crisis,
            hashing: tokio::sync::Semaphore::new(workers.max(2)),
            auth_cache: Default::default(),
            limits,
            metrics: Default::default(),
            routing,
        });
        let from_document = from_document().map_err(StartError::Schemas)?;
        let route_table = from_document.routes.clone();
        let request_schemas = from_document.schemas.clone();
        let body_limit = state.config.body_limit_bytes;
        let body_deadline = crate::extract::BodyDeadline(state.config.body_timeout);
        let trusted =
            crate::forwarded::TrustedProxies(Arc::new(state.config.trusted_proxies.clone()));
        let app_state = state.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(app_state.clone())
                .app_data(route_table.clone())
                .app_data(request_schemas.clone())
                .app_data(web::PayloadConfig::new(body_limit))
                .app_data(crate::extract::BodyLimit(body_limit))
                .app_data(body_deadline)
                .app_data(trusted.clone())
                .configure(routes::<web::ServiceConfig>)
                // Guarded, so another method falls through to `fallback`'s 405 with its Allow.
                .service(
                    web::resource("/openapi.json")
                        .guard(actix_web::guard::Get())
                        .to(crate::openapi::serve),
                )
                .service(
                    SwaggerUi::new("/docs/{_:.*}").config(SwaggerConfig::from("/openapi.json")),
                )
                .service(web::resource("/docs").get(docs_redirect))
                .service(web::resource("/console").get(crate::console::http::redirect))
                .service(web::resource("/console/{file:[a-z.]*}").get(crate::console::http::file))
                .default_service(web::to(fallback))
                // Inside the lifecycle, so logs and metrics still say HEAD; before routing, so
                // a HEAD takes its GET's route.
                .wrap(from_fn(crate::head::as_get))
                .wrap(from_fn(refuse_large_heads))
                .wrap(from_fn(crate::telemetry::request_lifecycle))
        })
        .workers(workers)
        // SIGTERM/SIGINT are ours (see `run_until_stopped`): long polls must be answered
        // before the graceful stop, which actix's own handler would not do.
        .disable_signals()
        .shutdown_timeout(30)
        .keep_alive(state.config.keep_alive)
        .client_request_timeout(state.config.request_timeout);
        let server = match tls {
            Some(tls) => server.listen_rustls_0_23(listener, tls),
            None => server.listen(listener),
        }
        .map_err(|e| StartError::Bind(addr, e))?
        .run();
        if state.config.housekeeping {
            spawn_housekeeping(state.clone());
        }
        if state.config.webhooks.delivery {
            spawn_webhook_worker(state.clone());
        }
        let listener = match state.db.url() {
            crate::db::DatabaseUrl::Postgres(url) => {
                let cache = Arc::downgrade(&state.clone().into_inner());
                let on_client: crate::db::notify::OnClientChange = Box::new(move |id| {
                    if let Some(state) = cache.upgrade() {
                        match id {
                            Some(id) => state.auth_cache.forget_client(id),
                            None => state.auth_cache.forget_clients(),
                        }
                    }
                });
                Some(crate::db::notify::spawn_pg_listener(
                    url.clone(),
                    Arc::downgrade(&state.db.notifier),
                    on_client,
                ))
            }
            crate::db::DatabaseUrl::Sqlite(_) => None,
        };
        tracing::info!(%addr, database = ?state.config.database_url, "listening");
        Ok(Application {
            server,
            addr,
            state,
            listener,
        })
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// Serves until SIGTERM or SIGINT, then stops gracefully: waiting long polls answer at
    /// once with what they have, the listener stops accepting, requests in flight finish (up
    /// to 30 s) and commit their access-log events, then the process exits 0.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let handle = self.server.handle();
        let notifier = self.state.db.notifier.clone();
        actix_web::rt::spawn(async move {
            shutdown_signal().await;
            tracing::info!("{STOPPING}");
            notifier.close();
            handle.stop(true).await;
        });
        let result = self.server.await;
        if let Some(listener) = self.listener {
            listener.stop();
        }
        // Every request has finished: seal its access events now rather than leave them to
        // another instance's next tick (or, for the last instance, to the next start).
        if self.state.config.housekeeping {
            seal_before_exit(&self.state).await;
        }
        result
    }
}

const STOPPING: &str =
    "stopping: answering long polls, finishing requests in flight, then sealing the access log";

/// How long the exit waits for the PostgreSQL commit horizon to pass this instance's last
/// events: a transaction elsewhere in the cluster can hold it, but must not hold the exit.
const EXIT_SEAL_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

const LEFT_FOR_NEXT_SEALER: &str =
    "access events left for the next sealer: the commit horizon did not pass them before the exit";

/// Seals the access log on the way out. On PostgreSQL the sealer takes only events below the
/// cluster-wide commit horizon, so while another transaction (in any database of the cluster)
/// runs, this instance's last events may be committed but not yet sealable: pass again until
/// none is left or `EXIT_SEAL_WAIT` runs out (what is left is sealed by the next tick of any
/// instance, so nothing is lost either way).
async fn seal_before_exit(state: &web::Data<AppState>) {
    let deadline = std::time::Instant::now() + EXIT_SEAL_WAIT;
    loop {
        let size = seal_access_log(state).await;
        let held = state.db.run(crate::audit::seal::held_back).await;
        match held {
            Ok(true) if std::time::Instant::now() < deadline => {
                actix_web::rt::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Ok(true) => {
                tracing::warn!("{LEFT_FOR_NEXT_SEALER}");
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not tell whether access events wait to be sealed");
                return;
            }
            Ok(false) => {
                if let Some(size) = size {
                    tracing::info!(tree_size = size, "access log sealed before exit");
                }
                return;
            }
        }
    }
}

/// One sealing pass and checkpoint; the checkpoint's tree size, or `None` when another
/// instance leads or it failed (logged; the next pass retries).
async fn seal_access_log(state: &web::Data<AppState>) -> Option<u64> {
    match crate::audit::seal::tick(&state.db, state.keys.clone(), &state.outside).await {
        Ok(cp) => cp.map(|cp| cp.tree_size),
        Err(e) => {
            tracing::warn!(error = %e, "access-log sealing failed; will retry");
            None
        }
    }
}

/// Brings the access log's hourly counts up to the newest checkpoint when they trail it (after
/// the upgrade that adds them, or checkpoints an older instance issued), one short transaction
/// per step, so writers take their turns in between. A failure waits for the next tick.
async fn catch_up_access_counts(state: &web::Data<AppState>) {
    let mut steps = 0u64;
    loop {
        match state.db.run(crate::audit::seal::catch_up_counts).await {
            Ok(true) => steps += 1,
            Ok(false) => break,
            Err(e) => {
                tracing::warn!(error = %e, "access-log counts did not catch up; will retry");
                break;
            }
        }
    }
    if steps > 0 {
        tracing::info!(steps, "access-log hourly counts caught up with the log");
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        // Without signal handlers the server runs until killed; never stop it by mistake.
        _ => std::future::pending::<()>().await,
    }
}

/// Periodic clean-up that belongs to no request: overdue offers, expired Idempotency-Key
/// records (they hold a sealed copy of a response and a keyed fingerprint of the request, and
/// are kept 24 h), personal data past its retention period, and the access-log sealer, which
/// also issues a signed checkpoint every interval.
fn spawn_housekeeping(state: web::Data<AppState>) {
    let purger = state.clone();
    actix_web::rt::spawn(async move {
        let policy = crate::privacy::model::RetentionPolicy::from_config(&purger.config);
        let mut tick = actix_web::rt::time::interval(purger.config.purge_interval);
        loop {
            tick.tick().await;
            let outside = purger.outside.clone();
            match purger
                .db
                .run(move |c| crate::privacy::store::purge(c, &policy, crate::db::now, &outside))
                .await
            {
                Ok(run) => {
                    if run.wal_pending {
                        purger
                            .db
                            .wal_dirty
                            .store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                    let m = &purger.metrics;
                    m.purge_runs
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    m.purged_referrals.fetch_add(
                        run.purged.len() as u64,
                        std::sync::atomic::Ordering::Relaxed,
                    );
                    if !run.purged.is_empty() {
                        tracing::info!(
                            purged = run.purged.len(),
                            "personal data past retention destroyed"
                        )
                    }
                    if run.busy {
                        tracing::debug!("another instance holds the purge lock; it purges");
                    }
                }
                Err(e) => {
                    let m = &purger.metrics;
                    m.purge_failures
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tracing::warn!(error = %e, "retention purge failed; will retry")
                }
            }
        }
    });
    let sealer = state.clone();
    actix_web::rt::spawn(async move {
        let mut tick = actix_web::rt::time::interval(sealer.config.checkpoint_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Some(size) = seal_access_log(&sealer).await {
                tracing::debug!(tree_size = size, "access log checkpoint");
                catch_up_access_counts(&sealer).await;
            }
        }
    });
    let sweeper = state.clone();
    actix_web::rt::spawn(async move {
        let mut tick = actix_web::rt::time::interval(sweeper.config.sweep_interval);
        loop {
            tick.tick().await;
            let ttl = sweeper.config.offer_ttl;
            let keys = sweeper.keys.clone();
            match sweeper
                .db
                .run(move |c| {
                    crate::workflow::sweep::sweep(c, &ttl, &keys.master, crate::db::now())
                })
                .await
            {
                Ok(n) => {
                    let m = &sweeper.metrics;
                    m.sweep_runs
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    m.offers_expired
                        .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                    if n > 0 {
                        tracing::info!(expired = n, "overdue offers expired and re-offered")
                    }
                }
                Err(e) => tracing::warn!(error = %e, "offer sweep failed; will retry"),
            }
            empty_wal_after_erasure(&sweeper).await;
        }
    });
    actix_web::rt::spawn(async move {
        let mut tick = actix_web::rt::time::interval(std::time::Duration::from_secs(600));
        loop {
            tick.tick().await;
            match state
                .db
                .run(|c| {
                    Ok(crate::referrals::store::purge_expired_keys(
                        c,
                        crate::db::now(),
                    )?)
                })
                .await
            {
                Ok(n) if n > 0 => tracing::info!(purged = n, "expired idempotency keys deleted"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "idempotency key purge failed; will retry"),
            }
        }
    });
}

/// The most a request line and header fields may take together. actix reads heads of up to
/// 128 KiB; nothing this service is sent needs more than a few (a bearer token is under one),
/// and a large head held per connection is a cheap way to take memory.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;

/// Refuses a request whose head exceeds [`MAX_HEAD_BYTES`] with 431, before routing or any
/// handler sees it.
async fn refuse_large_heads(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    // As on the wire: `name: value\r\n` per field, plus the request line.
    let fields: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    let line = req.method().as_str().len() + req.uri().path().len() + req.query_string().len();
    if fields + line > MAX_HEAD_BYTES {
        return Err(ApiError::HeadTooLarge(MAX_HEAD_BYTES).into());
    }
    next.call(req).await
}

/// SQLite: an erasure whose write-ahead-log checkpoint a reader blocked left the destroyed
/// pages in the log; try again every sweep (seconds) until the log is empty.
async fn empty_wal_after_erasure(state: &web::Data<AppState>) {
    use std::sync::atomic::Ordering;
    if !state.db.wal_dirty.swap(false, Ordering::Relaxed) {
        return;
    }
    let emptied = state
        .db
        .run(|c| Ok(crate::privacy::store::forget_old_pages(c)))
        .await;
    if !matches!(emptied, Ok(true)) {
        state.db.wal_dirty.store(true, Ordering::Relaxed);
    }
}

/// Seals webhook secrets still stored in plain (rows of the previous release) or under an
/// older master key. A failure is logged, not fatal: those endpoints' deliveries fail (logged)
/// until `keys rotate-master` runs with the key that sealed them.
fn seal_webhook_secrets(db: &Db, keys: &Keys) {
    let sealed = db
        .get()
        .and_then(|mut c| crate::webhooks::store::reseal_all(&mut c, &keys.master));
    match sealed {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            endpoints = n,
            "webhook secrets sealed under the active master key"
        ),
        Err(e) => tracing::error!(error = %e, "webhook secrets could not be sealed"),
    }
}

/// The webhook delivery worker: every instance runs one (PostgreSQL instances claim different
/// deliveries; SQLite has this one). A failed pass is logged and the next one retries.
fn spawn_webhook_worker(state: web::Data<AppState>) {
    let settings = state.config.webhooks;
    let observed = state.clone();
    let worker = crate::webhooks::delivery::Worker::new(
        state.db.clone(),
        crate::webhooks::client::Client::new(
            crate::webhooks::model::AddressPolicy {
                allow_loopback: settings.allow_loopback,
            },
            state.config.env == crate::config::Environment::Production,
            crate::webhooks::model::DELIVERY_TIMEOUT,
        ),
        crate::webhooks::model::RetryPolicy {
            base: settings.retry_base,
            max_age: settings.max_age,
            cap: crate::webhooks::model::MAX_RETRY_WAIT,
        },
        chrono::TimeDelta::from_std(settings.lease).unwrap_or(chrono::TimeDelta::MAX),
        state.keys.clone(),
        std::sync::Arc::new(move |outcome, latency| {
            observed.metrics.observe_webhook(outcome, latency)
        }),
    );
    actix_web::rt::spawn(async move {
        let mut tick = actix_web::rt::time::interval(settings.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // Every interval, and at once when a delivery queue finishes or a pass claimed a
            // full batch (more is likely waiting).
            tokio::select! {
                _ = tick.tick() => {}
                _ = worker.wake.notified() => {}
            }
            match worker.pass().await {
                Ok(claimed) if claimed as i64 >= crate::webhooks::delivery::BATCH => {
                    worker.wake.notify_one()
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "webhook delivery pass failed; will retry"),
            }
        }
    });
}

async fn docs_redirect() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header(("location", "/docs/"))
        .finish()
}

/// No handler took the request: 405 with `Allow` when the path exists, else 404.
async fn fallback(
    req: HttpRequest,
    routes: web::Data<RouteTable>,
) -> Result<HttpResponse, ApiError> {
    Err(match routes.allowed(req.path()) {
        Some(methods) => ApiError::MethodNotAllowed(methods),
        None => ApiError::NotFound,
    })
}

/// What the server derives from the OpenAPI document: the 405 table and the compiled request
/// schemas. Built once per process from one parse of the served bytes: the document is fixed
/// when the binary is built, so every server the process starts (a test binary starts dozens)
/// and the `demo` command share them.
pub struct FromDocument {
    pub routes: web::Data<RouteTable>,
    pub schemas: web::Data<RequestSchemas>,
}

pub fn from_document() -> Result<&'static FromDocument, String> {
    static BUILT: OnceLock<Result<FromDocument, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let document =
                serde_json::from_slice(&crate::openapi::served()).map_err(|e| e.to_string())?;
            Ok(FromDocument {
                routes: web::Data::new(RouteTable::from_document(&document)),
                schemas: RequestSchemas::from_document(&document).map(web::Data::new)?,
            })
        })
        .as_ref()
        .map_err(Clone::clone)
}
