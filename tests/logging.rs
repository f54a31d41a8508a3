//! Structured logs as an operator reads them: every request runs in a span
//! naming its id, route, method and tenant, so one tenant's requests can be
//! found among everyone's in the server's JSON log.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use crate::common;

use common::{Server, agent};

/// The request-done JSON log line containing `needle`, waiting for the
/// log to be written.
fn log_line(server: &Server, needle: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = server.log();
        if let Some(line) = log
            .lines()
            .find(|l| l.contains(needle) && l.contains("request done"))
        {
            return serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        }
        assert!(
            Instant::now() < deadline,
            "no log line with {needle}: {log}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn each_request_logs_its_id_route_and_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        &dir.path().join("data"),
        &[
            "--log-format",
            "json",
            "--log-level",
            "info,strata_server=debug",
        ],
    );
    let resp = agent()
        .get(&server.url("/api/v1/query?query=vector(1)&time=1"))
        .header("X-Scope-OrgID", "acme")
        .header("X-Request-Id", "grafana-7f3a")
        .call()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.headers()["x-request-id"], "grafana-7f3a");
    let v = log_line(&server, "grafana-7f3a");
    assert_eq!(v["message"], "request done", "{v}");
    assert_eq!(v["status"], 200, "{v}");
    let span = &v["span"];
    assert_eq!(span["id"], "grafana-7f3a", "{v}");
    assert_eq!(span["route"], "/api/v1/query", "{v}");
    assert_eq!(span["method"], "GET", "{v}");
    assert_eq!(span["tenant"], "acme", "{v}");

    // Without an id (or with one that is no sane header value) the server
    // makes one, and the log line carries it.
    let resp = agent()
        .get(&server.url("/api/v1/labels"))
        .header("X-Scope-OrgID", "beta")
        .call()
        .unwrap();
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(!id.is_empty() && id != "grafana-7f3a", "{id}");
    let v = log_line(&server, &format!("\"id\":\"{id}\""));
    assert_eq!(v["span"]["tenant"], "beta", "{v}");
    assert_eq!(v["span"]["route"], "/api/v1/labels", "{v}");
}
