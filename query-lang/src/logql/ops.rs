//! Operations on evaluated series: vector aggregations, binary operators
//! (arithmetic, comparisons, `and`/`or`/`unless`, with `on`/`ignoring`
//! and `group_left`/`group_right` as in PromQL) and `label_replace`.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::ast::*;
use super::labels::Labels;
use super::model::{Series, Value, format_labels};
use super::source::EvalError;

fn group_key(labels: &Labels, grouping: Option<&Grouping>) -> Labels {
    match grouping {
        None => Labels::new(),
        Some(Grouping::By(names)) => labels
            .iter()
            .filter(|(k, _)| names.contains(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        Some(Grouping::Without(names)) => labels
            .iter()
            .filter(|(k, _)| !names.contains(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

/// Per group and step: count, sum, min, max, and Welford's mean and M2.
#[derive(Clone, Copy)]
struct Acc {
    n: f64,
    sum: f64,
    min: f64,
    max: f64,
    mean: f64,
    m2: f64,
}

impl Acc {
    fn new() -> Self {
        Self {
            n: 0.0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            mean: 0.0,
            m2: 0.0,
        }
    }

    fn add(&mut self, v: f64) {
        self.n += 1.0;
        self.sum += v;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        let delta = v - self.mean;
        self.mean += delta / self.n;
        self.m2 += delta * (v - self.mean);
    }
}

pub(super) fn aggregate(
    op: AggOp,
    grouping: Option<&Grouping>,
    param: Option<f64>,
    mut series: Vec<Series>,
) -> Vec<Series> {
    match op {
        AggOp::Topk | AggOp::Bottomk => return top(op, grouping, param, series),
        AggOp::Sort | AggOp::SortDesc => {
            // By each series' last value (the instant query's); NaN last.
            let last = |s: &Series| s.points.last().map_or(f64::NAN, |p| p.1);
            series.sort_by(|a, b| {
                let (x, y) = (last(a), last(b));
                match (x.is_nan(), y.is_nan()) {
                    (true, true) => std::cmp::Ordering::Equal,
                    (true, false) => std::cmp::Ordering::Greater,
                    (false, true) => std::cmp::Ordering::Less,
                    _ if op == AggOp::Sort => x.total_cmp(&y),
                    _ => y.total_cmp(&x),
                }
            });
            return series;
        }
        _ => {}
    }
    let mut acc: BTreeMap<Labels, BTreeMap<i64, Acc>> = BTreeMap::new();
    for s in &series {
        let g = group_key(&s.labels, grouping);
        let steps = acc.entry(g).or_default();
        for &(t, v) in &s.points {
            steps.entry(t).or_insert_with(Acc::new).add(v);
        }
    }
    acc.into_iter()
        .map(|(labels, steps)| Series {
            labels,
            points: steps
                .into_iter()
                .map(|(t, a)| {
                    let v = match op {
                        AggOp::Sum => a.sum,
                        AggOp::Avg => a.sum / a.n,
                        AggOp::Min => a.min,
                        AggOp::Max => a.max,
                        AggOp::Count => a.n,
                        AggOp::Stdvar => a.m2 / a.n,
                        AggOp::Stddev => (a.m2 / a.n).sqrt(),
                        // Handled above; NaN rather than a panic if that changes.
                        AggOp::Topk | AggOp::Bottomk | AggOp::Sort | AggOp::SortDesc => f64::NAN,
                    };
                    (t, v)
                })
                .collect(),
        })
        .collect()
}

/// `topk`/`bottomk`: per group and step, the k largest (smallest) series.
fn top(
    op: AggOp,
    grouping: Option<&Grouping>,
    param: Option<f64>,
    series: Vec<Series>,
) -> Vec<Series> {
    let k = param.unwrap_or(1.0).max(1.0) as usize;
    let mut keep: Vec<Vec<(i64, f64)>> = vec![Vec::new(); series.len()];
    let mut by_step: BTreeMap<(Labels, i64), Vec<(usize, f64)>> = BTreeMap::new();
    for (i, s) in series.iter().enumerate() {
        let g = group_key(&s.labels, grouping);
        for &(t, v) in &s.points {
            by_step.entry((g.clone(), t)).or_default().push((i, v));
        }
    }
    for ((_, t), mut vs) in by_step {
        vs.sort_by(|a, b| {
            let o = a.1.partial_cmp(&b.1).unwrap_or(std::cmp::Ordering::Equal);
            if op == AggOp::Topk { o.reverse() } else { o }
        });
        for (i, v) in vs.into_iter().take(k) {
            keep[i].push((t, v));
        }
    }
    series
        .into_iter()
        .zip(keep)
        .filter(|(_, p)| !p.is_empty())
        .map(|(s, mut points)| {
            points.sort_by_key(|p| p.0);
            Series {
                labels: s.labels,
                points,
            }
        })
        .collect()
}

pub(super) fn binary(
    op: BinOp,
    bool_modifier: bool,
    matching: &VectorMatching,
    l: Value,
    r: Value,
) -> Result<Value, EvalError> {
    let cmp = op.is_comparison();
    let combine = |a: f64, b: f64, keep: f64| -> Option<f64> {
        let v = op.apply(a, b);
        if cmp && !bool_modifier {
            (v != 0.0).then_some(keep)
        } else {
            Some(v)
        }
    };
    if op.is_set() && !matches!((&l, &r), (Value::Series(_), Value::Series(_))) {
        return Err(EvalError::Invalid(format!(
            "set operator {} not allowed in binary scalar expression",
            set_name(op)
        )));
    }
    Ok(match (l, r) {
        (Value::Scalar(a), Value::Scalar(b)) => Value::Scalar(op.apply(a, b)),
        (Value::Series(s), Value::Scalar(b)) => Value::Series(
            s.into_iter()
                .map(|s| Series {
                    points: s
                        .points
                        .iter()
                        .filter_map(|&(t, a)| combine(a, b, a).map(|v| (t, v)))
                        .collect(),
                    labels: s.labels,
                })
                .filter(|s| !s.points.is_empty())
                .collect(),
        ),
        (Value::Scalar(a), Value::Series(s)) => Value::Series(
            s.into_iter()
                .map(|s| Series {
                    points: s
                        .points
                        .iter()
                        .filter_map(|&(t, b)| combine(a, b, b).map(|v| (t, v)))
                        .collect(),
                    labels: s.labels,
                })
                .filter(|s| !s.points.is_empty())
                .collect(),
        ),
        (Value::Series(ls), Value::Series(rs)) if op.is_set() => {
            Value::Series(set_op(op, matching, ls, rs))
        }
        (Value::Series(ls), Value::Series(rs)) => {
            Value::Series(vector_op(matching, ls, rs, combine)?)
        }
    })
}

fn set_name(op: BinOp) -> &'static str {
    match op {
        BinOp::And => "and",
        BinOp::Or => "or",
        _ => "unless",
    }
}

/// The labels two series are matched on.
fn signature(labels: &Labels, m: &VectorMatching) -> Labels {
    labels
        .iter()
        .filter(|(k, _)| m.labels.contains(k) == m.on)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// `and`, `or`, `unless`, per step.
fn set_op(op: BinOp, m: &VectorMatching, ls: Vec<Series>, rs: Vec<Series>) -> Vec<Series> {
    let steps_by_sig = |side: &[Series]| {
        let mut out: HashMap<Labels, HashSet<i64>> = HashMap::new();
        for s in side {
            out.entry(signature(&s.labels, m))
                .or_default()
                .extend(s.points.iter().map(|p| p.0));
        }
        out
    };
    let present = |map: &HashMap<Labels, HashSet<i64>>, s: &Series, t: i64| {
        map.get(&signature(&s.labels, m))
            .is_some_and(|ts| ts.contains(&t))
    };
    let filter = |side: Vec<Series>, keep: &dyn Fn(&Series, i64) -> bool| -> Vec<Series> {
        side.into_iter()
            .filter_map(|s| {
                let points: Vec<(i64, f64)> =
                    s.points.iter().copied().filter(|p| keep(&s, p.0)).collect();
                (!points.is_empty()).then_some(Series {
                    labels: s.labels,
                    points,
                })
            })
            .collect()
    };
    match op {
        BinOp::And => {
            let right = steps_by_sig(&rs);
            filter(ls, &|s, t| present(&right, s, t))
        }
        BinOp::Unless => {
            let right = steps_by_sig(&rs);
            filter(ls, &|s, t| !present(&right, s, t))
        }
        _ => {
            let left = steps_by_sig(&ls);
            let extra = filter(rs, &|s, t| !present(&left, s, t));
            let mut merged: BTreeMap<Labels, Vec<(i64, f64)>> = BTreeMap::new();
            for s in ls.into_iter().chain(extra) {
                merged.entry(s.labels).or_default().extend(s.points);
            }
            merged
                .into_iter()
                .map(|(labels, mut points)| {
                    points.sort_by_key(|p| p.0);
                    points.dedup_by_key(|p| p.0);
                    Series { labels, points }
                })
                .collect()
        }
    }
}

/// Arithmetic and comparisons between two vectors: one-to-one, or
/// many-to-one / one-to-many with `group_left` / `group_right`.
fn vector_op(
    m: &VectorMatching,
    ls: Vec<Series>,
    rs: Vec<Series>,
    combine: impl Fn(f64, f64, f64) -> Option<f64>,
) -> Result<Vec<Series>, EvalError> {
    let (many, one, swapped, extra) = match &m.card {
        Cardinality::OneToOne => (ls, rs, false, None),
        Cardinality::ManyToOne(extra) => (ls, rs, false, Some(extra)),
        Cardinality::OneToMany(extra) => (rs, ls, true, Some(extra)),
    };
    // The "one" side by signature, each series' points by step.
    type Points = HashMap<i64, f64>;
    let mut index: HashMap<Labels, Vec<(usize, Points)>> = HashMap::new();
    for (i, s) in one.iter().enumerate() {
        index
            .entry(signature(&s.labels, m))
            .or_default()
            .push((i, s.points.iter().copied().collect()));
    }
    let side = if swapped { "left" } else { "right" };
    let mut out: BTreeMap<Labels, Vec<(i64, f64)>> = BTreeMap::new();
    // (result labels or signature, step) already produced.
    let mut seen: HashSet<(Labels, i64)> = HashSet::new();
    for s in &many {
        let sig = signature(&s.labels, m);
        let Some(candidates) = index.get(&sig) else {
            continue;
        };
        for &(t, vm) in &s.points {
            let mut found = candidates
                .iter()
                .filter_map(|(i, p)| Some((*i, *p.get(&t)?)));
            let Some((oi, vo)) = found.next() else {
                continue;
            };
            if found.next().is_some() {
                return Err(EvalError::Invalid(format!(
                    "found duplicate series for the match group {} on the {side} hand-side of the operation; many-to-many matching not allowed: matching labels must be unique on one side",
                    format_labels(&sig)
                )));
            }
            let (vl, vr) = if swapped { (vo, vm) } else { (vm, vo) };
            let Some(v) = combine(vl, vr, vl) else {
                continue;
            };
            let labels = match extra {
                None => signature(&s.labels, m),
                Some(extra) => {
                    let mut labels = s.labels.clone();
                    for name in extra {
                        match one[oi].labels.get(name) {
                            Some(val) if !val.is_empty() => {
                                labels.insert(name.clone(), val.clone());
                            }
                            _ => {
                                labels.remove(name);
                            }
                        }
                    }
                    labels
                }
            };
            if !seen.insert((labels.clone(), t)) {
                return Err(EvalError::Invalid(match extra {
                    None => "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)".into(),
                    Some(_) => "multiple matches for labels: grouping labels must ensure unique matches".into(),
                }));
            }
            out.entry(labels).or_default().push((t, v));
        }
    }
    Ok(out
        .into_iter()
        .map(|(labels, mut points)| {
            points.sort_by_key(|p| p.0);
            Series { labels, points }
        })
        .collect())
}

/// `label_replace`: where `regex` matches the value of `src` (anchored),
/// `dst` becomes `replacement` with `$1`… expanded; an empty result
/// removes `dst`.
pub(super) fn label_replace(
    series: Vec<Series>,
    dst: &str,
    replacement: &str,
    src: &str,
    regex: &regex::Regex,
) -> Vec<Series> {
    series
        .into_iter()
        .map(|mut s| {
            let value = s.labels.get(src).cloned().unwrap_or_default();
            if let Some(caps) = regex.captures(&value) {
                let mut res = String::new();
                caps.expand(replacement, &mut res);
                if res.is_empty() {
                    s.labels.remove(dst);
                } else {
                    s.labels.insert(dst.to_owned(), res);
                }
            }
            s
        })
        .collect()
}
