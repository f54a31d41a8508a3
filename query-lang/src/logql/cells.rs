//! The windows of a range aggregation cut the time line into cells (the
//! spans between consecutive window edges); every window is a run of
//! cells. Functions whose windows merge from parts (`count_over_time`,
//! `rate`, `bytes_*`, `sum/min/max_over_time`, `absent_over_time`) keep a
//! few numbers per series and cell as entries are read, so a query holds
//! at most (series × 2 × steps) cells, whatever the entries.

use std::collections::{BTreeMap, VecDeque};

/// The cells of a query's windows `(t - offset - range, t - offset]`.
pub(super) struct Grid {
    /// Window edges, sorted, distinct: cell `j` is `(edges[j], edges[j + 1]]`.
    edges: Vec<i64>,
    /// Per step, its window's cells `from..to`.
    windows: Vec<(u32, u32)>,
}

impl Grid {
    pub(super) fn new(steps: &[i64], range_ns: i64, offset_ns: i64) -> Self {
        let window = |t: i64| {
            let hi = t.saturating_sub(offset_ns);
            (hi.saturating_sub(range_ns), hi)
        };
        let mut edges: Vec<i64> = steps
            .iter()
            .flat_map(|&t| {
                let (lo, hi) = window(t);
                [lo, hi]
            })
            .collect();
        edges.sort_unstable();
        edges.dedup();
        let at = |x: i64| edges.partition_point(|e| *e < x) as u32;
        let windows = steps
            .iter()
            .map(|&t| {
                let (lo, hi) = window(t);
                (at(lo), at(hi))
            })
            .collect();
        Self { edges, windows }
    }

    /// The cell an entry at `ts` falls in, if any window holds it.
    pub(super) fn cell(&self, ts: i64) -> Option<u32> {
        let after = self.edges.partition_point(|e| *e < ts);
        (after >= 1 && after < self.edges.len()).then(|| (after - 1) as u32)
    }

    /// Per step, the window's cells.
    pub(super) fn windows(&self) -> &[(u32, u32)] {
        &self.windows
    }
}

/// What a series' entries in one cell come to.
#[derive(Debug, Clone, Copy)]
pub(super) struct Cell {
    pub count: u64,
    pub sum: f64,
    /// NaN values are left out; NaN when every value was NaN.
    pub min: f64,
    pub max: f64,
}

impl Cell {
    const EMPTY: Cell = Cell {
        count: 0,
        sum: 0.0,
        min: f64::NAN,
        max: f64::NAN,
    };

    pub(super) fn add(&mut self, v: f64) {
        self.count += 1;
        self.sum += v;
        if v < self.min || self.min.is_nan() {
            self.min = v;
        }
        if v > self.max || self.max.is_nan() {
            self.max = v;
        }
    }

    fn merge(&mut self, o: &Cell) {
        self.count += o.count;
        self.sum += o.sum;
        if o.min < self.min || self.min.is_nan() {
            self.min = o.min;
        }
        if o.max > self.max || self.max.is_nan() {
            self.max = o.max;
        }
    }
}

/// One series' cells, by cell.
#[derive(Debug, Default)]
pub(super) struct Cells(BTreeMap<u32, Cell>);

