//! How a selection read part by part is split among its parts.
//!
//! Files hold a metric's series in storage order
//! ([`strata_types::cmp_series_order`]: `job`, `instance`, then the label
//! set), so a part that is a range of that order is one stretch of each
//! file's rows, and reading every part decompresses each page about once.
//! A part is a range of the order's leading key (metric, `job`,
//! `instance`): every series of one key is in one part, and a series' part
//! depends on its labels alone, so it is the same in every head and file.
//! The ranges' bounds are chosen from the source holding the most of the
//! selection, so the parts are about even.

use std::collections::HashMap;
use std::sync::Arc;

use strata_types::SeriesOrderKey;

/// (metric, job, instance), owned.
type Key = (Arc<str>, Arc<str>, Arc<str>);

/// The bounds of a selection's parts: part `i` (from 0) holds the keys
/// from `bounds[i - 1]` (inclusive) up to `bounds[i]`.
#[derive(Debug, Default)]
pub(super) struct Parting {
    bounds: Vec<Key>,
}

impl Parting {
    /// Bounds splitting `keys` (each with its series count) into `parts`
    /// runs of about equal series.
    pub(super) fn of(keys: HashMap<Key, u64>, parts: usize) -> Self {
        let total: u64 = keys.values().sum();
        let mut keys: Vec<(Key, u64)> = keys.into_iter().collect();
        keys.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let parts = parts.max(1) as u64;
        let mut bounds = Vec::with_capacity(parts as usize - 1);
        let mut seen = 0u64;
        let mut next = 1u64;
        for (key, n) in keys {
            if next < parts && seen * parts >= total * next {
                bounds.push(key);
                next += 1;
            }
            seen += n;
        }
        Self { bounds }
    }

    /// The part of a series with this key.
    pub(super) fn part_of(&self, key: SeriesOrderKey<'_>) -> usize {
        let key = (key.metric, key.job, key.instance);
        self.bounds
            .partition_point(|b| (&*b.0, &*b.1, &*b.2) <= key)
    }
}

/// The key of a label set's storage order, owned, from its values of
/// `__name__`, `job` and `instance`.
pub(super) fn key(
    metric: Option<&Arc<str>>,
    job: Option<&Arc<str>>,
    instance: Option<&Arc<str>>,
) -> Key {
    let own = |v: Option<&Arc<str>>| v.map_or_else(|| Arc::from(""), Arc::clone);
    (own(metric), own(job), own(instance))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(m: &str, j: &str, i: &str) -> Key {
        (Arc::from(m), Arc::from(j), Arc::from(i))
    }

    #[test]
    fn parts_are_even_ranges_of_the_storage_order() {
        // 4 jobs of 10, 10, 10 and 10 series, in 4 parts: a job each.
        let keys: HashMap<Key, u64> = ["a", "b", "c", "d"]
            .iter()
            .flat_map(|j| (0..5).map(move |i| (k("up", j, &i.to_string()), 2)))
            .collect();
        let p = Parting::of(keys, 4);
        let part = |j: &str, i: &str| {
            p.part_of(SeriesOrderKey {
                metric: "up",
                job: j,
                instance: i,
            })
        };
        assert_eq!(
            ["a", "b", "c", "d"].map(|j| part(j, "0")),
            [0, 1, 2, 3],
            "{p:?}"
        );
        // Every key of a job in its part, keys unseen by their place.
        assert!((0..5).all(|i| part("c", &i.to_string()) == 2));
        assert_eq!(part("bz", "9"), 1);
        assert_eq!(part("", ""), 0);
        assert_eq!(part("z", ""), 3);
        // One part, or more parts than keys: every series somewhere.
        assert_eq!(
            Parting::of(HashMap::from([(k("up", "a", "1"), 9)]), 1)
                .bounds
                .len(),
            0
        );
        let few = Parting::of(HashMap::from([(k("up", "a", "1"), 9)]), 8);
        assert!(few.bounds.len() <= 1);
    }
}
