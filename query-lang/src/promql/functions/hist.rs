//! PromQL over native histograms: the `histogram_*` functions of
//! instant vectors, and the window functions over series whose window
//! holds histogram samples (the float functions see only floats).

use std::sync::Arc;

use promql_parser::parser::Call;

use super::super::histogram::{FloatHistogram, KahanSum, ResetHint};
use super::super::value::{Eval, RSeries, Samp, Val};
use super::super::{HistogramPoint, PromError};
use super::{Pts, Scratch, Span, WindowFn, arg};

/// What a window function answers for one series.
pub(crate) enum Answer {
    Float(f64),
    Histogram(FloatHistogram),
}

/// One sample of a window in time order: a float or a histogram.
#[derive(Clone, Copy)]
enum Point<'a> {
    F(i64, f64),
    H(i64, &'a FloatHistogram),
}

impl Point<'_> {
    fn t(&self) -> i64 {
        match self {
            Point::F(t, _) | Point::H(t, _) => *t,
        }
    }
}

/// A window's floats and histograms merged in time order.
fn merged<'a>(floats: &'a [(i64, f64)], hists: &'a [HistogramPoint]) -> Vec<Point<'a>> {
    let mut out = Vec::with_capacity(floats.len() + hists.len());
    let (mut i, mut j) = (0, 0);
    while i < floats.len() || j < hists.len() {
        let take_float = j >= hists.len() || (i < floats.len() && floats[i].0 <= hists[j].0);
        if take_float {
            out.push(Point::F(floats[i].0, floats[i].1));
            i += 1;
        } else {
            out.push(Point::H(hists[j].0, &hists[j].1));
            j += 1;
        }
    }
    out
}

fn metric_name(s: &RSeries) -> String {
    s.labels
        .get(super::super::METRIC_NAME)
        .unwrap_or("")
        .to_owned()
}

/// Prometheus' warning for a window with floats and histograms together.
fn mixed<E: Eval>(ev: &E, s: &RSeries) {
    ev.warn(format!(
        "PromQL warning: encountered a mix of histograms and floats for metric name \"{}\"",
        metric_name(s)
    ));
}

/// `name` over one series' window that holds native histograms: the
/// histogram versions of the functions that have one, the float function
/// `f` over the floats for the others (nothing when there are none).
pub(crate) fn window<E: Eval>(
    ev: &E,
    name: &str,
    s: &RSeries,
    w: &Span,
    f: &WindowFn<'_>,
    scratch: &mut Scratch,
) -> Option<Answer> {
    let (floats, hists) = (s.points(), s.histograms());
    match name {
        "rate" | "increase" | "delta" => {
            if !floats.is_empty() {
                mixed(ev, s);
                return None;
            }
            let is_counter = name != "delta";
            histogram_rate(ev, s, hists, w, is_counter, name == "rate").map(Answer::Histogram)
        }
        "irate" | "idelta" => {
            let all = merged(floats, hists);
            let [.., a, b] = all.as_slice() else {
                return None;
            };
            let (Point::H(t0, h0), Point::H(t1, h1)) = (a, b) else {
                mixed(ev, s);
                return None;
            };
            let is_rate = name == "irate";
            let mut out = (*h1).clone();
            if !is_rate || !h1.detect_reset(h0) {
                out.sub(h0).ok()?;
            }
            out.hint = ResetHint::Gauge;
            out.compact();
            if is_rate {
                let interval = t1 - t0;
                if interval == 0 {
                    return None;
                }
                out.div(interval as f64 / 1000.0);
            }
            Some(Answer::Histogram(out))
        }
        "sum_over_time" | "avg_over_time" => {
            if !floats.is_empty() {
                mixed(ev, s);
                return None;
            }
            let mut total = KahanSum::new(&hists.first()?.1);
            for (_, h) in &hists[1..] {
                if total.add(h).is_err() {
                    ev.warn(incompatible(&metric_name(s)));
                    return None;
                }
            }
            let mut sum = if name == "avg_over_time" {
                total.mean(hists.len() as f64)
            } else {
                total.finish()
            };
            sum.compact();
            Some(Answer::Histogram(sum))
        }
        "count_over_time" => Some(Answer::Float((floats.len() + hists.len()) as f64)),
        "present_over_time" => Some(Answer::Float(1.0)),
        "last_over_time" | "first_over_time" => {
            let all = merged(floats, hists);
            let p = if name == "last_over_time" {
                all.last()
            } else {
                all.first()
            };
            Some(match p? {
                Point::F(_, v) => Answer::Float(*v),
                Point::H(_, h) => Answer::Histogram((*h).clone()),
            })
        }
        "ts_of_last_over_time" | "ts_of_first_over_time" => {
            let all = merged(floats, hists);
            let p = if name == "ts_of_last_over_time" {
                all.last()
            } else {
                all.first()
            };
            Some(Answer::Float(p?.t() as f64 / 1000.0))
        }
        "changes" => {
            let all = merged(floats, hists);
            let mut n = 0.0;
            for pair in all.windows(2) {
                let changed = match (pair[0], pair[1]) {
                    (Point::F(_, a), Point::F(_, b)) => a != b && !(a.is_nan() && b.is_nan()),
                    (Point::H(_, a), Point::H(_, b)) => !a.same_data(b),
                    _ => true,
                };
                if changed {
                    n += 1.0;
                }
            }
            Some(Answer::Float(n))
        }
        "resets" => {
            let all = merged(floats, hists);
            let mut n = 0.0;
            for pair in all.windows(2) {
                let reset = match (pair[0], pair[1]) {
                    (Point::F(_, a), Point::F(_, b)) => b < a,
                    (Point::H(_, a), Point::H(_, b)) => b.detect_reset(a),
                    _ => true,
                };
                if reset {
                    n += 1.0;
                }
            }
            Some(Answer::Float(n))
        }
        _ => {
            if floats.is_empty() {
                return None;
            }
            f(&Pts(floats, false), w, scratch).map(Answer::Float)
        }
    }
}

