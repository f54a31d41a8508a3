//! What a data file holds, by metric: its label names and series count.
//!
//! Written into each file's Parquet footer (key-value metadata
//! [`FileCatalog::KEY`]) so SQL can name a metric's columns after reading
//! footers only; engines that don't know the key ignore it.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// One file's metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileCatalog {
    pub metrics: BTreeMap<String, MetricCatalog>,
}

/// One metric in one file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricCatalog {
    /// Series of the metric in the file.
    pub series: u64,
    /// Every label name any of those series has, `__name__` excluded.
    pub labels: BTreeSet<String>,
}

impl FileCatalog {
    /// The footer key.
    pub const KEY: &'static str = "strata.catalog.v1";

    /// Counts one series of `metric` with these label names.
    pub fn add_series<'a>(&mut self, metric: &str, labels: impl Iterator<Item = &'a str>) {
        let entry = match self.metrics.get_mut(metric) {
            Some(e) => e,
            None => self.metrics.entry(metric.to_owned()).or_default(),
        };
        entry.series += 1;
        for l in labels {
            if !entry.labels.contains(l) {
                entry.labels.insert(l.to_owned());
            }
        }
    }

    pub fn to_json(&self) -> String {
        // A map of strings and integers always serialises.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses a footer value; `None` if it isn't one of ours.
    pub fn from_json(s: &str) -> Option<Self> {
        serde_json::from_str(s).ok()
    }

    /// Folds another file's catalog into this one (series add up: a
    /// series in two files counts twice).
    pub fn merge(&mut self, other: &FileCatalog) {
        for (metric, m) in &other.metrics {
            let entry = self.metrics.entry(metric.clone()).or_default();
            entry.series += m.series;
            entry.labels.extend(m.labels.iter().cloned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_series_and_unions_label_names() {
        let mut c = FileCatalog::default();
        c.add_series("up", ["job", "instance"].into_iter());
        c.add_series("up", ["job", "zone"].into_iter());
        c.add_series("errors", std::iter::empty());
        let back = FileCatalog::from_json(&c.to_json()).expect("round trip");
        assert_eq!(back, c);
        let up = &back.metrics["up"];
        assert_eq!(up.series, 2);
        assert_eq!(
            up.labels.iter().map(String::as_str).collect::<Vec<_>>(),
            ["instance", "job", "zone"]
        );
        assert_eq!(back.metrics["errors"].series, 1);
        assert!(FileCatalog::from_json("not json").is_none());
    }
}
