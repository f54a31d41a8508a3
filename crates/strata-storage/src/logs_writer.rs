//! A frozen log head → Parquet data files of the tenant's logs table.
//!
//! Rows go in (stream id, timestamp) order, one file per UTC day, so a
//! query for a few streams over a time range reads a few row groups:
//! statistics on `stream_id` and `timestamp_ns` prune the rest, and a
//! bloom filter on `stream_id` answers "is this stream here at all".
//! Lines are zstd-compressed without dictionaries (they rarely repeat
//! exactly) and carry no statistics (min/max of text cannot prune a
//! substring search); a line index ([`crate::line_index`]) after the
//! last row group lets a needle search skip the blocks of rows that
//! cannot hold it. Every byte written is hashed for `strata verify`.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Builder, MapBuilder, MapFieldNames, RecordBatch, StringBuilder};
use bytes::Bytes;
use chrono::NaiveDate;
use object_store::ObjectStore;
use object_store::path::Path;
use parquet::arrow::ArrowWriter;
use parquet::arrow::async_writer::AsyncFileWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use strata_head::{LogStreamSnapshot, TenantLogs};

use crate::line_index::{LineIndex, LineIndexLocation, LineIndexWriter};
use crate::paths::{DataFilePath, FileLevel, Signal, day_of_ms};
use crate::schema::{MAP_ENTRIES, MAP_KEY, MAP_VALUE, logs, logs_schema};
use crate::writer::HashingWriter;
use crate::{DataFile, FileStats, StorageError};

/// Rows per Arrow batch handed to the Parquet writer.
const BATCH_ROWS: usize = 4096;
/// Rows per row group: lines are large, so groups hold fewer rows than
/// metric files' for about the same bytes.
const ROW_GROUP_ROWS: usize = 128 * 1024;

/// The line column's zstd level in flush and hour files: cheap while
/// ingest waits on flushes; a day file takes the storage's day level.
pub(crate) const LINE_ZSTD: i32 = 1;

fn writer_properties(expected_streams: u64, line_zstd: i32) -> WriterProperties {
    let col = |name: &str| parquet::schema::types::ColumnPath::from(name);
    let map_col = |map: &str, leaf: &str| {
        parquet::schema::types::ColumnPath::new(vec![
            map.to_owned(),
            MAP_ENTRIES.to_owned(),
            leaf.to_owned(),
        ])
    };
    let mut b = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_statistics_enabled(EnabledStatistics::Page)
        // Leaf columns: stream_id 0, labels key 1 and value 2,
        // timestamp_ns 3, line 4, metadata key 5 and value 6.
        .set_sorting_columns(Some(
            [0, 3]
                .into_iter()
                .map(|column_idx| SortingColumn {
                    column_idx,
                    descending: false,
                    nulls_first: false,
                })
                .collect(),
        ))
        .set_column_dictionary_enabled(col(logs::STREAM_ID), false)
        .set_column_encoding(col(logs::STREAM_ID), Encoding::DELTA_BINARY_PACKED)
        .set_column_bloom_filter_enabled(col(logs::STREAM_ID), true)
        .set_column_bloom_filter_fpp(col(logs::STREAM_ID), 0.01)
        .set_column_bloom_filter_max_ndv(col(logs::STREAM_ID), expected_streams.max(1))
        .set_column_dictionary_enabled(col(logs::TIMESTAMP_NS), false)
        .set_column_encoding(col(logs::TIMESTAMP_NS), Encoding::DELTA_BINARY_PACKED)
        .set_column_dictionary_enabled(col(logs::LINE), false)
        .set_column_compression(
            col(logs::LINE),
            Compression::ZSTD(ZstdLevel::try_new(line_zstd).unwrap_or_default()),
        )
        .set_column_statistics_enabled(col(logs::LINE), EnabledStatistics::None);
    for map in [logs::LABELS, logs::METADATA] {
        for leaf in [MAP_KEY, MAP_VALUE] {
            b = b.set_column_statistics_enabled(map_col(map, leaf), EnabledStatistics::None);
        }
    }
    b.build()
}

/// Column builders for one batch.
struct Rows {
    len: usize,
    stream_id: Int64Builder,
    labels: MapBuilder<StringBuilder, StringBuilder>,
    timestamp: Int64Builder,
    line: StringBuilder,
    metadata: MapBuilder<StringBuilder, StringBuilder>,
}

