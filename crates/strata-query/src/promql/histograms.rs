//! Native histograms for PromQL: the samples held (pending or being
//! flushed) and the histograms table's files of the query's range, each
//! series' samples in time order, one per timestamp (the one written last),
//! as the engine's float histograms.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use strata_query_lang::promql::{
    ErrorKind, FloatHistogram, HistogramPoint, Labels, Matcher, PromError, ResetHint, Series,
    matches_all,
};
use strata_storage::{HistogramRead, Storage};
use strata_types::{Histogram, TenantId};

/// A storage failure as the Prometheus API names it.
fn storage_error(e: strata_storage::StorageError) -> PromError {
    let kind = match e.kind() {
        strata_types::ErrorKind::Unavailable => ErrorKind::Unavailable,
        _ => ErrorKind::Internal,
    };
    PromError::new(kind, e.to_string())
}

/// The engine's labels of a stored series.
fn labels_of(l: &strata_types::Labels) -> Labels {
    Labels::new(
        l.iter()
            .map(|x| (x.name.to_string(), x.value.to_string()))
            .collect(),
    )
}

/// A stored histogram as PromQL computes with it: spans unrolled into
/// `(index, count)` lists.
pub(crate) fn float_histogram(h: &Histogram) -> FloatHistogram {
    let unroll = |spans: &[strata_types::BucketSpan], counts: &[f64]| {
        let mut out = Vec::with_capacity(counts.len());
        let mut idx = 0i32;
        let mut c = counts.iter();
        for s in spans {
            idx = idx.saturating_add(s.offset);
            for _ in 0..s.length {
                if let Some(&v) = c.next() {
                    out.push((idx, v));
                }
                idx = idx.saturating_add(1);
            }
        }
        out
    };
    FloatHistogram {
        hint: match h.reset_hint {
            strata_types::ResetHint::Unknown => ResetHint::Unknown,
            strata_types::ResetHint::Reset => ResetHint::Reset,
            strata_types::ResetHint::NotReset => ResetHint::NotReset,
            strata_types::ResetHint::Gauge => ResetHint::Gauge,
        },
        schema: h.schema,
        zero_threshold: h.zero_threshold,
        zero_count: h.zero_count,
        count: h.count,
        sum: h.sum,
        positive: unroll(&h.positive_spans, &h.positive_counts),
        negative: unroll(&h.negative_spans, &h.negative_counts),
        custom_values: h.custom_values.clone().into(),
    }
}

/// Every native-histogram series of `tenant` matching `matchers`, with
/// its samples in `[start_ms, end_ms]`.
pub(crate) async fn select(
    storage: &Storage,
    tenant: &TenantId,
    matchers: &[Matcher],
    start_ms: i64,
    end_ms: i64,
) -> Result<Vec<Series>, PromError> {
    // A series' labels are matched once, not once per sample.
    let seen = parking_lot::Mutex::new(HashMap::new());
    let keep = |l: &strata_types::Labels| {
        if let Some(&k) = seen.lock().get(l) {
            return k;
        }
        let k = matches_all(&labels_of(l), matchers);
        seen.lock().insert(l.clone(), k);
        k
    };
    let HistogramRead {
        held,
        files,
        table_root,
        store,
    } = storage.select_histograms(tenant, &keep, start_ms, end_ms);
    // Series by their stored labels; per series each time once, the one
    // read last: files first, then what is held (newer), oldest first.
    let mut by_series: HashMap<strata_types::Labels, BTreeMap<i64, Histogram>> = HashMap::new();
    for f in files
        .iter()
        .filter(|f| f.stats.min_ts_ms <= end_ms && f.stats.max_ts_ms >= start_ms)
    {
        let rows = strata_storage::histogram_files::read_file(store.store(), &table_root, f)
            .await
            .map_err(storage_error)?;
        for (labels, s) in rows {
            if (start_ms..=end_ms).contains(&s.timestamp_ms) && keep(&labels) {
                by_series
                    .entry(Arc::unwrap_or_clone(labels))
                    .or_default()
                    .insert(s.timestamp_ms, s.histogram);
            }
        }
    }
    for (labels, s) in held {
        by_series
            .entry((*labels).clone())
            .or_default()
            .insert(s.timestamp_ms, s.histogram);
    }
    let mut out: Vec<Series> = by_series
        .into_iter()
        .map(|(labels, samples)| Series {
            labels: labels_of(&labels),
            points: Vec::new(),
            histograms: samples
                .into_iter()
                .map(|(t, h)| -> HistogramPoint { (t, Arc::new(float_histogram(&h))) })
                .collect(),
        })
        .collect();
    out.sort_unstable_by(|a, b| a.labels.cmp(&b.labels));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_types::BucketSpan;

    #[test]
    fn spans_unroll_to_absolute_indexes() {
        let h = Histogram {
            reset_hint: strata_types::ResetHint::Gauge,
            schema: 0,
            zero_threshold: 0.001,
            zero_count: 1.0,
            count: 7.0,
            sum: 9.5,
            positive_spans: vec![
                BucketSpan {
                    offset: -1,
                    length: 2,
                },
                BucketSpan {
                    offset: 2,
                    length: 1,
                },
            ],
            positive_counts: vec![1.0, 2.0, 3.0],
            negative_spans: Vec::new(),
            negative_counts: Vec::new(),
            custom_values: Vec::new(),
            integer: true,
        };
        let f = float_histogram(&h);
        assert_eq!(f.positive, vec![(-1, 1.0), (0, 2.0), (3, 3.0)]);
        assert_eq!(f.hint, ResetHint::Gauge);
        assert_eq!(f.count, 7.0);
    }
}
