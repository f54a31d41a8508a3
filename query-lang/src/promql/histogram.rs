//! Native histograms as PromQL computes with them: float counts, absolute
//! (not delta) bucket counts, each side's buckets a sorted list of
//! `(index, count)`. Exponential schemas -4..=8 (bucket `i` of schema `s`
//! ends at `2^(i * 2^-s)`) and custom buckets (schema -53, bucket `i` ends
//! at `custom_values[i]`, the last at +Inf), with Prometheus' rules for
//! adding histograms of different schemas, zero buckets and custom bounds,
//! counter resets, quantiles and fractions.

use std::sync::Arc;

mod kahan_sum;
pub use kahan_sum::KahanSum;

/// The schema of custom-bucket histograms (NHCB).
pub const CUSTOM_BUCKETS_SCHEMA: i32 = -53;

/// What the sender said about a counter reset at this sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResetHint {
    #[default]
    Unknown,
    Reset,
    NotReset,
    Gauge,
}

/// A native histogram with float counts.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FloatHistogram {
    pub hint: ResetHint,
    pub schema: i32,
    pub zero_threshold: f64,
    pub zero_count: f64,
    pub count: f64,
    pub sum: f64,
    /// Buckets above zero by index, ascending (zero counts may be present).
    pub positive: Vec<(i32, f64)>,
    /// Buckets below zero by index (of their absolute value), ascending.
    pub negative: Vec<(i32, f64)>,
    /// The upper bounds of custom buckets (schema -53); +Inf is implied
    /// for the bucket after the last.
    pub custom_values: Arc<[f64]>,
}

/// One side's buckets: `(index, count)`, by index.
type Buckets = Vec<(i32, f64)>;

/// Two histograms that cannot be combined: one with custom buckets, the
/// other exponential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IncompatibleSchema;

/// One bucket with its bounds, as an iteration over a histogram gives it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    pub lower: f64,
    pub upper: f64,
    pub count: f64,
    /// The zero bucket (closed on both sides).
    pub zero: bool,
    /// A bucket below zero (closed at its lower bound).
    pub negative: bool,
}

/// `frac * 2^exp`, exact for the powers of two bucket bounds are made of.
fn ldexp(frac: f64, exp: i32) -> f64 {
    if (-1022..=1023).contains(&exp) {
        // 2^exp built from its bits: exact, and no loop of multiplies.
        return frac * f64::from_bits(((exp + 1023) as u64) << 52);
    }
    if exp > 1000 {
        return ldexp(frac * 2f64.powi(1000), exp - 1000);
    }
    if exp < -1000 {
        return ldexp(frac * 2f64.powi(-1000), exp + 1000);
    }
    frac * 2f64.powi(exp)
}

/// The upper bound of exponential bucket `idx` of `schema`, as
/// Prometheus' `getBoundExponential` computes it (the last bucket before
/// the one of ±Inf ends at `f64::MAX`).
pub fn exponential_bound(idx: i32, schema: i32) -> f64 {
    if schema < 0 {
        let exp = i64::from(idx) << (-schema).min(62);
        if exp == 1024 {
            return f64::MAX;
        }
        let exp = exp.clamp(-2000, 2000) as i32;
        return ldexp(1.0, exp);
    }
    let schema = schema.min(8);
    let frac_idx = idx & ((1 << schema) - 1);
    let frac = fractions(schema)[frac_idx as usize];
    let exp = (idx >> schema) + 1;
    if frac == 0.5 && exp == 1025 {
        return f64::MAX;
    }
    ldexp(frac, exp)
}

/// The fractions `2^(j / 2^schema) / 2` of schema 0..=8's bucket bounds
/// within a power of two, worked out once.
fn fractions(schema: i32) -> &'static [f64] {
    static TABLES: std::sync::OnceLock<Vec<Vec<f64>>> = std::sync::OnceLock::new();
    let tables = TABLES.get_or_init(|| {
        (0..=8u32)
            .map(|s| {
                (0..1u32 << s)
                    .map(|j| (f64::from(j) / f64::from(1u32 << s)).exp2() / 2.0)
                    .collect()
            })
            .collect()
    });
    &tables[schema.clamp(0, 8) as usize]
}

