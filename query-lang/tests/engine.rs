//! Engine behaviour beyond the conformance files: cancellation, limits.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use strata_query_lang::promql::{Cancel, Engine, EngineConfig, ErrorKind, Labels, MemorySource};

fn source() -> MemorySource {
    let mut s = MemorySource::new();
    let l = Labels::new(vec![
        ("__name__".into(), "m".into()),
        ("job".into(), "a".into()),
    ]);
    for i in 0..100 {
        s.add(&l, i * 15_000, i as f64);
    }
    s
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

#[test]
fn a_canceled_query_stops_with_canceled() {
    let src = source();
    let engine = Engine::default();
    let prepared = rt()
        .block_on(engine.prepare_range(&src, "rate(m[1m])", 0, 1_500_000, 15_000))
        .unwrap();
    let cancel = Cancel::new(None);
    cancel.cancel();
    let err = prepared.evaluate(&cancel).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Canceled);
}

#[test]
fn an_expired_deadline_is_a_timeout() {
    let src = source();
    let engine = Engine::default();
    let prepared = rt()
        .block_on(engine.prepare_instant(&src, "m", 60_000))
        .unwrap();
    let cancel = Cancel::new(Some(std::time::Instant::now()));
    assert_eq!(
        prepared.evaluate(&cancel).unwrap_err().kind,
        ErrorKind::Timeout
    );
}

#[test]
fn limits_are_errors_of_their_kind() {
    let src = source();
    let engine = Engine::new(EngineConfig {
        max_samples: 10,
        max_points: 100,
        ..EngineConfig::default()
    });
    let err = rt()
        .block_on(engine.instant(&src, "sum_over_time(m[10m])", 1_000_000))
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::TooLarge);
    let err = rt()
        .block_on(engine.range(&src, "m", 0, 1_000_000, 1_000))
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadData);
    assert!(
        err.message.contains("exceeded maximum resolution"),
        "{}",
        err.message
    );
    let err = rt().block_on(engine.instant(&src, "sum(", 0)).unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadData);
    assert!(
        err.message.starts_with("invalid parameter \"query\""),
        "{}",
        err.message
    );
}

