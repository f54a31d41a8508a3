//! Logs end to end with real clients: the OpenTelemetry Python SDK
//! (OTLP/HTTP protobuf) and python-logging-loki (Loki push JSON) write;
//! LogQL through the Loki API and SQL over `logs` read back, from the head,
//! from files after a flush, and after a `kill -9` and WAL replay. Plus
//! each protocol's status codes and error shapes.
//!
//! Needs python3 with opentelemetry-sdk, opentelemetry-exporter-otlp-proto-http
//! and python-logging-loki (`scripts/test` installs them).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::io::Write;
use std::process::Command;

use common::{Server, agent, clients_ready};
use serde_json::Value;

fn push(
    server: &Server,
    path: &str,
    tenant: &str,
    content_type: &str,
    body: &[u8],
) -> (u16, String, String) {
    push_with(
        server,
        path,
        tenant,
        &[("Content-Type", content_type)],
        body,
    )
}

fn push_with(
    server: &Server,
    path: &str,
    tenant: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, String) {
    let mut req = agent()
        .post(&server.url(path))
        .header("X-Scope-OrgID", tenant);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut resp = req.send(body).unwrap();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let status = resp.status().as_u16();
    let body = resp.body_mut().read_to_vec().unwrap();
    (status, ct, String::from_utf8_lossy(&body).into_owned())
}

