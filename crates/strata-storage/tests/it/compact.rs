//! Compaction merges flush files into hour and day files, keeping the
//! newest write of each (series, timestamp), in one commit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use strata_head::Head;
use strata_storage::{
    FileLevel, ObjectStoreConfig, ObjectStoreHandle, SeriesOrder, Signal, Storage,
};
use strata_types::{SeriesSamples, TenantId, WriteBatch, cmp_series_order};
use strata_wal::MemoryWal;

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
const T0: i64 = 1_700_006_400_000; // 2023-11-15T00:00:00Z
/// Enough series that files span several read and write batches.
const SERIES: usize = 3000;

fn tenant() -> TenantId {
    TenantId::try_new("acme").unwrap()
}

fn batch(series: usize, samples: &[(i64, f64)]) -> Arc<WriteBatch> {
    Arc::new(WriteBatch::from_series(
        tenant(),
        (0..series)
            .map(|i| {
                let id = i.to_string();
                let metric = if i % 2 == 0 { "cpu" } else { "mem" };
                SeriesSamples::try_from_pairs(&[("__name__", metric), ("id", &id)], samples)
                    .unwrap()
            })
            .collect(),
    ))
}

/// (series_id, ts µs, value) over the view's files, asserting each file
/// is in the order it records: (metric, series id, time), or (metric,
/// label order, time) with each series' rows together.
fn rows(dir: &std::path::Path, storage: &Storage) -> Vec<(i64, i64, f64)> {
    let view = storage.view(&tenant());
    let mut all = Vec::new();
    for f in view.files.iter() {
        let file = common::file_rows(dir, "acme", f);
        match f.series_order {
            SeriesOrder::Id => {
                let keys: Vec<_> = file.iter().map(|r| (r.0.clone(), r.1, r.2)).collect();
                let mut sorted = keys.clone();
                sorted.sort();
                assert_eq!(
                    keys,
                    sorted,
                    "file {} is in (metric, series, time) order",
                    f.path.relative()
                );
            }
            SeriesOrder::Labels => {
                let labels = common::file_labels(dir, "acme", f);
                for (i, pair) in labels.windows(2).enumerate() {
                    let a: Vec<_> = pair[0]
                        .iter()
                        .map(|(n, v)| (n.as_str(), v.as_str()))
                        .collect();
                    let b: Vec<_> = pair[1]
                        .iter()
                        .map(|(n, v)| (n.as_str(), v.as_str()))
                        .collect();
                    let order = cmp_series_order(a.iter().copied(), b.iter().copied())
                        .then(file[i].2.cmp(&file[i + 1].2));
                    assert_eq!(
                        order,
                        std::cmp::Ordering::Less,
                        "file {} is in (label order, time) order at row {i}: {a:?} then {b:?}",
                        f.path.relative()
                    );
                }
            }
        }
        all.extend(file.into_iter().map(|r| (r.1, r.2, r.3)));
    }
    all.sort_by_key(|r| (r.0, r.1));
    all
}

