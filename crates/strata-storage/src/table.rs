//! A tenant's metrics table: a Delta Lake table of Parquet data files.
//!
//! Strata writes the data files itself (its own sort order, encodings and
//! checksums) and commits them with deltalake-core. A flush commit carries
//! the WAL position it covers as an application transaction
//! (`txn { appId: "strata-wal", version: <seq> }`), so replay after a crash
//! skips exactly what is already in the table.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use deltalake_core::DeltaTable;
use deltalake_core::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake_core::kernel::{Action, Add, Remove, Transaction};
use deltalake_core::logstore::{LogStoreRef, StorageConfig, default_logstore};
use deltalake_core::operations::create::CreateBuilder;
use deltalake_core::protocol::{DeltaOperation, SaveMode};
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use serde::{Deserialize, Serialize};
use strata_types::TenantId;
use strata_wal::WalSeq;

use crate::paths::{DataFilePath, Signal, TablePath};
use crate::schema::DAY;
use crate::{ObjectStoreHandle, StorageError};

/// Application id of the WAL position in flush commits of a server doing
/// every role (the only writer of its tables).
pub const WAL_APP_ID: &str = "strata-wal";

/// Application id of an ingester's WAL positions: each ingester has its own
/// WAL, so each records and replays by its own id in the shared tables.
pub fn ingester_wal_app_id(node_id: &str) -> String {
    format!("{WAL_APP_ID}/{node_id}")
}
/// Add-action tag holding the file's SHA-256 (hex), checked by verify.
pub const SHA256_TAG: &str = "strata.sha256";
/// Add-action tag: when the newest sample in the file was written (ms since
/// the epoch). Decides which copy of a (series, timestamp) wins when
/// compaction merges files: the newer write.
pub const WRITTEN_TAG: &str = "strata.written_ms";
/// Add-action tag: distinct series in the file.
pub const SERIES_TAG: &str = "strata.series";
/// The add-action tag naming how a metrics file orders its series
/// ([`SeriesOrder`]); absent on files written before there was a choice.
pub const SERIES_ORDER_TAG: &str = "strata.series_order";

/// How a metrics file orders its series within a metric: files of one day
/// merge only in one order, so a day keeps the order of its first file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SeriesOrder {
    /// By series id (signed): every file written before label order.
    #[default]
    Id,
    /// By [`strata_types::cmp_series_order`]: `job`, `instance`, then the
    /// label set, so a service's or a host's series lie together.
    Labels,
}

impl SeriesOrder {
    /// The tag value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Id => "series_id",
            Self::Labels => "labels",
        }
    }
}

/// Per-file statistics, kept in the Delta log (`stats`) and used to prune
/// files before any is opened.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileStats {
    pub rows: u64,
    pub min_ts_ms: i64,
    pub max_ts_ms: i64,
    pub min_series_id: i64,
    pub max_series_id: i64,
    pub min_metric: String,
    pub max_metric: String,
    /// Logs: the time range in nanoseconds (`min_ts_ms`/`max_ts_ms`
    /// hold it rounded outwards).
    pub min_ts_ns: i64,
    pub max_ts_ns: i64,
    /// Distinct series (0: not recorded). Sizes the series-id bloom filter
    /// when the file is merged.
    pub series: u64,
    /// The last series id observed while writing (rows arrive in series
    /// order, so a change is a new series).
    last_series_id: i64,
}

impl FileStats {
    pub(crate) fn observe(&mut self, metric: &str, series_id: i64, ts_ms: i64, _value: f64) {
        if self.rows == 0 || series_id != self.last_series_id {
            self.series += 1;
            self.last_series_id = series_id;
        }
        if self.rows == 0 {
            self.min_ts_ms = ts_ms;
            self.max_ts_ms = ts_ms;
            self.min_series_id = series_id;
            self.max_series_id = series_id;
            self.min_metric = metric.to_owned();
            self.max_metric = metric.to_owned();
        } else {
            self.min_ts_ms = self.min_ts_ms.min(ts_ms);
            self.max_ts_ms = self.max_ts_ms.max(ts_ms);
            self.min_series_id = self.min_series_id.min(series_id);
            self.max_series_id = self.max_series_id.max(series_id);
            if metric < self.min_metric.as_str() {
                self.min_metric = metric.to_owned();
            }
            if metric > self.max_metric.as_str() {
                self.max_metric = metric.to_owned();
            }
        }
        self.rows += 1;
    }