impl Cells {
    pub(super) fn add(&mut self, cell: u32, v: f64) {
        self.0.entry(cell).or_insert(Cell::EMPTY).add(v);
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds `other`'s entries to these.
    pub(super) fn merge(&mut self, other: &Cells) {
        for (k, c) in &other.0 {
            self.0.entry(*k).or_insert(Cell::EMPTY).merge(c);
        }
    }

    /// Per window (in step order) that holds entries: the step's index
    /// and what its cells come to (sums of counts and values, least and
    /// greatest value).
    pub(super) fn per_window(&self, windows: &[(u32, u32)]) -> Vec<(usize, Cell)> {
        let cells: Vec<(u32, Cell)> = self.0.iter().map(|(k, c)| (*k, *c)).collect();
        let mut counts = Vec::with_capacity(cells.len() + 1);
        counts.push(0u64);
        for (_, c) in &cells {
            counts.push(counts[counts.len() - 1] + c.count);
        }
        // Sums from a tree of partial sums (not differences of running
        // sums: a NaN or an infinity stays in the windows holding it).
        let n = cells.len();
        let mut tree = vec![0.0f64; 2 * n];
        for (i, (_, c)) in cells.iter().enumerate() {
            tree[n + i] = c.sum;
        }
        for i in (1..n).rev() {
            tree[i] = tree[2 * i] + tree[2 * i + 1];
        }
        let sum = |from: usize, to: usize| {
            let (mut l, mut r, mut s) = (from + n, to + n, 0.0f64);
            while l < r {
                if l & 1 == 1 {
                    s += tree[l];
                    l += 1;
                }
                if r & 1 == 1 {
                    r -= 1;
                    s += tree[r];
                }
                l >>= 1;
                r >>= 1;
            }
            s
        };
        // Windows move forward: the least and greatest over a window come
        // from monotonic queues of cell positions.
        let (mut mins, mut maxs) = (VecDeque::<usize>::new(), VecDeque::<usize>::new());
        let mut pushed = 0usize;
        let mut out = Vec::new();
        for (i, &(from, to)) in windows.iter().enumerate() {
            let p = cells.partition_point(|c| c.0 < from);
            let q = cells.partition_point(|c| c.0 < to);
            while pushed < q {
                let v = cells[pushed].1;
                if !v.min.is_nan() {
                    while mins.back().is_some_and(|&b| cells[b].1.min >= v.min) {
                        mins.pop_back();
                    }
                    mins.push_back(pushed);
                }
                if !v.max.is_nan() {
                    while maxs.back().is_some_and(|&b| cells[b].1.max <= v.max) {
                        maxs.pop_back();
                    }
                    maxs.push_back(pushed);
                }
                pushed += 1;
            }
            while mins.front().is_some_and(|&f| f < p) {
                mins.pop_front();
            }
            while maxs.front().is_some_and(|&f| f < p) {
                maxs.pop_front();
            }
            let count = counts[q] - counts[p];
            if count == 0 {
                continue;
            }
            out.push((
                i,
                Cell {
                    count,
                    sum: sum(p, q),
                    min: mins.front().map_or(f64::NAN, |&f| cells[f].1.min),
                    max: maxs.front().map_or(f64::NAN, |&f| cells[f].1.max),
                },
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_runs_of_cells_and_merge_as_the_entries_would() {
        // Steps 10, 20, 30; range 15: windows (-5,10], (5,20], (15,30].
        let grid = Grid::new(&[10, 20, 30], 15, 0);
        let values = [
            (-5, 9.0),
            (1, 1.0),
            (6, f64::NAN),
            (10, 4.0),
            (16, 2.0),
            (30, 7.0),
            (31, 1.0),
        ];
        let mut cells = Cells::default();
        for &(ts, v) in &values {
            if let Some(c) = grid.cell(ts) {
                cells.add(c, v);
            }
        }
        let got = cells.per_window(grid.windows());
        for (i, lo, hi) in [(0usize, -5i64, 10i64), (1, 5, 20), (2, 15, 30)] {
            let w: Vec<f64> = values
                .iter()
                .filter(|p| p.0 > lo && p.0 <= hi)
                .map(|p| p.1)
                .collect();
            let (_, c) = got.iter().find(|g| g.0 == i).unwrap();
            assert_eq!(c.count as usize, w.len(), "window {i}");
            let plain: Vec<f64> = w.iter().copied().filter(|v| !v.is_nan()).collect();
            assert_eq!(
                c.min,
                plain.iter().copied().fold(f64::INFINITY, f64::min),
                "{i}"
            );
            assert_eq!(
                c.max,
                plain.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                "{i}"
            );
            if plain.len() == w.len() {
                assert_eq!(c.sum, w.iter().sum::<f64>(), "{i}");
            } else {
                assert!(c.sum.is_nan());
            }
        }
        // A window of NaNs only: its least and greatest are NaN.
        let grid = Grid::new(&[10], 10, 0);
        let mut cells = Cells::default();
        cells.add(grid.cell(5).unwrap(), f64::NAN);
        let got = cells.per_window(grid.windows());
        assert_eq!(got.len(), 1);
        assert!(got[0].1.min.is_nan() && got[0].1.max.is_nan());
        // An entry outside every window (range shorter than the step).
        let grid = Grid::new(&[10, 20], 3, 0);
        assert_eq!(grid.cell(12), grid.cell(11));
        assert!(
            grid.cell(6).is_none()
                || grid.windows().iter().all(|w| {
                    let c = grid.cell(6).unwrap();
                    c < w.0 || c >= w.1
                })
        );
    }
}
