//! Golden SQL tests: `tests/slt/*.slt` (sqllogictest) over a fixed data set
//! held partly in files (two flushed days) and partly in the head.
//! Regenerate the expected output after a deliberate change with
//! `STRATA_SLT_COMPLETE=1 cargo test -p strata-query --test slt`.
//!
//! `EXPLAIN` answers are the physical plan, one line per row, with file
//! UUIDs shown as `<uuid>`. File paths are from the store's base; the
//! temporary directory, were it ever shown, would read `<store>` and fail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::Arc;

use arrow::util::display::{ArrayFormatter, FormatOptions};
use sqllogictest::{DBOutput, DefaultColumnType};
use strata_head::Head;
use strata_query::QueryEngine;
use strata_storage::{ObjectStoreConfig, ObjectStoreHandle, Storage};
use strata_types::{SeriesSamples, TenantId, WriteBatch};
use strata_wal::MemoryWal;

/// 2026-11-01T00:00:00Z
const DAY1: i64 = 1_793_491_200_000;
const DAY_MS: i64 = 86_400_000;

fn tenant() -> TenantId {
    TenantId::try_new("acme").unwrap()
}

/// Every 15 s for 10 minutes from `start`, per series; values are
/// deterministic counters.
fn batch(start: i64) -> Arc<WriteBatch> {
    let mut series = Vec::new();
    for (job, code, rate) in [
        ("api", "200", 10.0),
        ("api", "500", 1.0),
        ("db", "200", 4.0),
    ] {
        let samples: Vec<(i64, f64)> = (0..40)
            .map(|i| (start + i * 15_000, rate * i as f64))
            .collect();
        series.push(
            SeriesSamples::try_from_pairs(
                &[
                    ("__name__", "http_requests_total"),
                    ("job", job),
                    ("code", code),
                ],
                &samples,
            )
            .unwrap(),
        );
    }
    for (job, up) in [("api", 1.0), ("db", 0.0)] {
        let samples: Vec<(i64, f64)> = (0..40).map(|i| (start + i * 15_000, up)).collect();
        series.push(
            SeriesSamples::try_from_pairs(&[("__name__", "up"), ("job", job)], &samples).unwrap(),
        );
    }
    Arc::new(WriteBatch::from_series(tenant(), series))
}

struct StrataDb {
    engine: QueryEngine,
    store_prefix: String,
    uuid: regex::Regex,
}

#[derive(Debug)]
struct SltError(String);

impl std::fmt::Display for SltError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for SltError {}

#[async_trait::async_trait]
impl sqllogictest::AsyncDB for StrataDb {
    type Error = SltError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, SltError> {
        let out = self
            .engine
            .sql(&tenant(), sql)
            .await
            .map_err(|e| SltError(e.to_string()))?;
        let explain = sql.trim_start().to_ascii_uppercase().starts_with("EXPLAIN");
        let options = FormatOptions::default().with_null("NULL");
        let mut rows = Vec::new();
        for batch in &out.batches {
            let formatters: Vec<_> = batch
                .columns()
                .iter()
                .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).unwrap())
                .collect();
            for r in 0..batch.num_rows() {
                let cells: Vec<String> =
                    formatters.iter().map(|f| f.value(r).to_string()).collect();
                if explain {
                    if cells[0] == "physical_plan" {
                        for line in cells[1].lines().filter(|l| !l.trim().is_empty()) {
                            rows.push(vec![self.normalize(line)]);
                        }
                    }
                } else {
                    rows.push(cells);
                }
            }
        }
        let width = if explain {
            1
        } else {
            out.schema.fields().len()
        };
        Ok(DBOutput::Rows {
            types: vec![DefaultColumnType::Any; width],
            rows,
        })
    }

    async fn shutdown(&mut self) {}
}

impl StrataDb {
    fn normalize(&self, line: &str) -> String {
        let line = line.replace(&self.store_prefix, "<store>");
        self.uuid.replace_all(&line, "<uuid>").trim_end().to_owned()
    }
}

async fn fixture(dir: &Path) -> QueryEngine {
    let store = ObjectStoreHandle::open(&ObjectStoreConfig::default(), dir).unwrap();
    let storage = Arc::new(Storage::open(store, Arc::new(Head::new())).await.unwrap());
    let wal = MemoryWal::new();
    // Day 1 and day 2 flushed (one file each); day 3 still in the head.
    storage.write(&wal, batch(DAY1 + 3_600_000)).await.unwrap();
    storage.flush(&wal).await.unwrap();
    storage
        .write(&wal, batch(DAY1 + DAY_MS + 3_600_000))
        .await
        .unwrap();
    storage.flush(&wal).await.unwrap();
    storage
        .write(&wal, batch(DAY1 + 2 * DAY_MS + 3_600_000))
        .await
        .unwrap();
    QueryEngine::new(storage).with_target_partitions(2)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn golden_sql() {
    let complete = std::env::var("STRATA_SLT_COMPLETE").as_deref() == Ok("1");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/slt");
    let mut files: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "slt"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    let uuid =
        regex::Regex::new("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}").unwrap();
    for file in files {
        let dir = tempfile::tempdir().unwrap();
        let engine = fixture(dir.path()).await;
        // Object keys in plans are relative to the filesystem root.
        let store_prefix = dir
            .path()
            .join("objects")
            .canonicalize()
            .unwrap()
            .to_string_lossy()
            .trim_start_matches('/')
            .to_owned();
        let uuid = uuid.clone();
        let db = std::sync::Mutex::new(Some(StrataDb {
            engine,
            store_prefix,
            uuid,
        }));
        let mut runner = sqllogictest::Runner::new(move || {
            let conn = db.lock().unwrap().take();
            async move { conn.ok_or_else(|| SltError("one connection per file".into())) }
        });
        if complete {
            runner
                .update_test_file(
                    &file,
                    " ",
                    sqllogictest::default_validator,
                    sqllogictest::default_normalizer,
                    sqllogictest::default_column_validator,
                )
                .await
                .unwrap();
        } else if let Err(e) = runner.run_file_async(&file).await {
            panic!("{}: {e}", file.display());
        }
    }
}