    /// Whether the file may hold a sample in `[min_ms, max_ms]`.
    pub fn overlaps(&self, min_ms: i64, max_ms: i64) -> bool {
        self.rows > 0 && self.min_ts_ms <= max_ms && self.max_ts_ms >= min_ms
    }
}

/// Delta's `stats` JSON for one file.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeltaStats {
    num_records: u64,
    min_values: ColumnValues,
    max_values: ColumnValues,
    null_count: HashMap<String, u64>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct ColumnValues {
    #[serde(skip_serializing_if = "Option::is_none")]
    metric: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    series_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timestamp: Option<String>,
    /// Logs: the stream id and the time in nanoseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timestamp_ns: Option<i64>,
}

fn iso_ms(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

fn parse_iso_ms(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp_millis())
        // Years outside 0000-9999 as `iso_ms` wrote them (`+10000-…`,
        // `-0001-…`) before ingest refused such samples: tables holding
        // them must still open.
        .or_else(|| {
            chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.fZ")
                .ok()
                .map(|t| t.and_utc().timestamp_millis())
        })
}

/// Delta truncates string statistics; longer metrics are left out of them.
const MAX_STAT_STRING: usize = 256;

/// A data file as the log records it.
#[derive(Debug, Clone, PartialEq)]
pub struct DataFile {
    pub signal: Signal,
    pub path: DataFilePath,
    pub size: u64,
    /// SHA-256 of the whole file, hex; absent for files Strata did not write.
    pub sha256: Option<String>,
    pub stats: FileStats,
    /// When the newest write in the file happened (ms since the epoch).
    pub written_ms: i64,
    /// How its series are ordered (metrics files).
    pub series_order: SeriesOrder,
}

impl DataFile {
    fn stats_json(&self) -> String {
        let s = &self.stats;
        let metric = |m: &str| (m.len() <= MAX_STAT_STRING).then(|| m.to_owned());
        let (min_values, max_values, columns): (_, _, &[&str]) = match self.signal {
            Signal::Metrics | Signal::Exemplars | Signal::Histograms => (
                ColumnValues {
                    metric: metric(&s.min_metric),
                    series_id: Some(s.min_series_id),
                    timestamp: Some(iso_ms(s.min_ts_ms)),
                    ..Default::default()
                },
                ColumnValues {
                    metric: metric(&s.max_metric),
                    series_id: Some(s.max_series_id),
                    timestamp: Some(iso_ms(s.max_ts_ms)),
                    ..Default::default()
                },
                if self.signal == Signal::Exemplars {
                    &[
                        "metric",
                        "labels",
                        "series_id",
                        "timestamp",
                        "value",
                        "exemplar",
                    ]
                } else if self.signal == Signal::Histograms {
                    &["metric", "labels", "series_id", "timestamp"]
                } else {
                    &["metric", "labels", "series_id", "timestamp", "value"]
                },
            ),
            Signal::Logs => (
                ColumnValues {
                    stream_id: Some(s.min_series_id),
                    timestamp_ns: Some(s.min_ts_ns),
                    ..Default::default()
                },
                ColumnValues {
                    stream_id: Some(s.max_series_id),
                    timestamp_ns: Some(s.max_ts_ns),
                    ..Default::default()
                },
                &["stream_id", "labels", "timestamp_ns", "line", "metadata"],
            ),
        };
        let stats = DeltaStats {
            num_records: s.rows,
            min_values,
            max_values,
            null_count: columns.iter().map(|c| ((*c).to_owned(), 0)).collect(),
        };
        serde_json::to_string(&stats).unwrap_or_default()
    }