/// The highest bucket index of `schema` whose upper bound is at most `t`
/// (those buckets lie inside a zero bucket of width `t`); `None` for
/// `t <= 0`.
fn last_index_within(t: f64, schema: i32) -> Option<i32> {
    if t <= 0.0 || t.is_nan() {
        return None;
    }
    // A guess from the logarithm, then corrected by the exact bounds.
    let scale = 2f64.powi(schema);
    let mut i = (t.log2() * scale).floor().clamp(-2e9, 2e9) as i32;
    while exponential_bound(i, schema) > t {
        i -= 1;
    }
    while exponential_bound(i + 1, schema) <= t {
        i += 1;
    }
    Some(i)
}

/// Bucket `idx` of `origin` in the coarser schema `target`.
fn target_index(idx: i32, origin: i32, target: i32) -> i32 {
    ((idx - 1) >> (origin - target)) + 1
}

/// Adds `b` (times `sign`) into the sorted bucket list `a`.
fn merge_into(a: &mut Vec<(i32, f64)>, b: &[(i32, f64)], sign: f64) {
    if b.is_empty() {
        return;
    }
    // In place when `a` has every bucket of `b` (a counter's later sample
    // has its earlier ones'): no new list.
    let mut j = 0;
    let subset = b.iter().all(|&(i, _)| {
        while j < a.len() && a[j].0 < i {
            j += 1;
        }
        j < a.len() && a[j].0 == i
    });
    if subset {
        let mut j = 0;
        for &(i, c) in b {
            while a[j].0 < i {
                j += 1;
            }
            a[j].1 += sign * c;
        }
        return;
    }
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) if x.0 == y.0 => {
                out.push((x.0, x.1 + sign * y.1));
                i += 1;
                j += 1;
            }
            (Some(x), Some(y)) if x.0 < y.0 => {
                out.push(*x);
                i += 1;
            }
            (Some(x), None) => {
                out.push(*x);
                i += 1;
            }
            (_, Some(y)) => {
                out.push((y.0, sign * y.1));
                j += 1;
            }
            (None, None) => break,
        }
    }
    *a = out;
}

/// `b` in a coarser schema: indexes mapped, counts of merged buckets added.
fn reduce(b: &[(i32, f64)], origin: i32, target: i32) -> Vec<(i32, f64)> {
    let mut out: Vec<(i32, f64)> = Vec::with_capacity(b.len());
    for &(i, c) in b {
        let t = target_index(i, origin, target);
        match out.last_mut() {
            Some(last) if last.0 == t => last.1 += c,
            _ => out.push((t, c)),
        }
    }
    out
}

impl FloatHistogram {
    pub fn uses_custom_buckets(&self) -> bool {
        self.schema == CUSTOM_BUCKETS_SCHEMA
    }

    /// The upper bound of positive bucket `idx`.
    fn upper(&self, idx: i32) -> f64 {
        if self.uses_custom_buckets() {
            usize::try_from(idx)
                .ok()
                .and_then(|i| self.custom_values.get(i).copied())
                .unwrap_or(f64::INFINITY)
        } else {
            exponential_bound(idx, self.schema)
        }
    }

    /// The lower bound of positive bucket `idx`.
    fn lower(&self, idx: i32) -> f64 {
        if self.uses_custom_buckets() {
            if idx <= 0 {
                f64::NEG_INFINITY
            } else {
                self.upper(idx - 1)
            }
        } else {
            exponential_bound(idx - 1, self.schema)
        }
    }

    /// Scales every count and the sum (a negative factor makes a gauge).
    pub fn mul(&mut self, factor: f64) {
        self.zero_count *= factor;
        self.count *= factor;
        self.sum *= factor;
        for b in self.positive.iter_mut().chain(self.negative.iter_mut()) {
            b.1 *= factor;
        }
        if factor < 0.0 {
            self.hint = ResetHint::Gauge;
        }
    }

