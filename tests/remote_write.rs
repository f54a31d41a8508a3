//! Remote write then SQL, malformed input, tenancy and restarts, against the
//! real binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::{Server, payload, series};
use serde_json::json;

const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

#[test]
fn remote_write_then_sql_and_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &[]);
    let body = payload(vec![
        series(
            &[
                ("__name__", "http_requests_total"),
                ("code", "200"),
                ("job", "api"),
            ],
            &[(T0, 10.0), (T0 + 15_000, 12.0)],
        ),
        series(
            &[
                ("__name__", "http_requests_total"),
                ("code", "500"),
                ("job", "api"),
            ],
            &[(T0, 1.0)],
        ),
        series(
            &[("__name__", "up"), ("job", "api")],
            &[
                (T0, 1.0),
                (T0 + 15_000, f64::from_bits(0x7ff0_0000_0000_0002)),
            ],
        ),
    ]);
    let (status, text) = server.write(None, &body);
    assert_eq!(status, 204, "{text}");
    let query = "SELECT labels['code'] AS code, max(value) AS v FROM samples \
                 WHERE metric = 'http_requests_total' AND labels['job'] = 'api' GROUP BY 1 ORDER BY 1";
    let want = vec![json!(["200", 12.0]), json!(["500", 1.0])];
    assert_eq!(server.rows(None, query), want);
    assert_eq!(
        server.rows(
            None,
            "SELECT timestamp, value FROM samples WHERE metric = 'up' ORDER BY timestamp"
        ),
        vec![
            json!(["2026-01-01T00:00:00Z", 1.0]),
            json!(["2026-01-01T00:00:15Z", "NaN"])
        ]
    );

    // A graceful stop and a restart replay the WAL: same answers.
    let status = server.terminate();
    assert!(status.success(), "SIGTERM exit: {status}");
    let server = Server::start(&data, &[]);
    assert_eq!(server.rows(None, query), want);
    assert!(server.log().contains("replay finished"), "{}", server.log());
}

/// Exemplars written before a flush and after it are all answered after a
/// `kill -9` and a restart: the flush wrote the store to the WAL again
/// before removing the segments it covered.
#[test]
fn exemplars_outlive_a_flush_and_a_kill() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Small segments: the flush below removes the one holding the first
    // exemplar's record.
    let small = ["--wal-segment-size", "1MiB"];
    let server = Server::start(&data, &small);
    let with = |ts: i64, trace: &str| {
        let mut s = series(&[("__name__", "req_total"), ("job", "api")], &[(ts, 1.0)]);
        s.exemplars.push(common::exemplar(trace, 0.25, ts));
        payload(vec![s])
    };
    assert_eq!(server.write(None, &with(T0, "a1")).0, 204);
    let pad = "p".repeat(200);
    for round in 0..4 {
        let bulk: Vec<_> = (0..2000)
            .map(|i| {
                let name = format!("bulk_{round}_{i}");
                series(
                    &[("__name__", name.as_str()), ("pad", pad.as_str())],
                    &[(T0, 1.0)],
                )
            })
            .collect();
        assert_eq!(server.write(None, &payload(bulk)).0, 204);
    }
    let (status, _) = server.post("/api/v1/admin/flush").unwrap();
    assert_eq!(status, 200);
    assert_eq!(server.write(None, &with(T0 + 15_000, "b2")).0, 204);
    let traces = |server: &Server| {
        let (status, json) = server.get_json(
            "default",
            "/api/v1/query_exemplars?query=req_total&start=1767225000&end=1767226000",
        );
        assert_eq!(status, 200, "{json}");
        json["data"][0]["exemplars"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["labels"]["trace_id"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(traces(&server), ["a1", "b2"]);
    server.kill();
    let server = Server::start(&data, &small);
    assert_eq!(traces(&server), ["a1", "b2"]);
}

/// Native histograms acknowledged before a `kill -9` (one flushed, one
/// only in the WAL) are all in the histograms table after the restart's
/// flush, each once.
#[test]
fn native_histograms_outlive_a_kill() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &[]);
    let with = |ts: i64, count: u64| {
        let labels = [("__name__", "pick_seconds"), ("job", "wms")];
        payload(vec![common::histogram_series(&labels, ts, count)])
    };
    assert_eq!(server.write(None, &with(T0, 1)).0, 204);
    assert_eq!(server.post("/api/v1/admin/flush").unwrap().0, 200);
    assert_eq!(server.write(None, &with(T0 + 15_000, 2)).0, 204);
    server.kill();
    let server = Server::start(&data, &[]);
    assert_eq!(server.post("/api/v1/admin/flush").unwrap().0, 200);
    let mut counts: Vec<f64> =
        common::histogram_rows(&data.join("objects"), "default", "pick_seconds")
            .into_iter()
            .map(|r| r.1)
            .collect();
    counts.sort_by(f64::total_cmp);
    assert_eq!(counts, [1.0, 2.0]);
    assert!(server.log().contains("histograms=1"), "{}", server.log());
}

