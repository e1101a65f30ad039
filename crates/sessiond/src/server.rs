//! `sessiond serve`: wires the store, keys, events and API together and
//! runs until the shutdown signal, then drains and flushes.

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context as _;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sessiond_core::{
    AccessTokenIssuer, Clock, Maintenance, SessionManager, SigningKeys, SystemClock, Tenant, spawn_purger,
};
use tokio::net::TcpListener;

use crate::api::{self, BudgetSizes, Limits};
use crate::config::Config;
use crate::event_log::EventLog;
use crate::key_ring::KeyRing;
use sessiond_stores::{InstrumentedStore, StoreUrl};

/// The process-wide metrics recorder (a recorder is global; tests start
/// several servers in one process, so it is installed once and shared).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let buckets = [
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ];
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), &buckets)
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics may be empty");
            }
            handle
        })
        .clone()
}

/// Folds recorded histogram samples into their buckets every few seconds.
/// A recorder from `build_recorder` otherwise keeps every sample until the
/// next scrape of `/metrics`: without a scraper, memory grows with every
/// request (several samples each). Also copies the engine's own counts
/// (`engine_metrics`, see `StoreHandle::engine_metrics`), so those are at
/// most this old on `/metrics`.
fn spawn_metrics_upkeep(
    handle: PrometheusHandle,
    engine_metrics: impl Fn() + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(METRICS_UPKEEP);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            engine_metrics();
            handle.run_upkeep();
        }
    })
}

/// How often [`spawn_metrics_upkeep`] runs.
const METRICS_UPKEEP: Duration = Duration::from_secs(5);

