//! Created-timestamp zero injection: remote write 2.0 start timestamps
//! and OTLP start times become a 0 sample at the series' start, once.

use super::*;

const T0: i64 = 1_700_000_000_000;

fn v2_write(tenant: &str, samples: &[(i64, f64, i64)]) -> Request<Body> {
    let points: Vec<(i64, f64)> = samples.iter().map(|&(t, v, _)| (t, v)).collect();
    let mut req = proto::v2::Request::from_series(&[(
        vec![("__name__", "orders_picked_total"), ("site", "dc1")],
        points,
    )]);
    for (s, &(_, _, start)) in req.timeseries[0].samples.iter_mut().zip(samples) {
        s.start_timestamp = start;
    }
    Request::post("/api/v1/write")
        .header(
            "Content-Type",
            "application/x-protobuf;proto=io.prometheus.write.v2.Request",
        )
        .header("Content-Encoding", "snappy")
        .header("X-Scope-OrgID", tenant)
        .body(Body::from(proto::v2::encode_snappy(&req)))
        .unwrap()
}

async fn stored(app: &Router, tenant: &str, metric: &str) -> Vec<(i64, f64)> {
    let (status, json) = sql(
        app,
        Some(tenant),
        &format!(
            "SELECT CAST(timestamp AS BIGINT) / 1000 AS t, value FROM samples \
             WHERE metric = '{metric}' ORDER BY timestamp"
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    json["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r[0].as_i64().unwrap(), r[1].as_f64().unwrap()))
        .collect()
}

async fn flush(app: &Router, tenant: &str) {
    let (s, body) = send(
        app,
        Request::post("/api/v1/admin/flush")
            .header("X-Scope-OrgID", tenant)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn a_start_becomes_one_zero_sample_and_a_restart_another() {
    let mut config = ServerConfig::default();
    config
        .limits
        .tenant_defaults
        .created_timestamp_zero_ingestion = true;
    config.validate().unwrap();
    let (app, state, _) = app_with(config).await;

    // First sample of a counter that started 10 s before it.
    let resp = app
        .clone()
        .oneshot(v2_write("acme", &[(T0 + 15_000, 4.0, T0 + 5_000)]))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let written = &resp.headers()["x-prometheus-remote-write-samples-written"];
    assert_eq!(written, "1", "the header counts what was sent");
    // The sender repeats the start with every sample: no second zero.
    let (s, b) = send(&app, v2_write("acme", &[(T0 + 30_000, 9.0, T0 + 5_000)])).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    let want = vec![(T0 + 5_000, 0.0), (T0 + 15_000, 4.0), (T0 + 30_000, 9.0)];
    assert_eq!(stored(&app, "acme", "orders_picked_total").await, want);

    // Once flushed, the head no longer knows the series: the files do.
    flush(&app, "acme").await;
    let (s, b) = send(&app, v2_write("acme", &[(T0 + 45_000, 12.0, T0 + 5_000)])).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    // The process restarts at T0+50s: its counter starts over.
    let (s, b) = send(&app, v2_write("acme", &[(T0 + 60_000, 2.0, T0 + 50_000)])).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    let mut want = want;
    want.extend([(T0 + 45_000, 12.0), (T0 + 50_000, 0.0), (T0 + 60_000, 2.0)]);
    assert_eq!(stored(&app, "acme", "orders_picked_total").await, want);
    let zeros = state
        .metrics
        .created_zeros
        .get_or_create(&vec![("tenant", "acme".to_owned())])
        .get();
    assert_eq!(zeros, 2);

    // increase() counts the 4 before the first sample and the 2 after the
    // restart (without the zeros: 8 + 2, extrapolated); starting at 0 and
    // ending at the window's end, nothing is extrapolated.
    let (status, body) = send(
        &app,
        Request::get(format!(
            "/api/v1/query?query=increase(orders_picked_total[2m])&time={}",
            (T0 + 60_000) / 1000
        ))
        .header("X-Scope-OrgID", "acme")
        .body(Body::empty())
        .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    let v: f64 = json["data"]["result"][0]["value"][1]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((v - 14.0).abs() < 1e-9, "{v}");
}

#[tokio::test]
async fn off_by_default_and_otlp_starts_count_too() {
    let mut config = ServerConfig::default();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("limits.toml");
    std::fs::write(
        &path,
        "[tenants.on]\ncreated_timestamp_zero_ingestion = true\n",
    )
    .unwrap();
    config.limits.overrides_file = Some(path);
    let (app, _, _) = app_with(config).await;

    let (s, b) = send(&app, v2_write("off", &[(T0 + 15_000, 4.0, T0 + 5_000)])).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    assert_eq!(
        stored(&app, "off", "orders_picked_total").await,
        vec![(T0 + 15_000, 4.0)]
    );

    // An OTLP monotonic sum and a gauge, both with a start time.
    let point = |v: f64| {
        serde_json::json!([{"startTimeUnixNano": format!("{}", (T0 + 1_000) * 1_000_000),
            "timeUnixNano": format!("{}", (T0 + 20_000) * 1_000_000), "asDouble": v}])
    };
    let otlp = serde_json::json!({"resourceMetrics": [{"resource": {"attributes": []},
        "scopeMetrics": [{"metrics": [
            {"name": "orders.invoiced", "sum": {"aggregationTemporality": 2,
                "isMonotonic": true, "dataPoints": point(3.0)}},
            {"name": "queue.depth", "gauge": {"dataPoints": point(7.0)}}]}]}]});
    let (status, text) = send(&app, otlp_json_req("on", &otlp)).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(
        stored(&app, "on", "orders_invoiced_total").await,
        vec![(T0 + 1_000, 0.0), (T0 + 20_000, 3.0)]
    );
    assert_eq!(
        stored(&app, "on", "queue_depth").await,
        vec![(T0 + 20_000, 7.0)],
        "a gauge has no start"
    );
}
