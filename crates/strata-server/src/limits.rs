//! Per-tenant limits: defaults in the config, overrides per tenant in a
//! file that is re-read when it changes.
//!
//! Ingest: a request is checked whole before anything is written, so a
//! refused request stores nothing. Label shape limits (labels per series,
//! name and value length) are the sender's data problem: 400, which remote
//! write senders drop rather than retry. Rate and series limits are
//! throttling: 429, which they retry with backoff. Every refusal names the
//! limit and its value and is counted in `strata_rejected_total{tenant,
//! reason}`.
//!
//! Series limits count the tenant's live series (see [`crate::live_series`]:
//! written within `limits.active_series_window`, in the head or flushed,
//! across restarts), and writes that add series are checked and applied
//! one at a time per tenant, so concurrent requests never pass a limit.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Instant, SystemTime};

use parking_lot::{Mutex, RwLock};
use serde::Deserialize;
use strata_types::{ErrorKind, METRIC_NAME_LABEL, TenantId, WriteBatch};

use crate::live_series::{Announcement, LiveKind, LiveSeries, TenantSeries};

/// One tenant's limits; 0 means unlimited.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TenantLimits {
    /// Samples per second accepted (token bucket refill).
    pub ingest_rate: f64,
    /// Samples a burst may hold above the rate.
    pub ingest_burst: u64,
    /// Live series (written within `limits.active_series_window`).
    pub max_series: u64,
    /// Live series per metric name.
    pub max_series_per_metric: u64,
    /// Labels per series, `__name__` included.
    pub max_labels_per_series: usize,
    pub max_label_name_length: usize,
    pub max_label_value_length: usize,
    /// Which metric and label names remote write accepts: `utf8` (any
    /// UTF-8 text, as Prometheus 3) or `legacy` (Prometheus 2's
    /// character sets; others get 400 naming the name).
    pub name_validation_scheme: strata_types::NameScheme,
    /// How OTLP metric and attribute names become Prometheus names
    /// (Prometheus 3's `otlp.translation_strategy`): the UTF-8 ones need
    /// the `utf8` name scheme.
    pub otlp_translation_strategy: strata_ingest::otlp_metrics::TranslationStrategy,
    /// PromQL/SQL queries running at once.
    pub max_concurrent_queries: usize,
    /// Loki `tail` connections open at once (Loki's default: 10).
    pub max_concurrent_tail_requests: usize,
    /// Samples one PromQL query may load (also capped by `promql.max_samples`).
    pub max_query_samples: usize,
    /// How far back SQL and PromQL may read ("30d"; "0s": no limit).
    /// Older samples are out of reach, as if not stored.
    #[serde(
        deserialize_with = "crate::durations::duration",
        serialize_with = "crate::durations::serialize_duration"
    )]
    pub max_query_lookback: std::time::Duration,
    /// Live log streams (written within `limits.active_series_window`;
    /// Loki's `max_global_streams_per_user`).
    pub max_streams: u64,
    /// Series one LogQL metric query may return.
    pub max_query_series: usize,
    /// Log bytes (lines and structured metadata) per second accepted.
    pub log_ingest_rate_bytes: f64,
    /// Log bytes a burst may hold above the rate.
    pub log_ingest_burst_bytes: u64,
    /// Metrics whose metadata (type, help, unit) is kept.
    pub max_metadata_metrics: usize,
    /// Descriptions kept per metric (senders that disagree).
    pub max_metadata_per_metric: usize,
    /// Exemplars kept per tenant (the oldest written dropped first, as
    /// Prometheus' `max-exemplars` circular buffer); 0 keeps none.
    pub max_exemplars: usize,
    /// Exemplars kept per series (its oldest dropped first).
    pub max_exemplars_per_series: usize,
    /// Deduplicate Prometheus HA pairs (see [`crate::ha`]), as Mimir's
    /// `accept_ha_samples`.
    pub accept_ha_samples: bool,
    /// The label naming an HA pair's cluster (kept on what is stored).
    pub ha_cluster_label: String,
    /// The label naming a replica of a cluster (taken off what is stored).
    pub ha_replica_label: String,
    /// HA clusters per tenant.
    pub ha_max_clusters: usize,
    /// How long an elected replica may be quiet before the next replica to
    /// write takes over.
    #[serde(
        deserialize_with = "crate::durations::duration",
        serialize_with = "crate::durations::serialize_duration"
    )]
    pub ha_failover_timeout: std::time::Duration,
    /// Add a 0 sample at a cumulative series' created timestamp (remote
    /// write 2.0 `start_timestamp`, OTLP `start_time_unix_nano`), as
    /// Prometheus 3's `created-timestamp-zero-ingestion` (see
    /// [`strata_ingest::start_zeros`]).
    pub created_timestamp_zero_ingestion: bool,
    /// Rule and analytics evaluations running at once (0: no limit; each
    /// rule group runs one query at a time). Counted apart from
    /// `max_concurrent_queries`.
    pub ruler_max_concurrent_queries: usize,
    /// Rule groups evaluated for the tenant (the ruler's; 0: no limit).
    pub ruler_max_rule_groups: usize,
    /// Rules in one group (0: no limit).
    pub ruler_max_rules_per_group: usize,
    /// The Alertmanager the tenant's alerts go to, instead of the server's
    /// `rules.alertmanager_urls` (empty: the server's).
    pub ruler_alertmanager_url: String,
}