/// Runs the service on `listener` until `shutdown` completes, then stops
/// accepting, finishes in-flight requests and flushes the store.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    // Installed first: metric handles registered before the recorder exists
    // would record into nothing.
    let metrics = metrics_handle();
    match crate::listen::raise_fd_limit() {
        Ok(limit) => tracing::debug!(limit, "open file limit"),
        Err(error) => tracing::warn!(%error, "cannot raise the open file limit"),
    }
    let addr = listener.local_addr()?;
    crate::config::check_dev_listen(config.server.dev, addr)?;
    // Checked with the final `--dev` before anything starts.
    let webhook_endpoints = config.webhook_endpoints()?;
    // Before the store is opened: a certificate that does not load stops
    // the start at once, naming the file.
    let (tls, reloader) = match &config.server.tls {
        Some(tls) => {
            let (server, cert) = crate::tls::server_config(tls).context("[server.tls]")?;
            (Some(server), Some(crate::tls::spawn_reloader(cert)))
        }
        None => (None, None),
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let url = StoreUrl::parse(&config.store.url)?;
    let data_dir = config.data_dir();
    private_dir(&data_dir)?;
    let sealer = crate::data_keys::sealer(&config, &url)?;
    let opened = sessiond_stores::open(&url).await?.sealed_by(sealer);
    let users = opened.users();

    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let imported = crate::keys::import_legacy_file(opened.keys().as_ref(), &data_dir)
        .await
        .context("cannot import the API keys of an earlier version")?;
    if imported > 0 {
        tracing::warn!(
            imported,
            "imported API keys from {}; the file is renamed .imported",
            crate::keys::LEGACY_FILE
        );
    }
    let keys = KeyRing::load(opened.keys(), Arc::clone(&clock))
        .await
        .context("cannot read the API keys from the store")?;
    let key_refresher = keys.spawn_refresher();
    if keys.is_empty() {
        let base = format!("{scheme}://{addr}");
        crate::first_key::make_first_key(&keys, opened.is_local(), &data_dir, &base).await?;
    }
    let imported_events = crate::event_import::import_legacy_events(opened.events().as_ref(), &data_dir)
        .await
        .context("cannot import the event log of an earlier version")?;
    if imported_events > 0 {
        tracing::warn!(
            imported_events,
            "imported audit events from {}; the file is renamed {}",
            crate::event_import::LEGACY_FILE,
            crate::event_import::IMPORTED_FILE
        );
    }
    let events = EventLog::start(opened.events(), config.events.bounds(), Arc::clone(&clock))?;
    if config.events.token_guessing_threshold > 0 {
        events.watch_guesses(opened.counters(), config.events.token_guessing_threshold);
    }

    let store = Arc::new(InstrumentedStore::new(opened.sessions()));
    let mut manager = SessionManager::builder(store)
        .clock(Arc::clone(&clock))
        .policy(config.policy.to_policy())
        .events(events.clone())
        .store_events(events.ids());
    if let Some(rule) = config.policy.anonymous_rule() {
        manager = manager.anonymous_limit(opened.counters(), rule);
    }
    let manager = manager.build()?;
    let purger = spawn_purger(manager.clone(), config.store.purge_interval, config.store.purge_batch);
    let upkeep = spawn_metrics_upkeep(metrics.clone(), opened.engine_metrics());
    if config.server.dev {
        tracing::warn!(
            "DEVELOPMENT MODE: cookies are sent over plain HTTP without Secure; never use --dev in production"
        );
    }
    let limits = Limits {
        body_bytes: config.server.body_limit,
        header_bytes: config.server.header_limit,
        timeout: config.server.request_timeout,
        body_timeout: config.server.body_read_timeout,
        budgets: BudgetSizes {
            api: config.server.max_concurrency,
            public: config.server.public_max_concurrency,
            public_per_client: config.server.public_max_per_client,
        },
        trusted_proxies: config.portal.trusted_proxies.clone(),
        client_certificates: config.server.tls.as_ref().is_some_and(|tls| tls.client_ca().is_some()),
    };
    let portal = if config.portal.enabled {
        let mut settings = config.portal.settings(config.server.dev)?;
        settings.refuse_plain_http = config.server.refuses_plain_http_pages();
        if config.events.login_burst_threshold > 0 {
            let weak = Arc::downgrade(&events);
            let events: std::sync::Weak<dyn sessiond_core::EventSink> = weak;
            let watch =
                crate::burst_watch::LoginBursts::start(opened.counters(), events, config.events.login_burst_threshold);
            settings.failed_logins = Some(Arc::new(watch));
        }
        if settings.refuse_plain_http {
            tracing::warn!(
                "plain HTTP without --dev: the login portal's pages answer 403 https_required; configure \
                 [server.tls], or set server.behind_proxy = true if a proxy in front terminates TLS"
            );
        }
        Some(
            sessiond_portal::router(
                &manager,
                Arc::clone(&users),
                opened.secrets().as_ref(),
                opened.counters(),
                settings,
                &data_dir,
            )
            .await?,
        )
    } else {
        None
    };
    let admin = api::AdminState {
        users: Arc::clone(&users),
        // Two hashes at once: administration must not starve the portal's logins.
        passwords: sessiond_portal::Passwords::new(2),
    };
    let schedule = config.tokens.schedule()?;
    let signing_keys = SigningKeys::new(opened.secrets(), opened.sealer().clone(), Arc::clone(&clock), schedule);
    // A node that cannot read the keys (a data key missing from key_files,
    // the store down) still serves sessions; minting fails, loudly, until
    // a later refresh reads them.
    match signing_keys.maintain().await {
        Ok(done) => count_key_changes(done),
        Err(error) => tracing::error!(
            %error,
            source = ?std::error::Error::source(&error),
            "cannot read or make the access-token signing keys: access tokens are refused until they can be read"
        ),
    }
    let key_maintenance = signing_keys.spawn_maintenance(count_key_changes);
    let tokens = AccessTokenIssuer::new(signing_keys, &config.tokens.issuer, &config.tokens.audience);
    let revocations = crate::revocations::Revocations::new(events.clone(), Arc::clone(&clock), schedule.ttl());
    // Webhooks: the dispatchers follow the audit log from their records in
    // the store; `default` and the portal's tenant are served even before
    // they have an API key.
    let webhooks = crate::webhooks::Webhooks::new(webhook_endpoints, opened.secrets());
    let webhook_tenants = [Tenant::default_tenant(), Tenant::new(config.portal.tenant.as_str())?];
    let webhook_tasks = webhooks.start(&events, &opened.keys(), &clock, &webhook_tenants)?;
    let keys_for_cli = Arc::clone(&keys);
    let parts = api::Parts {
        manager,
        keys,
        events: events.clone(),
        metrics,
        admin,
        tokens,
        revocations,
        webhooks,
    };
    let app = api::app(parts, &limits, portal);
    let published = match &url {
        StoreUrl::Embedded { dir, .. } => {
            let mut tenants = vec![Tenant::default_tenant()];
            let portal_tenant = Tenant::new(config.portal.tenant.as_str())?;
            if !tenants.contains(&portal_tenant) {
                tenants.push(portal_tenant);
            }
            let cert_file = config.server.tls.as_ref().map(|tls| tls.cert_file.as_path());
            Some(crate::local_admin::publish(&keys_for_cli, dir, addr, cert_file, &tenants).await?)
        }
        _ => None,
    };
    tracing::info!(%addr, scheme, store = %url, data_dir = %data_dir.display(), "sessiond listening");
    println!("listening on {addr}");
    let connections = crate::listen::ConnectionLimits {
        header_read_timeout: config.server.header_read_timeout,
        drain_timeout: config.server.request_timeout + config.server.header_read_timeout,
        header_bytes: u32::try_from(config.server.header_limit).unwrap_or(u32::MAX),
    };
    let served = crate::listen::serve(listener, app, connections, tls, shutdown).await;
    if let Some(reloader) = reloader {
        reloader.abort();
    }
    tracing::info!("shutting down: in-flight requests finished; flushing");
    if let Some(published) = published {
        published.retract().await;
    }
    drop(keys_for_cli);
    purger.shutdown().await;
    upkeep.abort();
    key_refresher.abort();
    key_maintenance.abort();
    // Undelivered events stay in the log; the next node to lead resumes.
    webhook_tasks.iter().for_each(tokio::task::JoinHandle::abort);
    events.close().await;
    // The last handles go first, so closing flushes now and reports errors.
    drop(users);
    if let Err(error) = opened.shutdown() {
        tracing::error!(%error, "closing the store failed");
    }
    served.context("the HTTP server failed")
}

