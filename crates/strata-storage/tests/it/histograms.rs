//! Native histograms: the flush writes what the histogram store took
//! since the last one to the tenant's histograms table (Delta, Parquet),
//! committed with the WAL position like the other tables; replay re-holds
//! only what is not in the table yet; compaction merges a day's files
//! keeping the sample written last; retention drops days.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use strata_head::Head;
use strata_storage::histogram_files::read_file;
use strata_storage::{ObjectStoreConfig, ObjectStoreHandle, Signal, Storage};
use strata_types::{
    BucketSpan, Histogram, HistogramBatch, HistogramSample, Label, Labels, ResetHint,
    SeriesHistograms, TenantId,
};
use strata_wal::MemoryWal;

const DAY_MS: i64 = 86_400_000;

fn tenant() -> TenantId {
    TenantId::try_new("acme").unwrap()
}

async fn open(dir: &std::path::Path) -> Storage {
    let store = ObjectStoreHandle::open(&ObjectStoreConfig::default(), dir).unwrap();
    Storage::open(store, Arc::new(Head::new())).await.unwrap()
}

/// A histogram whose sum tells samples apart.
fn histogram(sum: f64) -> Histogram {
    Histogram {
        reset_hint: ResetHint::Unknown,
        schema: 3,
        zero_threshold: 1e-128,
        zero_count: 1.0,
        count: 6.0,
        sum,
        positive_spans: vec![
            BucketSpan {
                offset: -2,
                length: 2,
            },
            BucketSpan {
                offset: 5,
                length: 1,
            },
        ],
        positive_counts: vec![1.0, 2.0, 0.0],
        negative_spans: vec![BucketSpan {
            offset: 0,
            length: 1,
        }],
        negative_counts: vec![2.0],
        custom_values: vec![],
        integer: true,
    }
}

fn batch(job: &str, samples: &[(i64, f64)]) -> Arc<HistogramBatch> {
    Arc::new(HistogramBatch {
        tenant: tenant(),
        series: vec![SeriesHistograms {
            labels: Labels::try_from_unsorted(vec![
                Label::new("__name__", "rpc_seconds"),
                Label::new("job", job),
            ])
            .unwrap(),
            samples: samples
                .iter()
                .map(|&(timestamp_ms, sum)| HistogramSample {
                    timestamp_ms,
                    histogram: histogram(sum),
                })
                .collect(),
        }],
    })
}

/// (job, time, sum) of every sample in the table's files; every histogram
/// read back whole.
async fn in_files(storage: &Storage) -> Vec<(String, i64, f64)> {
    let (files, root, store) = storage.histogram_files(&tenant());
    let mut out = Vec::new();
    for f in files.iter() {
        assert_eq!(f.signal, Signal::Histograms);
        for (labels, s) in read_file(store.store(), &root, f).await.unwrap() {
            assert_eq!(s.histogram, histogram(s.histogram.sum));
            out.push((
                labels.get("job").unwrap().to_owned(),
                s.timestamp_ms,
                s.histogram.sum,
            ));
        }
    }
    out.sort_by(|a, b| a.partial_cmp(b).unwrap());
    out
}

