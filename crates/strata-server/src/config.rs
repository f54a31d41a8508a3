//! Server configuration: a TOML file, then `STRATA_*` environment variables,
//! then flags (the binary applies the last two on top of [`ServerConfig`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
pub use strata_storage::{ObjectStoreConfig, RetentionConfig, StorageConfig};

mod node;
pub use node::{NodeConfig, Role, compactor_owns};

/// Everything `strata serve` can be told. Every field has a default that
/// works on a laptop.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Where the WAL lives, and the local object store unless
    /// `object_store.url` names another.
    pub data_dir: PathBuf,
    /// HTTP listen address.
    pub listen: SocketAddr,
    pub tenancy: TenancyConfig,
    pub wal: WalSection,
    /// Where tables live: `<data_dir>/objects` by default; S3, GCS, Azure.
    pub object_store: ObjectStoreConfig,
    /// When the head is flushed to the tables, and compaction.
    pub storage: StorageConfig,
    /// How long data is kept, per tenant; legal holds; vacuum.
    pub retention: RetentionConfig,
    pub limits: LimitsConfig,
    /// PromQL: lookback, limits, timeout.
    pub promql: PromqlConfig,
    /// SQL: memory bounds (its timeout and slots are `promql`'s).
    pub sql: SqlConfig,
    /// Bearer-token authentication; off by default.
    pub auth: AuthConfig,
    /// HTTPS: serve TLS when both files are set.
    pub tls: TlsConfig,
    /// The Postgres wire protocol listener (psql, psycopg, Grafana).
    pub postgres: PostgresConfig,
    /// The Arrow Flight SQL listener (ADBC, Flight SQL drivers).
    pub flight: FlightConfig,
    /// Service-level objectives (`[slo] file = "slo.toml"`).
    pub slo: SloConfig,
    /// Prometheus recording and alerting rules (`[rules] directory = "rules"`).
    pub rules: RulesConfig,
    pub log: LogConfig,
    /// This process's role when several share one object store.
    pub node: NodeConfig,
}

/// The ruler (see [`crate::ruler`]).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RulesConfig {
    /// Prometheus rule files, one directory per tenant:
    /// `<directory>/<tenant>/<namespace>.yaml`; none: no rules.
    pub directory: Option<PathBuf>,
    /// How often a group is evaluated when it sets no `interval`.
    #[serde(deserialize_with = "crate::durations::duration")]
    pub evaluation_interval: std::time::Duration,
    /// How often the directory is checked for changed files.
    #[serde(deserialize_with = "crate::durations::duration")]
    pub poll_interval: std::time::Duration,
    /// How often the groups stored through the ruler API are listed again
    /// (a change made through this server's API applies at once).
    #[serde(deserialize_with = "crate::durations::duration")]
    pub store_poll_interval: std::time::Duration,
    /// Alertmanagers firing alerts are posted to (`http://host:9093`),
    /// unless a tenant's `ruler_alertmanager_url` names its own.
    pub alertmanager_urls: Vec<String>,
    /// How often a still-firing alert is sent again.
    #[serde(deserialize_with = "crate::durations::duration")]
    pub resend_delay: std::time::Duration,
    /// How long the server may be down for alerts' pending time to be
    /// restored after it restarts.
    #[serde(deserialize_with = "crate::durations::duration")]
    pub outage_tolerance: std::time::Duration,
    /// The least time an alert restored as pending waits before firing.
    #[serde(deserialize_with = "crate::durations::duration")]
    pub for_grace_period: std::time::Duration,
    /// Labels added to alerts sent (where the alert has no such label) and
    /// readable in templates as `$externalLabels`.
    pub external_labels: std::collections::BTreeMap<String, String>,
    /// The URL alerts link back to (`generatorURL`, `$externalURL`);
    /// empty: `http://<listen>`.
    pub external_url: String,
}

