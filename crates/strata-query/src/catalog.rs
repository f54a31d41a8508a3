//! The natural schema: one SQL table per metric, whose columns are the
//! label names its series use plus `timestamp` and `value`.
//!
//! Built per session from the series catalog: the head's (kept up to date
//! at series creation) and each data file's (written into its footer by
//! the storage writer; for files written before that, read once from the
//! file). File catalogs are cached by path, files being immutable.
//!
//! A metric table ([`MetricTable`]) reads `samples` restricted to the
//! metric and looks each label column up by series id.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::{SchemaProvider, TableProvider};
use datafusion::datasource::{ViewTable, provider_as_source};
use datafusion::error::Result;
use datafusion::logical_expr::{LogicalPlanBuilder, col, lit};
use datafusion::parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
#[allow(deprecated)]
use datafusion::parquet::arrow::async_reader::ParquetObjectReader;
use futures::StreamExt;
use object_store::ObjectStore;
use object_store::path::Path;
use parking_lot::Mutex;
use strata_storage::{DataFile, FileCatalog, TenantView};

use crate::metric_table::{MetricTable, SeriesLabelSource};
use crate::series_labels::{FileSeriesCache, read_labels};

/// Footers read at once when a session meets files it has not seen.
const FOOTER_READS: usize = 8;

/// File catalogs by path.
#[derive(Debug, Default)]
pub struct CatalogCache {
    map: Mutex<HashMap<String, Arc<FileCatalog>>>,
}

/// Files remembered before the cache starts over.
const FILE_ENTRIES: usize = 100_000;

impl CatalogCache {
    /// `file`'s catalog: from its footer, or (files written before footers
    /// carried one) from one row per series.
    async fn file(
        &self,
        store: &Arc<dyn ObjectStore>,
        table_root: &Path,
        file: &DataFile,
        series: &FileSeriesCache,
    ) -> Result<Arc<FileCatalog>> {
        let path = file.path.under(table_root);
        if let Some(c) = self.map.lock().get(path.as_ref()) {
            return Ok(Arc::clone(c));
        }
        #[allow(deprecated)]
        let mut reader =
            ParquetObjectReader::new(Arc::clone(store), path.clone()).with_file_size(file.size);
        let meta = ArrowReaderMetadata::load_async(&mut reader, ArrowReaderOptions::new()).await?;
        let from_footer = meta
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .into_iter()
            .flatten()
            .find(|kv| kv.key == FileCatalog::KEY)
            .and_then(|kv| kv.value.as_deref())
            .and_then(FileCatalog::from_json);
        let catalog = match from_footer {
            Some(c) => c,
            None => {
                let ids: HashSet<i64> = series
                    .series(store, &path, file.size)
                    .await?
                    .iter()
                    .copied()
                    .collect();
                let mut c = FileCatalog::default();
                for (_, labels) in read_labels(store, &path, file.size, &ids).await? {
                    let metric = labels.value(strata_types::METRIC_NAME_LABEL).to_owned();
                    c.add_series(
                        &metric,
                        labels
                            .iter()
                            .map(|(n, _)| n)
                            .filter(|n| *n != strata_types::METRIC_NAME_LABEL),
                    );
                }
                c
            }
        };
        let catalog = Arc::new(catalog);
        let mut map = self.map.lock();
        if map.len() >= FILE_ENTRIES {
            map.clear();
        }
        map.insert(path.to_string(), Arc::clone(&catalog));
        Ok(catalog)
    }
}

/// One metric as SQL sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricInfo {
    pub labels: BTreeSet<String>,
    /// Series in memory now.
    pub active_series: u64,
    /// Series summed over data files (a series stored in several files,
    /// e.g. one per day, counts once per file).
    pub file_series: u64,
    /// Data files holding the metric.
    pub files: u64,
}

/// Every metric of a tenant's view: the heads', and with `files` the data
/// files' too. A file whose catalog cannot be read (the store is down) is
/// left out with a warning: its metrics may lack columns until it can be,
/// and a scan of it would fail with the store's own error anyway.
pub async fn tenant_catalog(
    view: &TenantView,
    cache: &CatalogCache,
    series: &FileSeriesCache,
    files: bool,
) -> BTreeMap<String, MetricInfo> {
    let mut out: BTreeMap<String, MetricInfo> = BTreeMap::new();
    for head in &view.heads {
        for m in head.metric_catalog() {
            let info = out.entry(m.metric.to_string()).or_default();
            info.active_series += m.series;
            info.labels.extend(m.labels.iter().map(|l| l.to_string()));
        }
    }
    if !files {
        return out;
    }
    let store = Arc::clone(view.store.store());
    let reads: Vec<_> = view
        .files
        .iter()
        .map(|f| cache.file(&store, &view.table_root, f, series))
        .collect();
    let catalogs: Vec<Result<Arc<FileCatalog>>> = futures::stream::iter(reads)
        .buffered(FOOTER_READS)
        .collect()
        .await;
    for c in catalogs {
        let c = match c {
            Ok(c) => c,
            Err(error) => {
                tracing::warn!(%error, "a data file's catalog could not be read; its metrics' columns may be incomplete");
                continue;
            }
        };
        for (metric, m) in &c.metrics {
            let info = out.entry(metric.clone()).or_default();
            info.file_series += m.series;
            info.files += 1;
            for l in &m.labels {
                if !info.labels.contains(l) {
                    info.labels.insert(l.clone());
                }
            }
        }
    }
    out
}

