//! Binary operators: arithmetic, comparisons (filtering or `bool`), set
//! operators, with Prometheus' vector matching.

use std::sync::Arc;

use promql_parser::parser::{BinaryExpr, LabelModifier, VectorMatchCardinality};

use super::histogram::{FloatHistogram, ResetHint};
use super::memo::{AddrMap, AddrSet, Memo, addr, ptr};
use super::value::{Eval, Samp, Val};
use super::{Labels, PromError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Atan2,
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    And,
    Or,
    Unless,
}

impl Op {
    fn parse(s: &str) -> Result<Op, PromError> {
        Ok(match s {
            "+" => Op::Add,
            "-" => Op::Sub,
            "*" => Op::Mul,
            "/" => Op::Div,
            "%" => Op::Mod,
            "^" => Op::Pow,
            "atan2" => Op::Atan2,
            "==" => Op::Eq,
            "!=" => Op::Ne,
            ">" => Op::Gt,
            "<" => Op::Lt,
            ">=" => Op::Ge,
            "<=" => Op::Le,
            "and" => Op::And,
            "or" => Op::Or,
            "unless" => Op::Unless,
            other => {
                return Err(PromError::bad_data(format!(
                    "unknown binary operator {other:?}"
                )));
            }
        })
    }

    fn is_comparison(self) -> bool {
        matches!(self, Op::Eq | Op::Ne | Op::Gt | Op::Lt | Op::Ge | Op::Le)
    }

    fn is_set(self) -> bool {
        matches!(self, Op::And | Op::Or | Op::Unless)
    }
}

/// `lhs op rhs` on floats: the value and, for comparisons, whether it holds.
fn apply(op: Op, l: f64, r: f64) -> (f64, bool) {
    match op {
        Op::Add => (l + r, true),
        Op::Sub => (l - r, true),
        Op::Mul => (l * r, true),
        Op::Div => (l / r, true),
        // Go's `math.Mod`: the sign follows the dividend, as Rust's `%`.
        Op::Mod => (l % r, true),
        Op::Pow => (l.powf(r), true),
        Op::Atan2 => (l.atan2(r), true),
        Op::Eq => (l, l == r),
        Op::Ne => (l, l != r),
        Op::Gt => (l, l > r),
        Op::Lt => (l, l < r),
        Op::Ge => (l, l >= r),
        Op::Le => (l, l <= r),
        Op::And | Op::Or | Op::Unless => (l, true),
    }
}

/// `lhs op rhs` where a side is a native histogram: its value, its
/// histogram and whether a comparison holds; `None` when Prometheus has no
/// answer for the pair (`h + 1`, `h * h`, `1 / h`, `h > 1`, histograms of
/// custom and exponential buckets added).
fn apply_histogram(
    op: Op,
    l: (f64, Option<&FloatHistogram>),
    r: (f64, Option<&FloatHistogram>),
) -> Option<(f64, Option<FloatHistogram>, bool)> {
    match (op, l.1, r.1) {
        (Op::Add | Op::Sub, Some(a), Some(b)) => {
            let mut out = a.clone();
            if op == Op::Add {
                out.add(b).ok()?;
            } else {
                out.sub(b).ok()?;
                out.hint = ResetHint::Gauge;
            }
            out.compact();
            Some((0.0, Some(out), true))
        }
        (Op::Mul, Some(a), None) | (Op::Mul, None, Some(a)) => {
            let factor = if l.1.is_some() { r.0 } else { l.0 };
            let mut out = a.clone();
            out.mul(factor);
            Some((0.0, Some(out), true))
        }
        (Op::Div, Some(a), None) => {
            let mut out = a.clone();
            out.div(r.0);
            Some((0.0, Some(out), true))
        }
        (Op::Eq | Op::Ne, Some(a), Some(b)) => {
            let equal = a.same_data(b);
            Some((0.0, Some(a.clone()), equal == (op == Op::Eq)))
        }
        _ => None,
    }
}