/// Many series and steps: the range evaluator splits the steps over
/// workers and remembers per-series label work. Every step of its answer
/// must equal an instant query at that time (evaluated alone, one worker,
/// a fresh memo), for aggregations, vector matching, histogram buckets and
/// functions that rebuild labels.
#[test]
fn a_split_range_query_equals_its_instant_queries() {
    let mut src = MemorySource::new();
    for i in 0..200 {
        let tenant = format!("t{}", i % 7);
        let service = format!("s{}", i % 5);
        let pod = format!("p{i}");
        for (le, share) in [("0.1", 0.5), ("1", 0.9), ("+Inf", 1.0)] {
            let l = Labels::new(vec![
                ("__name__".into(), "req_bucket".into()),
                ("tenant".into(), tenant.clone()),
                ("service".into(), service.clone()),
                ("pod".into(), pod.clone()),
                ("le".into(), le.into()),
            ]);
            for k in 0..80 {
                src.add(&l, k * 15_000 + i, (k * (i % 13 + 1)) as f64 * share);
            }
        }
        let l = Labels::new(vec![
            ("__name__".into(), "up".into()),
            ("tenant".into(), tenant.clone()),
            ("pod".into(), pod.clone()),
        ]);
        for k in 0..80 {
            // Some pods stop (a staleness marker), some leave a gap longer
            // than the lookback: instant selectors must skip both.
            let v = if i % 11 == 0 && k == 40 {
                f64::from_bits(strata_query_lang::promql::STALE_NAN_BITS)
            } else {
                f64::from(k % 3 != 0)
            };
            if i % 13 == 0 && (50..72).contains(&k) {
                continue;
            }
            src.add(&l, k * 15_000 + 7, v);
        }
    }
    let queries = [
        r#"sum by (tenant, service) (rate(req_bucket{le="+Inf"}[1m])) / sum by (tenant, service) (rate(req_bucket[1m]))"#,
        "histogram_quantile(0.9, sum by (le, service) (rate(req_bucket[2m])))",
        "topk(3, sum by (tenant) (rate(req_bucket[1m])))",
        "up * on (tenant, pod) group_left (service) (req_bucket{le=\"1\"} > 0)",
        "count by (tenant) (up == 1) or on (tenant) vector(0)",
        r#"label_replace(rate(req_bucket{le="0.1"}[1m]), "x", "$1", "pod", "p(.*)")"#,
        "up unless on (pod) req_bucket{le=\"1\"} < 20",
        "predict_linear(req_bucket{le=\"1\"}[2m], 4 * 150) / ignoring (le) req_bucket{le=\"+Inf\"}",
        "sum by (tenant) (sum_over_time(up[1m] offset 30s)) + on (tenant) sum by (tenant) (count_over_time(up[45s] @ 600))",
        "max by (service) (rate(req_bucket[1m])) - min by (service) ((rate(req_bucket[1m])))",
        "count by (tenant) (increase(up[2m])) + on (tenant) group by (tenant) (deriv(up[2m]))",
        "quantile_over_time(0.9, req_bucket{le=\"0.1\"}[3m]) > bool irate(req_bucket{le=\"0.1\"}[1m])",
        // Counter resets: `up` drops every third sample, so some 30s
        // windows hold a decrease and some none (the precompute skips the
        // reset scan only for the latter).
        "sum by (tenant) (increase(up[2m]))",
        "rate(up[30s])",
        // Aggregations straight over a selector (computed by column).
        "sum by (tenant) (up)",
        "count(up offset 45s)",
        "max by (service) ((req_bucket))",
        "group by (tenant) (up) and on (tenant) min by (tenant) (up)",
        // One selector or one window function: read off whole, series by
        // series, no step evaluated; 800 series are enough work to split
        // the steps over two workers, each reading its stretch of a table
        // read in parts.
        "up",
        "up offset 30s",
        r#"{__name__=~"up|req_bucket"}"#,
        r#"rate({__name__=~"up|req_bucket"}[1m])"#,
        "(max_over_time(req_bucket[1m]))",
    ];
    let engine = Engine::new(EngineConfig {
        part_series: 0,
        ..EngineConfig::default()
    });
    let parted = Engine::new(EngineConfig {
        part_series: 50,
        ..EngineConfig::default()
    });
    let rt = rt();
    // A step shorter than the windows (each point in several windows) and
    // one longer (most points in none: windows found by galloping, resets
    // looked for in each window's own points).
    for (q, step) in queries.iter().flat_map(|q| [(*q, 15_000), (*q, 75_000)]) {
        let (start, end) = (60_000, 1_185_000);
        let range = rt
            .block_on(engine.range(&src, q, start, end, step))
            .unwrap();
        let in_parts = rt
            .block_on(parted.range(&src, q, start, end, step))
            .unwrap();
        assert_eq!(in_parts.value, range.value, "{q}: read in parts");
        let strata_query_lang::promql::Value::Matrix(series) = range.value else {
            panic!("{q}: not a matrix");
        };
        assert!(!series.is_empty(), "{q}");
        let mut t = start;
        while t <= end {
            let instant = rt.block_on(engine.instant(&src, q, t)).unwrap();
            let strata_query_lang::promql::Value::Vector(mut want) = instant.value else {
                panic!("{q}: not a vector");
            };
            want.sort_by(|a, b| a.labels.cmp(&b.labels));
            let got: Vec<(&Labels, f64)> = series
                .iter()
                .filter_map(|s| s.points.iter().find(|p| p.0 == t).map(|p| (&s.labels, p.1)))
                .collect();
            assert_eq!(got.len(), want.len(), "{q} at {t}");
            for ((gl, gv), w) in got.iter().zip(&want) {
                assert_eq!(*gl, &w.labels, "{q} at {t}");
                assert!(
                    gv.to_bits() == w.v.to_bits() || (gv - w.v).abs() < 1e-9,
                    "{q} at {t}: {gv} vs {}",
                    w.v
                );
            }
            t += step;
        }
    }
}

