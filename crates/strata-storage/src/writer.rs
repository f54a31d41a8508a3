//! Head → Parquet data files.
//!
//! Rows are written in (metric, series, timestamp) order, series in storage
//! order ([`strata_types::cmp_series_order`]; by series id for a day whose
//! files were written before it), one file per
//! UTC day the head's samples fall in. The writer streams: it reads a few
//! hundred series at a time, hands Arrow batches to the Parquet writer, which
//! uploads through a multipart writer, so memory stays around one row group
//! whatever the head holds. Every byte written is hashed (SHA-256) for
//! `strata verify`.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, Float64Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder,
};
use bytes::Bytes;
use chrono::NaiveDate;
use futures::future::BoxFuture;
use object_store::ObjectStore;
use object_store::buffered::BufWriter;
use object_store::path::Path;
use parquet::arrow::ArrowSchemaConverter;
use parquet::arrow::add_encoded_arrow_schema_to_metadata;
use parquet::arrow::arrow_writer::{ArrowColumnWriter, ArrowRowGroupWriterFactory, compute_leaves};
use parquet::arrow::async_writer::AsyncFileWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::writer::SerializedFileWriter;
use sha2::{Digest, Sha256};
use strata_head::{SeriesSnapshot, TenantHead};
use strata_types::METRIC_NAME_LABEL;

use crate::labels_chunk::{LabelsColumn, Leaf};
use crate::paths::{DataFilePath, FileLevel, day_of_ms};
use crate::schema::{MAP_ENTRIES, MAP_KEY, MAP_VALUE, metrics_schema};
use crate::series_index::{SeriesIndex, SeriesIndexLocation, SeriesIndexWriter};
use crate::{DataFile, FileCatalog, FileStats, SeriesOrder, StorageError};

/// Rows per Arrow batch handed to the Parquet writer.
const BATCH_ROWS: usize = 8192;
/// Series read from the head per lock.
const SERIES_PER_READ: usize = 256;
/// Rows per row group: large enough for good compression, small enough
/// that statistics prune a one-metric scan to a few groups.
pub(crate) const ROW_GROUP_ROWS: usize = 1 << 20;

/// Label dictionary bytes that end a row group early.
const GROUP_DICTIONARY_BYTES: usize = 64 << 20;

/// A row group holding at least 1/`METRIC_CUT` of its rows ends where the
/// next metric begins, so a one-metric read decodes few rows of other
/// metrics (day files' pages are whole row groups, zstd-compressed: a
/// metric straddling two full groups decoded up to twice its rows), while
/// small metrics still share a group and keep zstd's context large.
const METRIC_CUT: usize = 4;

/// Writer settings shared by flush and compaction. Chosen by measurement
/// (docs/BENCHMARKS.md): zstd; timestamps delta-packed; values
/// byte-stream-split; dictionary-coded metric and labels; a bloom filter on
/// series ids; page statistics for page-level pruning.
pub(crate) fn writer_properties(
    expected_series: u64,
    layout: &ValueLayout,
    order: SeriesOrder,
) -> WriterProperties {
    let col = |name: &str| parquet::schema::types::ColumnPath::from(name);
    // Rows sorted by (metric, series id, timestamp), or by metric and then
    // the label order no column holds: only what is true is declared.
    let sorted: &[i32] = match order {
        SeriesOrder::Id => &[0, 3, 4],
        SeriesOrder::Labels => &[0],
    };
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_statistics_enabled(EnabledStatistics::Page)
        // Leaf column indexes: metric 0, labels key 1 and value 2,
        // series_id 3, timestamp 4, value 5.
        .set_sorting_columns(Some(
            sorted
                .iter()
                .map(|&column_idx| SortingColumn {
                    column_idx,
                    descending: false,
                    nulls_first: false,
                })
                .collect(),
        ))
        // Label statistics cannot prune anything (a map entry is not a
        // column a predicate names) and cost two comparisons per label per
        // row: most of the writer's time before they were turned off.
        .set_column_statistics_enabled(label_leaf(MAP_KEY), EnabledStatistics::None)
        .set_column_statistics_enabled(label_leaf(MAP_VALUE), EnabledStatistics::None)
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
        .set_key_value_metadata(Some(vec![parquet::file::metadata::KeyValue::new(
            crate::table::SERIES_ORDER_TAG.to_owned(),
            order.as_str().to_owned(),
        )]))
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
/// small and fast (2,048-row pages, a few series each; series in storage
/// order, so a raw fetch of one service's 72 series decompresses the few
/// pages they share, not one per series; see docs/BENCHMARKS.md for the
/// 20,000 → 8,192 → 2,048 steps and stop 49 for the order). Hour files
/// hold the current day, which dashboards read most: 16,384-row pages
/// (256k until a 72-series raw fetch from one took 74 ms against 14 from
/// the flush files it merged; 16k: 15.6 ms, the file 13.6% larger).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ValueLayout {
    pub(crate) zstd: i32,
    pub(crate) page_rows: usize,
}