pub(crate) fn binary<E: Eval>(ev: &E, b: &BinaryExpr, t: i64) -> Result<Val, PromError> {
    let op = Op::parse(&b.op.to_string())?;
    let return_bool = b.modifier.as_ref().is_some_and(|m| m.return_bool);
    let lhs = ev.eval(&b.lhs, t)?;
    let rhs = ev.eval(&b.rhs, t)?;
    match (lhs, rhs) {
        (Val::Scalar(l), Val::Scalar(r)) => {
            let (v, keep) = apply(op, l, r);
            if op.is_comparison() {
                if return_bool {
                    return Ok(Val::Scalar(if keep { 1.0 } else { 0.0 }));
                }
                return Err(PromError::bad_data(
                    "comparisons between scalars must use BOOL modifier",
                ));
            }
            Ok(Val::Scalar(v))
        }
        (Val::Vector(v), Val::Scalar(s)) => Ok(Val::Vector(vector_scalar(
            ev,
            op,
            v,
            s,
            false,
            return_bool,
            t,
        ))),
        (Val::Scalar(s), Val::Vector(v)) => Ok(Val::Vector(vector_scalar(
            ev,
            op,
            v,
            s,
            true,
            return_bool,
            t,
        ))),
        (Val::Vector(l), Val::Vector(r)) => {
            let card = b
                .modifier
                .as_ref()
                .map(|m| m.card.clone())
                .unwrap_or(if op.is_set() {
                    VectorMatchCardinality::ManyToMany
                } else {
                    VectorMatchCardinality::OneToOne
                });
            let matching = b.modifier.as_ref().and_then(|m| m.matching.clone());
            let m = Matching::new(matching, card, ev.memo(), addr(b));
            match op {
                Op::And => Ok(Val::Vector(and(&m, l, r))),
                Op::Or => Ok(Val::Vector(or(&m, l, r))),
                Op::Unless => Ok(Val::Vector(unless(&m, l, r))),
                _ => Ok(Val::Vector(vector_vector(
                    ev,
                    op,
                    &m,
                    l,
                    r,
                    return_bool,
                    t,
                )?)),
            }
        }
        _ => Err(PromError::bad_data(
            "binary operator on unsupported operand types",
        )),
    }
}

fn vector_scalar<E: Eval>(
    ev: &E,
    op: Op,
    v: Vec<Samp>,
    s: f64,
    swap: bool,
    return_bool: bool,
    t: i64,
) -> Vec<Samp> {
    let mut out = Vec::with_capacity(v.len());
    for smp in v {
        if let Some(h) = smp.h.as_deref() {
            let (l, r) = if swap {
                ((s, None), (0.0, Some(h)))
            } else {
                ((0.0, Some(h)), (s, None))
            };
            let Some((_, h, _)) = apply_histogram(op, l, r) else {
                ev.warn(incompatible_types(op));
                continue;
            };
            out.push(Samp {
                h: h.map(Arc::new),
                drop_name: true,
                ..Samp::float(smp.labels, t, 0.0, true)
            });
            continue;
        }
        let (l, r) = if swap { (s, smp.v) } else { (smp.v, s) };
        let (mut value, keep) = apply(op, l, r);
        // A comparison keeps the vector's value, whichever side it is on.
        if op.is_comparison() && swap {
            value = smp.v;
        }
        if return_bool {
            value = if keep { 1.0 } else { 0.0 };
        } else if !keep {
            continue;
        }
        let drop = smp.drop_name || !op.is_comparison() || return_bool;
        out.push(Samp {
            h: None,
            labels: smp.labels,
            t,
            v: value,
            drop_name: drop,
        });
    }
    out
}

/// `on`/`ignoring` and the cardinality of a vector/vector operation, and
/// where its per-series label work is remembered.
pub(crate) struct Matching<'e> {
    on: bool,
    labels: Vec<String>,
    card: VectorMatchCardinality,
    memo: &'e Memo,
    node: usize,
}

impl<'e> Matching<'e> {
    fn new(
        m: Option<LabelModifier>,
        card: VectorMatchCardinality,
        memo: &'e Memo,
        node: usize,
    ) -> Self {
        let (on, labels) = match m {
            Some(LabelModifier::Include(l)) => (true, l.labels),
            Some(LabelModifier::Exclude(l)) => (false, l.labels),
            None => (false, Vec::new()),
        };
        Matching {
            on,
            labels,
            card,
            memo,
            node,
        }
    }

    /// The label set two samples are matched on, as an address (derived
    /// once per series and interned).
    fn signature(&self, l: &Arc<Labels>) -> usize {
        ptr(&self.memo.derive(self.node, 0, l, |l| match_group(self, l)))
    }

    /// Prometheus' `resultMetric`, once per pair of series.
    fn result(&self, op: Op, lhs: &Arc<Labels>, rhs: &Arc<Labels>) -> Arc<Labels> {
        self.memo
            .derive2(self.node, 1, lhs, rhs, |l, r| result_labels(op, self, l, r))
    }

    fn include(&self) -> &[String] {
        match &self.card {
            VectorMatchCardinality::ManyToOne(l) | VectorMatchCardinality::OneToMany(l) => {
                &l.labels
            }
            _ => &[],
        }
    }
}

fn and(m: &Matching, l: Vec<Samp>, r: Vec<Samp>) -> Vec<Samp> {
    let sigs: AddrSet<usize> = r.iter().map(|s| m.signature(&s.labels)).collect();
    l.into_iter()
        .filter(|s| sigs.contains(&m.signature(&s.labels)))
        .collect()
}

