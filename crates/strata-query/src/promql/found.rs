//! A series' points as each source answers them, merged into one run.
//!
//! A file's rows stay pieces of the decoded batches (microsecond
//! timestamps and values, no copy) until the series is merged: each sample
//! is written once, into the series' points, where it is converted to
//! milliseconds.

use std::sync::Arc;

use strata_query_lang::promql::{DeferredPoints, Labels};

use crate::series_labels::Piece;

/// One source's points of a series.
pub(crate) enum Run {
    /// A head's points, in milliseconds.
    Points(Vec<(i64, f64)>),
    /// A file's rows, in row order.
    Rows(Vec<Piece>),
}

fn ms(us: i64) -> i64 {
    us.div_euclid(1000)
}

impl Run {
    fn len(&self) -> usize {
        match self {
            Run::Points(p) => p.len(),
            Run::Rows(pieces) => pieces.iter().map(|p| p.values.len()).sum(),
        }
    }

    /// Timestamps of the first and the last point, in milliseconds.
    fn bounds(&self) -> Option<(i64, i64)> {
        match self {
            Run::Points(p) => Some((p.first()?.0, p.last()?.0)),
            Run::Rows(pieces) => {
                let first = pieces.iter().find_map(|p| p.ts_us.first())?;
                let last = pieces.iter().rev().find_map(|p| p.ts_us.last())?;
                Some((ms(*first), ms(*last)))
            }
        }
    }

    fn write_to(&self, out: &mut Vec<(i64, f64)>) {
        match self {
            Run::Points(p) => out.extend_from_slice(p),
            Run::Rows(pieces) => {
                for p in pieces {
                    out.extend(
                        p.ts_us
                            .iter()
                            .zip(p.values.iter())
                            .map(|(&t, &v)| (ms(t), v)),
                    );
                }
            }
        }
    }
}

/// A series found in a query's heads and files: its labels and each
/// source's points.
#[derive(Default)]
pub(crate) struct Found {
    pub(crate) labels: Option<Arc<Labels>>,
    /// In scan order: heads, then files in file order.
    runs: Vec<Run>,
}

