//! `strata`: the Strata server and command-line tool.
//!
//! Configuration comes from a TOML file (`--config`), then `STRATA_*`
//! environment variables, then flags; flags win over the environment, the
//! environment over the file, and anything unset keeps its built-in default.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

mod analytics_client;
mod health;
mod sql_client;
mod tools;

use clap::{Args, Parser, Subcommand, ValueEnum};
use strata_server::{ByteSize, LogFormat, ServerConfig};
use tracing_subscriber::EnvFilter;

/// Strata: a multi-tenant time-series database for metrics and logs.
#[derive(Debug, Parser)]
#[command(name = "strata", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server: Prometheus remote write in, SQL out.
    Serve(Box<ServeArgs>),
    /// Check every data file against the checksum its commit recorded;
    /// exits 1 if any is missing or altered.
    Verify(tools::VerifyArgs),
    /// Merge flush files into hour and day files now.
    Compact(tools::CompactArgs),
    /// Apply retention (legal holds respected) and vacuum now.
    Retention(tools::RetentionArgs),
    /// Write a tenant's samples in a time range to Parquet or CSV.
    Export(tools::ExportArgs),
    /// Make an API token: prints the token once and the entry (its
    /// SHA-256, tenant, roles) to add to the tokens file.
    Token(TokenArgs),
    /// SQL against a running server: interactive, or `-c "..."`.
    Sql(sql_client::SqlArgs),
    /// The tenant's SLOs from a running server: SLI, error budget left,
    /// burn rates, firing burn-rate alerts.
    Slo(analytics_client::SloArgs),
    /// Time-to-exhaustion forecasts from a running server, most urgent
    /// first: the tenant's capacity specs, or one ad-hoc gauge.
    Capacity(analytics_client::CapacityArgs),
    /// Noisy neighbours from a running server: each workload's share,
    /// deviation from its baseline, and who drives contention.
    Neighbours(analytics_client::NeighboursArgs),
    /// Whether a running server is ready (exit 0) or not (exit 1): a
    /// container health check that needs nothing else in the image.
    Health(health::HealthArgs),
}

#[derive(Debug, Args)]
struct TokenArgs {
    /// Tenant the token acts for.
    #[arg(long)]
    tenant: String,
    /// Comma-separated: read, write, admin (its tenant), operator
    /// (server-wide operations).
    #[arg(long, value_delimiter = ',', default_value = "read")]
    roles: Vec<String>,
    /// Name shown in logs and errors.
    #[arg(long, default_value = "")]
    name: String,
}