impl ServerConfig {
    /// The URL the ruler's alerts link back to.
    pub fn rules_external_url(&self) -> String {
        if self.rules.external_url.is_empty() {
            format!("http://{}", self.listen)
        } else {
            self.rules.external_url.trim_end_matches('/').to_string()
        }
    }
}

impl Default for RulesConfig {
    fn default() -> Self {
        Self {
            directory: None,
            evaluation_interval: std::time::Duration::from_secs(60),
            poll_interval: std::time::Duration::from_secs(10),
            store_poll_interval: std::time::Duration::from_secs(60),
            alertmanager_urls: Vec::new(),
            resend_delay: std::time::Duration::from_secs(60),
            outage_tolerance: std::time::Duration::from_secs(3600),
            for_grace_period: std::time::Duration::from_secs(600),
            external_labels: std::collections::BTreeMap::new(),
            external_url: String::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SloConfig {
    /// A TOML file of `[[slo]]` specs (docs/SLO.md), read when asked for,
    /// so edits apply without a restart.
    pub file: Option<PathBuf>,
    /// Alertmanager to send firing burn-rate alerts to
    /// (`http://host:9093`); none: alerts are only served by the API.
    pub alertmanager_url: Option<String>,
    /// How often SLOs, capacity and neighbour specs are evaluated and
    /// recorded, and Strata's own usage recorded.
    #[serde(deserialize_with = "crate::durations::duration")]
    pub evaluation_interval: std::time::Duration,
    /// The tenant Strata records its own per-tenant usage into
    /// (`strata_tenant_*` series, for `/api/v1/neighbours/usage`); empty:
    /// not recorded.
    pub usage_tenant: String,
}

impl Default for SloConfig {
    fn default() -> Self {
        Self {
            file: None,
            alertmanager_url: None,
            evaluation_interval: std::time::Duration::from_secs(60),
            usage_tenant: "_strata".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PostgresConfig {
    /// Serve SQL over the Postgres wire protocol.
    pub enabled: bool,
    /// Its listen address; the database name selects the tenant.
    pub listen: SocketAddr,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlightConfig {
    /// Serve Arrow Flight SQL (gRPC).
    pub enabled: bool,
    pub listen: SocketAddr,
}

impl Default for FlightConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 9472)),
        }
    }
}

impl Default for PostgresConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 9471)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain.
    pub cert_file: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Require a token on every API (health, readiness and /metrics stay open).
    pub enabled: bool,
    /// A TOML file of `[[token]]` entries, re-read when it changes.
    pub tokens_file: Option<PathBuf>,
    /// Tokens in the config itself (`[[auth.tokens]]`).
    pub tokens: Vec<crate::auth::TokenEntry>,
    /// How often the tokens file is checked for changes.
    #[serde(deserialize_with = "crate::durations::duration")]
    pub reload_interval: std::time::Duration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            tokens_file: None,
            tokens: Vec::new(),
            reload_interval: std::time::Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PromqlConfig {
    /// How far back a selector looks for a sample ("5m", as Prometheus).
    #[serde(deserialize_with = "crate::durations::duration")]
    pub lookback_delta: std::time::Duration,
    /// Longest a query may run; a request's `timeout` may only shorten it.
    #[serde(deserialize_with = "crate::durations::duration")]
    pub timeout: std::time::Duration,
    /// Most samples one query may load into memory.
    pub max_samples: usize,
    /// Most points per series a range query may return (Prometheus: 11000).
    pub max_points: usize,
    /// Queries (PromQL and SQL) running at once, shared fairly between
    /// tenants; the rest wait in per-tenant queues. Default: one per CPU.
    pub query_slots: Option<usize>,
    /// The nice value (0–19) heavy queries — those of a tenant with another
    /// query running or waiting — compute at, so lighter tenants get the
    /// CPU first; 0: every query at normal priority.
    pub heavy_query_nice: i32,
}

impl Default for PromqlConfig {
    fn default() -> Self {
        Self {
            lookback_delta: std::time::Duration::from_secs(300),
            timeout: std::time::Duration::from_secs(120),
            max_samples: 50_000_000,
            max_points: 11_000,
            query_slots: None,
            heavy_query_nice: 10,
        }
    }
}

/// SQL's memory bounds (HTTP, Postgres wire, Flight SQL and the analytics
/// functions alike). Sorts, joins and aggregations reserve memory first; a
/// query past its bound fails with "resources exhausted" (SQLSTATE 54000,
/// HTTP 422) instead of growing until the process is killed.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SqlConfig {
    /// Most memory one query may reserve.
    pub max_query_memory: ByteSize,
    /// Most memory all running queries together may reserve.
    pub max_memory: ByteSize,
}

