//! Tenancy: auth, limits, cardinality, usage, isolation.

use super::*;

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
    let rows: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(rows["rows"], serde_json::json!([[0]]), "{text}");
    // A's reader counts exactly A's one accepted sample (refused writes stored nothing).
    let (_, text) = send(&app, sql_req("Bearer a-reader")).await;
    let rows: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(rows["rows"], serde_json::json!([[1]]), "{text}");
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

/// `max_query_lookback`: SQL and PromQL see nothing older, for the
/// limited tenant only.
#[tokio::test]
async fn a_query_lookback_limit_hides_older_samples() {
    let mut config = ServerConfig::default();
    config.limits.overrides_file = None;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("limits.toml");
    std::fs::write(&path, "[tenants.short]\nmax_query_lookback = \"1h\"\n").unwrap();
    config.limits.overrides_file = Some(path);
    let (app, _, _) = app_with(config).await;
    let now = chrono::Utc::now().timestamp_millis();
    for tenant in ["short", "long"] {
        let body = payload(vec![series(
            &[("__name__", "m"), ("job", "j")],
            &[(now - 3 * 3_600_000, 1.0), (now - 60_000, 2.0)],
        )]);
        assert_eq!(
            send(&app, write_req(Some(tenant), body)).await.0,
            StatusCode::NO_CONTENT
        );
    }
    for (tenant, want) in [("short", 2.0), ("long", 3.0)] {
        let (status, json) = sql(&app, Some(tenant), "SELECT sum(value) AS v FROM m").await;
        assert_eq!(status, StatusCode::OK, "{json}");
        assert_eq!(json["rows"][0][0], want, "{tenant}");
        let (status, body) = send(
            &app,
            Request::get(format!(
                "/api/v1/query?query=sum(sum_over_time(m[4h]))&time={}",
                now / 1000
            ))
            .header("X-Scope-OrgID", tenant)
            .body(Body::empty())
            .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            v["data"]["result"][0]["value"][1],
            want.to_string(),
            "{tenant} {body}"
        );
    }
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

    /// Each tenant's analytics specs, named after its secret: the spec
    /// listings and the analytics API must show a tenant its own only.
    fn spec_file() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let mut text = String::new();
        for t in TENANTS {
            let s = secret(t);
            text.push_str(&format!(
                "[[slo]]\nname = \"{s}_slo\"\ntenant = \"{t}\"\nobjective = 0.99\nwindow = \"1h\"\n\
                 good = 'sum(count_over_time({s}[$window]))'\ntotal = 'sum(count_over_time({s}[$window]))'\n\n\
                 [[capacity]]\nname = \"{s}_capacity\"\ntenant = \"{t}\"\nusage = '{s}'\nlimit = 100\n\n"
            ));
        }
        std::fs::write(dir.path().join("specs.toml"), text).unwrap();
        // And its rules: a group, a recording rule and an alert, all named
        // after the secret and reading the tenant's secret series.
        for t in TENANTS {
            let s = secret(t);
            let rules = dir.path().join("rules").join(t);
            std::fs::create_dir_all(&rules).unwrap();
            std::fs::write(
                rules.join("r.yaml"),
                format!(
                    "groups:\n  - name: {s}_group\n    rules:\n      - record: {s}_recorded\n        expr: sum({s})\n      - alert: {s}_alert\n        expr: {s} > 0\n        annotations:\n          summary: '{{{{ $labels.owner }}}}'\n"
                ),
            )
            .unwrap();
        }
        dir
    }

    async fn loaded(auth: bool, specs: &std::path::Path) -> (Router, Arc<AppState>) {
        let mut config = ServerConfig::default();
        config.slo.file = Some(specs.join("specs.toml"));
        config.rules.directory = Some(specs.join("rules"));
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
        let (app, state, _) = app_with(config).await;
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
            // A log line too, for the Loki read paths.
            let push = serde_json::json!({"streams": [{
                "stream": {"owner": secret(t)},
                "values": [["1000000000", format!("line of {}", secret(t))]],
            }]});
            let mut req = Request::post("/loki/api/v1/push")
                .header("Content-Type", "application/json")
                .header("X-Scope-OrgID", t)
                .body(Body::from(push.to_string()))
                .unwrap();
            if auth {
                req = with_token(req, &format!("Bearer token-{t}"));
            }
            assert_eq!(send(&app, req).await.0, StatusCode::NO_CONTENT);
        }
        // Every tenant's rules evaluated once, after its data.
        crate::ruler::evaluate_once(&state, 1_500).await;
        (app, state)
    }

    const PATHS: [&str; 19] = [
        "/api/v1/query?query=%7B__name__%3D~%22.%2B%22%7D&time=1",
        "/api/v1/query_range?query=%7B__name__%3D~%22.%2B%22%7D&start=0&end=2&step=1",
        "/api/v1/series?match[]=%7B__name__%3D~%22.%2B%22%7D",
        "/api/v1/labels",
        "/api/v1/label/owner/values",
        "/api/v1/label/__name__/values",
        "/api/v1/cardinality/label_values?label_names[]=owner",
        "/api/v1/cardinality/label_names",
        // Loki: `{owner=~".+"}` over the first two seconds.
        "/loki/api/v1/query_range?query=%7Bowner%3D~%22.%2B%22%7D&start=0&end=2000000000&limit=100",
        "/loki/api/v1/labels?start=0&end=2000000000",
        "/loki/api/v1/label/owner/values?start=0&end=2000000000",
        "/loki/api/v1/series?match[]=%7Bowner%3D~%22.%2B%22%7D&start=0&end=2000000000",
        "/loki/api/v1/index/volume?query=%7Bowner%3D~%22.%2B%22%7D&start=0&end=2000000000",
        "/loki/api/v1/query_range?query=sum%20by%20(owner)%20(count_over_time(%7Bowner%3D~%22.%2B%22%7D%5B1s%5D))&start=0&end=2000000000&step=1",
        // The analytics API and the spec listing.
        "/api/v1/specs",
        "/api/v1/slo?time=2",
        // (Capacity forecasts need more history than one sample: checked
        // for leaks only.)
        "/api/v1/capacity?time=2",
        // The ruler's groups and alerts.
        "/api/v1/rules",
        "/api/v1/alerts",
    ];

    /// Paths whose answer must hold the entitled tenant's own data.
    const SHOW_OWN: [usize; 14] = [0, 1, 2, 4, 5, 8, 10, 11, 12, 13, 14, 15, 17, 18];

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
            Body::from(serde_json::json!({ "query": SQL }).to_string())
        } else {
            Body::empty()
        };
        b.body(body).unwrap()
    }

    /// The SQL every SQL front end is asked: samples and usage (every
    /// tenant's usage is in `system.usage`, only the caller's may show).
    const SQL: &str = "SELECT metric AS a, labels['owner'] AS b FROM samples UNION ALL SELECT tenant AS a, tenant AS b FROM system.usage";
    /// After the HTTP paths and HTTP SQL: the same SQL over the Postgres
    /// wire protocol, then over Flight SQL.
    const PGWIRE: usize = PATHS.len() + 1;
    const FLIGHT: usize = PATHS.len() + 2;

    fn name(path: usize) -> &'static str {
        match path {
            p if p < PATHS.len() => PATHS[p],
            PGWIRE => "pgwire",
            FLIGHT => "flight sql",
            _ => "/api/v1/sql",
        }
    }

    /// `SQL` over the Postgres wire protocol (simple query) as a client
    /// connecting to database `database` with `password`: every text the
    /// server sends back (rows and errors), and whether it answered rows.
    async fn pgwire(
        addr: std::net::SocketAddr,
        database: Option<&str>,
        password: Option<&str>,
    ) -> (bool, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        async fn message(s: &mut tokio::net::TcpStream) -> Option<(u8, Vec<u8>)> {
            let tag = s.read_u8().await.ok()?;
            let len = usize::try_from(s.read_i32().await.ok()?).ok()?;
            let mut body = vec![0; len.checked_sub(4)?];
            s.read_exact(&mut body).await.ok()?;
            Some((tag, body))
        }
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut params = b"user\0strata\0".to_vec();
        if let Some(d) = database {
            params.extend_from_slice(format!("database\0{d}\0").as_bytes());
        }
        params.push(0);
        let mut startup = (8 + params.len() as i32).to_be_bytes().to_vec();
        startup.extend_from_slice(&196_608i32.to_be_bytes());
        startup.extend_from_slice(&params);
        s.write_all(&startup).await.unwrap();
        let mut text = String::new();
        let mut rows = false;
        let mut queried = false;
        while let Some((tag, body)) = message(&mut s).await {
            match tag {
                // A cleartext password request.
                b'R' if body[..4] == 3i32.to_be_bytes() => {
                    let pw = format!("{}\0", password.unwrap_or(""));
                    let mut m = vec![b'p'];
                    m.extend_from_slice(&(4 + pw.len() as i32).to_be_bytes());
                    m.extend_from_slice(pw.as_bytes());
                    s.write_all(&m).await.unwrap();
                }
                b'E' => {
                    text.push_str(&String::from_utf8_lossy(&body));
                    if !queried {
                        break;
                    }
                }
                b'D' => {
                    rows = true;
                    text.push_str(&String::from_utf8_lossy(&body));
                }
                b'Z' if queried => break,
                b'Z' => {
                    queried = true;
                    let q = format!("{SQL}\0");
                    let mut m = vec![b'Q'];
                    m.extend_from_slice(&(4 + q.len() as i32).to_be_bytes());
                    m.extend_from_slice(q.as_bytes());
                    s.write_all(&m).await.unwrap();
                }
                _ => {}
            }
        }
        (rows, text)
    }

    /// `SQL` through the Flight SQL service (GetFlightInfo, then DoGet of
    /// its ticket), with the tenant header and token as gRPC metadata: the
    /// rows as text, or the refusal.
    async fn flight(
        state: &Arc<AppState>,
        header: Option<&str>,
        token: Option<&str>,
    ) -> (bool, String) {
        use arrow_flight::flight_service_server::FlightService;
        use arrow_flight::sql::{CommandStatementQuery, ProstMessageExt};
        use futures::TryStreamExt;
        use prost::Message;
        let service = crate::flight::StrataFlightSql::new(Arc::clone(state));
        fn with_meta<T>(
            mut r: tonic::Request<T>,
            header: Option<&str>,
            token: Option<&str>,
        ) -> tonic::Request<T> {
            if let Some(h) = header {
                r.metadata_mut().insert("x-scope-orgid", h.parse().unwrap());
            }
            if let Some(t) = token {
                r.metadata_mut()
                    .insert("authorization", format!("Bearer {t}").parse().unwrap());
            }
            r
        }
        let cmd = CommandStatementQuery {
            query: SQL.into(),
            transaction_id: None,
        };
        let descriptor = arrow_flight::FlightDescriptor::new_cmd(cmd.as_any().encode_to_vec());
        let info = match service
            .get_flight_info(with_meta(tonic::Request::new(descriptor), header, token))
            .await
        {
            Ok(info) => info.into_inner(),
            Err(status) => return (false, status.message().to_owned()),
        };
        let mut text = String::new();
        for endpoint in info.endpoint {
            let ticket = endpoint.ticket.unwrap();
            let stream = match service
                .do_get(with_meta(tonic::Request::new(ticket), header, token))
                .await
            {
                Ok(s) => s.into_inner(),
                Err(status) => return (false, status.message().to_owned()),
            };
            let data: Vec<arrow_flight::FlightData> = match stream.try_collect().await {
                Ok(d) => d,
                Err(status) => return (false, status.message().to_owned()),
            };
            for batch in arrow_flight::utils::flight_data_to_batches(&data).unwrap() {
                for col in batch.columns() {
                    for row in 0..batch.num_rows() {
                        text.push_str(
                            &arrow::util::display::array_value_to_string(col, row).unwrap(),
                        );
                        text.push('\n');
                    }
                }
            }
        }
        (true, text)
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
                (0..=FLIGHT, proptest::option::of(0..3usize), proptest::option::of(0..3usize)),
                1..6,
            ),
        ) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let specs = spec_file();
                let (app, state) = loaded(auth, specs.path()).await;
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let pg_addr = listener.local_addr().unwrap();
                tokio::spawn(crate::frontend::postgres::serve(listener, Arc::clone(&state), std::future::pending()));
                for (path, header, token) in requests {
                    let token_text = token.map(|t| format!("token-{}", TENANTS[t]));
                    let (answered, text) = match path {
                        PGWIRE => pgwire(pg_addr, header.map(|h| TENANTS[h]), token_text.as_deref()).await,
                        FLIGHT => flight(&state, header.map(|h| TENANTS[h]), token_text.as_deref()).await,
                        _ => {
                            let (status, text) = send(&app, request(path, header, token)).await;
                            (status == StatusCode::OK, format!("{status} {text}"))
                        }
                    };
                    // The Postgres tenant is the database named; with auth
                    // on, the token must be that tenant's.
                    let allowed = if path == PGWIRE && auth {
                        header.filter(|h| token == Some(*h))
                    } else {
                        entitled(auth, header, token)
                    };
                    for (i, t) in TENANTS.iter().enumerate() {
                        if Some(i) != allowed {
                            prop_assert!(
                                !text.contains(&secret(t)),
                                "{} (auth {auth}, header {header:?}, token {token:?}) leaked {t}: {text}",
                                name(path)
                            );
                        }
                    }
                    if let Some(i) = allowed && answered && (SHOW_OWN.contains(&path) || path >= PATHS.len()) {
                        prop_assert!(text.contains(&secret(TENANTS[i])), "{}: own data missing: {text}", name(path));
                    }
                }
                Ok(())
            })?;
        }
    }
}

#[tokio::test]
async fn strata_usage_is_read_with_a_usage_tenant_token_only() {
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
        entry("a-admin", "tenant-a", vec![Role::Admin]),
        entry("operator", "_strata", vec![Role::Read]),
    ];
    config.validate().unwrap();
    let (app, _, _) = app_with(config).await;
    let usage = |auth: &str| {
        Request::get("/api/v1/neighbours/usage?resource=active_series")
            .header("Authorization", auth)
            .body(Body::empty())
            .unwrap()
    };
    // Another tenant's admin may not see every tenant's usage.
    let (status, text) = send(&app, usage("Bearer a-admin")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{text}");
    assert!(text.contains("_strata"), "{text}");
    let (status, text) = send(&app, usage("Bearer operator")).await;
    assert_eq!(status, StatusCode::OK, "{text}");
}