fn new_token(args: &TokenArgs) -> Result<String, String> {
    strata_types::TenantId::try_new(&args.tenant).map_err(|e| format!("--tenant: {e}"))?;
    for r in &args.roles {
        if !["read", "write", "admin", "operator"].contains(&r.as_str()) {
            return Err(format!(
                "--roles: unknown role {r:?} (read, write, admin, operator)"
            ));
        }
    }
    // 32 random bytes from the OS, as 64 hex digits.
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness from the OS: {e}"))?;
    let token = format!("strata_{}", hex::encode(bytes));
    let roles: Vec<String> = args.roles.iter().map(|r| format!("{r:?}")).collect();
    Ok(format!(
        "# token (shown once; give it to the client):\n# {token}\n[[token]]\nname = {:?}\nsha256 = \"{}\"\ntenant = {:?}\nroles = [{}]\n",
        args.name,
        strata_server::auth::token_digest(&token),
        args.tenant,
        roles.join(", ")
    ))
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// TOML configuration file. Keys it leaves out keep their defaults.
    #[arg(long, env = "STRATA_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

    /// Directory for the WAL and local data [default: ./data].
    #[arg(long, env = "STRATA_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// HTTP listen address [default: 127.0.0.1:9470].
    #[arg(long, env = "STRATA_LISTEN", value_name = "ADDR")]
    listen: Option<SocketAddr>,

    /// Refuse requests without an X-Scope-OrgID header (401) instead of
    /// using the tenant "default".
    #[arg(long, env = "STRATA_REQUIRE_TENANT", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    require_tenant: Option<bool>,

    /// Size at which a new WAL segment is started, e.g. 64MiB.
    #[arg(long, env = "STRATA_WAL_SEGMENT_SIZE", value_name = "SIZE")]
    wal_segment_size: Option<ByteSize>,

    /// Largest request body accepted, e.g. 32MiB.
    #[arg(long, env = "STRATA_MAX_REQUEST_SIZE", value_name = "SIZE")]
    max_request_size: Option<ByteSize>,

    /// Where tables live: file:///dir, s3://bucket/prefix, gs://bucket/prefix
    /// or az://container/prefix [default: <data-dir>/objects]. Credentials
    /// and endpoints come from the config file's [object_store.options] or
    /// the usual AWS_*, GOOGLE_*, AZURE_* variables.
    #[arg(long, env = "STRATA_OBJECT_STORE_URL", value_name = "URL")]
    object_store_url: Option<String>,

    /// Flush the head when its oldest unflushed data is this old, e.g. 10m.
    #[arg(long, env = "STRATA_FLUSH_INTERVAL", value_name = "DURATION", value_parser = humantime::parse_duration)]
    flush_interval: Option<std::time::Duration>,

    /// Flush the head when it holds this many samples.
    #[arg(long, env = "STRATA_FLUSH_MAX_SAMPLES", value_name = "N")]
    flush_max_samples: Option<u64>,

    /// Compaction merges run at once [default: the machine's cores].
    #[arg(long, env = "STRATA_COMPACTION_WORKERS", value_name = "N")]
    compaction_workers: Option<usize>,

    /// Nice value of compaction threads (0-19), so ingest and queries come
    /// first; 0 runs them at normal priority [default: 10].
    #[arg(long, env = "STRATA_COMPACTION_NICE", value_name = "NICE")]
    compaction_nice: Option<i32>,

    /// Refuse a tenant's writes (503, retried by senders) while one of its
    /// hour merges has waited longer than this; 0s never refuses [default: 1h].
    #[arg(long, env = "STRATA_MAX_COMPACTION_LAG", value_name = "DURATION", value_parser = humantime::parse_duration)]
    max_compaction_lag: Option<std::time::Duration>,

    /// zstd level (1-22) of day files' metric values and log lines: 17
    /// stores the fewest bytes; lower levels compact faster for more bytes
    /// at rest [default: 17].
    #[arg(long, env = "STRATA_DAY_FILE_ZSTD_LEVEL", value_name = "LEVEL")]
    day_file_zstd_level: Option<i32>,

    /// Rows per data page of day files (1024-1048576): smaller pages read
    /// a few series of a past day faster, for more bytes at rest
    /// [default: 1048576].
    #[arg(long, env = "STRATA_DAY_FILE_PAGE_ROWS", value_name = "ROWS")]
    day_file_page_rows: Option<usize>,

    /// Require API tokens, listed in this TOML file of [[token]] entries
    /// (re-read when it changes; `strata token` makes entries).
    #[arg(long, env = "STRATA_AUTH_TOKENS_FILE", value_name = "FILE")]
    auth_tokens_file: Option<PathBuf>,

    /// Postgres wire protocol listen address, or "off"
    /// [default: 127.0.0.1:9471].
    #[arg(long, env = "STRATA_PG_LISTEN", value_name = "ADDR|off")]
    pg_listen: Option<String>,

    /// Arrow Flight SQL listen address, or "off" [default: 127.0.0.1:9472].
    #[arg(long, env = "STRATA_FLIGHT_LISTEN", value_name = "ADDR|off")]
    flight_listen: Option<String>,

    /// What this process does when several share one object store: all,
    /// ingester, querier or compactor [default: all].
    #[arg(long, env = "STRATA_ROLE", value_name = "ROLE")]
    role: Option<strata_server::config::Role>,

    /// This node's name among its peers [default: the host name].
    #[arg(long, env = "STRATA_NODE_ID", value_name = "ID")]
    node_id: Option<String>,

    /// How many compactors divide the tenants [default: 1].
    #[arg(long, env = "STRATA_COMPACTOR_REPLICAS", value_name = "N")]
    compactor_replicas: Option<usize>,

    /// The cluster's ingesters, comma-separated (http://host:9470,...): a
    /// querier mirrors their heads so its queries see unflushed writes too;
    /// a compactor mirrors them and evaluates its tenants' rules and SLOs,
    /// writing through them; an ingester shares tenant limits with them.
    #[arg(
        long,
        env = "STRATA_INGESTERS",
        value_name = "URLS",
        value_delimiter = ','
    )]
    ingesters: Option<Vec<String>>,

    /// The cluster's compactors, comma-separated (http://host:9470,...): a
    /// querier answers /api/v1/rules and /api/v1/alerts from them.
    #[arg(
        long,
        env = "STRATA_COMPACTORS",
        value_name = "URLS",
        value_delimiter = ','
    )]
    compactors: Option<Vec<String>>,

    /// The operator token a querier, compactor or ingester presents to the
    /// ingesters.
    #[arg(long, env = "STRATA_INGESTER_TOKEN", value_name = "TOKEN")]
    ingester_token: Option<String>,

    /// Serve HTTPS with this PEM certificate chain (with --tls-key-file).
    #[arg(long, env = "STRATA_TLS_CERT_FILE", value_name = "FILE")]
    tls_cert_file: Option<PathBuf>,

    /// The PEM private key for --tls-cert-file.
    #[arg(long, env = "STRATA_TLS_KEY_FILE", value_name = "FILE")]
    tls_key_file: Option<PathBuf>,

    /// Per-tenant limit overrides: a TOML file of [tenants.<id>] tables
    /// (re-read when it changes).
    #[arg(long, env = "STRATA_LIMITS_OVERRIDES_FILE", value_name = "FILE")]
    limits_overrides_file: Option<PathBuf>,

    /// Service-level objectives: a TOML file of [[slo]] specs (re-read when
    /// asked for).
    #[arg(long, env = "STRATA_SLO_FILE", value_name = "FILE")]
    slo_file: Option<PathBuf>,

    /// Alertmanager URL to send firing SLO burn-rate alerts to.
    #[arg(long, env = "STRATA_ALERTMANAGER_URL", value_name = "URL")]
    alertmanager_url: Option<String>,

    /// Prometheus rule files, one directory per tenant
    /// (<DIR>/<tenant>/<namespace>.yaml), re-read when they change.
    #[arg(long, env = "STRATA_RULES_DIR", value_name = "DIR")]
    rules_dir: Option<PathBuf>,

    /// Alertmanager URLs the rules' alerts are sent to (comma-separated).
    #[arg(
        long,
        env = "STRATA_RULES_ALERTMANAGER_URLS",
        value_name = "URL,...",
        value_delimiter = ','
    )]
    rules_alertmanager_urls: Option<Vec<String>>,

    /// How often a rule group without its own interval is evaluated
    /// [default: 1m].
    #[arg(long, env = "STRATA_RULES_EVALUATION_INTERVAL", value_name = "DURATION", value_parser = humantime::parse_duration)]
    rules_evaluation_interval: Option<std::time::Duration>,

    /// The tenant Strata records its own per-tenant usage into (empty: not
    /// recorded) [default: _strata].
    #[arg(long, env = "STRATA_USAGE_TENANT", value_name = "TENANT")]
    usage_tenant: Option<String>,

    /// How often SLOs, capacity and neighbour specs are evaluated and
    /// recorded [default: 1m].
    #[arg(long, env = "STRATA_SLO_EVALUATION_INTERVAL", value_name = "DURATION", value_parser = humantime::parse_duration)]
    slo_evaluation_interval: Option<std::time::Duration>,

    /// Nice value (0-19) of heavy queries (a tenant's second and further
    /// concurrent queries), so lighter tenants get the CPU first; 0 turns
    /// it off [default: 10].
    #[arg(long, env = "STRATA_HEAVY_QUERY_NICE", value_name = "NICE")]
    heavy_query_nice: Option<i32>,

    /// PromQL: how far back a selector looks for a sample [default: 5m].
    #[arg(long, env = "STRATA_LOOKBACK_DELTA", value_name = "DURATION", value_parser = humantime::parse_duration)]
    lookback_delta: Option<std::time::Duration>,

    /// PromQL: longest a query may run [default: 2m].
    #[arg(long, env = "STRATA_QUERY_TIMEOUT", value_name = "DURATION", value_parser = humantime::parse_duration)]
    query_timeout: Option<std::time::Duration>,

    /// PromQL: most samples one query may load [default: 50000000].
    #[arg(long, env = "STRATA_QUERY_MAX_SAMPLES", value_name = "N")]
    query_max_samples: Option<usize>,

    /// SQL: most memory one query may reserve [default: 2GiB].
    #[arg(long, env = "STRATA_SQL_MAX_QUERY_MEMORY", value_name = "SIZE")]
    sql_max_query_memory: Option<ByteSize>,

    /// SQL: most memory all running queries may reserve [default: 6GiB].
    #[arg(long, env = "STRATA_SQL_MAX_MEMORY", value_name = "SIZE")]
    sql_max_memory: Option<ByteSize>,

    /// Log format.
    #[arg(long, env = "STRATA_LOG_FORMAT", value_name = "FORMAT")]
    log_format: Option<LogFormatArg>,

    /// Log filter, e.g. "info" or "strata_wal=debug,info".
    #[arg(long, env = "STRATA_LOG", value_name = "FILTER")]
    log_level: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormatArg {
    Text,
    Json,
}