#[test]
fn malformed_input_gets_its_status_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);
    let good = series(&[("__name__", "kept")], &[(T0, 1.0)]);
    assert_eq!(server.write(Some("t"), &payload(vec![good.clone()])).0, 204);
    let count = || server.rows(Some("t"), "SELECT count(*) FROM samples")[0][0].clone();
    assert_eq!(count(), json!(1));

    let with_bad =
        |labels: &[(&str, &str)]| payload(vec![good.clone(), series(labels, &[(T0 + 1, 2.0)])]);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"garbage, not snappy".to_vec(), "snappy"),
        (
            snap::raw::Encoder::new()
                .compress_vec(b"\x0a\x05\x0a\x03")
                .unwrap(),
            "protobuf",
        ),
        (
            with_bad(&[("__name__", "m"), ("", "x")]),
            "empty label name",
        ),
        (
            with_bad(&[("__name__", "m"), ("a", "1"), ("a", "2")]),
            "duplicate label name",
        ),
        (
            with_bad(&[("__name__", "m"), ("z", "1"), ("a", "1")]),
            "not sorted",
        ),
        (with_bad(&[("instance", "x")]), "__name__"),
        (with_bad(&[("__name__", "m"), ("job", "")]), "empty value"),
    ];
    for (body, reason) in cases {
        let (status, text) = server.write(Some("t"), &body);
        assert_eq!(status, 400, "{reason}: {text}");
        assert!(text.contains(reason), "{text:?} does not name {reason:?}");
    }
    let agent = common::agent();
    let mut resp = agent
        .post(&server.url("/api/v1/write"))
        .header("Content-Type", "application/x-protobuf")
        .header("Content-Encoding", "zstd")
        .header("X-Scope-OrgID", "t")
        .send(&payload(vec![good.clone()])[..])
        .unwrap();
    assert_eq!(
        resp.status(),
        415,
        "{}",
        resp.body_mut().read_to_string().unwrap()
    );
    let resp = agent
        .post(&server.url("/api/v1/write"))
        .header("Content-Type", "text/plain")
        .header("X-Scope-OrgID", "t")
        .send(&payload(vec![good.clone()])[..])
        .unwrap();
    assert_eq!(resp.status(), 415);
    for bad_tenant in ["..", "a/b", "x y", &"x".repeat(129)] {
        let (status, text) = server.write(Some(bad_tenant), &payload(vec![good.clone()]));
        assert_eq!(status, 400, "{bad_tenant:?}: {text}");
        assert!(text.contains("X-Scope-OrgID"), "{text}");
    }
    assert_eq!(count(), json!(1), "a rejected request changed stored data");
    let (status, json) = server.sql(Some("t"), "SELECT * FROM nope");
    assert_eq!(status, 400);
    assert_eq!(json["errorType"], "bad_data");
}

