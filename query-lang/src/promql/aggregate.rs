//! Aggregation operators.

use std::collections::HashMap;
use std::sync::Arc;

use promql_parser::parser::{AggregateExpr, Expr, LabelModifier};

use super::functions::{format_float, kahan_add, quantile};
use super::histogram::KahanSum;
use super::memo::{AddrMap, addr, ptr};
use super::value::{Eval, Samp, Val};
use super::{FloatHistogram, Labels, PromError, is_valid_label_name};

/// The group a label set belongs to, as its output labels.
pub(crate) fn group_of(m: &Option<LabelModifier>, l: &Labels) -> Labels {
    match m {
        None => Labels::empty(),
        Some(LabelModifier::Include(by)) => l.keep(&by.labels),
        Some(LabelModifier::Exclude(without)) => l.drop(&without.labels),
    }
}

/// The group a sample belongs to, as its output labels.
fn group_labels(m: &Option<LabelModifier>, s: &Samp) -> Labels {
    group_of(m, &s.labels)
}

/// Groups in order of first appearance. A series' group is derived once
/// (not at every step) and groups are told apart by address.
fn groups<E: Eval>(ev: &E, a: &AggregateExpr, v: Vec<Samp>) -> Vec<(Arc<Labels>, Vec<Samp>)> {
    let node = addr(a);
    let mut index: AddrMap<usize, usize> = AddrMap::default();
    let mut out: Vec<(Arc<Labels>, Vec<Samp>)> = Vec::new();
    for s in v {
        let g = ev
            .memo()
            .derive(node, 0, &s.labels, |l| group_of(&a.modifier, l));
        match index.get(&ptr(&g)) {
            Some(&i) => out[i].1.push(s),
            None => {
                index.insert(ptr(&g), out.len());
                out.push((g, vec![s]));
            }
        }
    }
    out
}

pub(crate) fn aggregate<E: Eval>(ev: &E, a: &AggregateExpr, t: i64) -> Result<Val, PromError> {
    let op = a.op.to_string().to_lowercase();
    if a.param.is_none()
        && let Some(v) = pre_aggregate(ev, a, &op, t)
    {
        return Ok(Val::Vector(v));
    }
    let mut v = ev.vector(&a.expr, t)?;
    if v.iter().any(|s| s.h.is_some()) {
        match op.as_str() {
            "sum" | "avg" => return Ok(Val::Vector(with_histograms(ev, a, &op, v, t))),
            "count" | "group" | "limitk" | "limit_ratio" => {}
            _ => {
                ev.warn(format!(
                    "PromQL info: ignored histogram in {op} aggregation"
                ));
                v.retain(|s| s.h.is_none());
            }
        }
    }
    let param = |e: &Option<Box<Expr>>| -> Result<f64, PromError> {
        match e {
            Some(p) => ev.scalar(p, t),
            None => Err(PromError::bad_data(format!("{op} needs a parameter"))),
        }
    };
    let out_sample = |labels: Arc<Labels>, v: f64| Samp {
        h: None,
        labels,
        t,
        v,
        drop_name: false,
    };
    let mut out = Vec::new();
    match op.as_str() {
        "sum" | "avg" | "count" | "min" | "max" | "group" | "stddev" | "stdvar" => {
            for (g, samples) in groups(ev, a, v) {
                let value = match op.as_str() {
                    "sum" => sum(&samples),
                    "avg" => avg(&samples),
                    "count" => samples.len() as f64,
                    "group" => 1.0,
                    "min" => samples.iter().fold(f64::NAN, |acc, s| {
                        if acc.is_nan() || s.v < acc { s.v } else { acc }
                    }),
                    "max" => samples.iter().fold(f64::NAN, |acc, s| {
                        if acc.is_nan() || s.v > acc { s.v } else { acc }
                    }),
                    "stdvar" => stdvar(&samples),
                    _ => stdvar(&samples).sqrt(),
                };
                // `by (__name__)` keeps the name, to be dropped at the end if
                // any member was marked.
                let drop = samples.iter().any(|s| s.drop_name);
                out.push(Samp {
                    drop_name: drop,
                    ..out_sample(g, value)
                });
            }
        }
        "quantile" => {
            let q = param(&a.param)?;
            for (g, samples) in groups(ev, a, v) {
                let mut values: Vec<f64> = samples.iter().map(|s| s.v).collect();
                out.push(out_sample(g, quantile(q, &mut values)));
            }
        }
        "count_values" => {
            let label = match a.param.as_deref() {
                Some(e) => match ev.eval(e, t)? {
                    Val::Str(s) => s,
                    _ => return Err(PromError::bad_data("count_values needs a string parameter")),
                },
                None => return Err(PromError::bad_data("count_values needs a parameter")),
            };
            if !is_valid_label_name(&label) {
                return Err(PromError::execution(format!(
                    "invalid label name {label:?}"
                )));
            }
            let mut index: HashMap<Labels, usize> = HashMap::new();
            let mut counts: Vec<(Labels, f64)> = Vec::new();
            for s in &v {
                let mut g = group_labels(&a.modifier, s);
                g.set(&label, &format_float(s.v));
                match index.get(&g) {
                    Some(&i) => counts[i].1 += 1.0,
                    None => {
                        index.insert(g.clone(), counts.len());
                        counts.push((g, 1.0));
                    }
                }
            }
            out.extend(
                counts
                    .into_iter()
                    .map(|(l, c)| out_sample(ev.memo().intern(l), c)),
            );
        }
        "topk" | "bottomk" | "limitk" => {
            let k = param(&a.param)?;
            if k.is_nan() {
                return Err(PromError::execution("Parameter value is NaN"));
            }
            if k >= 1.0 {
                let k = if k > 1e15 { usize::MAX } else { k as usize };
                for (_, mut samples) in groups(ev, a, v) {
                    match op.as_str() {
                        "topk" => samples.sort_by(|x, y| cmp_desc_nan_last(x.v, y.v)),
                        "bottomk" => samples.sort_by(|x, y| cmp_asc_nan_last(x.v, y.v)),
                        _ => {}
                    }
                    samples.truncate(k);
                    out.extend(samples.into_iter().map(|s| Samp { t, ..s }));
                }
            }
        }
        "limit_ratio" => {
            let mut r = param(&a.param)?;
            if r.is_nan() {
                return Err(PromError::execution("Ratio value is NaN"));
            }
            if !(-1.0..=1.0).contains(&r) {
                ev.warn(format!("PromQL warning: ratio value should be between -1 and 1, got {r}, capping to {}", r.clamp(-1.0, 1.0)));
                r = r.clamp(-1.0, 1.0);
            }
            // Prometheus' HashRatioSampler: a series is in when its label
            // hash, as a fraction of u64::MAX, is below the ratio (or, for
            // a negative ratio, at or above 1 + ratio): the same series
            // every time, complementary halves for r and r - 1.
            for s in v {
                let offset = label_hash(&s.labels) as f64 / u64::MAX as f64;
                if (r >= 0.0 && offset < r) || (r < 0.0 && offset >= 1.0 + r) {
                    out.push(Samp { t, ..s });
                }
            }
        }
        other => {
            return Err(PromError::bad_data(format!(
                "unknown aggregation {other:?}"
            )));
        }
    }
    Ok(Val::Vector(out))
}