impl ServeArgs {
    /// File (or defaults), then env and flags on top.
    fn resolve(self) -> Result<ServerConfig, String> {
        let mut c = match &self.config {
            Some(path) => ServerConfig::from_file(path).map_err(|e| e.to_string())?,
            None => ServerConfig::default(),
        };
        if let Some(v) = self.data_dir {
            c.data_dir = v;
        }
        if let Some(v) = self.listen {
            c.listen = v;
        }
        if let Some(v) = self.require_tenant {
            c.tenancy.require_tenant = v;
        }
        if let Some(v) = self.wal_segment_size {
            c.wal.segment_size = v;
        }
        if let Some(v) = self.max_request_size {
            c.limits.max_request_size = v;
        }
        if let Some(v) = self.object_store_url {
            c.object_store.url = Some(v);
        }
        if let Some(v) = self.flush_interval {
            c.storage.flush_interval = v;
        }
        if let Some(v) = self.flush_max_samples {
            c.storage.flush_max_samples = v;
        }
        if let Some(v) = self.compaction_workers {
            c.storage.compaction_workers = v;
        }
        if let Some(v) = self.compaction_nice {
            c.storage.compaction_nice = v;
        }
        if let Some(v) = self.max_compaction_lag {
            c.storage.max_compaction_lag = v;
        }
        if let Some(v) = self.day_file_zstd_level {
            c.storage.day_file_zstd_level = v;
        }
        if let Some(v) = self.day_file_page_rows {
            c.storage.day_file_page_rows = v;
        }
        if let Some(v) = self.auth_tokens_file {
            c.auth.tokens_file = Some(v);
            c.auth.enabled = true;
        }
        if let Some(v) = self.pg_listen {
            if v.eq_ignore_ascii_case("off") {
                c.postgres.enabled = false;
            } else {
                c.postgres.listen = v
                    .parse()
                    .map_err(|e| format!("--pg-listen {v:?}: not an address or \"off\": {e}"))?;
                c.postgres.enabled = true;
            }
        }
        if let Some(v) = self.flight_listen {
            if v.eq_ignore_ascii_case("off") {
                c.flight.enabled = false;
            } else {
                c.flight.listen = v.parse().map_err(|e| {
                    format!("--flight-listen {v:?}: not an address or \"off\": {e}")
                })?;
                c.flight.enabled = true;
            }
        }
        if let Some(v) = self.role {
            c.node.role = v;
        }
        if let Some(v) = self.node_id {
            c.node.id = Some(v);
        }
        if let Some(v) = self.compactor_replicas {
            c.node.compactor_replicas = v;
        }
        if let Some(v) = self.ingesters {
            c.node.ingesters = v.into_iter().filter(|u| !u.trim().is_empty()).collect();
        }
        if let Some(v) = self.compactors {
            c.node.compactors = v.into_iter().filter(|u| !u.trim().is_empty()).collect();
        }
        if let Some(v) = self.ingester_token {
            c.node.ingester_token = Some(v);
        }
        if let Some(v) = self.tls_cert_file {
            c.tls.cert_file = Some(v);
        }
        if let Some(v) = self.tls_key_file {
            c.tls.key_file = Some(v);
        }
        if let Some(v) = self.limits_overrides_file {
            c.limits.overrides_file = Some(v);
        }
        if let Some(v) = self.slo_file {
            c.slo.file = Some(v);
        }
        if let Some(v) = self.alertmanager_url {
            c.slo.alertmanager_url = Some(v);
        }
        if let Some(v) = self.rules_dir {
            c.rules.directory = Some(v);
        }
        if let Some(v) = self.rules_alertmanager_urls {
            c.rules.alertmanager_urls = v;
        }
        if let Some(v) = self.rules_evaluation_interval {
            c.rules.evaluation_interval = v;
        }
        if let Some(v) = self.usage_tenant {
            c.slo.usage_tenant = v;
        }
        if let Some(v) = self.slo_evaluation_interval {
            c.slo.evaluation_interval = v;
        }
        if let Some(v) = self.heavy_query_nice {
            c.promql.heavy_query_nice = v;
        }
        if let Some(v) = self.lookback_delta {
            c.promql.lookback_delta = v;
        }
        if let Some(v) = self.query_timeout {
            c.promql.timeout = v;
        }
        if let Some(v) = self.query_max_samples {
            c.promql.max_samples = v;
        }
        if let Some(v) = self.sql_max_query_memory {
            c.sql.max_query_memory = v;
        }
        if let Some(v) = self.sql_max_memory {
            c.sql.max_memory = v;
        }
        if let Some(v) = self.log_format {
            c.log.format = match v {
                LogFormatArg::Text => LogFormat::Text,
                LogFormatArg::Json => LogFormat::Json,
            };
        }
        if let Some(v) = self.log_level {
            c.log.level = v;
        }
        c.validate().map_err(|e| e.to_string())?;
        Ok(c)
    }
}