/// Prometheus 3's UTF-8 names: stored as sent, found by PromQL's quoted
/// names, the API's `U__` escapes and SQL's quoted identifiers, from the
/// head and from the files; a tenant on the legacy scheme gets 400.
#[test]
fn utf8_names_are_stored_and_queried_unless_the_tenant_is_legacy() {
    let dir = tempfile::tempdir().unwrap();
    let limits = dir.path().join("limits.toml");
    std::fs::write(
        &limits,
        "[tenants.old]\nname_validation_scheme = \"legacy\"\n",
    )
    .unwrap();
    let server = Server::start(
        &dir.path().join("data"),
        &["--limits-overrides-file", limits.to_str().unwrap()],
    );
    let labels = [
        ("__name__", "http.server.duration"),
        ("région", "eu-west"),
        ("service.name", "api"),
    ];
    let body = payload(vec![
        series(&labels, &[(T0, 1.5)]),
        series(&[("__name__", "up"), ("k8s.pod", "p-1")], &[(T0, 1.0)]),
    ]);
    assert_eq!(server.write(Some("u"), &body).0, 204);
    let (status, text) = server.write(Some("old"), &body);
    assert_eq!(status, 400, "{text}");
    assert!(
        text.contains("invalid metric name \"http.server.duration\""),
        "{text}"
    );
    let at = T0 / 1000;
    let check = |from: &str| {
        let q = common::escape(r#"{"http.server.duration", "service.name"="api"}"#);
        let (status, v) = server.get_json("u", &format!("/api/v1/query?query={q}&time={at}"));
        assert_eq!(status, 200, "{from}: {v}");
        let result = v["data"]["result"].as_array().unwrap();
        assert_eq!(result.len(), 1, "{from}: {v}");
        assert_eq!(
            result[0]["metric"],
            json!({"__name__": "http.server.duration", "région": "eu-west", "service.name": "api"}),
            "{from}"
        );
        assert_eq!(result[0]["value"][1], json!("1.5"), "{from}");
        let q = common::escape(r#"sum by ("k8s.pod") (up)"#);
        let (_, v) = server.get_json("u", &format!("/api/v1/query?query={q}&time={at}"));
        assert_eq!(
            v["data"]["result"][0]["metric"],
            json!({"k8s.pod": "p-1"}),
            "{from}"
        );
        let window = format!("start={}&end={}", at - 60, at + 60);
        let (_, v) = server.get_json(
            "u",
            &format!("/api/v1/label/U__service_2e_name/values?{window}"),
        );
        assert_eq!(v["data"], json!(["api"]), "{from}");
        let (_, v) = server.get_json("u", &format!("/api/v1/labels?{window}"));
        let names = v["data"].as_array().unwrap();
        assert!(names.contains(&json!("service.name")), "{from}: {v}");
        assert!(names.contains(&json!("région")), "{from}: {v}");
        assert_eq!(
            server.rows(
                Some("u"),
                r#"SELECT "service.name", "région", value FROM "http.server.duration""#
            ),
            vec![json!(["api", "eu-west", 1.5])],
            "{from}"
        );
    };
    check("head");
    assert_eq!(server.post("/api/v1/admin/flush").map(|r| r.0), Some(200));
    check("files");
    assert_eq!(
        server.rows(Some("old"), "SELECT count(*) FROM samples"),
        vec![json!([0])]
    );
}

#[test]
fn tenant_a_never_sees_tenant_b() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &["--require-tenant"]);
    for (tenant, secret) in [("team-a", "a_secret"), ("team-b", "b_secret")] {
        let (status, _) = server.write(
            Some(tenant),
            &payload(vec![series(
                &[("__name__", secret), ("owner", tenant)],
                &[(T0, 7.0)],
            )]),
        );
        assert_eq!(status, 204);
    }
    let a = server.rows(
        Some("team-a"),
        "SELECT metric, labels['owner'] FROM samples",
    );
    assert_eq!(a, vec![json!(["a_secret", "team-a"])]);
    let b = server.rows(Some("team-b"), "SELECT metric FROM samples");
    assert_eq!(b, vec![json!(["b_secret"])]);
    // No header: 401 in require-tenant mode, for reads and writes alike.
    let (status, text) = server.write(
        None,
        &payload(vec![series(&[("__name__", "x")], &[(T0, 1.0)])]),
    );
    assert_eq!((status, text.trim()), (401, "no org id"));
    assert_eq!(server.sql(None, "SELECT 1").0, 401);
}

