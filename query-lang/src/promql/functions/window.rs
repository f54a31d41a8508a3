//! Functions of one range vector (`rate`, the `*_over_time` family, …):
//! the value of one window's points, shared by the step-by-step path and
//! the range precompute.

use promql_parser::parser::Call;

use super::super::PromError;
use super::super::value::Eval;
use super::{arg, kahan_add, quantile};

/// One window's points, oldest first; the flag says they are known never
/// to decrease (no counter reset to look for).
pub(crate) struct Pts<'a>(pub &'a [(i64, f64)], pub bool);

impl Pts<'_> {
    pub fn points(&self) -> &[(i64, f64)] {
        self.0
    }
}

/// A window `(start, end]`, evaluated at `t`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Span {
    pub start: i64,
    pub end: i64,
    pub t: i64,
}

fn values<'a>(s: &'a Pts<'_>) -> impl Iterator<Item = f64> + 'a {
    s.points().iter().map(|p| p.1)
}

/// Prometheus' `extrapolatedRate` for `rate`, `increase` and `delta`.
fn extrapolated_rate(s: &Pts<'_>, w: &Span, is_counter: bool, is_rate: bool) -> Option<f64> {
    let p = s.points();
    if p.len() < 2 {
        return None;
    }
    let (first_t, first_v) = p[0];
    let (last_t, last_v) = p[p.len() - 1];
    let mut result = last_v - first_v;
    if is_counter && !s.1 {
        let mut prev = first_v;
        for &(_, v) in &p[1..] {
            if v < prev {
                result += prev;
            }
            prev = v;
        }
    }
    let mut to_start = (first_t - w.start) as f64 / 1000.0;
    let mut to_end = (w.end - last_t) as f64 / 1000.0;
    let sampled = (last_t - first_t) as f64 / 1000.0;
    let avg_between = sampled / (p.len() - 1) as f64;
    let threshold = avg_between * 1.1;
    if to_start >= threshold {
        to_start = avg_between / 2.0;
    }
    // Prometheus 3.x cuts at the counter's zero point after the threshold
    // check (2.x did it before; the 3.x test data needs this order).
    if is_counter && result > 0.0 && first_v >= 0.0 {
        let to_zero = sampled * (first_v / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    if to_end >= threshold {
        to_end = avg_between / 2.0;
    }
    let mut factor = (sampled + to_start + to_end) / sampled;
    if is_rate {
        factor /= (w.end - w.start) as f64 / 1000.0;
    }
    Some(result * factor)
}

fn instant_delta(s: &Pts<'_>, is_rate: bool) -> Option<f64> {
    let p = s.points();
    if p.len() < 2 {
        return None;
    }
    let (pt, pv) = p[p.len() - 2];
    let (lt, lv) = p[p.len() - 1];
    let mut result = if is_rate && lv < pv { lv } else { lv - pv };
    let interval = lt - pt;
    if interval == 0 {
        return None;
    }
    if is_rate {
        result /= interval as f64 / 1000.0;
    }
    Some(result)
}

/// Least-squares slope and intercept at `intercept_t`, Kahan-summed.
fn linear_regression(p: &[(i64, f64)], intercept_t: i64) -> (f64, f64) {
    let (mut n, mut sx, mut cx, mut sy, mut cy, mut sxy, mut cxy, mut sx2, mut cx2) =
        (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    let init_y = p[0].1;
    let mut const_y = true;
    for (i, &(t, v)) in p.iter().enumerate() {
        if const_y && i > 0 && v != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = (t - intercept_t) as f64 / 1e3;
        (sx, cx) = kahan_add(x, sx, cx);
        (sy, cy) = kahan_add(v, sy, cy);
        (sxy, cxy) = kahan_add(x * v, sxy, cxy);
        (sx2, cx2) = kahan_add(x * x, sx2, cx2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    let (sx, sy, sxy, sx2) = (sx + cx, sy + cy, sxy + cxy, sx2 + cx2);
    let cov = sxy - sx * sy / n;
    let var = sx2 - sx * sx / n;
    let slope = cov / var;
    let intercept = sy / n - slope * sx / n;
    (slope, intercept)
}

fn avg_over(s: &Pts<'_>) -> f64 {
    let (mut sum, mut c) = (0.0, 0.0);
    let n = s.points().len() as f64;
    for v in values(s) {
        (sum, c) = kahan_add(v, sum, c);
    }
    if sum.is_finite() || values(s).any(|v| !v.is_finite()) {
        return (sum + if sum.is_infinite() { 0.0 } else { c }) / n;
    }
    let mut mean = 0.0;
    for (i, v) in values(s).enumerate() {
        mean += v / (i + 1) as f64 - mean / (i + 1) as f64;
    }
    mean
}

fn stdvar_over(s: &Pts<'_>) -> f64 {
    let (mut n, mut mean, mut m2) = (0.0, 0.0, 0.0);
    for v in values(s) {
        n += 1.0;
        let delta = v - mean;
        mean += delta / n;
        m2 += delta * (v - mean);
    }
    m2 / n
}

/// A range function's value over one window's points.
pub(crate) type WindowFn<'a> = Box<dyn Fn(&Pts<'_>, &Span) -> Option<f64> + Send + Sync + 'a>;

/// The functions of one range-vector argument [`window_fn`] knows.
pub(crate) const WINDOW_FNS: [&str; 25] = [
    "present_over_time",
    "rate",
    "increase",
    "delta",
    "irate",
    "idelta",
    "deriv",
    "predict_linear",
    "resets",
    "changes",
    "avg_over_time",
    "sum_over_time",
    "count_over_time",
    "min_over_time",
    "max_over_time",
    "last_over_time",
    "first_over_time",
    "ts_of_last_over_time",
    "ts_of_first_over_time",
    "ts_of_max_over_time",
    "ts_of_min_over_time",
    "stdvar_over_time",
    "stddev_over_time",
    "quantile_over_time",
    "mad_over_time",
];

/// For a function of one range vector (rate, the `*_over_time` family, …):
/// which argument is the range vector, whether the metric name stays, and
/// the value of one window. Scalar arguments are evaluated at `t`.
pub(crate) fn window_fn<E: Eval>(
    ev: &E,
    c: &Call,
    t: i64,
) -> Result<(usize, bool, WindowFn<'static>), PromError> {
    Ok(match c.func.name {
        "present_over_time" => (0, false, Box::new(|_, _| Some(1.0))),
        "rate" => (
            0,
            false,
            Box::new(|s, w| extrapolated_rate(s, w, true, true)),
        ),
        "increase" => (
            0,
            false,
            Box::new(|s, w| extrapolated_rate(s, w, true, false)),
        ),
        "delta" => (
            0,
            false,
            Box::new(|s, w| extrapolated_rate(s, w, false, false)),
        ),
        "irate" => (0, false, Box::new(|s, _| instant_delta(s, true))),
        "idelta" => (0, false, Box::new(|s, _| instant_delta(s, false))),
        "deriv" => (
            0,
            false,
            Box::new(|s, _| {
                (s.points().len() >= 2).then(|| linear_regression(s.points(), s.points()[0].0).0)
            }),
        ),
        "predict_linear" => {
            let d = ev.scalar(arg(c, 1)?, t)?;
            // The intercept is at the evaluation time, not at an `@` time.
            (
                0,
                false,
                Box::new(move |s, w| {
                    (s.points().len() >= 2).then(|| {
                        let (slope, intercept) = linear_regression(s.points(), w.t);
                        slope * d + intercept
                    })
                }),
            )
        }
        "resets" => (
            0,
            false,
            Box::new(|s, _| Some(s.points().windows(2).filter(|p| p[1].1 < p[0].1).count() as f64)),
        ),
        "changes" => (
            0,
            false,
            Box::new(|s, _| {
                Some(
                    s.points()
                        .windows(2)
                        .filter(|p| !(p[1].1 == p[0].1 || (p[1].1.is_nan() && p[0].1.is_nan())))
                        .count() as f64,
                )
            }),
        ),
        "avg_over_time" => (0, false, Box::new(|s, _| Some(avg_over(s)))),
        "sum_over_time" => (
            0,
            false,
            Box::new(|s, _| {
                let (mut sum, mut k) = (0.0, 0.0);
                for v in values(s) {
                    (sum, k) = kahan_add(v, sum, k);
                }
                Some(if sum.is_infinite() { sum } else { sum + k })
            }),
        ),
        "count_over_time" => (0, false, Box::new(|s, _| Some(s.points().len() as f64))),
        "min_over_time" => (
            0,
            false,
            Box::new(|s, _| {
                Some(values(s).fold(
                    f64::NAN,
                    |acc, v| if acc.is_nan() || v < acc { v } else { acc },
                ))
            }),
        ),
        "max_over_time" => (
            0,
            false,
            Box::new(|s, _| {
                Some(values(s).fold(
                    f64::NAN,
                    |acc, v| if acc.is_nan() || v > acc { v } else { acc },
                ))
            }),
        ),
        "last_over_time" => (0, true, Box::new(|s, _| s.points().last().map(|p| p.1))),
        "first_over_time" => (0, true, Box::new(|s, _| s.points().first().map(|p| p.1))),
        "ts_of_last_over_time" => (
            0,
            false,
            Box::new(|s, _| s.points().last().map(|p| p.0 as f64 / 1000.0)),
        ),
        "ts_of_first_over_time" => (
            0,
            false,
            Box::new(|s, _| s.points().first().map(|p| p.0 as f64 / 1000.0)),
        ),
        "ts_of_max_over_time" => (
            0,
            false,
            Box::new(|s, _| {
                // The last time the maximum was reached.
                let mut best: Option<(i64, f64)> = None;
                for &(ts, v) in s.points() {
                    if best.is_none_or(|(_, b)| v >= b || b.is_nan()) {
                        best = Some((ts, v));
                    }
                }
                best.map(|(ts, _)| ts as f64 / 1000.0)
            }),
        ),
        "ts_of_min_over_time" => (
            0,
            false,
            Box::new(|s, _| {
                let mut best: Option<(i64, f64)> = None;
                for &(ts, v) in s.points() {
                    if best.is_none_or(|(_, b)| v <= b || b.is_nan()) {
                        best = Some((ts, v));
                    }
                }
                best.map(|(ts, _)| ts as f64 / 1000.0)
            }),
        ),
        "stdvar_over_time" => (0, false, Box::new(|s, _| Some(stdvar_over(s)))),
        "stddev_over_time" => (0, false, Box::new(|s, _| Some(stdvar_over(s).sqrt()))),
        "quantile_over_time" => {
            let q = ev.scalar(arg(c, 0)?, t)?;
            (
                1,
                false,
                Box::new(move |s, _| {
                    let mut v: Vec<f64> = values(s).collect();
                    Some(quantile(q, &mut v))
                }),
            )
        }
        "mad_over_time" => (
            0,
            false,
            Box::new(|s, _| {
                let mut v: Vec<f64> = values(s).collect();
                let median = quantile(0.5, &mut v);
                let mut dev: Vec<f64> = v.iter().map(|x| (x - median).abs()).collect();
                Some(quantile(0.5, &mut dev))
            }),
        ),
        other => {
            return Err(PromError::new(
                super::super::ErrorKind::Internal,
                format!("{other} is not a window function"),
            ));
        }
    })
}
