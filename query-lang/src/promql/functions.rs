//! PromQL functions on floats.

use std::sync::Arc;

use chrono::{Datelike, TimeZone, Timelike, Utc};
use promql_parser::parser::{Call, Expr};

use super::value::{Eval, Samp, Val};

mod hist;
mod window;
use super::{Labels, METRIC_NAME, MatchOp, PromError, is_valid_label_name};
pub(crate) use window::{Pts, Scratch, Span, WINDOW_FNS, WindowFn, window_fn};

pub(crate) use super::kahan::kahan_add;

/// Go's `strconv.FormatFloat(f, 'f', -1, 64)` as Prometheus prints label
/// values.
pub(crate) fn format_float(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f == f64::INFINITY {
        "+Inf".into()
    } else if f == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{f}")
    }
}

/// Go's `math.Max`/`math.Min`: NaN wins.
fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

/// Prometheus' `quantile` over a slice (sorted here; NaN first, as Go's
/// `sort.Float64s`).
pub(crate) fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    values.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        _ => a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal),
    });
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

fn arg(c: &Call, i: usize) -> Result<&Expr, PromError> {
    c.args.args.get(i).map(|b| b.as_ref()).ok_or_else(|| {
        PromError::bad_data(format!("missing argument {} of {}", i + 1, c.func.name))
    })
}

fn string_arg<E: Eval>(ev: &E, c: &Call, i: usize, t: i64) -> Result<String, PromError> {
    match ev.eval(arg(c, i)?, t)? {
        Val::Str(s) => Ok(s),
        _ => Err(PromError::bad_data(format!(
            "argument {} of {} must be a string",
            i + 1,
            c.func.name
        ))),
    }
}

/// Maps every sample of an instant-vector argument; the name is dropped.
fn map_vector<E: Eval>(ev: &E, c: &Call, t: i64, f: impl Fn(f64) -> f64) -> Result<Val, PromError> {
    let v = ev.vector(arg(c, 0)?, t)?;
    Ok(Val::Vector(
        v.into_iter()
            .filter(|s| s.h.is_none())
            .map(|s| Samp {
                v: f(s.v),
                t,
                drop_name: true,
                ..s
            })
            .collect(),
    ))
}

