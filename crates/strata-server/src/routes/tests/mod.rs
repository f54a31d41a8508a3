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

/// An OTLP/HTTP JSON metrics request of `tenant`.
fn otlp_json_req(tenant: &str, body: &serde_json::Value) -> Request<Body> {
    Request::post("/v1/metrics")
        .header("Content-Type", "application/json")
        .header("X-Scope-OrgID", tenant)
        .body(Body::from(body.to_string()))
        .unwrap()
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
            write_req(None, bad_labels(&[("__name__", "x"), ("", "1")])),
            StatusCode::BAD_REQUEST,
            "empty label name",
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
            StatusCode::BAD_REQUEST,
            "reserved in remote write 2.0",
        ),
        (
            Request::post("/api/v1/write")
                .header(
                    "Content-Type",
                    "application/x-protobuf;proto=io.prometheus.write.v3.Request",
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

/// The same query in every format, chosen by body, query string or
/// `Accept`; each decodes to the same rows.
#[tokio::test]
async fn sql_results_in_json_csv_arrow_and_parquet() {
    let (app, _, _) = app().await;
    let body = payload(vec![series(
        &[("__name__", "up"), ("job", "api")],
        &[(1_700_000_000_000, 1.0), (1_700_000_015_000, 0.5)],
    )]);
    assert_eq!(
        app.clone()
            .oneshot(write_req(None, body))
            .await
            .unwrap()
            .status(),
        StatusCode::NO_CONTENT
    );
    let q = "SELECT job, timestamp, value, labels FROM samples JOIN up USING (timestamp, value) ORDER BY timestamp";
    let fetch = |uri: &'static str, format: Option<&'static str>, accept: Option<&'static str>| {
        let app = app.clone();
        async move {
            let mut body = serde_json::json!({"query": q});
            if let Some(f) = format {
                body["format"] = f.into();
            }
            let mut b = Request::post(uri);
            if let Some(a) = accept {
                b = b.header("Accept", a);
            }
            let resp = app
                .oneshot(b.body(Body::from(body.to_string())).unwrap())
                .await
                .unwrap();
            let status = resp.status();
            let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
            let bytes = to_bytes(resp.into_body(), usize::MAX).await.unwrap();
            (status, ct, bytes)
        }
    };
    let (s, ct, json) = fetch("/api/v1/sql", None, None).await;
    assert_eq!((s, ct.as_str()), (StatusCode::OK, "application/json"));
    let json: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(
        json["rows"],
        serde_json::json!([
            ["api", "2023-11-14T22:13:20Z", 1.0, {"job": "api"}],
            ["api", "2023-11-14T22:13:35Z", 0.5, {"job": "api"}],
        ])
    );

    let (s, ct, csv) = fetch("/api/v1/sql?format=csv", None, None).await;
    assert_eq!(
        (s, ct.as_str()),
        (StatusCode::OK, "text/csv; charset=utf-8")
    );
    assert_eq!(
        String::from_utf8_lossy(&csv),
        "job,timestamp,value,labels\n\
         api,2023-11-14T22:13:20Z,1.0,\"{\"\"job\"\":\"\"api\"\"}\"\n\
         api,2023-11-14T22:13:35Z,0.5,\"{\"\"job\"\":\"\"api\"\"}\"\n"
    );

    let (s, ct, ipc) = fetch(
        "/api/v1/sql",
        None,
        Some("application/vnd.apache.arrow.stream"),
    )
    .await;
    assert_eq!(
        (s, ct.as_str()),
        (StatusCode::OK, "application/vnd.apache.arrow.stream")
    );
    let reader =
        arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(ipc), None).unwrap();
    let batches: Vec<_> = reader.map(|b| b.unwrap()).collect();
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 2);
    assert_eq!(batches[0].schema().field(0).name(), "job");

    let (s, ct, pq) = fetch("/api/v1/sql", Some("parquet"), Some("text/csv")).await;
    assert_eq!(
        (s, ct.as_str()),
        (StatusCode::OK, "application/vnd.apache.parquet")
    );
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReader::try_new(pq, 1024).unwrap();
    let rows: usize = reader.map(|b| b.unwrap().num_rows()).sum();
    assert_eq!(rows, 2);

    let (s, _, body) = fetch("/api/v1/sql", Some("xml"), None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&body).contains("unknown format"));
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
    // A JSON API says what happened in its errorType, not "bad_data".
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut gz, &vec![b' '; 100_000]).unwrap();
    let req = Request::post("/api/v1/logs")
        .header("Content-Type", "application/x-ndjson")
        .header("Content-Encoding", "gzip")
        .body(Body::from(gz.finish().unwrap()))
        .unwrap();
    let (s, body) = send(&app, req).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert!(
        body.contains(r#""errorType":"payload_too_large""#),
        "{body}"
    );
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
        body.len() >= crate::frontend::write::BLOCKING_DECODE_BYTES,
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

mod created;
mod exemplars;
mod frontdoor;
mod ha;
mod histograms;
mod loki;
mod prom;
mod ruler;
mod tenancy;
mod ui;

/// Two flush files of `tenant` holding samples at `day` (hour 0).
async fn two_flushes_at(
    state: &AppState,
    wal: &MemoryWal,
    tenant: &strata_types::TenantId,
    day: i64,
) {
    for ts in [day, day + 1000] {
        let batch = strata_types::WriteBatch::from_series(
            tenant.clone(),
            vec![
                strata_types::SeriesSamples::try_from_pairs(&[("__name__", "up")], &[(ts, 1.0)])
                    .unwrap(),
            ],
        );
        state.storage.write(wal, Arc::new(batch)).await.unwrap();
        state.storage.flush(wal).await.unwrap();
    }
}

#[tokio::test]
async fn writes_wait_while_compaction_is_an_hour_behind() {
    const HOUR: i64 = 3_600_000;
    let delay = std::time::Duration::from_secs(600);
    let tenant = strata_types::TenantId::try_new("acme").unwrap();
    // Two flush files of hour 0 of tomorrow: their merge is due at 01:10.
    let day = (chrono::Utc::now().timestamp_millis() / (24 * HOUR) + 1) * 24 * HOUR;
    let (app, state, wal) = app().await;
    two_flushes_at(&state, wal.as_ref(), &tenant, day).await;
    let write = || {
        write_req(
            Some("acme"),
            payload(vec![series(
                &[("__name__", "up")],
                &[(1_700_000_000_000, 1.0)],
            )]),
        )
    };

    // 50 minutes late: within the default bound (1h).
    state.storage.refresh_compaction_lag(day + 2 * HOUR, delay);
    assert_eq!(send(&app, write()).await.0, StatusCode::NO_CONTENT);

    // Hours late: refused, retryable, saying why; other tenants write.
    state.storage.refresh_compaction_lag(day + 5 * HOUR, delay);
    let resp = app.clone().oneshot(write()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(resp.headers()["retry-after"], "10");
    let body = to_bytes(resp.into_body(), usize::MAX).await.unwrap();
    let body = String::from_utf8_lossy(&body);
    assert!(
        body.contains("tenant acme's metrics compaction is 3h 50m behind")
            && body.contains("max_compaction_lag"),
        "{body}"
    );
    let other = write_req(
        Some("globex"),
        payload(vec![series(
            &[("__name__", "up")],
            &[(1_700_000_000_000, 1.0)],
        )]),
    );
    assert_eq!(send(&app, other).await.0, StatusCode::NO_CONTENT);
    let (_, metrics) = send(&app, Request::get("/metrics").body(Body::empty()).unwrap()).await;
    assert!(
        metrics.contains(r#"strata_rejected_total{tenant="acme",reason="compaction_lag"} 1"#),
        "{metrics}"
    );

    // Caught up: accepted again.
    state.storage.compact(day + 5 * HOUR, delay).await.unwrap();
    state.storage.refresh_compaction_lag(day + 5 * HOUR, delay);
    assert_eq!(send(&app, write()).await.0, StatusCode::NO_CONTENT);

    // Flow control off.
    let mut config = ServerConfig::default();
    config.storage.max_compaction_lag = std::time::Duration::ZERO;
    let (app, state, wal) = app_with(config).await;
    two_flushes_at(&state, wal.as_ref(), &tenant, day).await;
    state.storage.refresh_compaction_lag(day + 5 * HOUR, delay);
    assert_eq!(send(&app, write()).await.0, StatusCode::NO_CONTENT);
}