impl Default for TenantLimits {
    fn default() -> Self {
        Self {
            ingest_rate: 0.0,
            ingest_burst: 0,
            max_series: 0,
            max_series_per_metric: 0,
            max_labels_per_series: 64,
            max_label_name_length: 1024,
            max_label_value_length: 4096,
            name_validation_scheme: strata_types::NameScheme::Utf8,
            otlp_translation_strategy:
                strata_ingest::otlp_metrics::TranslationStrategy::UnderscoreEscapingWithSuffixes,
            max_concurrent_queries: 0,
            max_concurrent_tail_requests: 10,
            max_query_samples: 0,
            max_query_lookback: std::time::Duration::ZERO,
            max_streams: 0,
            max_query_series: 0,
            log_ingest_rate_bytes: 0.0,
            log_ingest_burst_bytes: 0,
            max_metadata_metrics: 10_000,
            max_metadata_per_metric: 10,
            max_exemplars: strata_storage::DEFAULT_EXEMPLAR_BOUNDS.total,
            max_exemplars_per_series: strata_storage::DEFAULT_EXEMPLAR_BOUNDS.per_series,
            accept_ha_samples: false,
            ha_cluster_label: "cluster".to_owned(),
            ha_replica_label: "__replica__".to_owned(),
            ha_max_clusters: 100,
            ha_failover_timeout: std::time::Duration::from_secs(30),
            created_timestamp_zero_ingestion: false,
            ruler_max_concurrent_queries: 0,
            ruler_max_rule_groups: 100,
            ruler_max_rules_per_group: 100,
            ruler_alertmanager_url: String::new(),
        }
    }
}