    /// Divides every count and the sum; dividing by zero leaves no
    /// buckets (the zero bucket, count and sum become infinite), a
    /// negative divisor makes a gauge.
    pub fn div(&mut self, divisor: f64) {
        self.zero_count /= divisor;
        self.count /= divisor;
        self.sum /= divisor;
        if divisor == 0.0 {
            self.positive.clear();
            self.negative.clear();
            return;
        }
        for b in self.positive.iter_mut().chain(self.negative.iter_mut()) {
            b.1 /= divisor;
        }
        if divisor < 0.0 {
            self.hint = ResetHint::Gauge;
        }
    }

    /// Drops buckets with a zero count.
    pub fn compact(&mut self) {
        self.positive.retain(|b| b.1 != 0.0);
        self.negative.retain(|b| b.1 != 0.0);
    }

    /// The histogram in the coarser schema `target` (custom buckets stay).
    pub fn reduce_to(&mut self, target: i32) {
        if self.uses_custom_buckets() || target >= self.schema {
            return;
        }
        self.positive = reduce(&self.positive, self.schema, target);
        self.negative = reduce(&self.negative, self.schema, target);
        self.schema = target;
    }

    /// The zero count with a zero bucket at least `larger` wide, and the
    /// threshold it ends at: a populated bucket the threshold falls in is
    /// taken in whole.
    fn zero_count_for(&self, larger: f64) -> (f64, f64) {
        if larger == self.zero_threshold {
            return (self.zero_count, larger);
        }
        let mut threshold = larger;
        'outer: loop {
            let mut count = self.zero_count;
            for &(i, c) in &self.positive {
                let (lo, up) = (self.lower(i), self.upper(i));
                if lo >= threshold {
                    break;
                }
                count += c;
                if up > threshold {
                    if c != 0.0 {
                        threshold = up;
                    }
                    break;
                }
            }
            for &(i, c) in &self.negative {
                let (lo, up) = (-self.upper(i), -self.lower(i));
                if up <= -threshold {
                    break;
                }
                count += c;
                if lo < -threshold {
                    if c != 0.0 {
                        threshold = -lo;
                        continue 'outer;
                    }
                    break;
                }
            }
            return (count, threshold);
        }
    }

    /// Removes the buckets inside the zero bucket.
    fn trim_zero(&mut self) {
        let t = self.zero_threshold;
        let keep_pos: Vec<(i32, f64)> = self
            .positive
            .iter()
            .copied()
            .filter(|&(i, c)| self.lower(i) >= t && c != 0.0)
            .collect();
        let keep_neg: Vec<(i32, f64)> = self
            .negative
            .iter()
            .copied()
            .filter(|&(i, c)| -self.lower(i) <= -t && c != 0.0)
            .collect();
        self.positive = keep_pos;
        self.negative = keep_neg;
    }

    /// Widens whichever zero bucket is narrower until both agree; the
    /// other's zero count for the common width.
    fn reconcile_zero(&mut self, other: &FloatHistogram) -> f64 {
        let mut other_count = other.zero_count;
        let mut other_threshold = other.zero_threshold;
        while other_threshold != self.zero_threshold {
            if self.zero_threshold > other_threshold {
                (other_count, other_threshold) = other.zero_count_for(self.zero_threshold);
            }
            if other_threshold > self.zero_threshold {
                (self.zero_count, self.zero_threshold) = self.zero_count_for(other_threshold);
                self.trim_zero();
            }
        }
        other_count
    }

    /// Prometheus' rule for the hint of a sum or difference.
    fn adjust_hint(&mut self, other: ResetHint) {
        use ResetHint::*;
        self.hint = match (self.hint, other) {
            (a, b) if a == b => a,
            (Gauge, _) | (_, Gauge) => Gauge,
            _ => Unknown,
        };
    }

    /// `self + sign * other`. Returns whether mismatched custom bounds
    /// were reconciled (to the bounds both have).
    fn add_signed(
        &mut self,
        other: &FloatHistogram,
        sign: f64,
    ) -> Result<bool, IncompatibleSchema> {
        if self.uses_custom_buckets() != other.uses_custom_buckets() {
            return Err(IncompatibleSchema);
        }
        self.adjust_hint(other.hint);
        self.count += sign * other.count;
        self.sum += sign * other.sum;
        if self.uses_custom_buckets() {
            if custom_bounds_match(&self.custom_values, &other.custom_values) {
                merge_into(&mut self.positive, &other.positive, sign);
                return Ok(false);
            }
            let common = intersect(&self.custom_values, &other.custom_values);
            let mine = self.remap_custom(&common);
            let theirs = other.remap_custom(&common);
            self.positive = mine;
            merge_into(&mut self.positive, &theirs, sign);
            self.custom_values = common;
            return Ok(true);
        }
        let other_zero = self.reconcile_zero(other);
        self.zero_count += sign * other_zero;
        if other.schema < self.schema {
            self.reduce_to(other.schema);
        }
        let (pos, neg) = self.buckets_of(other);
        merge_into(&mut self.positive, &pos, sign);
        merge_into(&mut self.negative, &neg, sign);
        Ok(false)
    }

    /// `other`'s positive and negative buckets as they add into `self`
    /// (whose schema is at most `other`'s, zero buckets reconciled): in
    /// `self`'s schema, those inside `self`'s zero bucket left out (they
    /// are in `other`'s zero count for that width already).
    fn buckets_of(&self, other: &FloatHistogram) -> (Buckets, Buckets) {
        let (mut pos, mut neg) = if other.schema > self.schema {
            (
                reduce(&other.positive, other.schema, self.schema),
                reduce(&other.negative, other.schema, self.schema),
            )
        } else {
            (other.positive.clone(), other.negative.clone())
        };
        if let Some(last) = last_index_within(self.zero_threshold, self.schema) {
            pos.retain(|&(i, _)| i > last);
            neg.retain(|&(i, _)| i > last);
        }
        (pos, neg)
    }

    /// Adds `other` in: see [`FloatHistogram::add_signed`].
    pub fn add(&mut self, other: &FloatHistogram) -> Result<bool, IncompatibleSchema> {
        self.add_signed(other, 1.0)
    }

    /// Subtracts `other`.
    pub fn sub(&mut self, other: &FloatHistogram) -> Result<bool, IncompatibleSchema> {
        self.add_signed(other, -1.0)
    }

    /// The custom buckets mapped onto `bounds` (a subset of their own):
    /// each bucket goes to the first bound at or above its own.
    fn remap_custom(&self, bounds: &[f64]) -> Vec<(i32, f64)> {
        let mut out: Vec<(i32, f64)> = Vec::new();
        for &(i, c) in &self.positive {
            let up = self.upper(i);
            let t = bounds.partition_point(|&b| b < up) as i32;
            match out.last_mut() {
                Some(last) if last.0 == t => last.1 += c,
                _ => out.push((t, c)),
            }
        }
        out
    }

    /// Whether `self`, following `previous`, shows a counter reset.
    pub fn detect_reset(&self, previous: &FloatHistogram) -> bool {
        match self.hint {
            ResetHint::Reset => return true,
            ResetHint::NotReset => return false,
            _ => {}
        }
        if self.count < previous.count {
            return true;
        }
        if self.uses_custom_buckets() != previous.uses_custom_buckets() {
            return true;
        }
        if self.uses_custom_buckets() {
            if !custom_bounds_match(&self.custom_values, &previous.custom_values) {
                let common = intersect(&self.custom_values, &previous.custom_values);
                return bucket_decreased(
                    &self.remap_custom(&common),
                    &previous.remap_custom(&common),
                );
            }
            return bucket_decreased(&self.positive, &previous.positive);
        }
        if self.schema > previous.schema {
            return true;
        }
        if self.zero_threshold < previous.zero_threshold {
            return true;
        }
        let (prev_zero, threshold) = previous.zero_count_for(self.zero_threshold);
        if threshold != self.zero_threshold {
            return true;
        }
        if self.zero_count < prev_zero {
            return true;
        }
        let t = self.zero_threshold;
        if previous.schema == self.schema {
            // The common case: one layout, compared in place.
            let last_inside = last_index_within(t, self.schema);
            let inside = |i: i32| last_inside.is_some_and(|l| i <= l);
            return bucket_decreased_outside(&self.positive, &previous.positive, &inside)
                || bucket_decreased_outside(&self.negative, &previous.negative, &inside);
        }
        let keep = |b: &[(i32, f64)], schema: i32| -> Vec<(i32, f64)> {
            let mut r = reduce(b, schema, self.schema);
            if t > 0.0 {
                r.retain(|&(i, _)| exponential_bound(i, self.schema) > t);
            }
            r
        };
        let own = |b: &[(i32, f64)]| keep(b, self.schema);
        bucket_decreased(
            &own(&self.positive),
            &keep(&previous.positive, previous.schema),
        ) || bucket_decreased(
            &own(&self.negative),
            &keep(&previous.negative, previous.schema),
        )
    }

    /// Every bucket from the lowest to the highest: negative buckets, the
    /// zero bucket when populated, positive buckets; bounds inside the
    /// zero bucket clamped to it.
    pub fn buckets(&self) -> Vec<Bucket> {
        let t = self.zero_threshold;
        let mut out = Vec::with_capacity(self.positive.len() + self.negative.len() + 1);
        for &(i, c) in self.negative.iter().rev() {
            let (mut lower, mut upper) = (-self.upper(i), -self.lower(i));
            if upper < 0.0 && upper > -t {
                upper = -t;
            }
            if lower > 0.0 && lower < t {
                lower = t;
            }
            out.push(Bucket {
                lower,
                upper,
                count: c,
                zero: false,
                negative: true,
            });
        }
        if self.zero_count > 0.0 {
            out.push(Bucket {
                lower: -t,
                upper: t,
                count: self.zero_count,
                zero: true,
                negative: false,
            });
        }
        for &(i, c) in &self.positive {
            let (mut lower, upper) = (self.lower(i), self.upper(i));
            if lower > 0.0 && lower < t {
                lower = t;
            }
            out.push(Bucket {
                lower,
                upper,
                count: c,
                zero: false,
                negative: false,
            });
        }
        out
    }

    /// Prometheus' `HistogramQuantile`: the value at quantile `q`,
    /// interpolated exponentially within exponential buckets and linearly
    /// within the zero bucket and custom buckets.
    pub fn quantile(&self, q: f64) -> f64 {
        if q < 0.0 {
            return f64::NEG_INFINITY;
        }
        if q > 1.0 {
            return f64::INFINITY;
        }
        if self.count == 0.0 || q.is_nan() {
            return f64::NAN;
        }
        let all = self.buckets();
        let forward = self.sum.is_nan() || q < 0.5;
        let mut rank = if forward {
            q * self.count
        } else {
            (1.0 - q) * self.count
        };
        let mut count = 0.0;
        let mut bucket = None;
        let mut pos = 0;
        let order: Box<dyn Iterator<Item = &Bucket>> = if forward {
            Box::new(all.iter())
        } else {
            Box::new(all.iter().rev())
        };
        for b in order {
            pos += 1;
            if b.count == 0.0 {
                continue;
            }
            count += b.count;
            bucket = Some(*b);
            if count >= rank {
                break;
            }
        }
        let Some(mut b) = bucket else {
            return f64::NAN;
        };
        if !self.uses_custom_buckets() && b.lower < 0.0 && b.upper > 0.0 {
            if self.negative.is_empty() && !self.positive.is_empty() {
                b.lower = 0.0;
            } else if self.positive.is_empty() && !self.negative.is_empty() {
                b.upper = 0.0;
            }
        } else if self.uses_custom_buckets() {
            if b.lower == f64::NEG_INFINITY {
                if b.upper <= 0.0 {
                    return b.upper;
                }
                b.lower = 0.0;
            } else if b.upper == f64::INFINITY {
                return b.lower;
            }
        }
        if count > self.count {
            count = self.count;
        }
        if count < rank {
            if self.sum.is_nan() {
                return f64::NAN;
            }
            return b.upper;
        }
        if forward {
            rank -= count - b.count;
        } else {
            rank = count - rank;
        }
        let _ = pos;
        let fraction = rank / b.count;
        if self.uses_custom_buckets() || (b.lower <= 0.0 && b.upper >= 0.0) {
            return b.lower + (b.upper - b.lower) * fraction;
        }
        let log_lower = b.lower.abs().log2();
        let log_upper = b.upper.abs().log2();
        if b.lower > 0.0 {
            return (log_lower + (log_upper - log_lower) * fraction).exp2();
        }
        -(log_upper + (log_lower - log_upper) * (1.0 - fraction)).exp2()
    }

    /// Prometheus' `HistogramFraction`: the estimated share of
    /// observations between `lower` and `upper`.
    pub fn fraction(&self, lower: f64, upper: f64) -> f64 {
        if self.count == 0.0 || lower.is_nan() || upper.is_nan() {
            return f64::NAN;
        }
        if lower >= upper {
            return 0.0;
        }
        let (mut rank, mut lower_rank, mut upper_rank) = (0.0, 0.0, 0.0);
        let (mut lower_set, mut upper_set) = (false, false);
        let mut count = 0.0;
        let custom = self.uses_custom_buckets();
        for mut b in self.buckets() {
            count += b.count;
            let mut zero = false;
            if b.lower <= 0.0 && b.upper >= 0.0 {
                zero = true;
                if self.negative.is_empty() && !self.positive.is_empty() {
                    b.lower = 0.0;
                } else if self.positive.is_empty() && !self.negative.is_empty() {
                    b.upper = 0.0;
                }
            }
            let below = |v: f64, linear: bool| -> f64 {
                if linear {
                    if b.lower == f64::NEG_INFINITY {
                        return b.count;
                    }
                    return rank + b.count * (v - b.lower) / (b.upper - b.lower);
                }
                let (ll, lu, lv) = (b.lower.abs().log2(), b.upper.abs().log2(), v.abs().log2());
                let f = if v > 0.0 {
                    (lv - ll) / (lu - ll)
                } else {
                    1.0 - (lv - lu) / (ll - lu)
                };
                rank + b.count * f
            };
            if !lower_set && b.lower >= lower {
                lower_rank = rank;
                lower_set = true;
            }
            if !upper_set && b.lower >= upper {
                upper_rank = rank;
                upper_set = true;
            }
            if lower_set && upper_set {
                break;
            }
            if !lower_set && b.lower < lower && b.upper > lower {
                lower_rank = below(lower, custom || zero);
                lower_set = true;
            }
            if !upper_set && b.lower < upper && b.upper > upper {
                upper_rank = below(upper, custom || zero);
                upper_set = true;
            }
            if lower_set && upper_set {
                break;
            }
            rank += b.count;
        }
        let count = if self.sum.is_nan() { count } else { self.count };
        if !lower_set || lower_rank > count {
            lower_rank = count;
        }
        if !upper_set || upper_rank > count {
            upper_rank = count;
        }
        (upper_rank - lower_rank) / self.count
    }

    /// The estimated variance of the observations: each bucket's
    /// observations at its geometric mean (arithmetic for custom buckets,
    /// zero in the zero bucket).
    pub fn variance(&self) -> f64 {
        let mean = self.sum / self.count;
        let (mut var, mut c) = (0.0, 0.0);
        for b in self.buckets() {
            if b.count == 0.0 {
                continue;
            }
            let v = if self.uses_custom_buckets() {
                (b.upper + b.lower) / 2.0
            } else if b.lower <= 0.0 && b.upper >= 0.0 {
                0.0
            } else {
                let g = (b.upper * b.lower).sqrt();
                if b.upper < 0.0 { -g } else { g }
            };
            let d = v - mean;
            (var, c) = super::kahan::kahan_add(b.count * d * d, var, c);
        }
        (var + c) / self.count
    }

    /// The same data, as Prometheus' `Equals`: every field but the
    /// counter-reset hint, floats bit for bit, the same buckets (empty
    /// ones included).
    pub fn same_data(&self, other: &FloatHistogram) -> bool {
        let bits = |a: f64, b: f64| a.to_bits() == b.to_bits();
        let buckets = |a: &[(i32, f64)], b: &[(i32, f64)]| {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.0 == y.0 && bits(x.1, y.1))
        };
        self.schema == other.schema
            && bits(self.zero_threshold, other.zero_threshold)
            && bits(self.zero_count, other.zero_count)
            && bits(self.count, other.count)
            && bits(self.sum, other.sum)
            && buckets(&self.positive, &other.positive)
            && buckets(&self.negative, &other.negative)
            && custom_bounds_match(&self.custom_values, &other.custom_values)
    }

    /// Equal in content: zero-count buckets ignored, floats within `eps`
    /// relative (counts) and exactly (layout).
    pub fn approx_eq(&self, other: &FloatHistogram, eps: f64) -> bool {
        let close = |a: f64, b: f64| {
            a == b
                || (a.is_nan() && b.is_nan())
                || (a - b).abs() <= eps * a.abs().max(b.abs())
                || (a - b).abs() < 1e-300
        };
        let nz = |b: &[(i32, f64)]| -> Vec<(i32, f64)> {
            b.iter().copied().filter(|x| x.1 != 0.0).collect()
        };
        let (ap, bp, an, bn) = (
            nz(&self.positive),
            nz(&other.positive),
            nz(&self.negative),
            nz(&other.negative),
        );
        self.schema == other.schema
            && close(self.count, other.count)
            && close(self.sum, other.sum)
            && (!self.uses_custom_buckets()
                || custom_bounds_match(&self.custom_values, &other.custom_values))
            && self.zero_threshold == other.zero_threshold
            && close(self.zero_count, other.zero_count)
            && ap.len() == bp.len()
            && an.len() == bn.len()
            && ap
                .iter()
                .zip(&bp)
                .all(|(x, y)| x.0 == y.0 && close(x.1, y.1))
            && an
                .iter()
                .zip(&bn)
                .all(|(x, y)| x.0 == y.0 && close(x.1, y.1))
    }
}