#[tokio::test]
async fn hours_then_days_merge_and_the_newest_write_wins() {
    let dir = tempfile::tempdir().unwrap();
    let store = ObjectStoreHandle::open(&ObjectStoreConfig::default(), dir.path()).unwrap();
    let storage = Storage::open(store, Arc::new(Head::new())).await.unwrap();
    let wal = MemoryWal::new();
    // Three flushes in hour 0 of the day, one in hour 2; the third rewrites
    // the first sample of every series with a new value.
    for samples in [
        vec![(T0, 1.0), (T0 + 60_000, 2.0)],
        vec![(T0 + 120_000, 3.0)],
        vec![(T0, 10.0), (T0 + 180_000, 4.0)],
        vec![(T0 + 2 * HOUR, 5.0)],
    ] {
        storage.write(&wal, batch(SERIES, &samples)).await.unwrap();
        storage.flush(&wal).await.unwrap();
    }
    assert_eq!(storage.view(&tenant()).files.len(), 4);
    let before = rows(dir.path(), &storage);
    assert_eq!(
        before.len(),
        SERIES * 6,
        "the rewrite is a second copy until compaction"
    );

    // Hour 0 has ended (plus delay); hour 2 has not: only hour 0 merges.
    let delay = Duration::from_secs(600);
    let now = T0 + HOUR + 600_000;
    assert_eq!(storage.compaction_backlog(now, delay), 3);
    let report = storage.compact(now, delay).await.unwrap();
    assert_eq!((report.jobs, report.files_in), (1, 3));
    assert_eq!(
        (report.rows_in, report.rows_out),
        (SERIES as u64 * 5, SERIES as u64 * 4)
    );
    let view = storage.view(&tenant());
    let mut levels: Vec<_> = view.files.iter().map(|f| f.path.level).collect();
    levels.sort();
    assert_eq!(levels, [FileLevel::Flush, FileLevel::Hour]);
    let after = rows(dir.path(), &storage);
    assert_eq!(after.len(), SERIES * 5);
    for (_, ts, v) in &after {
        if *ts == T0 * 1000 {
            assert_eq!(*v, 10.0, "the later write wins");
        }
    }

    // The day ends: everything becomes one day file.
    let now = T0 + DAY + 600_000;
    let report = storage.compact(now, delay).await.unwrap();
    assert_eq!(
        (report.jobs, report.files_in, report.rows_out),
        (1, 2, SERIES as u64 * 5)
    );
    let view = storage.view(&tenant());
    assert_eq!(view.files.len(), 1);
    assert_eq!(view.files[0].path.level, FileLevel::Day);
    assert_eq!(
        view.files[0].stats.series, SERIES as u64,
        "series count logged"
    );
    assert_eq!(rows(dir.path(), &storage), after);
    assert_eq!(storage.compaction_backlog(now, delay), 0);
    assert_eq!(
        storage.compact(now, delay).await.unwrap().jobs,
        0,
        "nothing left to do"
    );

    // Reopened, the table says the same.
    drop(storage);
    let store = ObjectStoreHandle::open(&ObjectStoreConfig::default(), dir.path()).unwrap();
    let storage = Storage::open(store, Arc::new(Head::new())).await.unwrap();
    assert_eq!(storage.view(&tenant()).files.len(), 1);
    assert_eq!(rows(dir.path(), &storage), after);
}

#[tokio::test]
async fn a_late_flush_into_a_compacted_day_is_merged_and_wins() {
    let dir = tempfile::tempdir().unwrap();
    let store = ObjectStoreHandle::open(&ObjectStoreConfig::default(), dir.path()).unwrap();
    let storage = Storage::open(store, Arc::new(Head::new())).await.unwrap();
    let wal = MemoryWal::new();
    let delay = Duration::from_secs(600);
    for samples in [vec![(T0, 1.0)], vec![(T0 + 1000, 2.0)]] {
        storage.write(&wal, batch(3, &samples)).await.unwrap();
        storage.flush(&wal).await.unwrap();
    }
    storage.compact(T0 + 2 * DAY, delay).await.unwrap();
    // Late data for the closed day, rewriting one sample.
    storage.write(&wal, batch(3, &[(T0, 7.0)])).await.unwrap();
    storage.flush(&wal).await.unwrap();
    storage.compact(T0 + 2 * DAY, delay).await.unwrap();
    let got = rows(dir.path(), &storage);
    assert_eq!(got.len(), 6);
    assert!(got.iter().filter(|r| r.1 == T0 * 1000).all(|r| r.2 == 7.0));
    assert_eq!(storage.view(&tenant()).files.len(), 1);
}