fn init_logging(config: &ServerConfig) -> Result<(), String> {
    let mut filter = EnvFilter::try_new(&config.log.level)
        .map_err(|e| format!("invalid log filter {:?}: {e}", config.log.level))?;
    // The Delta kernel logs every snapshot it builds at info; keep it to
    // warnings unless the filter names it.
    for noisy in ["buoyant_kernel", "deltalake_core"] {
        if !config.log.level.contains(noisy)
            && let Ok(d) = format!("{noisy}=warn").parse()
        {
            filter = filter.add_directive(d);
        }
    }
    // Colours only on a terminal: log files and collectors get plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let result = match config.log.format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
    result.map_err(|e| e.to_string())
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

/// mimalloc rather than glibc's malloc: a query's large, short-lived
/// buffers (points, step tables) come from pages it keeps instead of fresh
/// mmaps faulted in on every query (18% of a 7-day query's cycles were the
/// kernel zeroing and mapping pages under glibc). It holds freed pages
/// between queries: docs/BENCHMARKS.md, stop 35, has both figures.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Verify(args) => tools::verify(args),
        Command::Compact(args) => tools::compact(args),
        Command::Retention(args) => tools::retention(args),
        Command::Export(args) => tools::export(args),
        Command::Sql(args) => sql_client::run(args),
        Command::Slo(args) => analytics_client::slo(args),
        Command::Capacity(args) => analytics_client::capacity(args),
        Command::Neighbours(args) => analytics_client::neighbours(args),
        Command::Health(args) => health::run(args),
        Command::Token(args) => match new_token(&args) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("strata token: {e}");
                ExitCode::from(2)
            }
        },
        Command::Serve(args) => {
            let config = match (*args).resolve() {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("strata: {e}");
                    return ExitCode::from(2);
                }
            };
            if let Err(e) = init_logging(&config) {
                eprintln!("strata: {e}");
                return ExitCode::from(2);
            }
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_name("strata")
                .thread_stack_size(strata_server::THREAD_STACK_BYTES)
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("strata: cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(strata_server::serve(config, shutdown_signal())) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %e, "strata failed");
                    eprintln!("strata: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
