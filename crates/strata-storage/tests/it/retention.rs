//! Retention removes whole expired days by commit; vacuum deletes the files
//! after the grace period; legal hold keeps everything; old versions stay
//! readable (time travel) until vacuumed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use strata_head::Head;
use strata_storage::{
    MetricsTable, ObjectStoreConfig, ObjectStoreHandle, RetentionConfig, Storage, TenantRetention,
};
use strata_types::{SeriesSamples, TenantId, WriteBatch};
use strata_wal::MemoryWal;

const DAY: i64 = 86_400_000;
const T0: i64 = 1_700_006_400_000; // 2023-11-15T00:00:00Z

fn tenant(t: &str) -> TenantId {
    TenantId::try_new(t).unwrap()
}

/// One sample per day for days 0..5, for tenants `a` and `held`.
async fn setup(dir: &std::path::Path) -> Storage {
    let store = ObjectStoreHandle::open(&ObjectStoreConfig::default(), dir).unwrap();
    let storage = Storage::open(store, Arc::new(Head::new())).await.unwrap();
    let wal = MemoryWal::new();
    for t in ["a", "held"] {
        let samples: Vec<(i64, f64)> = (0..5).map(|d| (T0 + d * DAY + 1000, d as f64)).collect();
        let s = SeriesSamples::try_from_pairs(&[("__name__", "m")], &samples).unwrap();
        storage
            .write(&wal, Arc::new(WriteBatch::from_series(tenant(t), vec![s])))
            .await
            .unwrap();
    }
    storage.flush(&wal).await.unwrap();
    storage
}

fn data_files(dir: &std::path::Path, t: &str) -> usize {
    let root = dir.join(format!("objects/tenants/{t}/metrics"));
    std::fs::read_dir(&root)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("day="))
        .map(|e| std::fs::read_dir(e.path()).unwrap().count())
        .sum()
}

#[tokio::test]
async fn expired_days_leave_by_commit_and_vacuum_deletes_after_grace() {
    let dir = tempfile::tempdir().unwrap();
    let storage = setup(dir.path()).await;
    assert_eq!(storage.view(&tenant("a")).files.len(), 5);
    let version_before = MetricsTable::open(storage.store(), &tenant("a"))
        .await
        .unwrap()
        .unwrap()
        .version()
        .unwrap();

    let config = RetentionConfig {
        period: Some(Duration::from_secs(2 * 86_400)),
        vacuum_grace: Duration::from_secs(3600),
        tenants: BTreeMap::from([(
            "held".to_owned(),
            TenantRetention {
                period: None,
                legal_hold: true,
            },
        )]),
        ..RetentionConfig::default()
    };
    // "Now" is day 4 + 12h: keep from day 2 (now - 2 days), drop days 0, 1.
    let now = T0 + 4 * DAY + DAY / 2;
    let report = storage.apply_retention(now, &config).await.unwrap();
    assert_eq!((report.files_removed, report.rows_removed), (2, 2));
    assert_eq!(report.tenants_held, 1);
    let mut days: Vec<_> = storage
        .view(&tenant("a"))
        .files
        .iter()
        .map(|f| f.path.day_value())
        .collect();
    days.sort();
    assert_eq!(days, ["2023-11-17", "2023-11-18", "2023-11-19"]);
    assert_eq!(storage.view(&tenant("held")).files.len(), 5, "legal hold");

    // Within the grace period the files are still there, and the version
    // before retention still reads them (time travel).
    assert_eq!(data_files(dir.path(), "a"), 5);
    let mut old = MetricsTable::open(storage.store(), &tenant("a"))
        .await
        .unwrap()
        .unwrap();
    old.load_version(version_before).await.unwrap();
    assert_eq!(old.files().unwrap().len(), 5);

    // After the grace period vacuum deletes them; held data stays.
    let config = RetentionConfig {
        vacuum_grace: Duration::ZERO,
        ..config
    };
    let report = storage.apply_retention(now, &config).await.unwrap();
    assert_eq!(report.files_deleted, 2);
    assert_eq!(data_files(dir.path(), "a"), 3);
    assert_eq!(data_files(dir.path(), "held"), 5);
}

#[test]
fn per_tenant_periods_override_the_default() {
    let config: RetentionConfig = toml::from_str(
        r#"
period = "30d"
vacuum_grace = "1d"
[tenants.audit]
period = "forever"
legal_hold = true
[tenants.short]
period = "7d"
"#,
    )
    .unwrap();
    let day = Duration::from_secs(86_400);
    assert_eq!(config.period_for("any"), Some(30 * day));
    assert_eq!(config.period_for("short"), Some(7 * day));
    assert_eq!(
        config.period_for("audit"),
        None,
        "forever overrides the default"
    );
    assert!(config.legal_hold("audit"));
    assert!(!config.legal_hold("short"));
    assert!(toml::from_str::<RetentionConfig>("perod = '1d'").is_err());
}