/// A Loki API GET; status and JSON (or text) body.
fn loki(server: &Server, tenant: &str, path: &str, params: &[(&str, &str)]) -> (u16, Value) {
    let mut req = agent()
        .get(&server.url(path))
        .header("X-Scope-OrgID", tenant);
    for (k, v) in params {
        req = req.query(*k, *v);
    }
    let mut resp = req.call().unwrap();
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Lines of a log query, oldest first.
fn lines(server: &Server, tenant: &str, query: &str) -> Vec<String> {
    let (status, v) = loki(
        server,
        tenant,
        "/loki/api/v1/query_range",
        &[("query", query), ("since", "24h"), ("direction", "forward")],
    );
    assert_eq!(status, 200, "{query}: {v}");
    assert_eq!(v["data"]["resultType"], "streams");
    let mut out: Vec<(String, String)> = v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["values"].as_array().unwrap().clone())
        .map(|e| {
            (
                e[0].as_str().unwrap().to_owned(),
                e[1].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    out.sort();
    out.into_iter().map(|(_, l)| l).collect()
}

fn run_client(mode: &str, server: &Server, tenant: &str) {
    let url = format!("http://{}", server.addr);
    common::interop("log_clients.py", &[mode, &url, tenant], Some(server));
}

fn check_everything_reads_back(server: &Server) {
    // LogQL: selectors, line filters, label filters on structured metadata.
    assert_eq!(
        lines(server, "acme", r#"{service_name="odoo"} |= "picking""#),
        ["picking 1001 validated", "picking 1002 waiting for stock"]
    );
    assert_eq!(
        lines(
            server,
            "acme",
            r#"{service_name="odoo"} | severity_text="ERROR" | line_format "{{.business_process}}: {{.severity_text}}""#
        ),
        ["invoicing: ERROR"]
    );
    assert_eq!(
        lines(
            server,
            "acme",
            r#"{application="wms", severity=~"warning|error"} != "late""#
        ),
        ["dispatch 502 cancelled"]
    );
    // A metric query, as Grafana's log volume panel asks it.
    let (status, v) = loki(
        server,
        "acme",
        "/loki/api/v1/query",
        &[(
            "query",
            r#"sum by (dock) (count_over_time({application="wms"}[1d]))"#,
        )],
    );
    assert_eq!(status, 200, "{v}");
    let mut by_dock: Vec<(String, String)> = v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["metric"]["dock"].as_str().unwrap().to_owned(),
                r["value"][1].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    by_dock.sort();
    assert_eq!(
        by_dock,
        [
            ("d1".to_owned(), "2".to_owned()),
            ("d2".to_owned(), "1".to_owned())
        ]
    );
    // SQL over the same entries.
    let rows = server.rows(
        Some("acme"),
        "SELECT line FROM logs WHERE labels['application'] = 'wms' AND labels['dock'] = 'd1' ORDER BY timestamp",
    );
    assert_eq!(
        rows,
        [
            serde_json::json!(["dispatch 500 loaded"]),
            serde_json::json!(["dispatch 502 cancelled"])
        ]
    );
    let rows = server.rows(
        Some("acme"),
        "SELECT metadata['business_process'] AS p, count(*) FROM logs \
         WHERE labels['service_name'] = 'odoo' GROUP BY 1 ORDER BY 1",
    );
    assert_eq!(
        rows,
        [
            serde_json::json!(["invoicing", 1]),
            serde_json::json!(["picking", 2])
        ]
    );
    // Another tenant sees none of it.
    assert!(lines(server, "other", r#"{service_name="odoo"}"#).is_empty());
    assert_eq!(
        server.rows(Some("other"), "SELECT count(*) FROM logs"),
        [serde_json::json!([0])]
    );
    let (_, labels) = loki(server, "other", "/loki/api/v1/labels", &[("since", "24h")]);
    assert_eq!(labels["data"], serde_json::json!([]));
}

#[test]
fn real_clients_write_logs_that_logql_and_sql_read_back() {
    if !clients_ready(
        &[],
        "opentelemetry.sdk, opentelemetry.exporter.otlp.proto.http, logging_loki",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &[]);
    run_client("otel", &server, "acme");
    run_client("loki", &server, "acme");
    check_everything_reads_back(&server);

    // From Parquet files after a flush: the same answers.
    let (status, body) = server.post("/api/v1/admin/flush").unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"logEntries\":6"), "{body}");
    check_everything_reads_back(&server);

    // Acknowledged after the flush, then kill -9: replayed from the WAL,
    // nothing duplicated.
    let ndjson = b"{\"labels\":{\"application\":\"wms\",\"dock\":\"d1\"},\"line\":\"dispatch 503 loaded\"}\n";
    let (status, _, body) = push(
        &server,
        "/api/v1/logs",
        "acme",
        "application/x-ndjson",
        ndjson,
    );
    assert_eq!(status, 204, "{body}");
    server.kill();
    let server = Server::start(&data, &[]);
    assert_eq!(
        server.rows(Some("acme"), "SELECT count(*) FROM logs"),
        [serde_json::json!([7])]
    );
    assert_eq!(
        lines(&server, "acme", r#"{application="wms", dock="d1"}"#),
        [
            "dispatch 500 loaded",
            "dispatch 502 cancelled",
            "dispatch 503 loaded"
        ]
    );
}

#[test]
fn each_protocol_answers_in_its_own_shape() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);

    // Loki push: 204; a number timestamp is a plain-text 400 naming it.
    let ok = br#"{"streams":[{"stream":{"job":"odoo"},"values":[["1700000000000000000","a"]]}]}"#;
    assert_eq!(
        push(&server, "/loki/api/v1/push", "t", "application/json", ok).0,
        204
    );
    let (status, _, body) = push(
        &server,
        "/loki/api/v1/push",
        "t",
        "application/json",
        br#"{"streams":[{"stream":{"job":"odoo"},"values":[[1700000000000000000,"a"]]}]}"#,
    );
    assert_eq!(status, 400);
    assert!(
        body.contains("must be a string of Unix nanoseconds"),
        "{body}"
    );
    assert_eq!(
        push(&server, "/loki/api/v1/push", "t", "text/csv", ok).0,
        415
    );
    // Gzip-compressed JSON. The same entry twice is one entry (Loki's
    // deduplication); a new line at the same time is another.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(br#"{"streams":[{"stream":{"job":"odoo"},"values":[["1700000000000000000","a"],["1700000000000000000","a2"]]}]}"#)
        .unwrap();
    let (status, _, body) = push_with(
        &server,
        "/loki/api/v1/push",
        "t",
        &[
            ("Content-Type", "application/json"),
            ("Content-Encoding", "gzip"),
        ],
        &gz.finish().unwrap(),
    );
    assert_eq!(status, 204, "{body}");
    // Snappy protobuf, as Promtail and Alloy send it.
    use strata_ingest::logs::loki::{encode_proto, proto};
    let req = proto::PushRequest {
        streams: vec![proto::StreamAdapter {
            labels: r#"{job="odoo", level="error"}"#.into(),
            entries: vec![proto::EntryAdapter {
                timestamp: Some(proto::Timestamp {
                    seconds: 1_700_000_001,
                    nanos: 0,
                }),
                line: "b".into(),
                structured_metadata: Vec::new(),
            }],
            hash: 0,
        }],
    };
    let (status, _, body) = push(
        &server,
        "/loki/api/v1/push",
        "t",
        "application/x-protobuf",
        &encode_proto(&req),
    );
    assert_eq!(status, 204, "{body}");
    assert_eq!(
        server.rows(Some("t"), "SELECT count(*) FROM logs"),
        [serde_json::json!([3])]
    );
    assert_eq!(
        server.rows(Some("t"), "SELECT line FROM logs ORDER BY timestamp, line"),
        [
            serde_json::json!(["a"]),
            serde_json::json!(["a2"]),
            serde_json::json!(["b"])
        ]
    );

    // OTLP: bad protobuf is a 400 google.rpc.Status in protobuf; bad JSON
    // one in JSON with code 3 (INVALID_ARGUMENT); an empty export is a 200.
    let (status, ct, _) = push(
        &server,
        "/v1/logs",
        "t",
        "application/x-protobuf",
        b"\xff\xff\xff",
    );
    assert_eq!((status, ct.as_str()), (400, "application/x-protobuf"));
    let (status, _, body) = push(
        &server,
        "/otlp/v1/logs",
        "t",
        "application/json",
        b"{\"resourceLogs\": 3}",
    );
    assert_eq!(status, 400);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["code"], 3, "{body}");
    let (status, ct, body) = push(&server, "/v1/logs", "t", "application/json", b"{}");
    assert_eq!(
        (status, ct.as_str(), body.as_str()),
        (200, "application/json", "{}")
    );
    assert_eq!(push(&server, "/v1/logs", "t", "text/plain", b"{}").0, 415);

    // The Loki API: Grafana's health check, errors as text.
    let (status, v) = loki(
        &server,
        "t",
        "/loki/api/v1/query",
        &[("query", "vector(1)+vector(1)")],
    );
    assert_eq!(status, 200);
    assert_eq!(v["data"]["result"][0]["value"][1], "2");
    let (status, v) = loki(
        &server,
        "t",
        "/loki/api/v1/query_range",
        &[("query", r#"{job="odoo""#)],
    );
    assert_eq!(status, 400);
    assert!(v.as_str().unwrap().contains("parse error"), "{v}");
    let (status, _) = loki(
        &server,
        "t",
        "/loki/api/v1/query",
        &[("query", r#"{job="odoo"}"#)],
    );
    assert_eq!(status, 400);
    let (status, v) = loki(
        &server,
        "t",
        "/loki/api/v1/query_range",
        &[
            ("query", r#"{job="odoo"}"#),
            ("start", "1699999999"),
            ("end", "1700000002"),
            ("limit", "1"),
        ],
    );
    assert_eq!(status, 200);
    assert_eq!(v["data"]["result"][0]["values"][0][1], "b", "{v}");
    let (_, v) = loki(
        &server,
        "t",
        "/loki/api/v1/label/level/values",
        &[("start", "1699999999"), ("end", "1700000002")],
    );
    assert_eq!(v["data"], serde_json::json!(["error"]));

    // Grafana's query size estimate and volume, from counts (no lines
    // copied): 3 entries of 1 + 2 + 1 bytes in 2 streams; then with the
    // entries in Parquet.
    for flushed in [false, true] {
        if flushed {
            assert_eq!(server.post("/api/v1/admin/flush").unwrap().0, 200);
        }
        let range = [("start", "1699999999"), ("end", "1700000002")];
        let (status, v) = loki(
            &server,
            "t",
            "/loki/api/v1/index/stats",
            &[("query", r#"{job="odoo"}"#), range[0], range[1]],
        );
        assert_eq!(status, 200);
        assert_eq!(
            v,
            serde_json::json!({"streams": 2, "chunks": 2, "entries": 3, "bytes": 4}),
            "flushed: {flushed}"
        );
        let (_, v) = loki(
            &server,
            "t",
            "/loki/api/v1/index/volume",
            &[
                ("query", r#"{job="odoo"}"#),
                ("targetLabels", "level"),
                range[0],
                range[1],
            ],
        );
        let mut volume: Vec<String> = v["data"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| format!("{}={}", r["metric"], r["value"][1].as_str().unwrap()))
            .collect();
        volume.sort();
        assert_eq!(
            volume,
            [r#"{"level":"error"}=1"#, "{}=3"],
            "flushed: {flushed}"
        );
    }
}

fn strata(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(args)
        .output()
        .unwrap()
}

fn out_text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Audit: `strata verify` re-hashes log files too, and retention removes
/// old log days by commit (legal hold keeps them).
#[test]
fn verify_and_retention_cover_the_logs_table() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &[]);
    // Two days of 2023.
    let body = br#"{"streams":[{"stream":{"job":"odoo"},"values":[
        ["1700000000000000000","day one"],["1700086400000000000","day two"]]}]}"#;
    for tenant in ["acme", "held"] {
        assert_eq!(
            push(
                &server,
                "/loki/api/v1/push",
                tenant,
                "application/json",
                body
            )
            .0,
            204
        );
    }
    assert_eq!(server.post("/api/v1/admin/flush").unwrap().0, 200);
    // The same entries again after the flush: a second file per day.
    assert_eq!(
        push(
            &server,
            "/loki/api/v1/push",
            "acme",
            "application/json",
            body
        )
        .0,
        204
    );
    assert_eq!(server.post("/api/v1/admin/flush").unwrap().0, 200);
    assert_eq!(
        lines(&server, "acme", r#"{job="odoo"}"#).len(),
        0,
        "outside the last 24h"
    );
    assert_eq!(
        server.rows(Some("acme"), "SELECT count(*) FROM logs"),
        [serde_json::json!([4])]
    );
    assert!(server.terminate().success());
    let d = data.to_str().unwrap();

    let out = strata(&["verify", "--data-dir", d]);
    assert!(out.status.success(), "{}", out_text(&out));
    assert!(
        out_text(&out).contains("verified 6 files"),
        "{}",
        out_text(&out)
    );

    // Compaction merges each ended day into one file, the repeated entries
    // stored once.
    let out = strata(&["compact", "--data-dir", d]);
    assert!(out.status.success(), "{}", out_text(&out));
    let out = strata(&["verify", "--data-dir", d]);
    assert!(
        out_text(&out).contains("verified 4 files"),
        "{}",
        out_text(&out)
    );
    let server = Server::start(&data, &[]);
    assert_eq!(
        server.rows(Some("acme"), "SELECT count(*) FROM logs"),
        [serde_json::json!([2])]
    );
    assert_eq!(
        server.rows(Some("acme"), "SELECT line FROM logs ORDER BY timestamp"),
        [
            serde_json::json!(["day one"]),
            serde_json::json!(["day two"])
        ]
    );
    assert!(server.terminate().success());

    // Alter one log file: verify names it and fails.
    let day = data.join("objects/tenants/acme/logs/day=2023-11-14");
    // The live file: compaction's day file (the flush files it replaced
    // wait for vacuum).
    let file = std::fs::read_dir(&day)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("day-"))
        .unwrap();
    let mut bytes = std::fs::read(&file).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&file, &bytes).unwrap();
    let out = strata(&["verify", "--data-dir", d]);
    assert_eq!(out.status.code(), Some(1), "{}", out_text(&out));
    assert!(
        out_text(&out).contains("tenant=acme table=logs"),
        "{}",
        out_text(&out)
    );
    bytes[mid] ^= 0x01;
    std::fs::write(&file, &bytes).unwrap();

    // Retention of one day removes both days of acme; held keeps them.
    let config = dir.path().join("strata.toml");
    std::fs::write(
        &config,
        "[retention]\nperiod = \"1d\"\nvacuum_grace = \"1h\"\n[retention.tenants.held]\nlegal_hold = true\n",
    )
    .unwrap();
    let out = strata(&[
        "retention",
        "--config",
        config.to_str().unwrap(),
        "--data-dir",
        d,
    ]);
    assert!(out.status.success(), "{}", out_text(&out));
    let server = Server::start(&data, &[]);
    assert_eq!(
        server.rows(Some("acme"), "SELECT count(*) FROM logs"),
        [serde_json::json!([0])]
    );
    assert_eq!(
        server.rows(Some("held"), "SELECT count(*) FROM logs"),
        [serde_json::json!([2])]
    );
}