    pub(crate) fn to_add(&self) -> Add {
        let mut tags = HashMap::new();
        if let Some(h) = &self.sha256 {
            tags.insert(SHA256_TAG.to_owned(), Some(h.clone()));
        }
        tags.insert(WRITTEN_TAG.to_owned(), Some(self.written_ms.to_string()));
        tags.insert(SERIES_TAG.to_owned(), Some(self.stats.series.to_string()));
        if self.series_order != SeriesOrder::Id {
            tags.insert(
                SERIES_ORDER_TAG.to_owned(),
                Some(self.series_order.as_str().to_owned()),
            );
        }
        tags.insert(
            "strata.level".to_owned(),
            Some(self.path.level.as_str().to_owned()),
        );
        Add {
            path: self.path.relative(),
            partition_values: HashMap::from([(DAY.to_owned(), Some(self.path.day_value()))]),
            size: self.size as i64,
            modification_time: Utc::now().timestamp_millis(),
            data_change: true,
            stats: Some(self.stats_json()),
            tags: Some(tags),
            ..Default::default()
        }
    }

    pub(crate) fn to_remove(&self, data_change: bool) -> Remove {
        Remove {
            path: self.path.relative(),
            data_change,
            deletion_timestamp: Some(Utc::now().timestamp_millis()),
            extended_file_metadata: Some(true),
            partition_values: Some(HashMap::from([(
                DAY.to_owned(),
                Some(self.path.day_value()),
            )])),
            size: Some(self.size as i64),
            tags: None,
            deletion_vector: None,
            base_row_id: None,
            default_row_commit_version: None,
        }
    }

    fn from_add(add: &Add) -> Result<Self, StorageError> {
        let path = DataFilePath::parse(&add.path)?;
        let corrupt = |what: &str| StorageError::Corrupt {
            message: format!("data file {}: {what}", add.path),
        };
        let stats: DeltaStats = serde_json::from_str(add.stats.as_deref().unwrap_or(""))
            .map_err(|e| corrupt(&format!("statistics: {e}")))?;
        let ts = |v: &ColumnValues, round_up: bool| -> Result<i64, StorageError> {
            match (&v.timestamp, v.timestamp_ns) {
                (Some(s), _) => parse_iso_ms(s).ok_or_else(|| corrupt("statistics timestamp")),
                (None, Some(ns)) if round_up => Ok(ns.div_euclid(1_000_000) + 1),
                (None, Some(ns)) => Ok(ns.div_euclid(1_000_000)),
                (None, None) => Err(corrupt("statistics without a timestamp")),
            }
        };
        let signal = if stats.min_values.timestamp_ns.is_some() {
            Signal::Logs
        } else {
            Signal::Metrics
        };
        let id = |v: &ColumnValues| v.series_id.or(v.stream_id).unwrap_or(0);
        let tag = |name: &str| -> Option<i64> {
            add.tags
                .as_ref()
                .and_then(|t| t.get(name).cloned().flatten())
                .and_then(|v| v.parse().ok())
        };
        Ok(Self {
            signal,
            path,
            size: u64::try_from(add.size).map_err(|_| corrupt("negative size"))?,
            sha256: add
                .tags
                .as_ref()
                .and_then(|t| t.get(SHA256_TAG).cloned().flatten()),
            written_ms: tag(WRITTEN_TAG).unwrap_or(add.modification_time),
            series_order: match add
                .tags
                .as_ref()
                .and_then(|t| t.get(SERIES_ORDER_TAG).cloned().flatten())
                .as_deref()
            {
                None => SeriesOrder::Id,
                Some(v) if v == SeriesOrder::Id.as_str() => SeriesOrder::Id,
                Some(v) if v == SeriesOrder::Labels.as_str() => SeriesOrder::Labels,
                Some(v) => return Err(corrupt(&format!("unknown series order {v:?}"))),
            },
            stats: FileStats {
                rows: stats.num_records,
                min_ts_ms: ts(&stats.min_values, false)?,
                // The log keeps milliseconds; metric files hold whole
                // milliseconds, log files' nanoseconds round outwards.
                max_ts_ms: ts(&stats.max_values, true)?,
                min_ts_ns: stats.min_values.timestamp_ns.unwrap_or(0),
                max_ts_ns: stats.max_values.timestamp_ns.unwrap_or(0),
                min_series_id: id(&stats.min_values),
                max_series_id: id(&stats.max_values),
                min_metric: stats.min_values.metric.unwrap_or_default(),
                max_metric: stats.max_values.metric.unwrap_or_default(),
                series: tag(SERIES_TAG)
                    .and_then(|n| u64::try_from(n).ok())
                    .unwrap_or(0),
                last_series_id: 0,
            },
        })
    }
}

