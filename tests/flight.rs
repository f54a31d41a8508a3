//! Arrow Flight SQL with a real client: the ADBC Flight SQL driver from
//! Python (statements, a prepared statement with a bound parameter,
//! catalog metadata, server info), tenants by header, tokens by handshake.
//!
//! Needs python3 with adbc-driver-flightsql (`scripts/test` installs it);
//! skipped without it unless `STRATA_E2E_REQUIRE_PYTHON=1`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::process::Command;

use common::{Server, clients_ready, load_http_requests, payload, series};

fn client(server: &Server, tenant: &str, token: Option<&str>) -> std::process::Output {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/interop/flight_client.py"
    );
    let uri = format!("grpc://127.0.0.1:{}", server.flight_port);
    let mut cmd = Command::new("python3");
    cmd.args([script, &uri, tenant]);
    if let Some(t) = token {
        cmd.arg(t);
    }
    cmd.output().unwrap()
}

#[test]
fn adbc_runs_statements_and_reads_metadata() {
    if !clients_ready(&[], "adbc_driver_flightsql.dbapi, pyarrow") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);
    load_http_requests(&server, "acme");
    assert_eq!(server.post("/api/v1/admin/flush").unwrap().0, 200);
    load_http_requests(&server, "other");
    let out = client(&server, "acme", None);
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["columns"], serde_json::json!(["job", "n", "top"]));
    assert_eq!(
        v["rows"],
        serde_json::json!([{"job": "api", "n": 20, "top": 9.0}, {"job": "db", "n": 10, "top": 9.0}])
    );
    assert_eq!(v["bound"], 10);
    assert_eq!(v["timestamp_type"], "timestamp[us, tz=UTC]");
    assert!(
        v["error"].as_str().unwrap().contains("no_such_metric"),
        "{v}"
    );
    assert_eq!(
        v["tables"],
        serde_json::json!([
            "metrics.http_requests_total",
            "public.histograms",
            "public.http_requests_total",
            "public.logs",
            "public.samples",
            "public.series"
        ])
    );
    assert_eq!(
        v["schema"],
        serde_json::json!(["code", "job", "timestamp", "value"])
    );
    assert_eq!(v["vendor"], "Strata");
    assert_eq!(v["bearings"][0], "acme", "{v}");
    assert!(
        v["bearings"][1].as_str().is_some_and(|s| !s.is_empty()),
        "{v}"
    );
}

#[test]
fn flight_sql_tokens_by_handshake() {
    if !clients_ready(&[], "adbc_driver_flightsql.dbapi, pyarrow") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.toml");
    // "grafana:" and this token make 19 bytes: the Go driver's Basic
    // credentials then come without base64 padding.
    std::fs::write(
        &tokens,
        format!(
            "[[token]]\nname = \"acme\"\nsha256 = \"{}\"\ntenant = \"acme\"\nroles = [\"read\", \"write\"]\n",
            strata_server::auth::token_digest("acme-token1")
        ),
    )
    .unwrap();
    let server = Server::start(
        &dir.path().join("data"),
        &["--auth-tokens-file", tokens.to_str().unwrap()],
    );
    // Writes need the token too.
    let body = payload(vec![series(
        &[
            ("__name__", "http_requests_total"),
            ("code", "200"),
            ("job", "db"),
        ],
        &[(1_793_491_200_000, 1.0)],
    )]);
    let status = common::agent()
        .post(&server.url("/api/v1/write"))
        .header("Content-Type", "application/x-protobuf")
        .header("Content-Encoding", "snappy")
        .header("Authorization", "Bearer acme-token1")
        .send(&body[..])
        .unwrap()
        .status()
        .as_u16();
    assert_eq!(status, 204);
    let out = client(&server, "acme", Some("acme-token1"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["bound"], 1);
    let out = client(&server, "acme", Some("wrong-token"));
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("invalid token"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
