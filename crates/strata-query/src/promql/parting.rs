//! How a selection read part by part is split among its parts.
//!
//! Files hold a metric's series in storage order
//! ([`strata_types::cmp_series_order`]: `job`, `instance`, then the label
//! set), so a part that is a range of that order is one stretch of each
//! file's rows, and reading every part decompresses each page about once
//! (parts by ranges of series id would each touch most pages). A series'
//! part depends on its labels alone, so it is the same in every head and
//! file. The bounds are quantiles of a sample of the selection taken from
//! the source holding most of it, so the parts are about even.

use std::cmp::Ordering;
use std::sync::Arc;

use strata_types::cmp_series_order;

/// Label sets sampled per part to place the bounds.
const SAMPLE_PER_PART: usize = 64;

/// A label set, sorted by name, `__name__` included.
pub(super) type LabelSet = Vec<(Arc<str>, Arc<str>)>;

/// The bounds of a selection's parts: part `i` (from 0) holds the series
/// from `bounds[i - 1]` (inclusive) up to `bounds[i]` in storage order.
#[derive(Debug, Default)]
pub(super) struct Parting {
    bounds: Vec<LabelSet>,
}

impl Parting {
    /// How many of a selection of `len` series to sample, and which: every
    /// `len / n`-th.
    pub(super) fn sample_positions(len: usize, parts: usize) -> impl Iterator<Item = usize> {
        let n = (parts.max(1) * SAMPLE_PER_PART).min(len);
        (0..n).map(move |i| i * len / n.max(1))
    }

    /// Bounds splitting a selection, of which `sample` is an even sample,
    /// into `parts` ranges of about equal series.
    pub(super) fn of(mut sample: Vec<LabelSet>, parts: usize) -> Self {
        sample.sort_unstable_by(|a, b| cmp_series_order(pairs(a), pairs(b)));
        let parts = parts.max(1);
        let mut bounds: Vec<LabelSet> = Vec::with_capacity(parts - 1);
        for i in 1..parts {
            let Some(b) = sample.get(i * sample.len() / parts) else {
                break;
            };
            if bounds.last() != Some(b) {
                bounds.push(b.clone());
            }
        }
        Self { bounds }
    }

    /// The part of the series with these labels (sorted by name,
    /// `__name__` included).
    pub(super) fn part_of(&self, labels: &[(&str, &str)]) -> usize {
        self.bounds.partition_point(|b| {
            cmp_series_order(pairs(b), labels.iter().copied()) != Ordering::Greater
        })
    }
}

fn pairs(set: &LabelSet) -> impl Iterator<Item = (&str, &str)> + Clone {
    set.iter().map(|(n, v)| (&**n, &**v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(job: &str, instance: &str) -> LabelSet {
        [("__name__", "up"), ("instance", instance), ("job", job)]
            .iter()
            .map(|&(n, v)| (Arc::from(n), Arc::from(v)))
            .collect()
    }

    #[test]
    fn parts_are_even_ranges_of_the_storage_order() {
        // 4 jobs of 5 instances, in 4 parts: a job each.
        let all: Vec<LabelSet> = ["d", "b", "a", "c"]
            .iter()
            .flat_map(|j| (0..5).map(move |i| set(j, &i.to_string())))
            .collect();
        let sample: Vec<LabelSet> = Parting::sample_positions(all.len(), 4)
            .map(|i| all[i].clone())
            .collect();
        assert_eq!(sample.len(), 20);
        let p = Parting::of(sample, 4);
        let part = |j: &str, i: &str| p.part_of(&[("__name__", "up"), ("instance", i), ("job", j)]);
        assert_eq!(
            ["a", "b", "c", "d"].map(|j| part(j, "0")),
            [0, 1, 2, 3],
            "{p:?}"
        );
        assert!((0..5).all(|i| part("c", &i.to_string()) == 2));
        // Series the sample never saw fall in by their place in the order.
        assert_eq!(part("bz", "9"), 1);
        assert_eq!(p.part_of(&[("__name__", "up")]), 0);
        assert_eq!(part("z", ""), 3);
        // One part, or more parts than series: each series in one part.
        assert!(Parting::of(vec![set("a", "1")], 1).bounds.is_empty());
        assert!(Parting::of(vec![set("a", "1")], 8).bounds.len() <= 1);
    }
}
