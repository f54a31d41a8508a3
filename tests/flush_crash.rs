//! A crash at each step of a flush — after the data files are uploaded,
//! after the Delta commit, after the WAL is truncated — loses nothing and
//! duplicates nothing. The steps are reached with `STRATA_FAILPOINT`, which
//! aborts the process right there.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::{Server, payload, series};

const REQUESTS: i64 = 40;
const SERIES: usize = 25;

/// Log entries, one NDJSON push per request: `SERIES` streams, one line
/// each.
fn write_logs(server: &Server, first: i64, last: i64) {
    for r in first..last {
        let body: String = (0..SERIES)
            .map(|s| {
                format!(
                    "{{\"labels\":{{\"job\":\"fp\",\"stream\":\"{s}\"}},\"line\":\"entry {r}\",\"timestamp\":{}}}\n",
                    1_700_000_000_000_000_000i64 + r * 1_000_000_000
                )
            })
            .collect();
        let mut resp = common::agent()
            .post(&server.url("/api/v1/logs"))
            .header("Content-Type", "application/x-ndjson")
            .send(body.as_bytes())
            .unwrap();
        let status = resp.status().as_u16();
        assert_eq!(
            status,
            204,
            "{}",
            resp.body_mut().read_to_string().unwrap_or_default()
        );
    }
}

/// (entries, distinct (stream, timestamp, line)) of the test logs.
fn log_census(server: &Server) -> (u64, u64) {
    let rows = server.rows(
        None,
        "SELECT count(*), count(DISTINCT (stream_id, timestamp, line)) FROM logs \
         WHERE labels['job'] = 'fp'",
    );
    (rows[0][0].as_u64().unwrap(), rows[0][1].as_u64().unwrap())
}

fn write_batch(server: &Server, first: i64, last: i64) {
    for r in first..last {
        let ts: Vec<_> = (0..SERIES)
            .map(|s| {
                let sid = s.to_string();
                series(
                    &[("__name__", "fp_test"), ("series", &sid)],
                    &[(1_700_000_000_000 + r * 1000, r as f64)],
                )
            })
            .collect();
        let (status, body) = server.write(None, &payload(ts));
        assert_eq!(status, 204, "{body}");
    }
}

/// (rows, distinct (series, timestamp), sum of values) of the test metric.
fn census(server: &Server) -> (u64, u64, f64) {
    let rows = server.rows(
        None,
        "SELECT count(*), count(DISTINCT (series_id, timestamp)), sum(value) \
         FROM samples WHERE metric = 'fp_test'",
    );
    (
        rows[0][0].as_u64().unwrap(),
        rows[0][1].as_u64().unwrap(),
        rows[0][2].as_f64().unwrap(),
    )
}

fn expected(requests: i64) -> (u64, u64, f64) {
    let n = (requests as u64) * SERIES as u64;
    let sum: i64 = (0..requests).sum();
    (n, n, (sum as f64) * SERIES as f64)
}

#[test]
fn a_crash_at_any_flush_step_loses_and_duplicates_nothing() {
    for failpoint in [
        "flush-after-upload",
        "flush-after-commit",
        "flush-after-wal-truncate",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let args = ["--flush-interval", "1h"];

        // A first, clean flush, so the crash also happens on top of files.
        let server = Server::start(&data, &args);
        write_batch(&server, 0, REQUESTS / 2);
        let (status, body) = server.post("/api/v1/admin/flush").unwrap();
        assert_eq!(status, 200, "{body}");
        drop(server);

        let server = Server::start_with_env(&data, &args, &[("STRATA_FAILPOINT", failpoint)]);
        write_batch(&server, REQUESTS / 2, REQUESTS);
        assert_eq!(census(&server), expected(REQUESTS), "{failpoint}: before");
        assert!(
            server.post("/api/v1/admin/flush").is_none(),
            "{failpoint}: the flush should have crashed the server"
        );
        let status = server.wait_exit();
        assert!(!status.success(), "{failpoint}: aborted, not exited");

        let server = Server::start(&data, &args);
        assert_eq!(
            census(&server),
            expected(REQUESTS),
            "{failpoint}: after restart"
        );
        // And again once everything is flushed and restarted.
        let (status, _) = server.post("/api/v1/admin/flush").unwrap();
        assert_eq!(status, 200);
        assert_eq!(
            census(&server),
            expected(REQUESTS),
            "{failpoint}: after flush"
        );
        drop(server);
        let server = Server::start(&data, &args);
        assert_eq!(census(&server), expected(REQUESTS), "{failpoint}: final");
    }
}

/// The same for logs: a flush of logs alone, so each failpoint strikes in
/// the logs table's upload, commit and WAL truncation.
#[test]
fn a_crash_at_any_log_flush_step_loses_and_duplicates_nothing() {
    let n = (REQUESTS as u64) * SERIES as u64;
    for failpoint in [
        "flush-after-upload",
        "flush-after-commit",
        "flush-after-wal-truncate",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let args = ["--flush-interval", "1h"];
        let server = Server::start(&data, &args);
        write_logs(&server, 0, REQUESTS / 2);
        let (status, body) = server.post("/api/v1/admin/flush").unwrap();
        assert_eq!(status, 200, "{body}");
        drop(server);

        let server = Server::start_with_env(&data, &args, &[("STRATA_FAILPOINT", failpoint)]);
        write_logs(&server, REQUESTS / 2, REQUESTS);
        assert_eq!(log_census(&server), (n, n), "{failpoint}: before");
        assert!(
            server.post("/api/v1/admin/flush").is_none(),
            "{failpoint}: the flush should have crashed the server"
        );
        assert!(!server.wait_exit().success(), "{failpoint}: aborted");

        let server = Server::start(&data, &args);
        assert_eq!(log_census(&server), (n, n), "{failpoint}: after restart");
        let (status, _) = server.post("/api/v1/admin/flush").unwrap();
        assert_eq!(status, 200);
        drop(server);
        let server = Server::start(&data, &args);
        assert_eq!(log_census(&server), (n, n), "{failpoint}: final");
    }
}

#[test]
fn sigterm_flushes_the_head_and_restart_reads_it_from_files() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let args = ["--flush-interval", "1h"];
    let server = Server::start(&data, &args);
    write_batch(&server, 0, REQUESTS);
    assert!(server.terminate().success());
    let wal_bytes: u64 = std::fs::read_dir(data.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    let server = Server::start(&data, &args);
    assert_eq!(census(&server), expected(REQUESTS));
    let (_, metrics) = server.get("/metrics");
    assert!(
        metrics.contains(&format!(
            "strata_table_samples{{tenant=\"default\"}} {}",
            REQUESTS as usize * SERIES
        )),
        "flushed at shutdown; WAL left: {wal_bytes} bytes\n{metrics}"
    );
    assert!(
        !metrics.contains("strata_head_samples{tenant=\"default\"}"),
        "nothing replayed into the head"
    );
}
