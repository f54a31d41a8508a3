//! PromQL selections read in parts (series split by id across the heads
//! and files) and contained selections read once, through the engine's own
//! source.

use super::*;

/// A [`Source`] counting the selections and parts read through it.
struct Counting {
    inner: crate::promql::PromSource,
    parts: std::sync::atomic::AtomicUsize,
    selects: std::sync::atomic::AtomicUsize,
}

impl Counting {
    fn new(inner: crate::promql::PromSource) -> Self {
        Counting {
            inner,
            parts: Default::default(),
            selects: Default::default(),
        }
    }
}

/// Four rounds of eight samples 15 s apart of `series` counters `c`
/// (labels `i`, and `g` = `i` mod 5), each a batch.
fn counters(series: i64) -> Vec<WriteBatch> {
    (0..4)
        .map(|round: i64| {
            let series = (0..series)
                .map(|i| {
                    let (i_s, g_s) = (i.to_string(), (i % 5).to_string());
                    let t0 = round * 120_000;
                    let samples: Vec<(i64, f64)> = (0..8)
                        .map(|k| (t0 + k * 15_000, (round * 8 + k) as f64 * (i + 1) as f64))
                        .collect();
                    s(&[("__name__", "c"), ("i", &i_s), ("g", &g_s)], &samples)
                })
                .collect();
            WriteBatch::from_series(tenant("a"), series)
        })
        .collect()
}

#[async_trait::async_trait]
impl strata_query_lang::promql::Source for Counting {
    async fn select(
        &self,
        matchers: &[strata_query_lang::promql::Matcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<strata_query_lang::promql::Series>, strata_query_lang::promql::PromError> {
        self.selects
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner.select(matchers, start_ms, end_ms).await
    }

    async fn series_estimate(
        &self,
        matchers: &[strata_query_lang::promql::Matcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Option<u64>, strata_query_lang::promql::PromError> {
        self.inner.series_estimate(matchers, start_ms, end_ms).await
    }

    async fn select_part(
        &self,
        matchers: &[strata_query_lang::promql::Matcher],
        start_ms: i64,
        end_ms: i64,
        part: usize,
        parts: usize,
    ) -> Result<Vec<strata_query_lang::promql::Series>, strata_query_lang::promql::PromError> {
        self.parts
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner
            .select_part(matchers, start_ms, end_ms, part, parts)
            .await
    }

    /// The source's own deferred points (written when a series is
    /// reduced), counted as a part read.
    async fn select_deferred(
        &self,
        matchers: &[strata_query_lang::promql::Matcher],
        start_ms: i64,
        end_ms: i64,
        part: usize,
        parts: usize,
    ) -> Result<Vec<strata_query_lang::promql::DeferredSeries>, strata_query_lang::promql::PromError>
    {
        self.parts
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner
            .select_deferred(matchers, start_ms, end_ms, part, parts)
            .await
    }
}

/// A selection read in parts (series split by ranges of the storage order,
/// the same in the head and the files) answers exactly what it answers
/// read at once.
#[tokio::test]
async fn promql_reads_large_selections_in_parts_with_the_same_answer() {
    use strata_query_lang::promql::{Engine, EngineConfig};
    let queries = [
        "sum by (g) (rate(c[1m]))",
        "max_over_time(c[2m])",
        "count by (g) (c)",
        "topk(3, sum by (g) (increase(c[2m])))",
        "sum(c) / count(c)",
    ];
    for layout in LAYOUTS {
        let f = fixture(layout, counters(64)).await;
        let source = Counting::new(f.promql_source(&tenant("a")).unwrap());
        let parts_read = || source.parts.swap(0, std::sync::atomic::Ordering::Relaxed);
        let engine = |part_series| {
            Engine::new(EngineConfig {
                part_series,
                ..EngineConfig::default()
            })
        };
        for q in queries {
            let whole = engine(0)
                .range(&source, q, 0, 480_000, 30_000)
                .await
                .unwrap();
            let whole_at = engine(0).instant(&source, q, 400_000).await.unwrap();
            assert_eq!(parts_read(), 0, "{q}");
            assert!(
                matches!(&whole.value, strata_query_lang::promql::Value::Matrix(m) if !m.is_empty()),
                "{q} {layout:?}"
            );
            for part_series in [1, 7, 40] {
                let parted = engine(part_series)
                    .range(&source, q, 0, 480_000, 30_000)
                    .await
                    .unwrap();
                assert_eq!(parted.value, whole.value, "{q} {layout:?} {part_series}");
                assert_eq!(parted.samples_loaded, whole.samples_loaded, "{q}");
                // Every selection of these queries is one a step table
                // reduces: 64 series are more than one part.
                assert!(parts_read() > 1, "{q} {layout:?} {part_series}");
                let at = engine(part_series)
                    .instant(&source, q, 400_000)
                    .await
                    .unwrap();
                assert_eq!(at.value, whole_at.value, "{q} {layout:?} {part_series}");
                assert!(parts_read() > 1, "{q} {layout:?} {part_series} instant");
            }
        }
    }
}

/// A selection another of the query contains (the error ratio's
/// `c{g=~"1|2"}` within `c`) is not read again: its series are filtered
/// from the other's, read whole or in parts, with the answer of each side
/// evaluated on its own.
#[tokio::test]
async fn promql_reads_a_contained_selection_once() {
    use strata_query_lang::promql::{Engine, EngineConfig, Value};
    let (num, den) = (
        r#"sum by (g) (rate(c{g=~"1|2"}[1m]))"#,
        "sum by (g) (rate(c[1m]))",
    );
    let ratio = format!("{num} / {den}");
    for layout in LAYOUTS {
        let f = fixture(layout, counters(40)).await;
        let source = Counting::new(f.promql_source(&tenant("a")).unwrap());
        let reads = || {
            (
                source.selects.swap(0, std::sync::atomic::Ordering::Relaxed),
                source.parts.swap(0, std::sync::atomic::Ordering::Relaxed),
            )
        };
        for part_series in [0, 7] {
            let engine = Engine::new(EngineConfig {
                part_series,
                ..EngineConfig::default()
            });
            let range = |q: String| {
                let engine = &engine;
                let source = &source;
                async move { engine.range(source, &q, 0, 480_000, 30_000).await.unwrap() }
            };
            let matrix = |v: Value| match v {
                Value::Matrix(m) => m,
                other => panic!("{other:?}"),
            };
            let n = matrix(range(num.to_string()).await.value);
            let d = matrix(range(den.to_string()).await.value);
            reads();
            let both = matrix(range(ratio.clone()).await.value);
            let (selects, parts) = reads();
            if part_series == 0 {
                assert_eq!((selects, parts), (1, 0), "{layout:?}");
            } else {
                // 40 series in parts of 7: one selection's parts only.
                assert_eq!((selects, parts), (0, 6), "{layout:?}");
            }
            // Each side evaluated on its own, divided step by step.
            assert_eq!(both.len(), 2, "{layout:?}");
            for series in &both {
                let g = series.labels.get("g");
                let side = |m: &[strata_query_lang::promql::Series]| {
                    m.iter()
                        .find(|s| s.labels.get("g") == g)
                        .unwrap()
                        .points
                        .clone()
                };
                let (top, bottom) = (side(&n), side(&d));
                let expected: Vec<(i64, f64)> = top
                    .iter()
                    .filter_map(|&(t, v)| {
                        let (_, w) = bottom.iter().find(|p| p.0 == t)?;
                        Some((t, v / w))
                    })
                    .collect();
                assert_eq!(series.points, expected, "{layout:?} {part_series}");
                assert!(!expected.is_empty());
            }
        }
    }
}