impl Default for SqlConfig {
    fn default() -> Self {
        Self {
            max_query_memory: ByteSize(2 << 30),
            max_memory: ByteSize(6 << 30),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[derive(Default)]
pub struct TenancyConfig {
    /// Refuse requests without `X-Scope-OrgID` (401) instead of using
    /// `default_tenant`.
    pub require_tenant: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WalSection {
    /// Size at which a new segment is started, e.g. "64MiB".
    pub segment_size: ByteSize,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest request body accepted, compressed, e.g. "32MiB".
    pub max_request_size: ByteSize,
    /// Largest write body after decompression (remote write, logs).
    pub max_decoded_size: ByteSize,
    /// Longest log line accepted (Loki's `max_line_size`).
    pub max_log_line_size: ByteSize,
    /// Every tenant's limits unless overridden (`[limits.tenant_defaults]`).
    pub tenant_defaults: crate::limits::TenantLimits,
    /// `[tenants.<id>]` tables of limits, re-read when the file changes.
    pub overrides_file: Option<PathBuf>,
    /// Decoded write bytes held at once, over all tenants
    /// (`crate::decoded`).
    pub max_decoded_in_flight: ByteSize,
    /// Decoded write bytes one tenant's writes hold at once.
    pub max_decoded_in_flight_per_tenant: ByteSize,
    /// How long a write waits for room under those bounds before a 429.
    #[serde(deserialize_with = "crate::durations::duration")]
    pub decoded_wait: std::time::Duration,
    /// How long a series counts against `max_series` after its last
    /// sample, flushed or not, e.g. "1h".
    #[serde(deserialize_with = "crate::durations::duration")]
    pub active_series_window: std::time::Duration,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: LogFormat,
    /// A tracing filter, e.g. `info` or `strata=debug,info`.
    pub level: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./data"),
            listen: SocketAddr::from(([127, 0, 0, 1], 9470)),
            tenancy: TenancyConfig::default(),
            wal: WalSection::default(),
            object_store: ObjectStoreConfig::default(),
            storage: StorageConfig::default(),
            retention: RetentionConfig::default(),
            limits: LimitsConfig::default(),
            promql: PromqlConfig::default(),
            sql: SqlConfig::default(),
            auth: AuthConfig::default(),
            tls: TlsConfig::default(),
            postgres: PostgresConfig::default(),
            flight: FlightConfig::default(),
            slo: SloConfig::default(),
            rules: RulesConfig::default(),
            log: LogConfig::default(),
            node: NodeConfig::default(),
        }
    }
}

impl Default for WalSection {
    fn default() -> Self {
        Self {
            segment_size: ByteSize(64 << 20),
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_request_size: ByteSize(32 << 20),
            max_decoded_size: ByteSize(128 << 20),
            max_log_line_size: ByteSize(256 << 10),
            tenant_defaults: crate::limits::TenantLimits::default(),
            overrides_file: None,
            active_series_window: std::time::Duration::from_secs(3600),
            max_decoded_in_flight: ByteSize(256 << 20),
            max_decoded_in_flight_per_tenant: ByteSize(128 << 20),
            decoded_wait: std::time::Duration::from_secs(5),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: Box<toml::de::Error>,
    },
    #[error("invalid setting {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
}

impl ServerConfig {
    /// Reads a TOML file; absent keys keep their defaults.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source: Box::new(source),
        })
    }