/// A builder of a `map<string, string>` column as the tables spell it.
pub(crate) fn map_builder() -> MapBuilder<StringBuilder, StringBuilder> {
    let names = MapFieldNames {
        entry: MAP_ENTRIES.into(),
        key: MAP_KEY.into(),
        value: MAP_VALUE.into(),
    };
    MapBuilder::new(Some(names), StringBuilder::new(), StringBuilder::new()).with_values_field(
        Arc::new(arrow::datatypes::Field::new(
            MAP_VALUE,
            arrow::datatypes::DataType::Utf8,
            false,
        )),
    )
}

impl Rows {
    fn new() -> Self {
        Self {
            len: 0,
            stream_id: Int64Builder::new(),
            labels: map_builder(),
            timestamp: Int64Builder::new(),
            line: StringBuilder::new(),
            metadata: map_builder(),
        }
    }

    fn finish(&mut self) -> Result<RecordBatch, StorageError> {
        self.len = 0;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.stream_id.finish()),
            Arc::new(self.labels.finish()),
            Arc::new(self.timestamp.finish()),
            Arc::new(self.line.finish()),
            Arc::new(self.metadata.finish()),
        ];
        Ok(RecordBatch::try_new(logs_schema(), columns)?)
    }
}

/// One day's file being written: encoded into memory a row group at a
/// time, each finished row group uploaded before the next starts.
pub(crate) struct LogFileWriter {
    path: DataFilePath,
    writer: ArrowWriter<Vec<u8>>,
    sink: HashingWriter,
    rows: Rows,
    /// The lines' index, stored after the last row group.
    index: LineIndexWriter,
    stats: FileStats,
    last_stream: Option<i64>,
}

impl LogFileWriter {
    pub(crate) fn try_new(
        store: Arc<dyn ObjectStore>,
        table: &Path,
        day: NaiveDate,
        level: FileLevel,
        expected_streams: u64,
        line_zstd: i32,
    ) -> Result<Self, StorageError> {
        let path = DataFilePath::new(day, level);
        let sink = HashingWriter::new(store, path.under(table));
        let writer = ArrowWriter::try_new(
            Vec::new(),
            logs_schema(),
            Some(writer_properties(expected_streams, line_zstd)),
        )?;
        Ok(Self {
            path,
            writer,
            sink,
            rows: Rows::new(),
            index: LineIndexWriter::default(),
            stats: FileStats::default(),
            last_stream: None,
        })
    }

    async fn push(
        &mut self,
        stream: &LogStreamSnapshot,
        entries: &[strata_types::LogEntry],
    ) -> Result<(), StorageError> {
        let id = stream.stream_id as i64;
        for e in entries {
            self.observe(id, e.timestamp_ns);
            let r = &mut self.rows;
            r.len += 1;
            r.stream_id.append_value(id);
            for l in stream.labels.iter() {
                r.labels.keys().append_value(&l.name);
                r.labels.values().append_value(&l.value);
            }
            // Fails only on mismatched key/value counts, ruled out above.
            let _ = r.labels.append(true);
            r.timestamp.append_value(e.timestamp_ns);
            r.line.append_value(&e.line);
            self.index.push(&e.line);
            for (k, v) in &e.metadata {
                r.metadata.keys().append_value(k);
                r.metadata.values().append_value(v);
            }
            let _ = r.metadata.append(true);
            if r.len >= BATCH_ROWS {
                let batch = r.finish()?;
                self.write(&batch).await?;
            }
        }
        Ok(())
    }

    /// Encodes `batch`; a row group it completes is uploaded.
    async fn write(&mut self, batch: &RecordBatch) -> Result<(), StorageError> {
        let groups = self.writer.flushed_row_groups().len();
        self.writer.write(batch)?;
        if self.writer.flushed_row_groups().len() != groups {
            self.upload().await?;
        }
        Ok(())
    }

    /// Hands what the Parquet writer produced so far to the upload.
    async fn upload(&mut self) -> Result<(), StorageError> {
        let bytes = std::mem::take(self.writer.inner_mut());
        if !bytes.is_empty() {
            self.sink.write(Bytes::from(bytes)).await?;
        }
        Ok(())
    }