#[cfg(test)]
thread_local! {
    /// Window-function calls over a range selector evaluated at one step
    /// rather than read off a table computed for every step (counted by
    /// tests).
    pub(crate) static STEPWISE: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Applies `f` to each series of a range-vector argument; series for which
/// it returns `None` are left out. A range query has often computed every
/// step of the call at once ([`Eval::precomputed`]).
fn over_window<E: Eval>(
    ev: &E,
    c: &Call,
    i: usize,
    t: i64,
    keep_name: bool,
    f: WindowFn<'_>,
) -> Result<Val, PromError> {
    if let Some(v) = ev.precomputed(c, t) {
        return Ok(Val::Vector(v));
    }
    #[cfg(test)]
    if matches!(arg(c, i)?, Expr::MatrixSelector(_)) {
        STEPWISE.with(|n| n.set(n.get() + 1));
    }
    let w = ev.window(arg(c, i)?, t)?;
    let span = Span {
        start: w.start,
        end: w.end,
        t,
    };
    let mut out = Vec::with_capacity(w.series.len());
    let mut scratch = Scratch::default();
    for s in &w.series {
        let drop_name = s.drop_name || !keep_name;
        if !s.histograms().is_empty() {
            let answer = hist::window(ev, c.func.name, s, &span, &f, &mut scratch);
            match answer {
                Some(hist::Answer::Float(v)) => {
                    out.push(Samp::float(s.labels.clone(), t, v, drop_name));
                }
                Some(hist::Answer::Histogram(h)) => out.push(Samp {
                    h: Some(Arc::new(h)),
                    ..Samp::float(s.labels.clone(), t, 0.0, drop_name)
                }),
                None => {}
            }
            continue;
        }
        if let Some(v) = f(&Pts(s.points(), false), &span, &mut scratch) {
            out.push(Samp::float(s.labels.clone(), t, v, drop_name));
        }
    }
    Ok(Val::Vector(out))
}

/// Labels `absent()` gives its answer: the selector's equality matchers.
fn absent_labels(e: &Expr) -> Labels {
    let vs = match e {
        Expr::VectorSelector(vs) => vs,
        Expr::MatrixSelector(m) => &m.vs,
        _ => return Labels::empty(),
    };
    // Prometheus' createLabelsForAbsentFunction: the first equality
    // matcher of a name sets it; any other matcher of that name removes it.
    let mut out = Labels::empty();
    let mut has: Vec<&str> = Vec::new();
    for m in &vs.matchers.matchers {
        if m.name == METRIC_NAME {
            continue;
        }
        if matches!(m.op, MatchOp::Equal) && !has.contains(&m.name.as_str()) {
            out.set(&m.name, &m.value);
            has.push(&m.name);
        } else {
            out.remove(&m.name);
        }
    }
    out
}

/// Prometheus' `BucketQuantile` over classic buckets `(upper bound, count)`,
/// in any order; counts of equal bounds add up.
pub fn bucket_quantile(q: f64, b: Vec<(f64, f64)>) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    let Some(mut c) = coalesced(b) else {
        return f64::NAN;
    };
    // Monotonic counts, ignoring tiny float deltas.
    let mut prev = c[0].1;
    for x in c.iter_mut().skip(1) {
        let cur = x.1;
        if cur == prev {
            continue;
        }
        if almost_equal(prev, cur, 1e-12) || cur < prev {
            x.1 = prev;
            continue;
        }
        prev = cur;
    }
    if c.len() < 2 {
        return f64::NAN;
    }
    let observations = c[c.len() - 1].1;
    if observations == 0.0 {
        return f64::NAN;
    }
    let mut rank = q * observations;
    let b = c[..c.len() - 1].partition_point(|x| x.1 < rank);
    if b == c.len() - 1 {
        return c[c.len() - 2].0;
    }
    if b == 0 && c[0].0 <= 0.0 {
        return c[0].0;
    }
    let (mut start, end, mut count) = (0.0, c[b].0, c[b].1);
    if b > 0 {
        start = c[b - 1].0;
        count -= c[b - 1].1;
        rank -= c[b - 1].1;
    }
    start + (end - start) * (rank / count)
}

/// Classic buckets by upper bound, equal bounds' counts added; `None`
/// without a +Inf bucket (no quantile or fraction then).
fn coalesced(mut b: Vec<(f64, f64)>) -> Option<Vec<(f64, f64)>> {
    b.sort_by(|x, y| x.0.partial_cmp(&y.0).unwrap_or(std::cmp::Ordering::Equal));
    if !b.last().is_some_and(|x| x.0 == f64::INFINITY) {
        return None;
    }
    let mut c: Vec<(f64, f64)> = Vec::with_capacity(b.len());
    for x in b {
        match c.last_mut() {
            Some(last) if last.0 == x.0 => last.1 += x.1,
            _ => c.push(x),
        }
    }
    Some(c)
}

fn almost_equal(a: f64, b: f64, eps: f64) -> bool {
    if a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < f64::MIN_POSITIVE {
        return diff < eps * f64::MIN_POSITIVE;
    }
    diff / abs_sum.min(f64::MAX) < eps
}

