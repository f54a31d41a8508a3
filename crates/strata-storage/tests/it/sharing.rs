//! Several processes on one object store (the scale-out roles): ingesters
//! flushing into one tenant's table under their own WAL positions,
//! compactors dividing tenants and racing on one table, readers re-reading
//! what the others committed. Nothing acknowledged is lost or counted twice.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use strata_head::Head;
use strata_storage::{ObjectStoreConfig, ObjectStoreHandle, Sharing, Storage, ingester_wal_app_id};
use strata_types::{SeriesSamples, TenantId, WriteBatch};
use strata_wal::{MemoryWal, WalSeq};

fn tenant(t: &str) -> TenantId {
    TenantId::try_new(t).unwrap()
}

fn batch(t: &str, instance: &str, samples: &[(i64, f64)]) -> Arc<WriteBatch> {
    let labels = [("__name__", "up"), ("job", "wms"), ("instance", instance)];
    Arc::new(WriteBatch::from_series(
        tenant(t),
        vec![SeriesSamples::try_from_pairs(&labels, samples).unwrap()],
    ))
}

/// A process sharing the store under `dir`, owning the tenants `owns` takes.
async fn node(
    dir: &std::path::Path,
    id: &str,
    owns: impl Fn(&TenantId) -> bool + Send + Sync + 'static,
) -> Storage {
    let store = ObjectStoreHandle::open(&ObjectStoreConfig::default(), dir).unwrap();
    Storage::open_shared(
        store,
        Arc::new(Head::new()),
        Some(Sharing {
            wal_app_id: ingester_wal_app_id(id),
            owns: Arc::new(owns),
        }),
    )
    .await
    .unwrap()
}

/// (timestamp µs, value) of every row of `t`'s files as `storage` sees
/// them, sorted, with how often each occurs.
fn rows(dir: &std::path::Path, storage: &Storage, t: &str) -> BTreeMap<(i64, u64), usize> {
    let mut out = BTreeMap::new();
    for f in storage.view(&tenant(t)).files.iter() {
        for (_, _, ts, v) in common::file_rows(dir, t, f) {
            *out.entry((ts, v.to_bits())).or_insert(0) += 1;
        }
    }
    out
}

fn samples(from: i64, n: i64) -> Vec<(i64, f64)> {
    (from..from + n).map(|i| (i * 1000, i as f64)).collect()
}

#[tokio::test]
async fn ingesters_flush_into_one_table_under_their_own_wal_positions() {
    let dir = tempfile::tempdir().unwrap();
    let a = node(dir.path(), "ingester-0", |_| true).await;
    let b = node(dir.path(), "ingester-1", |_| true).await;
    let (wal_a, wal_b) = (MemoryWal::new(), MemoryWal::new());
    for round in 0..3 {
        a.write(&wal_a, batch("acme", "a", &samples(round * 10, 10)))
            .await
            .unwrap();
        b.write(&wal_b, batch("acme", "b", &samples(round * 10, 10)))
            .await
            .unwrap();
        // Both commit to the same table at once: appends under different
        // application ids do not conflict.
        let (ra, rb) = tokio::join!(a.flush(&wal_a), b.flush(&wal_b));
        assert_eq!(ra.unwrap().rows, 10);
        assert_eq!(rb.unwrap().rows, 10);
    }

    // A third process sees both ingesters' files once.
    let reader = node(dir.path(), "querier-0", |_| true).await;
    let seen = rows(dir.path(), &reader, "acme");
    assert_eq!(seen.values().sum::<usize>(), 60);
    assert!(
        seen.values().all(|&n| n == 2),
        "each sample once per series"
    );

    // Each ingester sees the other's flushes after re-reading the table.
    a.refresh_tables().await.unwrap();
    assert_eq!(rows(dir.path(), &a, "acme").values().sum::<usize>(), 60);

    // Replay after a restart skips exactly what the node itself committed:
    // ingester-0's third record (WAL position 3) is in the table under its
    // id; the same position is not under an id that never flushed.
    let restarted = node(dir.path(), "ingester-0", |_| true).await;
    let record = batch("acme", "a", &samples(20, 10));
    assert!(restarted.replay(WalSeq(3), &record).unwrap().is_none());
    assert!(restarted.replay(WalSeq(4), &record).unwrap().is_some());
    let fresh = node(dir.path(), "ingester-9", |_| true).await;
    assert!(fresh.replay(WalSeq(3), &record).unwrap().is_some());
}