    /// Appends a batch already in [`logs_schema`] and in file order
    /// (compaction).
    pub(crate) async fn push_batch(&mut self, batch: &RecordBatch) -> Result<(), StorageError> {
        use arrow::array::AsArray;
        use arrow::datatypes::Int64Type;
        let ids = batch
            .column(logs::col::STREAM_ID)
            .as_primitive::<Int64Type>();
        let ts = batch
            .column(logs::col::TIMESTAMP_NS)
            .as_primitive::<Int64Type>();
        let lines = batch.column(logs::col::LINE).as_string::<i32>();
        for i in 0..batch.num_rows() {
            self.observe(ids.value(i), ts.value(i));
            self.index.push(lines.value(i));
        }
        self.write(batch).await
    }

    fn observe(&mut self, id: i64, ts: i64) {
        let s = &mut self.stats;
        if s.rows == 0 || self.last_stream != Some(id) {
            s.series += 1;
            self.last_stream = Some(id);
        }
        if s.rows == 0 {
            s.min_ts_ns = ts;
            s.max_ts_ns = ts;
            s.min_series_id = id;
            s.max_series_id = id;
        } else {
            s.min_ts_ns = s.min_ts_ns.min(ts);
            s.max_ts_ns = s.max_ts_ns.max(ts);
            s.min_series_id = s.min_series_id.min(id);
            s.max_series_id = s.max_series_id.max(id);
        }
        s.rows += 1;
    }

    pub(crate) async fn finish(mut self) -> Result<DataFile, StorageError> {
        if self.rows.len > 0 {
            let batch = self.rows.finish()?;
            self.write(&batch).await?;
        }
        // The index goes between the last row group and the footer
        // (through the writer, so the footer's offsets stay right).
        self.writer.flush()?;
        if let Some(index) = std::mem::take(&mut self.index).finish() {
            let at = LineIndexLocation {
                offset: self.writer.bytes_written() as u64,
                len: index.len() as u64,
            };
            self.writer
                .write_all(&index)
                .map_err(parquet::errors::ParquetError::from)?;
            self.writer
                .append_key_value_metadata(parquet::file::metadata::KeyValue::new(
                    LineIndex::KEY.to_owned(),
                    at.to_footer(),
                ));
        }
        self.writer.finish()?;
        self.upload().await?;
        self.sink.complete().await?;
        let (size, sha256) = self.sink.digest();
        let mut stats = self.stats;
        stats.min_ts_ms = stats.min_ts_ns.div_euclid(1_000_000);
        stats.max_ts_ms = stats.max_ts_ns.div_euclid(1_000_000) + 1;
        Ok(DataFile {
            signal: Signal::Logs,
            path: self.path,
            size,
            sha256: Some(sha256),
            stats,
            written_ms: chrono::Utc::now().timestamp_millis(),
            series_order: crate::SeriesOrder::Id,
        })
    }
}

/// Writes a frozen log head as data files, one per UTC day. Files already
/// uploaded when an error strikes are left for vacuum.
pub(crate) async fn write_logs(
    head: &TenantLogs,
    store: &Arc<dyn ObjectStore>,
    table: &Path,
) -> Result<Vec<DataFile>, StorageError> {
    // Sorted by stream id as the signed integer the files hold, copied
    // out of the head one stream at a time (a flush holds the frozen head
    // and one stream's copy, never a second copy of the head).
    let ids = head.stream_ids_in_file_order();
    let expected = ids.len() as u64;
    let mut writers: BTreeMap<NaiveDate, LogFileWriter> = BTreeMap::new();
    for id in ids {
        let Some(stream) = head.stream(id, i64::MIN, i64::MAX) else {
            continue;
        };
        let stream = &stream;
        // Entries are time-sorted: each day is one contiguous run.
        let mut start = 0;
        while start < stream.entries.len() {
            let day = day_of_ms(stream.entries[start].timestamp_ns.div_euclid(1_000_000));
            let end = start
                + stream.entries[start..]
                    .iter()
                    .position(|e| day_of_ms(e.timestamp_ns.div_euclid(1_000_000)) != day)
                    .unwrap_or(stream.entries.len() - start);
            let writer = match writers.entry(day) {
                std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::btree_map::Entry::Vacant(v) => v.insert(LogFileWriter::try_new(
                    Arc::clone(store),
                    table,
                    day,
                    FileLevel::Flush,
                    expected,
                    LINE_ZSTD,
                )?),
            };
            writer.push(stream, &stream.entries[start..end]).await?;
            start = end;
        }
    }
    let mut files = Vec::with_capacity(writers.len());
    for (_, w) in writers {
        files.push(w.finish().await?);
    }
    Ok(files)
}