fn date_fn<E: Eval>(
    ev: &E,
    c: &Call,
    t: i64,
    f: impl Fn(chrono::DateTime<Utc>) -> f64,
) -> Result<Val, PromError> {
    let to_date = |secs: f64| {
        let ms = (secs * 1000.0) as i64;
        Utc.timestamp_millis_opt(ms).single()
    };
    if c.args.args.is_empty() {
        let v = to_date(t as f64 / 1000.0).map_or(f64::NAN, &f);
        return Ok(Val::Vector(vec![Samp {
            h: None,
            labels: Arc::new(Labels::empty()),
            t,
            v,
            drop_name: false,
        }]));
    }
    let v = ev.vector(arg(c, 0)?, t)?;
    Ok(Val::Vector(
        v.into_iter()
            .filter(|s| s.h.is_none())
            .map(|s| {
                let v = if s.v.is_finite() {
                    to_date(s.v).map_or(f64::NAN, &f)
                } else {
                    f64::NAN
                };
                Samp {
                    v,
                    t,
                    drop_name: true,
                    ..s
                }
            })
            .collect(),
    ))
}

pub(crate) fn call<E: Eval>(ev: &E, c: &Call, t: i64) -> Result<Val, PromError> {
    let name = c.func.name;
    match name {
        "abs" => map_vector(ev, c, t, f64::abs),
        "ceil" => map_vector(ev, c, t, f64::ceil),
        "floor" => map_vector(ev, c, t, f64::floor),
        "exp" => map_vector(ev, c, t, f64::exp),
        "sqrt" => map_vector(ev, c, t, f64::sqrt),
        "ln" => map_vector(ev, c, t, f64::ln),
        "log2" => map_vector(ev, c, t, f64::log2),
        "log10" => map_vector(ev, c, t, f64::log10),
        "sin" => map_vector(ev, c, t, f64::sin),
        "cos" => map_vector(ev, c, t, f64::cos),
        "tan" => map_vector(ev, c, t, f64::tan),
        "asin" => map_vector(ev, c, t, f64::asin),
        "acos" => map_vector(ev, c, t, f64::acos),
        "atan" => map_vector(ev, c, t, f64::atan),
        "sinh" => map_vector(ev, c, t, f64::sinh),
        "cosh" => map_vector(ev, c, t, f64::cosh),
        "tanh" => map_vector(ev, c, t, f64::tanh),
        "asinh" => map_vector(ev, c, t, f64::asinh),
        "acosh" => map_vector(ev, c, t, f64::acosh),
        "atanh" => map_vector(ev, c, t, f64::atanh),
        "deg" => map_vector(ev, c, t, |v| v * 180.0 / std::f64::consts::PI),
        "rad" => map_vector(ev, c, t, |v| v * std::f64::consts::PI / 180.0),
        "sgn" => map_vector(ev, c, t, |v| {
            if v > 0.0 {
                1.0
            } else if v < 0.0 {
                -1.0
            } else {
                v
            }
        }),
        "pi" => Ok(Val::Scalar(std::f64::consts::PI)),
        "time" => Ok(Val::Scalar(t as f64 / 1000.0)),
        "round" => {
            let to = match c.args.args.get(1) {
                Some(e) => ev.scalar(e, t)?,
                None => 1.0,
            };
            let inv = 1.0 / to;
            map_vector(ev, c, t, move |v| (v * inv + 0.5).floor() / inv)
        }
        "clamp" => {
            let lo = ev.scalar(arg(c, 1)?, t)?;
            let hi = ev.scalar(arg(c, 2)?, t)?;
            if hi < lo {
                return Ok(Val::Vector(Vec::new()));
            }
            map_vector(ev, c, t, move |v| go_max(lo, go_min(hi, v)))
        }
        "clamp_min" => {
            let lo = ev.scalar(arg(c, 1)?, t)?;
            map_vector(ev, c, t, move |v| go_max(lo, v))
        }
        "clamp_max" => {
            let hi = ev.scalar(arg(c, 1)?, t)?;
            map_vector(ev, c, t, move |v| go_min(hi, v))
        }
        "vector" => {
            let v = ev.scalar(arg(c, 0)?, t)?;
            Ok(Val::Vector(vec![Samp {
                h: None,
                labels: Arc::new(Labels::empty()),
                t,
                v,
                drop_name: false,
            }]))
        }
        "scalar" => {
            let v = ev.vector(arg(c, 0)?, t)?;
            // Native-histogram samples are not looked at: one float
            // beside them is the answer.
            let mut floats = v.iter().filter(|s| s.h.is_none());
            Ok(Val::Scalar(match (floats.next(), floats.next()) {
                (Some(s), None) => s.v,
                _ => f64::NAN,
            }))
        }
        "timestamp" => {
            let v = ev.vector(arg(c, 0)?, t)?;
            Ok(Val::Vector(
                v.into_iter()
                    .map(|s| Samp {
                        v: s.t as f64 / 1000.0,
                        h: None,
                        t,
                        drop_name: true,
                        ..s
                    })
                    .collect(),
            ))
        }
        "absent" => {
            let v = ev.vector(arg(c, 0)?, t)?;
            if !v.is_empty() {
                return Ok(Val::Vector(Vec::new()));
            }
            Ok(Val::Vector(vec![Samp {
                h: None,
                labels: Arc::new(absent_labels(arg(c, 0)?)),
                t,
                v: 1.0,
                drop_name: false,
            }]))
        }
        "absent_over_time" => {
            let w = ev.window(arg(c, 0)?, t)?;
            if !w.series.is_empty() {
                return Ok(Val::Vector(Vec::new()));
            }
            Ok(Val::Vector(vec![Samp {
                h: None,
                labels: Arc::new(absent_labels(arg(c, 0)?)),
                t,
                v: 1.0,
                drop_name: false,
            }]))
        }
        name if WINDOW_FNS.contains(&name) => {
            let (i, keep_name, f) = window_fn(ev, c, t)?;
            over_window(ev, c, i, t, keep_name, f)
        }
        "double_exponential_smoothing" | "holt_winters" => {
            let sf = ev.scalar(arg(c, 1)?, t)?;
            let tf = ev.scalar(arg(c, 2)?, t)?;
            if !(sf > 0.0 && sf < 1.0) {
                return Err(PromError::execution(format!(
                    "invalid smoothing factor. Expected: 0 < sf < 1, got: {sf}"
                )));
            }
            if !(tf > 0.0 && tf < 1.0) {
                return Err(PromError::execution(format!(
                    "invalid trend factor. Expected: 0 < tf < 1, got: {tf}"
                )));
            }
            over_window(
                ev,
                c,
                0,
                t,
                false,
                Box::new(move |s, _, _| (s.points().len() >= 2).then(|| holt(s.points(), sf, tf))),
            )
        }
        "histogram_quantile" => histogram_quantile(ev, c, t),
        "histogram_fraction" => histogram_fraction(ev, c, t),
        "histogram_count" | "histogram_sum" | "histogram_avg" | "histogram_stddev"
        | "histogram_stdvar" => hist::of_histograms(ev, c, t)?
            .ok_or_else(|| PromError::bad_data(format!("function {name:?} is not supported"))),
        "label_replace" => label_replace(ev, c, t),
        "label_join" => label_join(ev, c, t),
        "sort" | "sort_desc" => {
            let mut v = ev.vector(arg(c, 0)?, t)?;
            let desc = name == "sort_desc";
            v.sort_by(|a, b| match (a.v.is_nan(), b.v.is_nan()) {
                (true, true) => std::cmp::Ordering::Equal,
                (true, false) => std::cmp::Ordering::Greater,
                (false, true) => std::cmp::Ordering::Less,
                _ if desc => b.v.partial_cmp(&a.v).unwrap_or(std::cmp::Ordering::Equal),
                _ => a.v.partial_cmp(&b.v).unwrap_or(std::cmp::Ordering::Equal),
            });
            Ok(Val::Vector(
                v.into_iter().map(|s| Samp { t, ..s }).collect(),
            ))
        }
        "sort_by_label" | "sort_by_label_desc" => {
            let mut v = ev.vector(arg(c, 0)?, t)?;
            let mut names = Vec::new();
            for i in 1..c.args.args.len() {
                names.push(string_arg(ev, c, i, t)?);
            }
            let desc = name == "sort_by_label_desc";
            v.sort_by(|a, b| {
                let mut o = std::cmp::Ordering::Equal;
                for n in &names {
                    o = natural_cmp(a.labels.value(n), b.labels.value(n));
                    if o != std::cmp::Ordering::Equal {
                        break;
                    }
                }
                if o == std::cmp::Ordering::Equal {
                    o = a.labels.cmp(&b.labels);
                }
                if desc { o.reverse() } else { o }
            });
            Ok(Val::Vector(
                v.into_iter().map(|s| Samp { t, ..s }).collect(),
            ))
        }
        "day_of_month" => date_fn(ev, c, t, |d| d.day() as f64),
        "day_of_week" => date_fn(ev, c, t, |d| d.weekday().num_days_from_sunday() as f64),
        "day_of_year" => date_fn(ev, c, t, |d| d.ordinal() as f64),
        "days_in_month" => date_fn(ev, c, t, |d| {
            let (y, m) = (d.year(), d.month());
            let next = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
            chrono::NaiveDate::from_ymd_opt(next.0, next.1, 1)
                .and_then(|n| n.pred_opt())
                .map_or(f64::NAN, |l| l.day() as f64)
        }),
        "hour" => date_fn(ev, c, t, |d| d.hour() as f64),
        "minute" => date_fn(ev, c, t, |d| d.minute() as f64),
        "month" => date_fn(ev, c, t, |d| d.month() as f64),
        "year" => date_fn(ev, c, t, |d| d.year() as f64),
        other => Err(PromError::bad_data(format!(
            "function {other:?} is not supported"
        ))),
    }
}