/// Day files' zstd level for values unless configured
/// (`storage.day_file_zstd_level`).
pub const DEFAULT_DAY_FILE_ZSTD_LEVEL: i32 = 17;

/// Day files' rows per data page unless configured
/// (`storage.day_file_page_rows`): one page per row group.
pub const DEFAULT_DAY_FILE_PAGE_ROWS: usize = ROW_GROUP_ROWS;

pub(crate) fn value_layout(level: FileLevel) -> ValueLayout {
    match level {
        FileLevel::Flush => ValueLayout {
            zstd: 1,
            page_rows: 2_048,
        },
        FileLevel::Hour => ValueLayout {
            zstd: 3,
            page_rows: 16_384,
        },
        FileLevel::Day => ValueLayout {
            zstd: DEFAULT_DAY_FILE_ZSTD_LEVEL,
            page_rows: DEFAULT_DAY_FILE_PAGE_ROWS,
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

/// A data file being written. Rows arrive in file order; the file is
/// encoded a row group at a time (`metric`, `series_id`, `timestamp` and
/// `value` by Parquet's Arrow column writers, `labels` by
/// [`LabelsColumn`], a series at a time) and each finished row group is
/// uploaded before the next starts, so memory stays around one row group.
pub(crate) struct FileWriter {
    path: DataFilePath,
    file: SerializedFileWriter<Vec<u8>>,
    columns: ArrowRowGroupWriterFactory,
    sink: HashingWriter,
    group: Option<Group>,
    groups: usize,
    /// Rows per row group ([`ROW_GROUP_ROWS`]; smaller in tests), and
    /// label dictionary bytes that end one early.
    group_rows: usize,
    group_dictionary_bytes: usize,
    page_rows: usize,
    /// Rows of the current batch of `push_series`.
    rows: Rows,
    stats: FileStats,
    written_ms: i64,
    /// Metric → label names and series count, stored in the footer.
    catalog: FileCatalog,
    /// Every series and its runs of rows, stored after the last row group.
    series_index: SeriesIndexWriter,
    /// The series the last row belonged to (rows come series by series),
    /// and its labels (a row group starting inside it needs them).
    last_series: Option<i64>,
    labels: Labels,
    /// The metric of the last row appended (rows come metric by metric):
    /// a series start whose metric differs begins a new metric.
    last_metric: Option<Box<str>>,
    /// How rows are ordered (recorded with the file).
    order: SeriesOrder,
}

/// The row group being encoded: one Arrow column writer per leaf (the two
/// label leaves' stay unused) and the labels.
struct Group {
    writers: Vec<ArrowColumnWriter>,
    labels: LabelsColumn,
}

/// Parquet leaf index of each column but `labels` (whose key and value are
/// leaves 1 and 2).
pub(crate) const LEAVES: [(usize, usize); 4] = [
    (crate::col::METRIC, 0),
    (crate::col::SERIES_ID, 3),
    (crate::col::TIMESTAMP, 4),
    (crate::col::VALUE, 5),
];

/// A series' labels (but `__name__`), in order.
pub(crate) type Labels = Vec<(Box<str>, Box<str>)>;

/// Where a series starts in a batch of rows, and its labels.
pub(crate) type SeriesStart = (usize, Labels);

impl FileWriter {
    pub(crate) fn try_new(
        store: Arc<dyn ObjectStore>,
        table: &Path,
        day: NaiveDate,
        level: FileLevel,
        expected_series: u64,
        order: SeriesOrder,
    ) -> Result<Self, StorageError> {
        Self::with_layout(
            store,
            table,
            day,
            level,
            expected_series,
            value_layout(level),
            order,
        )
    }

    /// [`FileWriter::try_new`] with the `value` column laid out as
    /// `layout` says instead of the level's default.
    pub(crate) fn with_layout(
        store: Arc<dyn ObjectStore>,
        table: &Path,
        day: NaiveDate,
        level: FileLevel,
        expected_series: u64,
        layout: ValueLayout,
        order: SeriesOrder,
    ) -> Result<Self, StorageError> {
        let path = DataFilePath::new(day, level);
        let sink = HashingWriter::new(store, path.under(table));
        let mut props = writer_properties(expected_series, &layout, order);
        let schema = metrics_schema();
        let parquet_schema = ArrowSchemaConverter::new()
            .with_coerce_types(props.coerce_types())
            .convert(&schema)?;
        // As Parquet's Arrow writer does: readers get the Arrow types back
        // (the timestamp's time zone) from the footer.
        add_encoded_arrow_schema_to_metadata(&schema, &mut props);
        let file = SerializedFileWriter::new(
            Vec::new(),
            parquet_schema.root_schema_ptr(),
            Arc::new(props),
        )?;
        let columns = ArrowRowGroupWriterFactory::new(&file, schema);
        Ok(Self {
            path,
            file,
            columns,
            sink,
            group: None,
            groups: 0,
            group_rows: ROW_GROUP_ROWS,
            group_dictionary_bytes: GROUP_DICTIONARY_BYTES,
            page_rows: layout.page_rows,
            rows: Rows::new(),
            stats: FileStats::default(),
            written_ms: chrono::Utc::now().timestamp_millis(),
            catalog: FileCatalog::default(),
            series_index: SeriesIndexWriter::default(),
            last_series: None,
            labels: Vec::new(),
            last_metric: None,
            order,
        })
    }

    /// Row groups and data pages of `rows` and `page_rows` rows, row
    /// groups ended by `dictionary_bytes` of labels, so tests cross these
    /// bounds with little data.
    #[cfg(test)]
    pub(crate) fn with_bounds(
        mut self,
        rows: usize,
        page_rows: usize,
        dictionary_bytes: usize,
    ) -> Self {
        self.group_rows = rows;
        self.page_rows = page_rows;
        self.group_dictionary_bytes = dictionary_bytes;
        self
    }

    /// Sets when the newest write in the file happened (compaction keeps
    /// its inputs' newest).
    pub(crate) fn set_written_ms(&mut self, ms: i64) {
        self.written_ms = ms;
    }

    /// Appends `len` rows in file order: `columns` as in [`LEAVES`],
    /// `starts` each series' first row and labels.
    pub(crate) async fn push_rows(
        &mut self,
        columns: [ArrayRef; 4],
        len: usize,
        starts: Vec<SeriesStart>,
    ) -> Result<(), StorageError> {
        use arrow::array::AsArray;
        use arrow::datatypes::{Float64Type, Int64Type, TimestampMicrosecondType};

        let [metric, ids, ts, values] = &columns;
        let metric = metric.as_string::<i32>();
        let ids = ids.as_primitive::<Int64Type>();
        let ts = ts.as_primitive::<TimestampMicrosecondType>();
        let values = values.as_primitive::<Float64Type>();
        let mut next = starts.iter().peekable();
        for i in 0..len {
            let start = next.next_if(|(s, _)| *s == i);
            if let Some((_, labels)) = start
                && self.last_series != Some(ids.value(i))
            {
                self.catalog
                    .add_series(metric.value(i), labels.iter().map(|(n, _)| &**n));
            }
            self.series_index
                .push(ids.value(i), 1, metric.value(i), || {
                    start.map(|(_, l)| l.iter().map(|(n, v)| (&**n, &**v)))
                });
            self.last_series = Some(ids.value(i));
            self.stats.observe(
                metric.value(i),
                ids.value(i),
                ts.value(i).div_euclid(1000),
                values.value(i),
            );
        }
        self.append(columns, len, starts).await
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
            let labels: Labels = labels
                .iter()
                .filter(|(n, _)| &**n != METRIC_NAME_LABEL)
                .map(|(n, v)| (Box::from(&**n), Box::from(&**v)))
                .collect();
            self.catalog
                .add_series(metric, labels.iter().map(|(n, _)| &**n));
            self.rows.starts.push((self.rows.len, labels));
        }
        let mut rows = 0u64;
        for (ts_ms, value) in samples {
            self.stats.observe(metric, series_id, ts_ms, value);
            self.rows.push(metric, series_id, ts_ms, value);
            rows += 1;
            if self.rows.len >= BATCH_ROWS {
                self.write_rows().await?;
            }
        }
        self.series_index.push(series_id, rows, metric, || {
            Some(labels.iter().map(|(n, v)| (&**n, &**v)))
        });
        Ok(())
    }

    async fn write_rows(&mut self) -> Result<(), StorageError> {
        let (columns, len, starts) = self.rows.finish();
        self.append(columns, len, starts).await
    }

    /// Appends `len` rows: `columns` as in [`LEAVES`], `starts` the rows
    /// where a series begins (a row group may also begin inside one).
    async fn append(
        &mut self,
        columns: [ArrayRef; 4],
        len: usize,
        starts: Vec<SeriesStart>,
    ) -> Result<(), StorageError> {
        use arrow::array::AsArray;
        let metrics = columns[0]
            .as_string_opt::<i32>()
            .ok_or_else(|| StorageError::Corrupt {
                message: "the metric column of rows to write is not text".into(),
            })?;
        let mut starts = starts.into_iter().peekable();
        let mut at = 0;
        while at < len {
            if self.group.is_none() {
                self.group = Some(Group {
                    writers: self.columns.create_column_writers(self.groups)?,
                    labels: LabelsColumn::default(),
                });
            }
            let Some(group) = self.group.as_mut() else {
                break;
            };
            let mut end = at + (self.group_rows - group.labels.rows()).min(len - at);
            let mut row = at;
            while row < end {
                // A row group also ends before a series once its label
                // dictionaries are large (many distinct, long values):
                // Parquet's writer fell back to plain encoding there; and
                // before a new metric once it holds enough rows.
                let metric = metrics.value(row);
                let new_metric = self.last_metric.as_deref() != Some(metric);
                let starts_here = starts.peek().is_some_and(|(s, _)| *s == row);
                if starts_here
                    && group.labels.rows() > 0
                    && (group.labels.dictionary_bytes() >= self.group_dictionary_bytes
                        || (new_metric && group.labels.rows() >= self.group_rows / METRIC_CUT))
                {
                    end = row;
                    break;
                }
                if new_metric {
                    self.last_metric = Some(Box::from(metric));
                }
                if let Some((_, labels)) = starts.next_if(|(s, _)| *s == row) {
                    self.labels = labels;
                    group
                        .labels
                        .start_series(self.labels.iter().map(|(n, v)| (&**n, &**v)));
                } else if group.labels.rows() == 0 {
                    // A row group that begins inside a series.
                    group
                        .labels
                        .start_series(self.labels.iter().map(|(n, v)| (&**n, &**v)));
                }
                let next = starts.peek().map_or(end, |(s, _)| (*s).min(end));
                group.labels.extend(next - row);
                row = next;
            }
            let take = end - at;
            for ((c, leaf), array) in LEAVES.iter().zip(&columns) {
                let field = metrics_schema().field(*c).clone();
                let slice = array.slice(at, take);
                for column in compute_leaves(&field, &slice)? {
                    if let Some(w) = group.writers.get_mut(*leaf) {
                        w.write(&column)?;
                    }
                }
            }
            let full = at + take < len || group.labels.rows() >= self.group_rows;
            at = end;
            if full {
                self.close_group().await?;
            }
        }
        Ok(())
    }

    /// Encodes the row group and uploads it.
    async fn close_group(&mut self) -> Result<(), StorageError> {
        let Some(group) = self.group.take() else {
            return Ok(());
        };
        if group.labels.rows() == 0 {
            return Ok(());
        }
        let compression = self.file.properties().compression(&label_leaf(MAP_KEY));
        let descr = self.file.schema_descr();
        let labels = [
            group
                .labels
                .encode(Leaf::Key, descr.column(1), self.page_rows, compression)?,
            group
                .labels
                .encode(Leaf::Value, descr.column(2), self.page_rows, compression)?,
        ];
        let mut chunks = Vec::with_capacity(4);
        for (i, w) in group.writers.into_iter().enumerate() {
            if LEAVES.iter().any(|(_, leaf)| *leaf == i) {
                chunks.push(w.close()?);
            }
        }
        let mut rg = self.file.next_row_group()?;
        let mut chunks = chunks.into_iter();
        if let Some(metric) = chunks.next() {
            metric.append_to_row_group(&mut rg)?;
        }
        for (bytes, close) in labels {
            rg.append_column(&bytes, close)?;
        }
        for chunk in chunks {
            chunk.append_to_row_group(&mut rg)?;
        }
        rg.close()?;
        self.groups += 1;
        self.upload().await
    }

    /// Hands what the Parquet writer produced so far to the upload.
    async fn upload(&mut self) -> Result<(), StorageError> {
        self.file
            .flush()
            .map_err(parquet::errors::ParquetError::from)?;
        let bytes = std::mem::take(self.file.inner_mut());
        if !bytes.is_empty() {
            self.sink.write(Bytes::from(bytes)).await?;
        }
        Ok(())
    }

    /// Writes the footer, completes the upload, and describes the file.
    pub(crate) async fn finish(mut self) -> Result<DataFile, StorageError> {
        if self.rows.len > 0 {
            self.write_rows().await?;
        }
        self.close_group().await?;
        self.file
            .append_key_value_metadata(parquet::file::metadata::KeyValue::new(
                FileCatalog::KEY.to_owned(),
                self.catalog.to_json(),
            ));
        // The series index goes between the last row group and the footer
        // (counted by the writer, so the footer's offsets stay right).
        if let Some((index, raw_len)) = std::mem::take(&mut self.series_index).finish()? {
            let at = SeriesIndexLocation {
                offset: self.file.bytes_written() as u64,
                len: index.len() as u64,
                raw_len,
            };
            self.file
                .write_all(&index)
                .map_err(parquet::errors::ParquetError::from)?;
            self.file
                .append_key_value_metadata(parquet::file::metadata::KeyValue::new(
                    SeriesIndex::KEY.to_owned(),
                    at.to_footer(),
                ));
        }
        // Writes the footer, then completes the upload.
        self.file.finish()?;
        self.upload().await?;
        self.sink.complete().await?;
        let (size, sha256) = self.sink.digest();
        Ok(DataFile {
            signal: crate::Signal::Metrics,
            path: self.path,
            size,
            sha256: Some(sha256),
            stats: self.stats,
            written_ms: self.written_ms,
            series_order: self.order,
        })
    }
}

fn label_leaf(leaf: &str) -> parquet::schema::types::ColumnPath {
    parquet::schema::types::ColumnPath::new(vec![
        crate::schema::LABELS.to_owned(),
        MAP_ENTRIES.to_owned(),
        leaf.to_owned(),
    ])
}

/// Writes a frozen head as data files, one per UTC day, in label order
/// ([`SeriesOrder::Labels`]) but for the days in `id_days` (days whose
/// stored files are in series-id order: a day's files merge in one
/// order), written in a second pass over the head. Files already uploaded
/// when an error strikes are left for vacuum (nothing references them).
pub(crate) async fn write_head(
    head: &TenantHead,
    store: &Arc<dyn ObjectStore>,
    table: &Path,
    id_days: &std::collections::BTreeSet<NaiveDate>,
) -> Result<Vec<DataFile>, StorageError> {
    let mut writers: BTreeMap<NaiveDate, FileWriter> = BTreeMap::new();
    for order in [SeriesOrder::Labels, SeriesOrder::Id] {
        if order == SeriesOrder::Id && id_days.is_empty() {
            continue;
        }
        let refs = match order {
            SeriesOrder::Labels => head.series_in_flush_order(),
            SeriesOrder::Id => head.series_in_id_order(),
        };
        let day_file = DayFiles {
            store,
            table,
            expected: refs.len() as u64,
            order,
            id_days,
        };
        for chunk in refs.chunks(SERIES_PER_READ) {
            let series = head.read_series(chunk, i64::MIN, i64::MAX);
            for s in &series {
                day_file.write_series(s, &mut writers).await?;
            }
        }
    }
    let mut files = Vec::with_capacity(writers.len());
    for (_, w) in writers {
        files.push(w.finish().await?);
    }
    Ok(files)
}

/// Where one pass of [`write_head`] writes: the days of its order.
struct DayFiles<'a> {
    store: &'a Arc<dyn ObjectStore>,
    table: &'a Path,
    expected: u64,
    order: SeriesOrder,
    id_days: &'a std::collections::BTreeSet<NaiveDate>,
}

impl DayFiles<'_> {
    async fn write_series(
        &self,
        s: &SeriesSnapshot,
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
            rest = later;
            let day_order = if self.id_days.contains(&day) {
                SeriesOrder::Id
            } else {
                SeriesOrder::Labels
            };
            if day_order != self.order {
                continue;
            }
            let w = match writers.entry(day) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => e.insert(FileWriter::try_new(
                    Arc::clone(self.store),
                    self.table,
                    day,
                    FileLevel::Flush,
                    self.expected,
                    self.order,
                )?),
            };
            w.push_series(
                metric,
                &s.labels,
                id,
                today.iter().map(|x| (x.timestamp_ms, x.value)),
            )
            .await?;
        }
        Ok(())
    }
}

