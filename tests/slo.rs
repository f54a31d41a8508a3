//! SLOs end to end: a spec file, request counters written through remote
//! write with an injected burn, and `GET /api/v1/slo` answering the burn
//! rates and alert states the SRE workbook's maths gives; a broken spec
//! file refuses to start.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::process::Command;

use common::{Server, agent, payload, series};
use serde_json::Value;

pub(crate) const SPEC: &str = r#"
[[slo]]
name = "requests"
business_process = "picking"
objective = 0.99
window = "28d"
good = 'sum by (route) (rate(http_requests_total{code!~"5.."}[$window]))'
total = 'sum by (route) (rate(http_requests_total[$window]))'
"#;

/// Two hours of counters, one sample a minute ending now: `/pick` fails
/// 0.1% of 1000 requests a minute, then half of them for the last 50
/// minutes; `/invoice` never fails.
pub(crate) fn write_counters(server: &Server, tenant: &str) {
    let now = chrono_now_ms() / 60_000 * 60_000;
    let (mut ok, mut err, mut inv) = (Vec::new(), Vec::new(), Vec::new());
    let (mut o, mut e, mut i) = (0.0, 0.0, 0.0);
    for m in (0..=120).rev() {
        let t = now - m * 60_000;
        let share = if m < 50 { 0.5 } else { 0.001 };
        e += 1000.0 * share;
        o += 1000.0 * (1.0 - share);
        i += 500.0;
        ok.push((t, o));
        err.push((t, e));
        inv.push((t, i));
    }
    let body = payload(vec![
        series(
            &[
                ("__name__", "http_requests_total"),
                ("code", "200"),
                ("route", "/pick"),
            ],
            &ok,
        ),
        series(
            &[
                ("__name__", "http_requests_total"),
                ("code", "500"),
                ("route", "/pick"),
            ],
            &err,
        ),
        series(
            &[
                ("__name__", "http_requests_total"),
                ("code", "200"),
                ("route", "/invoice"),
            ],
            &inv,
        ),
    ]);
    let (status, text) = server.write(Some(tenant), &body);
    assert_eq!(status, 204, "{text}");
}

fn chrono_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn slo(server: &Server, tenant: &str, path: &str) -> (u16, Value) {
    server.get_json(tenant, path)
}

#[test]
fn an_injected_burn_pages_and_a_clean_route_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("slo.toml");
    std::fs::write(
        &spec,
        SPEC.replace("\n[[slo]]", "\n[[slo]]\ntenant = \"acme\""),
    )
    .unwrap();
    let server = Server::start(
        &dir.path().join("data"),
        &["--slo-file", spec.to_str().unwrap()],
    );
    write_counters(&server, "acme");

    let (status, v) = slo(&server, "acme", "/api/v1/slo");
    assert_eq!(status, 200, "{v}");
    let rows = v["data"].as_array().unwrap();
    let by_route = |r: &str| {
        rows.iter()
            .find(|s| s["labels"]["route"] == r)
            .unwrap()
            .clone()
    };
    let pick = by_route("/pick");
    assert_eq!(pick["business_process"], "picking");
    let burn_5m = pick["burn_rates"]["5m"].as_f64().unwrap();
    assert!((burn_5m - 50.0).abs() < 2.5, "{pick}");
    let burn_1h = pick["burn_rates"]["1h"].as_f64().unwrap();
    assert!((burn_1h - 41.7).abs() < 2.5, "{pick}");
    let page = &pick["alerts"][0];
    assert_eq!(
        (page["severity"].as_str(), page["long_window"].as_str()),
        (Some("page"), Some("1h"))
    );
    assert_eq!(page["firing"], true, "{pick}");
    assert!(
        pick["error_budget_remaining"].as_f64().unwrap() < 0.0,
        "overspent: {pick}"
    );

    let invoice = by_route("/invoice");
    assert_eq!(invoice["sli"], 1.0);
    assert!(
        invoice["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["firing"] == false)
    );

    // One SLO by name; another tenant has none.
    let (status, v) = slo(&server, "acme", "/api/v1/slo/requests");
    assert_eq!(status, 200);
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    let (status, _) = slo(&server, "acme", "/api/v1/slo/nope");
    assert_eq!(status, 404);
    let (status, v) = slo(&server, "other", "/api/v1/slo");
    assert_eq!(status, 200);
    assert_eq!(v["data"], serde_json::json!([]));

    // The CLI prints the same.
    let out = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args([
            "slo",
            "--url",
            &format!("http://{}", server.addr),
            "--tenant",
            "acme",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("requests") && text.contains("/pick") && text.contains("page 1h"),
        "{text}"
    );
}

#[test]
fn a_broken_spec_file_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("slo.toml");
    std::fs::write(
        &spec,
        "[[slo]]\nname = \"x\"\nobjective = 99.5\ngood = 'a[$window]'\ntotal = 'b[$window]'\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args([
            "serve",
            "--data-dir",
            dir.path().join("d").to_str().unwrap(),
            "--slo-file",
            spec.to_str().unwrap(),
        ])
        .env("STRATA_PG_LISTEN", "off")
        .env("STRATA_FLIGHT_LISTEN", "off")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("between 0 and 1"), "{err}");
}