/// Whether a statement may name a table only the data files' catalogs can
/// describe (a metric table, `metrics.*`, `information_schema.*`, or one it
/// cannot tell): only then does a session read them. Statements over
/// `samples`, `series` and `system.*` don't, so they never wait on the
/// store for tables they don't use.
pub fn needs_file_catalogs(sql: &str) -> bool {
    use datafusion::sql::parser::DFParser;
    let Ok(statements) = DFParser::parse_sql(sql) else {
        return true;
    };
    statements.iter().any(|statement| {
        let Ok((references, _)) =
            datafusion::sql::resolve::resolve_table_references(statement, true)
        else {
            return true;
        };
        references.iter().any(|r| match (r.schema(), r.table()) {
            (None | Some("public"), "samples" | "series" | "logs" | "histograms") => false,
            (Some("system"), table) => table == "metrics",
            _ => true,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::needs_file_catalogs;

    #[test]
    fn only_statements_naming_catalog_tables_read_file_catalogs() {
        for sql in [
            "SELECT count(*) FROM samples",
            "SELECT * FROM series s JOIN public.samples p USING (series_id)",
            "SELECT * FROM system.wal",
        ] {
            assert!(!needs_file_catalogs(sql), "{sql}");
        }
        for sql in [
            "SELECT * FROM up",
            "SELECT * FROM metrics.samples",
            "SELECT * FROM information_schema.tables",
            "SELECT * FROM system.metrics",
            "SELECT 1; SELECT * FROM up",
            "SELEC nonsense",
        ] {
            assert!(needs_file_catalogs(sql), "{sql}");
        }
    }
}

/// A schema whose tables are the tenant's metrics, after any built-in
/// tables it holds (a metric named like a built-in is reachable through
/// the `metrics` schema, which has no built-ins).
#[derive(Debug)]
pub struct MetricSchema {
    samples: Arc<dyn TableProvider>,
    metrics: Arc<BTreeMap<String, MetricInfo>>,
    builtins: BTreeMap<String, Arc<dyn TableProvider>>,
    labels: Arc<SeriesLabelSource>,
}

impl MetricSchema {
    pub(crate) fn new(
        samples: Arc<dyn TableProvider>,
        metrics: Arc<BTreeMap<String, MetricInfo>>,
        builtins: BTreeMap<String, Arc<dyn TableProvider>>,
        labels: Arc<SeriesLabelSource>,
    ) -> Self {
        Self {
            samples,
            metrics,
            builtins,
            labels,
        }
    }

    fn view(&self, metric: &str, info: &MetricInfo) -> Result<Arc<dyn TableProvider>> {
        Ok(Arc::new(MetricTable::new(
            Arc::clone(&self.samples),
            metric,
            info.labels.iter().cloned(),
            Arc::clone(&self.labels),
        )?))
    }
}

#[async_trait]
impl SchemaProvider for MetricSchema {
    fn table_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.builtins.keys().cloned().collect();
        names.extend(
            self.metrics
                .keys()
                .filter(|m| !self.builtins.contains_key(*m))
                .cloned(),
        );
        names
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        if let Some(t) = self.builtins.get(name) {
            return Ok(Some(Arc::clone(t)));
        }
        match self.metrics.get(name) {
            Some(info) => self.view(name, info).map(Some),
            None => Ok(None),
        }
    }

    fn table_exist(&self, name: &str) -> bool {
        self.builtins.contains_key(name) || self.metrics.contains_key(name)
    }
}

/// `series`: one row per series with its labels and the time span of its
/// samples. A grouping of `samples` (a scan, not a catalog lookup).
pub fn series_view(samples: &Arc<dyn TableProvider>) -> Result<Arc<dyn TableProvider>> {
    use datafusion::functions_aggregate::expr_fn::{count, first_value, max, min};
    let source = provider_as_source(Arc::clone(samples));
    let plan = LogicalPlanBuilder::scan("samples", source, None)?
        .aggregate(
            vec![col("metric"), col("series_id")],
            vec![
                first_value(col("labels"), Vec::new()).alias("labels"),
                min(col("timestamp")).alias("first_seen"),
                max(col("timestamp")).alias("last_seen"),
                count(lit(1)).alias("samples"),
            ],
        )?
        .build()?;
    Ok(Arc::new(ViewTable::new(plan, None)))
}
