//! Head → Parquet data files.
//!
//! Rows are written in (metric, series id, timestamp) order, one file per
//! UTC day the head's samples fall in. The writer streams: it reads a few
//! hundred series at a time, hands Arrow batches to the Parquet writer, which
//! uploads through a multipart writer, so memory stays around one row group
//! whatever the head holds. Every byte written is hashed (SHA-256) for
//! `strata verify`.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, Float64Builder, Int64Builder, MapBuilder, MapFieldNames, RecordBatch, StringBuilder,
    TimestampMicrosecondBuilder,
};
use bytes::Bytes;
use chrono::NaiveDate;
use futures::future::BoxFuture;
use object_store::ObjectStore;
use object_store::buffered::BufWriter;
use object_store::path::Path;
use parquet::arrow::AsyncArrowWriter;
use parquet::arrow::async_writer::AsyncFileWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use sha2::{Digest, Sha256};
use strata_head::{SeriesSnapshot, TenantHead};
use strata_types::METRIC_NAME_LABEL;

use crate::paths::{DataFilePath, FileLevel, day_of_ms};
use crate::schema::{MAP_ENTRIES, MAP_KEY, MAP_VALUE, metrics_schema};
use crate::{DataFile, FileCatalog, FileStats, StorageError};

/// Rows per Arrow batch handed to the Parquet writer.
const BATCH_ROWS: usize = 8192;
/// Series read from the head per lock.
const SERIES_PER_READ: usize = 256;
/// Rows per row group: large enough for good compression, small enough
/// that statistics prune a one-metric scan to a few groups.
pub(crate) const ROW_GROUP_ROWS: usize = 1 << 20;

/// Writer settings shared by flush and compaction. Chosen by measurement
/// (docs/BENCHMARKS.md): zstd; timestamps delta-packed; values
/// byte-stream-split; dictionary-coded metric and labels; a bloom filter on
/// series ids; page statistics for page-level pruning.
pub(crate) fn writer_properties(expected_series: u64, level: FileLevel) -> WriterProperties {
    let col = |name: &str| parquet::schema::types::ColumnPath::from(name);
    let label_col = |leaf: &str| {
        parquet::schema::types::ColumnPath::new(vec![
            "labels".to_owned(),
            "key_value".to_owned(),
            leaf.to_owned(),
        ])
    };
    let layout = value_layout(level);
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_statistics_enabled(EnabledStatistics::Page)
        // Leaf column indexes: metric 0, labels key 1 and value 2,
        // series_id 3, timestamp 4, value 5.
        .set_sorting_columns(Some(
            [0, 3, 4]
                .into_iter()
                .map(|column_idx| SortingColumn {
                    column_idx,
                    descending: false,
                    nulls_first: false,
                })
                .collect(),
        ))
        // Label statistics cannot prune anything (a map entry is not a
        // column a predicate names) and cost two comparisons per label per
        // row: most of the writer's time before they were turned off.
        .set_column_statistics_enabled(label_col("key"), EnabledStatistics::None)
        .set_column_statistics_enabled(label_col("value"), EnabledStatistics::None)
        .set_column_dictionary_enabled(col("timestamp"), false)
        .set_column_encoding(col("timestamp"), Encoding::DELTA_BINARY_PACKED)
        .set_column_dictionary_enabled(col("value"), false)
        .set_column_encoding(col("value"), Encoding::BYTE_STREAM_SPLIT)
        .set_column_dictionary_enabled(col("series_id"), false)
        .set_column_encoding(col("series_id"), Encoding::DELTA_BINARY_PACKED)
        .set_column_bloom_filter_enabled(col("series_id"), true)
        .set_column_bloom_filter_fpp(col("series_id"), 0.01)
        .set_column_bloom_filter_max_ndv(col("series_id"), expected_series.max(1))
        .set_dictionary_page_size_limit(4 << 20)
        .set_column_compression(
            col("value"),
            Compression::ZSTD(ZstdLevel::try_new(layout.zstd).unwrap_or_default()),
        )
        .set_data_page_row_count_limit(layout.page_rows)
        // Byte budgets large enough that the row count ends a page.
        .set_data_page_size_limit((layout.page_rows * 8).max(1 << 20))
        .build()
}

/// How a file of each level encodes its `value` column (95% of a file's
/// bytes): zstd level, and rows per data page (every column's pages end at
/// the same row count, which is what page-index pruning selects by).
///
/// Byte-stream-split makes 8 streams of each page's values and zstd
/// compresses the page whole, so the page size is the context zstd sees:
/// measured on day files of the load generator's workload
/// (docs/BENCHMARKS.md), 20,000-row pages at zstd 15 hold 1.031-1.057
/// bytes/sample; 1M-row pages at zstd 17 (the first level whose window,
/// 8 MiB, spans such a page) 0.82-0.86, and write at 1.0-1.3M rows/s.
/// Large pages cost selective reads (a scan for one series decompresses
/// its whole page: +12 ms per series and day file), so only day files,
/// the final form, use them; flush files (merged within the hour) stay
/// small and fast, hour files sit between.
pub(crate) struct ValueLayout {
    pub(crate) zstd: i32,
    pub(crate) page_rows: usize,
}

