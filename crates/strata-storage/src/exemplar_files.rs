//! The exemplars table's files (docs/DESIGN.md, "Wire compatibility"):
//! written at a flush from what the exemplar store took since the one
//! before, read back for `/api/v1/query_exemplars`, and a day's files
//! merged into one by compaction.
//!
//! Exemplars are few beside samples (bounded per series and tenant in
//! memory, one per scrape at most): a file is one row group, built in
//! memory, rows in (series id, time) order, one file per UTC day.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use arrow::array::{
    ArrayRef, AsArray, Float64Builder, Int64Builder, RecordBatch, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow::datatypes::{Float64Type, Int64Type, TimestampMicrosecondType};
use bytes::Bytes;
use chrono::NaiveDate;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::async_writer::AsyncFileWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use strata_head::Matcher;
use strata_types::{Exemplar, Label, Labels, METRIC_NAME_LABEL, SeriesExemplars};

use crate::logs_writer::map_builder;
use crate::paths::{DataFilePath, FileLevel, Signal, day_of_ms};
use crate::schema::{exemplars, exemplars_schema, map_row};
use crate::writer::HashingWriter;
use crate::{DataFile, FileStats, StorageError};

/// One stored exemplar and its series (shared by the series' rows).
pub type ExemplarRow = (Arc<Labels>, Exemplar);

/// Writes `rows` as data files of the exemplars table under `table`, one
/// per UTC day, at `level`. Files already uploaded when an error strikes
/// are left for vacuum.
pub(crate) async fn write_exemplars(
    mut rows: Vec<ExemplarRow>,
    store: &Arc<dyn ObjectStore>,
    table: &Path,
    level: FileLevel,
) -> Result<Vec<DataFile>, StorageError> {
    rows.sort_by(|a, b| {
        (
            day_of_ms(a.1.timestamp_ms),
            a.0.series_id().0 as i64,
            a.1.timestamp_ms,
        )
            .cmp(&(
                day_of_ms(b.1.timestamp_ms),
                b.0.series_id().0 as i64,
                b.1.timestamp_ms,
            ))
    });
    let mut days: BTreeMap<NaiveDate, Vec<ExemplarRow>> = BTreeMap::new();
    for row in rows {
        days.entry(day_of_ms(row.1.timestamp_ms))
            .or_default()
            .push(row);
    }
    let mut files = Vec::with_capacity(days.len());
    for (day, rows) in days {
        files.push(write_file(day, &rows, store, table, level).await?);
    }
    Ok(files)
}

async fn write_file(
    day: NaiveDate,
    rows: &[ExemplarRow],
    store: &Arc<dyn ObjectStore>,
    table: &Path,
    level: FileLevel,
) -> Result<DataFile, StorageError> {
    let mut series_columns = SeriesColumns::default();
    let mut value = Float64Builder::new();
    let mut exemplar = map_builder();
    for (series, e) in rows {
        series_columns.push(series, e.timestamp_ms, e.value);
        value.append_value(e.value);
        for (n, v) in &e.labels {
            exemplar.keys().append_value(n);
            exemplar.values().append_value(v);
        }
        let _ = exemplar.append(true);
    }
    let (mut columns, stats) = series_columns.finish();
    columns.push(Arc::new(value.finish()));
    columns.push(Arc::new(exemplar.finish()));
    let batch = RecordBatch::try_new(exemplars_schema(), columns)?;
    write_one_group(&batch, Signal::Exemplars, day, stats, store, table, level).await
}

/// The series columns a side table's file starts with (`metric`,
/// `labels` without `__name__`, `series_id`, `timestamp` in µs) and the
/// file's statistics, built row by row.
pub(crate) struct SeriesColumns {
    metric: StringBuilder,
    labels: arrow::array::MapBuilder<StringBuilder, StringBuilder>,
    series_id: Int64Builder,
    timestamp: TimestampMicrosecondBuilder,
    stats: FileStats,
}

