//! Grafana's Loki data source, replayed: the calls Grafana 11 makes (its
//! Go backend's parameters — Unix-ns `start`/`end`, `step` in `ms`,
//! `direction`, `X-Query-Tags`) for "Save & test", Explore (label browser,
//! query size estimate, logs, the logs volume histogram, a line's
//! context), Logs Drilldown (service volumes, detected labels and fields,
//! patterns, limits) and a dashboard's logs and stat panels, in that order,
//! against the real binary: each answer in Loki's shape with the numbers
//! the pushed entries make, and the same answers once the entries are in
//! Parquet.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::{Server, agent};
use serde_json::{Value, json};

const TENANT: &str = "grafana";
const S: i64 = 1_000_000_000;

/// A GET as Grafana's backend sends it; status and JSON body.
fn get(server: &Server, path: &str, params: &[(&str, String)], tag: Option<&str>) -> (u16, Value) {
    let mut req = agent()
        .get(&server.url(path))
        .header("X-Scope-OrgID", TENANT)
        .header("User-Agent", "Grafana/11.3.0");
    if let Some(t) = tag {
        req = req.header("X-Query-Tags", format!("Source={t}"));
    }
    for (k, v) in params {
        req = req.query(*k, v);
    }
    let mut resp = req.call().unwrap();
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Odoo's logfmt lines (info every second, an error every 10 s) and
/// Traefik's JSON access log (every 2 s, a trace id as structured
/// metadata), over 300 s from `base`.
fn entries(base: i64) -> (Value, usize, usize, usize, usize) {
    let mut info = Vec::new();
    let mut error = Vec::new();
    let mut traefik = Vec::new();
    let mut odoo_bytes = 0;
    let mut traefik_bytes = 0;
    for s in 0..300i64 {
        let ts = (base + s * S).to_string();
        let line = format!(
            "level=info model=stock.picking method=button_validate duration_ms={} user={}",
            40 + (s % 7) * 30,
            s % 5
        );
        odoo_bytes += line.len();
        info.push(json!([ts, line]));
        if s % 10 == 0 {
            let line = format!(
                "level=error model=account.move method=action_post msg=\"constraint violated\" move={s}"
            );
            odoo_bytes += line.len();
            error.push(json!([ts, line]));
        }
        if s % 2 == 0 {
            let line = format!(
                r#"{{"status":{},"path":"/web/dataset/call_kw","duration":0.{:02}}}"#,
                if s % 30 == 0 { 502 } else { 200 },
                s % 100
            );
            traefik_bytes += line.len();
            traefik.push(json!([ts, line, {"trace_id": format!("{s:032x}")}]));
        }
    }
    let body = json!({"streams": [
        {"stream": {"service_name": "odoo", "namespace": "erp", "level": "info"}, "values": info},
        {"stream": {"service_name": "odoo", "namespace": "erp", "level": "error"}, "values": error},
        {"stream": {"service_name": "traefik", "namespace": "edge"}, "values": traefik},
    ]});
    (body, 330, odoo_bytes, 150, traefik_bytes)
}

/// Values of a log query's streams, newest first (a backward query's
/// order): (time, line).
fn log_values(v: &Value) -> Vec<(i64, String)> {
    assert_eq!(v["status"], "success", "{v}");
    assert_eq!(v["data"]["resultType"], "streams", "{v}");
    let mut out: Vec<(i64, String)> = Vec::new();
    for s in v["data"]["result"].as_array().unwrap() {
        assert!(s["stream"].is_object(), "{s}");
        let values = s["values"].as_array().unwrap();
        let times: Vec<i64> = values
            .iter()
            .map(|e| e[0].as_str().unwrap().parse().unwrap())
            .collect();
        assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first");
        out.extend(values.iter().map(|e| {
            (
                e[0].as_str().unwrap().parse().unwrap(),
                e[1].as_str().unwrap().to_owned(),
            )
        }));
    }
    out.sort_by(|a, b| b.cmp(a));
    out
}

/// A matrix's series as `labels → sum of values`.
fn matrix_sums(v: &Value) -> Vec<(String, f64)> {
    assert_eq!(v["status"], "success", "{v}");
    assert_eq!(v["data"]["resultType"], "matrix", "{v}");
    let mut out: Vec<(String, f64)> = v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let sum = s["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    assert!(p[0].is_number(), "{p}");
                    p[1].as_str().unwrap().parse::<f64>().unwrap()
                })
                .sum();
            (s["metric"].to_string(), sum)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Every call in Grafana's order; the answers, less their `stats`, for
/// comparing the head's with the files'.
fn replay(server: &Server, base: i64, now: i64) -> Vec<Value> {
    let (start, end) = ((now - 3600 * S).to_string(), now.to_string());
    let range = || vec![("start", start.clone()), ("end", end.clone())];
    let with = |extra: &[(&'static str, &str)]| {
        let mut p = range();
        p.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        p
    };
    let mut answers = Vec::new();
    let mut keep = |mut v: Value| {
        if let Some(d) = v.get_mut("data").and_then(Value::as_object_mut) {
            d.remove("stats");
        }
        answers.push(v);
    };

    // "Save & test": an instant query of vector(1)+vector(1).
    let (status, v) = get(
        server,
        "/loki/api/v1/query",
        &[
            ("query", "vector(1)+vector(1)".into()),
            ("time", end.clone()),
        ],
        None,
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"]["resultType"], "vector");
    assert_eq!(v["data"]["result"][0]["value"][1], "2");
    let (status, v) = get(server, "/loki/api/v1/status/buildinfo", &[], None);
    assert_eq!(status, 200);
    assert!(v["version"].as_str().unwrap().starts_with('3'), "{v}");

    // Explore: the label browser.
    let (status, v) = get(server, "/loki/api/v1/labels", &range(), None);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["status"], "success");
    assert_eq!(v["data"], json!(["level", "namespace", "service_name"]));
    keep(v);
    let (_, v) = get(
        server,
        "/loki/api/v1/label/service_name/values",
        &range(),
        None,
    );
    assert_eq!(v["data"], json!(["odoo", "traefik"]));
    keep(v);
    let (_, v) = get(
        server,
        "/loki/api/v1/label/level/values",
        &with(&[("query", r#"{service_name="odoo"}"#)]),
        None,
    );
    assert_eq!(v["data"], json!(["error", "info"]));
    keep(v);
    let (_, v) = get(
        server,
        "/loki/api/v1/series",
        &with(&[("match[]", r#"{service_name="odoo"}"#)]),
        None,
    );
    let mut series: Vec<String> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["level"].as_str().unwrap().to_owned())
        .collect();
    series.sort();
    assert_eq!(series, ["error", "info"], "{v}");
    keep(v);

    // The query size estimate before running.
    let (_, odoo, odoo_bytes, traefik, traefik_bytes) = entries(base);
    let (status, v) = get(
        server,
        "/loki/api/v1/index/stats",
        &with(&[("query", r#"{service_name="odoo"}"#)]),
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(v["streams"], 2);
    assert_eq!(v["entries"], odoo);
    assert_eq!(v["bytes"], odoo_bytes);
    keep(v);

    // The logs: newest 1000 of a filtered query, with the step Grafana
    // always sends.
    let q = r#"{service_name="odoo"} |= "constraint""#;
    let (status, v) = get(
        server,
        "/loki/api/v1/query_range",
        &with(&[
            ("query", q),
            ("direction", "backward"),
            ("limit", "1000"),
            ("step", "2000ms"),
        ]),
        None,
    );
    assert_eq!(status, 200, "{v}");
    assert!(v["data"]["stats"].is_object(), "Grafana shows the stats");
    let lines = log_values(&v);
    assert_eq!(lines.len(), 30);
    assert_eq!(lines[0].0, base + 290 * S);
    keep(v);
    // The volume histogram above them (supporting query: logvolhist).
    let (status, v) = get(
        server,
        "/loki/api/v1/query_range",
        &with(&[
            (
                "query",
                r#"sum by (level, detected_level) (count_over_time({service_name="odoo"} |= "constraint" | drop __error__[1m]))"#,
            ),
            ("direction", "backward"),
            ("step", "60000ms"),
        ]),
        Some("logvolhist"),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(matrix_sums(&v), [(r#"{"level":"error"}"#.to_owned(), 30.0)]);
    keep(v);
    // A line's context: ten before (backward, ending at it) and ten after.
    let at = base + 150 * S;
    let stream = r#"{level="error", namespace="erp", service_name="odoo"}"#;
    let (_, v) = get(
        server,
        "/loki/api/v1/query_range",
        &[
            ("query", stream.into()),
            ("start", (at - 3600 * S).to_string()),
            ("end", at.to_string()),
            ("direction", "backward".into()),
            ("limit", "10".into()),
            ("step", "2000ms".into()),
        ],
        None,
    );
    let before = log_values(&v);
    assert_eq!(before.len(), 10);
    assert_eq!((before[0].0, before[9].0), (at - 10 * S, at - 100 * S));
    keep(v);
    let (_, v) = get(
        server,
        "/loki/api/v1/query_range",
        &[
            ("query", stream.into()),
            ("start", at.to_string()),
            ("end", (at + 3600 * S).to_string()),
            ("direction", "forward".into()),
            ("limit", "10".into()),
            ("step", "2000ms".into()),
        ],
        None,
    );
    let after = v["data"]["result"][0]["values"].as_array().unwrap().clone();
    let first: i64 = after[0][0].as_str().unwrap().parse().unwrap();
    assert_eq!((after.len(), first), (10, at), "forward: oldest first");
    keep(v);

    // Logs Drilldown: services by volume, then one service.
    let (_, v) = get(
        server,
        "/loki/api/v1/index/volume",
        &with(&[
            ("query", r#"{service_name=~".+"}"#),
            ("limit", "5000"),
            ("aggregateBy", "labels"),
        ]),
        None,
    );
    assert_eq!(v["data"]["resultType"], "vector", "{v}");
    let services: Vec<&str> = v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["metric"]["service_name"].as_str().unwrap())
        .collect();
    assert_eq!(services, ["odoo", "traefik"], "largest first");
    keep(v);
    // Their bytes over time, per service.
    let (status, v) = get(
        server,
        "/loki/api/v1/index/volume_range",
        &with(&[
            ("query", r#"{service_name=~".+"}"#),
            ("step", "60000ms"),
            ("targetLabels", "service_name"),
            ("limit", "10"),
        ]),
        None,
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["data"]["result"][0]["metric"],
        json!({"service_name": "odoo"})
    );
    assert_eq!(
        matrix_sums(&v),
        [
            (r#"{"service_name":"odoo"}"#.to_owned(), odoo_bytes as f64),
            (
                r#"{"service_name":"traefik"}"#.to_owned(),
                traefik_bytes as f64
            )
        ]
    );
    keep(v);
    let (_, v) = get(server, "/loki/api/v1/drilldown-limits", &[], None);
    assert!(v["limits"].is_object(), "{v}");
    let (status, v) = get(
        server,
        "/loki/api/v1/detected_labels",
        &with(&[("query", r#"{service_name="odoo"}"#)]),
        None,
    );
    assert_eq!(status, 200, "{v}");
    let labels: Vec<(String, u64)> = v["detectedLabels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["label"].as_str().unwrap().to_owned(),
                l["cardinality"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(labels.contains(&("level".to_owned(), 2)), "{v}");
    keep(v);
    let (status, v) = get(
        server,
        "/loki/api/v1/detected_fields",
        &with(&[
            ("query", r#"{service_name="odoo"}"#),
            ("limit", "1000"),
            ("step", "60000ms"),
        ]),
        None,
    );
    assert_eq!(status, 200, "{v}");
    let field = |name: &str| {
        v["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["label"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no field {name}: {v}"))
    };
    assert_eq!(field("duration_ms")["type"], "int");
    assert_eq!(field("duration_ms")["parsers"], json!(["logfmt"]));
    assert_eq!(field("model")["cardinality"], 2);
    keep(v.clone());
    let (_, v) = get(
        server,
        "/loki/api/v1/detected_field/model/values",
        &with(&[("query", r#"{service_name="odoo"}"#)]),
        None,
    );
    let mut models: Vec<String> = v["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap().to_owned())
        .collect();
    models.sort();
    assert_eq!(models, ["account.move", "stock.picking"], "{v}");
    keep(v);
    let (status, v) = get(
        server,
        "/loki/api/v1/patterns",
        &with(&[("query", r#"{service_name="odoo"}"#), ("step", "60000ms")]),
        None,
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["status"], "success");
    let total: u64 = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["samples"].as_array().unwrap().clone())
        .map(|s| s[1].as_u64().unwrap())
        .sum();
    assert_eq!(total as usize, odoo, "every entry counted in a pattern");
    keep(v);
    // Drilldown's level breakdown of the service.
    let (_, v) = get(
        server,
        "/loki/api/v1/query_range",
        &with(&[
            (
                "query",
                r#"sum by (level) (count_over_time({service_name="odoo"} | drop __error__ [1m]))"#,
            ),
            ("step", "60000ms"),
        ]),
        None,
    );
    assert_eq!(
        matrix_sums(&v),
        [
            (r#"{"level":"error"}"#.to_owned(), 30.0),
            (r#"{"level":"info"}"#.to_owned(), 300.0)
        ]
    );
    keep(v);

    // A dashboard: a logs panel of slow requests, a stat panel of errors.
    let (_, v) = get(
        server,
        "/loki/api/v1/query_range",
        &with(&[
            (
                "query",
                r#"{service_name="odoo", level="info"} | logfmt | duration_ms >= 190"#,
            ),
            ("direction", "backward"),
            ("limit", "100"),
            ("step", "15000ms"),
        ]),
        Some("grafana"),
    );
    // duration_ms is 40 + 30 * (s mod 7): 190, 220 for s mod 7 = 5, 6.
    let slow = (0..300).filter(|s| s % 7 >= 5).count();
    assert_eq!(log_values(&v).len(), 100.min(slow));
    keep(v);
    let (status, v) = get(
        server,
        "/loki/api/v1/query",
        &[
            (
                "query",
                r#"sum by (service_name) (count_over_time({namespace=~"erp|edge"} [1h]))"#.into(),
            ),
            ("time", end.clone()),
            ("direction", "backward".into()),
        ],
        None,
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"]["resultType"], "vector");
    let mut counts: Vec<(String, String)> = v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["metric"]["service_name"].as_str().unwrap().to_owned(),
                r["value"][1].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    counts.sort();
    assert_eq!(
        counts,
        [
            ("odoo".to_owned(), odoo.to_string()),
            ("traefik".to_owned(), traefik.to_string())
        ]
    );
    keep(v);
    answers
}

#[test]
fn grafana_calls_in_grafanas_order_answer_in_lokis_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    let base = now - 8 * 60 * S;
    let (body, ..) = entries(base);
    let resp = agent()
        .post(&server.url("/loki/api/v1/push"))
        .header("X-Scope-OrgID", TENANT)
        .header("Content-Type", "application/json")
        .send(body.to_string().as_bytes())
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);

    let from_head = replay(&server, base, now);
    let (status, body) = server.post("/api/v1/admin/flush").unwrap();
    assert_eq!(status, 200, "{body}");
    let from_files = replay(&server, base, now);
    assert_eq!(from_head.len(), from_files.len());
    for (h, f) in from_head.iter().zip(&from_files) {
        assert_eq!(h, f, "the same answer from the head and from files");
    }
}
