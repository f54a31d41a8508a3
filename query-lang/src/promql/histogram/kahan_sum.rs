//! Sums of histograms with compensation, as Prometheus' `KahanAdd`.

use std::sync::Arc;

use super::{
    FloatHistogram, IncompatibleSchema, custom_bounds_match, exponential_bound, intersect,
    merge_into,
};

/// A sum of histograms with Kahan–Babuška compensation of every count,
/// the sum and every bucket, as Prometheus' `KahanAdd` (so that `1e100`,
/// `x` and `-1e100` add up to `x`).
#[derive(Debug, Clone)]
pub struct KahanSum {
    sum: FloatHistogram,
    /// The compensation: the same layout as `sum` (same schema, zero
    /// threshold and custom bounds).
    comp: FloatHistogram,
}

/// Kahan-adds `b` into the sorted lists `sum` and `comp`.
fn kahan_merge(sum: &mut Vec<(i32, f64)>, comp: &mut Vec<(i32, f64)>, b: &[(i32, f64)]) {
    for &(i, v) in b {
        let si = match sum.binary_search_by_key(&i, |x| x.0) {
            Ok(k) => k,
            Err(k) => {
                sum.insert(k, (i, 0.0));
                k
            }
        };
        let ci = match comp.binary_search_by_key(&i, |x| x.0) {
            Ok(k) => k,
            Err(k) => {
                comp.insert(k, (i, 0.0));
                k
            }
        };
        let (s, c) = super::super::kahan::kahan_add(v, sum[si].1, comp[ci].1);
        sum[si].1 = s;
        comp[ci].1 = c;
    }
}

impl KahanSum {
    pub fn new(first: &FloatHistogram) -> Self {
        let comp = FloatHistogram {
            schema: first.schema,
            zero_threshold: first.zero_threshold,
            custom_values: Arc::clone(&first.custom_values),
            ..FloatHistogram::default()
        };
        KahanSum {
            sum: first.clone(),
            comp,
        }
    }

    /// Adds `other` in.
    pub fn add(&mut self, other: &FloatHistogram) -> Result<(), IncompatibleSchema> {
        let (sum, comp) = (&mut self.sum, &mut self.comp);
        if sum.uses_custom_buckets() != other.uses_custom_buckets() {
            return Err(IncompatibleSchema);
        }
        sum.adjust_hint(other.hint);
        let k = super::super::kahan::kahan_add;
        (sum.count, comp.count) = k(other.count, sum.count, comp.count);
        (sum.sum, comp.sum) = k(other.sum, sum.sum, comp.sum);
        if sum.uses_custom_buckets() {
            let theirs = if custom_bounds_match(&sum.custom_values, &other.custom_values) {
                other.positive.clone()
            } else {
                let common = intersect(&sum.custom_values, &other.custom_values);
                sum.positive = sum.remap_custom(&common);
                comp.positive = comp.remap_custom(&common);
                sum.custom_values = Arc::clone(&common);
                comp.custom_values = common;
                other.remap_custom(&sum.custom_values)
            };
            kahan_merge(&mut sum.positive, &mut comp.positive, &theirs);
            return Ok(());
        }
        let before = sum.zero_threshold;
        let other_zero = sum.reconcile_zero(other);
        if sum.zero_threshold != before {
            // The buckets the wider zero bucket took: their compensation
            // goes with them.
            comp.zero_threshold = sum.zero_threshold;
            let t = comp.zero_threshold;
            let taken: f64 = comp
                .positive
                .iter()
                .filter(|&&(i, _)| comp.lower(i) < t)
                .chain(comp.negative.iter().filter(|&&(i, _)| comp.lower(i) < t))
                .map(|b| b.1)
                .sum();
            comp.zero_count += taken;
            let keep = |b: &mut Vec<(i32, f64)>| {
                b.retain(|&(i, _)| exponential_bound(i - 1, comp.schema) >= t);
            };
            keep(&mut comp.positive);
            keep(&mut comp.negative);
        }
        (sum.zero_count, comp.zero_count) = k(other_zero, sum.zero_count, comp.zero_count);
        if other.schema < sum.schema {
            sum.reduce_to(other.schema);
            comp.reduce_to(other.schema);
        }
        let (pos, neg) = sum.buckets_of(other);
        kahan_merge(&mut sum.positive, &mut comp.positive, &pos);
        kahan_merge(&mut sum.negative, &mut comp.negative, &neg);
        Ok(())
    }

    /// The sum, compensation added.
    pub fn finish(self) -> FloatHistogram {
        let (mut sum, comp) = (self.sum, self.comp);
        sum.count += comp.count;
        sum.sum += comp.sum;
        sum.zero_count += comp.zero_count;
        merge_into(&mut sum.positive, &comp.positive, 1.0);
        merge_into(&mut sum.negative, &comp.negative, 1.0);
        sum
    }

    /// The mean of `n` histograms: the sum and the compensation each
    /// divided by `n`, then added (Prometheus' order).
    pub fn mean(self, n: f64) -> FloatHistogram {
        let (mut sum, mut comp) = (self.sum, self.comp);
        sum.div(n);
        comp.div(n);
        KahanSum { sum, comp }.finish()
    }
}
