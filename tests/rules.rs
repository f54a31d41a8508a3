//! The ruler end to end: the real binary evaluates a tenant's rule files,
//! records through the write path, sends alerts to Debian's Alertmanager
//! (which sees them fire and resolve), answers `/api/v1/rules` and
//! `/api/v1/alerts` as Prometheus does, keeps rules and data per tenant,
//! and keeps an alert's pending time across a kill -9.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{self, Server, agent, payload, series};

const RULES: &str = r#"groups:
  - name: odoo
    interval: 1s
    rules:
      - record: service:odoo_errors:sum
        expr: sum by (service) (odoo_errors)
      - alert: OdooErrors
        expr: service:odoo_errors:sum > 0
        labels:
          severity: page
        annotations:
          summary: "{{ $labels.service }} has {{ $value }} errors"
"#;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn write_errors(server: &Server, tenant: &str, picking: f64) {
    let t = now_ms();
    let body = payload(vec![
        series(
            &[("__name__", "odoo_errors"), ("service", "picking")],
            &[(t, picking)],
        ),
        series(
            &[("__name__", "odoo_errors"), ("service", "invoicing")],
            &[(t, 0.0)],
        ),
    ]);
    let (status, text) = server.write(Some(tenant), &body);
    assert_eq!(status, 204, "{text}");
}

/// Polls `f` until it gives `Some`, for at most `secs`.
fn wait<T>(secs: u64, what: &str, server: &Server, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}\n{}", server.log());
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn alertmanager_alerts(url: &str) -> Value {
    agent()
        .get(&format!("{url}/api/v2/alerts"))
        .call()
        .ok()
        .and_then(|mut r| r.body_mut().read_to_string().ok())
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null)
}