impl TenantLimits {
    /// Refuses settings no write could follow: HA labels that are not
    /// label names, `__name__`, or the same label twice.
    pub fn check(&self) -> Result<(), String> {
        for (key, name) in [
            ("ha_cluster_label", &self.ha_cluster_label),
            ("ha_replica_label", &self.ha_replica_label),
        ] {
            if !strata_types::is_valid_label_name(name) || name == METRIC_NAME_LABEL {
                return Err(format!(
                    "{key}: {name:?} is not a label name HA pairs can use"
                ));
            }
        }
        if self.ha_cluster_label == self.ha_replica_label {
            return Err("ha_cluster_label and ha_replica_label must differ".to_owned());
        }
        if self.otlp_translation_strategy.utf8()
            && self.name_validation_scheme == strata_types::NameScheme::Legacy
        {
            return Err(format!(
                "otlp_translation_strategy {:?} keeps UTF-8 names, which name_validation_scheme \"legacy\" refuses",
                self.otlp_translation_strategy
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct OverridesFile {
    #[serde(default)]
    tenants: HashMap<String, toml::Table>,
}

/// A refused request: which limit, for the metric and the message.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub kind: ErrorKind,
    pub reason: &'static str,
    pub message: String,
}

fn refuse(kind: ErrorKind, reason: &'static str, message: String) -> Refusal {
    Refusal {
        kind,
        reason,
        message,
    }
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Defaults, overrides and the running state limits need.
pub struct Limits {
    defaults: TenantLimits,
    file: Option<PathBuf>,
    file_mtime: Mutex<Option<SystemTime>>,
    overrides: RwLock<HashMap<String, TenantLimits>>,
    buckets: Mutex<HashMap<TenantId, Bucket>>,
    log_buckets: Mutex<HashMap<TenantId, Bucket>>,
    /// Running queries per tenant and class (internal: the ruler's and
    /// the analytics loop's evaluations).
    queries: Mutex<HashMap<(TenantId, SlotClass), usize>>,
    /// Live series of the tenants with a series limit.
    live: LiveSeries,
    /// Live log streams of the tenants with a stream limit.
    live_streams: LiveSeries,
    /// Ingesters the rate limits are split across: this one and the
    /// peers it hears from (1 outside a scale-out cluster).
    ingesters: AtomicUsize,
    /// Where the live sets announce (an ingester with peers).
    announcements: Option<tokio::sync::broadcast::Sender<Arc<Announcement>>>,
    /// Whether every peer has told its live series (or could not be
    /// reached): until then a write that may add series waits, up to
    /// [`SETTLE_WAIT`], so a restarted ingester does not admit new series
    /// on a count missing its peers'.
    settled: tokio::sync::watch::Sender<bool>,
}

/// How long a series-adding write waits for the peers' live series.
pub const SETTLE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// A rate limit's share on this ingester: rate and burst divided by the
/// ingesters taking writes, as Mimir's global ingestion rate.
struct Share {
    rate: f64,
    burst: f64,
    ingesters: usize,
}

impl Share {
    fn of(rate: f64, burst: u64, ingesters: usize) -> Self {
        let n = ingesters.max(1) as f64;
        Self {
            rate: rate / n,
            burst: (burst as f64).max(rate) / n,
            ingesters: ingesters.max(1),
        }
    }

    /// "`rate` `unit`/s (burst `b`)", with this ingester's share when the
    /// limit is split.
    fn describe(&self, unit: &str) -> String {
        let n = self.ingesters as f64;
        let whole = format!("{} {unit}/s (burst {})", self.rate * n, self.burst * n);
        if self.ingesters == 1 {
            whole
        } else {
            format!(
                "{whole}, {} {unit}/s (burst {}) on each of {} ingesters",
                self.rate, self.burst, self.ingesters
            )
        }
    }
}

/// How a write stands against its tenant's series limits.
pub enum SeriesAdmission {
    /// The tenant has no series limit: nothing is counted.
    Unlimited,
    /// Every series of the write is live already (now marked written).
    Live,
    /// The write may add series: the tenant's admission is held until the
    /// write is recorded (or dropped), so the check and the write act as one.
    Adds {
        series: Arc<TenantSeries>,
        _admitted: tokio::sync::OwnedMutexGuard<()>,
    },
}

impl SeriesAdmission {
    /// The live series to complete from storage before the check, if they
    /// are not complete yet.
    pub fn incomplete(&self) -> Option<&TenantSeries> {
        match self {
            Self::Adds { series, .. } if !series.is_complete() => Some(series),
            _ => None,
        }
    }

    /// Records a stored write's series as live.
    pub fn record(&self, batch: &WriteBatch, now_s: i64) {
        if let Self::Adds { series, .. } = self {
            series.record(batch, now_s);
        }
    }

    /// Records a stored log write's streams as live.
    pub fn record_streams(&self, batch: &strata_types::LogBatch, now_s: i64) {
        if let Self::Adds { series, .. } = self {
            series.record_of(stream_ids(batch), now_s);
        }
    }
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limits")
            .field("defaults", &self.defaults)
            .finish_non_exhaustive()
    }
}

/// A log batch's streams as (id, metric): streams have no metric.
fn stream_ids(batch: &strata_types::LogBatch) -> impl Iterator<Item = (u64, &'static str)> + '_ {
    batch.streams.iter().map(|s| (s.stream_id().0, ""))
}

/// Merges a tenant's partial table over the defaults.
fn merge(defaults: &TenantLimits, partial: &toml::Table) -> Result<TenantLimits, String> {
    let mut full = toml::Table::try_from(defaults).map_err(|e| e.to_string())?;
    for (k, v) in partial {
        full.insert(k.clone(), v.clone());
    }
    full.try_into().map_err(|e: toml::de::Error| e.to_string())
}

fn read_overrides(
    path: &Path,
    defaults: &TenantLimits,
) -> Result<HashMap<String, TenantLimits>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let file: OverridesFile =
        toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = HashMap::new();
    for (tenant, partial) in file.tenants {
        TenantId::try_new(&tenant)
            .map_err(|e| format!("{}: tenants.{tenant}: {e}", path.display()))?;
        let l = merge(defaults, &partial)
            .and_then(|l| l.check().map(|()| l))
            .map_err(|e| format!("{}: tenants.{tenant}: {e}", path.display()))?;
        out.insert(tenant, l);
    }
    Ok(out)
}

impl Limits {
    /// The same limits for every tenant.
    pub fn with_defaults(defaults: TenantLimits) -> Self {
        Self {
            defaults,
            file: None,
            file_mtime: Mutex::new(None),
            overrides: RwLock::new(HashMap::new()),
            buckets: Mutex::new(HashMap::new()),
            log_buckets: Mutex::new(HashMap::new()),
            queries: Mutex::new(HashMap::new()),
            live: LiveSeries::new(LiveKind::Series),
            live_streams: LiveSeries::new(LiveKind::Streams),
            ingesters: AtomicUsize::new(1),
            announcements: None,
            settled: tokio::sync::watch::Sender::new(true),
        }
    }

    /// Shares the live series and streams with peer ingesters: what is
    /// written here is announced (again every `refresh_s` while written),
    /// for [`Self::subscribe_live`]; see [`crate::peers`].
    pub fn shared(mut self, refresh_s: i64) -> Self {
        let (tx, _) = tokio::sync::broadcast::channel(4096);
        self.live.share(tx.clone(), refresh_s);
        self.live_streams.share(tx.clone(), refresh_s);
        self.announcements = Some(tx);
        self.settled.send_replace(false);
        self
    }

    /// Marks the peers' live series as told (every peer answered or could
    /// not be reached).
    pub fn settle(&self) {
        self.settled.send_replace(true);
    }

    /// Waits, up to [`SETTLE_WAIT`], for the peers' live series.
    async fn wait_settled(&self) {
        if *self.settled.borrow() {
            return;
        }
        let mut rx = self.settled.subscribe();
        let _ = tokio::time::timeout(SETTLE_WAIT, rx.wait_for(|s| *s)).await;
    }

    /// A peer's subscription: every announcement from now on, and what is
    /// live now in chunks (subscribed first, so nothing falls between;
    /// merging twice is harmless). `None` when not shared.
    pub fn subscribe_live(
        &self,
    ) -> Option<(
        tokio::sync::broadcast::Receiver<Arc<Announcement>>,
        Vec<Announcement>,
    )> {
        let rx = self.announcements.as_ref()?.subscribe();
        let mut now = self.live.snapshot(16_384);
        now.extend(self.live_streams.snapshot(16_384));
        Some((rx, now))
    }

    /// Merges a peer's announcement into the tenant's set, if the tenant
    /// has a limit that counts it.
    pub fn merge_live(&self, a: &Announcement) {
        let l = self.of(&a.tenant);
        match a.kind {
            LiveKind::Series if l.max_series > 0 || l.max_series_per_metric > 0 => {
                self.live.tenant(&a.tenant).merge(&a.entries);
            }
            LiveKind::Streams if l.max_streams > 0 => {
                self.live_streams.tenant(&a.tenant).merge(&a.entries);
            }
            _ => {}
        }
    }

    /// How many ingesters the rate limits are split across now.
    pub fn set_ingesters(&self, n: usize) {
        self.ingesters.store(n.max(1), Ordering::Relaxed);
    }

    pub fn ingesters(&self) -> usize {
        self.ingesters.load(Ordering::Relaxed)
    }

    /// Where `batch` stands against its tenant's series limits (written at
    /// `now_s`): when it may add series, waits for the tenant's admission.
    pub async fn admit_series(&self, batch: &WriteBatch, now_s: i64) -> SeriesAdmission {
        let l = self.of(&batch.tenant);
        if l.max_series == 0 && l.max_series_per_metric == 0 {
            self.live.forget(&batch.tenant);
            return SeriesAdmission::Unlimited;
        }
        let series = self.live.tenant(&batch.tenant);
        if series.touch_if_live(batch, now_s) {
            return SeriesAdmission::Live;
        }
        self.wait_settled().await;
        let admitted = series.admit().await;
        SeriesAdmission::Adds {
            series,
            _admitted: admitted,
        }
    }

    /// Where log `batch` stands against its tenant's stream limit, as
    /// [`Self::admit_series`] for series.
    pub async fn admit_streams(
        &self,
        batch: &strata_types::LogBatch,
        now_s: i64,
    ) -> SeriesAdmission {
        if self.of(&batch.tenant).max_streams == 0 {
            self.live_streams.forget(&batch.tenant);
            return SeriesAdmission::Unlimited;
        }
        let streams = self.live_streams.tenant(&batch.tenant);
        let ids: Vec<u64> = stream_ids(batch).map(|s| s.0).collect();
        if streams.touch_ids_if_live(&ids, now_s) {
            return SeriesAdmission::Live;
        }
        self.wait_settled().await;
        let admitted = streams.admit().await;
        SeriesAdmission::Adds {
            series: streams,
            _admitted: admitted,
        }
    }

    /// Forgets the series and log streams last written before `before_s`:
    /// they no longer count against a limit. How many.
    pub fn expire_series(&self, before_s: i64) -> usize {
        self.live.expire(before_s) + self.live_streams.expire(before_s)
    }

    /// `tenant`'s live series and log streams as its limits count them
    /// (`None` where no limit keeps count).
    pub fn live_counts(&self, tenant: &TenantId) -> (Option<usize>, Option<usize>) {
        (
            self.live.count_of(tenant),
            self.live_streams.count_of(tenant),
        )
    }

    /// Defaults and an overrides file, which must load.
    pub fn new(defaults: TenantLimits, file: Option<PathBuf>) -> Result<Self, String> {
        defaults.check()?;
        let limits = Self {
            file,
            ..Self::with_defaults(defaults)
        };
        limits.reload()?;
        Ok(limits)
    }

    fn reload(&self) -> Result<usize, String> {
        let Some(path) = &self.file else {
            return Ok(0);
        };
        let o = read_overrides(path, &self.defaults)?;
        let n = o.len();
        *self.overrides.write() = o;
        *self.file_mtime.lock() = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        Ok(n)
    }

    /// Re-reads the overrides file if it changed; a broken file keeps the
    /// overrides in force.
    pub fn reload_if_changed(&self) -> Result<Option<usize>, String> {
        let Some(path) = &self.file else {
            return Ok(None);
        };
        let mtime = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        if mtime.is_some() && mtime == *self.file_mtime.lock() {
            return Ok(None);
        }
        self.reload().map(Some)
    }

    /// The limits in force for `tenant`.
    pub fn of(&self, tenant: &TenantId) -> TenantLimits {
        self.overrides
            .read()
            .get(tenant.as_str())
            .cloned()
            .unwrap_or_else(|| self.defaults.clone())
    }

    /// Refuses a write before it is decoded when its tenant's rate bucket
    /// holds less than one sample: whatever the request carries would be
    /// refused, and a flood over its rate should not cost the decoding.
    pub fn check_ingest_budget(&self, tenant: &TenantId) -> Result<(), Refusal> {
        let l = self.of(tenant);
        if l.ingest_rate <= 0.0 {
            return Ok(());
        }
        let share = Share::of(l.ingest_rate, l.ingest_burst, self.ingesters());
        let buckets = self.buckets.lock();
        let Some(b) = buckets.get(tenant) else {
            return Ok(());
        };
        let tokens = (b.tokens + b.at.elapsed().as_secs_f64() * share.rate).min(share.burst);
        if tokens >= 1.0 {
            return Ok(());
        }
        Err(refuse(
            ErrorKind::Limit,
            "ingest_rate",
            format!(
                "tenant {tenant} is over its ingest rate of {}: request refused, retry later",
                share.describe("samples")
            ),
        ))
    }

    /// Checks a whole write request; takes its samples from the rate
    /// bucket only if everything else passes.
    pub fn check_ingest(
        &self,
        batch: &WriteBatch,
        series: &SeriesAdmission,
    ) -> Result<(), Refusal> {
        let tenant = &batch.tenant;
        let l = self.of(tenant);
        let w = batch.label_widths();
        let over = |limit: usize, n: usize| limit > 0 && n > limit;
        let labels_pass = !over(l.max_labels_per_series, w.labels)
            && !over(l.max_label_name_length, w.name_bytes)
            && !over(l.max_label_value_length, w.value_bytes);
        // Only a batch with a series over a limit is walked, to name it.
        for s in batch.series().filter(|_| !labels_pass) {
            let n = s.label_count();
            if l.max_labels_per_series > 0 && n > l.max_labels_per_series {
                return Err(refuse(
                    ErrorKind::BadInput,
                    "max_labels_per_series",
                    format!(
                        "series {}{{…}} has {n} labels, over the limit of {} (max_labels_per_series) for tenant {tenant}",
                        s.label(METRIC_NAME_LABEL).unwrap_or(""),
                        l.max_labels_per_series
                    ),
                ));
            }
            for (name, value) in s.labels() {
                if l.max_label_name_length > 0 && name.len() > l.max_label_name_length {
                    return Err(refuse(
                        ErrorKind::BadInput,
                        "max_label_name_length",
                        format!(
                            "label name {:?}… is {} bytes, over the limit of {} (max_label_name_length) for tenant {tenant}",
                            name.chars().take(64).collect::<String>(),
                            name.len(),
                            l.max_label_name_length
                        ),
                    ));
                }
                if l.max_label_value_length > 0 && value.len() > l.max_label_value_length {
                    return Err(refuse(
                        ErrorKind::BadInput,
                        "max_label_value_length",
                        format!(
                            "value of label {name} is {} bytes, over the limit of {} (max_label_value_length) for tenant {tenant}",
                            value.len(),
                            l.max_label_value_length
                        ),
                    ));
                }
            }
        }
        if let SeriesAdmission::Adds { series, .. } = series {
            let g = series.growth(batch);
            if l.max_series > 0 && g.live + g.new > l.max_series {
                return Err(refuse(
                    ErrorKind::Limit,
                    "max_series",
                    format!(
                        "tenant {tenant} has {} live series; {} new ones would pass the limit of {} (max_series)",
                        g.live, g.new, l.max_series
                    ),
                ));
            }
            if l.max_series_per_metric > 0 {
                for (metric, live, new) in g.per_metric {
                    if live + new > l.max_series_per_metric {
                        return Err(refuse(
                            ErrorKind::Limit,
                            "max_series_per_metric",
                            format!(
                                "metric {metric} of tenant {tenant} has {live} live series; {new} new ones would pass the limit of {} (max_series_per_metric)",
                                l.max_series_per_metric
                            ),
                        ));
                    }
                }
            }
        }
        if l.ingest_rate > 0.0 {
            let need = batch.sample_count() as f64;
            let share = Share::of(l.ingest_rate, l.ingest_burst, self.ingesters());
            let mut buckets = self.buckets.lock();
            let now = Instant::now();
            let b = buckets.entry(tenant.clone()).or_insert(Bucket {
                tokens: share.burst,
                at: now,
            });
            b.tokens =
                (b.tokens + now.duration_since(b.at).as_secs_f64() * share.rate).min(share.burst);
            b.at = now;
            if need > b.tokens {
                return Err(refuse(
                    ErrorKind::Limit,
                    "ingest_rate",
                    format!(
                        "tenant {tenant} is over its ingest rate of {}: {need} samples refused, retry later",
                        share.describe("samples")
                    ),
                ));
            }
            b.tokens -= need;
        }
        Ok(())
    }

    /// Checks a log batch against its tenant's limits: stream label counts
    /// and sizes, then the log byte rate (taken only when everything else
    /// passed, so a refused batch costs no tokens).
    pub fn check_log_ingest(
        &self,
        batch: &strata_types::LogBatch,
        streams: &SeriesAdmission,
    ) -> Result<(), Refusal> {
        let tenant = &batch.tenant;
        let l = self.of(tenant);
        if let SeriesAdmission::Adds { series, .. } = streams {
            let g = series.growth_of(stream_ids(batch));
            if l.max_streams > 0 && g.live + g.new > l.max_streams {
                return Err(refuse(
                    ErrorKind::Limit,
                    "max_streams",
                    format!(
                        "tenant {tenant} has {} live log streams; {} new ones would pass the limit of {} (max_streams)",
                        g.live, g.new, l.max_streams
                    ),
                ));
            }
        }
        for s in &batch.streams {
            let n = s.labels.len();
            if l.max_labels_per_series > 0 && n > l.max_labels_per_series {
                return Err(refuse(
                    ErrorKind::BadInput,
                    "max_labels_per_series",
                    format!(
                        "a stream has {n} labels, over the limit of {} (max_labels_per_series) for tenant {tenant}",
                        l.max_labels_per_series
                    ),
                ));
            }
            for label in s.labels.iter() {
                if l.max_label_name_length > 0 && label.name.len() > l.max_label_name_length {
                    return Err(refuse(
                        ErrorKind::BadInput,
                        "max_label_name_length",
                        format!(
                            "stream label name {:?}… is {} bytes, over the limit of {} (max_label_name_length) for tenant {tenant}",
                            label.name.chars().take(64).collect::<String>(),
                            label.name.len(),
                            l.max_label_name_length
                        ),
                    ));
                }
                if l.max_label_value_length > 0 && label.value.len() > l.max_label_value_length {
                    return Err(refuse(
                        ErrorKind::BadInput,
                        "max_label_value_length",
                        format!(
                            "value of stream label {} is {} bytes, over the limit of {} (max_label_value_length) for tenant {tenant}",
                            label.name,
                            label.value.len(),
                            l.max_label_value_length
                        ),
                    ));
                }
            }
        }
        if l.log_ingest_rate_bytes > 0.0 {
            let need = batch.bytes() as f64;
            let share = Share::of(
                l.log_ingest_rate_bytes,
                l.log_ingest_burst_bytes,
                self.ingesters(),
            );
            let mut buckets = self.log_buckets.lock();
            let now = Instant::now();
            let b = buckets.entry(tenant.clone()).or_insert(Bucket {
                tokens: share.burst,
                at: now,
            });
            b.tokens =
                (b.tokens + now.duration_since(b.at).as_secs_f64() * share.rate).min(share.burst);
            b.at = now;
            if need > b.tokens {
                return Err(refuse(
                    ErrorKind::Limit,
                    "log_ingest_rate_bytes",
                    format!(
                        "tenant {tenant} is over its log ingest rate of {}: {need} bytes refused, retry later",
                        share.describe("bytes")
                    ),
                ));
            }
            b.tokens -= need;
        }
        Ok(())
    }

    /// A slot for one query of `tenant`, released when dropped. Internal
    /// evaluations (rule groups, the analytics loop) are counted apart,
    /// against `ruler_max_concurrent_queries`, so a tenant's dashboards
    /// at their limit never make its alerts miss an evaluation, nor the
    /// reverse.
    pub fn start_query(
        self: &Arc<Self>,
        tenant: &TenantId,
        internal: bool,
    ) -> Result<QuerySlot, Refusal> {
        let limits = self.of(tenant);
        let (max, name) = if internal {
            (
                limits.ruler_max_concurrent_queries,
                "ruler_max_concurrent_queries",
            )
        } else {
            (limits.max_concurrent_queries, "max_concurrent_queries")
        };
        let class = if internal {
            SlotClass::Internal
        } else {
            SlotClass::Query
        };
        self.slot(tenant, class, max, name, "queries")
    }

    /// A slot for one Loki `tail` connection of `tenant`, released when
    /// dropped (`max_concurrent_tail_requests`).
    pub fn start_tail(self: &Arc<Self>, tenant: &TenantId) -> Result<QuerySlot, Refusal> {
        let max = self.of(tenant).max_concurrent_tail_requests;
        self.slot(
            tenant,
            SlotClass::Tail,
            max,
            "max_concurrent_tail_requests",
            "tail connections",
        )
    }

    fn slot(
        self: &Arc<Self>,
        tenant: &TenantId,
        class: SlotClass,
        max: usize,
        name: &'static str,
        what: &str,
    ) -> Result<QuerySlot, Refusal> {
        let mut q = self.queries.lock();
        let running = q.entry((tenant.clone(), class)).or_default();
        if max > 0 && *running >= max {
            return Err(refuse(
                ErrorKind::Limit,
                name,
                format!(
                    "tenant {tenant} already has {running} {what} open, the limit ({name}); retry later"
                ),
            ));
        }
        *running += 1;
        Ok(QuerySlot {
            limits: Arc::clone(self),
            key: (tenant.clone(), class),
        })
    }
}

/// What a [`QuerySlot`] is counted as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum SlotClass {
    Query,
    /// Rule and analytics evaluations.
    Internal,
    /// Loki `tail` connections.
    Tail,
}

/// A running query's (or tail's) place in its tenant's count.
pub struct QuerySlot {
    limits: Arc<Limits>,
    key: (TenantId, SlotClass),
}

impl Drop for QuerySlot {
    fn drop(&mut self) {
        if let Some(n) = self.limits.queries.lock().get_mut(&self.key) {
            *n = n.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests;
