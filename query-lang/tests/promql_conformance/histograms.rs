//! Native histograms in the test language: `{{…}}` values, their series
//! expansion, and `load_with_nhcb`'s custom-bucket copies of classic
//! histograms.

use std::collections::BTreeMap;

use strata_query_lang::promql::histogram::CUSTOM_BUCKETS_SCHEMA;
use strata_query_lang::promql::{FloatHistogram, Labels, ResetHint};

use super::parse_float;

/// One value of a series: a float, or a native histogram (and whether
/// the expectation names its counter-reset hint, which then must match).
#[derive(Debug, Clone)]
pub enum Cell {
    F(f64),
    H(Box<FloatHistogram>, bool),
}

/// A histogram in the test language's notation, the inside of `{{…}}`:
/// `schema:0 sum:5 count:4 z_bucket:1 z_bucket_w:0.001 buckets:[1 2 1]
/// offset:1 n_buckets:[…] n_offset:0 counter_reset_hint:gauge
/// custom_values:[…]` (each part optional). The second value says whether
/// the hint was given.
fn parse_histogram(desc: &str) -> Option<(FloatHistogram, bool)> {
    let mut h = FloatHistogram::default();
    let (mut buckets, mut n_buckets) = (Vec::new(), Vec::new());
    let (mut offset, mut n_offset) = (0i32, 0i32);
    let mut hint_set = false;
    let mut rest = desc.trim();
    while !rest.is_empty() {
        let (key, after) = rest.split_once(':')?;
        let after = after.trim_start();
        let (value, next) = if let Some(list) = after.strip_prefix('[') {
            let (inside, next) = list.split_once(']')?;
            (inside, next)
        } else {
            match after.find(char::is_whitespace) {
                Some(i) => (&after[..i], &after[i..]),
                None => (after, ""),
            }
        };
        let list = || -> Option<Vec<f64>> { value.split_whitespace().map(parse_float).collect() };
        match key.trim() {
            "schema" => h.schema = value.parse().ok()?,
            "sum" => h.sum = parse_float(value)?,
            "count" => h.count = parse_float(value)?,
            "z_bucket" => h.zero_count = parse_float(value)?,
            "z_bucket_w" => h.zero_threshold = parse_float(value)?,
            "buckets" => buckets = list()?,
            "n_buckets" => n_buckets = list()?,
            "offset" => offset = value.parse().ok()?,
            "n_offset" => n_offset = value.parse().ok()?,
            "custom_values" => h.custom_values = list()?.into(),
            "counter_reset_hint" => {
                hint_set = true;
                h.hint = match value {
                    "unknown" => ResetHint::Unknown,
                    "reset" => ResetHint::Reset,
                    "not_reset" => ResetHint::NotReset,
                    "gauge" => ResetHint::Gauge,
                    _ => return None,
                };
            }
            _ => return None,
        }
        rest = next.trim_start();
    }
    if !h.custom_values.is_empty() && h.schema != CUSTOM_BUCKETS_SCHEMA {
        return None;
    }
    h.positive = (offset..).zip(buckets).collect();
    h.negative = (n_offset..).zip(n_buckets).collect();
    Some((h, hint_set))
}

