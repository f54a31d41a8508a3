//! Range aggregations: a function of the entries (or unwrapped values) of
//! each series in the window `(t - range - offset, t - offset]` at every
//! step, Loki's definitions (`count_over_time` … `rate_counter`,
//! `absent_over_time`).

use std::collections::BTreeMap;

use super::ast::*;
use super::labels::{ERROR_DETAILS, ERROR_LABEL, Labels};
use super::model::{Options, Series, Value, check_entries, format_labels, raw_line_filters};
use super::pipeline::{label_filter, process};
use super::source::{EvalError, LogSource};

/// A range aggregation's parts, as parsed.
pub(super) struct RangeQuery<'a> {
    pub func: RangeFn,
    pub log: &'a LogExpr,
    pub range: std::time::Duration,
    pub offset: std::time::Duration,
    pub unwrap: Option<&'a Unwrap>,
    pub param: Option<f64>,
    pub grouping: Option<&'a Grouping>,
}

pub(super) async fn range_agg(
    source: &dyn LogSource,
    q: &RangeQuery<'_>,
    steps: &[i64],
    opts: &Options,
) -> Result<Value, EvalError> {
    let range_ns = i64::try_from(q.range.as_nanos()).unwrap_or(i64::MAX);
    let offset_ns = i64::try_from(q.offset.as_nanos()).unwrap_or(i64::MAX);
    let (Some(first), Some(last)) = (steps.first(), steps.last()) else {
        return Ok(Value::Series(Vec::new()));
    };
    // Windows are (t - range, t]: fetch [first - range + 1, last + 1).
    let from = first
        .saturating_sub(offset_ns)
        .saturating_sub(range_ns)
        .saturating_add(1);
    let to = last.saturating_sub(offset_ns).saturating_add(1);
    let streams = source
        .select(
            &q.log.matchers,
            &raw_line_filters(&q.log.pipeline),
            from,
            to,
        )
        .await?;
    check_entries(streams.iter().map(|s| s.entries.len()).sum(), opts)?;
    // Final label set → (timestamp, value), sorted by time below.
    let bytes = matches!(q.func, RangeFn::BytesOverTime | RangeFn::BytesRate);
    let mut groups: BTreeMap<Labels, Vec<(i64, f64)>> = BTreeMap::new();
    for s in &streams {
        for e in &s.entries {
            if e.timestamp_ns < from || e.timestamp_ns >= to {
                continue;
            }
            let Some((labels, line)) = process(&q.log.pipeline, &s.labels, e) else {
                continue;
            };
            let (labels, v) = match q.unwrap {
                None if bytes => (labels, line.len() as f64),
                None => (labels, 1.0),
                Some(u) => match extract(u, labels, q.grouping) {
                    Some(x) => x,
                    None => continue,
                },
            };
            groups.entry(labels).or_default().push((e.timestamp_ns, v));
        }
    }
    // Loki refuses metrics of entries its pipeline marked as failed.
    if let Some(bad) = groups.keys().find(|l| l.contains_key(ERROR_LABEL)) {
        return Err(EvalError::Pipeline {
            error: bad[ERROR_LABEL].clone(),
            series: format_labels(bad),
        });
    }
    let window = |t: i64| {
        let hi_t = t.saturating_sub(offset_ns);
        (hi_t.saturating_sub(range_ns), hi_t)
    };
    if q.func == RangeFn::AbsentOverTime {
        let mut all: Vec<i64> = groups.values().flatten().map(|p| p.0).collect();
        all.sort_unstable();
        let points: Vec<(i64, f64)> = steps
            .iter()
            .filter(|&&t| {
                let (lo_t, hi_t) = window(t);
                all.partition_point(|x| *x <= lo_t) == all.partition_point(|x| *x <= hi_t)
            })
            .map(|&t| (t, 1.0))
            .collect();
        if points.is_empty() {
            return Ok(Value::Series(Vec::new()));
        }
        return Ok(Value::Series(vec![Series {
            labels: absent_labels(&q.log.matchers),
            points,
        }]));
    }
    let secs = q.range.as_secs_f64();
    let mut out = Vec::with_capacity(groups.len());
    for (labels, mut samples) in groups {
        samples.sort_by_key(|e| e.0);
        // Prefix sums, for the sums and counts by binary search.
        let mut prefix = Vec::with_capacity(samples.len() + 1);
        prefix.push(0.0f64);
        for (_, v) in &samples {
            prefix.push(prefix.last().copied().unwrap_or(0.0) + v);
        }
        let mut points = Vec::new();
        for &t in steps {
            let (lo_t, hi_t) = window(t);
            let lo = samples.partition_point(|e| e.0 <= lo_t);
            let hi = samples.partition_point(|e| e.0 <= hi_t);
            if hi <= lo {
                continue;
            }
            let w = &samples[lo..hi];
            let count = (hi - lo) as f64;
            let sum = prefix[hi] - prefix[lo];
            let v = match q.func {
                RangeFn::CountOverTime => count,
                RangeFn::Rate if q.unwrap.is_none() => count / secs,
                RangeFn::Rate | RangeFn::BytesRate => sum / secs,
                RangeFn::BytesOverTime | RangeFn::SumOverTime => sum,
                RangeFn::AvgOverTime => avg(w),
                RangeFn::MinOverTime => w
                    .iter()
                    .fold(f64::NAN, |m, p| if p.1 < m || m.is_nan() { p.1 } else { m }),
                RangeFn::MaxOverTime => w
                    .iter()
                    .fold(f64::NAN, |m, p| if p.1 > m || m.is_nan() { p.1 } else { m }),
                RangeFn::StdvarOverTime => stdvar(w),
                RangeFn::StddevOverTime => stdvar(w).sqrt(),
                RangeFn::QuantileOverTime => {
                    let mut values: Vec<f64> = w.iter().map(|p| p.1).collect();
                    crate::promql::functions::quantile(q.param.unwrap_or(f64::NAN), &mut values)
                }
                RangeFn::FirstOverTime => w[0].1,
                RangeFn::LastOverTime => w[w.len() - 1].1,
                RangeFn::RateCounter => rate_counter(w, secs),
                RangeFn::AbsentOverTime => 1.0,
            };
            points.push((t, v));
        }
        if !points.is_empty() {
            out.push(Series { labels, points });
        }
    }
    Ok(Value::Series(out))
}

