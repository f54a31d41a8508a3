use arrow::util::pretty::pretty_format_batches;
use strata_head::Head;
use strata_storage::{ObjectStoreConfig, ObjectStoreHandle, Storage};
use strata_types::{SeriesSamples, WriteBatch};
use strata_wal::MemoryWal;

use super::*;

mod parts;

fn tenant(t: &str) -> TenantId {
    TenantId::try_new(t).unwrap()
}

/// Where the fixture's data sits when queried.
#[derive(Debug, Clone, Copy)]
enum Layout {
    /// All in the head.
    Head,
    /// All flushed to files.
    Files,
    /// The first half flushed, the rest in the head.
    Split,
}

const LAYOUTS: [Layout; 3] = [Layout::Head, Layout::Files, Layout::Split];

struct Fixture {
    engine: QueryEngine,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for Fixture {
    type Target = QueryEngine;
    fn deref(&self) -> &QueryEngine {
        &self.engine
    }
}

/// Writes `batches` through a storage, flushing as `layout` says.
async fn fixture(layout: Layout, batches: Vec<WriteBatch>) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = ObjectStoreHandle::open(&ObjectStoreConfig::default(), dir.path()).unwrap();
    let storage = Arc::new(Storage::open(store, Arc::new(Head::new())).await.unwrap());
    let wal = MemoryWal::new();
    let n = batches.len();
    for (i, b) in batches.into_iter().enumerate() {
        storage.write(&wal, Arc::new(b)).await.unwrap();
        if matches!(layout, Layout::Split) && i + 1 == n / 2 {
            storage.flush(&wal).await.unwrap();
        }
    }
    if matches!(layout, Layout::Files) {
        storage.flush(&wal).await.unwrap();
    }
    Fixture {
        engine: QueryEngine::new(storage),
        _dir: dir,
    }
}

fn s(pairs: &[(&str, &str)], samples: &[(i64, f64)]) -> SeriesSamples {
    SeriesSamples::try_from_pairs(pairs, samples).unwrap()
}

async fn engine(layout: Layout) -> Fixture {
    let a = |series| WriteBatch::from_series(tenant("a"), vec![series]);
    fixture(
        layout,
        vec![
            a(s(
                &[
                    ("__name__", "http_requests_total"),
                    ("job", "api"),
                    ("code", "200"),
                ],
                &[(1000, 1.0), (2000, 3.0)],
            )),
            a(s(
                &[
                    ("__name__", "http_requests_total"),
                    ("job", "api"),
                    ("code", "500"),
                ],
                &[(1000, 1.0)],
            )),
            WriteBatch::from_series(
                tenant("b"),
                vec![s(&[("__name__", "secret"), ("job", "b")], &[(1000, 42.0)])],
            ),
            a(s(
                &[
                    ("__name__", "http_requests_total"),
                    ("job", "db"),
                    ("code", "200"),
                ],
                &[(1000, 7.0)],
            )),
            a(s(
                &[("__name__", "up"), ("job", "api")],
                &[(1000, 1.0), (3000, 0.0)],
            )),
        ],
    )
    .await
}

async fn table(e: &QueryEngine, t: &str, sql: &str) -> String {
    let out = e.sql(&tenant(t), sql).await.unwrap();
    pretty_format_batches(&out.batches).unwrap().to_string()
}

#[tokio::test]
async fn filters_by_label_metric_and_time() {
    for layout in LAYOUTS {
        let e = engine(layout).await;
        let got = table(
            &e,
            "a",
            "SELECT labels['code'] AS code, sum(value) AS v FROM samples \
             WHERE metric = 'http_requests_total' AND labels['job'] = 'api' \
             AND timestamp >= TIMESTAMP '1970-01-01T00:00:01Z' AND timestamp < TIMESTAMP '1970-01-01T00:00:02Z' \
             GROUP BY 1 ORDER BY 1",
        )
        .await;
        assert_eq!(
            got,
            "+------+-----+\n| code | v   |\n+------+-----+\n| 200  | 1.0 |\n| 500  | 1.0 |\n+------+-----+"
        );
    }
}