/// Column builders for one batch of `push_series`, and where its series
/// start.
pub(crate) struct Rows {
    pub(crate) len: usize,
    metric: StringBuilder,
    series_id: Int64Builder,
    timestamp: TimestampMicrosecondBuilder,
    value: Float64Builder,
    starts: Vec<SeriesStart>,
}

impl Rows {
    pub(crate) fn new() -> Self {
        Self {
            len: 0,
            metric: StringBuilder::new(),
            series_id: Int64Builder::new(),
            timestamp: TimestampMicrosecondBuilder::new().with_timezone("UTC"),
            value: Float64Builder::new(),
            starts: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, metric: &str, series_id: i64, ts_ms: i64, value: f64) {
        self.len += 1;
        self.metric.append_value(metric);
        self.series_id.append_value(series_id);
        self.timestamp.append_value(ts_ms.saturating_mul(1000));
        self.value.append_value(value);
    }

    /// The batch's columns as in [`LEAVES`], its length and series starts.
    fn finish(&mut self) -> ([ArrayRef; 4], usize, Vec<SeriesStart>) {
        let len = std::mem::take(&mut self.len);
        (
            [
                Arc::new(self.metric.finish()),
                Arc::new(self.series_id.finish()),
                Arc::new(self.timestamp.finish()),
                Arc::new(self.value.finish()),
            ],
            len,
            std::mem::take(&mut self.starts),
        )
    }
}

#[cfg(test)]
mod tests;