#[tokio::test]
async fn a_closed_days_lone_flush_file_becomes_a_smaller_day_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = ObjectStoreHandle::open(&ObjectStoreConfig::default(), dir.path()).unwrap();
    let storage = Storage::open(store, Arc::new(Head::new())).await.unwrap();
    let wal = MemoryWal::new();
    // One flush holding four hours of counters rising by small steps.
    let samples: Vec<(i64, f64)> = (0..960)
        .map(|i| (T0 + i * 15_000, (i * 3 + i % 7) as f64))
        .collect();
    storage.write(&wal, batch(50, &samples)).await.unwrap();
    storage.flush(&wal).await.unwrap();
    let before = rows(dir.path(), &storage);
    let flush_size = storage.view(&tenant()).files[0].size;
    let delay = Duration::from_secs(600);
    // Its hours have ended, the day has not: nothing to merge.
    assert_eq!(storage.compact(T0 + 5 * HOUR, delay).await.unwrap().jobs, 0);
    // The day has: the lone file is rewritten at the day level.
    let report = storage.compact(T0 + DAY + 600_000, delay).await.unwrap();
    assert_eq!((report.jobs, report.files_in), (1, 1));
    let view = storage.view(&tenant());
    assert_eq!(view.files.len(), 1);
    assert_eq!(view.files[0].path.level, FileLevel::Day);
    assert!(
        view.files[0].size < flush_size,
        "day file {} bytes, flush file {flush_size}",
        view.files[0].size
    );
    assert_eq!(rows(dir.path(), &storage), before);
    // A day file alone is final.
    assert_eq!(storage.compact(T0 + 2 * DAY, delay).await.unwrap().jobs, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merges_run_in_parallel_and_each_commits() {
    let dir = tempfile::tempdir().unwrap();
    let store = ObjectStoreHandle::open(&ObjectStoreConfig::default(), dir.path()).unwrap();
    let storage = Storage::open(store, Arc::new(Head::new())).await.unwrap();
    storage.set_compaction(3, None);
    let wal = MemoryWal::new();
    // Three closed days of two flushes each, the second rewriting a sample.
    for day in 0..3 {
        let t = T0 + day * DAY;
        for samples in [vec![(t, 1.0), (t + 60_000, 2.0)], vec![(t, 3.0)]] {
            storage.write(&wal, batch(SERIES, &samples)).await.unwrap();
            storage.flush(&wal).await.unwrap();
        }
    }
    let before = rows(dir.path(), &storage);
    let seen = std::sync::Mutex::new(Vec::new());
    let report = storage
        .compact_with_progress(T0 + 4 * DAY, Duration::from_secs(600), &|done, of| {
            seen.lock().unwrap().push((done, of))
        })
        .await
        .unwrap();
    assert_eq!((report.jobs, report.files_in), (3, 6));
    assert_eq!(report.rows_out, SERIES as u64 * 2 * 3);
    assert_eq!(
        seen.into_inner().unwrap().last(),
        Some(&(3, 3)),
        "progress reaches every job"
    );
    let view = storage.view(&tenant());
    assert_eq!(view.files.len(), 3, "one file per day");
    assert!(view.files.iter().all(|f| f.path.level == FileLevel::Day));
    let after = rows(dir.path(), &storage);
    assert_eq!(after.len(), SERIES * 2 * 3);
    assert!(
        after.iter().all(|r| r.1 % (DAY * 1000) != 0 || r.2 == 3.0),
        "the rewrite wins"
    );
    let expected: Vec<_> = before
        .iter()
        .filter(|r| !(r.1 % (DAY * 1000) == 0 && r.2 == 1.0))
        .copied()
        .collect();
    assert_eq!(after, expected);
}

#[tokio::test]
async fn an_hour_merge_left_waiting_is_reported_late_until_it_commits() {
    let dir = tempfile::tempdir().unwrap();
    let store = ObjectStoreHandle::open(&ObjectStoreConfig::default(), dir.path()).unwrap();
    let storage = Storage::open(store, Arc::new(Head::new())).await.unwrap();
    let wal = MemoryWal::new();
    let delay = Duration::from_secs(600);
    // Two flushes into hour 0 of tomorrow (files written now, before
    // their hour ends: the merge is due when the hour ends, plus delay).
    let day = (chrono::Utc::now().timestamp_millis() / DAY + 1) * DAY;
    for samples in [vec![(day, 1.0)], vec![(day + 1000, 2.0)]] {
        storage.write(&wal, batch(3, &samples)).await.unwrap();
        storage.flush(&wal).await.unwrap();
    }
    let now = day + 5 * HOUR;
    assert_eq!(storage.compaction_lag(&tenant(), Signal::Metrics), None);
    storage.refresh_compaction_lag(now, delay);
    let late = Duration::from_millis((4 * HOUR) as u64) - delay;
    assert_eq!(
        storage.compaction_lag(&tenant(), Signal::Metrics),
        Some(late)
    );
    assert_eq!(storage.compaction_lag(&tenant(), Signal::Logs), None);
    assert_eq!(storage.compaction_backlog_of(now, delay).hour_lag, late);

    storage.compact(now, delay).await.unwrap();
    storage.refresh_compaction_lag(now, delay);
    assert_eq!(storage.compaction_lag(&tenant(), Signal::Metrics), None);
    assert_eq!(
        storage.compaction_backlog_of(now, delay).hour_lag,
        Duration::ZERO
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_background_compactor_merges_and_commits_on_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let store = ObjectStoreHandle::open(&ObjectStoreConfig::default(), dir.path()).unwrap();
    let storage = Arc::new(Storage::open(store, Arc::new(Head::new())).await.unwrap());
    storage.set_compaction(2, None);
    let wal = MemoryWal::new();
    // Two closed days of two flushes each.
    for d in 0..2 {
        for samples in [vec![(T0 + d * DAY, 1.0)], vec![(T0 + d * DAY + 1000, 2.0)]] {
            storage.write(&wal, batch(SERIES, &samples)).await.unwrap();
            storage.flush(&wal).await.unwrap();
        }
    }
    let before = rows(dir.path(), &storage);
    let config = strata_storage::StorageConfig {
        compaction_interval: Duration::from_millis(50),
        ..Default::default()
    };
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let reports = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = Arc::clone(&reports);
    let compactor = tokio::spawn(Arc::clone(&storage).run_compactor(
        config,
        move |r| {
            seen.lock()
                .unwrap()
                .push(r.as_ref().map(|r| r.jobs).map_err(|e| e.to_string()))
        },
        stop,
    ));
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while storage.view(&tenant()).files.len() > 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "compactor did not merge"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop_tx.send(true).unwrap();
    compactor.await.unwrap();
    let view = storage.view(&tenant());
    assert!(view.files.iter().all(|f| f.path.level == FileLevel::Day));
    assert_eq!(rows(dir.path(), &storage), before);
    let reports = reports.lock().unwrap();
    assert_eq!(*reports, [Ok(1), Ok(1)], "one report per committed merge");
}

#[tokio::test]
async fn series_without_labels_merge() {
    let dir = tempfile::tempdir().unwrap();
    let store = ObjectStoreHandle::open(&ObjectStoreConfig::default(), dir.path()).unwrap();
    let storage = Storage::open(store, Arc::new(Head::new())).await.unwrap();
    let wal = MemoryWal::new();
    // Only a metric name: every row's labels map is empty, in every file.
    for (ts, v) in [(T0, 1.0), (T0 + 1000, 2.0), (T0, 3.0)] {
        let batch = WriteBatch::from_series(
            tenant(),
            vec![SeriesSamples::try_from_pairs(&[("__name__", "up")], &[(ts, v)]).unwrap()],
        );
        storage.write(&wal, Arc::new(batch)).await.unwrap();
        storage.flush(&wal).await.unwrap();
    }
    let delay = Duration::from_secs(600);
    let report = storage.compact(T0 + HOUR + 600_000, delay).await.unwrap();
    assert_eq!((report.jobs, report.rows_out), (1, 2));
    let report = storage.compact(T0 + DAY + 600_000, delay).await.unwrap();
    assert_eq!((report.jobs, report.rows_out), (1, 2));
    let got = rows(dir.path(), &storage);
    assert_eq!(got.iter().map(|r| r.2).collect::<Vec<_>>(), [3.0, 2.0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_merge_is_retried_each_pass_and_counts_no_lag() {
    let dir = tempfile::tempdir().unwrap();
    let store = ObjectStoreHandle::open(&ObjectStoreConfig::default(), dir.path()).unwrap();
    let storage = Arc::new(Storage::open(store, Arc::new(Head::new())).await.unwrap());
    let wal = MemoryWal::new();
    let delay = Duration::from_secs(600);
    // A closed day with its day file...
    for samples in [vec![(T0, 1.0)], vec![(T0 + 1000, 2.0)]] {
        storage.write(&wal, batch(SERIES, &samples)).await.unwrap();
        storage.flush(&wal).await.unwrap();
    }
    storage.compact(T0 + 2 * DAY, delay).await.unwrap();
    // ...then a little late data, merged by the hour (the day file waits),
    // one of whose files cannot be read.
    for samples in [
        vec![(T0 + 3 * HOUR, 1.0)],
        vec![(T0 + 3 * HOUR + 1000, 2.0)],
    ] {
        storage.write(&wal, batch(3, &samples)).await.unwrap();
        storage.flush(&wal).await.unwrap();
    }
    let view = storage.view(&tenant());
    let late = view
        .files
        .iter()
        .find(|f| f.path.level == FileLevel::Flush)
        .unwrap();
    let lost = dir
        .path()
        .join("objects/tenants/acme/metrics")
        .join(late.path.relative());
    std::fs::remove_file(lost).unwrap();
    let config = strata_storage::StorageConfig {
        compaction_interval: Duration::from_millis(200),
        ..Default::default()
    };
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let errors = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = Arc::clone(&errors);
    let compactor = tokio::spawn(Arc::clone(&storage).run_compactor(
        config,
        move |r| {
            if r.is_err() {
                seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        },
        stop,
    ));
    let failures = || errors.load(std::sync::atomic::Ordering::Relaxed);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while failures() == 0 {
        assert!(std::time::Instant::now() < deadline, "the merge never ran");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let first = failures();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop_tx.send(true).unwrap();
    compactor.await.unwrap();
    let again = failures() - first;
    assert!(
        again <= 6,
        "{again} more failed merges in 1 s: once per pass (200 ms), not in a loop"
    );
    assert_eq!(storage.view(&tenant()).files.len(), 3, "nothing committed");

    // Half an hour on (the late data still waits for its day), that hour
    // merge would be late; it is broken, not behind, so it holds back no
    // writes.
    let later = chrono::Utc::now().timestamp_millis() + HOUR / 2;
    storage.refresh_compaction_lag(later, delay);
    assert_eq!(storage.compaction_backlog_of(later, delay).files, 2);
    assert_eq!(storage.compaction_lag(&tenant(), Signal::Metrics), None);
}

/// The most data pages a column of the day file under `dir` has in one
/// row group (every column's pages end at the same rows).
fn day_file_pages(dir: &std::path::Path) -> usize {
    fn find(dir: &std::path::Path) -> Option<std::path::PathBuf> {
        for e in std::fs::read_dir(dir).ok()?.flatten() {
            let p = e.path();
            if p.is_dir() {
                if let Some(f) = find(&p) {
                    return Some(f);
                }
            } else if p
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("day-"))
            {
                return Some(p);
            }
        }
        None
    }
    let file = std::fs::File::open(find(dir).unwrap()).unwrap();
    let options = parquet::arrow::arrow_reader::ArrowReaderOptions::new()
        .with_page_index_policy(parquet::file::metadata::PageIndexPolicy::Required);
    let b = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new_with_options(
        file, options,
    )
    .unwrap();
    b.metadata()
        .offset_index()
        .unwrap()
        .iter()
        .flatten()
        .map(|c| c.page_locations().len())
        .max()
        .unwrap()
}

/// Day files' zstd level and page rows: the same rows either way; a lower
/// level takes more bytes, smaller pages more pages (and bytes).
#[tokio::test]
async fn day_file_zstd_level_and_page_rows_keep_the_rows() {
    let mut sizes = Vec::new();
    let mut tables = Vec::new();
    let mut pages = Vec::new();
    for (level, page_rows) in [(None, None), (Some(1), None), (None, Some(1024))] {
        let dir = tempfile::tempdir().unwrap();
        let store = ObjectStoreHandle::open(&ObjectStoreConfig::default(), dir.path()).unwrap();
        let storage = Storage::open(store, Arc::new(Head::new())).await.unwrap();
        if let Some(level) = level {
            storage.set_day_file_zstd_level(level);
        }
        if let Some(rows) = page_rows {
            storage.set_day_file_page_rows(rows);
        }
        let wal = MemoryWal::new();
        for flush in 0..2 {
            let samples: Vec<(i64, f64)> = (0..120)
                .map(|i| {
                    let i = flush * 120 + i;
                    (T0 + i * 15_000, (i * 7 + i % 13) as f64 * 0.25)
                })
                .collect();
            storage.write(&wal, batch(500, &samples)).await.unwrap();
            storage.flush(&wal).await.unwrap();
        }
        storage
            .compact(T0 + DAY + 600_000, Duration::from_secs(600))
            .await
            .unwrap();
        let view = storage.view(&tenant());
        assert_eq!(view.files.len(), 1);
        sizes.push(view.files[0].size);
        tables.push(rows(dir.path(), &storage));
        pages.push(day_file_pages(dir.path()));
    }
    assert_eq!(tables[0], tables[1], "the same rows either way");
    assert_eq!(tables[0], tables[2], "the same rows either way");
    assert!(
        sizes[1] > sizes[0],
        "zstd 1 day file {} bytes, zstd 17 {}",
        sizes[1],
        sizes[0]
    );
    // 500 series x 240 samples: one page at the default, 118 of 1024 rows.
    assert_eq!(pages[0], 1);
    assert_eq!(pages[2], 120_000usize.div_ceil(1024));
    assert!(sizes[2] > sizes[0], "{sizes:?}");
}