#[test]
fn rules_record_fire_reach_alertmanager_and_resolve_per_tenant() {
    if !common::clients_ready(&["prometheus-alertmanager", "promtool"], "") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(rules.join("acme")).unwrap();
    let file = rules.join("acme").join("odoo.yaml");
    std::fs::write(&file, RULES).unwrap();
    // The file is one promtool accepts.
    let check = Command::new("promtool")
        .args(["check", "rules", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(check.status.success(), "{check:?}");

    let (mut am, am_url) = common::alertmanager(dir.path());
    let config = dir.path().join("strata.toml");
    std::fs::write(
        &config,
        format!(
            "[rules]\ndirectory = {:?}\npoll_interval = \"200ms\"\nalertmanager_urls = [{am_url:?}]\nexternal_labels = {{ cluster = \"eu-1\" }}\n",
            rules.display()
        ),
    )
    .unwrap();
    let server = Server::start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    write_errors(&server, "acme", 3.0);
    write_errors(&server, "other", 5.0);

    // Firing in the API, in Prometheus' shape.
    let rules_api = |tenant: &str| server.get_json(tenant, "/api/v1/rules").1;
    let group = wait(30, "the alert never fired", &server, || {
        let v = rules_api("acme");
        let g = v["data"]["groups"][0].clone();
        (g["rules"][1]["state"] == "firing").then_some(g)
    });
    assert_eq!(group["name"], "odoo");
    assert_eq!(group["file"], "odoo");
    assert_eq!(group["interval"], 1);
    let record = &group["rules"][0];
    assert_eq!(record["type"], "recording");
    assert_eq!(record["name"], "service:odoo_errors:sum");
    assert_eq!(record["health"], "ok");
    let alert_rule = &group["rules"][1];
    assert_eq!(alert_rule["type"], "alerting");
    assert_eq!(alert_rule["query"], "service:odoo_errors:sum > 0");
    assert_eq!(alert_rule["duration"], 0);
    let alerts = alert_rule["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 1, "{alert_rule}");
    assert_eq!(alerts[0]["labels"]["service"], "picking");
    assert_eq!(alerts[0]["labels"]["alertname"], "OdooErrors");
    assert_eq!(alerts[0]["annotations"]["summary"], "picking has 3 errors");
    assert_eq!(alerts[0]["value"], "3e+00");
    let (_, v) = server.get_json("acme", "/api/v1/alerts");
    assert_eq!(v["data"]["alerts"][0]["state"], "firing", "{v}");
    // Filters.
    let (_, v) = server.get_json("acme", "/api/v1/rules?type=record");
    assert_eq!(v["data"]["groups"][0]["rules"].as_array().unwrap().len(), 1);
    let (status, _) = server.get_json("acme", "/api/v1/rules?type=bogus");
    assert_eq!(status, 400);

    // The recorded series and ALERTS are the tenant's series.
    let (_, v) = server.get_json("acme", "/api/v1/query?query=service:odoo_errors:sum");
    assert_eq!(v["data"]["result"].as_array().unwrap().len(), 2, "{v}");
    // (Not at the first evaluation after a start: that one restores
    // pending times, as Prometheus' does.)
    wait(30, "no ALERTS series", &server, || {
        let (_, v) = server.get_json("acme", "/api/v1/query?query=ALERTS");
        (v["data"]["result"][0]["metric"]["alertstate"] == "firing").then_some(())
    });

    // Another tenant has no rules, and never sees the first one's output.
    let v = rules_api("other");
    assert_eq!(v["data"]["groups"], serde_json::json!([]), "{v}");
    let (_, v) = server.get_json("other", "/api/v1/query?query=service:odoo_errors:sum");
    assert_eq!(v["data"]["result"], serde_json::json!([]), "{v}");

    // Alertmanager has it, with the external labels.
    let hit = wait(30, "no alert in Alertmanager", &server, || {
        let all = alertmanager_alerts(&am_url);
        all.as_array()
            .into_iter()
            .flatten()
            .find(|a| a["labels"]["alertname"] == "OdooErrors")
            .cloned()
    });
    assert_eq!(hit["labels"]["service"], "picking");
    assert_eq!(hit["labels"]["severity"], "page");
    assert_eq!(hit["labels"]["cluster"], "eu-1");
    assert_eq!(hit["annotations"]["summary"], "picking has 3 errors");
    assert!(
        hit["generatorURL"]
            .as_str()
            .unwrap()
            .contains("/graph?g0.expr="),
        "{hit}"
    );

    // The errors stop: the alert resolves, in Strata and in Alertmanager.
    write_errors(&server, "acme", 0.0);
    wait(30, "the alert never resolved in Strata", &server, || {
        let (_, v) = server.get_json("acme", "/api/v1/alerts");
        v["data"]["alerts"]
            .as_array()
            .is_some_and(Vec::is_empty)
            .then_some(())
    });
    wait(
        30,
        "the alert never resolved in Alertmanager",
        &server,
        || {
            let all = alertmanager_alerts(&am_url);
            all.as_array()
                .is_some_and(|a| a.iter().all(|a| a["labels"]["alertname"] != "OdooErrors"))
                .then_some(())
        },
    );

    // A broken file keeps the groups it had; a fixed one is read again.
    std::fs::write(
        &file,
        "groups: [ {name: odoo, rules: [ {record: 'up{job=\"a\"}', expr: up} ] } ]",
    )
    .unwrap();
    wait(30, "the broken file was not counted", &server, || {
        server
            .get("/metrics")
            .1
            .contains("strata_rule_file_errors_total{tenant=\"acme\"}")
            .then_some(())
    });
    let v = rules_api("acme");
    assert_eq!(v["data"]["groups"][0]["name"], "odoo", "{v}");
    std::fs::write(&file, RULES.replace("name: odoo", "name: odoo-v2")).unwrap();
    wait(30, "the fixed file was not read", &server, || {
        let v = rules_api("acme");
        (v["data"]["groups"][0]["name"] == "odoo-v2").then_some(())
    });

    // A group posted through the ruler API (as mimirtool does) is
    // evaluated at once, beside the directory's.
    let (status, body) = server.post_body(
        "acme",
        "/prometheus/config/v1/rules/wms",
        "application/yaml",
        "name: wms\ninterval: 1s\nrules:\n  - record: wms:odoo_errors:max\n    expr: max(odoo_errors)\n"
            .as_bytes(),
    );
    assert_eq!(status, 202, "{body}");
    wait(30, "the posted group was not evaluated", &server, || {
        let (_, v) = server.get_json("acme", "/api/v1/query?query=wms:odoo_errors:max");
        (v["data"]["result"].as_array().is_some_and(|r| r.len() == 1)).then_some(())
    });
    let v = rules_api("acme");
    let names: Vec<&str> = v["data"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["odoo-v2", "wms"], "{v}");
    let _ = am.kill();
    let _ = am.wait();
}

#[test]
fn a_kill_in_the_middle_of_for_keeps_the_time_already_pending() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(rules.join("acme")).unwrap();
    std::fs::write(
        rules.join("acme").join("heartbeat.yaml"),
        "groups:\n  - name: heartbeat\n    interval: 1s\n    rules:\n      - alert: OdooHeartbeatMissing\n        expr: absent(odoo_heartbeat)\n        for: 1h\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let args = ["--rules-dir", rules.to_str().unwrap()];
    let active_at = |server: &Server| -> Option<f64> {
        let (_, v) = server.get_json("acme", "/api/v1/alerts");
        let a = v["data"]["alerts"].get(0)?;
        assert_eq!(a["state"], "pending", "{v}");
        let t = chrono::DateTime::parse_from_rfc3339(a["activeAt"].as_str()?).ok()?;
        Some(t.timestamp_millis() as f64 / 1e3)
    };
    let server = Server::start(&data, &args);
    let first = wait(30, "never pending", &server, || active_at(&server));
    std::thread::sleep(Duration::from_secs(5));
    server.kill();
    std::thread::sleep(Duration::from_secs(1));
    let server = Server::start(&data, &args);
    let ready = now_ms() as f64 / 1e3;
    let restored = wait(30, "not pending after the restart", &server, || {
        active_at(&server)
    });
    // Pending about 5 s before the kill: those seconds still count (the
    // time down does not), so it became active well before the restart.
    assert!(restored >= first, "{restored} < {first}");
    assert!(
        restored <= ready - 2.0,
        "pending time lost: active at {restored}, restarted at {ready}\n{}",
        server.log()
    );
}
