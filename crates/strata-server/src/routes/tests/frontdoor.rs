//! The front door: no tenant's request may take the server down or reach
//! past auth. Each test is a finding of the tenant-level attack pass.

use super::*;

fn get_q(path: &str, pairs: &[(&str, &str)]) -> Request<Body> {
    let q: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    Request::get(format!("{path}?{q}"))
        .body(Body::empty())
        .unwrap()
}

fn form(path: &str, pairs: &[(&str, &str)]) -> Request<Body> {
    let body: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    Request::post(path)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .unwrap()
}

/// Finding 6: deep nesting in every language is a 400 naming the limit,
/// not a stack overflow that aborts the process.
#[tokio::test]
async fn deep_nesting_is_refused_in_every_language() {
    let (app, _, _) = app().await;
    let deep_promql = format!("{}up{}", "abs(".repeat(3000), ")".repeat(3000));
    let parens = format!("{}1{}", "(".repeat(5000), ")".repeat(5000));
    let deep_logql = format!("{}vector(1){}", "(".repeat(2000), ")".repeat(2000));
    let chain_logql = format!("vector(1){}", "+vector(1)".repeat(5000));
    let chain_sql = format!("SELECT 1{}", "+1".repeat(2000));
    // One level past the limit (a URL holds no more).
    let just_past = format!("{}up{}", "abs(".repeat(1000), ")".repeat(1000));
    for req in [
        form("/api/v1/query", &[("query", &deep_promql), ("time", "1")]),
        form(
            "/api/v1/query_range",
            &[
                ("query", &deep_promql),
                ("start", "1"),
                ("end", "2"),
                ("step", "1"),
            ],
        ),
        form("/api/v1/format_query", &[("query", &parens)]),
        form("/api/v1/series", &[("match[]", &deep_promql)]),
        form(
            "/loki/api/v1/query",
            &[("query", &deep_logql), ("time", "1")],
        ),
        form(
            "/loki/api/v1/query",
            &[("query", &chain_logql), ("time", "1")],
        ),
        get_q("/api/v1/capacity", &[("usage", &just_past), ("limit", "1")]),
    ] {
        let uri = req.uri().clone();
        let (status, body) = send(&app, req).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
        assert!(body.contains("nested too deeply"), "{uri}: {body}");
    }
    for q in [
        chain_sql.clone(),
        format!("SELECT * FROM capacity('{}', 100)", deep_promql),
    ] {
        let (status, v) = sql(&app, None, &q).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
        assert!(v.to_string().contains("nested too deeply"), "{v}");
    }
    // The server answers on.
    let (status, v) = sql(&app, None, "SELECT 1+1+1 AS three").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["rows"][0][0], 3);
}

/// Finding 7: a spec that would abort its background evaluation is
/// refused at PUT (PromQL and SQL alike), and the file is unchanged.
#[tokio::test]
async fn deep_specs_are_refused_at_put() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("specs.toml");
    std::fs::write(&file, "").unwrap();
    let mut config = ServerConfig::default();
    config.slo.file = Some(file.clone());
    let (app, _, _) = app_with(config).await;
    let deep = format!("{}x{}", "(".repeat(2800), ")".repeat(2800));
    let chain_sql = format!(
        "SELECT route, count(*){} FROM t WHERE timestamp >= $start AND timestamp < $end GROUP BY 1",
        "+1".repeat(2000)
    );
    for body in [
        serde_json::json!({"objective": 0.99, "good": format!("{deep}[$window]"), "total": "y[$window]"}),
        serde_json::json!({"objective": 0.99, "good_sql": chain_sql, "total_sql": "SELECT 1 WHERE $start < $end"}),
    ] {
        let req = Request::put("/api/v1/specs/slo/x")
            .header("Content-Type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        let (status, text) = send(&app, req).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
        assert!(text.contains("nested too deeply"), "{text}");
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "");
}