/// One tenant's metrics table.
pub struct MetricsTable {
    tenant: TenantId,
    signal: Signal,
    /// The table root, from the store root.
    root: Path,
    table: DeltaTable,
    /// The application id flush commits record their WAL position under.
    wal_app_id: String,
}

impl std::fmt::Debug for MetricsTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsTable")
            .field("tenant", &self.tenant)
            .field("version", &self.table.version())
            .finish()
    }
}

impl MetricsTable {
    fn log_store(
        handle: &ObjectStoreHandle,
        path: &TablePath,
    ) -> Result<LogStoreRef, StorageError> {
        let root = handle.path(&path.relative());
        let prefixed = Arc::new(PrefixStore::new(Arc::clone(handle.store()), root));
        let url = handle.url_of(&path.relative())?;
        Ok(default_logstore(
            prefixed,
            Arc::clone(handle.store()),
            &url,
            &StorageConfig::default(),
        ))
    }

    /// Opens `tenant`'s table at its latest version; `None` if it does not
    /// exist yet.
    pub async fn open(
        handle: &ObjectStoreHandle,
        tenant: &TenantId,
    ) -> Result<Option<Self>, StorageError> {
        Self::open_signal(handle, tenant, Signal::Metrics).await
    }

    /// Opens `tenant`'s table of `signal`; `None` if it does not exist yet.
    pub async fn open_signal(
        handle: &ObjectStoreHandle,
        tenant: &TenantId,
        signal: Signal,
    ) -> Result<Option<Self>, StorageError> {
        let path = TablePath::of(tenant.clone(), signal);
        let log_store = Self::log_store(handle, &path)?;
        let err = |e| StorageError::delta(tenant, e);
        if !log_store.is_delta_table_location().await.map_err(err)? {
            return Ok(None);
        }
        let mut table = DeltaTable::new(log_store);
        table.load().await.map_err(err)?;
        Ok(Some(Self {
            tenant: tenant.clone(),
            signal,
            root: handle.path(&path.relative()),
            table,
            wal_app_id: WAL_APP_ID.to_owned(),
        }))
    }

    /// Opens `tenant`'s table, creating it if needed.
    pub async fn open_or_create(
        handle: &ObjectStoreHandle,
        tenant: &TenantId,
    ) -> Result<Self, StorageError> {
        Self::open_or_create_signal(handle, tenant, Signal::Metrics).await
    }

