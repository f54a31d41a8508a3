//! A metric query reads its range in time slices of about
//! [`SLICE_ENTRIES`] entries each, oldest first, and folds each slice into
//! its answer before reading the next: what it holds at once is one
//! slice's entries, however many the range has. Slices are cut from the
//! source's parts (heads, files: rows and time extent, entries taken as
//! spread evenly over it) and corrected by what the slice before held.
//! An entry stored in two parts is one entry: a slice reads every part
//! over its time, and the source merges their copies.

use super::source::Part;

/// Entries a slice is cut to hold, by estimate.
pub(super) const SLICE_ENTRIES: u64 = 1 << 18;

/// Entries of `p` estimated in `[lo, hi)`, taken as spread evenly over
/// its extent (cut at `end`, a query's end).
pub(super) fn part_estimate(p: &Part, lo: i64, hi: i64, end: i64) -> u64 {
    let (min, max) = (p.min_ns, p.max_ns.min(end.saturating_sub(1)));
    if p.rows == 0 || max < min {
        return 0;
    }
    let extent = (i128::from(max) - i128::from(min) + 1) as u128;
    let overlap =
        (i128::from(hi.min(max.saturating_add(1))) - i128::from(lo.max(min))).max(0) as u128;
    (u128::from(p.rows) * overlap / extent) as u64
}

/// The slices of `[start, end)`, one at a time.
pub(super) struct Slicer {
    parts: Vec<Part>,
    at: i64,
    end: i64,
    target: f64,
    /// Entries found per entry estimated, in the last slice read.
    scale: f64,
}

impl Slicer {
    pub(super) fn new(parts: Vec<Part>, start: i64, end: i64, target: u64) -> Self {
        Self {
            parts,
            at: start,
            end,
            target: target.max(1) as f64,
            scale: 1.0,
        }
    }

    /// Entries estimated in `[lo, hi)`.
    pub(super) fn estimate(&self, lo: i64, hi: i64) -> f64 {
        self.parts
            .iter()
            .map(|p| part_estimate(p, lo, hi, self.end) as f64)
            .sum()
    }

    /// The next slice: the longest `[at, hi)` estimated (as corrected) to
    /// hold at most the target, at least 1 ns; `None` past the end.
    pub(super) fn next_slice(&mut self) -> Option<(i64, i64)> {
        if self.at >= self.end {
            return None;
        }
        let lo = self.at;
        let fits = |hi: i64| self.estimate(lo, hi) * self.scale <= self.target;
        let hi = if fits(self.end) {
            self.end
        } else {
            // The last end that fits, by bisection (estimates grow with hi).
            let (mut ok, mut over) = (lo.saturating_add(1), self.end);
            while over - ok > 1 {
                let mid = ok + (over - ok) / 2;
                if fits(mid) {
                    ok = mid;
                } else {
                    over = mid;
                }
            }
            ok
        };
        self.at = hi;
        Some((lo, hi))
    }

    /// What the slice `[lo, hi)` held: later slices are cut by the ratio
    /// of found to estimated (a head's entries are seldom spread evenly
    /// over its extent).
    pub(super) fn found(&mut self, lo: i64, hi: i64, entries: usize) {
        let estimated = self.estimate(lo, hi);
        if estimated >= 1.0 {
            self.scale = (entries as f64 / estimated).clamp(1.0 / 16.0, 1e9);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(min_ns: i64, max_ns: i64, rows: u64) -> Part {
        Part {
            id: 0,
            min_ns,
            max_ns,
            rows,
        }
    }

    fn all(s: &mut Slicer) -> Vec<(i64, i64)> {
        std::iter::from_fn(|| s.next_slice()).collect()
    }

    #[test]
    fn slices_cover_the_range_once_and_hold_about_the_target() {
        // 1,000 entries over [0, 1000), 100 over [500, 600).
        let mut s = Slicer::new(vec![part(0, 999, 1000), part(500, 599, 100)], 0, 2000, 100);
        let slices = all(&mut s);
        assert_eq!(slices.first().map(|x| x.0), Some(0));
        assert_eq!(slices.last().map(|x| x.1), Some(2000));
        for w in slices.windows(2) {
            assert_eq!(w[0].1, w[1].0, "contiguous");
        }
        let s = Slicer::new(vec![part(0, 999, 1000), part(500, 599, 100)], 0, 2000, 100);
        for &(lo, hi) in &slices {
            assert!(s.estimate(lo, hi) <= 100.0 + 1e-9);
        }
        // 1,100 entries in slices of at most 100, and the empty tail one.
        assert!((11..=13).contains(&slices.len()), "{slices:?}");
        // No parts with rows (a source without parts): one slice.
        let mut s = Slicer::new(vec![part(i64::MIN, i64::MAX, 0)], 5, 50, 1);
        assert_eq!(all(&mut s), [(5, 50)]);
    }

    #[test]
    fn slices_narrow_when_a_part_is_denser_than_its_extent_says() {
        // A head said to hold 1,000 over [0, 10000): 100 per 1000 ns.
        let mut s = Slicer::new(vec![part(0, i64::MAX, 1000)], 0, 10_000, 100);
        // Estimates are whole entries: 100 up to 1009 ns.
        let first = s.next_slice().unwrap();
        assert_eq!(first, (0, 1009));
        // It held 400 (its entries sit near the end): the next is about
        // a quarter as wide.
        s.found(first.0, first.1, 400);
        let (lo, hi) = s.next_slice().unwrap();
        assert_eq!((lo, hi - lo), (1009, 259));
    }
}
