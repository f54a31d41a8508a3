//! A file's selected rows, read batch by batch: each series' rows stay
//! pieces of the decoded columns (no copy), and a series is answered as
//! soon as its rows are complete, so a caller streaming several files
//! holds a few batches of each rather than every selected row.

use std::sync::Arc;

use arrow::array::AsArray;
use arrow::buffer::ScalarBuffer;
use arrow::datatypes::{Float64Type, TimestampMicrosecondType};
use datafusion::error::DataFusionError;
use datafusion::parquet::arrow::ParquetRecordBatchStreamBuilder;
use datafusion::parquet::arrow::ProjectionMask;
use datafusion::parquet::arrow::arrow_reader::RowSelection;
#[allow(deprecated)]
use datafusion::parquet::arrow::async_reader::ParquetObjectReader;
use datafusion::parquet::arrow::async_reader::ParquetRecordBatchStream;
use futures::TryStreamExt;
use object_store::ObjectStore;
use object_store::path::Path;

use super::{FileIndex, LEAF_TIMESTAMP, LEAF_VALUE};

/// A run of a file's rows: (position, first row, rows).
type RowRun = (u32, usize, usize);

/// One series' (position's) rows of one run or of consecutive runs.
pub(crate) type Entry = (u32, Vec<Piece>);

impl FileIndex {
    /// Samples in `[start_ms, end_ms]` of the series at `positions`
    /// (sorted), reading only their rows: `(position, points)`, an entry
    /// for every position (see [`FileIndex::point_reader`]).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn read_points(
        &self,
        store: &Arc<dyn ObjectStore>,
        path: &Path,
        size: u64,
        positions: &roaring::RoaringBitmap,
        start_ms: i64,
        end_ms: i64,
        cover: Cover,
    ) -> Result<Vec<Entry>, DataFusionError> {
        let mut reader = self
            .point_reader(store, path, size, positions, start_ms, end_ms, cover)
            .await?;
        let mut out = Vec::new();
        while let Some(entries) = reader.next().await? {
            out.extend(entries);
        }
        Ok(out)
    }

    /// A reader of the samples in `[start_ms, end_ms]` of the series at
    /// `positions` (sorted), reading only their rows. `cover`: how much of
    /// the file's time span the range covers. All of it: every row read is
    /// kept. Under half (an instant query's lookback, the last hour of a
    /// day file): the timestamps are read first and each series' rows cut
    /// to the range ([`FileIndex::narrow`]), then only those rows' values.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn point_reader(
        &self,
        store: &Arc<dyn ObjectStore>,
        path: &Path,
        size: u64,
        positions: &roaring::RoaringBitmap,
        start_ms: i64,
        end_ms: i64,
        cover: Cover,
    ) -> Result<PointReader, DataFusionError> {
        let (lo_us, hi_us) = (start_ms.saturating_mul(1000), end_ms.saturating_mul(1000));
        let mut runs: Vec<RowRun> = self.runs_of(positions).into_iter().copied().collect();
        let mut reader = PointReader {
            stream: None,
            runs: Vec::new(),
            known: None,
            keep_all: true,
            lo_us,
            hi_us,
            run: 0,
            left: 0,
            open: None,
        };
        let Some(&(first_pos, _, first_rows)) = runs.first() else {
            return Ok(reader);
        };
        // With the rows cut, each run's timestamps (in microseconds) are
        // known: only values are read.
        if cover == Cover::Little
            && let Some(cut) = self.narrow(store, path, size, &runs, lo_us, hi_us).await?
        {
            runs = cut
                .iter()
                .map(|(p, first, ts)| (*p, *first, ts.len()))
                .collect();
            reader.known = Some(cut.into_iter().map(|(_, _, ts)| ts.into()).collect());
        }
        // Rows outside the range are dropped, unless every row is in it or
        // the cut kept only those.
        reader.keep_all = cover == Cover::Whole || reader.known.is_some();
        let leaves: &[usize] = if reader.known.is_some() {
            &[LEAF_VALUE]
        } else {
            &[LEAF_TIMESTAMP, LEAF_VALUE]
        };
        reader.stream = Some(self.rows_of(store, path, size, &runs, leaves)?);
        reader.left = runs.first().map_or(first_rows, |r| r.2);
        reader.open = Some((first_pos, Vec::new()));
        reader.runs = runs;
        Ok(reader)
    }

    /// The rows of `runs` (in row order; empty ones skipped), `leaves`
    /// of them, in batches.
    #[allow(deprecated)]
    fn rows_of(
        &self,
        store: &Arc<dyn ObjectStore>,
        path: &Path,
        size: u64,
        runs: &[RowRun],
        leaves: &[usize],
    ) -> Result<ParquetRecordBatchStream<ParquetObjectReader>, DataFusionError> {
        let reader = ParquetObjectReader::new(Arc::clone(store), path.clone()).with_file_size(size);
        let selection = RowSelection::from_consecutive_ranges(
            runs.iter()
                .filter(|r| r.2 > 0)
                .map(|(_, first, len)| *first..first + len),
            self.rows,
        );
        let schema = self.meta.parquet_schema();
        Ok(
            ParquetRecordBatchStreamBuilder::new_with_metadata(reader, self.meta.clone())
                .with_projection(ProjectionMask::leaves(schema, leaves.iter().copied()))
                .with_row_selection(selection)
                .with_batch_size(65_536)
                .build()?,
        )
    }

    /// `runs` (in row order) cut to their rows in `[lo_us, hi_us]`, each
    /// with those rows' timestamps, read from the timestamp column alone
    /// (delta-packed, cheap beside the values' byte-stream-split); a run
    /// with none keeps its place with no rows. `None` when a run's
    /// timestamps are not in order (files are written sorted by series and
    /// time; such a file is read the ordinary way).
    async fn narrow(
        &self,
        store: &Arc<dyn ObjectStore>,
        path: &Path,
        size: u64,
        runs: &[RowRun],
        lo_us: i64,
        hi_us: i64,
    ) -> Result<Option<Vec<(u32, usize, Vec<i64>)>>, DataFusionError> {
        let mut stream = self.rows_of(store, path, size, runs, &[LEAF_TIMESTAMP])?;
        // Each run's first row in the range (from its start) and the
        // timestamps from there; the last one seen, to check the order.
        let mut cut: Vec<(u32, usize, Vec<i64>)> = runs
            .iter()
            .map(|&(p, first, _)| (p, first, Vec::new()))
            .collect();
        let (mut run, mut at, mut last) = (0usize, 0usize, i64::MIN);
        while let Some(b) = stream.try_next().await? {
            let t = b
                .column(0)
                .as_primitive::<TimestampMicrosecondType>()
                .values();
            let mut i = 0;
            while i < t.len() {
                while runs.get(run).is_some_and(|r| at >= r.2) {
                    run += 1;
                    at = 0;
                    last = i64::MIN;
                }
                let (Some(r), Some(c)) = (runs.get(run), cut.get_mut(run)) else {
                    break;
                };
                let take = (r.2 - at).min(t.len() - i);
                for (j, &ts) in t[i..i + take].iter().enumerate() {
                    if ts < last {
                        return Ok(None);
                    }
                    last = ts;
                    if (lo_us..=hi_us).contains(&ts) {
                        if c.2.is_empty() {
                            c.1 = r.1 + at + j;
                        }
                        c.2.push(ts);
                    }
                }
                at += take;
                i += take;
            }
        }
        Ok(Some(cut))
    }
}