/// A metric table's label filter narrows its scan to the series it
/// allows, and each file then reads only their rows (a row selection from
/// the file's series index): the rows are those of those series, from the
/// head, the files and both.
#[tokio::test]
async fn metric_table_label_filters_read_their_series_rows() {
    for layout in LAYOUTS {
        let e = engine(layout).await;
        let got = table(
            &e,
            "a",
            "SELECT job, code, value FROM http_requests_total WHERE code = '200' ORDER BY value",
        )
        .await;
        assert_eq!(
            got,
            "+-----+------+-------+\n| job | code | value |\n+-----+------+-------+\n\
             | api | 200  | 1.0   |\n| api | 200  | 3.0   |\n| db  | 200  | 7.0   |\n\
             +-----+------+-------+",
            "{layout:?}"
        );
        let got = table(
            &e,
            "a",
            "SELECT code, value FROM http_requests_total WHERE job = 'db'",
        )
        .await;
        assert_eq!(
            got,
            "+------+-------+\n| code | value |\n+------+-------+\n| 200  | 7.0   |\n+------+-------+",
            "{layout:?}"
        );
    }
}

#[tokio::test]
async fn count_star_and_not_equal() {
    for layout in LAYOUTS {
        let e = engine(layout).await;
        assert!(
            table(&e, "a", "SELECT count(*) AS n FROM samples")
                .await
                .contains("| 6 |")
        );
        assert!(
            table(
                &e,
                "a",
                "SELECT count(*) AS n FROM samples WHERE labels['job'] != 'api'"
            )
            .await
            .contains("| 1 |")
        );
        // A label the series lacks reads as NULL, as SQL users expect.
        assert!(
            table(
                &e,
                "a",
                "SELECT count(*) AS n FROM samples WHERE labels['code'] IS NULL"
            )
            .await
            .contains("| 2 |")
        );
    }
}

#[tokio::test]
async fn tenants_see_only_their_own_rows() {
    for layout in LAYOUTS {
        let e = engine(layout).await;
        let b = table(&e, "b", "SELECT metric, value FROM samples").await;
        assert!(
            b.contains("secret") && !b.contains("http_requests_total"),
            "{b}"
        );
        let a = table(&e, "a", "SELECT DISTINCT metric FROM samples ORDER BY 1").await;
        assert!(!a.contains("secret"), "{a}");
        // A tenant without data gets an empty table, not an error.
        assert!(
            table(&e, "nobody", "SELECT count(*) AS n FROM samples")
                .await
                .contains("| 0 |")
        );
    }
}

#[tokio::test]
async fn refuses_writes_and_reports_bad_sql() {
    let e = engine(Layout::Files).await;
    for sql in [
        "CREATE TABLE x AS SELECT 1",
        "COPY (SELECT 1) TO '/tmp/strata-should-not-exist.csv'",
        "INSERT INTO samples VALUES ('x')",
        "SET datafusion.execution.batch_size = 1",
        "SELEC 1",
        "SELECT nope FROM samples",
        "",
    ] {
        let err = e.sql(&tenant("a"), sql).await.unwrap_err();
        assert_eq!(
            err.kind(),
            strata_types::ErrorKind::BadInput,
            "{sql}: {err}"
        );
    }
    assert!(!std::path::Path::new("/tmp/strata-should-not-exist.csv").exists());
}

#[tokio::test]
async fn pushdown_is_inexact_so_results_stay_right() {
    for layout in LAYOUTS {
        let e = engine(layout).await;
        // OR is not pushed down; the answer must still be complete.
        let got = table(
            &e,
            "a",
            "SELECT count(*) AS n FROM samples WHERE metric = 'up' OR labels['job'] = 'db'",
        )
        .await;
        assert!(got.contains("| 3 |"), "{got}");
    }
}

#[tokio::test]
async fn scans_stream_many_batches_and_honour_limits() {
    // 300 series × 50 samples: more rows than one batch and more series
    // than one head read, so the scan must carry on across both.
    let series: Vec<SeriesSamples> = (0..300)
        .map(|i| {
            let id = i.to_string();
            let samples: Vec<(i64, f64)> = (0..50i32)
                .map(|t| (i64::from(t) * 1000, f64::from(t)))
                .collect();
            SeriesSamples::try_from_pairs(&[("__name__", "m"), ("id", &id)], &samples).unwrap()
        })
        .collect();
    for layout in LAYOUTS {
        let half = series.len() / 2;
        let e = fixture(
            layout,
            vec![
                WriteBatch::from_series(tenant("big"), series[..half].to_vec()),
                WriteBatch::from_series(tenant("big"), series[half..].to_vec()),
            ],
        )
        .await;
        let out = e
        .sql(&tenant("big"), "SELECT count(*) AS n, sum(value) AS s, count(DISTINCT labels['id']) AS ids FROM samples")
        .await
        .unwrap();
        let got = pretty_format_batches(&out.batches).unwrap().to_string();
        // sum over 300 series of 0+1+…+49 = 300 × 1225
        assert!(got.contains("| 15000 | 367500.0 | 300 |"), "{got}");
        let out = e
            .sql(&tenant("big"), "SELECT * FROM samples LIMIT 7")
            .await
            .unwrap();
        assert_eq!(out.row_count(), 7);
        let out = e
            .sql(
                &tenant("big"),
                "SELECT value FROM samples WHERE timestamp >= TIMESTAMP '1970-01-01T00:00:49Z'",
            )
            .await
            .unwrap();
        assert_eq!(out.row_count(), 300);
    }
}

