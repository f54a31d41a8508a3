//! Capacity and noisy neighbours end to end, with known answers: three
//! days of PostgreSQL connections growing 2 a day towards a limit of 200
//! (exhaustion in 50 days), and a node's CPU where one namespace bursts to
//! saturate it. The same answers through the HTTP API (specs and ad hoc),
//! SQL table functions, the recorded series PromQL (and Grafana) reads,
//! and the CLI; Strata's own usage ranks its tenants; every PromQL query
//! of the Grafana dashboards in `deploy/grafana` is answered.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Server, agent, escape, payload, series};
use serde_json::Value;

pub(crate) const SPEC: &str = r#"
[[capacity]]
name = "pg-connections"
tenant = "acme"
business_process = "invoicing"
usage = 'pg_stat_activity_count'
limit = 'pg_settings_max_connections'
lookback = "3d"

[[neighbours]]
name = "node-cpu"
tenant = "acme"
resource = 'rate(container_cpu_usage_seconds_total[5m])'
by = "namespace"
window = "1h"
baseline = "1d"
capacity = 16
"#;

const MIN: i64 = 60_000;
const DAY: i64 = 1_440 * MIN;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Deterministic noise in [-1, 1].
fn noise(i: i64) -> f64 {
    let x = (i as u64)
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    ((x >> 33) as f64 / (1u64 << 31) as f64) - 1.0
}

/// Connections: 100 now, 2 more a day, ±3 of noise, one sample a minute
/// for three days; the limit, 200. CPU counters of four namespaces over 25
/// hours: 3 + 4 + 1 + 2 cores, `reports` at 8 for the last 40 minutes.
pub(crate) fn write_history(server: &Server, tenant: &str, now: i64) {
    let mut conns = Vec::new();
    let mut limit = Vec::new();
    let mut t = now - 3 * DAY;
    while t <= now {
        let days = (t - now) as f64 / DAY as f64;
        conns.push((t, (100.0 + 2.0 * days + 3.0 * noise(t / MIN)).round()));
        limit.push((t, 200.0));
        t += MIN;
    }
    let mut ts = vec![
        series(
            &[("__name__", "pg_stat_activity_count"), ("instance", "pg-1")],
            &conns,
        ),
        series(
            &[
                ("__name__", "pg_settings_max_connections"),
                ("instance", "pg-1"),
            ],
            &limit,
        ),
    ];
    for (k, (ns, cores)) in [
        ("odoo", 3.0),
        ("postgres", 4.0),
        ("redis", 1.0),
        ("reports", 2.0),
    ]
    .into_iter()
    .enumerate()
    {
        let mut c = 0.0;
        let mut points = Vec::new();
        let mut t = now - 25 * 60 * MIN;
        let mut i = 0;
        while t <= now {
            let used = if ns == "reports" && t > now - 40 * MIN {
                8.0
            } else {
                cores * (1.0 + 0.1 * noise(i * 4 + k as i64))
            };
            c += used * 60.0;
            points.push((t, c));
            t += MIN;
            i += 1;
        }
        ts.push(series(
            &[
                ("__name__", "container_cpu_usage_seconds_total"),
                ("namespace", ns),
                ("pod", &format!("{ns}-0")),
            ],
            &points,
        ));
    }
    let (status, text) = server.write(Some(tenant), &payload(ts));
    assert_eq!(status, 204, "{text}");
}

fn get(server: &Server, tenant: &str, path: &str) -> (u16, Value) {
    server.get_json(tenant, path)
}

