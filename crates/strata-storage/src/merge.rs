//! The one k-way merge of sorted Parquet files, for metrics and logs
//! compaction alike: inputs streamed batch by batch through a heap (memory
//! is one batch per input whatever the file sizes), picked rows gathered
//! with Arrow's `interleave` whole columns at a time, and rows whose keys
//! are equal written once — the newest input's copy (by write time, then
//! input order). What differs is the policy ([`MergePolicy`]): the key a
//! row sorts and deduplicates by, and how picked rows are written.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use arrow::array::RecordBatch;
use futures::StreamExt;
// See compact.rs: the object-store reader parquet ships.
#[allow(deprecated)]
use parquet::arrow::async_reader::{ParquetObjectReader, ParquetRecordBatchStream};

use crate::StorageError;

/// Statistics of one merge.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MergeStats {
    pub rows_in: u64,
    pub rows_out: u64,
}

/// An input file's stream.
#[allow(deprecated)]
pub(crate) type InputStream = ParquetRecordBatchStream<ParquetObjectReader>;

/// What one kind of merge decides.
pub(crate) trait MergePolicy {
    /// The order rows are merged in; equal keys are one row.
    type Key: Ord;

    /// The key of row `r` of `batch`, input `input`'s current batch.
    fn key(
        &mut self,
        input: usize,
        batch: &RecordBatch,
        r: usize,
    ) -> Result<Self::Key, StorageError>;

    /// Writes the picked rows: `(batch, row)` pairs into `pinned`, in order.
    fn write(
        &mut self,
        picks: &[(usize, usize)],
        pinned: &[RecordBatch],
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
}

/// One input being read: its current batch (a slot of the pinned batches)
/// and row.
struct Input {
    stream: InputStream,
    slot: usize,
    row: usize,
    rows: usize,
    /// Which copy wins on a tie: higher is newer.
    recency: (i64, usize),
}

/// Heap entry: the current row of an input.
struct Entry<K> {
    key: K,
    recency: (i64, usize),
    input: usize,
}

impl<K: Ord> PartialEq for Entry<K> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl<K: Ord> Eq for Entry<K> {}
impl<K: Ord> PartialOrd for Entry<K> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<K: Ord> Ord for Entry<K> {
    /// Reversed: `BinaryHeap` pops the smallest key first; among equal keys
    /// the newest copy first.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .key
            .cmp(&self.key)
            .then_with(|| self.recency.cmp(&other.recency))
    }
}

/// Merges `inputs` (each sorted by `policy`'s key, with its write time)
/// through `policy`, `batch_rows` output rows at a time.
pub(crate) async fn merge<P: MergePolicy>(
    inputs: Vec<(InputStream, i64)>,
    policy: &mut P,
    batch_rows: usize,
) -> Result<MergeStats, StorageError> {
    let mut stats = MergeStats::default();
    let mut pinned: Vec<RecordBatch> = Vec::new();
    let mut heap = BinaryHeap::new();
    let mut inputs: Vec<Input> = inputs
        .into_iter()
        .enumerate()
        .map(|(i, (stream, written_ms))| Input {
            stream,
            slot: usize::MAX,
            row: 0,
            rows: 0,
            recency: (written_ms, i),
        })
        .collect();
    for (i, input) in inputs.iter_mut().enumerate() {
        if advance(input, &mut pinned, &mut stats).await? {
            heap.push(entry(policy, input, i, &pinned)?);
        }
    }
    let mut picks: Vec<(usize, usize)> = Vec::with_capacity(batch_rows);
    while let Some(top) = heap.pop() {
        let i = top.input;
        picks.push((inputs[i].slot, inputs[i].row));
        // Older copies of the same row: skip them.
        let mut moved = vec![i];
        while heap.peek().is_some_and(|h| h.key == top.key) {
            if let Some(dup) = heap.pop() {
                moved.push(dup.input);
            }
        }
        for j in moved {
            inputs[j].row += 1;
            // A finished batch stays pinned (picks may point into it)
            // until the next emit drops what no input is still reading.
            let more = inputs[j].row < inputs[j].rows
                || advance(&mut inputs[j], &mut pinned, &mut stats).await?;
            if more {
                heap.push(entry(policy, &inputs[j], j, &pinned)?);
            }
        }
        if picks.len() >= batch_rows {
            emit(policy, &mut picks, &mut pinned, &mut inputs, &mut stats).await?;
        }
    }
    emit(policy, &mut picks, &mut pinned, &mut inputs, &mut stats).await?;
    Ok(stats)
}

/// The heap entry of input `i`'s current row.
fn entry<P: MergePolicy>(
    policy: &mut P,
    input: &Input,
    i: usize,
    pinned: &[RecordBatch],
) -> Result<Entry<P::Key>, StorageError> {
    let r = input.row;
    let batch = pinned
        .get(input.slot)
        .filter(|b| r < b.num_rows())
        .ok_or_else(|| StorageError::Corrupt {
            message: format!("compaction lost track of input {i}"),
        })?;
    Ok(Entry {
        key: policy.key(i, batch, r)?,
        recency: input.recency,
        input: i,
    })
}

/// Reads an input's next non-empty batch into a new pinned slot.
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

/// Writes the picked rows, then drops pinned batches no input still reads
/// from.
async fn emit<P: MergePolicy>(
    policy: &mut P,
    picks: &mut Vec<(usize, usize)>,
    pinned: &mut Vec<RecordBatch>,
    inputs: &mut [Input],
    stats: &mut MergeStats,
) -> Result<(), StorageError> {
    if !picks.is_empty() {
        policy.write(picks, pinned).await?;
        stats.rows_out += picks.len() as u64;
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