#[tokio::test]
async fn time_filters_prune_files_before_they_are_opened() {
    let e = engine(Layout::Files).await;
    let explain = |from: &'static str| {
        let e = &e;
        async move {
            table(
                e,
                "a",
                &format!(
                    "EXPLAIN SELECT value FROM samples \
                     WHERE metric = 'up' AND timestamp >= TIMESTAMP '{from}'"
                ),
            )
            .await
        }
    };
    // `up` spans 1s..3s: a scan from 2s reads its file (and prunes row
    // groups with the pushed predicate), a scan from 4s opens no file.
    let overlapping = explain("1970-01-01T00:00:02Z").await;
    assert!(
        overlapping.contains("DataSourceExec: file_groups={1 group"),
        "{overlapping}"
    );
    assert!(
        overlapping.contains("pruning_predicate=") && overlapping.contains("timestamp_max"),
        "{overlapping}"
    );
    let after = explain("1970-01-01T00:00:04Z").await;
    assert!(!after.contains("DataSourceExec"), "{after}");
    assert!(after.contains("EmptyExec"), "{after}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_travel_reads_the_table_at_a_version_or_time() {
    let dir = tempfile::tempdir().unwrap();
    let store = ObjectStoreHandle::open(&ObjectStoreConfig::default(), dir.path()).unwrap();
    let storage = Arc::new(Storage::open(store, Arc::new(Head::new())).await.unwrap());
    let wal = MemoryWal::new();
    let up = |ts, v| {
        Arc::new(WriteBatch::from_series(
            tenant("a"),
            vec![s(&[("__name__", "up")], &[(ts, v)])],
        ))
    };
    storage.write(&wal, up(1000, 1.0)).await.unwrap(); // version 1
    storage.flush(&wal).await.unwrap();
    let between = chrono::Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    storage.write(&wal, up(2000, 2.0)).await.unwrap(); // version 2
    storage.flush(&wal).await.unwrap();
    storage.write(&wal, up(3000, 3.0)).await.unwrap(); // still in the head
    let e = QueryEngine::new(storage);

    let sum = |sql: String| {
        let e = &e;
        async move { table(e, "a", &sql).await }
    };
    assert!(
        sum("SELECT sum(value) AS s FROM samples".into())
            .await
            .contains("| 6.0 |")
    );
    let v1 = sum("SELECT sum(value) AS s FROM samples_at_version(1)".into()).await;
    assert!(v1.contains("| 1.0 |"), "{v1}");
    let v2 = sum("SELECT sum(value) AS s FROM samples_at_version(2)".into()).await;
    assert!(v2.contains("| 3.0 |"), "{v2}");
    let t = sum(format!(
        "SELECT sum(value) AS s FROM samples_as_of('{}')",
        between.to_rfc3339()
    ))
    .await;
    assert!(t.contains("| 1.0 |"), "{t}");

    for bad in [
        "SELECT * FROM samples_at_version(99)",
        "SELECT * FROM samples_at_version('x')",
        "SELECT * FROM samples_as_of('yesterday')",
    ] {
        let err = e.sql(&tenant("a"), bad).await.unwrap_err();
        assert_eq!(
            err.kind(),
            strata_types::ErrorKind::BadInput,
            "{bad}: {err}"
        );
    }
    let err = e
        .sql(&tenant("nobody"), "SELECT * FROM samples_at_version(0)")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no table"), "{err}");
}