impl Default for SeriesColumns {
    fn default() -> Self {
        Self {
            metric: StringBuilder::new(),
            labels: map_builder(),
            series_id: Int64Builder::new(),
            timestamp: TimestampMicrosecondBuilder::new().with_timezone("UTC"),
            stats: FileStats::default(),
        }
    }
}

impl SeriesColumns {
    /// One row of `series` at `ts_ms`; `value` goes to the statistics.
    pub(crate) fn push(&mut self, series: &Labels, ts_ms: i64, value: f64) {
        let id = series.series_id().0 as i64;
        let name = series.metric_name();
        self.stats.observe(name, id, ts_ms, value);
        self.metric.append_value(name);
        for l in series.iter().filter(|l| l.name != METRIC_NAME_LABEL) {
            self.labels.keys().append_value(&l.name);
            self.labels.values().append_value(&l.value);
        }
        // Fails only on mismatched key/value counts, ruled out above.
        let _ = self.labels.append(true);
        self.series_id.append_value(id);
        self.timestamp.append_value(ts_ms.saturating_mul(1000));
    }

    pub(crate) fn finish(mut self) -> (Vec<ArrayRef>, FileStats) {
        (
            vec![
                Arc::new(self.metric.finish()),
                Arc::new(self.labels.finish()),
                Arc::new(self.series_id.finish()),
                Arc::new(self.timestamp.finish()),
            ],
            self.stats,
        )
    }
}

/// Row `i`'s series from a side table's `metric` and `labels` columns.
pub(crate) fn series_of(
    metric: &arrow::array::StringArray,
    labels: &arrow::array::MapArray,
    i: usize,
) -> Option<Labels> {
    let mut series: Vec<Label> = map_row(labels, i)
        .into_iter()
        .map(|(n, v)| Label::new(n, v))
        .collect();
    series.push(Label::new(METRIC_NAME_LABEL, metric.value(i)));
    Labels::try_from_unsorted(series).ok()
}

/// Writes `batch` as one data file of `signal`'s table under `table`
/// (one row group, zstd), at `level`, of `day`.
pub(crate) async fn write_one_group(
    batch: &RecordBatch,
    signal: Signal,
    day: NaiveDate,
    stats: FileStats,
    store: &Arc<dyn ObjectStore>,
    table: &Path,
    level: FileLevel,
) -> Result<DataFile, StorageError> {
    let mut props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_dictionary_page_size_limit(4 << 20);
    if signal == Signal::Histograms {
        use parquet::basic::Encoding;
        use parquet::schema::types::ColumnPath;
        // Bucket counts and sums are floats that change from sample to
        // sample: split into byte streams, not dictionaries (which
        // overflow on a day file and fall back to plain); indexes and
        // times are deltas.
        let by = |props: parquet::file::properties::WriterPropertiesBuilder,
                  columns: &[&str],
                  encoding| {
            columns.iter().fold(props, |p, c| {
                let path = ColumnPath::from(c.split('.').map(str::to_owned).collect::<Vec<_>>());
                p.set_column_dictionary_enabled(path.clone(), false)
                    .set_column_encoding(path, encoding)
            })
        };
        props = by(
            props,
            &[
                "sum",
                "count",
                "positive_counts.list.element",
                "negative_counts.list.element",
            ],
            Encoding::BYTE_STREAM_SPLIT,
        );
        props = by(
            props,
            &[
                "timestamp",
                "series_id",
                "positive_buckets.list.element",
                "negative_buckets.list.element",
            ],
            Encoding::DELTA_BINARY_PACKED,
        );
    }
    let mut writer = ArrowWriter::try_new(Vec::new(), batch.schema(), Some(props.build()))?;
    writer.write(batch)?;
    let bytes = writer.into_inner()?;
    let path = DataFilePath::new(day, level);
    let mut sink = HashingWriter::new(Arc::clone(store), path.under(table));
    sink.write(Bytes::from(bytes)).await?;
    sink.complete().await?;
    let (size, sha256) = sink.digest();
    Ok(DataFile {
        signal,
        path,
        size,
        sha256: Some(sha256),
        stats,
        written_ms: chrono::Utc::now().timestamp_millis(),
        series_order: crate::SeriesOrder::Id,
    })
}