    pub fn from_toml(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }

    /// Checks values that parse but make no sense.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field, reason: &str| {
            Err(ConfigError::Invalid {
                field,
                reason: reason.to_owned(),
            })
        };
        if self.data_dir.as_os_str().is_empty() {
            return invalid("data_dir", "must not be empty");
        }
        if self.wal.segment_size.0 < 1 << 20 {
            return invalid("wal.segment_size", "must be at least 1MiB");
        }
        if self.limits.max_request_size.0 < 1 << 10 {
            return invalid("limits.max_request_size", "must be at least 1KiB");
        }
        if self.limits.max_decoded_size.0 < self.limits.max_request_size.0 {
            return invalid(
                "limits.max_decoded_size",
                "must be at least limits.max_request_size",
            );
        }
        if self.sql.max_query_memory.0 < 1 << 20 {
            return invalid("sql.max_query_memory", "must be at least 1MiB");
        }
        if self.sql.max_memory.0 < self.sql.max_query_memory.0 {
            return invalid("sql.max_memory", "must be at least sql.max_query_memory");
        }
        if let Some(path) = &self.slo.file {
            strata_analytics::spec::SpecFile::load(path).map_err(|e| ConfigError::Invalid {
                field: "slo.file",
                reason: e.to_string(),
            })?;
        }
        if let Some(dir) = &self.rules.directory
            && !dir.is_dir()
        {
            return Err(ConfigError::Invalid {
                field: "rules.directory",
                reason: format!("{} is not a directory", dir.display()),
            });
        }
        if self.rules.evaluation_interval.is_zero() {
            return invalid("rules.evaluation_interval", "must be greater than 0");
        }
        for url in &self.rules.alertmanager_urls {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ConfigError::Invalid {
                    field: "rules.alertmanager_urls",
                    reason: format!("{url:?} is not an http(s) URL"),
                });
            }
        }
        for k in self.rules.external_labels.keys() {
            if !strata_types::is_valid_label_name(k) {
                return Err(ConfigError::Invalid {
                    field: "rules.external_labels",
                    reason: format!("{k:?} is not a label name"),
                });
            }
        }
        if !self.slo.usage_tenant.is_empty()
            && strata_types::TenantId::try_new(&self.slo.usage_tenant).is_err()
        {
            return invalid("slo.usage_tenant", "is not a valid tenant id");
        }
        crate::limits::Limits::new(
            self.limits.tenant_defaults.clone(),
            self.limits.overrides_file.clone(),
        )
        .map_err(|reason| ConfigError::Invalid {
            field: "limits",
            reason,
        })?;
        if self.auth.enabled {
            if self.auth.tokens.is_empty() && self.auth.tokens_file.is_none() {
                return invalid("auth", "enabled without tokens or a tokens_file");
            }
            crate::auth::Authenticator::new(
                true,
                self.auth.tokens.clone(),
                self.auth.tokens_file.clone(),
            )
            .map_err(|reason| ConfigError::Invalid {
                field: "auth",
                reason,
            })?;
        }
        if self.tls.cert_file.is_some() != self.tls.key_file.is_some() {
            return invalid("tls", "cert_file and key_file go together");
        }
        if self.auth.reload_interval < std::time::Duration::from_millis(100) {
            return invalid("auth.reload_interval", "must be at least 100ms");
        }
        if self.promql.lookback_delta < std::time::Duration::from_millis(1) {
            return invalid("promql.lookback_delta", "must be at least 1ms");
        }
        if self.promql.timeout < std::time::Duration::from_millis(1) {
            return invalid("promql.timeout", "must be at least 1ms");
        }
        if !(0..=19).contains(&self.promql.heavy_query_nice) {
            return invalid("promql.heavy_query_nice", "must be between 0 and 19");
        }
        if self.promql.query_slots == Some(0) {
            return invalid("promql.query_slots", "must be at least 1");
        }
        if self.promql.max_samples == 0 || self.promql.max_points == 0 {
            return invalid("promql.max_samples", "limits must be positive");
        }
        if self.storage.flush_interval < std::time::Duration::from_secs(1) {
            return invalid("storage.flush_interval", "must be at least 1s");
        }
        if self.storage.compaction_workers == 0 {
            return invalid("storage.compaction_workers", "must be at least 1");
        }
        if !(0..=19).contains(&self.storage.compaction_nice) {
            return invalid("storage.compaction_nice", "must be between 0 and 19");
        }
        if !(1..=22).contains(&self.storage.day_file_zstd_level) {
            return invalid("storage.day_file_zstd_level", "must be between 1 and 22");
        }
        if !(1024..=1 << 20).contains(&self.storage.day_file_page_rows) {
            return invalid(
                "storage.day_file_page_rows",
                "must be between 1024 and 1048576",
            );
        }
        if self.storage.flush_max_samples == 0 {
            return invalid("storage.flush_max_samples", "must be at least 1");
        }
        for tenant in self.retention.tenants.keys() {
            if let Err(e) = strata_types::TenantId::try_new(tenant) {
                return Err(ConfigError::Invalid {
                    field: "retention.tenants",
                    reason: e.to_string(),
                });
            }
        }
        if self.log.level.trim().is_empty() {
            return invalid("log.level", "must not be empty");
        }
        self.node.validate()?;
        Ok(())
    }
}