/// `sum` or `avg` over a vector with native histograms: a group of
/// histograms adds up (or averages) to a histogram, a group of floats as
/// usual, a group of both is left out with a warning, as is one whose
/// histograms cannot be added (custom buckets and exponential ones).
fn with_histograms<E: Eval>(
    ev: &E,
    a: &AggregateExpr,
    op: &str,
    v: Vec<Samp>,
    t: i64,
) -> Vec<Samp> {
    let mut out = Vec::new();
    for (g, samples) in groups(ev, a, v) {
        let drop_name = samples.iter().any(|s| s.drop_name);
        let hists: Vec<&FloatHistogram> = samples.iter().filter_map(|s| s.h.as_deref()).collect();
        if hists.is_empty() {
            let value = if op == "sum" {
                sum(&samples)
            } else {
                avg(&samples)
            };
            out.push(Samp::float(g, t, value, drop_name));
            continue;
        }
        if hists.len() < samples.len() {
            ev.warn("PromQL warning: encountered a mix of histograms and floats for aggregation");
            continue;
        }
        let mut total = KahanSum::new(hists[0]);
        if hists[1..].iter().any(|h| total.add(h).is_err()) {
            ev.warn(
                "PromQL warning: vector contains a mix of histograms with exponential and custom buckets schemas for aggregation",
            );
            continue;
        }
        let mut total = if op == "avg" {
            total.mean(hists.len() as f64)
        } else {
            total.finish()
        };
        total.compact();
        out.push(Samp {
            h: Some(Arc::new(total)),
            ..Samp::float(g, t, 0.0, drop_name)
        });
    }
    out
}

/// A column aggregation (the aggregations that reduce a precomputed
/// column directly) as a fold: each group's running state (a value and
/// a Kahan compensation) takes the group's values one at a time, in the
/// series' order, with the same operations as the general path (and so
/// the same floating-point answer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FoldOp {
    Sum,
    Count,
    Min,
    Max,
    Group,
}

impl FoldOp {
    /// The fold of a column aggregation's operator (lowercase); `None` for
    /// the other aggregations.
    pub(crate) fn of(op: &str) -> Option<Self> {
        Some(match op {
            "sum" => FoldOp::Sum,
            "count" => FoldOp::Count,
            "min" => FoldOp::Min,
            "max" => FoldOp::Max,
            "group" => FoldOp::Group,
            _ => return None,
        })
    }

