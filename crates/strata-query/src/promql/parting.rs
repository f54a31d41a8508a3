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

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use strata_head::HeadSeriesRef;
use strata_types::{SeriesOrderKey, cmp_series_order};

/// Label sets sampled per part to place the bounds.
const SAMPLE_PER_PART: usize = 64;

/// A label set, sorted by name, `__name__` included.
pub(super) type LabelSet = Vec<(Arc<str>, Arc<str>)>;

/// The bounds of a selection's parts: part `i` (from 0) holds the series
/// from `bounds[i - 1]` (inclusive) up to `bounds[i]` in storage order.
#[derive(Debug, Default)]
pub(super) struct Parting {
    bounds: Vec<LabelSet>,
    /// Each bound's (metric, job, instance): most comparisons end there.
    keys: Vec<(Arc<str>, Arc<str>, Arc<str>)>,
    /// Each head's series by part (by the head's address), computed by
    /// the first part's read.
    pub(super) heads: Mutex<HashMap<usize, Arc<Vec<Vec<HeadSeriesRef>>>>>,
    /// Each series-id-ordered file's part of every selected position (by
    /// path; `u16::MAX` for others), computed by the first part's read.
    pub(super) id_files: Mutex<HashMap<String, Arc<Vec<u16>>>>,
}

impl Parting {
    /// How many series of a selection to sample for `parts` parts (evenly
    /// spaced among them).
    pub(super) fn sample_size(parts: usize) -> usize {
        parts.max(1) * SAMPLE_PER_PART
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
        let own = |s: &str| -> Arc<str> { Arc::from(s) };
        let keys = bounds
            .iter()
            .map(|b| {
                let k = SeriesOrderKey::of(pairs(b));
                (own(k.metric), own(k.job), own(k.instance))
            })
            .collect();
        Self {
            bounds,
            keys,
            ..Self::default()
        }
    }

    /// The part of the series with these labels (sorted by name,
    /// `__name__` included): how many bounds are at or before it.
    pub(super) fn part_of(&self, labels: &[(&str, &str)]) -> usize {
        let key = SeriesOrderKey::of(labels.iter().copied());
        let key = (key.metric, key.job, key.instance);
        let at_or_before = |i: usize| {
            let (Some(k), Some(b)) = (self.keys.get(i), self.bounds.get(i)) else {
                return false;
            };
            (&*k.0, &*k.1, &*k.2)
                .cmp(&key)
                .then_with(|| cmp_series_order(pairs(b), labels.iter().copied()))
                .is_le()
        };
        let (mut lo, mut hi) = (0, self.bounds.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if at_or_before(mid) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }
}

impl Parting {
    /// The series of part `part` among a head's matching series, the
    /// head's split computed once.
    pub(super) fn head_parts(
        &self,
        head: &Arc<strata_head::TenantHead>,
        matchers: &[strata_head::Matcher],
    ) -> Arc<Vec<Vec<HeadSeriesRef>>> {
        let at = Arc::as_ptr(head) as usize;
        if let Some(parts) = self.heads.lock().get(&at) {
            return Arc::clone(parts);
        }
        let parts =
            Arc::new(head.select_parts(matchers, self.bounds.len() + 1, |l| self.part_of(l)));
        Arc::clone(self.heads.lock().entry(at).or_insert(parts))
    }

    /// The positions of `selected` (a file's selection) in part `part`. A
    /// label-ordered file's positions are in storage order, so the part is
    /// one range of them, found by binary search; a series-id-ordered
    /// file's parts are computed once per position.
    pub(super) fn select_in_file(
        &self,
        ix: &crate::series_labels::FileIndex,
        path: &object_store::path::Path,
        selected: &roaring::RoaringBitmap,
        part: usize,
        label_order: bool,
    ) -> roaring::RoaringBitmap {
        let mut labels: Vec<(&str, &str)> = Vec::new();
        let mut part_at = |pos: u32| {
            labels.clear();
            labels.extend(ix.labels.labels(pos).map(|(n, v)| (&**n, &**v)));
            self.part_of(&labels)
        };
        if label_order {
            let positions: Vec<u32> = selected.iter().collect();
            let lo = positions.partition_point(|&pos| part_at(pos) < part);
            let hi = lo + positions[lo..].partition_point(|&pos| part_at(pos) <= part);
            return positions[lo..hi].iter().copied().collect();
        }
        let key = path.to_string();
        let cached = self.id_files.lock().get(&key).cloned();
        let parts = match cached {
            Some(parts) => parts,
            None => {
                let mut parts = vec![u16::MAX; ix.ids.len()];
                for pos in selected.iter() {
                    if let Some(slot) = parts.get_mut(pos as usize) {
                        *slot = u16::try_from(part_at(pos)).unwrap_or(u16::MAX);
                    }
                }
                let parts = Arc::new(parts);
                Arc::clone(self.id_files.lock().entry(key).or_insert(parts))
            }
        };
        selected
            .iter()
            .filter(|&pos| {
                parts
                    .get(pos as usize)
                    .is_some_and(|&p| usize::from(p) == part)
            })
            .collect()
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
        assert!(Parting::sample_size(4) >= all.len());
        let p = Parting::of(all, 4);
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
