use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode};
use strata_head::Head;
use strata_ingest::remote_write::proto::{self, encode_snappy};
use strata_storage::{ObjectStoreHandle, Storage};
use strata_types::stale_nan;
use strata_wal::MemoryWal;
use tower::ServiceExt;

use super::*;
use crate::ServerConfig;

async fn storage() -> Arc<Storage> {
    let store = ObjectStoreHandle::in_memory().unwrap();
    Arc::new(Storage::open(store, Arc::new(Head::new())).await.unwrap())
}

async fn app_with(config: ServerConfig) -> (Router, Arc<AppState>, Arc<MemoryWal>) {
    let wal = Arc::new(MemoryWal::new());
    let state = AppState::with_wal(config, storage().await, wal.clone());
    (router(Arc::clone(&state)), state, wal)
}

async fn app() -> (Router, Arc<AppState>, Arc<MemoryWal>) {
    app_with(ServerConfig::default()).await
}

fn series(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> proto::TimeSeries {
    proto::TimeSeries::from_pairs(labels, samples)
}

fn write_req(tenant: Option<&str>, body: Vec<u8>) -> Request<Body> {
    let mut b = Request::post("/api/v1/write")
        .header("Content-Type", "application/x-protobuf")
        .header("Content-Encoding", "snappy")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0");
    if let Some(t) = tenant {
        b = b.header("X-Scope-OrgID", t);
    }
    b.body(Body::from(body)).unwrap()
}

fn payload(ts: Vec<proto::TimeSeries>) -> Vec<u8> {
    encode_snappy(&proto::WriteRequest {
        timeseries: ts,
        metadata: vec![],
    })
}

async fn send(app: &Router, req: Request<Body>) -> (StatusCode, String) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let body = to_bytes(resp.into_body(), usize::MAX).await.unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

async fn sql(app: &Router, tenant: Option<&str>, q: &str) -> (StatusCode, serde_json::Value) {
    let mut b = Request::post("/api/v1/sql").header("Content-Type", "application/json");
    if let Some(t) = tenant {
        b = b.header("X-Scope-OrgID", t);
    }
    let (status, body) = send(
        app,
        b.body(Body::from(serde_json::json!({"query": q}).to_string()))
            .unwrap(),
    )
    .await;
    (
        status,
        serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body)),
    )
}

#[tokio::test]
async fn remote_write_then_sql() {
    let (app, _, wal) = app().await;
    let body = payload(vec![
        series(
            &[("__name__", "up"), ("instance", "a:9090"), ("job", "api")],
            &[(1_700_000_000_000, 1.0)],
        ),
        series(
            &[("__name__", "up"), ("instance", "b:9090"), ("job", "db")],
            &[(1_700_000_000_000, 0.0), (1_700_000_015_000, stale_nan())],
        ),
    ]);
    let resp = app.clone().oneshot(write_req(None, body)).await.unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        resp.headers()["x-prometheus-remote-write-samples-written"],
        "3"
    );
    assert_eq!(
        wal.records().len(),
        1,
        "acknowledged only after the WAL append"
    );

    let (status, json) = sql(&app, None, "SELECT metric, labels['job'] AS job, timestamp, value FROM samples WHERE labels['job'] = 'db' ORDER BY timestamp").await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(
        json["columns"][0],
        serde_json::json!({"name": "metric", "type": "Utf8"})
    );
    assert_eq!(
        json["rows"],
        serde_json::json!([
            ["up", "db", "2023-11-14T22:13:20Z", 0.0],
            ["up", "db", "2023-11-14T22:13:35Z", "NaN"],
        ])
    );
    let (_, json) = sql(
        &app,
        None,
        "SELECT labels FROM samples WHERE labels['job'] = 'api'",
    )
    .await;
    assert_eq!(
        json["rows"],
        serde_json::json!([[{"instance": "a:9090", "job": "api"}]])
    );
}