/// A lookback limit hides older samples from every SQL table, file and
/// head alike, and from PromQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lookback_limit_hides_older_samples_everywhere() {
    let now = chrono::Utc::now().timestamp_millis();
    let hour = 3_600_000;
    let a = |samples: &[(i64, f64)]| {
        WriteBatch::from_series(
            tenant("a"),
            vec![s(&[("__name__", "up"), ("job", "api")], samples)],
        )
    };
    // Two old samples flushed to a file, one old and one recent in the head.
    let f = fixture(
        Layout::Split,
        vec![
            a(&[(now - 5 * hour, 1.0), (now - 4 * hour, 2.0)]),
            a(&[(now - 3 * hour, 3.0), (now - 60_000, 4.0)]),
        ],
    )
    .await;
    let limited = f
        .engine
        .clone()
        .with_lookback_limit(|_| Some(std::time::Duration::from_secs(2 * 3600)));
    let total = |e: &QueryEngine, sql: &'static str| {
        let e = e.clone();
        async move {
            let out = e.sql(&tenant("a"), sql).await.unwrap();
            let col = out.batches[0].column(0).clone();
            arrow::array::AsArray::as_primitive::<arrow::datatypes::Float64Type>(&col).value(0)
        }
    };
    for sql in [
        "SELECT sum(value) AS v FROM samples",
        "SELECT sum(value) AS v FROM up",
        "SELECT sum(value) AS v FROM up WHERE timestamp > TIMESTAMP '1970-01-01T00:00:00Z'",
    ] {
        assert_eq!(total(&f.engine, sql).await, 10.0, "{sql} unlimited");
        assert_eq!(total(&limited, sql).await, 4.0, "{sql} limited");
    }
    // PromQL reads through the same view.
    let source = limited.promql_source(&tenant("a")).unwrap();
    let engine = strata_query_lang::promql::Engine::new(Default::default());
    let out = engine
        .instant(&source, "count_over_time(up[6h])", now)
        .await
        .unwrap();
    let strata_query_lang::promql::Value::Vector(v) = out.value else {
        panic!("{:?}", out.value);
    };
    assert_eq!(v[0].v, 1.0);
}

/// Once compaction merges files, the next index built for the table drops
/// the merged files' indexes (they are never read again).
#[tokio::test]
async fn merged_files_indexes_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let store = ObjectStoreHandle::open(&ObjectStoreConfig::default(), dir.path()).unwrap();
    let storage = Arc::new(Storage::open(store, Arc::new(Head::new())).await.unwrap());
    let wal = MemoryWal::new();
    let engine = QueryEngine::new(Arc::clone(&storage));
    let promql = strata_query_lang::promql::Engine::new(Default::default());
    let count = |engine: QueryEngine| {
        let promql = promql.clone();
        async move {
            let source = engine.promql_source(&tenant("a")).unwrap();
            let out = promql
                .instant(&source, "count(count_over_time(up[1h]))", 3_000_000)
                .await
                .unwrap();
            let strata_query_lang::promql::Value::Vector(v) = out.value else {
                panic!("{:?}", out.value);
            };
            v[0].v
        }
    };
    for (job, t) in [("a", 1_000), ("b", 2_000_000)] {
        let batch = WriteBatch::from_series(
            tenant("a"),
            vec![s(&[("__name__", "up"), ("job", job)], &[(t, 1.0)])],
        );
        storage.write(&wal, Arc::new(batch)).await.unwrap();
        storage.flush(&wal).await.unwrap();
    }
    assert_eq!(count(engine.clone()).await, 2.0);
    let before = engine.file_index.paths();
    assert_eq!(before.len(), 2, "{before:?}");
    storage
        .compact(10 * 86_400_000, std::time::Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(count(engine.clone()).await, 2.0);
    let after = engine.file_index.paths();
    assert_eq!(after.len(), 1, "{after:?}");
    assert!(!before.contains(&after[0]), "{before:?} {after:?}");
}