/// Double exponential smoothing as Prometheus computes it.
fn holt(p: &[(i64, f64)], sf: f64, tf: f64) -> f64 {
    let mut s1 = p[1].1;
    let mut b = p[1].1 - p[0].1;
    for &(_, v) in &p[2..] {
        let s0 = s1;
        s1 = sf * v + (1.0 - sf) * (s0 + b);
        b = tf * (s1 - s0) + (1.0 - tf) * b;
    }
    s1
}

/// Numbers inside label values compare by value ("a2" < "a10").
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let (mut ai, mut bi) = (a.chars().peekable(), b.chars().peekable());
    loop {
        match (ai.peek().copied(), bi.peek().copied()) {
            (None, None) => return std::cmp::Ordering::Equal,
            (None, Some(_)) => return std::cmp::Ordering::Less,
            (Some(_), None) => return std::cmp::Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let mut na = String::new();
                while let Some(d) = ai.peek().copied().filter(char::is_ascii_digit) {
                    na.push(d);
                    ai.next();
                }
                let mut nb = String::new();
                while let Some(d) = bi.peek().copied().filter(char::is_ascii_digit) {
                    nb.push(d);
                    bi.next();
                }
                let (ta, tb) = (na.trim_start_matches('0'), nb.trim_start_matches('0'));
                let o = ta.len().cmp(&tb.len()).then_with(|| ta.cmp(tb));
                if o != std::cmp::Ordering::Equal {
                    return o;
                }
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(&y);
                }
                ai.next();
                bi.next();
            }
        }
    }
}

