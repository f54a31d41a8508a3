//! Exemplars: the flush writes what the store took since the last one to
//! the tenant's exemplars table (Delta, Parquet), committed with the WAL
//! position like the other tables; replay re-stores only what is not in
//! the table yet; compaction merges a day's files; retention drops days.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use strata_head::{Head, Matcher};
use strata_storage::exemplar_files::select_from_files;
use strata_storage::{ObjectStoreConfig, ObjectStoreHandle, Signal, Storage};
use strata_types::{Exemplar, ExemplarBatch, Label, Labels, SeriesExemplars, TenantId};
use strata_wal::MemoryWal;

const DAY_MS: i64 = 86_400_000;

fn tenant() -> TenantId {
    TenantId::try_new("acme").unwrap()
}

async fn open(dir: &std::path::Path) -> Storage {
    let store = ObjectStoreHandle::open(&ObjectStoreConfig::default(), dir).unwrap();
    Storage::open(store, Arc::new(Head::new())).await.unwrap()
}

fn batch(job: &str, exemplars: &[(i64, &str)]) -> Arc<ExemplarBatch> {
    Arc::new(ExemplarBatch {
        tenant: tenant(),
        series: vec![SeriesExemplars {
            labels: Labels::try_from_unsorted(vec![
                Label::new("__name__", "req_total"),
                Label::new("job", job),
            ])
            .unwrap(),
            exemplars: exemplars
                .iter()
                .map(|&(timestamp_ms, trace)| Exemplar {
                    labels: vec![("trace_id".into(), trace.into())],
                    value: 0.5,
                    timestamp_ms,
                })
                .collect(),
        }],
    })
}

/// (job, time, trace id) of every exemplar in the table's files.
async fn in_files(storage: &Storage) -> Vec<(String, i64, String)> {
    let (files, root, store) = storage.exemplar_files(&tenant());
    let all = [vec![Matcher::equal("__name__", "req_total")]];
    select_from_files(store.store(), &root, &files, &all, i64::MIN, i64::MAX)
        .await
        .unwrap()
        .into_iter()
        .flat_map(|s| {
            let job = s.labels.get("job").unwrap().to_owned();
            s.exemplars
                .into_iter()
                .map(move |e| (job.clone(), e.timestamp_ms, e.labels[0].1.clone()))
        })
        .collect()
}

fn rows_in_files(storage: &Storage) -> u64 {
    let (files, _, _) = storage.exemplar_files(&tenant());
    files.iter().map(|f| f.stats.rows).sum()
}

#[tokio::test]
async fn flushes_write_exemplars_once_and_replay_adds_only_what_is_not_in_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let storage = open(dir.path()).await;
    let wal = MemoryWal::new();
    storage
        .write_exemplars(&wal, batch("a", &[(1000, "t1"), (2000, "t2")]))
        .await
        .unwrap();
    storage.flush(&wal).await.unwrap();
    assert_eq!(
        in_files(&storage).await,
        vec![
            ("a".into(), 1000, "t1".into()),
            ("a".into(), 2000, "t2".into())
        ]
    );
    assert!(wal.exemplar_records().is_empty(), "the WAL lets them go");
    // A second flush writes nothing again.
    storage.flush(&wal).await.unwrap();
    assert_eq!(rows_in_files(&storage), 2);

    // One more after the flush; then a restart: the table's files hold
    // the first two, the replayed record the third, pending once.
    storage
        .write_exemplars(&wal, batch("b", &[(3000, "t3")]))
        .await
        .unwrap();
    let after_flush = wal.exemplar_records();
    drop(storage);
    let restarted = open(dir.path()).await;
    for (seq, b) in &after_flush {
        restarted.replay_exemplars(*seq, b);
    }
    // A record the table already holds, replayed (a crash between the
    // commit and the WAL's truncation): stored in memory, not again in
    // the table.
    restarted.replay_exemplars(strata_wal::WalSeq(1), &batch("a", &[(1000, "t1")]));
    restarted.flush(&wal).await.unwrap();
    assert_eq!(
        in_files(&restarted).await,
        vec![
            ("a".into(), 1000, "t1".into()),
            ("a".into(), 2000, "t2".into()),
            ("b".into(), 3000, "t3".into())
        ]
    );
    assert_eq!(rows_in_files(&restarted), 3);
}

#[tokio::test]
async fn compaction_merges_a_days_exemplar_files_and_retention_drops_old_days() {
    let dir = tempfile::tempdir().unwrap();
    let storage = open(dir.path()).await;
    let wal = MemoryWal::new();
    // Three flushes into one closed day, one into a later day.
    for (i, trace) in ["t1", "t2", "t3"].into_iter().enumerate() {
        let ts = 1000 * (i as i64 + 1);
        storage
            .write_exemplars(&wal, batch("a", &[(ts, trace)]))
            .await
            .unwrap();
        storage.flush(&wal).await.unwrap();
    }
    storage
        .write_exemplars(&wal, batch("a", &[(3 * DAY_MS, "t4")]))
        .await
        .unwrap();
    storage.flush(&wal).await.unwrap();
    assert_eq!(storage.exemplar_files(&tenant()).0.len(), 4);
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
    let (files, _, _) = storage.exemplar_files(&tenant());
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(files.iter().all(|f| f.signal == Signal::Exemplars));
    assert_eq!(in_files(&storage).await.len(), 4);

    // Retention of 8 days at day 10: the first day goes, the fourth stays.
    let config = strata_storage::RetentionConfig {
        period: Some(std::time::Duration::from_secs(8 * 86_400)),
        ..Default::default()
    };
    storage.apply_retention(now, &config).await.unwrap();
    assert_eq!(
        in_files(&storage).await,
        vec![("a".into(), 3 * DAY_MS, "t4".into())]
    );
}

/// Past a bound of pending exemplars the flusher writes them without
/// cutting the head (`flush_exemplars`): the table holds them, the head
/// and the WAL keep what they held, and replaying that WAL after a restart
/// writes none of them a second time.
#[tokio::test]
async fn exemplars_alone_are_written_without_a_cut_and_once() {
    let dir = tempfile::tempdir().unwrap();
    let storage = open(dir.path()).await;
    let wal = MemoryWal::new();
    let samples = Arc::new(strata_types::WriteBatch::from_series(
        tenant(),
        vec![
            strata_types::SeriesSamples::try_from_pairs(
                &[("__name__", "req_total"), ("job", "a")],
                &[(1000, 1.0)],
            )
            .unwrap(),
        ],
    ));
    storage.write(&wal, samples).await.unwrap();
    storage
        .write_exemplars(&wal, batch("a", &[(1000, "t1"), (2000, "t2")]))
        .await
        .unwrap();
    assert_eq!(storage.exemplars().pending_count(), 2);
    let report = storage.flush_exemplars().await.unwrap();
    assert_eq!(report.exemplar_rows, 2);
    assert_eq!(storage.exemplars().pending_count(), 0);
    assert_eq!(rows_in_files(&storage), 2);
    // The head was not cut, the WAL not truncated.
    assert_eq!(storage.view(&tenant()).heads.len(), 1);
    assert!(storage.view(&tenant()).files.is_empty());
    let records = wal.exemplar_records();
    assert_eq!(records.len(), 1);

    drop(storage);
    let restarted = open(dir.path()).await;
    for (seq, b) in &records {
        restarted.replay_exemplars(*seq, b);
    }
    assert_eq!(restarted.exemplars().pending_count(), 0);
    restarted.flush(&wal).await.unwrap();
    assert_eq!(rows_in_files(&restarted), 2);
    assert_eq!(in_files(&restarted).await.len(), 2);
}