/// An entry's unwrapped value and its series' labels, or `None` when a
/// filter after `unwrap` drops it (Loki's `labelSampleExtractor`).
fn extract(u: &Unwrap, mut labels: Labels, grouping: Option<&Grouping>) -> Option<(Labels, f64)> {
    let raw = labels.get(&u.label).cloned().unwrap_or_default();
    let v = if raw.is_empty() {
        labels.insert(ERROR_LABEL.into(), "SampleExtractionErr".into());
        labels.insert(
            ERROR_DETAILS.into(),
            format!("label {:?} is absent or empty", u.label),
        );
        0.0
    } else {
        let parsed = match u.conversion {
            Conversion::Float => raw.trim().parse::<f64>().ok(),
            Conversion::Duration => super::units::parse_go_duration(raw.trim()),
            Conversion::Bytes => super::units::parse_humanized_bytes(raw.trim()),
        };
        parsed.unwrap_or_else(|| {
            labels.insert(ERROR_LABEL.into(), "SampleExtractionErr".into());
            labels.insert(
                ERROR_DETAILS.into(),
                format!("cannot convert {raw:?} of label {} to a number", u.label),
            );
            0.0
        })
    };
    for f in &u.post_filters {
        if !label_filter(f, &mut labels) {
            return None;
        }
    }
    if labels.contains_key(ERROR_LABEL) {
        return Some((labels, v));
    }
    match grouping {
        Some(Grouping::By(names)) => labels.retain(|k, _| names.contains(k)),
        Some(Grouping::Without(names)) => {
            labels.retain(|k, _| !names.contains(k) && *k != u.label);
        }
        None => {
            labels.remove(&u.label);
        }
    }
    Some((labels, v))
}

/// The labels `absent_over_time` answers with: the selector's equality
/// matchers, less any name matched twice or otherwise.
fn absent_labels(matchers: &[StreamMatcher]) -> Labels {
    let mut out = Labels::new();
    let mut drop = Vec::new();
    for m in matchers {
        if m.op == MatchOp::Equal && !out.contains_key(&m.name) {
            out.insert(m.name.clone(), m.value.clone());
        } else {
            drop.push(&m.name);
        }
    }
    for n in drop {
        out.remove(n);
    }
    out
}

/// Loki's running mean (keeps infinities as they are).
fn avg(w: &[(i64, f64)]) -> f64 {
    let (mut mean, mut count) = (0.0f64, 0.0f64);
    for &(_, v) in w {
        count += 1.0;
        if mean.is_infinite() {
            if v.is_infinite() && (mean > 0.0) == (v > 0.0) {
                continue;
            }
            if !v.is_infinite() && !v.is_nan() {
                continue;
            }
        }
        mean += v / count - mean / count;
    }
    mean
}

/// Population variance, Welford's method.
fn stdvar(w: &[(i64, f64)]) -> f64 {
    let (mut aux, mut count, mut mean) = (0.0f64, 0.0f64, 0.0f64);
    for &(_, v) in w {
        count += 1.0;
        let delta = v - mean;
        mean += delta / count;
        aux += delta * (v - mean);
    }
    aux / count
}

/// `rate_counter`: Loki's copy of Prometheus' extrapolated rate, with its
/// window start taken as the first sample's time minus the range.
fn rate_counter(w: &[(i64, f64)], range_secs: f64) -> f64 {
    if w.len() < 2 {
        return 0.0;
    }
    let (first, last) = (w[0], w[w.len() - 1]);
    let mut result = last.1 - first.1;
    let mut prev = 0.0;
    for &(_, v) in w {
        if v < prev {
            result += prev;
        }
        prev = v;
    }
    let mut to_start = range_secs;
    let to_end = 0.0;
    let sampled = (last.0 - first.0) as f64 / 1e9;
    let average = sampled / (w.len() - 1) as f64;
    if result > 0.0 && first.1 >= 0.0 {
        let to_zero = sampled * (first.1 / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    let threshold = average * 1.1;
    let mut interval = sampled;
    interval += if to_start < threshold {
        to_start
    } else {
        average / 2.0
    };
    interval += if to_end < threshold {
        to_end
    } else {
        average / 2.0
    };
    result * (interval / sampled) / range_secs
}