/// Counts the signing-key changes this node wrote: over one store, the
/// nodes' counts add up to the changes made, each by exactly one node.
fn count_key_changes(done: Maintenance) {
    if done == Maintenance::Resealed {
        tracing::info!("this node resealed the signing keys under the sealing data key");
    }
    if let Maintenance::Changed { added, dropped } = done {
        if added {
            metrics::counter!("sessiond_signing_keys_added_total").increment(1);
        }
        metrics::counter!("sessiond_signing_keys_dropped_total").increment(dropped as u64);
        tracing::info!(added, dropped, "this node changed the shared signing keys");
    }
}

/// Creates the data directory owner-only (0700), and refuses one that others
/// can write to: it holds an earlier version's key file and audit log, an
/// imported portal secret file and, embedded, the store with password hashes, session data
/// and the portal secrets.
fn private_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create data directory {}", dir.display()))?;
    let mode = std::fs::metadata(dir)
        .with_context(|| format!("cannot read data directory {}", dir.display()))?
        .permissions()
        .mode();
    if mode & 0o022 != 0 {
        anyhow::bail!(
            "data directory {} can be written by group or others (mode {:o}); run chmod 700 on it",
            dir.display(),
            mode & 0o777
        );
    }
    Ok(())
}

/// Completes on SIGTERM or ctrl-c.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
