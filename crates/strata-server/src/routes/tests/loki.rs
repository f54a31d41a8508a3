//! The Loki API's limits and LogQL through HTTP: the stream limit is a
//! bound across parallel pushes, flushes and restarts; metric queries
//! over failed pipelines answer Loki's 400.

use super::*;

/// A Loki JSON push of one entry to each stream `job="j", i="<id>"`.
fn push(tenant: &str, ids: std::ops::Range<u32>, line: &str) -> Request<Body> {
    let streams: Vec<_> = ids
        .map(|i| {
            serde_json::json!({
                "stream": {"job": "j", "i": i.to_string()},
                "values": [[format!("{}", 1_700_000_000_000_000_000i64 + i64::from(i)), line]],
            })
        })
        .collect();
    Request::post("/loki/api/v1/push")
        .header("Content-Type", "application/json")
        .header("X-Scope-OrgID", tenant)
        .body(Body::from(
            serde_json::json!({ "streams": streams }).to_string(),
        ))
        .unwrap()
}

fn limits_file(dir: &tempfile::TempDir, body: &str) -> ServerConfig {
    let path = dir.path().join("limits.toml");
    std::fs::write(&path, body).unwrap();
    let mut config = ServerConfig::default();
    config.limits.overrides_file = Some(path);
    config
}

fn streams_held(state: &AppState, tenant: &str) -> usize {
    state
        .storage
        .logs()
        .tenant(&strata_types::TenantId::try_new(tenant).unwrap())
        .map_or(0, |t| t.stream_count())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_pushes_never_pass_a_stream_limit() {
    for round in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let (app, state, _) =
            app_with(limits_file(&dir, "[tenants.small]\nmax_streams = 100\n")).await;
        let tasks: Vec<_> = (0..10u32)
            .map(|r| {
                let app = app.clone();
                tokio::spawn(
                    async move { send(&app, push("small", r * 40..r * 40 + 40, "x")).await },
                )
            })
            .collect();
        let mut accepted = 0;
        for t in tasks {
            match t.await.unwrap() {
                (StatusCode::NO_CONTENT, _) => accepted += 1,
                (StatusCode::TOO_MANY_REQUESTS, text) => {
                    assert!(text.contains("max_streams"), "{text}");
                }
                (other, text) => panic!("round {round}: {other} {text}"),
            }
        }
        assert_eq!(
            (accepted, streams_held(&state, "small")),
            (2, 80),
            "round {round}"
        );
    }
}

#[tokio::test]
async fn a_stream_limit_holds_across_flushes_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let config = limits_file(&dir, "[tenants.small]\nmax_streams = 100\n");
    let store = ObjectStoreHandle::in_memory().unwrap();
    let open = |store: ObjectStoreHandle| {
        let config = config.clone();
        async move {
            let storage = Arc::new(Storage::open(store, Arc::new(Head::new())).await.unwrap());
            let wal = Arc::new(MemoryWal::new());
            let state = AppState::with_wal(config, storage, wal.clone());
            (router(Arc::clone(&state)), state, wal)
        }
    };
    let (app, state, wal) = open(store.clone()).await;
    assert_eq!(
        send(&app, push("small", 0..100, "a")).await.0,
        StatusCode::NO_CONTENT
    );
    let (status, text) = send(&app, push("small", 100..101, "a")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{text}");
    assert!(
        text.contains("100 live log streams") && text.contains("max_streams"),
        "{text}"
    );
    // Another tenant has its own budget (none here).
    assert_eq!(
        send(&app, push("other", 0..200, "a")).await.0,
        StatusCode::NO_CONTENT
    );
    state.storage.flush(wal.as_ref()).await.unwrap();
    assert_eq!(streams_held(&state, "small"), 0);
    let (status, text) = send(&app, push("small", 100..101, "b")).await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "after a flush: {text}"
    );
    assert_eq!(
        send(&app, push("small", 0..100, "b")).await.0,
        StatusCode::NO_CONTENT
    );
    state.storage.flush(wal.as_ref()).await.unwrap();

    // Restarted on the same store: the set is rebuilt from the log files.
    let (app, _, _) = open(store).await;
    let (status, text) = send(&app, push("small", 100..101, "c")).await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "after a restart: {text}"
    );
    assert_eq!(
        send(&app, push("small", 50..100, "c")).await.0,
        StatusCode::NO_CONTENT
    );
    let (_, metrics) = send(&app, Request::get("/metrics").body(Body::empty()).unwrap()).await;
    assert!(
        metrics.contains(r#"strata_rejected_total{tenant="small",reason="max_streams"} 1"#),
        "{metrics}"
    );
}