fn histogram_quantile<E: Eval>(ev: &E, c: &Call, t: i64) -> Result<Val, PromError> {
    let q = ev.scalar(arg(c, 0)?, t)?;
    if !(0.0..=1.0).contains(&q) && !q.is_nan() {
        ev.warn(format!(
            "PromQL warning: quantile value should be between 0 and 1, got {q}"
        ));
    }
    classic_or_native(
        ev,
        c,
        t,
        arg(c, 1)?,
        |h| h.quantile(q),
        |b| bucket_quantile(q, b),
    )
}

fn histogram_fraction<E: Eval>(ev: &E, c: &Call, t: i64) -> Result<Val, PromError> {
    let lo = ev.scalar(arg(c, 0)?, t)?;
    let hi = ev.scalar(arg(c, 1)?, t)?;
    classic_or_native(
        ev,
        c,
        t,
        arg(c, 2)?,
        |h| h.fraction(lo, hi),
        |b| bucket_fraction(lo, hi, b),
    )
}

/// A function of histograms over `operand`: each native-histogram sample
/// answers `native` of its histogram; float samples with an `le` label
/// are classic buckets, grouped by their other labels, each group
/// answering `classic` of its `(upper bound, count)` list. A group that is
/// both (classic buckets beside a native histogram of the same labels) is
/// left out with a warning, as Prometheus does.
fn classic_or_native<E: Eval>(
    ev: &E,
    c: &Call,
    t: i64,
    operand: &Expr,
    native: impl Fn(&super::FloatHistogram) -> f64,
    classic: impl Fn(Vec<(f64, f64)>) -> f64,
) -> Result<Val, PromError> {
    let v = ev.vector(operand, t)?;
    let mut index: super::memo::AddrMap<usize, usize> = super::memo::AddrMap::default();
    // Each group's buckets: (upper bound, count).
    type Group = (Arc<Labels>, Vec<(f64, f64)>);
    let mut groups: Vec<Group> = Vec::new();
    let node = super::memo::addr(c);
    let group_of = |l: &Arc<Labels>| {
        ev.memo().derive(node, 0, l, |l| {
            let mut g = l.clone();
            g.remove("le");
            g
        })
    };
    let mut natives = Vec::new();
    for s in v {
        if let Some(h) = &s.h {
            natives.push((group_of(&s.labels), native(h)));
            continue;
        }
        let Some(le) = s.labels.get("le") else {
            continue;
        };
        let Some(upper) = parse_le(le) else {
            ev.warn(format!(
                "PromQL warning: bucket label \"le\" is missing or has a malformed value of {le:?}"
            ));
            continue;
        };
        // The name stays in the group (two histograms of different names
        // are two groups) and is dropped at the end, where their answers
        // may then collide.
        let g = group_of(&s.labels);
        match index.get(&super::memo::ptr(&g)) {
            Some(&i) => groups[i].1.push((upper, s.v)),
            None => {
                index.insert(super::memo::ptr(&g), groups.len());
                groups.push((g, vec![(upper, s.v)]));
            }
        }
    }
    let mut mixed = super::memo::AddrSet::default();
    for (g, _) in &natives {
        if index.contains_key(&super::memo::ptr(g)) {
            mixed.insert(super::memo::ptr(g));
        }
    }
    if !mixed.is_empty() {
        ev.warn("PromQL warning: vector contains a mix of classic and native histograms");
    }
    let mut out: Vec<Samp> = groups
        .into_iter()
        .filter(|(g, _)| !mixed.contains(&super::memo::ptr(g)))
        .map(|(g, b)| Samp::float(g, t, classic(b), true))
        .collect();
    out.extend(
        natives
            .into_iter()
            .filter(|(g, _)| !mixed.contains(&super::memo::ptr(g)))
            .map(|(g, v)| Samp::float(g, t, v, true)),
    );
    Ok(Val::Vector(out))
}

