//! Selections read as their files stream them (a chunk of whole series at
//! a time, merged across the heads and files) answer exactly what they
//! answer read at once or in one part.

use std::sync::atomic::{AtomicUsize, Ordering};

use futures::StreamExt;
use strata_query_lang::promql::{
    DeferredSeries, Engine, EngineConfig, Matcher, PromError, Series, SeriesChunks, Source, Value,
};

use super::*;

/// A [`Source`] counting the chunks its selections stream.
struct Streaming {
    inner: crate::promql::PromSource,
    chunks: Arc<AtomicUsize>,
}

#[async_trait::async_trait]
impl Source for Streaming {
    async fn select(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Series>, PromError> {
        self.inner.select(matchers, start_ms, end_ms).await
    }

    async fn series_estimate(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Option<u64>, PromError> {
        self.inner.series_estimate(matchers, start_ms, end_ms).await
    }

    async fn select_deferred(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
        part: usize,
        parts: usize,
    ) -> Result<Vec<DeferredSeries>, PromError> {
        self.inner
            .select_deferred(matchers, start_ms, end_ms, part, parts)
            .await
    }

    async fn select_streamed(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Option<SeriesChunks>, PromError> {
        let chunks = self
            .inner
            .select_streamed(matchers, start_ms, end_ms)
            .await?;
        let counted = Arc::clone(&self.chunks);
        Ok(chunks.map(|c| {
            c.inspect(move |_| {
                counted.fetch_add(1, Ordering::Relaxed);
            })
            .boxed()
        }))
    }
}

/// Three rounds of `counters` each flushed to a file of its own and the
/// fourth in the head: every series is in three files and the head, and a
/// chunk (64 points in tests) holds a few series.
#[tokio::test]
async fn promql_streams_files_with_the_answers_read_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = ObjectStoreHandle::open(&ObjectStoreConfig::default(), dir.path()).unwrap();
    let storage = Arc::new(Storage::open(store, Arc::new(Head::new())).await.unwrap());
    let wal = MemoryWal::new();
    for (round, batch) in counters(60).into_iter().enumerate() {
        storage.write(&wal, Arc::new(batch)).await.unwrap();
        if round < 3 {
            storage.flush(&wal).await.unwrap();
        }
    }
    let engine = QueryEngine::new(Arc::clone(&storage));
    let source = Streaming {
        inner: engine.promql_source(&tenant("a")).unwrap(),
        chunks: Arc::default(),
    };
    let chunks = || source.chunks.swap(0, Ordering::Relaxed);
    let (whole, one_part, streamed) = (
        Engine::new(EngineConfig {
            part_series: 0,
            ..EngineConfig::default()
        }),
        Engine::new(EngineConfig {
            streamed_reads: false,
            ..EngineConfig::default()
        }),
        Engine::default(),
    );
    let queries = [
        "sum by (g) (rate(c[1m]))",
        "rate(c[1m])",
        "max_over_time(c{g!=\"3\"}[2m])",
        "count by (g) (c)",
        "topk(3, sum by (g) (increase(c[2m])))",
        r#"sum(rate(c{g=~"1|2"}[1m])) / sum(rate(c[1m]))"#,
    ];
    for q in queries {
        // The whole range, and a later one that skips the first file and
        // covers part of the second (its rows cut to the range first).
        for (from, to) in [(0, 480_000), (200_000, 480_000)] {
            let want = whole.range(&source, q, from, to, 30_000).await.unwrap();
            assert!(
                matches!(&want.value, Value::Matrix(m) if !m.is_empty()),
                "{q} {from}"
            );
            assert_eq!(chunks(), 0, "{q}");
            let parted = one_part.range(&source, q, from, to, 30_000).await.unwrap();
            assert_eq!(parted.value, want.value, "{q} {from}");
            assert_eq!(chunks(), 0, "{q}");
            let got = streamed.range(&source, q, from, to, 30_000).await.unwrap();
            assert_eq!(got.value, want.value, "{q} {from}");
            assert_eq!(got.samples_loaded, want.samples_loaded, "{q} {from}");
            assert!(chunks() > 1, "{q} {from}");
        }
        for at in [250_000, 400_000, 470_000] {
            let want = whole.instant(&source, q, at).await.unwrap();
            let got = streamed.instant(&source, q, at).await.unwrap();
            assert_eq!(got.value, want.value, "{q} at {at}");
            assert_eq!(got.samples_loaded, want.samples_loaded, "{q} at {at}");
            assert!(chunks() > 0, "{q} at {at}");
        }
    }
}