/// What `load_with_nhcb` adds: each classic histogram (`<name>_bucket`
/// series with `le`, `<name>_count`, `<name>_sum`) also as a native
/// histogram with custom buckets named `<name>`, at each time its series
/// have samples (Prometheus' `convertnhcb`).
pub fn custom_bucket_histograms(samples: &[(Labels, i64, Cell)]) -> Vec<(Labels, i64, Cell)> {
    #[derive(Default)]
    struct Parts {
        buckets: Vec<(f64, f64)>,
        count: Option<f64>,
        sum: Option<f64>,
    }
    let mut by: BTreeMap<(Labels, i64), Parts> = BTreeMap::new();
    for (l, t, v) in samples {
        let Cell::F(v) = v else { continue };
        let name = l.get("__name__").unwrap_or("");
        let (base, part) = if let Some(b) = name.strip_suffix("_bucket") {
            (b, 0)
        } else if let Some(b) = name.strip_suffix("_count") {
            (b, 1)
        } else if let Some(b) = name.strip_suffix("_sum") {
            (b, 2)
        } else {
            continue;
        };
        let mut key = l.clone();
        key.set("__name__", base);
        key.remove("le");
        let p = by.entry((key, *t)).or_default();
        match part {
            0 => {
                let Some(le) = l.get("le").and_then(parse_float).filter(|x| !x.is_nan()) else {
                    continue;
                };
                p.buckets.push((le, *v));
            }
            1 => p.count = Some(*v),
            _ => p.sum = Some(*v),
        }
    }
    let mut out = Vec::new();
    for ((labels, t), mut p) in by {
        if p.buckets.is_empty() {
            continue;
        }
        p.buckets
            .sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
        let has_inf = p.buckets.last().is_some_and(|b| b.0 == f64::INFINITY);
        let total = if has_inf {
            p.buckets.last().map_or(0.0, |b| b.1)
        } else {
            p.count
                .unwrap_or_else(|| p.buckets.last().map_or(0.0, |b| b.1))
        };
        let finite: Vec<(f64, f64)> = p
            .buckets
            .iter()
            .copied()
            .filter(|b| b.0 != f64::INFINITY)
            .collect();
        let mut positive = Vec::new();
        let mut prev = 0.0;
        for (i, (_, c)) in finite.iter().enumerate() {
            positive.push((i as i32, c - prev));
            prev = *c;
        }
        positive.push((finite.len() as i32, total - prev));
        let h = FloatHistogram {
            schema: CUSTOM_BUCKETS_SCHEMA,
            count: p.count.unwrap_or(total),
            sum: p.sum.unwrap_or(0.0),
            positive,
            custom_values: finite.iter().map(|b| b.0).collect::<Vec<_>>().into(),
            ..FloatHistogram::default()
        };
        out.push((labels, t, Cell::H(Box::new(h), false)));
    }
    out
}

/// The values of a series line: tokens split on whitespace outside
/// `{{…}}`.
pub fn value_tokens(values: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0usize, None::<usize>);
    let bytes = values.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'{' && bytes.get(i + 1) == Some(&b'{') {
            start.get_or_insert(i);
            depth += 1;
            i += 2;
            continue;
        }
        if c == b'}' && bytes.get(i + 1) == Some(&b'}') && depth > 0 {
            depth -= 1;
            i += 2;
            continue;
        }
        if c.is_ascii_whitespace() && depth == 0 {
            if let Some(s) = start.take() {
                out.push(&values[s..i]);
            }
        } else {
            start.get_or_insert(i);
        }
        i += 1;
    }
    if let Some(s) = start {
        out.push(&values[s..]);
    }
    out
}

/// Expands a token with native histograms: `{{h}}`, `{{h}}xN`,
/// `{{h}}+{{d}}xN`, `{{h}}-{{d}}xN` (N+1 values, each the last plus or
/// minus `d`, as Prometheus' test parser adds them).
pub fn expand_histograms(token: &str) -> Option<Vec<Option<Cell>>> {
    let body = token.strip_prefix("{{")?;
    let (first, rest) = body.split_once("}}")?;
    let (base, hint) = parse_histogram(first)?;
    if rest.is_empty() {
        return Some(vec![Some(Cell::H(Box::new(base), hint))]);
    }
    if let Some(n) = rest.strip_prefix('x') {
        let n: usize = n.parse().ok()?;
        return Some(vec![Some(Cell::H(Box::new(base), hint)); n + 1]);
    }
    let sign = rest.chars().next()?;
    let inc = rest[1..].strip_prefix("{{")?;
    let (inc, times) = inc.split_once("}}")?;
    let (inc, _) = parse_histogram(inc)?;
    let n: usize = times.strip_prefix('x')?.parse().ok()?;
    let mut out = vec![Some(Cell::H(Box::new(base.clone()), hint))];
    let mut cur = base;
    for _ in 0..n {
        if cur.schema > inc.schema && !cur.uses_custom_buckets() {
            // Prometheus' parser refuses to merge to a finer schema.
            return None;
        }
        match sign {
            '+' => cur.add(&inc).ok()?,
            '-' => cur.sub(&inc).ok()?,
            _ => return None,
        };
        out.push(Some(Cell::H(Box::new(cur.clone()), hint)));
    }
    Some(out)
}
