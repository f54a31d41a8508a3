//! Range aggregations: a function of the entries (or unwrapped values) of
//! each series in the window `(t - range - offset, t - offset]` at every
//! step, Loki's definitions (`count_over_time` … `rate_counter`,
//! `absent_over_time`).

use super::ast::*;
use super::cells::{Cells, Grid};
use super::fold::{Fold, RangeQuery};
use super::labels::{ERROR_LABEL, Labels};
use super::model::{Options, Series, Value, format_labels};
use super::source::{EvalError, LogSource};

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
    let grid = Grid::new(steps, range_ns, offset_ns);
    let mut fold = Fold::new(q, &grid, opts);
    fold.read(source, from, to).await?;
    let Fold { cells, samples, .. } = fold;
    // Loki refuses metrics of entries its pipeline marked as failed.
    if let Some(bad) = cells
        .keys()
        .chain(samples.keys())
        .filter(|l| l.contains_key(ERROR_LABEL))
        .min()
    {
        return Err(EvalError::Pipeline {
            error: bad[ERROR_LABEL].clone(),
            series: format_labels(bad),
        });
    }
    if q.func == RangeFn::AbsentOverTime {
        let mut all = Cells::default();
        for c in cells.values() {
            all.merge(c);
        }
        let present: Vec<usize> = all.per_window(grid.windows()).iter().map(|w| w.0).collect();
        let points: Vec<(i64, f64)> = steps
            .iter()
            .enumerate()
            .filter(|(i, _)| present.binary_search(i).is_err())
            .map(|(_, &t)| (t, 1.0))
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
    let mut out = Vec::with_capacity(cells.len() + samples.len());
    for (labels, c) in cells {
        let points: Vec<(i64, f64)> = c
            .per_window(grid.windows())
            .into_iter()
            .map(|(i, w)| {
                let v = match q.func {
                    RangeFn::CountOverTime => w.count as f64,
                    RangeFn::Rate if q.unwrap.is_none() => w.count as f64 / secs,
                    RangeFn::Rate | RangeFn::BytesRate => w.sum / secs,
                    RangeFn::MinOverTime => w.min,
                    RangeFn::MaxOverTime => w.max,
                    _ => w.sum,
                };
                (steps[i], v)
            })
            .collect();
        if !points.is_empty() {
            out.push(Series { labels, points });
        }
    }
    let window = |t: i64| {
        let hi_t = t.saturating_sub(offset_ns);
        (hi_t.saturating_sub(range_ns), hi_t)
    };
    for (labels, mut samples) in samples {
        samples.sort_by_key(|e| e.0);
        let mut points = Vec::new();
        for &t in steps {
            let (lo_t, hi_t) = window(t);
            let lo = samples.partition_point(|e| e.0 <= lo_t);
            let hi = samples.partition_point(|e| e.0 <= hi_t);
            if hi <= lo {
                continue;
            }
            let w = &samples[lo..hi];
            let v = match q.func {
                RangeFn::AvgOverTime => avg(w),
                RangeFn::StdvarOverTime => stdvar(w),
                RangeFn::StddevOverTime => stdvar(w).sqrt(),
                RangeFn::QuantileOverTime => {
                    let mut values: Vec<f64> = w.iter().map(|p| p.1).collect();
                    crate::promql::functions::quantile(q.param.unwrap_or(f64::NAN), &mut values)
                }
                RangeFn::FirstOverTime => w[0].1,
                RangeFn::LastOverTime => w[w.len() - 1].1,
                RangeFn::RateCounter => rate_counter(w, secs),
                _ => f64::NAN,
            };
            points.push((t, v));
        }
        if !points.is_empty() {
            out.push(Series { labels, points });
        }
    }
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    Ok(Value::Series(out))
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