    /// Opens `tenant`'s table of `signal`, creating it if needed.
    pub async fn open_or_create_signal(
        handle: &ObjectStoreHandle,
        tenant: &TenantId,
        signal: Signal,
    ) -> Result<Self, StorageError> {
        if let Some(t) = Self::open_signal(handle, tenant, signal).await? {
            return Ok(t);
        }
        let path = TablePath::of(tenant.clone(), signal);
        let log_store = Self::log_store(handle, &path)?;
        let (comment, columns) = match signal {
            Signal::Metrics => (
                "Strata metrics: one row per float sample",
                crate::schema::delta_columns(),
            ),
            Signal::Logs => (
                "Strata logs: one row per log entry",
                crate::schema::logs_delta_columns(),
            ),
            Signal::Exemplars => (
                "Strata exemplars: one row per exemplar",
                crate::schema::exemplars_delta_columns(),
            ),
            Signal::Histograms => (
                "Strata native histograms: one row per histogram sample",
                crate::schema::histograms_delta_columns(),
            ),
        };
        // Several ingesters may create a new tenant's table at once: the
        // create commits version 0 only (no retry), and the one that loses
        // opens the winner's table. (With retries, deltalake would commit
        // the losing create as version 1, a second table identity that
        // fails the winner's next commit as a metadata change.)
        let created = CreateBuilder::new()
            .with_log_store(log_store)
            .with_table_name(format!("{}_{}", tenant, signal.as_str()))
            .with_comment(comment)
            .with_columns(columns)
            .with_partition_columns([DAY])
            .with_save_mode(SaveMode::Ignore)
            .with_commit_properties(CommitProperties::default().with_max_retries(0))
            .await;
        let table = match created {
            Ok(table) => table,
            Err(e) => match Self::open_signal(handle, tenant, signal).await? {
                Some(t) => return Ok(t),
                None => return Err(StorageError::delta(tenant, e)),
            },
        };
        Ok(Self {
            tenant: tenant.clone(),
            signal,
            root: handle.path(&path.relative()),
            table,
            wal_app_id: WAL_APP_ID.to_owned(),
        })
    }

    pub fn signal(&self) -> Signal {
        self.signal
    }

    /// Records and reads WAL positions under `id` (an ingester's own,
    /// [`ingester_wal_app_id`]) instead of [`WAL_APP_ID`].
    pub fn set_wal_app_id(&mut self, id: &str) {
        id.clone_into(&mut self.wal_app_id);
    }

    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    /// The table root, from the store root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn version(&self) -> Option<u64> {
        self.table.version()
    }

    fn err(&self, e: deltalake_core::DeltaTableError) -> StorageError {
        StorageError::delta(&self.tenant, e)
    }

    /// The last WAL position a flush committed to this table.
    pub async fn committed_wal_seq(&self) -> Result<Option<WalSeq>, StorageError> {
        self.wal_seq_of(&self.wal_app_id).await
    }

    /// The last WAL position the writer `app_id` committed to this table
    /// (at the loaded version).
    pub async fn wal_seq_of(&self, app_id: &str) -> Result<Option<WalSeq>, StorageError> {
        let state = self.table.snapshot().map_err(|e| self.err(e))?;
        let v = state
            .transaction_version(self.table.log_store().as_ref(), app_id)
            .await
            .map_err(|e| self.err(e))?;
        Ok(v.and_then(|v| u64::try_from(v).ok()).map(WalSeq))
    }

    /// The live data files at the loaded version.
    pub fn files(&self) -> Result<Vec<DataFile>, StorageError> {
        let state = self.table.snapshot().map_err(|e| self.err(e))?;
        state
            .log_data()
            .iter()
            // The Add view is the simplest faithful copy of what was logged.
            .map(|f| {
                #[allow(deprecated)]
                let add = f.add_action();
                // The statistics tell metrics from logs; an exemplars
                // table's files look like metrics' there.
                DataFile::from_add(&add).map(|mut file| {
                    if matches!(self.signal, Signal::Exemplars | Signal::Histograms) {
                        file.signal = self.signal;
                    }
                    file
                })
            })
            .collect()
    }

    /// Commits `add` and `remove` in one Delta commit, with the WAL position
    /// they cover when this is a flush. Returns the new version.
    pub async fn commit(
        &mut self,
        add: &[DataFile],
        remove: &[DataFile],
        wal: Option<WalSeq>,
        operation: DeltaOperation,
    ) -> Result<u64, StorageError> {
        let mut actions: Vec<Action> = add.iter().map(|f| Action::Add(f.to_add())).collect();
        actions.extend(remove.iter().map(|f| Action::Remove(f.to_remove(true))));
        let mut props = CommitProperties::default();
        if let Some(seq) = wal {
            let v = i64::try_from(seq.0).map_err(|_| StorageError::Corrupt {
                message: format!("WAL position {seq} does not fit a Delta txn version"),
            })?;
            props = props.with_application_transaction(Transaction::new(&self.wal_app_id, v));
        }
        let snapshot = self.table.snapshot().map_err(|e| self.err(e))?;
        let done = CommitBuilder::from(props)
            .with_actions(actions)
            .build(Some(snapshot), self.table.log_store(), operation)
            .await
            .map_err(|e| self.err(e))?;
        let version = done.version();
        self.table.state = Some(done.snapshot());
        Ok(version)
    }

    /// [`MetricsTable::commit`] of an append (a flush) to a table other
    /// processes commit to: re-read first, so the commit is checked against
    /// the latest version, and again after a conflict (a merge or retention
    /// commit that removed files since; deltalake counts an append as
    /// reading every file), up to `attempts` times. The data files are
    /// uploaded once; only the commit is retried.
    pub async fn commit_append_shared(
        &mut self,
        add: &[DataFile],
        wal: Option<WalSeq>,
        operation: DeltaOperation,
        attempts: usize,
    ) -> Result<u64, StorageError> {
        let mut attempt = 1;
        loop {
            self.refresh().await?;
            match self.commit(add, &[], wal, operation.clone()).await {
                Err(e) if e.is_commit_conflict() && attempt < attempts => {
                    tracing::info!(tenant = %self.tenant, attempt, error = %e, "flush commit conflicted with another writer's; retrying on the latest version");
                    attempt += 1;
                }
                done => return done,
            }
        }
    }

    /// Re-reads the log up to its latest version.
    pub async fn refresh(&mut self) -> Result<(), StorageError> {
        self.table.update_state().await.map_err(|e| self.err(e))
    }

    /// Loads the table as of `version` (time travel).
    pub async fn load_version(&mut self, version: u64) -> Result<(), StorageError> {
        self.table
            .load_version(version)
            .await
            .map_err(|e| self.err(e))
    }

    /// Loads the latest version committed at or before `at`.
    pub async fn load_as_of(&mut self, at: DateTime<Utc>) -> Result<(), StorageError> {
        self.table
            .load_with_datetime(at)
            .await
            .map_err(|e| self.err(e))
    }
}

