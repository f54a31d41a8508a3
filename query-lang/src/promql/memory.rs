//! Series held in memory: the conformance harness loads its data here.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

use super::{FloatHistogram, Labels, Matcher, PromError, Series, Source, matches_all};

#[derive(Debug, Default)]
pub struct MemorySource {
    series: BTreeMap<Labels, Vec<(i64, f64)>>,
    histograms: BTreeMap<Labels, Vec<(i64, Arc<FloatHistogram>)>>,
}

impl MemorySource {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a sample; a sample at an existing timestamp replaces it.
    pub fn add(&mut self, labels: &Labels, t: i64, v: f64) {
        if let Some(points) = self.histograms.get_mut(labels)
            && let Ok(i) = points.binary_search_by_key(&t, |p| p.0)
        {
            points.remove(i);
        }
        let points = self.series.entry(labels.clone()).or_default();
        match points.binary_search_by_key(&t, |p| p.0) {
            Ok(i) => points[i].1 = v,
            Err(i) => points.insert(i, (t, v)),
        }
    }

    /// Adds a native-histogram sample; one at an existing timestamp
    /// (float or histogram) replaces it.
    pub fn add_histogram(&mut self, labels: &Labels, t: i64, h: FloatHistogram) {
        if let Some(points) = self.series.get_mut(labels)
            && let Ok(i) = points.binary_search_by_key(&t, |p| p.0)
        {
            points.remove(i);
        }
        let points = self.histograms.entry(labels.clone()).or_default();
        let h = Arc::new(h);
        match points.binary_search_by_key(&t, |p| p.0) {
            Ok(i) => points[i].1 = h,
            Err(i) => points.insert(i, (t, h)),
        }
    }

    pub fn clear(&mut self) {
        self.series.clear();
        self.histograms.clear();
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
                    histograms: Vec::new(),
                })
            })
            .collect())
    }

    async fn select_histograms(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Series>, PromError> {
        Ok(self
            .histograms
            .iter()
            .filter(|(l, _)| matches_all(l, matchers))
            .filter_map(|(l, p)| {
                let lo = p.partition_point(|s| s.0 < start_ms);
                let hi = p.partition_point(|s| s.0 <= end_ms);
                (lo < hi).then(|| Series {
                    labels: l.clone(),
                    points: Vec::new(),
                    histograms: p[lo..hi].to_vec(),
                })
            })
            .collect())
    }
}
