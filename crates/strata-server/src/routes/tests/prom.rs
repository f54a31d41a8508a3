//! The Prometheus HTTP API: answers, errors, limits.

use super::*;

async fn prom(
    app: &Router,
    method: &str,
    path_and_query: &str,
    form: Option<&str>,
) -> (StatusCode, serde_json::Value) {
    let mut b = Request::builder().method(method).uri(path_and_query);
    let body = match form {
        Some(f) => {
            b = b.header("Content-Type", "application/x-www-form-urlencoded");
            Body::from(f.to_owned())
        }
        None => Body::empty(),
    };
    let (status, text) = send(app, b.body(body).unwrap()).await;
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}

/// Two counters of one job, a sample every 15 s for 10 minutes from t=0.
async fn load_counters(app: &Router) {
    let samples = |per_step: f64| -> Vec<(i64, f64)> {
        (0..=40)
            .map(|i| (i * 15_000, per_step * i as f64))
            .collect()
    };
    let body = payload(vec![
        series(
            &[
                ("__name__", "http_requests_total"),
                ("instance", "a"),
                ("job", "api"),
            ],
            &samples(3.0),
        ),
        series(
            &[
                ("__name__", "http_requests_total"),
                ("instance", "b"),
                ("job", "api"),
            ],
            &samples(6.0),
        ),
    ]);
    assert_eq!(
        send(app, write_req(None, body)).await.0,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn prometheus_api_answers_queries_from_head_and_files() {
    let (app, _, _) = app().await;
    load_counters(&app).await;
    let q = "/api/v1/query?query=sum%20by%20(job)%20(rate(http_requests_total%5B5m%5D))&time=600";
    let (status, before) = prom(&app, "GET", q, None).await;
    assert_eq!(status, StatusCode::OK, "{before}");
    assert_eq!(before["status"], "success");
    assert_eq!(before["data"]["resultType"], "vector");
    let result = &before["data"]["result"][0];
    assert_eq!(result["metric"], serde_json::json!({"job": "api"}));
    assert_eq!(result["value"][0], 600);
    // 3/15 + 6/15 per second.
    assert_eq!(result["value"][1], "0.6");

    // Same answer once the samples live in Parquet files.
    let (status, _) = send(
        &app,
        Request::post("/api/v1/admin/flush")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, after) = prom(&app, "GET", q, None).await;
    assert_eq!(after, before);

    // Range query as Grafana sends it: POST form.
    let (status, range) = prom(
        &app,
        "POST",
        "/api/v1/query_range",
        Some("query=http_requests_total%7Binstance%3D%22a%22%7D&start=0&end=120&step=60"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{range}");
    assert_eq!(range["data"]["resultType"], "matrix");
    assert_eq!(
        range["data"]["result"][0]["values"],
        serde_json::json!([[0, "0"], [60, "12"], [120, "24"]])
    );

    // Health check.
    let (_, health) = prom(&app, "POST", "/api/v1/query", Some("query=1%2B1&time=4")).await;
    assert_eq!(
        health["data"],
        serde_json::json!({"resultType": "scalar", "result": [4, "2"]})
    );

    let (_, series) = prom(
        &app,
        "GET",
        "/api/v1/series?match[]=http_requests_total&start=0&end=600",
        None,
    )
    .await;
    assert_eq!(series["data"].as_array().map(Vec::len), Some(2), "{series}");
    let (_, labels) = prom(&app, "GET", "/api/v1/labels", None).await;
    assert_eq!(
        labels["data"],
        serde_json::json!(["__name__", "instance", "job"])
    );
    let (_, values) = prom(
        &app,
        "GET",
        "/api/v1/label/instance/values?match[]=%7Bjob%3D%22api%22%7D",
        None,
    )
    .await;
    assert_eq!(values["data"], serde_json::json!(["a", "b"]));
    let (_, limited) = prom(&app, "GET", "/api/v1/label/instance/values?limit=1", None).await;
    assert_eq!(limited["data"], serde_json::json!(["a"]));
    assert_eq!(
        limited["warnings"],
        serde_json::json!(["results truncated due to limit"])
    );

    let (status, build) = prom(&app, "GET", "/api/v1/status/buildinfo", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(build["data"].get("features").is_none());
    let (status, ex) = prom(
        &app,
        "GET",
        "/api/v1/query_exemplars?query=test&start=1&end=2",
        None,
    )
    .await;
    assert_eq!(
        (status, &ex["status"]),
        (StatusCode::OK, &serde_json::json!("success"))
    );
}

#[tokio::test]
async fn prometheus_api_errors_have_prometheus_types_and_statuses() {
    let (app, _, _) = app().await;
    load_counters(&app).await;
    for (uri, status, error_type) in [
        (
            "/api/v1/query?query=sum(",
            StatusCode::BAD_REQUEST,
            "bad_data",
        ),
        ("/api/v1/query", StatusCode::BAD_REQUEST, "bad_data"),
        (
            "/api/v1/query?query=up&time=yesterday",
            StatusCode::BAD_REQUEST,
            "bad_data",
        ),
        (
            "/api/v1/query_range?query=up&start=10&end=0&step=1",
            StatusCode::BAD_REQUEST,
            "bad_data",
        ),
        (
            "/api/v1/query_range?query=up&start=0&end=10&step=0",
            StatusCode::BAD_REQUEST,
            "bad_data",
        ),
        (
            "/api/v1/query_range?query=up&start=0&end=100000&step=1",
            StatusCode::BAD_REQUEST,
            "bad_data",
        ),
        ("/api/v1/series", StatusCode::BAD_REQUEST, "bad_data"),
        (
            "/api/v1/series?match[]=%7Bjob%3D~%22.*%22%7D",
            StatusCode::BAD_REQUEST,
            "bad_data",
        ),
        (
            "/api/v1/query?query=http_requests_total%20%2B%20on(job)%20http_requests_total&time=60",
            StatusCode::UNPROCESSABLE_ENTITY,
            "execution",
        ),
    ] {
        let (got, body) = prom(&app, "GET", uri, None).await;
        assert_eq!(got, status, "{uri}: {body}");
        assert_eq!(body["status"], "error", "{uri}");
        assert_eq!(body["errorType"], error_type, "{uri}");
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{uri}"
        );
    }
}

#[tokio::test]
async fn prometheus_api_limits_answer_like_prometheus() {
    let mut config = ServerConfig::default();
    config.promql.max_samples = 50;
    let (app, _, _) = app_with(config).await;
    load_counters(&app).await;
    // 82 samples in 10 minutes of two series: over the limit.
    let (status, body) = prom(
        &app,
        "GET",
        "/api/v1/query?query=sum_over_time(http_requests_total%5B10m%5D)&time=600",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["errorType"], "execution");
    assert!(
        body["error"].as_str().unwrap().contains("too many samples"),
        "{body}"
    );
    // Under it.
    let (status, _) = prom(
        &app,
        "GET",
        "/api/v1/query?query=http_requests_total&time=600",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // A request's timeout shortens the server's; 0 has expired already.
    let (status, body) = prom(
        &app,
        "GET",
        "/api/v1/query?query=http_requests_total&time=600&timeout=0s",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["errorType"], "timeout");
    // A lookback_delta of 10s sees nothing 20 s after the last sample.
    let (_, body) = prom(
        &app,
        "GET",
        "/api/v1/query?query=http_requests_total&time=620&lookback_delta=10s",
        None,
    )
    .await;
    assert_eq!(body["data"]["result"], serde_json::json!([]));
    let (_, body) = prom(
        &app,
        "GET",
        "/api/v1/query?query=http_requests_total&time=620",
        None,
    )
    .await;
    assert_eq!(body["data"]["result"].as_array().map(Vec::len), Some(2));
    // `limit` cuts a vector and says so.
    let (_, body) = prom(
        &app,
        "GET",
        "/api/v1/query?query=http_requests_total&time=600&limit=1",
        None,
    )
    .await;
    assert_eq!(body["data"]["result"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        body["warnings"],
        serde_json::json!(["results truncated due to limit"])
    );
}

/// `/api/v1/metadata` answers, per tenant, what remote write 1.0 (as
/// Prometheus sends it: metadata in requests of their own), 2.0 and OTLP
/// described, in Prometheus' shape; a refused write keeps none.
#[tokio::test]
async fn metadata_from_every_protocol_answered_per_tenant() {
    let (app, _, _) = app().await;
    let get = |tenant: &'static str, query: &'static str| {
        let app = app.clone();
        async move {
            let req = Request::get(format!("/api/v1/metadata{query}"))
                .header("X-Scope-OrgID", tenant)
                .body(Body::empty())
                .unwrap();
            let (status, text) = send(&app, req).await;
            let json: serde_json::Value =
                serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
            (status, json)
        }
    };
    let v1_meta = |name: &str, kind: i32, help: &str, unit: &str| proto::MetricMetadata {
        r#type: kind,
        metric_family_name: name.into(),
        help: help.into(),
        unit: unit.into(),
    };
    // 1.0: a request of metadata alone.
    let body = encode_snappy(&proto::WriteRequest {
        timeseries: vec![],
        metadata: vec![
            v1_meta("http_requests_total", 1, "Requests served.", ""),
            v1_meta("rpc_duration_seconds", 3, "RPC latency.", "seconds"),
        ],
    });
    let (status, text) = send(&app, write_req(Some("team-a"), body)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{text}");
    // 2.0: metadata on a series.
    let mut req = proto::v2::Request::from_series(&[(
        vec![("__name__", "queue_depth"), ("queue", "picking")],
        vec![(1_700_000_000_000, 3.0)],
    )]);
    let help = req.symbols.len() as u32;
    req.symbols.push("Jobs waiting.".into());
    req.timeseries[0].metadata = Some(proto::v2::Metadata {
        r#type: 2,
        help_ref: help,
        unit_ref: 0,
    });
    let v2 = Request::post("/api/v1/write")
        .header(
            "Content-Type",
            "application/x-protobuf;proto=io.prometheus.write.v2.Request",
        )
        .header("Content-Encoding", "snappy")
        .header("X-Scope-OrgID", "team-a")
        .body(Body::from(proto::v2::encode_snappy(&req)))
        .unwrap();
    let (status, text) = send(&app, v2).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{text}");
    // OTLP (JSON): a monotonic sum in milliseconds.
    let otlp = serde_json::json!({"resourceMetrics": [{"resource": {"attributes": []},
        "scopeMetrics": [{"metrics": [{"name": "odoo.picking.duration", "unit": "ms",
            "description": "Time to pick an order.",
            "sum": {"aggregationTemporality": 2, "isMonotonic": true,
                "dataPoints": [{"timeUnixNano": "1700000000000000000", "asDouble": 5.0}]}}]}]}]});
    let (status, text) = send(&app, otlp_json_req("team-a", &otlp)).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    // A refused write (an empty label name) keeps nothing.
    let bad = encode_snappy(&proto::WriteRequest {
        timeseries: vec![series(&[("", "v"), ("__name__", "x")], &[(1, 1.0)])],
        metadata: vec![v1_meta("refused_metric", 2, "Never kept.", "")],
    });
    let (status, _) = send(&app, write_req(Some("team-a"), bad)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, json) = get("team-a", "").await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["status"], "success");
    assert_eq!(
        json["data"],
        serde_json::json!({
            "http_requests_total": [{"type": "counter", "help": "Requests served.", "unit": ""}],
            "odoo_picking_duration_milliseconds_total":
                [{"type": "counter", "help": "Time to pick an order.", "unit": "milliseconds"}],
            "queue_depth": [{"type": "gauge", "help": "Jobs waiting.", "unit": ""}],
            "rpc_duration_seconds": [{"type": "histogram", "help": "RPC latency.", "unit": "seconds"}],
        })
    );
    let (_, json) = get("team-a", "?metric=queue_depth").await;
    assert_eq!(json["data"].as_object().unwrap().len(), 1);
    assert!(json["data"]["queue_depth"].is_array());
    let (_, json) = get("team-a", "?limit=2").await;
    assert_eq!(json["data"].as_object().unwrap().len(), 2);
    let (_, json) = get("team-a", "?limit=-1&limit_per_metric=1").await;
    assert_eq!(json["data"].as_object().unwrap().len(), 4);
    let (status, json) = get("team-a", "?limit=many").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(json["errorType"], "bad_data", "{json}");
    // Another tenant sees none of it.
    let (status, json) = get("team-b", "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json["data"], serde_json::json!({}));

    // SQL's system.metrics shows each stored metric's description, a
    // histogram's series their family's; a metric no sender described has
    // none.
    let body = payload(vec![
        series(&[("__name__", "rpc_duration_seconds_count")], &[(1, 4.0)]),
        series(&[("__name__", "undescribed")], &[(1, 1.0)]),
    ]);
    let (status, text) = send(&app, write_req(Some("team-a"), body)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{text}");
    let q = "SELECT metric, type, help, unit FROM system.metrics ORDER BY metric";
    let (status, json) = sql(&app, Some("team-a"), q).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(
        json["rows"],
        serde_json::json!([
            [
                "odoo_picking_duration_milliseconds_total",
                "counter",
                "Time to pick an order.",
                "milliseconds"
            ],
            ["queue_depth", "gauge", "Jobs waiting.", ""],
            [
                "rpc_duration_seconds_count",
                "histogram",
                "RPC latency.",
                "seconds"
            ],
            ["undescribed", null, null, null],
        ])
    );
    let body = payload(vec![series(&[("__name__", "queue_depth")], &[(1, 1.0)])]);
    assert_eq!(
        send(&app, write_req(Some("team-b"), body)).await.0,
        StatusCode::NO_CONTENT
    );
    let (_, json) = sql(&app, Some("team-b"), q).await;
    assert_eq!(
        json["rows"],
        serde_json::json!([["queue_depth", null, null, null]])
    );
}

/// OTLP names follow the tenant's translation strategy: kept as UTF-8
/// text under `NoUTF8EscapingWithSuffixes` (found with PromQL's quoted
/// names), escaped under the default.
#[tokio::test]
async fn otlp_names_follow_the_tenant_translation_strategy() {
    use strata_ingest::otlp_metrics::TranslationStrategy;
    for (strategy, name, label) in [
        (
            TranslationStrategy::NoUTF8EscapingWithSuffixes,
            "http.server.duration_seconds",
            "http.request.method",
        ),
        (
            TranslationStrategy::UnderscoreEscapingWithSuffixes,
            "http_server_duration_seconds",
            "http_request_method",
        ),
    ] {
        let mut config = ServerConfig::default();
        config.limits.tenant_defaults.otlp_translation_strategy = strategy;
        let (app, _, _) = app_with(config).await;
        let otlp = serde_json::json!({"resourceMetrics": [{"resource": {"attributes": []},
            "scopeMetrics": [{"metrics": [{"name": "http.server.duration", "unit": "s",
                "gauge": {"dataPoints": [{"timeUnixNano": "1700000000000000000", "asDouble": 0.25,
                    "attributes": [{"key": "http.request.method", "value": {"stringValue": "GET"}}]}]}}]}]}]});
        let (status, text) = send(&app, otlp_json_req("team-a", &otlp)).await;
        assert_eq!(status, StatusCode::OK, "{text}");
        let query = format!("{{\"{name}\", \"{label}\"=\"GET\"}}");
        let form = format!(
            "query={}&time=1700000000",
            url::form_urlencoded::byte_serialize(query.as_bytes()).collect::<String>()
        );
        let req = Request::post("/api/v1/query")
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("X-Scope-OrgID", "team-a")
            .body(Body::from(form))
            .unwrap();
        let (status, text) = send(&app, req).await;
        assert_eq!(status, StatusCode::OK, "{text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            v["data"]["result"][0]["value"][1], "0.25",
            "{strategy:?}: {v}"
        );
        assert_eq!(v["data"]["result"][0]["metric"]["__name__"], name, "{v}");
    }
    // A UTF-8 strategy with the legacy name scheme is refused.
    let limits = crate::limits::TenantLimits {
        otlp_translation_strategy: TranslationStrategy::NoTranslation,
        name_validation_scheme: strata_types::NameScheme::Legacy,
        ..Default::default()
    };
    assert!(limits.check().unwrap_err().contains("legacy"));
}
