//! Other engines read a tenant's table as Strata wrote it: the Python
//! `deltalake` package through the Delta log, DuckDB on the Parquet files
//! that log lists. Both must see the rows and values Strata's SQL returns.
//! Needs python3 with deltalake, duckdb and pyarrow (`scripts/test` installs
//! them); skipped without them unless `STRATA_E2E_REQUIRE_PYTHON=1`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::process::Command;

use common::{Server, clients_ready, payload, series};

#[test]
fn deltalake_and_duckdb_read_what_sql_returns() {
    if !clients_ready(&[], "deltalake, duckdb, pyarrow") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &["--flush-interval", "1h"]);
    // Three flushes over two days, two jobs; then a compaction.
    for round in 0..3i64 {
        let ts: Vec<_> = (0..50)
            .map(|s| {
                let sid = s.to_string();
                let job = if s % 5 == 0 { "api" } else { "db" };
                let samples: Vec<(i64, f64)> = (0..10)
                    .map(|i| {
                        (
                            1_700_000_000_000 + round * 43_200_000 + i * 15_000,
                            (s * 100 + i) as f64 + 0.25,
                        )
                    })
                    .collect();
                series(
                    &[("__name__", "interop"), ("job", job), ("s", &sid)],
                    &samples,
                )
            })
            .collect();
        assert_eq!(server.write(None, &payload(ts)).0, 204);
        assert_eq!(server.post("/api/v1/admin/flush").unwrap().0, 200);
    }
    let sql = server.rows(
        None,
        "SELECT count(*), sum(value), count(DISTINCT series_id), \
         count(*) FILTER (WHERE labels['job'] = 'api') FROM samples",
    );
    drop(server);
    common::stdout_of(Command::new(env!("CARGO_BIN_EXE_strata")).args([
        "compact",
        "--data-dir",
        data.to_str().unwrap(),
    ]));

    let table = data.join("objects/tenants/default/metrics");
    let out = common::interop("read_table.py", &[table.to_str().unwrap()], None);
    let seen: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let (rows, sum, series, api) = (&sql[0][0], &sql[0][1], &sql[0][2], &sql[0][3]);
    assert_eq!(rows, 1500, "{seen}");
    for engine in ["delta", "duckdb"] {
        let e = &seen[engine];
        assert_eq!(&e["rows"], rows, "{engine}: {seen}");
        assert_eq!(
            e["sum"].as_f64().unwrap(),
            sum.as_f64().unwrap(),
            "{engine}: {seen}"
        );
        assert_eq!(&e["series"], series, "{engine}: {seen}");
        assert_eq!(&e["job_api"], api, "{engine}: {seen}");
    }
    assert_eq!(seen["partition_columns"], serde_json::json!(["day"]));
    assert_eq!(
        seen["delta"]["timestamp_type"], "timestamp[us, tz=UTC]",
        "{seen}"
    );
    let history = seen["history"].as_array().unwrap();
    assert!(history.iter().any(|h| h == "OPTIMIZE"), "{seen}");
    assert!(history.iter().any(|h| h == "WRITE"), "{seen}");
    assert_eq!(
        seen["duckdb"]["min_ts"], "2023-11-14 22:13:20+00:00",
        "{seen}"
    );
}
