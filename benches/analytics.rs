//! Criterion benches for the analytics maths, one series or one resource
//! at a time (the PromQL reads that feed them are the PromQL benches').
//!
//! ```sh
//! cargo bench -p strata-benches --bench analytics
//! ```
//!
//! * `capacity/linear`, `capacity/seasonal`: one usage series of 7 days at
//!   the 5-minute step a 7-day lookback is read at (2,016 points), fitted
//!   and scanned over a 90-day horizon for the estimate and both band
//!   edges. `thrpt` reads as series forecast per second on one core.
//! * `neighbours/50x25h`: 50 workloads over a 1-day baseline and 1-hour
//!   window at 30 s (3,001 steps): shares, baselines, contention, blame.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use strata_analytics::capacity::{self, CapacitySpec, Model};
use strata_analytics::neighbours::{self, NeighbourSpec};
use strata_analytics::spec::Limit;

const NOW: i64 = 1_800_057_600_000;
const STEP: i64 = 300_000;

fn noise(i: i64) -> f64 {
    let x = (i as u64)
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    ((x >> 33) as f64 / (1u64 << 31) as f64) - 1.0
}

fn capacity_bench(c: &mut Criterion) {
    let day = 86_400_000.0;
    let points: Vec<(i64, f64)> = (0..2_016)
        .map(|i| {
            let t = NOW - (2_015 - i) * STEP;
            let d = (t - NOW) as f64 / day;
            let swing = 20.0 * (2.0 * std::f64::consts::PI * (t as f64 / day)).sin();
            (t, 50.0 + d + swing + noise(i))
        })
        .collect();
    let mut g = c.benchmark_group("capacity");
    g.throughput(Throughput::Elements(1));
    for (name, model) in [("linear", Model::Linear), ("seasonal", Model::Seasonal)] {
        let mut spec = CapacitySpec::ad_hoc("x", Limit::Number(100.0));
        spec.model = model;
        g.bench_function(name, |b| {
            b.iter(|| {
                capacity::forecast_series(
                    &spec,
                    BTreeMap::new(),
                    &points,
                    Some(100.0),
                    NOW,
                    Duration::from_millis(STEP as u64),
                    false,
                )
            })
        });
    }
    g.finish();
}

fn neighbours_bench(c: &mut Criterion) {
    let step = 30_000;
    let steps: Vec<i64> = (0..=3_000).map(|i| NOW - (3_000 - i) * step).collect();
    let grid: BTreeMap<String, BTreeMap<i64, f64>> = (0..50)
        .map(|w| {
            let row = steps
                .iter()
                .enumerate()
                .map(|(i, t)| (*t, 1.0 + 0.1 * noise(i as i64 * 50 + w)))
                .collect();
            (format!("ns-{w}"), row)
        })
        .collect();
    let mut spec = NeighbourSpec::ad_hoc("x", "ns");
    spec.baseline = Duration::from_secs(86_400);
    let window_start = NOW - 3_600_000;
    let mut g = c.benchmark_group("neighbours");
    g.throughput(Throughput::Elements(1));
    g.bench_function("50x25h", |b| {
        b.iter(|| neighbours::analyse(&spec, &grid, &steps, window_start, Some(60.0), false))
    });
    g.finish();
}

criterion_group!(benches, capacity_bench, neighbours_bench);
criterion_main!(benches);
