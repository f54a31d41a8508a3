//! Strata's HTTP server: tenancy, ingest and query endpoints, operations.
//!
//! The top of the pipeline. [`serve`] binds the listener first (so
//! `/-/healthy` answers at once), replays the WAL into the head in the
//! background (`/-/ready` turns 200 when done; writes before that get 503),
//! then serves until the shutdown future resolves, flushing the head to the
//! object store in the background. Shutdown is ordered: stop accepting, let
//! in-flight requests finish (each already fsynced before its 2xx), flush
//! the head, then close the WAL.
//!
//! Every handler resolves the tenant first (see [`tenant`]) and every error
//! goes through [`ApiError`], whose kind maps to a status in one place.

mod analytics_loop;
pub mod auth;
pub mod config;
pub mod decoded;
mod durations;
mod error;
pub mod flight;
pub mod frontend;
pub mod ha;
pub mod limits;
pub mod live_series;
pub mod metadata;
mod metrics;
mod peers;
pub mod replication;
mod routes;
pub mod ruler;
pub mod scheduler;
mod sql_analytics;
mod sql_format;
mod sql_json;
mod state;
pub mod tenant;
pub mod tls;

pub use config::{ByteSize, ConfigError, LogFormat, ServerConfig};
pub use error::{ApiError, Shape, grpc_code_for, sqlstate_for, status_for};
pub use routes::router;
pub use state::AppState;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tracing::{error, info};