/// A file's selected rows, read a batch at a time ([`FileIndex::point_reader`]).
#[allow(deprecated)]
pub(crate) struct PointReader {
    /// `None` when nothing is selected or every batch has been read.
    stream: Option<ParquetRecordBatchStream<ParquetObjectReader>>,
    runs: Vec<RowRun>,
    /// Each run's timestamps, when the runs were cut to the range.
    known: Option<Vec<ScalarBuffer<i64>>>,
    keep_all: bool,
    lo_us: i64,
    hi_us: i64,
    /// The run being read, and its rows not yet read.
    run: usize,
    left: usize,
    /// The entry being filled.
    open: Option<Entry>,
}

impl PointReader {
    /// How many entries each position will have (one per stretch of
    /// consecutive runs of it: one, in a file written in series order),
    /// in row order.
    pub(crate) fn entries(&self) -> Vec<(u32, u32)> {
        let mut out: Vec<(u32, u32)> = Vec::new();
        let mut last = None;
        for r in &self.runs {
            if last != Some(r.0) {
                out.push((r.0, 1));
                last = Some(r.0);
            }
        }
        // A position split across stretches: its count summed.
        out.sort_unstable_by_key(|e| e.0);
        out.dedup_by(|b, a| {
            let same = a.0 == b.0;
            if same {
                a.1 += b.1;
            }
            same
        });
        out
    }

