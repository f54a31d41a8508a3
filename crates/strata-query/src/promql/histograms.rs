//! Native histograms for PromQL: the samples held (pending or being
//! flushed) and the histograms table's files of the query's range, each
//! series' samples in time order, one per timestamp (the one written last),
//! as the engine's float histograms.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use strata_query_lang::promql::{
    ErrorKind, FloatHistogram, HistogramPoint, Labels, METRIC_NAME, Matcher, PromError, ResetHint,
    Series, matches_all,
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

/// The metric names of each histograms file a query has read, by path
/// (files are immutable; a compacted file's entry is forgotten when the
/// map is cleared at its bound).
static FILE_METRICS: std::sync::LazyLock<
    parking_lot::Mutex<HashMap<String, Arc<BTreeSet<String>>>>,
> = std::sync::LazyLock::new(Default::default);

/// Files whose metrics are kept at most.
const FILE_METRICS_BOUND: usize = 100_000;

/// Whether the file at `path` may hold a metric the `__name__` matchers
/// `names` select: unknown until a query read it.
fn may_hold(path: &str, names: &[&Matcher]) -> bool {
    FILE_METRICS
        .lock()
        .get(path)
        .is_none_or(|metrics| metrics.iter().any(|m| names.iter().all(|n| n.is_match(m))))
}

fn remember_metrics(path: String, rows: &[strata_head::HistogramRow]) {
    let metrics: BTreeSet<String> = rows
        .iter()
        .filter_map(|(l, _)| l.get(METRIC_NAME).map(str::to_owned))
        .collect();
    let mut map = FILE_METRICS.lock();
    if map.len() >= FILE_METRICS_BOUND {
        map.clear();
    }
    map.insert(path, Arc::new(metrics));
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
    let names: Vec<&Matcher> = matchers.iter().filter(|m| m.name == METRIC_NAME).collect();
    for f in files
        .iter()
        .filter(|f| f.stats.min_ts_ms <= end_ms && f.stats.max_ts_ms >= start_ms)
    {
        let path = f.path.under(&table_root).to_string();
        // A file none of whose metrics the selector names is not read
        // (once a query read it: the metrics of each file are kept).
        if !may_hold(&path, &names) {
            continue;
        }
        let rows = strata_storage::histogram_files::read_file(store.store(), &table_root, f)
            .await
            .map_err(storage_error)?;
        remember_metrics(path, &rows);
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
    fn a_file_is_skipped_once_its_metrics_are_known_not_to_match() {
        use strata_query_lang::promql::MatchOp;
        let path = "tenants/t/histograms/day=2026-12-08/test-skip.parquet";
        let pick = Matcher::new(MatchOp::Equal, METRIC_NAME, "pick_seconds");
        let up = Matcher::new(MatchOp::Equal, METRIC_NAME, "up");
        assert!(may_hold(path, &[&up]), "unknown: read");
        let labels = strata_types::Labels::try_from_sorted(vec![strata_types::Label::new(
            "__name__",
            "pick_seconds",
        )])
        .unwrap();
        let sample = strata_types::HistogramSample {
            timestamp_ms: 0,
            histogram: Histogram {
                reset_hint: strata_types::ResetHint::Unknown,
                schema: 0,
                zero_threshold: 0.0,
                zero_count: 0.0,
                count: 0.0,
                sum: 0.0,
                positive_spans: Vec::new(),
                positive_counts: Vec::new(),
                negative_spans: Vec::new(),
                negative_counts: Vec::new(),
                custom_values: Vec::new(),
                integer: true,
            },
        };
        remember_metrics(path.to_owned(), &[(Arc::new(labels), sample)]);
        assert!(!may_hold(path, &[&up]));
        assert!(may_hold(path, &[&pick]));
        assert!(may_hold(path, &[]), "no name matcher: read");
    }

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