/// Prometheus' `BucketFraction` over classic buckets `(upper bound,
/// count)`: the share of observations between `lower` and `upper`,
/// interpolated linearly within a bucket.
fn bucket_fraction(lower: f64, upper: f64, b: Vec<(f64, f64)>) -> f64 {
    let Some(c) = coalesced(b) else {
        return f64::NAN;
    };
    let count = c[c.len() - 1].1;
    if count == 0.0 || lower.is_nan() || upper.is_nan() {
        return f64::NAN;
    }
    if lower >= upper {
        return 0.0;
    }
    let (mut rank, mut lower_rank, mut upper_rank) = (0.0, 0.0, 0.0);
    let (mut lower_set, mut upper_set) = (false, false);
    let mut lower_bound = if c[0].0 <= 0.0 {
        f64::NEG_INFINITY
    } else {
        0.0
    };
    for (i, &(upper_bound, n)) in c.iter().enumerate() {
        if i > 0 {
            lower_bound = c[i - 1].0;
        }
        let interpolate = |v: f64| {
            if lower_bound == f64::NEG_INFINITY {
                return n;
            }
            rank + (n - rank) * (v - lower_bound) / (upper_bound - lower_bound)
        };
        if !lower_set && lower_bound >= lower {
            lower_rank = rank;
            lower_set = true;
        }
        if !upper_set && lower_bound >= upper {
            upper_rank = rank;
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        if !lower_set && lower_bound < lower && upper_bound > lower {
            lower_rank = interpolate(lower);
            lower_set = true;
        }
        if !upper_set && lower_bound < upper && upper_bound > upper {
            upper_rank = interpolate(upper);
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        rank = n;
    }
    if !lower_set || lower_rank > count {
        lower_rank = count;
    }
    if !upper_set || upper_rank > count {
        upper_rank = count;
    }
    (upper_rank - lower_rank) / count
}

fn parse_le(s: &str) -> Option<f64> {
    match s.trim() {
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        other => other.parse().ok(),
    }
}

fn label_replace<E: Eval>(ev: &E, c: &Call, t: i64) -> Result<Val, PromError> {
    let v = ev.vector(arg(c, 0)?, t)?;
    let dst = string_arg(ev, c, 1, t)?;
    let repl = string_arg(ev, c, 2, t)?;
    let src = string_arg(ev, c, 3, t)?;
    let re = string_arg(ev, c, 4, t)?;
    let regex = regex::Regex::new(&format!("^(?s:{re})$")).map_err(|e| {
        PromError::execution(format!(
            "invalid regular expression in label_replace(): {re}: {e}"
        ))
    })?;
    if !is_valid_label_name(&dst) {
        return Err(PromError::execution(format!(
            "invalid destination label name in label_replace(): {dst}"
        )));
    }
    let mut out = Vec::with_capacity(v.len());
    for s in v {
        let value = s.labels.value(&src).to_owned();
        let Some(caps) = regex.captures(&value) else {
            out.push(Samp { t, ..s });
            continue;
        };
        let mut expanded = String::new();
        // Go's and Rust's `$1`/`${name}` expansion agree.
        caps.expand(&repl, &mut expanded);
        let mut labels = (*s.labels).clone();
        labels.set(&dst, &expanded);
        let drop_name = s.drop_name && dst != METRIC_NAME;
        out.push(Samp {
            h: s.h,
            labels: Arc::new(labels),
            t,
            v: s.v,
            drop_name,
        });
    }
    Ok(Val::Vector(out))
}

fn label_join<E: Eval>(ev: &E, c: &Call, t: i64) -> Result<Val, PromError> {
    let v = ev.vector(arg(c, 0)?, t)?;
    let dst = string_arg(ev, c, 1, t)?;
    let sep = string_arg(ev, c, 2, t)?;
    let mut srcs = Vec::new();
    for i in 3..c.args.args.len() {
        srcs.push(string_arg(ev, c, i, t)?);
    }
    if !is_valid_label_name(&dst) {
        return Err(PromError::execution(format!(
            "invalid destination label name in label_join(): {dst}"
        )));
    }
    Ok(Val::Vector(
        v.into_iter()
            .map(|s| {
                let joined: Vec<&str> = srcs.iter().map(|n| s.labels.value(n)).collect();
                let mut labels = (*s.labels).clone();
                labels.set(&dst, &joined.join(&sep));
                let drop_name = s.drop_name && dst != METRIC_NAME;
                Samp {
                    h: s.h.clone(),
                    labels: Arc::new(labels),
                    t,
                    v: s.v,
                    drop_name,
                }
            })
            .collect(),
    ))
}
