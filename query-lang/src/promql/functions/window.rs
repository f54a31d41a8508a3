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
    let zero_point = (is_counter && result > 0.0 && first_v >= 0.0).then_some((first_v, result));
    Some(result * extrapolation(first_t, last_t, p.len(), w, zero_point, is_rate))
}

/// Prometheus' `extrapolatedRate` scale of a window's last-minus-first
/// (floats or histograms alike): from `n` samples between `first_t` and
/// `last_t`, out to the window's edges when the samples come close to
/// them (within 1.1 average intervals), else half an interval; for a
/// counter not past its zero point (`zero_point`: the first value and the
/// increase, `first / increase` of the sampled time before the first);
/// per second for `rate`.
pub(crate) fn extrapolation(
    first_t: i64,
    last_t: i64,
    n: usize,
    w: &Span,
    zero_point: Option<(f64, f64)>,
    is_rate: bool,
) -> f64 {
    let mut to_start = (first_t - w.start) as f64 / 1000.0;
    let mut to_end = (w.end - last_t) as f64 / 1000.0;
    let sampled = (last_t - first_t) as f64 / 1000.0;
    let avg_between = sampled / (n - 1) as f64;
    let threshold = avg_between * 1.1;
    if to_start >= threshold {
        to_start = avg_between / 2.0;
    }
    // Prometheus 3.x cuts at the counter's zero point after the threshold
    // check (2.x did it before; the 3.x test data needs this order).
    if let Some((first, increase)) = zero_point {
        let to_zero = sampled * (first / increase);
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
    factor
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

/// Least-squares slope and intercept at `intercept_t`, Kahan-summed as
/// Prometheus' `linearRegression` (its x side from `memo`).
fn linear_regression(p: &[(i64, f64)], intercept_t: i64, memo: &mut Scratch) -> (f64, f64) {
    let init_y = p[0].1;
    if p.iter().all(|q| q.1 == init_y) {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    let (sx, sx2, sy, sxy) = memo.regression_sums(p, intercept_t);
    let n = p.len() as f64;
    let cov = sxy - sx * sy / n;
    let var = sx2 - sx * sx / n;
    let slope = cov / var;
    let intercept = sy / n - slope * sx / n;
    (slope, intercept)
}

/// What a window function keeps from one window to the next of one
/// caller (a worker filling a call's rows, an instant step's series): the
/// x sides of the last few regressions, and a buffer of values.
#[derive(Default)]
pub(crate) struct Scratch {
    sides: Vec<XSide>,
    /// The side replaced on the next miss (the oldest).
    next: usize,
    /// A window too long to keep is worked out here.
    long: XSide,
    values: Vec<f64>,
    /// X sides worked out (the test counts them to see sides kept).
    #[cfg(test)]
    fills: usize,
}

/// A regression's x side: each point's distance from the intercept time
/// (`d`), its x (`d / 1000`, in seconds), and the compensated sums of x
/// and x². It depends only on the distances, so it is the same for every
/// window whose points sit at the same distances from its evaluation
/// time: the steps of a regularly scraped series when the step is a
/// multiple of the scrape interval, and the series scraped together.
#[derive(Default)]
struct XSide {
    d: Vec<i64>,
    x: Vec<f64>,
    sx: f64,
    sx2: f64,
}

/// Sides kept, and the longest window kept (`SIDES × MAX_KEPT` points of
/// 16 bytes per thread at most).
const SIDES: usize = 4;
const MAX_KEPT: usize = 8192;

impl XSide {
    fn matches(&self, p: &[(i64, f64)], t0: i64) -> bool {
        self.d.len() == p.len() && self.d.iter().zip(p).all(|(&d, q)| d == q.0 - t0)
    }

    /// Works the side out from `p`, and in the same pass the y sums
    /// (Σy, Σxy) it answers with.
    fn fill(&mut self, p: &[(i64, f64)], t0: i64) -> (f64, f64) {
        self.d.clear();
        self.x.clear();
        let (mut sx, mut cx, mut sx2, mut cx2) = (0.0, 0.0, 0.0, 0.0);
        let (mut sy, mut cy, mut sxy, mut cxy) = (0.0, 0.0, 0.0, 0.0);
        for &(t, v) in p {
            let x = (t - t0) as f64 / 1e3;
            self.d.push(t - t0);
            self.x.push(x);
            (sx, cx) = kahan_add(x, sx, cx);
            (sy, cy) = kahan_add(v, sy, cy);
            (sxy, cxy) = kahan_add(x * v, sxy, cxy);
            (sx2, cx2) = kahan_add(x * x, sx2, cx2);
        }
        self.sx = sx + cx;
        self.sx2 = sx2 + cx2;
        (sy + cy, sxy + cxy)
    }

    /// The y sums (Σy, Σxy) of `p` over this side's x.
    fn y_sums(&self, p: &[(i64, f64)]) -> (f64, f64) {
        let (mut sy, mut cy, mut sxy, mut cxy) = (0.0, 0.0, 0.0, 0.0);
        for (&(_, v), &x) in p.iter().zip(&self.x) {
            (sy, cy) = kahan_add(v, sy, cy);
            (sxy, cxy) = kahan_add(x * v, sxy, cxy);
        }
        (sy + cy, sxy + cxy)
    }
}

impl Scratch {
    /// Σx, Σx², Σy and Σxy of `p`'s regression at `t0`, compensated; the
    /// x side from a kept one when its distances are the same, else worked
    /// out with the y sums (and kept in place of the oldest).
    fn regression_sums(&mut self, p: &[(i64, f64)], t0: i64) -> (f64, f64, f64, f64) {
        let side = if p.len() > MAX_KEPT {
            &mut self.long
        } else if let Some(i) = self.sides.iter().position(|s| s.matches(p, t0)) {
            let side = &self.sides[i];
            let (sy, sxy) = side.y_sums(p);
            return (side.sx, side.sx2, sy, sxy);
        } else if self.sides.len() < SIDES {
            let i = self.sides.len();
            self.sides.push(XSide::default());
            &mut self.sides[i]
        } else {
            let i = self.next;
            self.next = (i + 1) % SIDES;
            &mut self.sides[i]
        };
        let (sy, sxy) = side.fill(p, t0);
        let answer = (side.sx, side.sx2, sy, sxy);
        #[cfg(test)]
        {
            self.fills += 1;
        }
        answer
    }

    /// The window's values in a buffer kept between windows.
    fn values(&mut self, s: &Pts<'_>) -> &mut Vec<f64> {
        self.values.clear();
        self.values.extend(values(s));
        &mut self.values
    }
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
pub(crate) type WindowFn<'a> =
    Box<dyn Fn(&Pts<'_>, &Span, &mut Scratch) -> Option<f64> + Send + Sync + 'a>;

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
        "present_over_time" => (0, false, Box::new(|_, _, _| Some(1.0))),
        "rate" => (
            0,
            false,
            Box::new(|s, w, _| extrapolated_rate(s, w, true, true)),
        ),
        "increase" => (
            0,
            false,
            Box::new(|s, w, _| extrapolated_rate(s, w, true, false)),
        ),
        "delta" => (
            0,
            false,
            Box::new(|s, w, _| extrapolated_rate(s, w, false, false)),
        ),
        "irate" => (0, false, Box::new(|s, _, _| instant_delta(s, true))),
        "idelta" => (0, false, Box::new(|s, _, _| instant_delta(s, false))),
        "deriv" => (
            0,
            false,
            Box::new(|s, _, m| {
                (s.points().len() >= 2).then(|| linear_regression(s.points(), s.points()[0].0, m).0)
            }),
        ),
        "predict_linear" => {
            let d = ev.scalar(arg(c, 1)?, t)?;
            // The intercept is at the evaluation time, not at an `@` time.
            (
                0,
                false,
                Box::new(move |s, w, m| {
                    (s.points().len() >= 2).then(|| {
                        let (slope, intercept) = linear_regression(s.points(), w.t, m);
                        slope * d + intercept
                    })
                }),
            )
        }
        "resets" => (
            0,
            false,
            Box::new(|s, _, _| {
                Some(s.points().windows(2).filter(|p| p[1].1 < p[0].1).count() as f64)
            }),
        ),
        "changes" => (
            0,
            false,
            Box::new(|s, _, _| {
                Some(
                    s.points()
                        .windows(2)
                        .filter(|p| !(p[1].1 == p[0].1 || (p[1].1.is_nan() && p[0].1.is_nan())))
                        .count() as f64,
                )
            }),
        ),
        "avg_over_time" => (0, false, Box::new(|s, _, _| Some(avg_over(s)))),
        "sum_over_time" => (
            0,
            false,
            Box::new(|s, _, _| {
                let (mut sum, mut k) = (0.0, 0.0);
                for v in values(s) {
                    (sum, k) = kahan_add(v, sum, k);
                }
                Some(if sum.is_infinite() { sum } else { sum + k })
            }),
        ),
        "count_over_time" => (0, false, Box::new(|s, _, _| Some(s.points().len() as f64))),
        "min_over_time" => (
            0,
            false,
            Box::new(|s, _, _| {
                Some(values(s).fold(
                    f64::NAN,
                    |acc, v| if acc.is_nan() || v < acc { v } else { acc },
                ))
            }),
        ),
        "max_over_time" => (
            0,
            false,
            Box::new(|s, _, _| {
                Some(values(s).fold(
                    f64::NAN,
                    |acc, v| if acc.is_nan() || v > acc { v } else { acc },
                ))
            }),
        ),
        "last_over_time" => (0, true, Box::new(|s, _, _| s.points().last().map(|p| p.1))),
        "first_over_time" => (0, true, Box::new(|s, _, _| s.points().first().map(|p| p.1))),
        "ts_of_last_over_time" => (
            0,
            false,
            Box::new(|s, _, _| s.points().last().map(|p| p.0 as f64 / 1000.0)),
        ),
        "ts_of_first_over_time" => (
            0,
            false,
            Box::new(|s, _, _| s.points().first().map(|p| p.0 as f64 / 1000.0)),
        ),
        "ts_of_max_over_time" => (
            0,
            false,
            Box::new(|s, _, _| {
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
            Box::new(|s, _, _| {
                let mut best: Option<(i64, f64)> = None;
                for &(ts, v) in s.points() {
                    if best.is_none_or(|(_, b)| v <= b || b.is_nan()) {
                        best = Some((ts, v));
                    }
                }
                best.map(|(ts, _)| ts as f64 / 1000.0)
            }),
        ),
        "stdvar_over_time" => (0, false, Box::new(|s, _, _| Some(stdvar_over(s)))),
        "stddev_over_time" => (0, false, Box::new(|s, _, _| Some(stdvar_over(s).sqrt()))),
        "quantile_over_time" => {
            let q = ev.scalar(arg(c, 0)?, t)?;
            (
                1,
                false,
                Box::new(move |s, _, m| Some(quantile(q, m.values(s)))),
            )
        }
        "mad_over_time" => (
            0,
            false,
            Box::new(|s, _, m| {
                let v = m.values(s);
                let median = quantile(0.5, v);
                for x in v.iter_mut() {
                    *x = (*x - median).abs();
                }
                Some(quantile(0.5, v))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Prometheus' `linearRegression` as written there: all four sums in
    /// one pass, nothing kept.
    fn reference(p: &[(i64, f64)], t0: i64) -> (f64, f64) {
        let (mut n, mut sx, mut cx, mut sy, mut cy, mut sxy, mut cxy, mut sx2, mut cx2) =
            (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
        let init_y = p[0].1;
        let mut const_y = true;
        for (i, &(t, v)) in p.iter().enumerate() {
            if const_y && i > 0 && v != init_y {
                const_y = false;
            }
            n += 1.0;
            let x = (t - t0) as f64 / 1e3;
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
        let slope = (sxy - sx * sy / n) / (sx2 - sx * sx / n);
        (slope, sy / n - slope * sx / n)
    }

    fn bits((a, b): (f64, f64)) -> (u64, u64) {
        (a.to_bits(), b.to_bits())
    }

    /// Points every 15 s from `offset`, values that make the sums' order
    /// matter; `jitter` moves one point by a millisecond.
    fn series(offset: i64, n: usize, jitter: Option<usize>) -> Vec<(i64, f64)> {
        (0..n)
            .map(|i| {
                let t = offset + i as i64 * 15_000 + i64::from(jitter == Some(i));
                let v = 1e9 + (i as f64 * 0.37).sin() * 1e7 + if i % 7 == 0 { 1e-3 } else { 0.0 };
                (t, v)
            })
            .collect()
    }

    /// Every window a 30-minute `predict_linear` at a 30-second step reads
    /// (the x sides kept from window to window), and the same windows in
    /// other series (scraped at the same offset, at another, with one
    /// point a millisecond off the grid: same first and last distances,
    /// a different middle), give the bits Prometheus' regression gives.
    #[test]
    fn kept_x_sides_give_the_regression_bit_for_bit() {
        let mut memo = Scratch::default();
        let cases = [
            series(1_234, 400, None),
            series(1_234, 400, None),
            series(7_000, 400, None),
            series(1_234, 400, Some(150)),
            series(1_234, 400, Some(151)),
        ];
        let mut windows = 0;
        let mut fills = Vec::new();
        for p in &cases {
            for k in 0..200 {
                let t = 1_800_000 + k * 30_000;
                let w: Vec<_> = p
                    .iter()
                    .copied()
                    .filter(|q| q.0 > t - 1_800_000 && q.0 <= t)
                    .collect();
                if w.len() < 2 {
                    continue;
                }
                windows += 1;
                assert_eq!(
                    bits(linear_regression(&w, t, &mut memo)),
                    bits(reference(&w, t)),
                    "window at {t}"
                );
                assert_eq!(
                    bits(linear_regression(&w, w[0].0, &mut memo)),
                    bits(reference(&w, w[0].0)),
                    "deriv's window at {t}"
                );
            }
            fills.push(memo.fills);
        }
        assert!(windows > 900);
        // Of the first series' 400 regressions only the windows shrinking
        // past its last point (each of another length) work a side out:
        // its full windows share one per intercept. The second, scraped
        // with it, works out no more.
        assert!(fills[0] <= 130, "{fills:?}");
        assert!(fills[1] - fills[0] <= fills[0], "{fills:?}");
        // Constant and infinite windows, and one too long to keep.
        for v in [5.0, f64::INFINITY, f64::NAN] {
            let w: Vec<_> = (0..10).map(|i| (i * 1000, v)).collect();
            assert_eq!(
                bits(linear_regression(&w, 9000, &mut memo)),
                bits(reference(&w, 9000))
            );
        }
        let long = series(0, MAX_KEPT + 10, Some(5));
        let t = long[long.len() - 1].0;
        assert_eq!(
            bits(linear_regression(&long, t, &mut memo)),
            bits(reference(&long, t))
        );
        assert_eq!(
            bits(linear_regression(&long, t, &mut memo)),
            bits(reference(&long, t))
        );
    }
}