#[test]
fn operations_endpoints() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &["--log-format", "json"]);
    assert_eq!(server.get("/-/healthy").0, 200);
    assert_eq!(server.get("/-/ready").0, 200);
    server.write(
        Some("ops"),
        &payload(vec![series(&[("__name__", "m")], &[(T0, 1.0)])]),
    );
    let (status, metrics) = server.get("/metrics");
    assert_eq!(status, 200);
    for want in [
        "strata_ingested_samples_total{tenant=\"ops\"} 1",
        "strata_head_series{tenant=\"ops\"} 1",
        "strata_wal_fsync_duration_seconds_count",
    ] {
        assert!(metrics.contains(want), "missing {want}");
    }
    // Structured logs: every line is a JSON object.
    let log = server.log();
    let line = log
        .lines()
        .find(|l| l.contains("strata listening"))
        .expect("listening line");
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(v["level"], "INFO");
    // A second server on the same data dir is refused, not allowed to share the WAL.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
        .args([
            "serve",
            "--data-dir",
            dir.path().join("data").to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("in use"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn config_file_env_and_flags_layer_in_that_order() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("strata.toml");
    std::fs::write(&cfg, "[tenancy]\nrequire_tenant = true\n").unwrap();
    // The file turns tenancy on...
    let server = Server::start(&dir.path().join("d1"), &["--config", cfg.to_str().unwrap()]);
    assert_eq!(server.sql(None, "SELECT 1").0, 401);
    drop(server);
    // ...and a flag wins over the file.
    let server = Server::start(
        &dir.path().join("d2"),
        &["--config", cfg.to_str().unwrap(), "--require-tenant=false"],
    );
    assert_eq!(server.sql(None, "SELECT 1").0, 200);
    drop(server);
    // A bad file is a clear startup error.
    std::fs::write(&cfg, "[wal]\nsegment_sise = 1\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["serve", "--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("segment_sise"));
}

/// Remote write 2.0: the symbol-table message, picked by `Content-Type`.
#[test]
fn remote_write_2_stores_samples_and_reports_what_it_wrote() {
    use strata_ingest::remote_write::proto::v2;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);
    let post = |req: &v2::Request| {
        let mut resp = common::agent()
            .post(&server.url("/api/v1/write"))
            .header(
                "Content-Type",
                "application/x-protobuf;proto=io.prometheus.write.v2.Request",
            )
            .header("Content-Encoding", "snappy")
            .header("X-Prometheus-Remote-Write-Version", "2.0.0")
            .header("X-Scope-OrgID", "t")
            .send(&v2::encode_snappy(req)[..])
            .unwrap();
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let written = [
            header("X-Prometheus-Remote-Write-Samples-Written"),
            header("X-Prometheus-Remote-Write-Histograms-Written"),
            header("X-Prometheus-Remote-Write-Exemplars-Written"),
        ];
        let status = resp.status().as_u16();
        (status, written, resp.body_mut().read_to_string().unwrap())
    };
    let some = |s: &str| Some(s.to_owned());

    let req = v2::Request::from_series(&[
        (
            vec![
                ("__name__", "http_requests_total"),
                ("code", "200"),
                ("job", "api"),
            ],
            vec![(T0, 10.0), (T0 + 15_000, 12.0)],
        ),
        (
            vec![
                ("__name__", "http_requests_total"),
                ("code", "500"),
                ("job", "api"),
            ],
            vec![(T0, 1.0)],
        ),
    ]);
    let (status, written, text) = post(&req);
    assert_eq!(status, 204, "{text}");
    assert_eq!(written, [some("3"), some("0"), some("0")]);
    assert_eq!(
        server.rows(
            Some("t"),
            "SELECT labels['code'], max(value) FROM samples GROUP BY 1 ORDER BY 1"
        ),
        vec![json!(["200", 12.0]), json!(["500", 1.0])]
    );

    // An exemplar is stored and counted; one older than its series'
    // newest is out of order: the rest is written, and the answer is 400
    // naming it (as Prometheus answers), with the counts in the headers.
    let mut req = v2::Request::from_series(&[(vec![("__name__", "up")], vec![(T0, 1.0)])]);
    req.timeseries[0].exemplars.push(v2::Exemplar {
        labels_refs: vec![],
        value: 0.5,
        timestamp: T0,
    });
    let (status, written, text) = post(&req);
    assert_eq!(status, 204, "{text}");
    assert_eq!(written, [some("1"), some("0"), some("1")]);
    req.timeseries[0].exemplars[0].timestamp = T0 - 1;
    let (status, written, text) = post(&req);
    assert_eq!(status, 400, "{text}");
    assert!(
        text.contains("1 exemplars not written: out of order exemplar"),
        "{text}"
    );
    assert_eq!(written, [some("1"), some("0"), some("0")]);
    assert_eq!(
        server.rows(Some("t"), "SELECT value FROM samples WHERE metric = 'up'"),
        vec![json!([1.0])]
    );

    // A reference outside the symbol table is refused whole.
    let mut bad = v2::Request::from_series(&[(vec![("__name__", "down")], vec![(T0, 1.0)])]);
    bad.timeseries[0].labels_refs[1] = 42;
    let (status, written, text) = post(&bad);
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("outside the"), "{text}");
    assert_eq!(written[0], some("0"));
    assert_eq!(
        server.rows(
            Some("t"),
            "SELECT count(*) FROM samples WHERE metric = 'down'"
        ),
        vec![json!([0])]
    );
}