impl MetricsTable {
    /// Physically deletes data files that left the table more than `grace`
    /// ago, and files no commit ever referenced (an interrupted flush's
    /// upload) that are older than `grace`. Returns the deleted keys.
    pub async fn vacuum(
        &mut self,
        grace: std::time::Duration,
        dry_run: bool,
    ) -> Result<Vec<String>, StorageError> {
        let grace = chrono::Duration::from_std(grace).map_err(|e| StorageError::Config {
            message: format!("vacuum grace period: {e}"),
        })?;
        let (table, metrics) = self
            .table
            .clone()
            .vacuum()
            .with_retention_period(grace)
            .with_enforce_retention_duration(false)
            .with_mode(deltalake_core::operations::vacuum::VacuumMode::Full)
            .with_dry_run(dry_run)
            .await
            .map_err(|e| self.err(e))?;
        self.table = table;
        Ok(metrics.files_deleted)
    }
}

/// The retention commit's operation, as Delta history shows it.
pub(crate) fn retention_operation(cutoff: &str) -> DeltaOperation {
    DeltaOperation::Delete {
        predicate: Some(format!("{DAY} < '{cutoff}'")),
    }
}

/// The flush commit's operation, as Delta history shows it.
pub(crate) fn write_operation() -> DeltaOperation {
    DeltaOperation::Write {
        mode: SaveMode::Append,
        partition_by: Some(vec![DAY.to_owned()]),
        predicate: None,
    }
}

/// The compaction commit's operation, as Delta history shows it.
pub(crate) fn compact_operation() -> DeltaOperation {
    DeltaOperation::Optimize {
        predicate: None,
        target_size: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tables written before ingest refused far-out sample times hold
    /// statistics with 5-digit or negative years: they must still open.
    #[test]
    fn statistics_times_outside_four_digit_years_parse() {
        for ms in [
            253_402_300_800_000,
            -62_000_000_000_000,
            0,
            1_700_000_000_123,
        ] {
            assert_eq!(parse_iso_ms(&iso_ms(ms)), Some(ms), "{}", iso_ms(ms));
        }
    }
}