#[tokio::test]
async fn malformed_requests_get_their_status_and_store_nothing() {
    let (app, state, wal) = app().await;
    let good = series(&[("__name__", "ok")], &[(1, 1.0)]);
    let bad_labels =
        |labels: &[(&str, &str)]| payload(vec![good.clone(), series(labels, &[(1, 1.0)])]);
    let cases: Vec<(Request<Body>, StatusCode, &str)> = vec![
        (
            write_req(None, b"not snappy at all".to_vec()),
            StatusCode::BAD_REQUEST,
            "snappy",
        ),
        (
            write_req(
                None,
                snap::raw::Encoder::new()
                    .compress_vec(b"\x0a\xff\xff\xff\x0f")
                    .unwrap(),
            ),
            StatusCode::BAD_REQUEST,
            "protobuf",
        ),
        (
            write_req(None, bad_labels(&[("__name__", "x"), ("", "v")])),
            StatusCode::BAD_REQUEST,
            "empty label name",
        ),
        (
            write_req(
                None,
                bad_labels(&[("__name__", "x"), ("a", "1"), ("a", "2")]),
            ),
            StatusCode::BAD_REQUEST,
            "duplicate",
        ),
        (
            write_req(
                None,
                bad_labels(&[("b", "1"), ("a", "1"), ("__name__", "x")]),
            ),
            StatusCode::BAD_REQUEST,
            "sorted",
        ),
        (
            write_req(None, bad_labels(&[("__name__", "x"), ("a-b", "1")])),
            StatusCode::BAD_REQUEST,
            "invalid label name",
        ),
        (
            write_req(None, bad_labels(&[("job", "x")])),
            StatusCode::BAD_REQUEST,
            "__name__",
        ),
        (
            write_req(Some("../etc"), payload(vec![good.clone()])),
            StatusCode::BAD_REQUEST,
            "X-Scope-OrgID",
        ),
        (
            write_req(Some(""), payload(vec![good.clone()])),
            StatusCode::BAD_REQUEST,
            "empty",
        ),
        (
            Request::post("/api/v1/write")
                .header("Content-Type", "application/json")
                .header("Content-Encoding", "snappy")
                .body(Body::from(payload(vec![good.clone()])))
                .unwrap(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "content type",
        ),
        (
            Request::post("/api/v1/write")
                .header("Content-Type", "application/x-protobuf")
                .header("Content-Encoding", "gzip")
                .body(Body::from(payload(vec![good.clone()])))
                .unwrap(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "encoding",
        ),
        (
            Request::post("/api/v1/write")
                .header(
                    "Content-Type",
                    "application/x-protobuf;proto=io.prometheus.write.v2.Request",
                )
                .header("Content-Encoding", "snappy")
                .body(Body::from(payload(vec![good.clone()])))
                .unwrap(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "content type",
        ),
    ];
    for (req, want, text) in cases {
        let (status, body) = send(&app, req).await;
        assert_eq!(status, want, "{body}");
        assert!(
            body.to_lowercase().contains(&text.to_lowercase()),
            "{body:?} lacks {text:?}"
        );
    }
    assert!(
        wal.records().is_empty(),
        "a rejected request reached the WAL"
    );
    assert!(
        state.head.tenants().is_empty(),
        "a rejected request reached the head"
    );
}

#[tokio::test]
async fn tenants_are_isolated_and_can_be_required() {
    let (app, _, _) = app().await;
    for t in ["alpha", "beta"] {
        let (s, _) = send(
            &app,
            write_req(
                Some(t),
                payload(vec![series(&[("__name__", t)], &[(1, 1.0)])]),
            ),
        )
        .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
    }
    let (_, json) = sql(&app, Some("alpha"), "SELECT DISTINCT metric FROM samples").await;
    assert_eq!(json["rows"], serde_json::json!([["alpha"]]));
    let (_, json) = sql(&app, None, "SELECT count(*) AS n FROM samples").await;
    assert_eq!(
        json["rows"],
        serde_json::json!([[0]]),
        "default tenant sees nobody else"
    );

    let mut config = ServerConfig::default();
    config.tenancy.require_tenant = true;
    let (app, _, _) = app_with(config).await;
    let (s, body) = send(
        &app,
        write_req(
            None,
            payload(vec![series(&[("__name__", "x")], &[(1, 1.0)])]),
        ),
    )
    .await;
    assert_eq!((s, body.trim()), (StatusCode::UNAUTHORIZED, "no org id"));
    let (s, json) = sql(&app, None, "SELECT 1").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(json["errorType"], "unauthorized");
}

#[tokio::test]
async fn sql_errors_are_json_400s() {
    let (app, _, _) = app().await;
    let (s, json) = sql(&app, None, "SELECT nope FROM samples").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(json["status"], "error");
    assert_eq!(json["errorType"], "bad_data");
    assert!(json["error"].as_str().unwrap().contains("nope"), "{json}");
    let (s, body) = send(
        &app,
        Request::post("/api/v1/sql")
            .body(Body::from("{\"q\": 1}"))
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(body.contains("query"), "{body}");
}

#[tokio::test]
async fn not_ready_until_replayed() {
    let state = AppState::new(ServerConfig::default(), storage().await);
    let app = router(state);
    let (s, _) = send(
        &app,
        Request::get("/-/healthy").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = send(&app, Request::get("/-/ready").body(Body::empty()).unwrap()).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    let resp = app
        .clone()
        .oneshot(write_req(
            None,
            payload(vec![series(&[("__name__", "x")], &[(1, 1.0)])]),
        ))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(resp.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn metrics_expose_ingest_wal_head_and_http() {
    let (app, _, _) = app().await;
    send(
        &app,
        write_req(
            Some("t1"),
            payload(vec![series(&[("__name__", "x")], &[(1, 1.0), (2, 2.0)])]),
        ),
    )
    .await;
    let (s, body) = send(&app, Request::get("/metrics").body(Body::empty()).unwrap()).await;
    assert_eq!(s, StatusCode::OK);
    for want in [
        "strata_ingested_samples_total{tenant=\"t1\"} 2",
        "strata_head_series{tenant=\"t1\"} 1",
        "strata_http_requests_total{route=\"/api/v1/write\",method=\"POST\",code=\"204\"} 1",
        "strata_http_request_duration_seconds_bucket{le=",
        "strata_http_request_duration_seconds_count{route=\"/api/v1/write\",code=\"204\"} 1",
        "strata_wal_fsync_duration_seconds_bucket",
        "strata_ready 1",
    ] {
        assert!(body.contains(want), "metrics lack {want}:\n{body}");
    }
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let mut config = ServerConfig::default();
    config.limits.max_request_size = crate::ByteSize(8192);
    config.limits.max_decoded_size = crate::ByteSize(16384);
    let (app, state, _) = app_with(config).await;
    // Compressed body over the request limit.
    let (s, _) = send(&app, write_req(None, vec![0u8; 10_000])).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    // Small compressed body that would inflate past the decoded limit.
    let inflating = snap::raw::Encoder::new()
        .compress_vec(&vec![0u8; 100_000])
        .unwrap();
    assert!(inflating.len() < 8192, "{}", inflating.len());
    let (s, body) = send(&app, write_req(None, inflating)).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert!(body.contains("limit"), "{body}");
    assert!(state.head.tenants().is_empty());
}

#[tokio::test]
async fn bodies_over_the_blocking_threshold_are_decoded_and_stored() {
    let (app, state, _) = app().await;
    // Pseudo-random label values so snappy cannot shrink the body below
    // the threshold.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let ts: Vec<_> = (0..40_000)
        .map(|i| {
            let pod: String = (0..4)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    format!("{x:016x}")
                })
                .collect();
            series(&[("__name__", "big"), ("pod", &pod)], &[(1, f64::from(i))])
        })
        .collect();
    let body = payload(ts);
    assert!(
        body.len() >= super::write::BLOCKING_DECODE_BYTES,
        "{}",
        body.len()
    );
    let (s, text) = send(&app, write_req(Some("big"), body)).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{text}");
    let t = strata_types::TenantId::try_new("big").unwrap();
    assert_eq!(state.head.tenant(&t).unwrap().series_count(), 40_000);
}

#[tokio::test]
async fn admin_flush_moves_data_to_the_table_and_sql_still_sees_it_once() {
    let (app, state, wal) = app().await;
    let body = payload(vec![series(
        &[("__name__", "up"), ("job", "api")],
        &[(1_700_000_000_000, 1.0), (1_700_000_015_000, 2.0)],
    )]);
    let resp = app.clone().oneshot(write_req(None, body)).await.unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);

    let (s, body) = send(
        &app,
        Request::post("/api/v1/admin/flush")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let report: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["data"]["samples"], 2);
    assert_eq!(report["data"]["files"], 1);
    assert!(wal.records().is_empty(), "flushed records leave the WAL");
    assert!(state.head.tenants().is_empty(), "and the head");

    // One more sample in the head: the answer spans head and files.
    let body = payload(vec![series(
        &[("__name__", "up"), ("job", "api")],
        &[(1_700_000_030_000, 3.0)],
    )]);
    let resp = app.clone().oneshot(write_req(None, body)).await.unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let (status, json) = sql(
        &app,
        None,
        "SELECT count(*) AS n, sum(value) AS s FROM samples WHERE metric = 'up'",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["rows"], serde_json::json!([[3, 6.0]]));

    let (_, metrics) = send(&app, Request::get("/metrics").body(Body::empty()).unwrap()).await;
    assert!(
        metrics.contains("strata_table_samples{tenant=\"default\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("strata_flushes_total{result=\"ok\"} 1"),
        "{metrics}"
    );
}

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

fn with_token(mut req: Request<Body>, auth: &str) -> Request<Body> {
    req.headers_mut().insert(
        "Authorization",
        axum::http::HeaderValue::from_str(auth).unwrap(),
    );
    req
}

#[tokio::test]
async fn with_auth_on_tokens_decide_tenant_and_what_is_allowed() {
    use crate::auth::{Role, TokenEntry, token_digest};
    let entry = |token: &str, tenant: &str, roles: Vec<Role>| TokenEntry {
        name: token.into(),
        sha256: token_digest(token),
        tenant: tenant.into(),
        roles,
    };
    let mut config = ServerConfig::default();
    config.auth.enabled = true;
    config.auth.tokens = vec![
        entry("a-writer", "tenant-a", vec![Role::Write]),
        entry("a-reader", "tenant-a", vec![Role::Read]),
        entry("b-reader", "tenant-b", vec![Role::Read]),
        entry("ops", "ops", vec![Role::Admin]),
    ];
    config.validate().unwrap();
    let (app, _, _) = app_with(config).await;
    let body = || {
        payload(vec![series(
            &[("__name__", "secret"), ("job", "a")],
            &[(1_000, 42.0)],
        )])
    };

    // No token: 401 with the schemes to use; a bad one: 401.
    let resp = app.clone().oneshot(write_req(None, body())).await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(resp.headers().get("WWW-Authenticate").is_some());
    assert_eq!(
        send(&app, with_token(write_req(None, body()), "Bearer guess"))
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    // A reader may not write; a writer may, into its own tenant only.
    assert_eq!(
        send(&app, with_token(write_req(None, body()), "Bearer a-reader"))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        send(
            &app,
            with_token(write_req(Some("tenant-b"), body()), "Bearer a-writer")
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        send(&app, with_token(write_req(None, body()), "Bearer a-writer"))
            .await
            .0,
        StatusCode::NO_CONTENT
    );

    let query = |auth: &str, tenant: Option<&str>| {
        let mut b = Request::get("/api/v1/query?query=secret&time=1").header("Authorization", auth);
        if let Some(t) = tenant {
            b = b.header("X-Scope-OrgID", t);
        }
        b.body(Body::empty()).unwrap()
    };
    let (status, text) = send(&app, query("Bearer a-reader", None)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(text.contains("\"42\""), "{text}");
    // Tenant B's reader sees nothing of A's, and cannot ask for A.
    let (status, text) = send(&app, query("Bearer b-reader", None)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!text.contains("secret"), "{text}");
    let (status, text) = send(&app, query("Bearer b-reader", Some("tenant-a"))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(text.contains("forbidden"), "{text}");
    // Grafana's Basic auth: any user, the token as password.
    let basic = format!("Basic {}", {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode("grafana:a-reader")
    });
    assert_eq!(send(&app, query(&basic, None)).await.0, StatusCode::OK);
    // SQL is tenant-scoped the same way.
    let sql_req = |auth: &str| {
        Request::post("/api/v1/sql")
            .header("Content-Type", "application/json")
            .header("Authorization", auth)
            .body(Body::from(
                serde_json::json!({"query": "SELECT count(*) AS n FROM samples"}).to_string(),
            ))
            .unwrap()
    };
    let (status, text) = send(&app, sql_req("Bearer b-reader")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        text.contains("[[0]]") || text.contains("\"n\":0") || text.contains("[0]"),
        "{text}"
    );
    // Admin operations need the admin role; health and metrics stay open.
    let flush = |auth: &str| {
        Request::post("/api/v1/admin/flush")
            .header("Authorization", auth)
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(
        send(&app, flush("Bearer a-writer")).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(send(&app, flush("Bearer ops")).await.0, StatusCode::OK);
    for path in ["/-/healthy", "/-/ready", "/metrics"] {
        assert_eq!(
            send(&app, Request::get(path).body(Body::empty()).unwrap())
                .await
                .0,
            StatusCode::OK,
            "{path}"
        );
    }
    assert_eq!(
        send(
            &app,
            Request::get("/api/v1/status/buildinfo")
                .body(Body::empty())
                .unwrap()
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn tenant_limits_refuse_whole_requests_and_are_counted() {
    let mut config = ServerConfig::default();
    config.limits.tenant_defaults.max_series = 3;
    config.limits.tenant_defaults.max_label_value_length = 16;
    let (app, _, wal) = app_with(config).await;
    let s = |i: usize| series(&[("__name__", "m"), ("i", &i.to_string())], &[(1_000, 1.0)]);
    assert_eq!(
        send(&app, write_req(Some("a"), payload(vec![s(1), s(2), s(3)])))
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    let records = wal.records().len();
    // Two new series (one would fit): the whole request is refused.
    let (status, text) = send(&app, write_req(Some("a"), payload(vec![s(1), s(4), s(5)]))).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{text}");
    assert!(
        text.contains("max_series") && text.contains("limit of 3"),
        "{text}"
    );
    assert_eq!(wal.records().len(), records, "nothing written");
    // Known series still flow; another tenant has its own budget.
    assert_eq!(
        send(&app, write_req(Some("a"), payload(vec![s(2)])))
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        send(&app, write_req(Some("b"), payload(vec![s(4), s(5)])))
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    // A label value over its length: 400 (the sender must drop it).
    let long = series(
        &[("__name__", "m"), ("i", "a-value-far-too-long")],
        &[(1_000, 1.0)],
    );
    let (status, text) = send(&app, write_req(Some("b"), payload(vec![long]))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    assert!(text.contains("max_label_value_length"), "{text}");
    let (_, metrics) = send(&app, Request::get("/metrics").body(Body::empty()).unwrap()).await;
    assert!(
        metrics.contains(r#"strata_rejected_total{tenant="a",reason="max_series"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"strata_rejected_total{tenant="b",reason="max_label_value_length"} 1"#)
    );
}

#[tokio::test]
async fn cardinality_api_ranks_label_names_and_values_of_one_tenant() {
    let (app, _, _) = app().await;
    let mut ts = Vec::new();
    for i in 0..5 {
        ts.push(series(
            &[
                ("__name__", "http_requests_total"),
                ("pod", &format!("p{i}")),
            ],
            &[(1_000, 1.0)],
        ));
    }
    ts.push(series(
        &[("__name__", "up"), ("pod", "p0")],
        &[(1_000, 1.0)],
    ));
    assert_eq!(
        send(&app, write_req(Some("a"), payload(ts))).await.0,
        StatusCode::NO_CONTENT
    );
    let get = |uri: &str, tenant: &str| {
        Request::get(uri)
            .header("X-Scope-OrgID", tenant)
            .body(Body::empty())
            .unwrap()
    };
    let (status, text) = send(&app, get("/api/v1/cardinality/label_names", "a")).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["label_names_count"], 2);
    assert_eq!(
        v["cardinality"][0],
        serde_json::json!({"label_name": "pod", "label_values_count": 5, "series_count": 6})
    );
    let (_, text) = send(
        &app,
        get(
            "/api/v1/cardinality/label_values?label_names[]=__name__&limit=1",
            "a",
        ),
    )
    .await;
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["series_count_total"], 6);
    assert_eq!(v["labels"][0]["label_values_count"], 2);
    assert_eq!(
        v["labels"][0]["cardinality"],
        serde_json::json!([{"label_value": "http_requests_total", "series_count": 5}])
    );
    // Another tenant sees its own (empty) head.
    let (_, text) = send(&app, get("/api/v1/cardinality/label_names", "b")).await;
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["label_names_count"], 0);
}

#[tokio::test]
async fn usage_is_accounted_per_tenant_in_sql_and_metrics() {
    let (app, _, _) = app().await;
    let body = payload(vec![
        series(
            &[("__name__", "m"), ("i", "1")],
            &[(1_000, 1.0), (2_000, 2.0)],
        ),
        series(&[("__name__", "m"), ("i", "2")], &[(1_000, 1.0)]),
    ]);
    let bytes = body.len();
    assert_eq!(
        send(&app, write_req(Some("a"), body)).await.0,
        StatusCode::NO_CONTENT
    );
    let q = Request::get("/api/v1/query?query=sum_over_time(m%5B1m%5D)&time=2")
        .header("X-Scope-OrgID", "a")
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&app, q).await.0, StatusCode::OK);
    let (status, v) = sql(
        &app,
        Some("a"),
        "SELECT tenant, samples_ingested, bytes_ingested, active_series, queries, query_samples FROM system.usage",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["rows"], serde_json::json!([["a", 3, bytes, 2, 1, 3]]));
    // Tenant b sees its own row: nothing of a's.
    let (_, v) = sql(
        &app,
        Some("b"),
        "SELECT tenant, samples_ingested, active_series FROM system.usage",
    )
    .await;
    assert_eq!(v["rows"], serde_json::json!([["b", 0, 0]]));
    let (_, metrics) = send(&app, Request::get("/metrics").body(Body::empty()).unwrap()).await;
    assert!(
        metrics.contains(&format!(
            "strata_ingested_bytes_total{{tenant=\"a\"}} {bytes}"
        )),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"strata_queries_total{tenant="a",api="promql"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"strata_query_samples_total{tenant="a"} 3"#),
        "{metrics}"
    );
}

mod isolation {
    //! No response ever carries another tenant's data, whatever tenant
    //! header and token a request brings, with auth on and off.
    use proptest::prelude::*;

    use super::*;
    use crate::auth::{Role, TokenEntry, token_digest};

    const TENANTS: [&str; 3] = ["alpha", "beta", "gamma"];

    fn secret(tenant: &str) -> String {
        format!("secret_{tenant}")
    }

    async fn loaded(auth: bool) -> Router {
        let mut config = ServerConfig::default();
        if auth {
            config.auth.enabled = true;
            config.auth.tokens = TENANTS
                .iter()
                .map(|t| TokenEntry {
                    name: (*t).into(),
                    sha256: token_digest(&format!("token-{t}")),
                    tenant: (*t).into(),
                    roles: vec![Role::Read, Role::Write],
                })
                .collect();
        }
        let (app, _, _) = app_with(config).await;
        for t in TENANTS {
            let body = payload(vec![series(
                &[("__name__", &secret(t)), ("owner", &secret(t))],
                &[(1_000, 7.0)],
            )]);
            let mut req = write_req(Some(t), body);
            if auth {
                req = with_token(req, &format!("Bearer token-{t}"));
            }
            assert_eq!(send(&app, req).await.0, StatusCode::NO_CONTENT);
        }
        app
    }

    const PATHS: [&str; 8] = [
        "/api/v1/query?query=%7B__name__%3D~%22.%2B%22%7D&time=1",
        "/api/v1/query_range?query=%7B__name__%3D~%22.%2B%22%7D&start=0&end=2&step=1",
        "/api/v1/series?match[]=%7B__name__%3D~%22.%2B%22%7D",
        "/api/v1/labels",
        "/api/v1/label/owner/values",
        "/api/v1/label/__name__/values",
        "/api/v1/cardinality/label_values?label_names[]=owner",
        "/api/v1/cardinality/label_names",
    ];

    fn request(path: usize, header: Option<usize>, token: Option<usize>) -> Request<Body> {
        let sql = path == PATHS.len();
        let mut b = if sql {
            Request::post("/api/v1/sql").header("Content-Type", "application/json")
        } else {
            Request::get(PATHS[path])
        };
        if let Some(h) = header {
            b = b.header("X-Scope-OrgID", TENANTS[h]);
        }
        if let Some(t) = token {
            b = b.header("Authorization", format!("Bearer token-{}", TENANTS[t]));
        }
        let body = if sql {
            Body::from(
                serde_json::json!({"query": "SELECT metric, labels['owner'] FROM samples UNION ALL SELECT tenant, tenant FROM system.usage"})
                    .to_string(),
            )
        } else {
            Body::empty()
        };
        b.body(body).unwrap()
    }

    /// The tenant whose data a request may see, if any.
    fn entitled(auth: bool, header: Option<usize>, token: Option<usize>) -> Option<usize> {
        if auth {
            match (token, header) {
                (Some(t), Some(h)) if t == h => Some(t),
                (Some(t), None) => Some(t),
                _ => None,
            }
        } else {
            header
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn responses_hold_only_the_entitled_tenants_data(
            auth in any::<bool>(),
            requests in proptest::collection::vec(
                (0..=PATHS.len(), proptest::option::of(0..3usize), proptest::option::of(0..3usize)),
                1..6,
            ),
        ) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let app = loaded(auth).await;
                for (path, header, token) in requests {
                    let (status, text) = send(&app, request(path, header, token)).await;
                    let allowed = entitled(auth, header, token);
                    for (i, t) in TENANTS.iter().enumerate() {
                        if Some(i) != allowed {
                            prop_assert!(
                                !text.contains(&secret(t)),
                                "{} (auth {auth}, header {header:?}, token {token:?}) leaked {t}: {status} {text}",
                                if path == PATHS.len() { "/api/v1/sql" } else { PATHS[path] }
                            );
                        }
                    }
                    if let Some(i) = allowed && status == StatusCode::OK && [0, 1, 2, 4, 5].contains(&path) {
                        prop_assert!(text.contains(&secret(TENANTS[i])), "{}: own data missing: {text}", PATHS[path]);
                    }
                }
                Ok(())
            })?;
        }
    }
}
