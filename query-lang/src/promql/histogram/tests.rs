use super::*;

fn h(schema: i32, count: f64, sum: f64, positive: &[(i32, f64)]) -> FloatHistogram {
    FloatHistogram {
        schema,
        count,
        sum,
        positive: positive.to_vec(),
        ..Default::default()
    }
}

#[test]
fn bounds_are_prometheus_ones() {
    assert_eq!(exponential_bound(0, 0), 1.0);
    assert_eq!(exponential_bound(1, 0), 2.0);
    assert_eq!(exponential_bound(-1, 0), 0.5);
    assert_eq!(exponential_bound(1, 1), std::f64::consts::SQRT_2);
    assert_eq!(exponential_bound(1, -1), 4.0);
    assert_eq!(exponential_bound(256, -2), f64::MAX);
}

#[test]
fn the_zero_bucket_cutoff_agrees_with_the_bounds() {
    for schema in [-4, -1, 0, 1, 3, 8] {
        for t in [1e-128, 1e-3, 0.001, 0.5, 1.0, 1.5, 3.0] {
            let l = last_index_within(t, schema).unwrap();
            assert!(exponential_bound(l, schema) <= t, "{schema} {t}");
            assert!(exponential_bound(l + 1, schema) > t, "{schema} {t}");
        }
    }
    assert_eq!(last_index_within(0.0, 3), None);
    for exp in [-1022, -1, 0, 1, 1023, 1024] {
        assert_eq!(ldexp(1.0, exp), 2f64.powi(exp), "{exp}");
    }
    // The smallest subnormal.
    assert_eq!(ldexp(1.0, -1074), f64::from_bits(1));
}

#[test]
fn quantile_interpolates_exponentially() {
    // {{schema:0 sum:5 count:4 buckets:[1 2 1]}}: the median is sqrt(2).
    let x = h(0, 4.0, 5.0, &[(0, 1.0), (1, 2.0), (2, 1.0)]);
    assert!((x.quantile(0.5) - std::f64::consts::SQRT_2).abs() < 1e-12);
    assert_eq!(x.fraction(1.0, 2.0), 0.5);
    assert_eq!(x.fraction(0.0, 8.0), 1.0);
}

#[test]
fn adding_reduces_to_the_coarser_schema() {
    let mut a = h(1, 2.0, 3.0, &[(1, 1.0), (2, 1.0)]);
    let b = h(0, 1.0, 1.0, &[(1, 1.0)]);
    assert_eq!(a.add(&b), Ok(false));
    assert_eq!(a.schema, 0);
    assert_eq!(a.positive, vec![(1, 3.0)]);
    assert_eq!(a.count, 3.0);
}

#[test]
fn a_lower_bucket_count_is_a_reset() {
    let prev = h(0, 3.0, 3.0, &[(0, 2.0), (1, 1.0)]);
    let cur = h(0, 3.0, 3.0, &[(0, 1.0), (1, 2.0)]);
    assert!(cur.detect_reset(&prev));
    let cur = h(0, 4.0, 4.0, &[(0, 2.0), (1, 2.0)]);
    assert!(!cur.detect_reset(&prev));
}

#[test]
fn custom_bounds_are_reconciled_to_the_common_ones() {
    let mut a = FloatHistogram {
        schema: CUSTOM_BUCKETS_SCHEMA,
        count: 3.0,
        positive: vec![(0, 1.0), (1, 1.0), (2, 1.0)],
        custom_values: vec![1.0, 2.0].into(),
        ..Default::default()
    };
    let b = FloatHistogram {
        schema: CUSTOM_BUCKETS_SCHEMA,
        count: 2.0,
        positive: vec![(0, 1.0), (1, 1.0)],
        custom_values: vec![2.0].into(),
        ..Default::default()
    };
    assert_eq!(a.add(&b), Ok(true));
    assert_eq!(&*a.custom_values, &[2.0]);
    assert_eq!(a.positive, vec![(0, 3.0), (1, 2.0)]);
}