/// Two series that share their labels once `__name__` is dropped fail a
/// range query as an instant query fails, whether the answer is read off
/// whole or evaluated step by step.
#[test]
fn a_range_query_whose_series_collide_without_names_fails() {
    let mut src = MemorySource::new();
    for name in ["a", "b"] {
        let l = Labels::new(vec![
            ("__name__".into(), name.into()),
            ("x".into(), "1".into()),
        ]);
        for k in 0..40 {
            src.add(&l, k * 15_000, k as f64);
        }
    }
    let engine = Engine::default();
    let rt = rt();
    let q = r#"rate({__name__=~"a|b"}[1m])"#;
    let instant = rt.block_on(engine.instant(&src, q, 300_000)).unwrap_err();
    let range = rt
        .block_on(engine.range(&src, q, 60_000, 500_000, 15_000))
        .unwrap_err();
    assert_eq!(range.kind, instant.kind);
    assert!(range.message.contains("same labelset"), "{}", range.message);
    // Kept names: no collision, every series read off.
    let kept = rt
        .block_on(engine.range(&src, r#"{__name__=~"a|b"}"#, 60_000, 500_000, 15_000))
        .unwrap();
    let strata_query_lang::promql::Value::Matrix(series) = kept.value else {
        panic!("not a matrix");
    };
    assert_eq!(series.len(), 2);
}

/// A column aggregation folded while its selection is read in parts adds
/// each group's values in the selection's label order, as the step's
/// column does: with values whose sum depends on the order (1e16 and 1
/// and -1e16 …), the answers are the same bits, at every step, for every
/// aggregation, range and instant.
#[test]
fn a_folded_aggregation_adds_in_label_order() {
    let mut src = MemorySource::new();
    let magnitudes = [1e16, 3.0, -1e16, 1.0, 2.5e-3, -7.0, 1e300, -1e300, 0.1];
    for i in 0..90usize {
        let l = Labels::new(vec![
            ("__name__".into(), "v".into()),
            ("g".into(), format!("g{}", i % 3)),
            ("i".into(), format!("{i:03}")),
        ]);
        for k in 0..60usize {
            let v = magnitudes[(i * 7 + k) % magnitudes.len()] * (1.0 + (k % 5) as f64 / 3.0);
            // Counters for `rate`: an occasional drop is a reset.
            src.add(&l, k as i64 * 15_000 + i as i64, v);
        }
    }
    let whole = Engine::new(EngineConfig {
        part_series: 0,
        ..EngineConfig::default()
    });
    let rt = rt();
    for q in [
        "sum by (g) (v)",
        "sum(v)",
        "count by (g) (v)",
        "min by (g) (v)",
        "max without (i) (v)",
        "group by (g) (v)",
        "sum by (g) (rate(v[1m]))",
        "sum by (g) (sum_over_time(v[2m]))",
        "sum(v) / on () sum(rate(v[1m]))",
    ] {
        let want = rt
            .block_on(whole.range(&src, q, 60_000, 840_000, 15_000))
            .unwrap();
        let want_at = rt.block_on(whole.instant(&src, q, 500_000)).unwrap();
        // 8192 (the default): the whole selection is one part.
        for part_series in [4, 11, 50, 8192] {
            let parted = Engine::new(EngineConfig {
                part_series,
                ..EngineConfig::default()
            });
            let got = rt
                .block_on(parted.range(&src, q, 60_000, 840_000, 15_000))
                .unwrap();
            let bits = |v: &strata_query_lang::promql::Value| format!("{v:?}");
            assert_eq!(
                bits(&got.value),
                bits(&want.value),
                "{q} in parts of {part_series}"
            );
            let got_at = rt.block_on(parted.instant(&src, q, 500_000)).unwrap();
            assert_eq!(
                bits(&got_at.value),
                bits(&want_at.value),
                "{q} at one time in parts of {part_series}"
            );
        }
    }
}

/// A part heavy enough to be reduced on every core (over a million
/// points: long series, few of them) is cut into runs of consecutive
/// series whose rows merge back in label order: the same bits as the
/// selection read whole, folded or not, with staleness markers in it.
#[test]
fn a_heavy_part_reduced_on_every_core_answers_as_read_whole() {
    let mut src = MemorySource::new();
    let magnitudes = [1e16, 3.0, -1e16, 1.0, 2.5e-3, -7.0, 1e300, -1e300, 0.1];
    let points = 150_000usize;
    for i in 0..8usize {
        let l = Labels::new(vec![
            ("__name__".into(), "v".into()),
            ("g".into(), format!("g{}", i % 3)),
            ("i".into(), format!("{i:03}")),
        ]);
        for k in 0..points {
            let v = if k % 9_999 == 5 && i % 2 == 0 {
                f64::from_bits(strata_query_lang::promql::STALE_NAN_BITS)
            } else {
                magnitudes[(i * 7 + k) % magnitudes.len()] * (1.0 + (k % 5) as f64 / 3.0)
            };
            src.add(&l, k as i64 * 15_000 + i as i64, v);
        }
    }
    let whole = Engine::new(EngineConfig {
        part_series: 0,
        ..EngineConfig::default()
    });
    let parted = Engine::default();
    let rt = rt();
    let end = points as i64 * 15_000;
    for q in [
        "sum by (g) (rate(v[5m]))",
        "max_over_time(v[10m])",
        "count by (g) (v)",
    ] {
        let want = rt
            .block_on(whole.range(&src, q, 600_000, end, 3_600_000))
            .unwrap();
        let got = rt
            .block_on(parted.range(&src, q, 600_000, end, 3_600_000))
            .unwrap();
        let bits = |v: &strata_query_lang::promql::Value| format!("{v:?}");
        assert_eq!(bits(&got.value), bits(&want.value), "{q}");
        assert_eq!(got.samples_loaded, want.samples_loaded, "{q}");
        assert!(
            matches!(&want.value, strata_query_lang::promql::Value::Matrix(m) if !m.is_empty()),
            "{q}"
        );
    }
}

/// A native histogram whose sum is the stale NaN (what Prometheus sends
/// when a target goes away) ends its series as a float stale marker does:
/// no sample from it on, and range selectors leave it out.
#[test]
fn a_stale_native_histogram_ends_its_series() {
    use strata_query_lang::promql::{FloatHistogram, STALE_NAN_BITS, Value};
    let mut src = MemorySource::new();
    let l = Labels::new(vec![("__name__".into(), "h".into())]);
    for i in 0..3 {
        let h = FloatHistogram {
            count: 10.0 * (i + 1) as f64,
            sum: 1.0,
            positive: vec![(0, 10.0 * (i + 1) as f64)],
            ..FloatHistogram::default()
        };
        src.add_histogram(&l, i * 15_000, h);
    }
    let stale = FloatHistogram {
        sum: f64::from_bits(STALE_NAN_BITS),
        ..FloatHistogram::default()
    };
    src.add_histogram(&l, 45_000, stale);
    let engine = Engine::default();
    let at = |q: &str, t: i64| rt().block_on(engine.instant(&src, q, t)).unwrap().value;
    let Value::Vector(v) = at("h", 40_000) else {
        panic!("not a vector")
    };
    assert_eq!(v[0].h.as_ref().map(|h| h.count), Some(30.0));
    assert_eq!(
        at("h", 50_000),
        Value::Vector(Vec::new()),
        "ended by the marker"
    );
    // Three samples in the window, the marker not among them.
    let Value::Vector(v) = at("count_over_time(h[1m])", 50_000) else {
        panic!("not a vector")
    };
    assert_eq!(v[0].v, 3.0);
    let Value::Vector(v) = at("histogram_count(increase(h[1m]))", 50_000) else {
        panic!("not a vector")
    };
    assert!(v[0].v > 20.0, "{v:?}");
}
