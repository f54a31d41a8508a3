//! The rule engine against Prometheus' own: a real-world rule file
//! (Traefik, Odoo, PostgreSQL, Redis) is evaluated here over synthetic
//! series, minute by minute as `promtool test rules` evaluates it; what
//! Strata recorded, its `ALERTS`/`ALERTS_FOR_STATE` series and its firing
//! alerts (labels and expanded annotations) become the expectations of a
//! promtool unit test over the same series and rules, which Prometheus'
//! engine then checks. promtool passing means Prometheus computes the same
//! series and alerts at the same evaluations.
//!
//! promtool is Prometheus 2.42's: its range windows include a sample on the
//! window's left edge, Prometheus 3's (and Strata's) do not. The rules'
//! windows are 4m30s over samples a minute apart, so no sample sits on an
//! edge and the comparison is of the rule engines, not of that change.

use std::collections::BTreeMap;
use std::process::Command;

use serde_json::{Value as J, json};

use super::tests::{Db, promtool};
use super::*;
use crate::rules::file::RuleFile;

const RULES: &str = r#"groups:
  - name: traefik
    interval: 1m
    rules:
      - record: service:traefik_requests:rate5m
        expr: sum by (service) (rate(traefik_service_requests_total[4m30s]))
      - record: service:traefik_errors:ratio_rate5m
        expr: |
          sum by (service) (rate(traefik_service_requests_total{code=~"5.."}[4m30s]))
            /
          sum by (service) (rate(traefik_service_requests_total[4m30s]))
        labels:
          team: erp
      - alert: OdooHighErrorRate
        expr: service:traefik_errors:ratio_rate5m > 0.05
        for: 3m
        keep_firing_for: 2m
        labels:
          severity: page
          business_process: "{{ $labels.service }}"
        annotations:
          summary: "{{ $labels.service }}: {{ $value | humanizePercentage }} of requests fail"
          description: 'error ratio {{ printf "%.3f" $value }} over 5m; {{ if gt $value 0.08 }}severe{{ else }}elevated{{ end }}'
  - name: databases
    interval: 1m
    rules:
      - record: instance:pg_connections:ratio
        expr: pg_stat_activity_count / pg_settings_max_connections
      - alert: PostgresDown
        expr: pg_up == 0
        for: 2m
        labels:
          severity: critical
        annotations:
          summary: "PostgreSQL {{ $labels.instance | stripPort }} is down"
          connections: '{{ with query "sum(pg_stat_activity_count)" }}{{ . | first | value }} open{{ end }}; {{ range query "pg_settings_max_connections" }}{{ .Labels.instance }} allows {{ .Value }}{{ end }}'
      - alert: PostgresConnectionsHigh
        expr: instance:pg_connections:ratio > 0.8
        annotations:
          summary: "{{ $labels.instance }} at {{ humanize $value }} of max connections"
      - alert: RedisMemoryHigh
        expr: redis_memory_used_bytes / redis_memory_max_bytes > 0.9
        for: 1m
        labels:
          severity: warning
        annotations:
          summary: "Redis {{ $labels.instance }}: {{ $value | humanizePercentage }} of maxmemory"
"#;

const MINUTES: i64 = 30;

/// An input series: its labels and one value (or none) per minute.
type Input = (Vec<(&'static str, &'static str)>, Vec<Option<f64>>);

/// Every input series.
fn input() -> Vec<Input> {
    let per_min = |f: &dyn Fn(i64) -> Option<f64>| (0..=MINUTES).map(f).collect::<Vec<_>>();
    vec![
        (
            vec![
                ("__name__", "traefik_service_requests_total"),
                ("service", "picking"),
                ("code", "200"),
            ],
            per_min(&|m| Some(600.0 * m as f64)),
        ),
        (
            vec![
                ("__name__", "traefik_service_requests_total"),
                ("service", "picking"),
                ("code", "500"),
            ],
            // Failing from 8m to 16m.
            per_min(&|m| Some(60.0 * (m.clamp(8, 16) - 8) as f64)),
        ),
        (
            vec![
                ("__name__", "traefik_service_requests_total"),
                ("service", "invoicing"),
                ("code", "200"),
            ],
            per_min(&|m| Some(300.0 * m as f64)),
        ),
        (
            vec![
                ("__name__", "traefik_service_requests_total"),
                ("service", "invoicing"),
                ("code", "503"),
            ],
            // A few errors, under the threshold; a scrape gap.
            per_min(&|m| (m != 20).then_some(3.0 * m as f64)),
        ),
        (
            vec![("__name__", "pg_up"), ("instance", "db-1.example.com:5432")],
            per_min(&|m| Some(if (12..17).contains(&m) { 0.0 } else { 1.0 })),
        ),
        (
            vec![
                ("__name__", "pg_stat_activity_count"),
                ("instance", "db-1.example.com:5432"),
            ],
            per_min(&|m| Some(40.0 + 2.0 * m as f64)),
        ),
        (
            vec![
                ("__name__", "pg_settings_max_connections"),
                ("instance", "db-1.example.com:5432"),
            ],
            per_min(&|_| Some(100.0)),
        ),
        (
            vec![
                ("__name__", "redis_memory_used_bytes"),
                ("instance", "redis-1:6379"),
            ],
            per_min(&|m| {
                Some(if (18..=24).contains(&m) {
                    0.95e9
                } else {
                    0.5e9
                })
            }),
        ),
        (
            vec![
                ("__name__", "redis_memory_max_bytes"),
                ("instance", "redis-1:6379"),
            ],
            per_min(&|_| Some(1e9)),
        ),
    ]
}