impl Found {
    /// One source's points of the series (heads and files in scan
    /// order); `labels` is asked for only the first time.
    pub(crate) fn add(&mut self, labels: impl FnOnce() -> Arc<Labels>, run: Run) {
        if self.labels.is_none() {
            self.labels = Some(labels());
        }
        if run.len() > 0 {
            self.runs.push(run);
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// Points over all runs (a sample in two sources counted twice).
    pub(crate) fn len(&self) -> usize {
        self.runs.iter().map(Run::len).sum()
    }

    /// The series' points sorted by time, a sample written twice (in two
    /// sources before compaction dedups it) once — the first source's in
    /// scan order. A head's run alone is taken as it is.
    pub(crate) fn into_points(self) -> Vec<(i64, f64)> {
        let mut runs = self.runs;
        if let [Run::Points(p)] = runs.as_slice()
            && increasing(p)
            && let Some(Run::Points(p)) = runs.pop()
        {
            return p;
        }
        let mut points = Vec::with_capacity(runs.iter().map(Run::len).sum());
        write_runs(&runs, &mut points);
        points
    }
}

fn increasing(p: &[(i64, f64)]) -> bool {
    p.is_sorted_by(|a, b| a.0 < b.0)
}

/// `runs`' points into `out` (cleared first) as [`Found::into_points`]
/// answers them. Runs that do not overlap (day files, then the head) are
/// written in time order without sorting.
fn write_runs(runs: &[Run], out: &mut Vec<(i64, f64)>) {
    out.clear();
    let bounds: Vec<(i64, i64)> = runs
        .iter()
        .map(|r| r.bounds().unwrap_or((i64::MIN, i64::MIN)))
        .collect();
    let mut order: Vec<usize> = (0..runs.len()).collect();
    order.sort_by_key(|&i| bounds[i].0);
    let disjoint = order.windows(2).all(|w| bounds[w[0]].1 < bounds[w[1]].0);
    if disjoint {
        for &i in &order {
            runs[i].write_to(out);
        }
        // Each run in order too (files are written sorted; two timestamps
        // a microsecond apart may still fall in one millisecond).
        if increasing(out) {
            return;
        }
        out.clear();
    }
    for run in runs {
        run.write_to(out);
    }
    // Stable: among equal timestamps the first source's stays.
    out.sort_by_key(|p| p.0);
    out.dedup_by_key(|p| p.0);
}

/// A series read in parts is written when the query reduces it, into the
/// query's buffer: the decoded rows are copied once, into memory already
/// in the cache, instead of into a fresh allocation per series.
impl DeferredPoints for Found {
    fn at_most(&self) -> usize {
        Found::len(self)
    }

    fn write(&self, out: &mut Vec<(i64, f64)>) {
        write_runs(&self.runs, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(runs: Vec<Run>) -> Found {
        let mut f = Found::default();
        for r in runs {
            f.add(|| Arc::new(Labels::empty()), r);
        }
        f
    }

    /// The series' points, deferred (written into a buffer another
    /// series left behind) and held, which must agree.
    fn points(f: Found) -> Vec<(i64, f64)> {
        let mut buf = vec![(-1, -1.0); 3];
        DeferredPoints::write(&f, &mut buf);
        let held = f.into_points();
        assert_eq!(buf, held, "deferred and held points differ");
        held
    }

    fn head(p: &[(i64, f64)]) -> Run {
        Run::Points(p.to_vec())
    }

    /// A file's rows (timestamps in milliseconds here, stored in
    /// microseconds), cut into pieces of `piece` rows.
    fn file(p: &[(i64, f64)], piece: usize) -> Run {
        Run::Rows(
            p.chunks(piece)
                .map(|c| Piece {
                    ts_us: c.iter().map(|x| x.0 * 1000).collect(),
                    values: c.iter().map(|x| x.1).collect(),
                })
                .collect(),
        )
    }

    /// Sources come in scan order (heads, then files in any order): the
    /// series' points come out in time order, a sample held by two sources
    /// once, the first source's value.
    #[test]
    fn sources_merge_in_time_order_and_the_first_copy_wins() {
        // Head (newest), then two day files out of order: concatenated.
        let f = found(vec![
            head(&[(300, 3.0), (310, 3.1)]),
            file(&[(200, 2.0)], 1),
            file(&[(100, 1.0), (110, 1.1)], 1),
        ]);
        assert_eq!(
            points(f),
            vec![(100, 1.0), (110, 1.1), (200, 2.0), (300, 3.0), (310, 3.1)]
        );
        // A sample in the head and in a flush file not yet compacted.
        let f = found(vec![
            head(&[(200, 20.0), (300, 30.0)]),
            file(&[(100, 1.0), (200, 2.0)], 2),
        ]);
        assert_eq!(points(f), vec![(100, 1.0), (200, 20.0), (300, 30.0)]);
        // Interleaved runs.
        let f = found(vec![
            file(&[(100, 1.0), (300, 3.0)], 1),
            file(&[(200, 2.0), (400, 4.0)], 2),
        ]);
        assert_eq!(
            points(f),
            vec![(100, 1.0), (200, 2.0), (300, 3.0), (400, 4.0)]
        );
        // One source of each kind; none.
        assert_eq!(
            points(found(vec![head(&[(1, 1.0), (2, 2.0)])])),
            vec![(1, 1.0), (2, 2.0)]
        );
        assert_eq!(
            points(found(vec![file(&[(1, 1.0), (2, 2.0), (3, 3.0)], 2)])),
            vec![(1, 1.0), (2, 2.0), (3, 3.0)]
        );
        assert!(points(found(vec![])).is_empty());
        assert!(found(vec![file(&[], 1), head(&[])]).is_empty());
    }

    /// A run out of order, or two rows of one file in one millisecond, are
    /// sorted and deduplicated as any overlap is, though the runs' ends do
    /// not overlap.
    #[test]
    fn rows_out_of_order_within_a_run_are_sorted() {
        let f = found(vec![
            file(&[(100, 1.0), (150, 1.5), (120, 1.2)], 2),
            head(&[(200, 2.0)]),
        ]);
        assert_eq!(
            points(f),
            vec![(100, 1.0), (120, 1.2), (150, 1.5), (200, 2.0)]
        );
        let same_ms = Run::Rows(vec![Piece {
            ts_us: vec![5_000, 5_400, 6_000].into(),
            values: vec![1.0, 2.0, 3.0].into(),
        }]);
        assert_eq!(points(found(vec![same_ms])), vec![(5, 1.0), (6, 3.0)]);
        assert_eq!(
            points(found(vec![head(&[(2, 2.0), (1, 1.0), (2, 9.0)])])),
            vec![(1, 1.0), (2, 2.0)]
        );
    }
}
