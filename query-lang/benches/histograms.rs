//! `histogram_quantile` over native histograms beside the same
//! distribution as classic `_bucket` series, on the engine alone (series
//! in memory: the storage reads are the server benches').
//!
//! ```sh
//! cargo bench -p strata-query-lang --bench histograms
//! ```
//!
//! 100 services × 1 hour at 15 s. Native: one histogram series each,
//! schema 3 (about 10% bucket width), ~40 populated buckets of request
//! latency growing as a counter. Classic: the same observations in 12
//! `le` buckets (+Inf included) per service, 1,200 series. Each query is a
//! range query over the hour at a 60 s step (61 steps), as a dashboard
//! panel asks it:
//!
//! * `p99_by_service`: `histogram_quantile(0.99, rate(x[5m]))` native,
//!   `histogram_quantile(0.99, rate(x_bucket[5m]))` classic;
//! * `p99_overall`: the same over `sum(...)` / `sum by (le) (...)`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use strata_query_lang::promql::{Engine, FloatHistogram, Labels, MemorySource};

const SERVICES: usize = 100;
const STEPS: i64 = 240;
const SCRAPE: i64 = 15_000;
const LE: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Observations of one scrape of service `s` at round `r`: 50 latencies,
/// log-spread around a service's own median.
fn observations(s: usize, r: i64) -> Vec<f64> {
    let median = 0.02 * (1.0 + s as f64 / 10.0);
    (0..50)
        .map(|i| {
            let x = ((s as i64 * 7919 + r * 104_729 + i * 31) % 1000) as f64 / 1000.0;
            median * (4.0 * x - 2.0).exp2()
        })
        .collect()
}

/// Schema 3 bucket of `v` (> 0): the first index whose bound is ≥ v.
fn bucket(v: f64) -> i32 {
    (v.log2() * 8.0).ceil() as i32
}

fn source() -> MemorySource {
    let mut src = MemorySource::new();
    for s in 0..SERVICES {
        let service = format!("svc{s:03}");
        let native = Labels::new(vec![
            ("__name__".into(), "latency_seconds".into()),
            ("service".into(), service.clone()),
        ]);
        let mut h = FloatHistogram {
            schema: 3,
            zero_threshold: 1e-128,
            ..FloatHistogram::default()
        };
        let mut classic = [0.0f64; 12];
        let mut sum = 0.0;
        for r in 0..STEPS {
            for v in observations(s, r) {
                let i = bucket(v);
                match h.positive.binary_search_by_key(&i, |b| b.0) {
                    Ok(k) => h.positive[k].1 += 1.0,
                    Err(k) => h.positive.insert(k, (i, 1.0)),
                }
                h.count += 1.0;
                h.sum += v;
                sum += v;
                for (k, le) in LE.iter().enumerate() {
                    if v <= *le {
                        classic[k] += 1.0;
                    }
                }
                classic[11] += 1.0;
            }
            let t = r * SCRAPE;
            src.add_histogram(&native, t, h.clone());
            for (k, c) in classic.iter().enumerate() {
                let le = LE.get(k).map_or("+Inf".to_string(), |l| l.to_string());
                let l = Labels::new(vec![
                    ("__name__".into(), "latency_seconds_bucket".into()),
                    ("le".into(), le),
                    ("service".into(), service.clone()),
                ]);
                src.add(&l, t, *c);
            }
            let l = Labels::new(vec![
                ("__name__".into(), "latency_seconds_sum".into()),
                ("service".into(), service.clone()),
            ]);
            src.add(&l, t, sum);
        }
    }
    src
}

fn quantiles(c: &mut Criterion) {
    let src = source();
    let engine = Engine::default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (start, end, step) = (0, (STEPS - 1) * SCRAPE, 60_000);
    let mut g = c.benchmark_group("histogram_quantile");
    g.sample_size(20);
    for (name, native, classic) in [
        (
            "p99_by_service",
            "histogram_quantile(0.99, rate(latency_seconds[5m]))",
            "histogram_quantile(0.99, rate(latency_seconds_bucket[5m]))",
        ),
        (
            "p99_overall",
            "histogram_quantile(0.99, sum(rate(latency_seconds[5m])))",
            "histogram_quantile(0.99, sum by (le) (rate(latency_seconds_bucket[5m])))",
        ),
    ] {
        for (kind, q) in [("native", native), ("classic", classic)] {
            // Both answer, and for every step.
            let out = rt
                .block_on(engine.range(&src, q, start, end, step))
                .unwrap();
            assert!(
                matches!(&out.value, strata_query_lang::promql::Value::Matrix(m) if !m.is_empty()),
                "{q}"
            );
            g.bench_function(format!("{name}/{kind}"), |b| {
                b.iter(|| {
                    rt.block_on(engine.range(&src, q, start, end, step))
                        .unwrap()
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, quantiles);
criterion_main!(benches);
