//! Other engines read a tenant's table as Strata wrote it: the Python
//! `deltalake` package through the Delta log, DuckDB on the Parquet files
//! that log lists. Both must see the rows and values Strata's SQL returns,
//! and the exemplars `/api/v1/query_exemplars` returns in the exemplars
//! table; both read the native-histogram table as Strata wrote it.
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
                let mut ts = series(
                    &[("__name__", "interop"), ("job", job), ("s", &sid)],
                    &samples,
                );
                // One native histogram a round on the second series:
                // count 3 + round, zero bucket 1, buckets 0 and 1.
                if s == 1 {
                    let h = strata_ingest::remote_write::proto::Histogram {
                        count_int: Some(3 + round as u64),
                        zero_count_int: Some(1),
                        sum: 2.0,
                        schema: 1,
                        zero_threshold: 1e-3,
                        positive_spans: vec![strata_ingest::remote_write::proto::BucketSpan {
                            offset: 0,
                            length: 2,
                        }],
                        positive_deltas: vec![1, round],
                        timestamp: samples[0].0,
                        ..Default::default()
                    };
                    ts.histograms.push(h);
                }
                // One exemplar a round on the first series.
                if s == 0 {
                    let trace = format!("trace-{round}");
                    let first = samples[0].0;
                    ts.exemplars
                        .push(common::exemplar(&trace, (round + 1) as f64, first));
                }
                ts
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
    let (status, exemplars) = server.get_json(
        "default",
        "/api/v1/query_exemplars?query=interop&start=1699999999&end=1700200000",
    );
    assert_eq!(status, 200, "{exemplars}");
    assert_eq!(
        exemplars["data"][0]["exemplars"].as_array().unwrap().len(),
        3
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

    // The exemplars table, compacted too: three exemplars of one series.
    let table = data.join("objects/tenants/default/exemplars");
    let out = common::interop("read_table.py", &[table.to_str().unwrap()], None);
    let seen: serde_json::Value = serde_json::from_slice(&out).unwrap();
    for engine in ["delta", "duckdb"] {
        let e = &seen[engine];
        assert_eq!(e["rows"], 3, "{engine}: {seen}");
        assert_eq!(e["sum"].as_f64(), Some(6.0), "{engine}: {seen}");
        assert_eq!(e["series"], 1, "{engine}: {seen}");
        assert_eq!(e["job_api"], 3, "{engine}: {seen}");
    }
    assert!(
        seen["delta"]["columns"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("exemplar")),
        "{seen}"
    );

    // The native-histogram table, compacted too: three histograms
    // (counts 3, 4, 5), bucket 0 holding 1 each, bucket 1 holding 1, 2, 3.
    let table = data.join("objects/tenants/default/histograms");
    let out = common::interop("read_histograms.py", &[table.to_str().unwrap()], None);
    let seen: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(seen["partition_columns"], serde_json::json!(["day"]));
    assert_eq!(seen["delta"]["rows"], 3, "{seen}");
    assert_eq!(seen["delta"]["count"].as_f64(), Some(12.0), "{seen}");
    assert_eq!(seen["duckdb"]["rows"], 3, "{seen}");
    assert_eq!(seen["duckdb"]["count"].as_f64(), Some(12.0), "{seen}");
    assert_eq!(seen["duckdb"]["schema"], 1, "{seen}");
    assert_eq!(
        seen["duckdb"]["buckets"],
        serde_json::json!([[0, 3.0], [1, 6.0]]),
        "{seen}"
    );
}