#[tokio::test]
async fn metric_tables_label_series_written_after_planning() {
    // A metric table's label columns are looked up by series id, in slots
    // built when the query is planned; a series the head creates between
    // planning and execution is looked up in the head, not left unlabelled.
    let e = engine(Layout::Split).await;
    let ctx = e.session(&tenant("a")).await.unwrap();
    let plan = ctx
        .sql("SELECT job, code, value FROM http_requests_total ORDER BY value")
        .await
        .unwrap()
        .create_physical_plan()
        .await
        .unwrap();
    let late = WriteBatch::from_series(
        tenant("a"),
        vec![s(
            &[
                ("__name__", "http_requests_total"),
                ("job", "late"),
                ("code", "503"),
            ],
            &[(1500, 9.0)],
        )],
    );
    e.storage
        .write(&MemoryWal::new(), Arc::new(late))
        .await
        .unwrap();
    let out = datafusion::physical_plan::collect(plan, ctx.task_ctx())
        .await
        .unwrap();
    let got = pretty_format_batches(&out).unwrap().to_string();
    assert!(got.contains("| late | 503  | 9.0   |"), "{got}");
    assert!(!got.contains("|      |"), "a row without its labels: {got}");
}

/// Ranges covering a small part of a file (an instant query's lookback,
/// the last minutes of an hour) read the series' rows cut to the range
/// from the timestamps first, and answer what the head answers: series
/// that stopped early or pause inside the range included.
#[tokio::test]
async fn promql_short_ranges_over_a_long_file_answer_as_the_head() {
    use strata_query_lang::promql::Engine;
    let hour = |i: i64| -> Vec<(i64, f64)> {
        (0..240)
            .map(|k| (k * 15_000 + i, (k * (i + 1)) as f64))
            .collect()
    };
    let mut series: Vec<SeriesSamples> = (0..12)
        .map(|i| {
            let (i_s, g_s) = (i.to_string(), (i % 3).to_string());
            s(&[("__name__", "c"), ("i", &i_s), ("g", &g_s)], &hour(i))
        })
        .collect();
    series.push(s(&[("__name__", "c"), ("i", "early")], &hour(0)[..40]));
    let gap: Vec<(i64, f64)> = hour(1)
        .into_iter()
        .filter(|(t, _)| !(2_400_000..3_300_000).contains(t))
        .collect();
    series.push(s(&[("__name__", "c"), ("i", "gap")], &gap));
    let batches = || vec![WriteBatch::from_series(tenant("a"), series.clone())];
    let head = fixture(Layout::Head, batches()).await;
    let files = fixture(Layout::Files, batches()).await;
    let h = head.promql_source(&tenant("a")).unwrap();
    let f = files.promql_source(&tenant("a")).unwrap();
    let e = Engine::default();
    for q in [
        "c",
        "sum by (g) (rate(c[1m]))",
        "count(c)",
        "max_over_time(c[2m])",
        "c offset 20m",
    ] {
        for t in [
            300_000, 2_000_000, 2_500_000, 3_000_000, 3_585_000, 3_600_000,
        ] {
            let want = e.instant(&h, q, t).await.unwrap();
            let got = e.instant(&f, q, t).await.unwrap();
            assert_eq!(got.value, want.value, "{q} at {t}");
        }
        let want = e.range(&h, q, 3_000_000, 3_600_000, 15_000).await.unwrap();
        let got = e.range(&f, q, 3_000_000, 3_600_000, 15_000).await.unwrap();
        assert_eq!(got.value, want.value, "{q}, the last 10 minutes");
    }
}