#[tokio::test]
async fn racing_compactors_and_a_flushing_ingester_lose_and_duplicate_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ingester = node(dir.path(), "ingester-0", |_| true).await;
    let wal = MemoryWal::new();
    // Six flush files in one long-past hour: a due hour merge.
    for round in 0..6 {
        ingester
            .write(&wal, batch("acme", "a", &samples(round * 100, 100)))
            .await
            .unwrap();
        ingester.flush(&wal).await.unwrap();
    }
    let c1 = node(dir.path(), "compactor-0", |_| true).await;
    let c2 = node(dir.path(), "compactor-1", |_| true).await;
    let now = chrono::Utc::now().timestamp_millis();
    // Two compactors that both think they own the tenant (a replica count
    // being changed), and the ingester flushing more meanwhile.
    ingester
        .write(&wal, batch("acme", "a", &samples(600, 100)))
        .await
        .unwrap();
    let (r1, r2, flushed) = tokio::join!(
        c1.compact(now, Duration::ZERO),
        c2.compact(now, Duration::ZERO),
        ingester.flush(&wal)
    );
    assert_eq!(flushed.unwrap().rows, 100);
    let merged = [&r1, &r2]
        .iter()
        .filter(|r| r.as_ref().is_ok_and(|r| r.jobs > 0))
        .count();
    assert!(merged >= 1, "one compactor merged: {r1:?} {r2:?}");
    for r in [&r1, &r2] {
        if let Err(e) = r {
            // The loser's commit is refused as a conflict; nothing of it
            // is in the table.
            assert!(e.to_string().to_lowercase().contains("concurrent"), "{e}");
        }
    }

    let reader = node(dir.path(), "querier-0", |_| true).await;
    let seen = rows(dir.path(), &reader, "acme");
    assert_eq!(seen.len(), 700, "every sample");
    assert!(seen.values().all(|&n| n == 1), "none twice");

    // Both compactors re-read and run again: the table converges (the
    // late flush merged in, once) and stays exact.
    for c in [&c1, &c2] {
        c.refresh_tables().await.unwrap();
        c.compact(now, Duration::ZERO).await.unwrap();
    }
    reader.refresh_tables().await.unwrap();
    let seen = rows(dir.path(), &reader, "acme");
    assert_eq!(seen.len(), 700);
    assert!(seen.values().all(|&n| n == 1));
    assert_eq!(
        reader.view(&tenant("acme")).files.len(),
        1,
        "merged into one file"
    );
}

#[tokio::test]
async fn compactors_divide_the_tenants_they_own() {
    let dir = tempfile::tempdir().unwrap();
    let ingester = node(dir.path(), "ingester-0", |_| true).await;
    let wal = MemoryWal::new();
    for t in ["acme", "globex"] {
        for round in 0..3 {
            ingester
                .write(&wal, batch(t, "a", &samples(round * 10, 10)))
                .await
                .unwrap();
            ingester.flush(&wal).await.unwrap();
        }
    }
    let only_acme = node(dir.path(), "compactor-0", |t| t.as_str() == "acme").await;
    let now = chrono::Utc::now().timestamp_millis();
    let report = only_acme.compact(now, Duration::ZERO).await.unwrap();
    assert_eq!(report.jobs, 1);
    assert_eq!(report.files_in, 3);
    let reader = node(dir.path(), "querier-0", |_| true).await;
    assert_eq!(reader.view(&tenant("acme")).files.len(), 1);
    assert_eq!(
        reader.view(&tenant("globex")).files.len(),
        3,
        "not its tenant"
    );
}
