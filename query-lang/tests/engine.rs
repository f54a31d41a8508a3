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
