//! Flush: head → Parquet files under the Delta log → head and WAL released.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::sync::Arc;

use strata_head::Head;
use strata_storage::{ObjectStoreConfig, ObjectStoreHandle, Storage, TenantView};
use strata_types::{SeriesSamples, TenantId, WriteBatch};
use strata_wal::{MemoryWal, WalSeq};

fn tenant(t: &str) -> TenantId {
    TenantId::try_new(t).unwrap()
}

/// Labels and samples of one series.
type Series<'a> = (&'a [(&'a str, &'a str)], &'a [(i64, f64)]);

fn batch(t: &str, series: &[Series<'_>]) -> Arc<WriteBatch> {
    Arc::new(WriteBatch::from_series(
        tenant(t),
        series
            .iter()
            .map(|(l, s)| SeriesSamples::try_from_pairs(l, s).unwrap())
            .collect(),
    ))
}

async fn open(dir: &std::path::Path) -> Storage {
    let store = ObjectStoreHandle::open(&ObjectStoreConfig::default(), dir).unwrap();
    Storage::open(store, Arc::new(Head::new())).await.unwrap()
}

/// (metric, series_id, timestamp µs, value) of every row in the view's files.
fn file_rows(dir: &std::path::Path, view: &TenantView) -> Vec<(String, i64, i64, f64)> {
    view.files
        .iter()
        .flat_map(|f| common::file_rows(dir, "acme", f))
        .collect()
}

const UP_A: &[(&str, &str)] = &[("__name__", "up"), ("job", "api"), ("instance", "a")];
const UP_B: &[(&str, &str)] = &[("__name__", "up"), ("job", "api"), ("instance", "b")];
const CPU: &[(&str, &str)] = &[("__name__", "cpu"), ("job", "api")];

#[tokio::test]
async fn flush_moves_the_head_into_sorted_files_and_commits_the_wal_position() {
    let dir = tempfile::tempdir().unwrap();
    let storage = open(dir.path()).await;
    let wal = MemoryWal::new();
    storage
        .write(
            &wal,
            batch(
                "acme",
                &[(UP_B, &[(2000, 2.0), (1000, 1.0)]), (CPU, &[(1500, 0.5)])],
            ),
        )
        .await
        .unwrap();
    storage
        .write(&wal, batch("acme", &[(UP_A, &[(1000, 10.0)])]))
        .await
        .unwrap();

    let report = storage.flush(&wal).await.unwrap();
    assert_eq!((report.tenants, report.files, report.rows), (1, 1, 4));

    let view = storage.view(&tenant("acme"));
    assert!(view.heads.is_empty(), "flushed data left the head");
    assert_eq!(view.files.len(), 1);
    let f = &view.files[0];
    assert_eq!(f.stats.rows, 4);
    assert_eq!((f.stats.min_ts_ms, f.stats.max_ts_ms), (1000, 2000));
    assert_eq!(f.path.day_value(), "1970-01-01");
    assert_eq!(f.sha256.as_ref().map(String::len), Some(64));

    let rows = file_rows(dir.path(), &view);
    let metrics: Vec<_> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(metrics, ["cpu", "up", "up", "up"], "sorted by metric first");
    // Within a metric: by series id (signed), then time.
    let ups: Vec<_> = rows[1..].iter().map(|r| (r.1, r.2)).collect();
    let mut sorted = ups.clone();
    sorted.sort();
    assert_eq!(ups, sorted);
    assert!(
        rows.iter().any(|r| r.2 == 2_000_000 && r.3 == 2.0),
        "µs timestamps"
    );

    // Reopening reads the committed WAL position back from the log.
    drop(storage);
    let reopened = open(dir.path()).await;
    assert_eq!(reopened.committed().get(&tenant("acme")), Some(&WalSeq(2)));
    assert_eq!(reopened.view(&tenant("acme")).files.len(), 1);
}

#[tokio::test]
async fn replay_skips_exactly_what_a_flush_committed() {
    let dir = tempfile::tempdir().unwrap();
    let wal = MemoryWal::new();
    {
        let storage = open(dir.path()).await;
        storage
            .write(&wal, batch("acme", &[(UP_A, &[(1000, 1.0)])]))
            .await
            .unwrap();
        storage
            .write(&wal, batch("other", &[(UP_A, &[(1000, 7.0)])]))
            .await
            .unwrap();
        storage.flush(&wal).await.unwrap();
        storage
            .write(&wal, batch("acme", &[(UP_A, &[(2000, 2.0)])]))
            .await
            .unwrap();
    }
    assert_eq!(wal.records().len(), 1, "records 1 and 2 were released");
    // A crash before the WAL was truncated: replay sees every record.
    let storage = open(dir.path()).await;
    let mut applied = Vec::new();
    for (seq, b) in [
        (WalSeq(1), batch("acme", &[(UP_A, &[(1000, 1.0)])])),
        (WalSeq(2), batch("other", &[(UP_A, &[(1000, 7.0)])])),
    ]
    .into_iter()
    .chain(wal.records())
    {
        if storage.replay(seq, &b).unwrap().is_some() {
            applied.push(seq.0);
        }
    }
    assert_eq!(applied, [3], "records 1 and 2 are in files, 3 is not");
    let view = storage.view(&tenant("acme"));
    assert_eq!(view.files.len(), 1);
    assert_eq!(view.heads.len(), 1);
    assert_eq!(storage.view(&tenant("other")).files[0].stats.rows, 1);
}

#[tokio::test]
async fn samples_across_midnight_go_to_one_file_per_day() {
    let dir = tempfile::tempdir().unwrap();
    let storage = open(dir.path()).await;
    let wal = MemoryWal::new();
    let day = 86_400_000;
    storage
        .write(
            &wal,
            batch(
                "acme",
                &[(UP_A, &[(day - 1, 1.0), (day, 2.0), (3 * day, 3.0)])],
            ),
        )
        .await
        .unwrap();
    storage.flush(&wal).await.unwrap();
    let mut days: Vec<_> = storage
        .view(&tenant("acme"))
        .files
        .iter()
        .map(|f| (f.path.day_value(), f.stats.rows))
        .collect();
    days.sort();
    assert_eq!(
        days,
        [
            ("1970-01-01".to_owned(), 1),
            ("1970-01-02".to_owned(), 1),
            ("1970-01-04".to_owned(), 1)
        ]
    );
}

#[tokio::test]
async fn writes_racing_flushes_are_neither_lost_nor_doubled() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(open(dir.path()).await);
    let wal = Arc::new(MemoryWal::new());
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (storage, wal) = (Arc::clone(&storage), Arc::clone(&wal));
            tokio::spawn(async move {
                for i in 0..200i64 {
                    let inst = format!("w{w}");
                    let labels = [("__name__", "x"), ("instance", inst.as_str())];
                    storage
                        .write(wal.as_ref(), batch("acme", &[(&labels, &[(i, i as f64)])]))
                        .await
                        .unwrap();
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    for _ in 0..20 {
        storage.flush(wal.as_ref()).await.unwrap();
        tokio::task::yield_now().await;
    }
    for w in writers {
        w.await.unwrap();
    }
    let view = storage.view(&tenant("acme"));
    let in_heads: usize = view.heads.iter().map(|h| h.sample_stats().samples).sum();
    let in_files: u64 = view.files.iter().map(|f| f.stats.rows).sum();
    assert_eq!(in_heads as u64 + in_files, 800);
    let rows = file_rows(dir.path(), &view);
    let mut keys: Vec<_> = rows.iter().map(|r| (r.1, r.2)).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), rows.len(), "no sample written twice");
    assert!(rows.iter().all(|r| r.3.is_finite()));

    // A crash now: what the WAL still holds plus the files must be
    // everything. (A flush that truncated the WAL up to the newest write
    // instead of up to its cut would lose the writes that raced it.)
    let reopened = open(dir.path()).await;
    for (seq, b) in wal.records() {
        reopened.replay(seq, &b).unwrap();
    }
    let view = reopened.view(&tenant("acme"));
    let in_heads: usize = view.heads.iter().map(|h| h.sample_stats().samples).sum();
    let in_files: u64 = view.files.iter().map(|f| f.stats.rows).sum();
    assert_eq!(in_heads as u64 + in_files, 800, "after a crash");
}