#[tokio::test]
async fn flushes_write_histograms_once_and_replay_adds_only_what_is_not_in_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let storage = open(dir.path()).await;
    let wal = MemoryWal::new();
    let n = storage
        .write_histograms(&wal, batch("a", &[(2000, 2.0), (1000, 1.0)]))
        .await
        .unwrap();
    assert_eq!(n, 2);
    assert_eq!(storage.histograms_pending(), 2);
    let report = storage.flush(&wal).await.unwrap();
    assert_eq!(report.histogram_rows, 2);
    assert_eq!(
        in_files(&storage).await,
        vec![("a".into(), 1000, 1.0), ("a".into(), 2000, 2.0)]
    );
    assert!(wal.histogram_records().is_empty(), "the WAL lets them go");
    storage.flush(&wal).await.unwrap();
    assert_eq!(in_files(&storage).await.len(), 2, "nothing written twice");

    // One more after the flush, then a restart: the table holds the first
    // two, the replayed record the third.
    storage
        .write_histograms(&wal, batch("b", &[(3000, 3.0)]))
        .await
        .unwrap();
    let after_flush = wal.histogram_records();
    assert_eq!(after_flush.len(), 1);
    drop(storage);
    let restarted = open(dir.path()).await;
    for (seq, b) in &after_flush {
        assert_eq!(restarted.replay_histograms(*seq, b), 1);
    }
    // A record the table already holds (a crash between the commit and the
    // WAL's truncation) is not held again.
    assert_eq!(
        restarted.replay_histograms(strata_wal::WalSeq(1), &batch("a", &[(1000, 1.0)])),
        0
    );
    restarted.flush(&wal).await.unwrap();
    assert_eq!(
        in_files(&restarted).await,
        vec![
            ("a".into(), 1000, 1.0),
            ("a".into(), 2000, 2.0),
            ("b".into(), 3000, 3.0)
        ]
    );
}

#[tokio::test]
async fn compaction_keeps_the_sample_written_last_and_retention_drops_old_days() {
    let dir = tempfile::tempdir().unwrap();
    let storage = open(dir.path()).await;
    let wal = MemoryWal::new();
    // Three flushes into one closed day (the third rewrites time 1000),
    // one into a later day.
    for (ts, sum) in [(1000, 1.0), (2000, 2.0), (1000, 10.0)] {
        storage
            .write_histograms(&wal, batch("a", &[(ts, sum)]))
            .await
            .unwrap();
        storage.flush(&wal).await.unwrap();
    }
    storage
        .write_histograms(&wal, batch("a", &[(3 * DAY_MS, 4.0)]))
        .await
        .unwrap();
    storage.flush(&wal).await.unwrap();
    assert_eq!(storage.histogram_files(&tenant()).0.len(), 4);
    let now = 10 * DAY_MS;
    let mut merged = 0;
    for _ in 0..4 {
        merged += storage
            .compact(now, std::time::Duration::ZERO)
            .await
            .unwrap()
            .jobs;
    }
    assert!(merged > 0);
    assert_eq!(storage.histogram_files(&tenant()).0.len(), 2);
    assert_eq!(
        in_files(&storage).await,
        vec![
            ("a".into(), 1000, 10.0),
            ("a".into(), 2000, 2.0),
            ("a".into(), 3 * DAY_MS, 4.0)
        ]
    );

    let config = strata_storage::RetentionConfig {
        period: Some(std::time::Duration::from_secs(8 * 86_400)),
        ..Default::default()
    };
    storage.apply_retention(now, &config).await.unwrap();
    assert_eq!(
        in_files(&storage).await,
        vec![("a".into(), 3 * DAY_MS, 4.0)]
    );
}

/// What the histogram store holds is bounded by the flush's sample bound:
/// a histogram weighs its buckets plus one.
#[tokio::test]
async fn held_histograms_weigh_their_buckets_toward_the_flush_bound() {
    let dir = tempfile::tempdir().unwrap();
    let storage = open(dir.path()).await;
    let wal = MemoryWal::new();
    let config = strata_storage::StorageConfig {
        flush_interval: std::time::Duration::from_secs(3600),
        flush_max_samples: 100,
        ..Default::default()
    };
    // Four buckets each: 5 a histogram; 19 weigh 95, under the bound.
    let times: Vec<(i64, f64)> = (0..19).map(|i| (1000 * i, 1.0)).collect();
    storage
        .write_histograms(&wal, batch("a", &times))
        .await
        .unwrap();
    assert!(!storage.flush_due(&config));
    storage
        .write_histograms(&wal, batch("a", &[(20_000, 1.0)]))
        .await
        .unwrap();
    assert!(storage.flush_due(&config), "20 histograms weigh 100");
    storage.flush(&wal).await.unwrap();
    assert!(!storage.flush_due(&config));
}