    /// A group's value before its first input.
    pub(crate) fn start(self) -> f64 {
        match self {
            FoldOp::Min | FoldOp::Max => f64::NAN,
            _ => 0.0,
        }
    }

    /// Folds `v` into a group's `value` and `comp`ensation.
    #[inline]
    pub(crate) fn add(self, value: &mut f64, comp: &mut f64, v: f64) {
        match self {
            FoldOp::Sum => (*value, *comp) = kahan_add(v, *value, *comp),
            FoldOp::Min if value.is_nan() || v < *value => *value = v,
            FoldOp::Max if value.is_nan() || v > *value => *value = v,
            _ => {}
        }
    }

    /// The group's answer from its state and the number of its inputs.
    pub(crate) fn answer(self, value: f64, comp: f64, count: usize) -> f64 {
        match self {
            FoldOp::Sum if value.is_infinite() => value,
            FoldOp::Sum => value + comp,
            FoldOp::Count => count as f64,
            FoldOp::Group => 1.0,
            FoldOp::Min | FoldOp::Max => value,
        }
    }
}

/// `sum`, `count`, `min`, `max` or `group` of a window-function call or a
/// plain selector a range query computed for every step: folded while the
/// selection was read in parts ([`Eval::folded`]), or from the call's
/// column ([`Eval::precomputed_column`]), each input series' group found
/// once per query and a step one pass over the column.
fn pre_aggregate<E: Eval>(ev: &E, a: &AggregateExpr, op: &str, t: i64) -> Option<Vec<Samp>> {
    let op = FoldOp::of(op)?;
    if let Some(v) = ev.folded(addr(a), t) {
        return Some(v);
    }
    let mut inner = &*a.expr;
    while let Expr::Paren(p) = inner {
        inner = &p.expr;
    }
    let key = match inner {
        Expr::Call(c) => addr(c),
        Expr::VectorSelector(vs) => addr(vs),
        _ => return None,
    };
    ev.precomputed_column(
        key,
        t,
        addr(a),
        |l| group_of(&a.modifier, l),
        |col| {
            let groups = col.groups.len();
            let mut value = vec![op.start(); groups];
            let mut comp = vec![0.0; groups];
            let mut count = vec![0usize; groups];
            let mut order: Vec<usize> = Vec::new();
            for (i, v) in col.values() {
                let g = col.group_of[i];
                if count[g] == 0 {
                    order.push(g);
                }
                count[g] += 1;
                op.add(&mut value[g], &mut comp[g], v);
            }
            order
                .into_iter()
                .map(|g| Samp {
                    h: None,
                    labels: Arc::clone(&col.groups[g]),
                    t,
                    v: op.answer(value[g], comp[g], count[g]),
                    drop_name: col.drop_name,
                })
                .collect()
        },
    )
}

fn cmp_desc_nan_last(a: f64, b: f64) -> std::cmp::Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Greater,
        (false, true) => std::cmp::Ordering::Less,
        _ => b.partial_cmp(&a).unwrap_or(std::cmp::Ordering::Equal),
    }
}

fn cmp_asc_nan_last(a: f64, b: f64) -> std::cmp::Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Greater,
        (false, true) => std::cmp::Ordering::Less,
        _ => a.partial_cmp(&b).unwrap_or(std::cmp::Ordering::Equal),
    }
}

fn sum(s: &[Samp]) -> f64 {
    let (mut sum, mut c) = (0.0, 0.0);
    for x in s {
        (sum, c) = kahan_add(x.v, sum, c);
    }
    if sum.is_infinite() { sum } else { sum + c }
}

/// Kahan sum divided by the count; on overflow of a finite input, an
/// incremental mean (Prometheus does the same switch).
fn avg(s: &[Samp]) -> f64 {
    let total = sum(s);
    if total.is_finite() || s.iter().any(|x| !x.v.is_finite()) {
        return total / s.len() as f64;
    }
    let mut mean = 0.0;
    for (i, x) in s.iter().enumerate() {
        mean += x.v / (i + 1) as f64 - mean / (i + 1) as f64;
    }
    mean
}

fn stdvar(s: &[Samp]) -> f64 {
    let (mut n, mut mean, mut m2) = (0.0, 0.0, 0.0);
    for x in s {
        n += 1.0;
        let delta = x.v - mean;
        mean += delta / n;
        m2 += delta * (x.v - mean);
    }
    m2 / n
}

/// Prometheus' `labels.Hash()`: xxHash64 of `name 0xff value 0xff …`.
fn label_hash(l: &Labels) -> u64 {
    let mut b = Vec::with_capacity(256);
    for (n, v) in l.iter() {
        b.extend_from_slice(n.as_bytes());
        b.push(0xff);
        b.extend_from_slice(v.as_bytes());
        b.push(0xff);
    }
    xxhash_rust::xxh64::xxh64(&b, 0)
}