fn cli(server: &Server, args: &[&str]) -> String {
    let url = format!("http://{}", server.addr);
    let out = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(args)
        .args(["--url", &url, "--tenant", "acme"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{args:?}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// 50 days left at 2 a day (`trend`: -2 for the free connections).
fn assert_known_forecast(f: &Value, limit: f64, trend: f64) {
    assert_eq!(f["labels"]["instance"], "pg-1", "{f}");
    assert_eq!(f["status"], "forecast", "{f}");
    assert_eq!(f["limit"], limit, "{f}");
    let days = f["seconds_left"].as_f64().unwrap() / 86_400.0;
    assert!((days - 50.0).abs() < 3.0, "{days} days: {f}");
    let got = f["trend_per_day"].as_f64().unwrap();
    assert!((got - trend).abs() < 0.15, "{f}");
    let (e, x, l) = (
        f["earliest_ms"].as_i64().unwrap(),
        f["exhaustion_ms"].as_i64().unwrap(),
        f["latest_ms"].as_i64().unwrap(),
    );
    assert!(e < x && x < l, "{f}");
}

#[test]
fn capacity_and_neighbours_find_the_injected_answers_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("analytics.toml");
    std::fs::write(&spec, SPEC).unwrap();
    let server = Server::start(
        &dir.path().join("data"),
        &[
            "--slo-file",
            spec.to_str().unwrap(),
            "--slo-evaluation-interval",
            "1s",
        ],
    );
    let now = now_ms() / MIN * MIN;
    write_history(&server, "acme", now);

    // The specs, through the API.
    let (status, v) = get(&server, "acme", "/api/v1/capacity");
    assert_eq!(status, 200, "{v}");
    let forecasts = v["data"].as_array().unwrap();
    assert_eq!(forecasts.len(), 1, "{v}");
    assert_eq!(forecasts[0]["rank"], 1);
    assert_eq!(forecasts[0]["business_process"], "invoicing");
    assert_known_forecast(&forecasts[0], 200.0, 2.0);
    assert!(
        forecasts[0].get("chart").is_none(),
        "no chart unless asked: {v}"
    );

    let (status, v) = get(&server, "acme", "/api/v1/neighbours/node-cpu?series=true");
    assert_eq!(status, 200, "{v}");
    let report = &v["data"][0];
    assert_eq!(report["contention"], true, "{report}");
    let top = &report["workloads"][0];
    assert_eq!(top["workload"], "reports", "{report}");
    assert!(top["blame"].as_f64().unwrap() > 0.9, "{top}");
    assert!(
        (top["baseline_share"].as_f64().unwrap() - 0.2).abs() < 0.03,
        "{top}"
    );
    assert!(top["ratio"].as_f64().unwrap() > 2.0, "{top}");
    assert!(!top["share_series"].as_array().unwrap().is_empty(), "{top}");
    for w in report["workloads"].as_array().unwrap().iter().skip(1) {
        assert!(w["blame"].as_f64().unwrap() < 0.05, "{w}");
    }

    // Ad hoc: a fixed limit, and a falling gauge.
    let (status, v) = get(
        &server,
        "acme",
        &format!(
            "/api/v1/capacity?usage={}&limit=200&lookback=3d",
            escape("max by (instance) (pg_stat_activity_count)")
        ),
    );
    assert_eq!(status, 200, "{v}");
    assert_known_forecast(&v["data"][0], 200.0, 2.0);
    let (status, v) = get(
        &server,
        "acme",
        &format!(
            "/api/v1/capacity?usage={}&limit=0&lookback=3d&direction=down",
            escape("200 - pg_stat_activity_count")
        ),
    );
    assert_eq!(status, 200, "{v}");
    assert_known_forecast(&v["data"][0], 0.0, -2.0);

    // Bad input is a 400 naming what was wrong; unknown names are 404s.
    for (path, want) in [
        ("/api/v1/capacity?usage=rate(x&limit=1", "does not parse"),
        ("/api/v1/capacity?usage=x", "limit"),
        ("/api/v1/capacity?usage=x&limit=1&model=arima", "model"),
        ("/api/v1/neighbours?resource=x", "by"),
        ("/api/v1/neighbours?resource=x&by=ns&window=1m", "two steps"),
    ] {
        let (status, v) = get(&server, "acme", path);
        assert_eq!(status, 400, "{path}: {v}");
        assert!(v["error"].as_str().unwrap().contains(want), "{path}: {v}");
    }
    assert_eq!(get(&server, "acme", "/api/v1/capacity/nope").0, 404);
    assert_eq!(get(&server, "acme", "/api/v1/neighbours/nope").0, 404);
    // Another tenant has no specs and sees none of acme's.
    let (status, v) = get(&server, "other", "/api/v1/capacity");
    assert_eq!((status, &v["data"]), (200, &serde_json::json!([])));

    // SQL table functions: the specs and ad hoc.
    let rows = server.rows(
        Some("acme"),
        "SELECT name, labels, status, round(days_left) FROM capacity()",
    );
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0][0], "pg-connections");
    assert_eq!(rows[0][1], "{instance=\"pg-1\"}");
    assert_eq!(rows[0][2], "forecast");
    assert!(
        (rows[0][3].as_f64().unwrap() - 50.0).abs() <= 3.0,
        "{rows:?}"
    );
    let rows = server.rows(
        Some("acme"),
        "SELECT days_left FROM capacity('pg_stat_activity_count', 200, '3d', 'linear')",
    );
    assert!(
        (rows[0][0].as_f64().unwrap() - 50.0).abs() < 3.0,
        "{rows:?}"
    );
    let rows = server.rows(
        Some("acme"),
        "SELECT workload, rank, blame > 0.9 FROM neighbours() ORDER BY rank LIMIT 1",
    );
    assert_eq!(rows, vec![serde_json::json!(["reports", 1, true])]);
    let rows = server.rows(
        Some("acme"),
        "SELECT workload FROM neighbours('rate(container_cpu_usage_seconds_total[5m])', 'namespace', '1h', '1d', 16) WHERE rank = 1",
    );
    assert_eq!(rows, vec![serde_json::json!(["reports"])]);
    let (status, v) = server.sql(Some("acme"), "SELECT * FROM capacity('x')");
    assert_eq!(status, 400, "{v}");
    assert!(v.to_string().contains("capacity() takes"), "{v}");

    // The background evaluation records series PromQL reads.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (left, blame) = loop {
        let q = |e: &str| {
            get(
                &server,
                "acme",
                &format!("/api/v1/query?query={}", escape(e)),
            )
            .1
        };
        let left = q(
            "strata_capacity_seconds_left{capacity=\"pg-connections\", bound=\"estimate\"} / 86400",
        );
        let blame = q("strata_neighbour_blame{neighbours=\"node-cpu\", workload=\"reports\"}");
        if !left["data"]["result"].as_array().unwrap().is_empty()
            && !blame["data"]["result"].as_array().unwrap().is_empty()
        {
            break (left, blame);
        }
        assert!(Instant::now() < deadline, "not recorded: {left} {blame}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let days: f64 = left["data"]["result"][0]["value"][1]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((days - 50.0).abs() < 3.0, "{left}");
    let blamed: f64 = blame["data"]["result"][0]["value"][1]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(blamed > 0.9, "{blame}");

    // The CLI.
    let text = cli(&server, &["capacity"]);
    assert!(
        text.contains("pg-connections")
            && text.contains("instance=pg-1")
            && text.contains("forecast"),
        "{text}"
    );
    let text = cli(&server, &["neighbours", "node-cpu"]);
    let first = text.lines().nth(2).unwrap_or_default();
    assert!(text.contains("contention in"), "{text}");
    assert!(
        first.starts_with("1") && first.contains("reports"),
        "{text}"
    );

    // Strata's own usage: acme holds more active series than `small`.
    let (status, text) = server.write(
        Some("small"),
        &payload(vec![series(&[("__name__", "up")], &[(now, 1.0)])]),
    );
    assert_eq!(status, 204, "{text}");
    std::thread::sleep(Duration::from_secs(3));
    let (status, v) = get(
        &server,
        "anyone",
        &format!(
            "/api/v1/neighbours/usage?resource=active_series&time={}",
            now_ms() / 1_000 + 60
        ),
    );
    assert_eq!(status, 200, "{v}");
    let workloads = v["data"][0]["workloads"].as_array().unwrap();
    let names: Vec<&str> = workloads
        .iter()
        .map(|w| w["workload"].as_str().unwrap())
        .collect();
    assert_eq!(names.first(), Some(&"acme"), "{v}");
    assert!(names.contains(&"small"), "{v}");
    let (status, v) = get(&server, "anyone", "/api/v1/neighbours/usage?resource=cpu");
    assert_eq!(status, 400, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("query_seconds"),
        "{v}"
    );

    // Every PromQL query of the dashboards is answered.
    for name in ["slo", "capacity", "neighbours"] {
        let path = format!(
            "{}/deploy/grafana/strata-{name}.json",
            concat!(env!("CARGO_MANIFEST_DIR"), "/../..")
        );
        let dashboard: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let mut exprs = Vec::new();
        for p in dashboard["panels"].as_array().unwrap() {
            for t in p["targets"].as_array().unwrap() {
                exprs.push(t["expr"].as_str().unwrap().to_owned());
            }
        }
        for v in dashboard["templating"]["list"].as_array().unwrap() {
            if let Some(q) = v["query"]["query"].as_str() {
                let inner = q
                    .trim_start_matches("label_values(")
                    .rsplit_once(',')
                    .map(|(sel, _)| sel.to_owned())
                    .unwrap();
                exprs.push(inner);
            }
        }
        assert!(!exprs.is_empty(), "{path}");
        for e in exprs {
            let e = e
                .replace("$process", ".*")
                .replace("$slo", ".*")
                .replace("$capacity", ".*")
                .replace("$neighbours", ".*");
            let (status, v) = get(
                &server,
                "acme",
                &format!("/api/v1/query?query={}", escape(&e)),
            );
            assert_eq!(status, 200, "{name}: {e}: {v}");
        }
    }
}

fn send(server: &Server, method: &str, tenant: &str, path: &str, body: &str) -> (u16, Value) {
    let req = ureq::http::Request::builder()
        .method(method)
        .uri(server.url(path))
        .header("X-Scope-OrgID", tenant)
        .header("Content-Type", "application/json")
        .body(body.to_owned())
        .unwrap();
    let mut resp = agent().run(req).unwrap();
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[test]
fn specs_are_managed_through_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("analytics.toml");
    std::fs::write(
        &spec,
        "# Owned by the platform team.\n[[neighbours]]\nname = \"cpu\" # the node's\ntenant = \"acme\"\nresource = 'rate(container_cpu_usage_seconds_total[5m])'\nby = \"namespace\"\n",
    )
    .unwrap();
    let server = Server::start(
        &dir.path().join("data"),
        &["--slo-file", spec.to_str().unwrap()],
    );
    let slo = r#"{"business_process": "picking", "objective": 0.99, "window": "28d",
        "good": "sum(rate(http_requests_total{code!~\"5..\"}[$window]))",
        "total": "sum(rate(http_requests_total[$window]))"}"#;
    let (status, v) = send(&server, "PUT", "acme", "/api/v1/specs/slo/picking", slo);
    assert_eq!(status, 201, "{v}");
    let (status, v) = send(&server, "PUT", "acme", "/api/v1/specs/slo/picking", slo);
    assert_eq!(
        (status, &v["data"]["replaced"]),
        (200, &Value::Bool(true)),
        "{v}"
    );
    let (status, v) = send(
        &server,
        "PUT",
        "acme",
        "/api/v1/specs/capacity/disk",
        r#"{"usage": "node_filesystem_avail_bytes", "limit": 0, "direction": "down"}"#,
    );
    assert_eq!(status, 201, "{v}");

    // It is evaluated at once, for its tenant only.
    let (status, v) = get(&server, "acme", "/api/v1/slo/picking");
    assert_eq!(status, 200, "{v}");
    assert_eq!(get(&server, "other", "/api/v1/slo/picking").0, 404);
    let (status, v) = get(&server, "acme", "/api/v1/specs");
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"]["slo"][0]["name"], "picking");
    assert_eq!(v["data"]["slo"][0]["objective"], 0.99);
    assert_eq!(v["data"]["capacity"][0]["direction"], "down");
    let (_, v) = get(&server, "other", "/api/v1/specs");
    assert_eq!(v["data"]["slo"], serde_json::json!([]));

    // A bad entry is refused whole, naming the problem; the file is as it was.
    let before = std::fs::read_to_string(&spec).unwrap();
    for (path, body, want) in [
        (
            "/api/v1/specs/slo/bad",
            r#"{"objective": 99.5, "good": "x[$window]", "total": "y[$window]"}"#,
            "between 0 and 1",
        ),
        (
            "/api/v1/specs/slo/bad",
            r#"{"objective": 0.9, "bogus": 1}"#,
            "bogus",
        ),
        (
            "/api/v1/specs/capacity/bad",
            r#"{"usage": "rate(", "limit": 1}"#,
            "does not parse",
        ),
        (
            "/api/v1/specs/slo/picking",
            r#"{"tenant": "other"}"#,
            "must match",
        ),
        ("/api/v1/specs/slo/bad", "[1]", "JSON object"),
    ] {
        let (status, v) = send(&server, "PUT", "acme", path, body);
        assert_eq!(status, 400, "{body}: {v}");
        assert!(v["error"].as_str().unwrap().contains(want), "{body}: {v}");
    }
    assert_eq!(
        send(&server, "PUT", "acme", "/api/v1/specs/alerts/x", "{}").0,
        404
    );
    assert_eq!(std::fs::read_to_string(&spec).unwrap(), before);

    // Deleting; the file keeps its comment.
    let (status, v) = send(&server, "DELETE", "acme", "/api/v1/specs/slo/picking", "");
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        send(&server, "DELETE", "acme", "/api/v1/specs/slo/picking", "").0,
        404
    );
    assert_eq!(get(&server, "acme", "/api/v1/slo/picking").0, 404);
    let text = std::fs::read_to_string(&spec).unwrap();
    assert!(text.starts_with("# Owned by the platform team."), "{text}");
    assert!(text.contains("name = \"cpu\" # the node's"), "{text}");
    assert!(text.contains("name = \"disk\""), "{text}");
}