fn custom_bounds_match(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

fn intersect(a: &[f64], b: &[f64]) -> Arc<[f64]> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < a.len() && j < b.len() {
        if a[i] == b[j] {
            out.push(a[i]);
            i += 1;
            j += 1;
        } else if a[i] < b[j] {
            i += 1;
        } else {
            j += 1;
        }
    }
    out.into()
}

/// [`bucket_decreased`] ignoring the buckets `inside` the zero bucket.
fn bucket_decreased_outside(
    cur: &[(i32, f64)],
    prev: &[(i32, f64)],
    inside: &dyn Fn(i32) -> bool,
) -> bool {
    let mut j = 0;
    for &(i, c) in prev {
        if c == 0.0 || inside(i) {
            continue;
        }
        while j < cur.len() && cur[j].0 < i {
            j += 1;
        }
        let now = if j < cur.len() && cur[j].0 == i {
            cur[j].1
        } else {
            0.0
        };
        if now < c {
            return true;
        }
    }
    false
}

/// Whether a populated bucket of `prev` is missing from `cur` or has a
/// larger count there (both in one layout).
fn bucket_decreased(cur: &[(i32, f64)], prev: &[(i32, f64)]) -> bool {
    let mut j = 0;
    for &(i, c) in prev {
        while j < cur.len() && cur[j].0 < i {
            j += 1;
        }
        let now = if j < cur.len() && cur[j].0 == i {
            cur[j].1
        } else {
            0.0
        };
        if c != 0.0 && now < c {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests;
