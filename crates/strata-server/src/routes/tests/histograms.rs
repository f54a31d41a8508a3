//! Native histograms through remote write: stored (1.0 and 2.0), counted
//! in the written-histograms header, kept in the tenant's histograms table
//! at a flush, invalid ones refused with 400 and nothing stored.

use super::*;
use strata_storage::histogram_files::read_file;
use strata_types::TenantId;

const T0: i64 = 1_700_000_000_000;

fn histogram(t: i64, count: u64) -> proto::Histogram {
    proto::Histogram {
        count_int: Some(count),
        sum: 2.5,
        schema: 0,
        zero_threshold: 1e-128,
        zero_count_int: Some(1),
        positive_spans: vec![proto::BucketSpan {
            offset: 0,
            length: 2,
        }],
        // Counts 1 and count - 2.
        positive_deltas: vec![1, count as i64 - 3],
        timestamp: t,
        ..Default::default()
    }
}

fn v2_request(tenant: &str, histograms: Vec<proto::Histogram>) -> Request<Body> {
    let mut req = proto::v2::Request::from_series(&[(
        vec![("__name__", "pick_seconds"), ("site", "dc1")],
        vec![],
    )]);
    req.timeseries[0].histograms = histograms;
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

/// Writes `histograms` of `tenant` through remote write 2.0, stored (204).
async fn stored(app: &Router, tenant: &str, histograms: Vec<proto::Histogram>) {
    let resp = app
        .clone()
        .oneshot(v2_request(tenant, histograms))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
}

fn written(resp: &axum::response::Response) -> String {
    resp.headers()
        .get("X-Prometheus-Remote-Write-Histograms-Written")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

/// (site, time, count) of every histogram in `tenant`'s table files.
async fn in_table(state: &AppState, tenant: &str) -> Vec<(String, i64, f64)> {
    let (files, root, store) = state
        .storage
        .histogram_files(&TenantId::try_new(tenant).unwrap());
    let mut out = Vec::new();
    for f in files.iter() {
        for (labels, s) in read_file(store.store(), &root, f).await.unwrap() {
            out.push((
                labels.get("site").unwrap_or("").to_owned(),
                s.timestamp_ms,
                s.histogram.count,
            ));
        }
    }
    out.sort_by(|a, b| a.partial_cmp(b).unwrap());
    out
}

#[tokio::test]
async fn native_histograms_are_stored_counted_and_flushed_per_tenant() {
    let (app, state, wal) = app().await;
    // 2.0: two histograms of one series, counted in the header.
    let resp = app
        .clone()
        .oneshot(v2_request(
            "acme",
            vec![histogram(T0, 5), histogram(T0 + 15_000, 7)],
        ))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(written(&resp), "2");
    // 1.0: one more, of another series, beside a float sample.
    let mut ts = series(
        &[("__name__", "pick_seconds"), ("site", "dc2")],
        &[(T0, 1.0)],
    );
    ts.histograms.push(histogram(T0, 9));
    let resp = app
        .clone()
        .oneshot(write_req(Some("acme"), payload(vec![ts])))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(written(&resp), "1");
    assert_eq!(wal.histogram_records().len(), 2, "each request one record");

    // An invalid histogram (its count disagrees with its buckets) refuses
    // the whole request: nothing of it is stored.
    let mut bad = histogram(T0 + 30_000, 5);
    bad.count_int = Some(50);
    let resp = app
        .clone()
        .oneshot(v2_request("acme", vec![histogram(T0 + 45_000, 5), bad]))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(written(&resp), "0");
    let body = String::from_utf8(
        axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap()
            .to_vec(),
    )
    .unwrap();
    assert!(
        body.contains("pick_seconds") && body.contains("50"),
        "{body}"
    );
    assert_eq!(wal.histogram_records().len(), 2);
    assert_eq!(state.storage.histograms_pending(), 3);
    let (_, metrics) = send(&app, Request::get("/metrics").body(Body::empty()).unwrap()).await;
    assert!(metrics.contains("strata_histograms_pending 3"), "{metrics}");

    // Another tenant's write stays its own.
    stored(&app, "other", vec![histogram(T0, 3)]).await;

    state.storage.flush(wal.as_ref()).await.unwrap();
    assert_eq!(state.storage.histograms_pending(), 0);
    assert_eq!(
        in_table(&state, "acme").await,
        vec![
            ("dc1".into(), T0, 5.0),
            ("dc1".into(), T0 + 15_000, 7.0),
            ("dc2".into(), T0, 9.0)
        ]
    );
    assert_eq!(
        in_table(&state, "other").await,
        vec![("dc1".into(), T0, 3.0)]
    );
}

/// A histogram series is a series of the tenant's series limit and its
/// labels pass the label limits: past them the whole request is refused
/// and nothing of it is written.
#[tokio::test]
async fn histogram_series_count_against_the_series_and_label_limits() {
    let mut config = ServerConfig::default();
    config.limits.tenant_defaults.max_series = 2;
    config.limits.tenant_defaults.max_label_value_length = 16;
    let (app, _, wal) = app_with(config).await;
    let with = |site: &str, floats: &[(i64, f64)]| {
        let mut ts = series(&[("__name__", "pick_seconds"), ("site", site)], floats);
        ts.histograms.push(histogram(T0, 5));
        ts
    };
    let req = |ts| write_req(Some("acme"), payload(ts));
    // One float series and one histogram series: two, at the limit.
    let float = series(&[("__name__", "up"), ("site", "dc1")], &[(T0, 1.0)]);
    let resp = app
        .clone()
        .oneshot(req(vec![float, with("dc1", &[])]))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    // A third series, a histogram one: refused whole.
    let (status, text) = send(&app, req(vec![with("dc2", &[])])).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{text}");
    assert!(text.contains("max_series"), "{text}");
    // A label value over 16 bytes on a histogram series: refused.
    let (status, text) = send(&app, req(vec![with("a-very-long-site-name", &[])])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    assert!(text.contains("max_label_value_length"), "{text}");
    assert_eq!(wal.histogram_records().len(), 1, "nothing more written");
    // The known histogram series still flows.
    let resp = app
        .clone()
        .oneshot(req(vec![with("dc1", &[])]))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
}

/// HA pairs: a histogram-only request elects from its first histogram
/// series; the elected replica's histograms are stored without the replica
/// label, the other replica's are answered 202 and not stored.
#[tokio::test]
async fn ha_replicas_sending_only_histograms_are_deduplicated() {
    let mut config = ServerConfig::default();
    config.limits.tenant_defaults.accept_ha_samples = true;
    config.validate().unwrap();
    let (app, state, wal) = app_with(config).await;
    let from = |replica: &str, t: i64| {
        let mut ts = series(
            &[
                ("__name__", "pick_seconds"),
                ("__replica__", replica),
                ("cluster", "eu"),
            ],
            &[],
        );
        ts.histograms.push(histogram(t, 5));
        write_req(Some("acme"), payload(vec![ts]))
    };
    assert_eq!(send(&app, from("a", T0)).await.0, StatusCode::NO_CONTENT);
    let (status, body) = send(&app, from("b", T0 + 1)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(wal.histogram_records().len(), 1, "b's not written");
    state.storage.flush(wal.as_ref()).await.unwrap();
    let (files, root, store) = state
        .storage
        .histogram_files(&TenantId::try_new("acme").unwrap());
    let rows = read_file(store.store(), &root, &files[0]).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0.get("__replica__"), None, "{:?}", rows[0].0);
    assert_eq!(rows[0].0.get("cluster"), Some("eu"));
}

/// `query` at `t_ms` through `/api/v1/query` as `tenant`: the result.
async fn prom_query(app: &Router, tenant: &str, query: &str, t_ms: i64) -> serde_json::Value {
    let uri = format!(
        "/api/v1/query?query={}&time={}",
        url_escape(query),
        t_ms as f64 / 1000.0
    );
    let req = Request::get(uri)
        .header("X-Scope-OrgID", tenant)
        .body(Body::empty())
        .unwrap();
    let (status, body) = send(app, req).await;
    assert_eq!(status, StatusCode::OK, "{query}: {body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["data"]["result"].clone()
}

fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// PromQL over stored native histograms: the same answers from the head
/// and, after a flush, from the table's files; the samples in Prometheus'
/// `histogram` shape; another tenant's histograms never seen.
#[tokio::test]
async fn promql_answers_native_histograms_from_head_and_files_alike() {
    let (app, state, wal) = app().await;
    // A counter histogram every 15 s: 4 more observations each time.
    let samples: Vec<_> = (0..9)
        .map(|i| histogram(T0 + i * 15_000, 5 + 4 * i as u64))
        .collect();
    stored(&app, "acme", samples).await;
    stored(&app, "other", vec![histogram(T0, 100)]).await;
    let at = T0 + 120_000;
    let queries = [
        "pick_seconds",
        "histogram_count(pick_seconds)",
        "histogram_sum(rate(pick_seconds[1m]))",
        "histogram_count(increase(pick_seconds[2m]))",
        "histogram_quantile(0.5, pick_seconds)",
        "histogram_fraction(0, 1, pick_seconds)",
        "sum(pick_seconds) * 2",
    ];
    let mut from_head = Vec::new();
    for q in queries {
        from_head.push(prom_query(&app, "acme", q, at).await);
    }
    // The newest sample: count 37, the zero bucket and two buckets.
    let h = &from_head[0][0]["histogram"][1];
    assert_eq!(h["count"], "37", "{h}");
    assert_eq!(h["buckets"][0][0], 3, "the zero bucket is closed: {h}");
    assert_eq!(from_head[1][0]["value"][1], "37");
    // 4 observations per 15 s: 16 per minute, 32 over two.
    let count_rate = prom_query(&app, "acme", "histogram_count(rate(pick_seconds[1m]))", at).await;
    let per_second: f64 = count_rate[0]["value"][1].as_str().unwrap().parse().unwrap();
    assert!((per_second - 4.0 / 15.0).abs() < 1e-9, "{count_rate}");
    let increase: f64 = from_head[3][0]["value"][1]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((increase - 32.0).abs() < 1e-9, "{increase}");
    assert_eq!(from_head[6][0]["histogram"][1]["count"], "74");

    state.storage.flush(wal.as_ref()).await.unwrap();
    assert_eq!(state.storage.histograms_pending(), 0);
    for (q, head) in queries.iter().zip(&from_head) {
        assert_eq!(&prom_query(&app, "acme", q, at).await, head, "{q}");
    }
    assert_eq!(
        prom_query(&app, "other", "histogram_count(pick_seconds)", at).await[0]["value"][1],
        "100"
    );
}

/// SQL reads the `histograms` table (held and flushed alike, each sample
/// once, only the tenant's) and the histogram functions answer what
/// PromQL answers for the same sample.
#[tokio::test]
async fn sql_reads_native_histograms_and_their_quantiles() {
    let (app, state, wal) = app().await;
    stored(
        &app,
        "acme",
        vec![histogram(T0, 5), histogram(T0 + 15_000, 9)],
    )
    .await;
    stored(&app, "other", vec![histogram(T0, 100)]).await;
    let h = "histogram(schema, zero_threshold, zero_count, count, sum, positive_buckets, \
             positive_counts, negative_buckets, negative_counts, custom_values)";
    let q = format!(
        "SELECT labels['site'] AS site, count, hist_quantile(0.5, {h}) AS p50, \
         hist_fraction(0, 1, {h}) AS f FROM histograms ORDER BY timestamp"
    );
    let (status, before) = sql(&app, Some("acme"), &q).await;
    assert_eq!(status, StatusCode::OK, "{before}");
    let rows = before["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{before}");
    assert_eq!(rows[1][1], 9.0, "{before}");
    // PromQL's answer for the newer sample.
    let p50 = prom_query(
        &app,
        "acme",
        "histogram_quantile(0.5, pick_seconds)",
        T0 + 15_000,
    )
    .await;
    let want: f64 = p50[0]["value"][1].as_str().unwrap().parse().unwrap();
    assert!(
        (rows[1][2].as_f64().unwrap() - want).abs() < 1e-12,
        "{before} {p50}"
    );
    let buckets = format!(
        "SELECT b['lower'] AS lower, b['upper'] AS upper, b['count'] AS n FROM \
         (SELECT unnest(hist_buckets({h})) AS b FROM histograms WHERE count = 9)"
    );
    let (status, b) = sql(&app, Some("acme"), &buckets).await;
    assert_eq!(status, StatusCode::OK, "{b}");
    // The zero bucket (1), bucket 0 (0.5, 1] (1) and bucket 1 (1, 2] (7).
    let got: Vec<Vec<f64>> = b["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect()
        })
        .collect();
    let want = [[-1e-128, 1e-128, 1.0], [0.5, 1.0, 1.0], [1.0, 2.0, 7.0]];
    assert_eq!(got.len(), want.len(), "{b}");
    for (g, w) in got.iter().zip(want) {
        for (x, y) in g.iter().zip(w) {
            assert!((x - y).abs() <= 1e-12 * y.abs(), "{b}");
        }
    }

    state.storage.flush(wal.as_ref()).await.unwrap();
    let (status, after) = sql(&app, Some("acme"), &q).await;
    assert_eq!(status, StatusCode::OK, "{after}");
    assert_eq!(after["rows"], before["rows"]);
    let (_, other) = sql(&app, Some("other"), "SELECT count FROM histograms").await;
    assert_eq!(other["rows"], serde_json::json!([[100.0]]), "{other}");
}