/// Finding 8: a sample outside the storable range is refused whole at
/// ingest, naming the range; nothing of the request is stored, and the
/// next flush (every tenant's) works.
#[tokio::test]
async fn far_out_timestamps_are_refused_and_flushes_go_on() {
    let (app, state, wal) = app().await;
    for ts in [253_402_300_800_000, i64::MAX, i64::MIN, -62_000_000_000_000] {
        let body = payload(vec![
            series(&[("__name__", "ok"), ("job", "a")], &[(1_000, 1.0)]),
            series(&[("__name__", "evil"), ("job", "a")], &[(ts, 1.0)]),
        ]);
        let (status, text) = send(&app, write_req(Some("evil"), body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{ts}: {text}");
        assert!(text.contains("outside the storable range"), "{text}");
        assert!(text.contains("2262-04-11"), "{text}");
    }
    assert!(wal.records().is_empty(), "nothing reached the WAL");
    assert!(
        state
            .head
            .tenant(&strata_types::TenantId::try_new("evil").unwrap())
            .is_none()
    );
    // The edges of the range are stored, and flush.
    let edges = payload(vec![series(
        &[("__name__", "edge"), ("job", "a")],
        &[
            (strata_types::MIN_TIMESTAMP_MS, 1.0),
            (strata_types::MAX_TIMESTAMP_MS, 2.0),
        ],
    )]);
    let (status, text) = send(&app, write_req(Some("evil"), edges)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{text}");
    let ok = payload(vec![series(
        &[("__name__", "up"), ("job", "a")],
        &[(1_000, 1.0)],
    )]);
    let (status, _) = send(&app, write_req(Some("good"), ok)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    state.storage.flush(wal.as_ref()).await.unwrap();
    let (status, v) = sql(&app, Some("evil"), "SELECT count(*) FROM samples").await;
    assert_eq!(
        (status, v["rows"][0][0].clone()),
        (StatusCode::OK, 2.into()),
        "{v}"
    );
    let (status, v) = sql(&app, Some("good"), "SELECT count(*) FROM samples").await;
    assert_eq!(
        (status, v["rows"][0][0].clone()),
        (StatusCode::OK, 1.into()),
        "{v}"
    );
}

/// Finding 9: SQL has a memory bound per query (an error, not an abort)
/// and a timeout.
#[tokio::test]
async fn sql_is_bounded_in_memory_and_time() {
    let mut config = ServerConfig::default();
    config.sql.max_query_memory = crate::ByteSize(16 << 20);
    config.sql.max_memory = crate::ByteSize(32 << 20);
    config.promql.timeout = std::time::Duration::from_millis(1500);
    let (app, state, _) = app_with(config).await;
    let (status, v) = sql(
        &app,
        None,
        "SELECT v FROM generate_series(1, 2000000000) t(v) ORDER BY v DESC",
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v.to_string().contains("sql.max_query_memory"), "{v}");
    assert!(v.to_string().contains("Resources exhausted"), "{v}");
    assert_eq!(
        state.query.memory_used(),
        0,
        "the failed query gave its memory back"
    );
    let started = std::time::Instant::now();
    let (status, v) = sql(
        &app,
        None,
        "SELECT count(*) FROM generate_series(1, 1000000000000)",
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert!(v.to_string().contains("timed out"), "{v}");
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    // Slots are free again.
    let (status, _) = sql(&app, None, "SELECT 1").await;
    assert_eq!(status, StatusCode::OK);
}

/// Finding 10: a subquery's points count against the sample limit before
/// they are computed.
#[tokio::test]
async fn subqueries_cannot_escape_the_sample_limit() {
    let (app, _, _) = app().await;
    for q in [
        "sum_over_time(vector(1)[10y:1ms])",
        "sum_over_time(vector(1)[1d:1ms])",
    ] {
        let (status, body) = send(
            &app,
            form("/api/v1/query", &[("query", q), ("time", "1700000000")]),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{q}: {body}");
        assert!(body.contains("too many samples"), "{body}");
    }
    let (status, body) = send(
        &app,
        form(
            "/api/v1/query",
            &[
                ("query", "sum_over_time(vector(1)[1h:1m])"),
                ("time", "1700000000"),
            ],
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("\"60\""), "{body}");
}

/// Finding 3: with auth on, every route but the public list answers 401
/// without a token. The routes are read from the router's source, so a
/// new route is covered the day it is added.
#[tokio::test]
async fn every_route_but_the_public_ones_needs_a_token() {
    use crate::auth::{Role, TokenEntry, token_digest};
    let mut config = ServerConfig::default();
    config.auth.enabled = true;
    config.auth.tokens = vec![TokenEntry {
        name: String::new(),
        sha256: token_digest("t"),
        tenant: "a".into(),
        roles: vec![Role::Read],
    }];
    let (app, _, _) = app_with(config).await;
    let source = include_str!("../../routes.rs");
    let routes: Vec<&str> = source
        .split(".route(")
        .skip(1)
        .filter_map(|r| r.trim_start().strip_prefix('"')?.split('"').next())
        .collect();
    assert!(routes.len() > 40, "{routes:?}");
    for route in routes {
        let path = route
            .replace("{name}", "x")
            .replace("{kind}", "slo")
            .replace("{file}", "app.js");
        let mut answered = Vec::new();
        for method in ["GET", "POST", "PUT", "DELETE"] {
            let req = Request::builder()
                .method(method)
                .uri(&path)
                .body(Body::empty())
                .unwrap();
            let (status, _) = send(&app, req).await;
            if status != StatusCode::METHOD_NOT_ALLOWED {
                answered.push((method, status));
            }
        }
        assert!(!answered.is_empty(), "{route}: no method answered");
        let public = is_public(&path);
        for (method, status) in answered {
            if public {
                assert_ne!(status, StatusCode::UNAUTHORIZED, "{method} {route}");
            } else {
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {route}");
            }
        }
    }
    // Finding 5: an unnamed token's messages name it once.
    let req = Request::post("/api/v1/write")
        .header("Authorization", "Bearer t")
        .body(Body::empty())
        .unwrap();
    let (status, text) = send(&app, req).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{text}");
    assert!(text.contains("token #1 may not write"), "{text}");
}

/// Finding 2: a series limit is a bound under concurrency: 20 parallel
/// requests of 250 new series each leave exactly the limit, every time.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_writes_never_pass_a_series_limit() {
    for round in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("limits.toml");
        std::fs::write(&path, "[tenants.small]\nmax_series = 1000\n").unwrap();
        let mut config = ServerConfig::default();
        config.limits.overrides_file = Some(path);
        let (app, state, _) = app_with(config).await;
        let tasks: Vec<_> = (0..20)
            .map(|r| {
                let app = app.clone();
                tokio::spawn(async move {
                    let series: Vec<_> = (0..250)
                        .map(|i| {
                            let id = format!("{r}-{i}");
                            proto::TimeSeries::from_pairs(
                                &[("__name__", "m"), ("id", id.as_str())],
                                &[(1_000, 1.0)],
                            )
                        })
                        .collect();
                    send(&app, write_req(Some("small"), payload(series)))
                        .await
                        .0
                })
            })
            .collect();
        let mut accepted = 0;
        for t in tasks {
            match t.await.unwrap() {
                StatusCode::NO_CONTENT => accepted += 1,
                StatusCode::TOO_MANY_REQUESTS => {}
                other => panic!("round {round}: {other}"),
            }
        }
        let held = state
            .head
            .tenant(&strata_types::TenantId::try_new("small").unwrap())
            .map_or(0, |h| h.series_count());
        assert_eq!((accepted, held), (4, 1000), "round {round}");
    }
}

/// Finding 1: a series limit counts the tenant's live series, flushed or
/// not: neither a flush nor a restart gives it a new budget, while the
/// series it has may write on.
#[tokio::test]
async fn a_series_limit_holds_across_flushes_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("limits.toml");
    std::fs::write(&path, "[tenants.small]\nmax_series = 1000\n").unwrap();
    let mut config = ServerConfig::default();
    config.limits.overrides_file = Some(path);
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
    let write = |ids: std::ops::Range<u32>| {
        let series: Vec<_> = ids
            .map(|i| {
                let id = i.to_string();
                proto::TimeSeries::from_pairs(
                    &[("__name__", "m"), ("id", id.as_str())],
                    &[(1_700_000_000_000, 1.0)],
                )
            })
            .collect();
        write_req(Some("small"), payload(series))
    };
    let (app, state, wal) = open(store.clone()).await;
    assert_eq!(send(&app, write(0..1000)).await.0, StatusCode::NO_CONTENT);
    let (status, text) = send(&app, write(1000..2000)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{text}");
    state.storage.flush(wal.as_ref()).await.unwrap();
    assert_eq!(
        state
            .head
            .tenant(&strata_types::TenantId::try_new("small").unwrap())
            .map_or(0, |h| h.series_count()),
        0
    );
    let (status, text) = send(&app, write(1000..2000)).await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "after a flush: {text}"
    );
    assert!(
        text.contains("1000 live series") && text.contains("max_series"),
        "{text}"
    );
    assert_eq!(send(&app, write(0..1000)).await.0, StatusCode::NO_CONTENT);
    state.storage.flush(wal.as_ref()).await.unwrap();

    // Restarted on the same store: the set is rebuilt from the files.
    let (app, _, _) = open(store).await;
    let (status, text) = send(&app, write(1000..1001)).await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "after a restart: {text}"
    );
    assert_eq!(send(&app, write(500..1000)).await.0, StatusCode::NO_CONTENT);
    let (status, v) = sql(
        &app,
        Some("small"),
        "SELECT count(DISTINCT series_id) AS n FROM samples",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["rows"][0][0], 1000);
}

fn token_config(tokens: &[(&str, &str, Vec<crate::auth::Role>)]) -> ServerConfig {
    use crate::auth::{TokenEntry, token_digest};
    let mut config = ServerConfig::default();
    config.auth.enabled = true;
    config.auth.tokens = tokens
        .iter()
        .map(|(token, tenant, roles)| TokenEntry {
            name: (*token).into(),
            sha256: token_digest(token),
            tenant: (*tenant).into(),
            roles: roles.clone(),
        })
        .collect();
    config.validate().unwrap();
    config
}

fn authed(req: Request<Body>, token: &str) -> Request<Body> {
    let (mut parts, body) = req.into_parts();
    parts
        .headers
        .insert("Authorization", format!("Bearer {token}").parse().unwrap());
    Request::from_parts(parts, body)
}

/// Finding 4: a tenant's admin flushes its own tenant only; flushing every
/// tenant takes the operator role, which admin does not imply.
#[tokio::test]
async fn a_tenant_admin_flushes_its_tenant_only() {
    use crate::auth::Role;
    let (app, state, _) = app_with(token_config(&[
        ("alpha-w", "alpha", vec![Role::Write]),
        ("beta-w", "beta", vec![Role::Write]),
        ("beta-admin", "beta", vec![Role::Admin]),
        ("ops", "ops", vec![Role::Operator]),
    ]))
    .await;
    for (token, metric) in [("alpha-w", "a"), ("beta-w", "b")] {
        let body = payload(vec![series(&[("__name__", metric)], &[(1_000, 1.0)])]);
        let (status, text) = send(&app, authed(write_req(None, body), token)).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{text}");
    }
    let held = |t: &str| {
        state
            .head
            .tenant(&strata_types::TenantId::try_new(t).unwrap())
            .map_or(0, |h| h.series_count())
    };
    let flush = || {
        Request::post("/api/v1/admin/flush")
            .body(Body::empty())
            .unwrap()
    };
    let (status, text) = send(&app, authed(flush(), "beta-admin")).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(text.contains(r#""samples":1"#), "{text}");
    assert_eq!(
        (held("alpha"), held("beta")),
        (1, 0),
        "alpha's head is untouched"
    );
    // Beta's sample is in its files and still answers.
    let (status, text) = send(
        &app,
        authed(
            get_q("/api/v1/query", &[("query", "b"), ("time", "1")]),
            "beta-admin",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(text.contains(r#""__name__":"b""#), "{text}");
    // Only an operator flushes everyone; a writer flushes nothing.
    let (status, text) = send(&app, authed(flush(), "alpha-w")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{text}");
    assert_eq!(held("alpha"), 1);
    let (status, text) = send(&app, authed(flush(), "ops")).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(held("alpha"), 0);
    // The operator role is about the server, not a tenant's data.
    let (status, text) = send(
        &app,
        authed(
            get_q("/api/v1/query", &[("query", "a"), ("time", "1")]),
            "ops",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{text}");
}

/// Finding 14: `/metrics` shows tenants' names and volumes to an operator
/// only, and neither `system.files` nor `EXPLAIN` shows the server's data
/// directory.
#[tokio::test]
async fn nothing_discloses_other_tenants_or_the_data_directory() {
    use crate::auth::Role;
    let dir = tempfile::tempdir().unwrap();
    let store =
        ObjectStoreHandle::open(&strata_storage::ObjectStoreConfig::default(), dir.path()).unwrap();
    let storage = Arc::new(Storage::open(store, Arc::new(Head::new())).await.unwrap());
    let wal = Arc::new(MemoryWal::new());
    let config = token_config(&[
        ("acme-rw", "acme", vec![Role::Read, Role::Write]),
        ("ops", "ops", vec![Role::Operator]),
    ]);
    let state = AppState::with_wal(config, storage, wal.clone());
    let app = router(Arc::clone(&state));
    let body = payload(vec![series(&[("__name__", "up")], &[(1_000, 1.0)])]);
    let (status, text) = send(&app, authed(write_req(None, body), "acme-rw")).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{text}");
    state.storage.flush(wal.as_ref()).await.unwrap();

    let metrics = || Request::get("/metrics").body(Body::empty()).unwrap();
    let (status, open) = send(&app, metrics()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!open.contains("acme"), "{open}");
    assert!(
        open.contains("strata_wal_"),
        "server-wide series stay: {open}"
    );
    let (_, text) = send(&app, authed(metrics(), "acme-rw")).await;
    assert!(
        !text.contains("acme"),
        "a tenant token is not an operator's"
    );
    let (_, text) = send(&app, authed(metrics(), "ops")).await;
    assert!(text.contains(r#"tenant="acme""#), "{text}");

    let data_dir = dir
        .path()
        .to_string_lossy()
        .trim_start_matches('/')
        .to_owned();
    let sql_req = |q: &str| {
        Request::post("/api/v1/sql")
            .header("Content-Type", "application/json")
            .body(Body::from(serde_json::json!({ "query": q }).to_string()))
            .unwrap()
    };
    for q in [
        "SELECT path FROM system.files",
        "EXPLAIN SELECT * FROM samples",
        "EXPLAIN ANALYZE SELECT count(*) FROM samples",
    ] {
        let (status, text) = send(&app, authed(sql_req(q), "acme-rw")).await;
        assert_eq!(status, StatusCode::OK, "{q}: {text}");
        assert!(
            text.contains("tenants/acme/metrics/day=1970-01-01/"),
            "{q}: {text}"
        );
        assert!(
            !text.contains(&data_dir),
            "{q} shows the data directory: {text}"
        );
    }
    let (status, text) = send(
        &app,
        authed(sql_req("SELECT count(*) AS n FROM samples"), "acme-rw"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(text.contains("[[1]]"), "{text}");
}

/// Finding 12: decoded bytes in flight are bounded per tenant: a log push
/// or a remote write that finds its tenant's share taken waits, then gets
/// a 429 naming the limit, stores nothing, and goes through once the room
/// is free; other tenants are not held up.
#[tokio::test]
async fn log_pushes_wait_for_room_for_their_decoded_bytes() {
    let mut config = ServerConfig::default();
    config.limits.max_decoded_in_flight_per_tenant = crate::ByteSize(1 << 20);
    config.limits.decoded_wait = std::time::Duration::from_millis(100);
    let (app, state, _) = app_with(config).await;
    let push = |tenant: &str| {
        let line = "x".repeat(1000);
        let values: Vec<_> = (0..500)
            .map(|i| serde_json::json!([format!("{}", 1_700_000_000_000_000_000i64 + i), line]))
            .collect();
        let body = serde_json::json!({"streams": [{"stream": {"job": "j"}, "values": values}]});
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, body.to_string().as_bytes()).unwrap();
        Request::post("/loki/api/v1/push")
            .header("Content-Type", "application/json")
            .header("Content-Encoding", "gzip")
            .header("X-Scope-OrgID", tenant)
            .body(Body::from(gz.finish().unwrap()))
            .unwrap()
    };
    let busy = strata_types::TenantId::try_new("busy").unwrap();
    let mut held = crate::decoded::Reservation::default();
    state
        .decoded
        .reserve(&busy, &mut held, 1 << 20)
        .await
        .unwrap();
    let (status, text) = send(&app, push("busy")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{text}");
    assert!(text.contains("max_decoded_in_flight_per_tenant"), "{text}");
    assert!(
        state.storage.logs().tenant(&busy).is_none(),
        "nothing stored"
    );
    // Remote write counts against the same bound.
    let samples = payload(vec![series(&[("__name__", "up")], &[(1_000, 1.0)])]);
    let (status, text) = send(&app, write_req(Some("busy"), samples.clone())).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{text}");
    assert!(state.head.tenant(&busy).is_none(), "nothing stored");
    let (status, text) = send(&app, push("calm")).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "another tenant: {text}");
    drop(held);
    let (status, text) = send(&app, push("busy")).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{text}");
    let (status, text) = send(&app, write_req(Some("busy"), samples)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{text}");
    assert_eq!(
        state.decoded.in_flight(),
        0,
        "every push gave its room back"
    );
}

/// The internal streams (an ingester's head to queriers, its live series
/// to peer ingesters) carry every tenant's series: a tenant's admin gets
/// 403 and a caller without a token 401; an operator is let through.
#[tokio::test]
async fn internal_streams_take_the_operator_role() {
    use crate::auth::Role;
    let (app, _, _) = app_with(token_config(&[
        ("acme-admin", "acme", vec![Role::Admin]),
        ("ops", "ops", vec![Role::Operator]),
    ]))
    .await;
    let get = |path: &str| Request::get(path).body(Body::empty()).unwrap();
    for path in [
        "/api/v1/internal/head-stream",
        "/api/v1/internal/live-series",
    ] {
        let (status, text) = send(&app, get(path)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}: {text}");
        let (status, text) = send(&app, authed(get(path), "acme-admin")).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {text}");
        assert!(text.contains("operator role"), "{path}: {text}");
        let (status, text) = send(&app, authed(get(path), "ops")).await;
        assert!(
            status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
            "{path}: {status} {text}"
        );
    }
    // A node of role `all` has no peers to share live series with.
    let (status, text) = send(&app, authed(get("/api/v1/internal/live-series"), "ops")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{text}");
    assert!(text.contains("without peers"), "{text}");
}

/// A compactor writes its rules' and SLOs' results for a tenant through an
/// ingester's internal write: that takes the operator role (a tenant's own
/// admin may not, even for its tenant), names the tenant, and stores what
/// it is given in that tenant through the WAL.
#[tokio::test]
async fn the_internal_write_takes_the_operator_role_and_names_a_tenant() {
    use crate::auth::Role;
    let (app, state, _) = app_with(token_config(&[
        ("acme-admin", "acme", vec![Role::Admin]),
        ("ops", "ops", vec![Role::Operator]),
    ]))
    .await;
    let body = payload(vec![series(
        &[("__name__", "job:errors:sum"), ("job", "odoo")],
        &[(1_000, 3.0)],
    )]);
    let internal = |tenant: Option<&str>| {
        let mut req = write_req(tenant, body.clone());
        *req.uri_mut() = "/api/v1/internal/write".parse().unwrap();
        req
    };
    let (status, text) = send(&app, internal(Some("acme"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{text}");
    let (status, text) = send(&app, authed(internal(Some("acme")), "acme-admin")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{text}");
    assert!(text.contains("operator role"), "{text}");
    let (status, text) = send(&app, authed(internal(None), "ops")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{text}");
    assert!(text.contains("no org id"), "{text}");
    let acme = strata_types::TenantId::try_new("acme").unwrap();
    assert!(state.head.tenant(&acme).is_none(), "nothing stored yet");

    let resp = app
        .clone()
        .oneshot(authed(internal(Some("acme")), "ops"))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        resp.headers()["x-prometheus-remote-write-samples-written"],
        "1"
    );
    let head = state.head.tenant(&acme).expect("stored in acme");
    assert_eq!(head.series_count(), 1);
    let ops = strata_types::TenantId::try_new("ops").unwrap();
    assert!(
        state.head.tenant(&ops).is_none(),
        "not in the token's tenant"
    );
}

/// A querier tells the compactors of a rule change with its caller's
/// credentials: the tenant's admin may, a reader may not, nobody without
/// a token.
#[tokio::test]
async fn a_rule_change_is_told_by_the_tenants_admin() {
    use crate::auth::Role;
    let (app, _, _) = app_with(token_config(&[
        ("acme-admin", "acme", vec![Role::Admin]),
        ("acme-reader", "acme", vec![Role::Read]),
    ]))
    .await;
    let told = || {
        Request::post("/api/v1/internal/rules-changed")
            .header("X-Scope-OrgID", "acme")
            .body(Body::empty())
            .unwrap()
    };
    let (status, text) = send(&app, told()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{text}");
    let (status, text) = send(&app, authed(told(), "acme-reader")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{text}");
    let (status, text) = send(&app, authed(told(), "acme-admin")).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{text}");
}