/// Stack of every thread that parses, plans or evaluates queries. Query
/// depth is bounded ([`strata_query_lang::nesting::MAX_DEPTH`]) and the
/// deepest query allowed needs a few MiB in DataFusion's planner; the
/// default 2 MiB is too little. Only touched pages take memory.
pub const THREAD_STACK_BYTES: usize = 16 << 20;

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("data directory {path}: {source}")]
    DataDir {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("data directory {path} is in use by another strata process")]
    Locked { path: std::path::PathBuf },
    #[error("object store: {0}")]
    Storage(#[from] strata_storage::StorageError),
    #[error("WAL replay failed: {0}")]
    Wal(#[from] strata_wal::WalError),
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
}

/// Runs the server until `shutdown` resolves.
pub async fn serve(
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    config.validate()?;
    let tls = match (&config.tls.cert_file, &config.tls.key_file) {
        (Some(cert), Some(key)) => {
            Some(
                tls::server_config(cert, key).map_err(|reason| ConfigError::Invalid {
                    field: "tls",
                    reason,
                })?,
            )
        }
        _ => None,
    };
    let lock = state::lock_data_dir(&config.data_dir)?;
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: config.listen,
            source,
        })?;
    info!(addr = %listener.local_addr()?, tls = tls.is_some(), data_dir = %config.data_dir.display(), "strata listening");
    let pg_listener = if config.postgres.enabled {
        Some(
            strata_query::postgres::wire::bind_listener(config.postgres.listen)
                .await
                .map_err(|source| ServeError::Bind {
                    addr: config.postgres.listen,
                    source,
                })?,
        )
    } else {
        None
    };
    let flight_listener = if config.flight.enabled {
        Some(
            flight::bind_listener(config.flight.listen)
                .await
                .map_err(|source| ServeError::Bind {
                    addr: config.flight.listen,
                    source,
                })?,
        )
    } else {
        None
    };

    let store = strata_storage::ObjectStoreHandle::open(&config.object_store, &config.data_dir)?;
    let role = config.node.role;
    let sharing = role.shares_tables().then(|| {
        let id = config.node.resolved_id();
        let (ordinal, replicas) = (config.node.ordinal(), config.node.compactor_replicas);
        info!(%role, node = %id, ordinal, compactors = replicas, "sharing the tables with other nodes");
        strata_storage::Sharing {
            wal_app_id: strata_storage::ingester_wal_app_id(&id),
            owns: Arc::new(move |t: &strata_types::TenantId| {
                config::compactor_owns(t.as_str(), ordinal, replicas)
            }),
        }
    });
    let storage = Arc::new(
        strata_storage::Storage::open_shared(store, Arc::new(strata_head::Head::new()), sharing)
            .await?,
    );
    storage.set_compaction(
        config.storage.compaction_workers,
        scheduler::low_priority(config.storage.compaction_nice),
    );
    storage.set_day_file_zstd_level(config.storage.day_file_zstd_level);
    storage.set_day_file_page_rows(config.storage.day_file_page_rows);
    let state = AppState::new(config, storage);
    let app = router(Arc::clone(&state));
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let (flusher_stop_tx, flusher_stop_rx) = tokio::sync::watch::channel(false);
    // Raised when the listeners stop accepting.
    let (down_tx, down_rx) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(async move {
        let stop = async move {
            tokio::select! {
                () = shutdown => info!("shutdown requested; draining requests"),
                _ = stop_rx.changed() => {}
            }
            let _ = down_tx.send(true);
        };
        match tls {
            Some(tls) => tls::serve(listener, tls, app, stop).await,
            None => {
                axum::serve(listener, app)
                    .with_graceful_shutdown(stop)
                    .await
            }
        }
    });

    let pg_server = pg_listener.map(|listener| {
        let mut down = down_rx.clone();
        tokio::spawn(frontend::postgres::serve(
            listener,
            Arc::clone(&state),
            async move {
                let _ = down.wait_for(|d| *d).await;
            },
        ))
    });

    let flight_server = flight_listener.map(|listener| {
        let mut down = down_rx.clone();
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let stop = async move {
                let _ = down.wait_for(|d| *d).await;
            };
            if let Err(error) = flight::serve(listener, state, stop).await {
                error!(%error, "flight sql server failed");
            }
        })
    });

    // Only the roles that take writes have a WAL and a head.
    let replay = if role.takes_writes() {
        let replay_state = Arc::clone(&state);
        match tokio::task::spawn_blocking(move || replay_state.open_wal()).await {
            Ok(r) => r,
            Err(join) => {
                error!(error = %join, "WAL replay task failed");
                Err(strata_wal::WalError::Closed)
            }
        }
    } else {
        state.metrics.set_ready();
        info!(%role, "no WAL: this node takes no writes; ready");
        Ok(())
    };
    if let Err(e) = replay {
        let _ = stop_tx.send(true);
        let _ = server.await;
        return Err(e.into());
    }

    let flusher = match state.wal() {
        Some(wal) => {
            let metrics = Arc::clone(&state.metrics);
            Some(tokio::spawn(Arc::clone(&state.storage).run_flusher(
                Arc::clone(wal),
                state.config.storage.clone(),
                move |r| metrics.observe_flush(r),
                flusher_stop_rx,
            )))
        }
        None => None,
    };

    let compactor = role.compacts().then(|| {
        let metrics = Arc::clone(&state.metrics);
        tokio::spawn(Arc::clone(&state.storage).run_compactor(
            state.config.storage.clone(),
            move |r| metrics.observe_compaction(r),
            flusher_stop_tx.subscribe(),
        ))
    });

    // A querier (for its queries) and a compactor (for the rules and SLOs
    // of its tenants) mirror the ingesters' heads.
    let mirrors = (role.mirrors_heads() && !state.config.node.ingesters.is_empty()).then(|| {
        tokio::spawn(crate::replication::run_mirrors(
            Arc::clone(&state),
            flusher_stop_tx.subscribe(),
        ))
    });

    // An ingester shares its tenants' live series with its peers and
    // splits the rate limits across those it hears from.
    let peers = state.config.node.shares_limits().then(|| {
        tokio::spawn(crate::peers::run_peers(
            Arc::clone(&state),
            flusher_stop_tx.subscribe(),
        ))
    });

    // Other nodes commit to the tables: their flushes and merges become
    // visible to this node's queries within the refresh interval (a
    // compactor re-reads the tables it owns before each of its passes).
    let refresher = matches!(role, config::Role::Ingester | config::Role::Querier).then(|| {
        tokio::spawn(Arc::clone(&state.storage).run_refresh(
            state.config.node.refresh_interval,
            flusher_stop_tx.subscribe(),
        ))
    });

    // New flush and compaction files of queried tenants are indexed
    // before the next query needs them.
    tokio::spawn(state.query.clone().warm_file_indexes(
        std::time::Duration::from_secs(24 * 3600),
        std::time::Duration::from_secs(5),
        flusher_stop_tx.subscribe(),
    ));

    let retention = role.compacts().then(|| {
        let metrics = Arc::clone(&state.metrics);
        tokio::spawn(Arc::clone(&state.storage).run_retention(
            state.config.retention.clone(),
            move |r| metrics.observe_retention(r),
            flusher_stop_tx.subscribe(),
        ))
    });

    // Tokens and limit overrides change without a restart: their files are
    // re-read when they change.
    let auth_reload = {
        let state = Arc::clone(&state);
        let mut stop = flusher_stop_tx.subscribe();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(state.config.auth.reload_interval);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.changed() => return,
                }
                match state.auth.reload_if_changed() {
                    Ok(Some(n)) => info!(tokens = n, "auth tokens reloaded"),
                    Ok(None) => {}
                    Err(reason) => {
                        error!(%reason, "auth tokens file not reloaded; the previous tokens stay in force")
                    }
                }
                match state.limits.reload_if_changed() {
                    Ok(Some(n)) => info!(tenants = n, "limit overrides reloaded"),
                    Ok(None) => {}
                    Err(reason) => {
                        error!(%reason, "limit overrides file not reloaded; the previous limits stay in force")
                    }
                }
                let window = i64::try_from(state.config.limits.active_series_window.as_secs())
                    .unwrap_or(i64::MAX);
                let now_s = chrono::Utc::now().timestamp();
                state.limits.expire_series(now_s.saturating_sub(window));
                state.metadata.expire(now_s);
                state.ha.expire(std::time::Instant::now());
            }
        })
    };

    // SLO and rule evaluation query everything a tenant stored and write
    // their results: a node that sees every head does them — the single
    // server, or in the split roles the compactor owning the tenant, which
    // mirrors the ingesters' heads and writes through them.
    let evaluates = state.config.node.evaluates_any();
    if role == config::Role::Compactor && !evaluates {
        info!("no node.ingesters: this compactor evaluates no rules or SLOs");
    }
    let slo_alerts = evaluates.then(|| {
        tokio::spawn(crate::analytics_loop::run(
            Arc::clone(&state),
            flusher_stop_tx.subscribe(),
        ))
    });

    let ruler = evaluates.then(|| {
        tokio::spawn(crate::ruler::run(
            Arc::clone(&state),
            flusher_stop_tx.subscribe(),
        ))
    });

    let served = server.await;
    if let Some(pg) = pg_server {
        let _ = pg.await;
    }
    if let Some(flight) = flight_server {
        let _ = flight.await;
    }
    let _ = flusher_stop_tx.send(true);
    for task in [
        retention, slo_alerts, ruler, flusher, compactor, refresher, mirrors, peers,
    ]
    .into_iter()
    .flatten()
    {
        let _ = task.await;
    }
    let _ = auth_reload.await;
    // Every acknowledged write is already fsynced. The head is flushed, then
    // closing the WAL completes any append whose request was cut off
    // mid-flight and syncs once more.
    state.shutdown().await;
    drop(lock);
    info!("strata stopped");
    match served {
        Ok(r) => Ok(r?),
        Err(join) => Err(ServeError::Io(std::io::Error::other(join.to_string()))),
    }
}

/// The HTTP client of the server's own calls (to Alertmanager, other
/// nodes): an answer's status is returned, not raised; `timeout` bounds a
/// whole call, connecting at most 2 s of it.
pub(crate) fn http_agent(timeout: std::time::Duration) -> ureq::Agent {
    ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .timeout_connect(Some(timeout.min(std::time::Duration::from_secs(2))))
            .build(),
    )
}