pub(crate) fn value_layout(level: FileLevel) -> ValueLayout {
    match level {
        FileLevel::Flush => ValueLayout {
            zstd: 1,
            page_rows: 20_000,
        },
        FileLevel::Hour => ValueLayout {
            zstd: 3,
            page_rows: 1 << 18,
        },
        FileLevel::Day => ValueLayout {
            zstd: 17,
            page_rows: ROW_GROUP_ROWS,
        },
    }
}

/// Forwards to the object-store writer, hashing and counting every byte.
pub(crate) struct HashingWriter {
    inner: BufWriter,
    hasher: Sha256,
    bytes: u64,
}

impl HashingWriter {
    /// Uploads to `path` in `store`.
    pub(crate) fn new(store: Arc<dyn ObjectStore>, path: Path) -> Self {
        Self {
            inner: BufWriter::new(store, path),
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    /// Bytes written and their SHA-256, hex (once the upload completed).
    pub(crate) fn digest(self) -> (u64, String) {
        (self.bytes, hex::encode(self.hasher.finalize()))
    }
}

impl AsyncFileWriter for HashingWriter {
    fn write(&mut self, bs: Bytes) -> BoxFuture<'_, parquet::errors::Result<()>> {
        self.hasher.update(&bs);
        self.bytes += bs.len() as u64;
        AsyncFileWriter::write(&mut self.inner, bs)
    }

    fn complete(&mut self) -> BoxFuture<'_, parquet::errors::Result<()>> {
        AsyncFileWriter::complete(&mut self.inner)
    }
}

/// A data file being written.
pub(crate) struct FileWriter {
    path: DataFilePath,
    writer: AsyncArrowWriter<HashingWriter>,
    rows: Rows,
    stats: FileStats,
    written_ms: i64,
    /// Metric → label names and series count, stored in the footer.
    catalog: FileCatalog,
    /// The series the last row belonged to (rows come series by series).
    last_series: Option<i64>,
}

impl FileWriter {
    pub(crate) fn try_new(
        store: Arc<dyn ObjectStore>,
        table: &Path,
        day: NaiveDate,
        level: FileLevel,
        expected_series: u64,
    ) -> Result<Self, StorageError> {
        let path = DataFilePath::new(day, level);
        let sink = HashingWriter::new(store, path.under(table));
        let writer = AsyncArrowWriter::try_new(
            sink,
            metrics_schema(),
            Some(writer_properties(expected_series, level)),
        )?;
        Ok(Self {
            path,
            writer,
            rows: Rows::new(),
            stats: FileStats::default(),
            written_ms: chrono::Utc::now().timestamp_millis(),
            catalog: FileCatalog::default(),
            last_series: None,
        })
    }

    /// Sets when the newest write in the file happened (compaction keeps
    /// its inputs' newest).
    pub(crate) fn set_written_ms(&mut self, ms: i64) {
        self.written_ms = ms;
    }

    /// Appends a batch already in [`metrics_schema`] and in file order.
    pub(crate) async fn push_batch(&mut self, batch: &RecordBatch) -> Result<(), StorageError> {
        use arrow::array::AsArray;
        use arrow::datatypes::{Float64Type, Int64Type, TimestampMicrosecondType};

        let metric = batch.column(crate::col::METRIC).as_string::<i32>();
        let ids = batch
            .column(crate::col::SERIES_ID)
            .as_primitive::<Int64Type>();
        let ts = batch
            .column(crate::col::TIMESTAMP)
            .as_primitive::<TimestampMicrosecondType>();
        let values = batch
            .column(crate::col::VALUE)
            .as_primitive::<Float64Type>();
        let labels = batch.column(crate::col::LABELS).as_map();
        for i in 0..batch.num_rows() {
            if self.last_series != Some(ids.value(i)) {
                self.last_series = Some(ids.value(i));
                let entries = labels.value(i);
                let names = entries.column(0).as_string::<i32>();
                self.catalog
                    .add_series(metric.value(i), names.iter().flatten());
            }
            self.stats.observe(
                metric.value(i),
                ids.value(i),
                ts.value(i).div_euclid(1000),
                values.value(i),
            );
        }
        self.writer.write(batch).await?;
        Ok(())
    }

    /// Appends rows of one series (`samples` in timestamp order).
    pub(crate) async fn push_series(
        &mut self,
        metric: &str,
        labels: &[(Arc<str>, Arc<str>)],
        series_id: i64,
        samples: impl Iterator<Item = (i64, f64)>,
    ) -> Result<(), StorageError> {
        if self.last_series != Some(series_id) {
            self.last_series = Some(series_id);
            self.catalog.add_series(
                metric,
                labels
                    .iter()
                    .map(|(n, _)| &**n)
                    .filter(|n| *n != METRIC_NAME_LABEL),
            );
        }
        for (ts_ms, value) in samples {
            self.stats.observe(metric, series_id, ts_ms, value);
            self.rows.push(metric, labels, series_id, ts_ms, value);
            if self.rows.len >= BATCH_ROWS {
                let batch = self.rows.finish()?;
                self.writer.write(&batch).await?;
            }
        }
        Ok(())
    }

