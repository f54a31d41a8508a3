//! One conformance suite, run against every object store Strata supports
//! here: memory, the local filesystem, and a real S3-compatible server
//! (Garage, started by `scripts/test`; set `STRATA_TEST_S3_*`, see
//! `scripts/garage`). Without those variables the S3 case is skipped, unless
//! `STRATA_E2E_REQUIRE_S3=1` makes that a failure (as in CI).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use sha2::{Digest, Sha256};
use strata_head::Head;
use strata_storage::{MetricsTable, ObjectStoreConfig, ObjectStoreHandle, Storage};
use strata_types::{SeriesSamples, TenantId, WriteBatch};
use strata_wal::{MemoryWal, WalSeq};

fn tenant(t: &str) -> TenantId {
    TenantId::try_new(t).unwrap()
}

fn batch(t: &str, metric: &str, ts: i64) -> Arc<WriteBatch> {
    let series = (0..10)
        .map(|i| {
            let id = i.to_string();
            SeriesSamples::try_from_pairs(
                &[("__name__", metric), ("id", &id)],
                &[(ts, i as f64), (ts + 1000, i as f64 + 0.5)],
            )
            .unwrap()
        })
        .collect();
    Arc::new(WriteBatch::from_series(tenant(t), series))
}

async fn conformance(name: &str, open: impl Fn() -> ObjectStoreHandle) {
    // Flush two tenants.
    let storage = Storage::open(open(), Arc::new(Head::new())).await.unwrap();
    let wal = MemoryWal::new();
    storage.write(&wal, batch("t1", "a", 1_000)).await.unwrap();
    storage.write(&wal, batch("t2", "b", 2_000)).await.unwrap();
    let report = storage.flush(&wal).await.unwrap();
    assert_eq!(
        (report.tenants, report.files, report.rows),
        (2, 2, 40),
        "{name}"
    );
    storage.write(&wal, batch("t1", "a", 5_000)).await.unwrap();
    storage.flush(&wal).await.unwrap();

    // Reopened: tables, positions and files come back from the store.
    let storage = Storage::open(open(), Arc::new(Head::new())).await.unwrap();
    let committed = storage.committed();
    assert_eq!(committed.get(&tenant("t1")), Some(&WalSeq(3)), "{name}");
    assert_eq!(committed.get(&tenant("t2")), Some(&WalSeq(2)), "{name}");
    let view = storage.view(&tenant("t1"));
    assert_eq!(view.files.len(), 2, "{name}");

    // Every file is where the log says, with the size and checksum it says.
    for f in view.files.iter() {
        let path = f.path.under(&view.table_root);
        let bytes = view
            .store
            .store()
            .get(&path)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(bytes.len() as u64, f.size, "{name}");
        let sha = hex::encode(Sha256::digest(&bytes));
        assert_eq!(Some(&sha), f.sha256.as_ref(), "{name}");
    }

    // Two writers committing flushes on the same base version: the log
    // entry is created only if absent, so the second cannot overwrite the
    // first; it sees the first's WAL position and fails as a conflict.
    let handle = open();
    let mut a = MetricsTable::open(&handle, &tenant("t2"))
        .await
        .unwrap()
        .unwrap();
    let mut b = MetricsTable::open(&handle, &tenant("t2"))
        .await
        .unwrap()
        .unwrap();
    let base = a.version();
    let fa = a.files().unwrap();
    let fb = b.files().unwrap();
    // Re-adding an existing file is enough to produce two distinct commits.
    a.commit(&fa, &[], Some(WalSeq(10)), delta_append())
        .await
        .unwrap();
    let err = b
        .commit(&fb, &[], Some(WalSeq(11)), delta_append())
        .await
        .unwrap_err();
    assert!(
        err.to_string().to_lowercase().contains("concurrent"),
        "{name}: {err}"
    );
    let fresh = MetricsTable::open(&handle, &tenant("t2"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        fresh.version(),
        base.map(|v| v + 1),
        "{name}: first commit kept"
    );
    assert_eq!(
        fresh.committed_wal_seq().await.unwrap(),
        Some(WalSeq(10)),
        "{name}"
    );

    // Everything lives under tenants/<t>/metrics.
    let all: Vec<_> = handle
        .store()
        .list(Some(handle.base()))
        .try_collect()
        .await
        .unwrap();
    let base = handle.base().to_string();
    for o in &all {
        let rel = o
            .location
            .as_ref()
            .strip_prefix(&base)
            .unwrap()
            .trim_start_matches('/');
        assert!(
            rel.starts_with("tenants/t1/metrics/") || rel.starts_with("tenants/t2/metrics/"),
            "{name}: stray object {rel}"
        );
    }
}

fn delta_append() -> deltalake_core::protocol::DeltaOperation {
    deltalake_core::protocol::DeltaOperation::Write {
        mode: deltalake_core::protocol::SaveMode::Append,
        partition_by: None,
        predicate: None,
    }
}

#[tokio::test]
async fn memory_store() {
    let store = ObjectStoreHandle::in_memory().unwrap();
    conformance("memory", || store.clone()).await;
}

#[tokio::test]
async fn local_store() {
    let dir = tempfile::tempdir().unwrap();
    conformance("local", || {
        ObjectStoreHandle::open(&ObjectStoreConfig::default(), dir.path()).unwrap()
    })
    .await;
}

/// The S3 settings from `STRATA_TEST_S3_*`, under a fresh prefix.
pub fn s3_config() -> Option<ObjectStoreConfig> {
    let var = |k: &str| std::env::var(k).ok();
    let Some(url) = var("STRATA_TEST_S3_URL") else {
        assert!(
            var("STRATA_E2E_REQUIRE_S3").as_deref() != Some("1"),
            "STRATA_E2E_REQUIRE_S3=1 but STRATA_TEST_S3_URL is not set"
        );
        eprintln!("skipping: STRATA_TEST_S3_URL not set (scripts/garage starts a server)");
        return None;
    };
    let mut config = ObjectStoreConfig {
        url: Some(format!("{url}/{}", uuid::Uuid::new_v4())),
        max_retries: 2,
        ..ObjectStoreConfig::default()
    };
    for (key, var_name) in [
        ("aws_endpoint", "STRATA_TEST_S3_ENDPOINT"),
        ("aws_region", "STRATA_TEST_S3_REGION"),
        ("aws_access_key_id", "STRATA_TEST_S3_KEY_ID"),
        ("aws_secret_access_key", "STRATA_TEST_S3_SECRET"),
    ] {
        config
            .options
            .insert(key.into(), var(var_name).unwrap_or_default());
    }
    config
        .options
        .insert("aws_allow_http".into(), "true".into());
    config
        .options
        .insert("aws_virtual_hosted_style_request".into(), "false".into());
    Some(config)
}

#[tokio::test]
async fn s3_compatible_store() {
    let Some(config) = s3_config() else { return };
    let dir = tempfile::tempdir().unwrap();
    conformance("s3", || {
        ObjectStoreHandle::open(&config, dir.path()).unwrap()
    })
    .await;
}