fn selector(pairs: &[(&str, &str)]) -> String {
    let name = pairs
        .iter()
        .find(|(k, _)| *k == "__name__")
        .map_or("", |p| p.1);
    let rest: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| *k != "__name__")
        .map(|(k, v)| format!("{k}=\"{v}\""))
        .collect();
    format!("{name}{{{}}}", rest.join(","))
}

/// The value as promtool reads it back (Go's ParseFloat of Rust's
/// shortest round-trip text is the same float).
fn num(v: f64) -> String {
    format!("{v}")
}

#[tokio::test]
async fn prometheus_evaluates_the_same_series_and_alerts_from_the_same_rules() {
    let Some(promtool) = promtool() else {
        return;
    };
    let file = RuleFile::parse(RULES).unwrap();
    let mut groups: Vec<Group> = file
        .groups
        .iter()
        .map(|g| Group::new(g, 60_000, false).unwrap())
        .collect();
    let db = Db::new();
    let series = input();
    let ctx = RuleContext::default();
    let checks = [5, 9, 11, 12, 13, 14, 15, 17, 19, 20, 21, 22, 25, 30];
    let queries = [
        "service:traefik_requests:rate5m",
        "service:traefik_errors:ratio_rate5m",
        "instance:pg_connections:ratio",
        "ALERTS",
        "ALERTS_FOR_STATE",
    ];
    let alert_names = [
        "OdooHighErrorRate",
        "PostgresDown",
        "PostgresConnectionsHigh",
        "RedisMemoryHigh",
    ];
    let mut expr_tests = Vec::new();
    let mut alert_tests = Vec::new();
    let mut fired = BTreeMap::<&str, usize>::new();
    let mut recorded = 0usize;
    for m in 0..=MINUTES {
        let t = m * 60_000;
        for (labels, values) in &series {
            if let Some(v) = values[m as usize] {
                db.add(labels, t, v);
            }
        }
        for g in &mut groups {
            g.evaluate(&db, &ctx, t, 60_000).await;
            for r in &g.rules {
                assert_eq!(
                    r.health,
                    Health::Ok,
                    "{} at {m}m: {:?}",
                    r.name(),
                    r.last_error
                );
            }
        }
        if !checks.contains(&m) {
            continue;
        }
        for q in queries {
            let expr = strata_query_lang::promql::parse_expr(q).unwrap();
            let Value::Vector(v) = db.query(&expr, t).await.unwrap() else {
                panic!("{q} is not a vector");
            };
            if !q.starts_with("ALERTS") {
                recorded += v.len();
            }
            let samples: Vec<J> = v
                .iter()
                .map(|s| json!({"labels": s.labels.to_string(), "value": s.v}))
                .collect();
            expr_tests
                .push(json!({"expr": q, "eval_time": format!("{m}m"), "exp_samples": samples}));
        }
        for name in alert_names {
            let rule = groups
                .iter()
                .flat_map(|g| &g.rules)
                .find(|r| r.name() == name)
                .unwrap();
            let firing: Vec<J> = rule
                .alerts()
                .into_iter()
                .filter(|a| a.state == AlertState::Firing)
                .map(|a| {
                    let labels: BTreeMap<&str, &str> =
                        a.labels.iter().filter(|(k, _)| *k != "alertname").collect();
                    json!({"exp_labels": labels, "exp_annotations": a.annotations})
                })
                .collect();
            *fired.entry(name).or_default() += firing.len();
            alert_tests.push(
                json!({"eval_time": format!("{m}m"), "alertname": name, "exp_alerts": firing}),
            );
        }
    }
    // The comparison is not vacuous: every alert fired at some check, and
    // the recording rules recorded.
    for name in alert_names {
        assert!(
            fired.get(name).copied().unwrap_or(0) > 0,
            "{name} never fired"
        );
    }
    assert!(recorded > 50, "{recorded}");

    let input_series: Vec<J> = series
        .iter()
        .map(|(labels, values)| {
            let vals: Vec<String> = values.iter().map(|v| v.map_or("_".into(), num)).collect();
            json!({"series": selector(labels), "values": vals.join(" ")})
        })
        .collect();
    let test = json!({
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": input_series,
            "alert_rule_test": alert_tests,
            "promql_expr_test": expr_tests,
        }],
    });
    let dir = tempfile_dir();
    std::fs::write(dir.join("rules.yaml"), RULES).unwrap();
    std::fs::write(dir.join("test.yaml"), test.to_string()).unwrap();
    let check = Command::new(&promtool)
        .args(["check", "rules", "rules.yaml"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "promtool check rules: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    let run = Command::new(&promtool)
        .args(["test", "rules", "test.yaml"])
        .current_dir(&dir)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        run.status.success(),
        "Prometheus disagrees:\n{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "strata-promtool-{}-{}",
        std::process::id(),
        chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