/// Every row of one data file.
pub(crate) async fn read_file(
    store: &Arc<dyn ObjectStore>,
    table: &Path,
    file: &DataFile,
) -> Result<Vec<ExemplarRow>, StorageError> {
    let bytes = store.get(&file.path.under(table)).await?.bytes().await?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)?.build()?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch?;
        rows_of(&batch, &mut out)?;
    }
    Ok(out)
}

fn rows_of(batch: &RecordBatch, out: &mut Vec<ExemplarRow>) -> Result<(), StorageError> {
    use exemplars::col;
    let corrupt = |what: &str| StorageError::Corrupt {
        message: format!("exemplars file: {what}"),
    };
    let metric = batch.column(col::METRIC).as_string_opt::<i32>();
    let labels = batch.column(col::LABELS).as_map_opt();
    let ts = batch
        .column(col::TIMESTAMP)
        .as_primitive_opt::<TimestampMicrosecondType>();
    let value = batch.column(col::VALUE).as_primitive_opt::<Float64Type>();
    let exemplar = batch.column(col::EXEMPLAR).as_map_opt();
    let ids = batch.column(col::SERIES_ID).as_primitive_opt::<Int64Type>();
    let (Some(metric), Some(labels), Some(ts), Some(value), Some(exemplar), Some(_)) =
        (metric, labels, ts, value, exemplar, ids)
    else {
        return Err(corrupt("unexpected column types"));
    };
    for i in 0..batch.num_rows() {
        let Some(series) = series_of(metric, labels, i) else {
            return Err(corrupt("a row's labels are not a valid series"));
        };
        out.push((
            Arc::new(series),
            Exemplar {
                labels: map_row(exemplar, i),
                value: value.value(i),
                timestamp_ms: ts.value(i).div_euclid(1000),
            },
        ));
    }
    Ok(())
}

/// Merges a compaction job's exemplar files into one (each exemplar
/// once); the merged file is written at the job's level, as old as its
/// newest input.
pub(crate) async fn merge(
    store: &Arc<dyn ObjectStore>,
    table: &Path,
    job: &crate::compact::CompactionJob,
) -> Result<(DataFile, crate::merge::MergeStats), StorageError> {
    let mut rows = Vec::new();
    for f in &job.inputs {
        rows.extend(read_file(store, table, f).await?);
    }
    let rows_in = rows.len() as u64;
    let mut seen = HashSet::new();
    rows.retain(|(labels, e)| {
        seen.insert((
            labels.series_id(),
            e.timestamp_ms,
            e.value.to_bits(),
            e.labels.clone(),
        ))
    });
    let rows_out = rows.len() as u64;
    let mut files = write_exemplars(rows, store, table, job.level).await?;
    // Every input is of the job's day: one file out (none for inputs
    // without rows, which a flush never writes).
    let Some(mut file) = files.pop().filter(|_| files.is_empty()) else {
        return Err(StorageError::Corrupt {
            message: format!(
                "exemplar files of {} did not merge into one file of that day",
                job.day
            ),
        });
    };
    file.written_ms = job.newest_written_ms();
    Ok((file, crate::merge::MergeStats { rows_in, rows_out }))
}

/// Whether `labels` match every matcher of one of `selectors`.
pub(crate) fn selected(labels: &Labels, selectors: &[Vec<Matcher>]) -> bool {
    selectors.iter().any(|matchers| {
        matchers
            .iter()
            .all(|m| m.matches(labels.get(&m.name).unwrap_or("")))
    })
}

