//! OTLP/HTTP metrics from the OpenTelemetry Python SDK, read back with
//! PromQL and SQL under Prometheus' names (an exponential histogram from
//! the histograms table), the SDK's start times as one
//! zero sample per cumulative series (the tenant asks for it), or under
//! UTF-8 names for a tenant on `NoUTF8EscapingWithSuffixes`; a bad body
//! gets a 400.
//!
//! Needs python3 with opentelemetry-sdk and
//! opentelemetry-exporter-otlp-proto-http (`.ci/run` installs them).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::{Server, clients_ready, escape};
use serde_json::json;

fn instant(server: &Server, query: &str) -> serde_json::Value {
    let (status, body) = server.get_json("acme", &format!("/api/v1/query?query={}", escape(query)));
    assert_eq!(status, 200, "{query}: {body}");
    body["data"]["result"].clone()
}

#[test]
fn the_python_sdk_exports_metrics_that_promql_and_sql_read() {
    if !clients_ready(
        &[],
        "opentelemetry.sdk, opentelemetry.exporter.otlp.proto.http",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let limits = dir.path().join("limits.toml");
    std::fs::write(
        &limits,
        "[tenants.acme]\ncreated_timestamp_zero_ingestion = true\n\
         [tenants.dotted]\notlp_translation_strategy = \"NoUTF8EscapingWithSuffixes\"\n",
    )
    .unwrap();
    let server = Server::start(
        &dir.path().join("data"),
        &["--limits-overrides-file", limits.to_str().unwrap()],
    );
    // The SDK exports its metrics to `tenant`.
    let export = |tenant: &str| {
        let url = format!("http://{}", server.addr);
        common::interop("otel_metrics.py", &[&url, tenant], Some(&server));
    };
    export("acme");

    // A monotonic sum is a counter named with _total; the last export wins.
    let r = instant(&server, "odoo_orders_picked_total");
    assert_eq!(r.as_array().unwrap().len(), 1, "{r}");
    assert_eq!(
        r[0]["metric"],
        json!({"__name__": "odoo_orders_picked_total", "job": "erp/odoo",
               "instance": "web-1", "stage": "picking"})
    );
    assert_eq!(r[0]["value"][1], "5");
    let r = instant(&server, "odoo_queue_depth");
    assert_eq!(r[0]["value"][1], "7");
    assert_eq!(r[0]["metric"]["queue"], "dispatch");
    // Histogram: cumulative classic buckets in milliseconds.
    let r = instant(
        &server,
        r#"sum by (le) (http_server_duration_milliseconds_bucket{route="/api/picking"})"#,
    );
    let mut buckets: Vec<(String, String)> = r
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["metric"]["le"].as_str().unwrap().to_owned(),
                s["value"][1].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    buckets.sort();
    assert_eq!(
        buckets,
        [
            ("+Inf".into(), "3".into()),
            ("10".into(), "1".into()),
            ("100".into(), "2".into()),
            ("1000".into(), "3".into())
        ]
    );
    assert_eq!(
        instant(&server, "http_server_duration_milliseconds_sum")[0]["value"][1],
        "325"
    );
    let r = instant(
        &server,
        "histogram_quantile(0.5, sum by (le) (http_server_duration_milliseconds_bucket))",
    );
    let median: f64 = r[0]["value"][1].as_str().unwrap().parse().unwrap();
    assert!((10.0..=100.0).contains(&median), "{median}");
    // The exponential histogram is a native histogram, its buckets where
    // Prometheus puts them (the value v in bucket i when
    // base^(i-1) < v <= base^i): in the histograms table once flushed.
    assert_eq!(server.post("/api/v1/admin/flush").unwrap().0, 200);
    let rows = common::histogram_rows(
        &dir.path().join("data/objects"),
        "acme",
        "pick_latency_seconds",
    );
    assert_eq!(rows.len(), 2, "one per export: {rows:?}");
    for (job, count, sum, schema, buckets, counts) in rows {
        assert_eq!((job.as_str(), count, sum), ("erp/odoo", 3.0, 3.75));
        assert!((-4..=8).contains(&schema), "{schema}");
        assert_eq!(counts.iter().sum::<f64>(), 3.0);
        for v in [0.25f64, 0.5, 3.0] {
            let i = (v.log2() * 2f64.powi(schema)).ceil() as i32;
            let k = buckets.iter().position(|&b| b == i);
            assert!(
                k.is_some_and(|k| counts[k] > 0.0),
                "{v} not in bucket {i}: {buckets:?} {counts:?}"
            );
        }
    }
    // The other resource attributes are on target_info.
    assert_eq!(
        instant(&server, "target_info")[0]["metric"]["k8s_namespace_name"],
        "prod"
    );
    // SQL sees the same samples.
    assert_eq!(
        server.rows(
            Some("acme"),
            "SELECT max(value) FROM samples WHERE metric = 'odoo_orders_picked_total'"
        ),
        vec![json!([5.0])]
    );
    // The counter's start time became one 0 sample before its two exports
    // (each export repeats the start); the gauge has none.
    assert_eq!(
        server.rows(
            Some("acme"),
            "SELECT metric, value FROM samples WHERE metric IN \
             ('odoo_orders_picked_total', 'odoo_queue_depth', \
              'http_server_duration_milliseconds_count') ORDER BY metric, timestamp"
        ),
        vec![
            json!(["http_server_duration_milliseconds_count", 0.0]),
            json!(["http_server_duration_milliseconds_count", 3.0]),
            json!(["http_server_duration_milliseconds_count", 3.0]),
            json!(["odoo_orders_picked_total", 0.0]),
            json!(["odoo_orders_picked_total", 3.0]),
            json!(["odoo_orders_picked_total", 5.0]),
            json!(["odoo_queue_depth", 7.0]),
            json!(["odoo_queue_depth", 7.0]),
        ]
    );

    // A tenant on Prometheus 3's NoUTF8EscapingWithSuffixes keeps the
    // SDK's names as UTF-8 text, suffixes added.
    export("dotted");
    let dotted = |query: &str| {
        let (status, body) =
            server.get_json("dotted", &format!("/api/v1/query?query={}", escape(query)));
        assert_eq!(status, 200, "{query}: {body}");
        body["data"]["result"].clone()
    };
    let r = dotted(r#"{"odoo.orders.picked_total", stage="picking"}"#);
    assert_eq!(r[0]["value"][1], "5", "{r}");
    assert_eq!(r[0]["metric"]["job"], "erp/odoo");
    assert_eq!(
        dotted(r#"sum({"http.server.duration_milliseconds_count"})"#)[0]["value"][1],
        "3"
    );
    assert_eq!(
        dotted("target_info")[0]["metric"]["k8s.namespace.name"],
        "prod"
    );
    assert_eq!(dotted("odoo_orders_picked_total"), json!([]));

    // The JSON encoding, gzip-compressed, answers in JSON.
    let json = br#"{"resourceMetrics":[{"resource":{"attributes":[
        {"key":"service.name","value":{"stringValue":"wms"}}]},
        "scopeMetrics":[{"metrics":[{"name":"dock.doors.open","gauge":{"dataPoints":[
        {"timeUnixNano":"TS","asInt":"4"}]}}]}]}]}"#;
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
        .to_string();
    let json = String::from_utf8_lossy(json).replace("TS", &now_ns);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, json.as_bytes()).unwrap();
    let mut resp = common::agent()
        .post(&server.url("/otlp/v1/metrics"))
        .header("Content-Type", "application/json")
        .header("Content-Encoding", "gzip")
        .header("X-Scope-OrgID", "acme")
        .send(&gz.finish().unwrap()[..])
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.body_mut().read_to_string().unwrap(), "{}");
    let r = instant(&server, "dock_doors_open");
    assert_eq!(r[0]["value"][1], "4", "{r}");
    assert_eq!(r[0]["metric"]["job"], "wms");

    // Garbage is a 400 in OTLP's error shape, and nothing is stored.
    let resp = common::agent()
        .post(&server.url("/v1/metrics"))
        .header("Content-Type", "application/x-protobuf")
        .header("X-Scope-OrgID", "acme")
        .send(&b"\x0a\x05\x0a\x03"[..])
        .unwrap();
    assert_eq!(resp.status(), 400);
    let resp = common::agent()
        .post(&server.url("/v1/metrics"))
        .header("Content-Type", "text/plain")
        .header("X-Scope-OrgID", "acme")
        .send(&b"x"[..])
        .unwrap();
    assert_eq!(resp.status(), 415);
}
