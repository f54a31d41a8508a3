//! Series held in memory: the conformance harness loads its data here.

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::{Labels, Matcher, PromError, Series, Source, matches_all};

#[derive(Debug, Default)]
pub struct MemorySource {
    series: BTreeMap<Labels, Vec<(i64, f64)>>,
}

impl MemorySource {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a sample; a sample at an existing timestamp replaces it.
    pub fn add(&mut self, labels: &Labels, t: i64, v: f64) {
        let points = self.series.entry(labels.clone()).or_default();
        match points.binary_search_by_key(&t, |p| p.0) {
            Ok(i) => points[i].1 = v,
            Err(i) => points.insert(i, (t, v)),
        }
    }

    pub fn clear(&mut self) {
        self.series.clear();
    }
}

#[async_trait]
impl Source for MemorySource {
    async fn select(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Series>, PromError> {
        self.select_part(matchers, start_ms, end_ms, 0, 1).await
    }

    async fn series_estimate(
        &self,
        matchers: &[Matcher],
        _start_ms: i64,
        _end_ms: i64,
    ) -> Result<Option<u64>, PromError> {
        Ok(Some(
            self.series
                .keys()
                .filter(|l| matches_all(l, matchers))
                .count() as u64,
        ))
    }

    /// Series in label order, dealt out in turn (part `i % parts` for the
    /// `i`-th series held).
    async fn select_part(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
        part: usize,
        parts: usize,
    ) -> Result<Vec<Series>, PromError> {
        let parts = parts.max(1);
        Ok(self
            .series
            .iter()
            .enumerate()
            .filter(|(i, (l, _))| i % parts == part && matches_all(l, matchers))
            .map(|(_, s)| s)
            .filter_map(|(l, p)| {
                let lo = p.partition_point(|s| s.0 < start_ms);
                let hi = p.partition_point(|s| s.0 <= end_ms);
                (lo < hi).then(|| Series {
                    labels: l.clone(),
                    points: p[lo..hi].to_vec(),
                })
            })
            .collect())
    }
}