fn incompatible(name: &str) -> String {
    format!(
        "PromQL warning: vector contains a mix of histograms with exponential and custom buckets schemas for metric name \"{name}\""
    )
}

/// Prometheus' `extrapolatedRate` over histogram samples: the last minus
/// the first (plus what a counter lost at each reset), extrapolated to
/// the window's edges as for floats (the zero point found from the count).
fn histogram_rate<E: Eval>(
    ev: &E,
    s: &RSeries,
    p: &[HistogramPoint],
    w: &Span,
    is_counter: bool,
    is_rate: bool,
) -> Option<FloatHistogram> {
    if p.len() < 2 {
        return None;
    }
    let name = metric_name(s);
    let (first_t, last_t) = (p[0].0, p[p.len() - 1].0);
    let last = &p[p.len() - 1].1;
    let mut prev: FloatHistogram = (*p[0].1).clone();
    if is_counter && (prev.hint == ResetHint::Gauge || last.hint == ResetHint::Gauge) {
        ev.warn(format!(
            "PromQL warning: this native histogram metric is not a counter: \"{name}\""
        ));
    }
    // A reset between the first two samples: the first is not looked at
    // (its layout need not fit).
    if is_counter && p[1].1.detect_reset(&prev) {
        prev = FloatHistogram {
            schema: p[1].1.schema,
            custom_values: Arc::clone(&p[1].1.custom_values),
            ..FloatHistogram::default()
        };
    }
    let custom = prev.uses_custom_buckets();
    if last.uses_custom_buckets() != custom
        || p[1..p.len() - 1]
            .iter()
            .any(|(_, h)| h.uses_custom_buckets() != custom)
    {
        ev.warn(incompatible(&name));
        return None;
    }
    let mut min_schema = last.schema.min(prev.schema);
    if is_counter {
        for (_, h) in &p[1..p.len() - 1] {
            min_schema = min_schema.min(h.schema);
        }
    }
    let mut h = (**last).clone();
    h.reduce_to(min_schema);
    h.sub(&prev).ok()?;
    if is_counter {
        let mut before: &FloatHistogram = &prev;
        for (_, cur) in &p[1..] {
            if cur.detect_reset(before) {
                h.add(before).ok()?;
            }
            before = cur;
        }
    } else if p[0].1.hint != ResetHint::Gauge || last.hint != ResetHint::Gauge {
        ev.warn(format!(
            "PromQL warning: this native histogram metric is not a gauge: \"{name}\""
        ));
    }
    h.hint = ResetHint::Gauge;
    h.compact();
    // The zero point from the counts, as Prometheus finds it.
    let zero_point =
        (is_counter && h.count > 0.0 && p[0].1.count >= 0.0).then_some((p[0].1.count, h.count));
    h.mul(super::window::extrapolation(
        first_t,
        last_t,
        p.len(),
        w,
        zero_point,
        is_rate,
    ));
    Some(h)
}

/// `histogram_count`, `histogram_sum`, `histogram_avg`,
/// `histogram_stddev`, `histogram_stdvar`: a float
/// of each histogram sample (float samples are left out); `None` for any
/// other function.
pub(crate) fn of_histograms<E: Eval>(ev: &E, c: &Call, t: i64) -> Result<Option<Val>, PromError> {
    let name = c.func.name;
    let f: Box<dyn Fn(&FloatHistogram) -> f64> = match name {
        "histogram_count" => Box::new(|h| h.count),
        "histogram_sum" => Box::new(|h| h.sum),
        "histogram_avg" => Box::new(|h| h.sum / h.count),
        "histogram_stddev" => Box::new(|h| h.variance().sqrt()),
        "histogram_stdvar" => Box::new(FloatHistogram::variance),
        _ => return Ok(None),
    };
    let v = ev.vector(arg(c, 0)?, t)?;
    Ok(Some(Val::Vector(
        v.into_iter()
            .filter_map(|s| {
                let v = f(s.h.as_deref()?);
                Some(Samp::float(s.labels, t, v, true))
            })
            .collect(),
    )))
}