/// Flush and compaction files carry a series index (ids, label sets, runs
/// of rows); the index a query builds from it is the one it builds from
/// the file's columns, for both writers and for series with different
/// label names, metrics, and rows spread over two flushes.
#[tokio::test]
async fn a_files_series_index_matches_its_columns() {
    use crate::series_labels::FileIndex;
    let dir = tempfile::tempdir().unwrap();
    let store = ObjectStoreHandle::open(&ObjectStoreConfig::default(), dir.path()).unwrap();
    let storage = Arc::new(Storage::open(store, Arc::new(Head::new())).await.unwrap());
    let wal = MemoryWal::new();
    let series = |round: i64, n: usize| -> Vec<SeriesSamples> {
        (0..n)
            .map(|i| {
                let job = format!("job-{}", i % 7);
                let code = format!("{}", 200 + i % 5);
                let inst = format!("host-{i}");
                let mut pairs = vec![
                    (
                        "__name__",
                        if i % 3 == 0 {
                            "up"
                        } else {
                            "http_requests_total"
                        },
                    ),
                    ("job", job.as_str()),
                    ("instance", inst.as_str()),
                ];
                if i % 2 == 0 {
                    pairs.push(("code", code.as_str()));
                }
                let samples: Vec<(i64, f64)> = (0..3 + i as i64 % 4)
                    .map(|k| (round * 1_000_000 + k * 15_000, k as f64))
                    .collect();
                s(&pairs, &samples)
            })
            .collect()
    };
    // The second flush has the first's series and new ones.
    for (round, n) in [(1, 300), (2, 450)] {
        let batch = WriteBatch::from_series(tenant("a"), series(round, n));
        storage.write(&wal, Arc::new(batch)).await.unwrap();
        storage.flush(&wal).await.unwrap();
    }
    let check = |files: Arc<[strata_storage::DataFile]>, root: object_store::path::Path| {
        let store = storage.view(&tenant("a")).store.store().clone();
        async move {
            assert!(!files.is_empty());
            for f in files.iter() {
                let path = f.path.under(&root);
                #[allow(deprecated)]
                let mut reader =
                    datafusion::parquet::arrow::async_reader::ParquetObjectReader::new(
                        Arc::clone(&store),
                        path.clone(),
                    )
                    .with_file_size(f.size);
                let meta =
                    datafusion::parquet::arrow::arrow_reader::ArrowReaderMetadata::load_async(
                        &mut reader,
                        Default::default(),
                    )
                    .await
                    .unwrap();
                let from_index = FileIndex::from_series_index(&store, &path, &meta)
                    .await
                    .expect("the file has a series index");
                let from_columns = FileIndex::from_columns(reader, meta, &path).await.unwrap();
                let (a, b) = (from_index.summary(), from_columns.summary());
                assert_eq!(a.0.len(), b.0.len(), "{path}: series");
                for (x, y) in a.0.iter().zip(&b.0) {
                    assert_eq!(x, y, "{path}: a series");
                }
                assert_eq!(a.1, b.1, "{path}: runs");
                assert_eq!(a.2, b.2, "{path}: rows");
                assert_eq!(a.3, b.3, "{path}: label values");
            }
            files.len()
        }
    };
    let view = storage.view(&tenant("a"));
    assert_eq!(check(view.files.clone(), view.table_root.clone()).await, 2);
    storage
        .compact(10 * 86_400_000, std::time::Duration::ZERO)
        .await
        .unwrap();
    let view = storage.view(&tenant("a"));
    assert_eq!(check(view.files.clone(), view.table_root.clone()).await, 1);
}

/// A queried tenant's new files are indexed ahead of its next query; a
/// tenant nobody queried is left alone (its indexes would only hold
/// memory).
#[tokio::test]
async fn new_files_of_queried_tenants_are_indexed_ahead() {
    let dir = tempfile::tempdir().unwrap();
    let store = ObjectStoreHandle::open(&ObjectStoreConfig::default(), dir.path()).unwrap();
    let storage = Arc::new(Storage::open(store, Arc::new(Head::new())).await.unwrap());
    let wal = MemoryWal::new();
    let engine = QueryEngine::new(Arc::clone(&storage));
    async fn write(storage: &Storage, wal: &MemoryWal, t: &str, job: &str, ts: i64) {
        let batch = WriteBatch::from_series(
            tenant(t),
            vec![s(&[("__name__", "up"), ("job", job)], &[(ts, 1.0)])],
        );
        storage.write(wal, Arc::new(batch)).await.unwrap();
        storage.flush(wal).await.unwrap();
    }
    write(&storage, &wal, "a", "x", 1_000).await;
    write(&storage, &wal, "b", "x", 1_000).await;
    let source = engine.promql_source(&tenant("a")).unwrap();
    assert_eq!(
        source.label_values("job", &[], 0, 10_000).await.unwrap(),
        vec!["x".to_string()]
    );
    assert_eq!(engine.file_index.paths().len(), 1);
    write(&storage, &wal, "a", "y", 2_000).await;
    write(&storage, &wal, "b", "y", 2_000).await;
    let all = |_: &strata_storage::DataFile| true;
    assert_eq!(
        engine
            .file_index
            .warm(&storage.view(&tenant("b")), all)
            .await,
        0
    );
    assert_eq!(
        engine
            .file_index
            .warm(&storage.view(&tenant("a")), all)
            .await,
        1
    );
    let held = engine.file_index.paths();
    assert_eq!(held.len(), 2, "{held:?}");
    assert!(held.iter().all(|p| p.contains("/tenants/a/")), "{held:?}");
    // Nothing left to build.
    assert_eq!(
        engine
            .file_index
            .warm(&storage.view(&tenant("a")), all)
            .await,
        0
    );
}