    /// The entries completed by the next batch (several batches when one
    /// completes none; the last ones once the rows are read); `None` after
    /// the last.
    pub(crate) async fn next(&mut self) -> Result<Option<Vec<Entry>>, DataFusionError> {
        let mut out: Vec<Entry> = Vec::new();
        loop {
            let Some(stream) = self.stream.as_mut() else {
                return Ok(self.open.take().map(|e| vec![e]));
            };
            let Some(b) = stream.try_next().await? else {
                self.finish(&mut out);
                return Ok(Some(out));
            };
            let v = b
                .column(b.num_columns() - 1)
                .as_primitive::<Float64Type>()
                .values();
            let t = self.known.is_none().then(|| {
                b.column(0)
                    .as_primitive::<TimestampMicrosecondType>()
                    .values()
            });
            let mut i = 0;
            while i < b.num_rows() {
                while self.left == 0 {
                    self.run += 1;
                    let Some(r) = self.runs.get(self.run) else {
                        self.finish(&mut out);
                        return Ok(Some(out));
                    };
                    self.left = r.2;
                    if self.open.as_ref().is_none_or(|(p, _)| *p != r.0)
                        && let Some(done) = self.open.replace((r.0, Vec::new()))
                    {
                        out.push(done);
                    }
                }
                // The rest of the run in this batch, at once: slices of the
                // decoded columns, not copies.
                let take = self.left.min(b.num_rows() - i);
                let ts_us = match (t, &self.known) {
                    (Some(t), _) => t.slice(i, take),
                    (None, Some(known)) => {
                        let at = self.runs[self.run].2 - self.left;
                        match known.get(self.run) {
                            Some(ts) if at + take <= ts.len() => ts.slice(at, take),
                            _ => ScalarBuffer::from(Vec::new()),
                        }
                    }
                    (None, None) => ScalarBuffer::from(Vec::new()),
                };
                let mut piece = Piece {
                    values: v.slice(i, ts_us.len().min(take)),
                    ts_us,
                };
                if !self.keep_all {
                    piece = in_range(piece, self.lo_us, self.hi_us);
                }
                if let Some((_, pieces)) = self.open.as_mut()
                    && !piece.values.is_empty()
                {
                    pieces.push(piece);
                }
                self.left -= take;
                i += take;
            }
            if !out.is_empty() {
                return Ok(Some(out));
            }
        }
    }

    /// Ends the read: the open entry, then one for each stretch of runs
    /// left with no rows (cut to nothing), which still answer.
    fn finish(&mut self, out: &mut Vec<Entry>) {
        self.stream = None;
        out.extend(self.open.take());
        for r in self.runs.iter().skip(self.run + 1) {
            if out.last().is_none_or(|(p, _)| *p != r.0) {
                out.push((r.0, Vec::new()));
            }
        }
        self.run = self.runs.len();
    }
}

/// Consecutive rows of one series in a file, as decoded.
#[derive(Debug, Clone)]
pub(crate) struct Piece {
    /// Timestamps in microseconds.
    pub(crate) ts_us: ScalarBuffer<i64>,
    /// As many values.
    pub(crate) values: ScalarBuffer<f64>,
}

/// `piece`'s rows with timestamps in `[lo_us, hi_us]`: a slice when its
/// timestamps are in order (files are written so), else picked one by one.
fn in_range(piece: Piece, lo_us: i64, hi_us: i64) -> Piece {
    let ts = &piece.ts_us;
    if ts.is_sorted() {
        let from = ts.partition_point(|&t| t < lo_us);
        let to = ts.partition_point(|&t| t <= hi_us);
        return Piece {
            ts_us: piece.ts_us.slice(from, to.saturating_sub(from)),
            values: piece.values.slice(from, to.saturating_sub(from)),
        };
    }
    let (ts_us, values): (Vec<i64>, Vec<f64>) = ts
        .iter()
        .zip(piece.values.iter())
        .filter(|(t, _)| (lo_us..=hi_us).contains(*t))
        .unzip();
    Piece {
        ts_us: ts_us.into(),
        values: values.into(),
    }
}

/// How much of a file's time span a read's range covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cover {
    Whole,
    /// Half or more.
    Most,
    /// Under half.
    Little,
}

impl Cover {
    /// The cover of `[start_ms, end_ms]` over a file holding
    /// `[min_ms, max_ms]`.
    pub(crate) fn of(start_ms: i64, end_ms: i64, min_ms: i64, max_ms: i64) -> Self {
        if start_ms <= min_ms && max_ms <= end_ms {
            return Cover::Whole;
        }
        let inside = end_ms.min(max_ms).saturating_sub(start_ms.max(min_ms));
        if inside.saturating_mul(2) < max_ms.saturating_sub(min_ms) {
            Cover::Little
        } else {
            Cover::Most
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A read over most of a file keeps each piece's rows in the range,
    /// both ends included, whether or not its timestamps are in order.
    #[test]
    fn pieces_keep_the_rows_in_range() {
        let piece = |ts: &[i64]| Piece {
            ts_us: ts.to_vec().into(),
            values: ts.iter().map(|&t| t as f64).collect(),
        };
        let rows = |p: Piece| -> Vec<(i64, f64)> {
            p.ts_us
                .iter()
                .copied()
                .zip(p.values.iter().copied())
                .collect()
        };
        let sorted = piece(&[10, 20, 30, 40, 50]);
        assert_eq!(
            rows(in_range(sorted.clone(), 20, 40)),
            vec![(20, 20.0), (30, 30.0), (40, 40.0)]
        );
        assert!(rows(in_range(sorted.clone(), 60, 70)).is_empty());
        assert!(rows(in_range(sorted, 40, 20)).is_empty());
        assert_eq!(
            rows(in_range(piece(&[30, 10, 20, 50]), 15, 30)),
            vec![(30, 30.0), (20, 20.0)]
        );
    }
}
