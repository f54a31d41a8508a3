//! Compaction of a logs table: the same plan as metrics (flush files into
//! hour files, then one file per day, see [`crate::compact`]); the merge
//! keeps (stream id, timestamp, line) order and drops an entry equal in
//! all three to one already written (Loki's deduplication), so an entry
//! flushed twice (written twice before and after a flush) is stored once.
//!
//! Inputs are streamed batch by batch and merged with a heap; memory is
//! one batch per input whatever the file sizes.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::Int64Type;
use futures::StreamExt;
use object_store::ObjectStore;
use object_store::path::Path;
use parquet::arrow::ParquetRecordBatchStreamBuilder;
#[allow(deprecated)]
use parquet::arrow::async_reader::{ParquetObjectReader, ParquetRecordBatchStream};

use crate::compact::{CompactionJob, MergeStats};
use crate::logs_writer::LogFileWriter;
use crate::schema::{logs, logs_schema};
use crate::{DataFile, StorageError};

const BATCH_ROWS: usize = 4096;

#[allow(deprecated)]
struct Input {
    stream: ParquetRecordBatchStream<ParquetObjectReader>,
    slot: usize,
    row: usize,
    rows: usize,
}

/// The current row of an input, by its sort key.
struct Head {
    stream_id: i64,
    ts: i64,
    line: Box<str>,
    input: usize,
}

impl Head {
    fn key(&self) -> (i64, i64, &str) {
        (self.stream_id, self.ts, &self.line)
    }
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Head {}
impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Head {
    /// Reversed: `BinaryHeap` pops the smallest key first.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .key()
            .cmp(&self.key())
            .then_with(|| other.input.cmp(&self.input))
    }
}

/// Merges `job`'s log files into one new file under `table`.
pub(crate) async fn merge_logs(
    store: &Arc<dyn ObjectStore>,
    table: &Path,
    job: &CompactionJob,
) -> Result<(DataFile, MergeStats), StorageError> {
    let mut stats = MergeStats::default();
    let mut inputs = Vec::with_capacity(job.inputs.len());
    let mut pinned: Vec<RecordBatch> = Vec::new();
    let mut heap = BinaryHeap::new();
    let rows: u64 = job.inputs.iter().map(|f| f.stats.rows).sum();
    let expected: u64 = job
        .inputs
        .iter()
        .map(|f| f.stats.series.max(1))
        .sum::<u64>()
        .clamp(1, rows.max(1));
    for (i, f) in job.inputs.iter().enumerate() {
        #[allow(deprecated)]
        let reader =
            ParquetObjectReader::new(Arc::clone(store), f.path.under(table)).with_file_size(f.size);
        let stream = ParquetRecordBatchStreamBuilder::new(reader)
            .await?
            .with_batch_size(BATCH_ROWS)
            .build()?;
        inputs.push(Input {
            stream,
            slot: usize::MAX,
            row: 0,
            rows: 0,
        });
        if advance(&mut inputs[i], &mut pinned, &mut stats).await? {
            heap.push(head_of(&inputs[i], i, &pinned)?);
        }
    }
    let mut out = LogFileWriter::try_new(Arc::clone(store), table, job.day, job.level, expected)?;
    let mut picks: Vec<(usize, usize)> = Vec::with_capacity(BATCH_ROWS);
    while let Some(top) = heap.pop() {
        let i = top.input;
        picks.push((inputs[i].slot, inputs[i].row));
        let mut moved = vec![i];
        // The same entry in other inputs: written once.
        while heap.peek().is_some_and(|h| h.key() == top.key()) {
            if let Some(dup) = heap.pop() {
                moved.push(dup.input);
            }
        }
        for j in moved {
            inputs[j].row += 1;
            let more = inputs[j].row < inputs[j].rows
                || advance(&mut inputs[j], &mut pinned, &mut stats).await?;
            if more {
                heap.push(head_of(&inputs[j], j, &pinned)?);
            }
        }
        if picks.len() >= BATCH_ROWS {
            emit(&mut picks, &mut pinned, &mut inputs, &mut out, &mut stats).await?;
        }
    }
    emit(&mut picks, &mut pinned, &mut inputs, &mut out, &mut stats).await?;
    let mut file = out.finish().await?;
    file.written_ms = job
        .inputs
        .iter()
        .map(|f| f.written_ms)
        .max()
        .unwrap_or_default();
    Ok((file, stats))
}

async fn advance(
    input: &mut Input,
    pinned: &mut Vec<RecordBatch>,
    stats: &mut MergeStats,
) -> Result<bool, StorageError> {
    while let Some(batch) = input.stream.next().await {
        let batch = batch?;
        if batch.num_rows() == 0 {
            continue;
        }
        stats.rows_in += batch.num_rows() as u64;
        input.rows = batch.num_rows();
        input.row = 0;
        input.slot = pinned.len();
        pinned.push(batch);
        return Ok(true);
    }
    Ok(false)
}

async fn emit(
    picks: &mut Vec<(usize, usize)>,
    pinned: &mut Vec<RecordBatch>,
    inputs: &mut [Input],
    out: &mut LogFileWriter,
    stats: &mut MergeStats,
) -> Result<(), StorageError> {
    if !picks.is_empty() {
        let schema = logs_schema();
        let columns = (0..schema.fields().len())
            .map(|c| {
                let arrays: Vec<&dyn Array> = pinned.iter().map(|b| b.column(c).as_ref()).collect();
                arrow::compute::interleave(&arrays, picks)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let batch = RecordBatch::try_new(schema, columns)?;
        stats.rows_out += batch.num_rows() as u64;
        out.push_batch(&batch).await?;
        picks.clear();
    }
    let mut kept = Vec::new();
    for input in inputs.iter_mut() {
        if input.slot != usize::MAX && input.row < input.rows {
            if let Some(b) = pinned.get(input.slot) {
                kept.push(b.clone());
                input.slot = kept.len() - 1;
            }
        } else {
            input.slot = usize::MAX;
        }
    }
    *pinned = kept;
    Ok(())
}

fn head_of(input: &Input, i: usize, pinned: &[RecordBatch]) -> Result<Head, StorageError> {
    let r = input.row;
    let b = pinned
        .get(input.slot)
        .filter(|b| r < b.num_rows())
        .ok_or_else(|| StorageError::Corrupt {
            message: format!("log compaction lost track of input {i}"),
        })?;
    Ok(Head {
        stream_id: b
            .column(logs::col::STREAM_ID)
            .as_primitive::<Int64Type>()
            .value(r),
        ts: b
            .column(logs::col::TIMESTAMP_NS)
            .as_primitive::<Int64Type>()
            .value(r),
        line: b.column(logs::col::LINE).as_string::<i32>().value(r).into(),
        input: i,
    })
}