/// A real Alertmanager (Debian's prometheus-alertmanager) receives the
/// firing burn-rate alerts.
#[test]
fn firing_burn_rate_alerts_reach_alertmanager() {
    if !common::clients_ready(&["prometheus-alertmanager"], "") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (mut am, am_url) = common::alertmanager(dir.path());
    let spec = dir.path().join("slo.toml");
    std::fs::write(
        &spec,
        SPEC.replace("\n[[slo]]", "\n[[slo]]\ntenant = \"acme\""),
    )
    .unwrap();
    let server = Server::start(
        &dir.path().join("data"),
        &[
            "--slo-file",
            spec.to_str().unwrap(),
            "--alertmanager-url",
            &am_url,
            "--slo-evaluation-interval",
            "1s",
        ],
    );
    write_counters(&server, "acme");

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let found = loop {
        let alerts: Value = agent()
            .get(&format!("{am_url}/api/v2/alerts"))
            .call()
            .ok()
            .and_then(|mut r| r.body_mut().read_to_string().ok())
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(Value::Null);
        let hit = alerts.as_array().into_iter().flatten().find(|a| {
            let l = &a["labels"];
            l["alertname"] == "SLOErrorBudgetBurn"
                && l["slo"] == "requests"
                && l["route"] == "/pick"
                && l["severity"] == "page"
                && l["long_window"] == "1h"
        });
        if let Some(a) = hit {
            break a.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no alert in Alertmanager: {alerts}\n{}",
            server.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(250));
    };
    assert_eq!(found["labels"]["tenant"], "acme");
    assert_eq!(found["labels"]["business_process"], "picking");
    assert!(
        found["annotations"]["description"]
            .as_str()
            .unwrap()
            .contains("over 1h"),
        "{found}"
    );
    // The clean route never fires.
    let alerts: Value = serde_json::from_str(
        &agent()
            .get(&format!("{am_url}/api/v2/alerts"))
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap(),
    )
    .unwrap();
    assert!(
        alerts
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["labels"]["route"] != "/invoice")
    );

    // The results are recorded as the tenant's series: PromQL sees them.
    let promql = |q: &str| -> Value {
        let mut resp = agent()
            .get(&server.url("/api/v1/query"))
            .header("X-Scope-OrgID", "acme")
            .query("query", q)
            .call()
            .unwrap();
        serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap()
    };
    let v = promql(r#"strata_slo_burn_rate{slo="requests", route="/pick", window="1h"}"#);
    let burn: f64 = v["data"]["result"][0]["value"][1]
        .as_str()
        .unwrap_or("NaN")
        .parse()
        .unwrap();
    assert!((burn - 41.7).abs() < 2.5, "{v}");
    let v = promql(
        r#"strata_slo_alert_firing{slo="requests", route="/pick", severity="page", long_window="1h"}"#,
    );
    assert_eq!(v["data"]["result"][0]["value"][1], "1", "{v}");
    let _ = am.kill();
    let _ = am.wait();
}

#[test]
fn a_sql_sli_over_access_logs_burns_the_budget() {
    // Traefik access logs of the last 50 minutes, one line every 3 s:
    // 1000 requests, one in ten a 502. The SLI (non-5xx lines / all
    // lines) over any window inside those 50 minutes is 0.9: against a
    // 99% objective, a burn rate of 10.
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("slo.toml");
    std::fs::write(
        &spec,
        r#"
[[slo]]
name = "dispatch-api"
tenant = "acme"
business_process = "dispatch"
objective = 0.99
good_sql = "SELECT count(*) FROM logs WHERE labels['job'] = 'traefik' AND line NOT LIKE '%\" 5__ %' AND timestamp >= $start AND timestamp < $end"
total_sql = "SELECT count(*) FROM logs WHERE labels['job'] = 'traefik' AND timestamp >= $start AND timestamp < $end"
"#,
    )
    .unwrap();
    let server = Server::start(
        &dir.path().join("data"),
        &["--slo-file", spec.to_str().unwrap()],
    );
    let now_ns = chrono_now_ms() * 1_000_000;
    let values: Vec<Value> = (0..1000i64)
        .map(|i| {
            let status = if i % 10 == 0 { 502 } else { 200 };
            serde_json::json!([
                (now_ns - (i + 1) * 3_000_000_000).to_string(),
                format!(
                    "10.0.0.{} - - \"POST /dispatch HTTP/1.1\" {status} 512 \"-\" 12ms",
                    i % 250
                )
            ])
        })
        .collect();
    let body = serde_json::json!({"streams": [{"stream": {"job": "traefik"}, "values": values}]});
    let mut resp = agent()
        .post(&server.url("/loki/api/v1/push"))
        .header("X-Scope-OrgID", "acme")
        .header("Content-Type", "application/json")
        .send(body.to_string())
        .unwrap();
    assert_eq!(
        resp.status().as_u16(),
        204,
        "{}",
        resp.body_mut().read_to_string().unwrap()
    );

    let (status, v) = slo(&server, "acme", "/api/v1/slo/dispatch-api");
    assert_eq!(status, 200, "{v}");
    let s = &v["data"][0];
    assert_eq!(s["business_process"], "dispatch");
    let sli = s["sli"].as_f64().unwrap();
    assert!((sli - 0.9).abs() < 1e-9, "{s}");
    let burn_1h = s["burn_rates"]["1h"].as_f64().unwrap();
    assert!((burn_1h - 10.0).abs() < 1e-6, "{s}");
    // 1h and 5m burn at 10 (< 13.44): no page; 6h and 30m at 10 (> 5.6):
    // the slow page fires.
    let firing: Vec<&str> = s["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["firing"] == true)
        .map(|a| a["long_window"].as_str().unwrap())
        .collect();
    assert!(firing.contains(&"6h"), "{s}");
    assert!(!firing.contains(&"1h"), "{s}");
    // The same through SQL.
    let rows = server.rows(Some("acme"), "SELECT name, round(sli * 100) FROM slo()");
    assert_eq!(rows, vec![serde_json::json!(["dispatch-api", 90.0])]);
}