    /// Writes the footer, completes the upload, and describes the file.
    pub(crate) async fn finish(mut self) -> Result<DataFile, StorageError> {
        if self.rows.len > 0 {
            let batch = self.rows.finish()?;
            self.writer.write(&batch).await?;
        }
        self.writer
            .append_key_value_metadata(parquet::file::metadata::KeyValue::new(
                FileCatalog::KEY.to_owned(),
                self.catalog.to_json(),
            ));
        // Writes the footer and completes the upload.
        self.writer.finish().await?;
        let (size, sha256) = self.writer.into_inner().digest();
        Ok(DataFile {
            signal: crate::Signal::Metrics,
            path: self.path,
            size,
            sha256: Some(sha256),
            stats: self.stats,
            written_ms: self.written_ms,
        })
    }
}

/// Writes a frozen head as data files, one per UTC day. Files already
/// uploaded when an error strikes are left for vacuum (nothing references
/// them).
pub(crate) async fn write_head(
    head: &TenantHead,
    store: &Arc<dyn ObjectStore>,
    table: &Path,
) -> Result<Vec<DataFile>, StorageError> {
    let refs = head.series_in_flush_order();
    let expected = refs.len() as u64;
    let mut writers: BTreeMap<NaiveDate, FileWriter> = BTreeMap::new();
    for chunk in refs.chunks(SERIES_PER_READ) {
        let series = head.read_series(chunk, i64::MIN, i64::MAX);
        for s in &series {
            write_series(s, store, table, expected, &mut writers).await?;
        }
    }
    let mut files = Vec::with_capacity(writers.len());
    for (_, w) in writers {
        files.push(w.finish().await?);
    }
    Ok(files)
}

async fn write_series(
    s: &SeriesSnapshot,
    store: &Arc<dyn ObjectStore>,
    table: &Path,
    expected: u64,
    writers: &mut BTreeMap<NaiveDate, FileWriter>,
) -> Result<(), StorageError> {
    let metric = s.label(METRIC_NAME_LABEL).unwrap_or_default();
    let id = s.id.0 as i64;
    let mut rest = &s.samples[..];
    while let Some(first) = rest.first() {
        let day = day_of_ms(first.timestamp_ms);
        let n = rest
            .iter()
            .position(|x| day_of_ms(x.timestamp_ms) != day)
            .unwrap_or(rest.len());
        let (today, later) = rest.split_at(n);
        let w = match writers.entry(day) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => e.insert(FileWriter::try_new(
                Arc::clone(store),
                table,
                day,
                FileLevel::Flush,
                expected,
            )?),
        };
        w.push_series(
            metric,
            &s.labels,
            id,
            today.iter().map(|x| (x.timestamp_ms, x.value)),
        )
        .await?;
        rest = later;
    }
    Ok(())
}

/// Column builders for one batch.
pub(crate) struct Rows {
    pub(crate) len: usize,
    metric: StringBuilder,
    labels: MapBuilder<StringBuilder, StringBuilder>,
    series_id: Int64Builder,
    timestamp: TimestampMicrosecondBuilder,
    value: Float64Builder,
}

impl Rows {
    pub(crate) fn new() -> Self {
        let names = MapFieldNames {
            entry: MAP_ENTRIES.into(),
            key: MAP_KEY.into(),
            value: MAP_VALUE.into(),
        };
        Self {
            len: 0,
            metric: StringBuilder::new(),
            labels: MapBuilder::new(Some(names), StringBuilder::new(), StringBuilder::new())
                .with_values_field(Arc::new(arrow::datatypes::Field::new(
                    MAP_VALUE,
                    arrow::datatypes::DataType::Utf8,
                    false,
                ))),
            series_id: Int64Builder::new(),
            timestamp: TimestampMicrosecondBuilder::new().with_timezone("UTC"),
            value: Float64Builder::new(),
        }
    }

    /// One sample; `labels` include `__name__`, which is left out of the map.
    pub(crate) fn push(
        &mut self,
        metric: &str,
        labels: &[(Arc<str>, Arc<str>)],
        series_id: i64,
        ts_ms: i64,
        value: f64,
    ) {
        self.len += 1;
        self.metric.append_value(metric);
        for (n, v) in labels {
            if &**n != METRIC_NAME_LABEL {
                self.labels.keys().append_value(n);
                self.labels.values().append_value(v);
            }
        }
        // Fails only on mismatched key/value counts, ruled out above.
        let _ = self.labels.append(true);
        self.series_id.append_value(series_id);
        self.timestamp.append_value(ts_ms.saturating_mul(1000));
        self.value.append_value(value);
    }

    pub(crate) fn finish(&mut self) -> Result<RecordBatch, StorageError> {
        self.len = 0;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.metric.finish()),
            Arc::new(self.labels.finish()),
            Arc::new(self.series_id.finish()),
            Arc::new(self.timestamp.finish()),
            Arc::new(self.value.finish()),
        ];
        Ok(RecordBatch::try_new(metrics_schema(), columns)?)
    }
}