/// Joins exemplars from the store and the files: each exemplar once
/// (series, time, value and labels alike), series in label order, each
/// series' exemplars in time order.
pub fn join(parts: impl IntoIterator<Item = SeriesExemplars>) -> Vec<SeriesExemplars> {
    type Key = Vec<(String, String)>;
    let mut by_series: BTreeMap<Key, (Labels, Vec<Exemplar>)> = BTreeMap::new();
    for part in parts {
        let key: Vec<(String, String)> = part
            .labels
            .iter()
            .map(|l| (l.name.clone(), l.value.clone()))
            .collect();
        by_series
            .entry(key)
            .or_insert_with(|| (part.labels.clone(), Vec::new()))
            .1
            .extend(part.exemplars);
    }
    by_series
        .into_values()
        .map(|(labels, mut exemplars)| {
            exemplars.sort_by(|a, b| {
                a.timestamp_ms
                    .cmp(&b.timestamp_ms)
                    .then(a.value.total_cmp(&b.value))
                    .then_with(|| a.labels.cmp(&b.labels))
            });
            let mut seen = HashSet::new();
            exemplars
                .retain(|e| seen.insert((e.timestamp_ms, e.value.to_bits(), e.labels.clone())));
            SeriesExemplars { labels, exemplars }
        })
        .collect()
}

/// The exemplars in `[start_ms, end_ms]` of the series `selectors` pick,
/// from the files of the exemplars table at `table` whose time range
/// meets it.
pub async fn select_from_files(
    store: &Arc<dyn ObjectStore>,
    table: &Path,
    files: &[DataFile],
    selectors: &[Vec<Matcher>],
    start_ms: i64,
    end_ms: i64,
) -> Result<Vec<SeriesExemplars>, StorageError> {
    let mut out = Vec::new();
    for f in files
        .iter()
        .filter(|f| f.stats.min_ts_ms <= end_ms && f.stats.max_ts_ms >= start_ms)
    {
        for (labels, e) in read_file(store, table, f).await? {
            if (start_ms..=end_ms).contains(&e.timestamp_ms) && selected(&labels, selectors) {
                out.push(SeriesExemplars {
                    labels: Arc::unwrap_or_clone(labels),
                    exemplars: vec![e],
                });
            }
        }
    }
    Ok(join(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(job: &str, ts: i64, trace: &str) -> ExemplarRow {
        (
            Arc::new(
                Labels::try_from_unsorted(vec![
                    Label::new("__name__", "req_total"),
                    Label::new("job", job),
                ])
                .unwrap(),
            ),
            Exemplar {
                labels: vec![("trace_id".into(), trace.into())],
                value: 0.5,
                timestamp_ms: ts,
            },
        )
    }

    #[tokio::test]
    async fn files_round_trip_by_day_and_selection() {
        let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        let table = Path::from("tenants/t/exemplars");
        let day = 86_400_000;
        let rows = vec![row("b", 10, "x"), row("a", day + 5, "y"), row("a", 20, "z")];
        let files = write_exemplars(rows, &store, &table, FileLevel::Flush)
            .await
            .unwrap();
        assert_eq!(files.len(), 2, "one file per day");
        assert_eq!(files[0].stats.rows, 2);
        let all = [vec![Matcher::equal("__name__", "req_total")]];
        let got = select_from_files(&store, &table, &files, &all, 0, 2 * day)
            .await
            .unwrap();
        let flat: Vec<(String, i64)> = got
            .iter()
            .flat_map(|s| {
                s.exemplars
                    .iter()
                    .map(|e| (s.labels.get("job").unwrap().to_owned(), e.timestamp_ms))
            })
            .collect();
        assert_eq!(
            flat,
            vec![("a".into(), 20), ("a".into(), day + 5), ("b".into(), 10)]
        );
        let only_b = [vec![Matcher::equal("job", "b")]];
        let got = select_from_files(&store, &table, &files, &only_b, 0, day)
            .await
            .unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(
            got[0].exemplars[0].labels,
            vec![("trace_id".to_owned(), "x".to_owned())]
        );
        // Joined with the same rows again (the store's copy): each once.
        let twice = join(got.clone().into_iter().chain(got.clone()));
        assert_eq!(twice, got);
    }
}
