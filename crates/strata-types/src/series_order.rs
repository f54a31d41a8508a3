//! The order series are stored in within a metrics file.
//!
//! Rows are written series by series; a read of a few series decompresses
//! every page one of them lies in, so series a query selects together
//! should lie together. Within a metric, series are ordered by the values
//! of `job`, then `instance` (what dashboards most often narrow by: the
//! order VictoriaMetrics gives its series ids), then by the whole label
//! set as PromQL orders label sets. Every file level, the head's flush and
//! every merge use this one order, so files merge by it without sorting.

use std::cmp::Ordering;

use crate::METRIC_NAME_LABEL;

/// The leading part of a series' place in [`cmp_series_order`]: its
/// metric name, `job` and `instance` (`""` when absent). Ties are broken
/// by the whole label set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct SeriesOrderKey<'a> {
    pub metric: &'a str,
    pub job: &'a str,
    pub instance: &'a str,
}

impl<'a> SeriesOrderKey<'a> {
    /// The key of a label set (`__name__` included).
    pub fn of(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut key = Self::default();
        for (name, value) in pairs {
            match name {
                METRIC_NAME_LABEL => key.metric = value,
                "job" => key.job = value,
                "instance" => key.instance = value,
                _ => {}
            }
        }
        key
    }
}

/// How two label sets (each sorted by name, `__name__` included) are
/// ordered in a file: by [`SeriesOrderKey`], then pair by pair (name, then
/// value; a set that is a prefix of the other first). Equal only for equal
/// label sets.
pub fn cmp_series_order<'a, A, B>(a: A, b: B) -> Ordering
where
    A: IntoIterator<Item = (&'a str, &'a str)>,
    A::IntoIter: Clone,
    B: IntoIterator<Item = (&'a str, &'a str)>,
    B::IntoIter: Clone,
{
    let (a, b) = (a.into_iter(), b.into_iter());
    SeriesOrderKey::of(a.clone())
        .cmp(&SeriesOrderKey::of(b.clone()))
        .then_with(|| a.cmp(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(pairs: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        pairs.to_vec()
    }

    #[test]
    fn series_are_ordered_by_metric_job_instance_then_labels() {
        let mut sets = [
            set(&[("__name__", "up"), ("instance", "b:1"), ("job", "api")]),
            set(&[
                ("__name__", "up"),
                ("cluster", "z"),
                ("instance", "a:1"),
                ("job", "api"),
            ]),
            set(&[
                ("__name__", "up"),
                ("cluster", "a"),
                ("instance", "a:1"),
                ("job", "api"),
            ]),
            set(&[("__name__", "up"), ("instance", "a:1"), ("job", "db")]),
            set(&[("__name__", "http"), ("instance", "z:1"), ("job", "z")]),
            set(&[("__name__", "up")]),
            set(&[("instance", "a:1")]),
        ];
        sets.sort_by(|a, b| cmp_series_order(a.iter().copied(), b.iter().copied()));
        assert_eq!(
            sets,
            [
                // No metric name sorts first, then metrics by name.
                set(&[("instance", "a:1")]),
                set(&[("__name__", "http"), ("instance", "z:1"), ("job", "z")]),
                // No job or instance sorts first within a metric.
                set(&[("__name__", "up")]),
                // job before instance before the other labels, whatever
                // their names' order.
                set(&[
                    ("__name__", "up"),
                    ("cluster", "a"),
                    ("instance", "a:1"),
                    ("job", "api")
                ]),
                set(&[
                    ("__name__", "up"),
                    ("cluster", "z"),
                    ("instance", "a:1"),
                    ("job", "api")
                ]),
                set(&[("__name__", "up"), ("instance", "b:1"), ("job", "api")]),
                set(&[("__name__", "up"), ("instance", "a:1"), ("job", "db")]),
            ]
        );
        let a = set(&[("__name__", "up"), ("job", "api")]);
        assert_eq!(
            cmp_series_order(a.iter().copied(), a.iter().copied()),
            Ordering::Equal
        );
    }
}
