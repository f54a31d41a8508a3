//! Compaction of a logs table: the same plan as metrics (flush files into
//! hour files, then one file per day, see [`crate::compact`]); the merge
//! keeps (stream id, timestamp, line) order and drops an entry equal in
//! all three to one already written (Loki's deduplication), so an entry
//! flushed twice (written twice before and after a flush) is stored once.
//!
//! The k-way merge is the one metrics use ([`crate::merge`]): memory is
//! one batch per input whatever the file sizes.

use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::Int64Type;
use object_store::ObjectStore;
use object_store::path::Path;
use parquet::arrow::ParquetRecordBatchStreamBuilder;
#[allow(deprecated)]
use parquet::arrow::async_reader::ParquetObjectReader;

use crate::compact::{CompactionJob, MergeStats};
use crate::logs_writer::LogFileWriter;
use crate::merge::MergePolicy;
use crate::schema::{logs, logs_schema};
use crate::{DataFile, StorageError};

const BATCH_ROWS: usize = 4096;

/// The logs merge: (stream id, timestamp, line) written once.
struct LogsMerge {
    out: LogFileWriter,
}

impl MergePolicy for LogsMerge {
    type Key = (i64, i64, Box<str>);

    fn key(&mut self, _input: usize, b: &RecordBatch, r: usize) -> Result<Self::Key, StorageError> {
        Ok((
            b.column(logs::col::STREAM_ID)
                .as_primitive::<Int64Type>()
                .value(r),
            b.column(logs::col::TIMESTAMP_NS)
                .as_primitive::<Int64Type>()
                .value(r),
            b.column(logs::col::LINE).as_string::<i32>().value(r).into(),
        ))
    }

    async fn write(
        &mut self,
        picks: &[(usize, usize)],
        pinned: &[RecordBatch],
    ) -> Result<(), StorageError> {
        let schema = logs_schema();
        let columns = (0..schema.fields().len())
            .map(|c| {
                let arrays: Vec<&dyn Array> = pinned.iter().map(|b| b.column(c).as_ref()).collect();
                arrow::compute::interleave(&arrays, picks)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let batch = RecordBatch::try_new(schema, columns)?;
        self.out.push_batch(&batch).await
    }
}

/// Merges `job`'s log files into one new file under `table`; a day
/// file's lines are compressed at zstd level `day_zstd` (the final form,
/// kept for years: storage.day_file_zstd_level), others at
/// [`LINE_ZSTD`](crate::logs_writer::LINE_ZSTD).
pub(crate) async fn merge_logs(
    store: &Arc<dyn ObjectStore>,
    table: &Path,
    job: &CompactionJob,
    day_zstd: i32,
) -> Result<(DataFile, MergeStats), StorageError> {
    let rows: u64 = job.inputs.iter().map(|f| f.stats.rows).sum();
    let expected: u64 = job
        .inputs
        .iter()
        .map(|f| f.stats.series.max(1))
        .sum::<u64>()
        .clamp(1, rows.max(1));
    let mut inputs = Vec::with_capacity(job.inputs.len());
    for f in &job.inputs {
        #[allow(deprecated)]
        let reader =
            ParquetObjectReader::new(Arc::clone(store), f.path.under(table)).with_file_size(f.size);
        let stream = ParquetRecordBatchStreamBuilder::new(reader)
            .await?
            .with_batch_size(BATCH_ROWS)
            .build()?;
        inputs.push((stream, f.written_ms));
    }
    let line_zstd = match job.level {
        crate::FileLevel::Day => day_zstd,
        _ => crate::logs_writer::LINE_ZSTD,
    };
    let out = LogFileWriter::try_new(
        Arc::clone(store),
        table,
        job.day,
        job.level,
        expected,
        line_zstd,
    )?;
    let mut policy = LogsMerge { out };
    let stats = crate::merge::merge(inputs, &mut policy, BATCH_ROWS).await?;
    let mut file = policy.out.finish().await?;
    file.written_ms = job.newest_written_ms();
    Ok((file, stats))
}