fn query(q: &str, extra: &[(&str, &str)]) -> Request<Body> {
    let mut pairs = vec![
        ("query", q),
        ("start", "1699999999"),
        ("end", "1700000060"),
        ("step", "60"),
    ];
    pairs.extend_from_slice(extra);
    let q: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    Request::get(format!("/loki/api/v1/query_range?{q}"))
        .header("X-Scope-OrgID", "t")
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn logql_metric_queries_unwrap_and_refuse_failed_pipelines() {
    let dir = tempfile::tempdir().unwrap();
    let (app, _, _) = app_with(limits_file(&dir, "[tenants.t]\nmax_query_series = 3\n")).await;
    for (ids, line) in [
        (0..2, "took=1.5s status=200"),
        (2..4, "took=250ms status=500"),
        (4..5, "status=200"),
    ] {
        assert_eq!(
            send(&app, push("t", ids, line)).await.0,
            StatusCode::NO_CONTENT
        );
    }
    // One stream has no `took`: Loki's pipeline error, a 400 naming it.
    let (status, text) = send(
        &app,
        query(
            r#"sum(sum_over_time({job="j"} | logfmt | unwrap duration(took) [5m]))"#,
            &[],
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    assert!(
        text.contains("pipeline error: 'SampleExtractionErr'"),
        "{text}"
    );
    let (status, text) = send(
        &app,
        query(
            r#"sum by (status) (sum_over_time({job="j"} | logfmt | unwrap duration(took) | __error__="" [5m]))"#,
            &[],
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut got: Vec<(String, String)> = v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let last = s["values"].as_array().unwrap().last().unwrap();
            (
                s["metric"]["status"].as_str().unwrap().to_owned(),
                last[1].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![("200".into(), "3".into()), ("500".into(), "0.5".into())]
    );
    // max_query_series: five streams, a bound of three.
    let (status, text) = send(&app, query(r#"count_over_time({job="j"}[5m])"#, &[])).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
    assert!(text.contains("max_query_series"), "{text}");
}

fn get(path: &str, pairs: &[(&str, &str)]) -> Request<Body> {
    let q: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    Request::get(format!("{path}?{q}"))
        .header("X-Scope-OrgID", "t")
        .body(Body::empty())
        .unwrap()
}

async fn json_of(app: &Router, req: Request<Body>) -> serde_json::Value {
    let (status, text) = send(app, req).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    serde_json::from_str(&text).unwrap()
}

/// The calls Logs Drilldown makes for a service, in its order: limits,
/// labels, fields and a field's values, patterns, then the logs of one
/// pattern through the `|>` filter it builds.
#[tokio::test]
async fn logs_drilldown_calls_answer_in_lokis_shapes() {
    let (app, _, _) = app().await;
    let lines = [
        (
            0..3,
            r#"{"level":"info","status":200,"route":"/pick","took":"15ms"}"#,
        ),
        (
            3..5,
            r#"{"level":"error","status":503,"route":"/pick","took":"2s"}"#,
        ),
    ];
    for (ids, line) in lines {
        assert_eq!(
            send(&app, push("t", ids, line)).await.0,
            StatusCode::NO_CONTENT
        );
    }
    for i in 0..4u32 {
        let line = format!("picking order {i} done in {}ms", 10 + i);
        assert_eq!(
            send(&app, push("t", 10 + i..11 + i, &line)).await.0,
            StatusCode::NO_CONTENT
        );
    }
    let range = [("start", "1699999990"), ("end", "1700000010")];
    let with = |q: &'static str| {
        let mut p = vec![("query", q)];
        p.extend_from_slice(&range);
        p
    };
    let limits = json_of(&app, get("/loki/api/v1/drilldown-limits", &[])).await;
    assert_eq!(limits["pattern_ingester_enabled"], true);
    assert_eq!(limits["limits"]["volume_enabled"], true);
    // The bound a log query is refused past, as Drilldown sizes its queries.
    assert_eq!(limits["limits"]["max_entries_limit_per_query"], 5_000_000);
    assert_eq!(limits["limits"]["retention_period"], "0s");
    let labels = json_of(
        &app,
        get("/loki/api/v1/detected_labels", &with(r#"{job="j"}"#)),
    )
    .await;
    let card: std::collections::HashMap<String, u64> = labels["detectedLabels"]
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
    assert_eq!(card, [("i".to_owned(), 9), ("job".to_owned(), 1)].into());
    let fields = json_of(
        &app,
        get(
            "/loki/api/v1/detected_fields",
            &with(r#"{job="j"} |= "status""#),
        ),
    )
    .await;
    let by: std::collections::HashMap<String, serde_json::Value> = fields["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["label"].as_str().unwrap().to_owned(), f.clone()))
        .collect();
    assert_eq!(by["status"]["type"], "int");
    assert_eq!(by["status"]["cardinality"], 2);
    assert_eq!(by["status"]["parsers"], serde_json::json!(["json"]));
    assert_eq!(by["status"]["jsonPath"], serde_json::json!(["status"]));
    assert_eq!(by["took"]["type"], "duration");
    assert!(!by.contains_key("job"), "{fields}");
    let values = json_of(
        &app,
        get(
            "/loki/api/v1/detected_field/level/values",
            &with(r#"{job="j"}"#),
        ),
    )
    .await;
    assert_eq!(values["values"], serde_json::json!(["error", "info"]));
    let patterns = json_of(&app, get("/loki/api/v1/patterns", &with(r#"{job="j"}"#))).await;
    let found: Vec<(String, u64)> = patterns["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let n = p["samples"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s[1].as_u64().unwrap())
                .sum();
            (p["pattern"].as_str().unwrap().to_owned(), n)
        })
        .collect();
    let picking = found
        .iter()
        .find(|(p, _)| p.starts_with("picking order"))
        .unwrap_or_else(|| panic!("{found:?}"));
    assert_eq!(picking, &("picking order <_> done in <_>".to_owned(), 4));
    // The logs of that pattern, as Drilldown asks for them.
    let q = format!(r#"{{job="j"}} |> "{}""#, picking.0);
    let logs = json_of(
        &app,
        get(
            "/loki/api/v1/query_range",
            &[("query", q.as_str()), range[0], range[1], ("limit", "100")],
        ),
    )
    .await;
    let n: usize = logs["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["values"].as_array().unwrap().len())
        .sum();
    assert_eq!(n, 4);
}

/// `tail` over a real socket: the recent entries first, then each new one
/// once; a metric query and a tenant past its tail limit are refused
/// before the upgrade.
#[tokio::test]
async fn tail_sends_recent_then_new_entries_once() {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};
    let dir = tempfile::tempdir().unwrap();
    let (app, _, _) = app_with(limits_file(
        &dir,
        "[tenants.t]\nmax_concurrent_tail_requests = 1\n",
    ))
    .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(axum::serve(listener, app.clone().into_make_service()).into_future());
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap();
    let push_at = |ts: i64, line: &str| {
        let body = serde_json::json!({"streams": [{"stream": {"job": "tail"}, "values": [[ts.to_string(), line]]}]});
        Request::post("/loki/api/v1/push")
            .header("Content-Type", "application/json")
            .header("X-Scope-OrgID", "t")
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    for (i, line) in ["old one", "old two"].iter().enumerate() {
        let ts = now - 30_000_000_000 + i as i64;
        assert_eq!(
            send(&app, push_at(ts, line)).await.0,
            StatusCode::NO_CONTENT
        );
    }
    let url = |q: &str| {
        let q: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs([("query", q), ("limit", "10")])
            .finish();
        let mut req = format!("ws://{addr}/loki/api/v1/tail?{q}")
            .into_client_request()
            .unwrap();
        req.headers_mut()
            .insert("X-Scope-OrgID", "t".parse().unwrap());
        req
    };
    let (mut ws, _) = tokio_tungstenite::connect_async(url(r#"{job="tail"}"#))
        .await
        .unwrap();
    let next_lines = |msg: Message| -> Vec<String> {
        let v: serde_json::Value = serde_json::from_str(msg.to_text().unwrap()).unwrap();
        v["streams"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| {
                s["values"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e[1].as_str().unwrap().to_owned())
            })
            .collect()
    };
    let first = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(next_lines(first), vec!["old one", "old two"]);
    // A second tail of the tenant is over its limit: 429 before any upgrade.
    let refused = tokio_tungstenite::connect_async(url(r#"{job="tail"}"#)).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 429),
        other => panic!("{other:?}"),
    }
    let new_ts = chrono::Utc::now().timestamp_nanos_opt().unwrap();
    assert_eq!(
        send(&app, push_at(new_ts, "new one")).await.0,
        StatusCode::NO_CONTENT
    );
    let second = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(next_lines(second), vec!["new one"]);
    // Nothing is sent twice: the next message, if any, is not old news.
    let quiet = tokio::time::timeout(std::time::Duration::from_millis(2500), ws.next()).await;
    assert!(quiet.is_err(), "{quiet:?}");
    ws.send(Message::Close(None)).await.unwrap();
    drop(ws);
    let (status, text) = send(
        &app,
        Request::get("/loki/api/v1/tail?query=count_over_time(%7Bjob%3D%22tail%22%7D%5B1m%5D)")
            .header("X-Scope-OrgID", "t")
            .header("Connection", "upgrade")
            .header("Upgrade", "websocket")
            .header("Sec-WebSocket-Version", "13")
            .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    assert!(text.contains("log query"), "{text}");
}

/// A needle search over files reads only the blocks of rows the files'
/// line indexes keep (`/metrics` counts them), and finds what a full
/// scan finds: LogQL `|=` and `|~` with an alternation, SQL `LIKE`.
#[tokio::test]
async fn needle_searches_read_only_the_blocks_that_may_hold_them() {
    let (app, state, wal) = app().await;
    const LINES: u32 = 30_000;
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let order = "WH/OUT/0000123456789";
    let line = |i: u32| match i {
        5 => format!("GET /api/v1/shipments 200 uid={i} trace={trace}"),
        20_000 => format!("POST /api/v1/receipts 500 uid={i} order {order} failed"),
        _ => format!("GET /api/v1/shipments 200 uid={i} took {}ms", i % 997),
    };
    for chunk in (0..LINES).collect::<Vec<_>>().chunks(10_000) {
        let values: Vec<_> = chunk
            .iter()
            .map(|&i| {
                serde_json::json!([
                    (1_700_000_000_000_000_000i64 + i64::from(i) * 1_000_000).to_string(),
                    line(i)
                ])
            })
            .collect();
        let body = serde_json::json!({"streams": [{"stream": {"job": "n"}, "values": values}]});
        let req = Request::post("/loki/api/v1/push")
            .header("Content-Type", "application/json")
            .header("X-Scope-OrgID", "t")
            .body(Body::from(body.to_string()))
            .unwrap();
        assert_eq!(send(&app, req).await.0, StatusCode::NO_CONTENT);
    }
    // The head holds the lines packed: /metrics shows what it took and
    // what holds the lines.
    let (_, metrics) = send(&app, Request::get("/metrics").body(Body::empty()).unwrap()).await;
    let gauge = |name: &str| -> u64 {
        let prefix = format!("{name}{{tenant=\"t\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name}: {metrics}"))
    };
    let (taken, held) = (
        gauge("strata_head_log_bytes"),
        gauge("strata_head_log_text_bytes"),
    );
    assert!(taken > 1_000_000 && held < taken / 2, "{held} of {taken}");
    // From the head, where line filters are tested before lines are
    // copied (a superset: SQL applies them again) and only the columns
    // asked for are built: the answers are SQL's, OR and NOT LIKE too.
    for (filter, want) in [
        (
            format!("line LIKE '%{order}%'"),
            serde_json::json!([1, line(20_000)]),
        ),
        (
            format!("line LIKE '%{order}%' OR line LIKE '%{trace}%'"),
            serde_json::json!([2, line(5)]),
        ),
        (
            format!("line LIKE '%{trace}%' AND line NOT LIKE '%{order}%'"),
            serde_json::json!([1, line(5)]),
        ),
    ] {
        let (status, v) = sql(
            &app,
            Some("t"),
            &format!("SELECT count(*) AS n, min(line) AS l FROM logs WHERE {filter}"),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{v}");
        assert_eq!(v["rows"][0], want, "{filter}: {v}");
    }
    state.storage.flush(wal.as_ref()).await.unwrap();
    let lines_of = |v: &serde_json::Value| -> Vec<String> {
        let mut out: Vec<String> = v["data"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["values"].as_array().unwrap().iter())
            .map(|e| e[1].as_str().unwrap().to_owned())
            .collect();
        out.sort();
        out
    };
    let blocks = |metrics: &str, outcome: &str| -> u64 {
        let key = format!("strata_logs_line_index_blocks_total{{outcome=\"{outcome}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&key))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    };
    let q = format!(r#"{{job="n"}} |= "{trace}""#);
    let v = json_of(&app, query(&q, &[("limit", "10")])).await;
    assert_eq!(lines_of(&v), vec![line(5)]);
    let (_, metrics) = send(&app, Request::get("/metrics").body(Body::empty()).unwrap()).await;
    // 30,000 rows are 4 blocks of 8,192: the needle's is read, the rest
    // skipped.
    assert_eq!(
        (blocks(&metrics, "read"), blocks(&metrics, "skipped")),
        (1, 3),
        "{metrics}"
    );
    let q = format!(r#"{{job="n"}} |~ "trace={trace}|order {order}""#);
    let v = json_of(&app, query(&q, &[("limit", "10")])).await;
    assert_eq!(lines_of(&v), vec![line(5), line(20_000)]);
    let (status, v) = sql(
        &app,
        Some("t"),
        &format!("SELECT count(*) AS n, min(line) AS l FROM logs WHERE line LIKE '%{order}%'"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["rows"][0], serde_json::json!([1, line(20_000)]), "{v}");
    let (_, metrics) = send(&app, Request::get("/metrics").body(Body::empty()).unwrap()).await;
    assert_eq!(
        (blocks(&metrics, "read"), blocks(&metrics, "skipped")),
        (4, 8),
        "{metrics}"
    );
    // A common text rules nothing out: every block is read, all found.
    let (status, v) = sql(
        &app,
        Some("t"),
        "SELECT count(*) AS n FROM logs WHERE line LIKE '%GET /api/v1/shipments 200%'",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["rows"][0], serde_json::json!([LINES - 1]), "{v}");
    let (_, metrics) = send(&app, Request::get("/metrics").body(Body::empty()).unwrap()).await;
    assert_eq!(
        (blocks(&metrics, "read"), blocks(&metrics, "skipped")),
        (8, 8),
        "{metrics}"
    );
    // Flushed twice then compacted: the merged file's index is built
    // from the merged rows.
    let late = serde_json::json!({"streams": [{"stream": {"job": "n"}, "values": [
        [(1_700_000_000_000_000_000i64 + 40_000_000_000).to_string(), format!("late trace={trace}")]
    ]}]});
    let req = Request::post("/loki/api/v1/push")
        .header("Content-Type", "application/json")
        .header("X-Scope-OrgID", "t")
        .body(Body::from(late.to_string()))
        .unwrap();
    assert_eq!(send(&app, req).await.0, StatusCode::NO_CONTENT);
    state.storage.flush(wal.as_ref()).await.unwrap();
    let report = state
        .storage
        .compact(
            1_700_000_000_000 + 3 * 86_400_000,
            std::time::Duration::ZERO,
        )
        .await
        .unwrap();
    assert!(report.jobs > 0, "{report:?}");
    let files = state
        .storage
        .log_view(&strata_types::TenantId::try_new("t").unwrap())
        .files;
    assert_eq!(files.len(), 1, "{files:?}");
    let q = format!(r#"{{job="n"}} |= "{trace}""#);
    let v = json_of(&app, query(&q, &[("limit", "10")])).await;
    assert_eq!(lines_of(&v), vec![line(5), format!("late trace={trace}")]);
    let (_, metrics) = send(&app, Request::get("/metrics").body(Body::empty()).unwrap()).await;
    // 30,001 rows: the first and the last block hold the needle.
    assert_eq!(
        (blocks(&metrics, "read"), blocks(&metrics, "skipped")),
        (10, 10),
        "{metrics}"
    );
}