/// A byte count written as `1024`, `"64KiB"`, `"32MiB"`, `"1GiB"` (or KB,
/// MB, GB as powers of 1000).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl std::str::FromStr for ByteSize {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let n: u64 = num
            .parse()
            .map_err(|_| format!("{s:?} is not a size like 64MiB"))?;
        let mult: u64 = match unit.trim() {
            "" | "B" => 1,
            "KiB" => 1 << 10,
            "MiB" => 1 << 20,
            "GiB" => 1 << 30,
            "TiB" => 1 << 40,
            "KB" | "kB" => 1_000,
            "MB" => 1_000_000,
            "GB" => 1_000_000_000,
            "TB" => 1_000_000_000_000,
            other => return Err(format!("unknown size unit {other:?} in {s:?}")),
        };
        n.checked_mul(mult)
            .map(ByteSize)
            .ok_or_else(|| format!("{s:?} is too large"))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(u64),
            Str(String),
        }
        match Raw::deserialize(d)? {
            Raw::Int(n) => Ok(ByteSize(n)),
            Raw::Str(s) => s.parse().map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_compactor_is_its_pod_ordinal_and_every_tenant_has_one_owner() {
        let node = |id: &str| NodeConfig {
            id: Some(id.to_owned()),
            ..NodeConfig::default()
        };
        assert_eq!(node("strata-compactor-2").ordinal(), 2);
        assert_eq!(node("strata-compactor-0b10").ordinal(), 10);
        assert_eq!(node("strata").ordinal(), 0);
        for tenant in ["acme", "globex", "logistics-prod", "_strata", "t-17"] {
            let owners = (0..3).filter(|o| compactor_owns(tenant, *o, 3)).count();
            assert_eq!(owners, 1, "{tenant}");
            assert!(compactor_owns(tenant, 0, 1));
        }
    }

    #[test]
    fn rules_and_slos_run_on_the_single_server_or_the_owning_compactor() {
        let ingesters = vec!["http://strata-ingester-0:9470".to_owned()];
        let node = |role, id: &str, ingesters: &[String]| NodeConfig {
            role,
            id: Some(id.to_owned()),
            compactor_replicas: 3,
            ingesters: ingesters.to_vec(),
            ..NodeConfig::default()
        };
        for tenant in ["acme", "globex", "logistics-prod", "_strata", "t-17"] {
            assert!(node(Role::All, "strata", &[]).evaluates(tenant));
            let compactors: Vec<NodeConfig> = (0..3)
                .map(|o| {
                    node(
                        Role::Compactor,
                        &format!("strata-compactor-{o}"),
                        &ingesters,
                    )
                })
                .collect();
            let evaluators = compactors.iter().filter(|c| c.evaluates(tenant)).count();
            assert_eq!(evaluators, 1, "{tenant}: one compactor evaluates it");
            // Without the ingesters a compactor sees no head and cannot write.
            assert!(!node(Role::Compactor, "strata-compactor-0", &[]).evaluates_any());
            for role in [Role::Ingester, Role::Querier] {
                assert!(!node(role, "n-0", &ingesters).evaluates(tenant));
            }
        }
        let mut c = ServerConfig {
            node: node(Role::Compactor, "strata-compactor-1", &ingesters),
            ..ServerConfig::default()
        };
        c.validate().unwrap();
        c.node.role = Role::All;
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("node.ingesters"), "{e}");
        c.node = node(Role::Querier, "q", &ingesters);
        c.node.compactors = vec!["http://strata-compactor-0:9470".into()];
        c.validate().unwrap();
        c.node.role = Role::Ingester;
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("node.compactors"), "{e}");
        c.node.role = Role::Querier;
        c.node.compactors = vec!["strata-compactor-0:9470".into()];
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("http://"), "{e}");
    }

    #[test]
    fn empty_file_is_all_defaults() {
        let c = ServerConfig::from_toml("").unwrap();
        assert_eq!(c, ServerConfig::default());
        c.validate().unwrap();
    }

    #[test]
    fn parses_every_section_and_human_sizes() {
        let c = ServerConfig::from_toml(
            r#"
            data_dir = "/var/lib/strata"
            listen = "0.0.0.0:9999"
            [tenancy]
            require_tenant = true
            [wal]
            segment_size = "8MiB"
            [limits]
            max_request_size = 1048576
            max_decoded_size = "2MB"
            [log]
            format = "json"
            level = "debug"
            [storage]
            max_compaction_lag = "30m"
            day_file_zstd_level = 9
            "#,
        )
        .unwrap();
        assert_eq!(
            c.storage.max_compaction_lag,
            std::time::Duration::from_secs(1800)
        );
        assert_eq!(c.storage.day_file_zstd_level, 9);
        assert_eq!(c.data_dir, PathBuf::from("/var/lib/strata"));
        assert!(c.tenancy.require_tenant);
        assert_eq!(c.wal.segment_size, ByteSize(8 << 20));
        assert_eq!(c.limits.max_request_size, ByteSize(1 << 20));
        assert_eq!(c.limits.max_decoded_size, ByteSize(2_000_000));
        assert_eq!(c.log.format, LogFormat::Json);
        c.validate().unwrap();
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        assert!(ServerConfig::from_toml("data_dri = 'x'").is_err());
        assert!(ServerConfig::from_toml("[wal]\nsegment_size = '12 parsecs'").is_err());
        let mut c = ServerConfig::default();
        c.wal.segment_size = ByteSize(10);
        assert!(matches!(
            c.validate(),
            Err(ConfigError::Invalid {
                field: "wal.segment_size",
                ..
            })
        ));
        let mut c = ServerConfig::default();
        c.storage.day_file_zstd_level = 23;
        assert!(matches!(
            c.validate(),
            Err(ConfigError::Invalid {
                field: "storage.day_file_zstd_level",
                ..
            })
        ));
        let mut c = ServerConfig::default();
        c.storage.day_file_page_rows = 512;
        assert!(matches!(
            c.validate(),
            Err(ConfigError::Invalid {
                field: "storage.day_file_page_rows",
                ..
            })
        ));
        c.storage.day_file_page_rows = 1 << 18;
        assert!(c.validate().is_ok());
    }
}