fn or(m: &Matching, l: Vec<Samp>, r: Vec<Samp>) -> Vec<Samp> {
    let sigs: AddrSet<usize> = l.iter().map(|s| m.signature(&s.labels)).collect();
    let mut out = l;
    out.extend(
        r.into_iter()
            .filter(|s| !sigs.contains(&m.signature(&s.labels))),
    );
    out
}

fn unless(m: &Matching, l: Vec<Samp>, r: Vec<Samp>) -> Vec<Samp> {
    let sigs: AddrSet<usize> = r.iter().map(|s| m.signature(&s.labels)).collect();
    l.into_iter()
        .filter(|s| !sigs.contains(&m.signature(&s.labels)))
        .collect()
}

fn vector_vector<E: Eval>(
    ev: &E,
    op: Op,
    m: &Matching,
    lhs: Vec<Samp>,
    rhs: Vec<Samp>,
    return_bool: bool,
    t: i64,
) -> Result<Vec<Samp>, PromError> {
    if matches!(m.card, VectorMatchCardinality::ManyToMany) {
        return Err(PromError::execution(
            "many-to-many only allowed for set operators",
        ));
    }
    let one_to_many = matches!(m.card, VectorMatchCardinality::OneToMany(_));
    // The "one" side is indexed; for group_right that is the left.
    let (many, one) = if one_to_many { (rhs, lhs) } else { (lhs, rhs) };
    let mut one_by_sig: AddrMap<usize, &Samp> = AddrMap::default();
    for s in &one {
        let sig = m.signature(&s.labels);
        if let Some(prev) = one_by_sig.insert(sig, s) {
            let side = if one_to_many { "left" } else { "right" };
            return Err(PromError::execution(format!(
                "found duplicate series for the match group {} on the {side} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                match_group(m, &s.labels),
                prev.labels,
                s.labels
            )));
        }
    }
    let one_to_one = matches!(m.card, VectorMatchCardinality::OneToOne);
    let mut matched: AddrMap<usize, AddrSet<usize>> = AddrMap::default();
    let mut out = Vec::new();
    for ls in &many {
        let sig = m.signature(&ls.labels);
        let Some(rs) = one_by_sig.get(&sig) else {
            continue;
        };
        let (sl, sr) = if one_to_many { (*rs, ls) } else { (ls, *rs) };
        let mut hist = None;
        let (mut value, keep) = if sl.h.is_some() || sr.h.is_some() {
            match apply_histogram(op, (sl.v, sl.h.as_deref()), (sr.v, sr.h.as_deref())) {
                Some((v, h, keep)) => {
                    hist = h;
                    (v, keep)
                }
                None => {
                    ev.warn(incompatible_types(op));
                    continue;
                }
            }
        } else {
            apply(op, sl.v, sr.v)
        };
        // Matching errors are errors even for pairs a comparison drops.
        let labels = m.result(op, &ls.labels, &rs.labels);
        if one_to_one {
            if matched.contains_key(&sig) {
                return Err(PromError::execution(
                    "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)",
                ));
            }
            matched.insert(sig, AddrSet::default());
        } else {
            let set = matched.entry(sig).or_default();
            if !set.insert(ptr(&labels)) {
                return Err(PromError::execution(
                    "multiple matches for labels: grouping labels must ensure unique matches",
                ));
            }
        }
        if return_bool {
            value = if keep { 1.0 } else { 0.0 };
            hist = None;
        } else if !keep {
            continue;
        }
        let drop = ls.drop_name || !op.is_comparison() || return_bool;
        out.push(Samp {
            h: hist.map(Arc::new),
            labels,
            t,
            v: value,
            drop_name: drop,
        });
    }
    Ok(out)
}

fn incompatible_types(op: Op) -> String {
    format!("PromQL info: incompatible sample types encountered for binary operator {op:?}")
}

fn match_group(m: &Matching, l: &Labels) -> Labels {
    if m.on {
        l.keep(&m.labels)
    } else {
        l.drop(&m.labels)
    }
}

/// Prometheus' `resultMetric`.
fn result_labels(_op: Op, m: &Matching, lhs: &Labels, rhs: &Labels) -> Labels {
    let mut out = lhs.clone();
    if matches!(m.card, VectorMatchCardinality::OneToOne) {
        if m.on {
            out = out.keep(&m.labels);
        } else {
            for l in &m.labels {
                out.remove(l);
            }
        }
    }
    for l in m.include() {
        match rhs.get(l) {
            Some(v) => out.set(l, v),
            None => out.remove(l),
        }
    }
    out
}
