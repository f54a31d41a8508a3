//! Exemplars: stored from remote write and OTLP, answered by
//! `/api/v1/query_exemplars` in Prometheus' shape, kept across flushes.

use super::*;

const T0: i64 = 1_700_000_000_000;

/// An exemplar's labels, value and time.
type Ex<'a> = (&'a [(&'a str, &'a str)], f64, i64);

fn with_exemplars(
    labels: &[(&str, &str)],
    samples: &[(i64, f64)],
    exemplars: &[Ex<'_>],
) -> proto::TimeSeries {
    let mut ts = series(labels, samples);
    for (labels, value, timestamp) in exemplars {
        ts.exemplars.push(proto::Exemplar {
            labels: labels
                .iter()
                .map(|(n, v)| proto::Label {
                    name: (*n).into(),
                    value: (*v).into(),
                })
                .collect(),
            value: *value,
            timestamp: *timestamp,
        });
    }
    ts
}

async fn write(app: &Router, tenant: &str, ts: Vec<proto::TimeSeries>) -> (StatusCode, String) {
    let resp = app
        .clone()
        .oneshot(write_req(Some(tenant), payload(ts)))
        .await
        .unwrap();
    let status = resp.status();
    let written = resp
        .headers()
        .get("X-Prometheus-Remote-Write-Exemplars-Written")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (status, written)
}

async fn exemplars(app: &Router, tenant: &str, query: &str) -> serde_json::Value {
    let uri = format!(
        "/api/v1/query_exemplars?query={}&start={}&end={}",
        urlencode(query),
        T0 / 1000 - 60,
        T0 / 1000 + 3600
    );
    let (status, body) = send(
        app,
        Request::get(uri)
            .header("X-Scope-OrgID", tenant)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    json["data"].clone()
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn remote_write_exemplars_are_answered_in_prometheus_shape_and_outlive_a_flush() {
    let (app, state, wal) = app().await;
    let api = [("__name__", "req_total"), ("job", "api")];
    let long = "x".repeat(130);
    let (status, written) = write(
        &app,
        "t",
        vec![
            with_exemplars(
                &api,
                &[(T0, 1.0), (T0 + 15_000, 3.0)],
                &[
                    (&[("trace_id", "abc"), ("span_id", "01")], 1.0, T0),
                    (&[("trace_id", "def")], 2.5, T0 + 15_000),
                    // Over 128 characters: dropped, as Prometheus drops it.
                    (&[("trace_id", &long)], 1.0, T0 + 16_000),
                ],
            ),
            with_exemplars(
                &[("__name__", "other"), ("job", "api")],
                &[(T0, 1.0)],
                &[(&[("trace_id", "zzz")], 9.0, T0 + 1500)],
            ),
        ],
    )
    .await;
    assert_eq!((status, written.as_str()), (StatusCode::NO_CONTENT, "3"));

    let want = serde_json::json!([{
        "seriesLabels": {"__name__": "req_total", "job": "api"},
        "exemplars": [
            {"labels": {"span_id": "01", "trace_id": "abc"}, "value": "1", "timestamp": 1_700_000_000},
            {"labels": {"trace_id": "def"}, "value": "2.5", "timestamp": 1_700_000_015},
        ],
    }]);
    // Every selector of the query, range selectors included.
    assert_eq!(exemplars(&app, "t", "rate(req_total[5m])").await, want);
    let both = exemplars(&app, "t", "req_total + on(job) other").await;
    assert_eq!(both.as_array().unwrap().len(), 2);
    assert_eq!(
        both[0]["exemplars"][0]["timestamp"],
        serde_json::json!(1_700_000_001.5)
    );
    // Another tenant sees none; a query without selectors answers null.
    assert_eq!(
        exemplars(&app, "u", "req_total").await,
        serde_json::json!([])
    );
    assert_eq!(exemplars(&app, "t", "1 + 1").await, serde_json::Value::Null);

    // A resend: the newest is a duplicate (written), the older out of order.
    let (status, written) = write(
        &app,
        "t",
        vec![with_exemplars(
            &api,
            &[(T0 + 15_000, 3.0)],
            &[(&[("trace_id", "def")], 2.5, T0 + 15_000)],
        )],
    )
    .await;
    assert_eq!((status, written.as_str()), (StatusCode::NO_CONTENT, "1"));
    let (_, written) = write(
        &app,
        "t",
        vec![with_exemplars(
            &api,
            &[],
            &[(&[("trace_id", "old")], 1.0, T0 + 1)],
        )],
    )
    .await;
    assert_eq!(written, "0");
    assert_eq!(exemplars(&app, "t", "req_total").await, want);

    // A flush writes them to the tenant's exemplars table and lets the
    // WAL go; the store keeps answering, each exemplar once beside the
    // files' copy.
    state.storage.flush(wal.as_ref()).await.unwrap();
    assert!(wal.records().is_empty() && wal.exemplar_records().is_empty());
    let tenant = strata_types::TenantId::try_new("t").unwrap();
    let (files, _, _) = state.storage.exemplar_files(&tenant);
    assert_eq!(files.iter().map(|f| f.stats.rows).sum::<u64>(), 3);
    assert_eq!(exemplars(&app, "t", "req_total").await, want);
    let (_, metrics) = send(&app, Request::get("/metrics").body(Body::empty()).unwrap()).await;
    assert!(
        metrics.contains("strata_exemplars_held{tenant=\"t\"} 3"),
        "{metrics}"
    );
}

#[tokio::test]
async fn otlp_exemplars_go_where_prometheus_puts_them() {
    let (app, _, _) = app().await;
    let ns = |ms: i64| (ms * 1_000_000).to_string();
    let body = serde_json::json!({"resourceMetrics": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "api"}}]},
        "scopeMetrics": [{"metrics": [
            {"name": "latency", "unit": "s", "histogram": {"aggregationTemporality": 2, "dataPoints": [{
                "timeUnixNano": ns(T0), "count": "3", "sum": 0.9,
                "bucketCounts": ["1", "1", "1"], "explicitBounds": [0.1, 0.5],
                "exemplars": [
                    {"timeUnixNano": ns(T0 - 500), "asDouble": 0.3,
                     "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
                     "filteredAttributes": [{"key": "user", "value": {"stringValue": "u1"}}]},
                    {"timeUnixNano": ns(T0 - 400), "asDouble": 7.0, "traceId": "00000000000000000000000000000001"},
                ]
            }]}},
            {"name": "jobs", "sum": {"aggregationTemporality": 2, "isMonotonic": true, "dataPoints": [{
                "timeUnixNano": ns(T0), "asInt": "4",
                "exemplars": [{"timeUnixNano": ns(T0 - 100), "asInt": "1", "spanId": "0102030405060708"}]
            }]}},
            {"name": "temp", "gauge": {"dataPoints": [{
                "timeUnixNano": ns(T0), "asDouble": 20.0,
                "exemplars": [{"timeUnixNano": ns(T0 - 100), "asDouble": 20.0, "spanId": "0102030405060708"}]
            }]}}
        ]}]
    }]});
    let (status, text) = send(&app, otlp_json_req("t", &body)).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let got = exemplars(
        &app,
        "t",
        r#"{__name__=~"latency_seconds_bucket|jobs_total|temp"}"#,
    )
    .await;
    let series: Vec<(String, String, usize)> = got
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["seriesLabels"]["__name__"].as_str().unwrap().to_owned(),
                s["seriesLabels"]["le"].as_str().unwrap_or("").to_owned(),
                s["exemplars"].as_array().unwrap().len(),
            )
        })
        .collect();
    // 0.3 on the 0.5 bucket, 7 on +Inf; the counter's; none on the gauge.
    assert_eq!(
        series,
        vec![
            ("jobs_total".into(), String::new(), 1),
            ("latency_seconds_bucket".into(), "+Inf".into(), 1),
            ("latency_seconds_bucket".into(), "0.5".into(), 1),
        ]
    );
    assert_eq!(
        got[2]["exemplars"][0]["labels"],
        serde_json::json!({
            "trace_id": "5b8efff798038103d269b633813fc60c",
            "span_id": "eee19b7ec3c1b174",
            "user": "u1",
        })
    );
    assert_eq!(got[0]["exemplars"][0]["value"], "1");
}

#[tokio::test]
async fn a_tenant_keeping_no_exemplars_stores_none() {
    let mut config = ServerConfig::default();
    config.limits.tenant_defaults.max_exemplars = 0;
    let (app, _, wal) = app_with(config).await;
    let (status, written) = write(
        &app,
        "t",
        vec![with_exemplars(
            &[("__name__", "req_total")],
            &[(T0, 1.0)],
            &[(&[("trace_id", "abc")], 1.0, T0)],
        )],
    )
    .await;
    assert_eq!((status, written.as_str()), (StatusCode::NO_CONTENT, "0"));
    assert_eq!(
        exemplars(&app, "t", "req_total").await,
        serde_json::json!([])
    );
    // The samples are in the WAL, the exemplars not even there.
    assert_eq!(wal.records().len(), 1);
    assert!(wal.exemplar_records().is_empty());
}
