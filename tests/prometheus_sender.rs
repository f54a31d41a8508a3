//! A real Prometheus (Debian's package) scrapes itself and remote-writes to
//! Strata; its series show up in SQL, its metric metadata in
//! `/api/v1/metadata`.
//!
//! Debian's Prometheus 2.42 does not send `remote_write.headers` (checked
//! with a header-dumping receiver: only Content-Encoding, Content-Type,
//! User-Agent and the version header arrive), so its samples land in the
//! `default` tenant here.
//!
//! Skipped when `prometheus` is not installed, unless
//! `STRATA_E2E_REQUIRE_PROMETHEUS=1` (set by `.ci/run`), which makes a
//! missing binary a failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Server, free_port};

fn prometheus_binary() -> Option<String> {
    let found = Command::new("sh")
        .args(["-c", "command -v prometheus"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    if found.is_none() && std::env::var("STRATA_E2E_REQUIRE_PROMETHEUS").as_deref() == Ok("1") {
        panic!("prometheus is not installed but STRATA_E2E_REQUIRE_PROMETHEUS=1");
    }
    found
}

/// Starts Prometheus with `config`, its TSDB and log (`NAME.log`) under
/// `dir`.
fn start_prometheus(
    bin: &str,
    dir: &std::path::Path,
    name: &str,
    port: u16,
    config: &str,
) -> std::process::Child {
    let config_path = dir.join(format!("{name}.yml"));
    std::fs::write(&config_path, config).unwrap();
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    Command::new(bin)
        .arg(format!("--config.file={}", config_path.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join(format!("{name}-tsdb")).display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

#[test]
fn prometheus_remote_writes_to_strata() {
    let Some(bin) = prometheus_binary() else {
        eprintln!("SKIPPED: prometheus not installed (apt-get install prometheus)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);
    let prom_port = free_port();
    let config = format!(
        r#"
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ["127.0.0.1:{prom_port}"]
remote_write:
  - url: "{}"
    queue_config:
      batch_send_deadline: 1s
      max_samples_per_send: 500
    metadata_config:
      send_interval: 1s
"#,
        server.url("/api/v1/write")
    );
    let mut prom = start_prometheus(&bin, dir.path(), "prometheus", prom_port, &config);

    let deadline = Instant::now() + Duration::from_secs(90);
    let query = "SELECT labels['job'], labels['instance'], count(*) FROM samples \
                 WHERE metric = 'up' GROUP BY 1, 2";
    let rows = loop {
        let rows = server.rows(None, query);
        if !rows.is_empty() {
            break rows;
        }
        if Instant::now() > deadline {
            let _ = prom.kill();
            panic!(
                "no samples from Prometheus after 90s; its log:\n{}\nstrata log:\n{}",
                std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default(),
                server.log()
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(rows[0][0], "prometheus");
    assert_eq!(rows[0][1], format!("127.0.0.1:{prom_port}"));
    // Prometheus' own metrics arrive too, with many series, and only in the
    // tenant they were written to.
    let n = server.rows(None, "SELECT count(DISTINCT series_id) FROM samples")[0][0]
        .as_u64()
        .unwrap();
    assert!(n > 100, "only {n} series arrived");
    assert_eq!(
        server.rows(Some("other"), "SELECT count(*) FROM samples")[0][0],
        0
    );
    // Its metadata requests (sent on their own, every second here) give
    // each metric's type and help, in the tenant they were written to.
    let metric = "prometheus_http_requests_total";
    let path = format!("/api/v1/metadata?metric={metric}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let entries = loop {
        let (status, json) = server.get_json("default", &path);
        assert_eq!(status, 200, "{json}");
        if let Some(e) = json["data"][metric].as_array() {
            break e.clone();
        }
        if Instant::now() > deadline {
            let _ = prom.kill();
            panic!(
                "no metadata from Prometheus after 60s: {json}; its log:\n{}",
                std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(entries[0]["type"], "counter", "{entries:?}");
    assert!(
        entries[0]["help"].as_str().is_some_and(|h| !h.is_empty()),
        "{entries:?}"
    );
    let (_, other) = server.get_json("other", &path);
    assert_eq!(other["data"], serde_json::json!({}));
    let _ = prom.kill();
    let _ = prom.wait();
}

/// GETs a Prometheus API path from the server at `port`; the JSON body.
fn prom_get(port: u16, path: &str) -> serde_json::Value {
    let mut resp = common::agent()
        .get(&format!("http://127.0.0.1:{port}{path}"))
        .call()
        .unwrap();
    let text = resp.body_mut().read_to_string().unwrap();
    serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
}

/// A query's series, sorted by their labels.
fn sorted_result(json: &serde_json::Value) -> Vec<serde_json::Value> {
    assert_eq!(json["status"], "success", "{json}");
    let mut v = json["data"]["result"].as_array().unwrap().clone();
    v.sort_by_key(|s| s["metric"].to_string());
    v
}

/// A Prometheus scrapes itself and remote-writes to Strata; a second
/// Prometheus, with nothing of its own, reads Strata through a
/// `remote_read` section and answers a range selector over a window that
/// spans Strata's files and head with exactly the series and samples the
/// first holds locally.
#[test]
fn prometheus_reads_strata_back_through_remote_read() {
    let Some(bin) = prometheus_binary() else {
        eprintln!("SKIPPED: prometheus not installed (apt-get install prometheus)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);
    let [writer_port, reader_port] = common::free_ports::<2>();
    let writer_config = format!(
        r#"
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ["127.0.0.1:{writer_port}"]
remote_write:
  - url: "{}"
    queue_config:
      batch_send_deadline: 1s
      max_shards: 1
"#,
        server.url("/api/v1/write")
    );
    let reader_config = format!(
        r#"
remote_read:
  - url: "{}"
    read_recent: true
"#,
        server.url("/api/v1/read")
    );
    let mut writer = start_prometheus(&bin, dir.path(), "writer", writer_port, &writer_config);
    let mut reader = start_prometheus(&bin, dir.path(), "reader", reader_port, &reader_config);
    let logs = || {
        format!(
            "writer log:\n{}\nreader log:\n{}\nstrata log:\n{}",
            std::fs::read_to_string(dir.path().join("writer.log")).unwrap_or_default(),
            std::fs::read_to_string(dir.path().join("reader.log")).unwrap_or_default(),
            server.log()
        )
    };
    // The newest `up` sample Strata holds, in seconds.
    let newest = || {
        let (_, json) = server.get_json("default", "/api/v1/query?query=timestamp(up)");
        json["data"]["result"][0]["value"][1]
            .as_str()
            .and_then(|v| v.parse::<f64>().ok())
    };
    let wait_for = |what: &str, until: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(90);
        while !until() {
            if Instant::now() > deadline {
                panic!("{what} after 90s; {}", logs());
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    };
    // Twenty seconds of scrapes, flushed to a file; more into the head.
    let first = std::cell::Cell::new(None::<f64>);
    wait_for("no samples from the writer", &|| {
        let n = newest();
        if first.get().is_none() {
            first.set(n);
        }
        matches!((first.get(), n), (Some(a), Some(b)) if b - a >= 20.0)
    });
    let (status, body) = server.post("/api/v1/admin/flush").unwrap();
    assert_eq!(status, 200, "{body}");
    std::thread::sleep(Duration::from_secs(5));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let at = (now - 2.0).floor();
    // Everything up to `at` has arrived once a later scrape has.
    wait_for("the writer's samples lag", &|| {
        newest().is_some_and(|t| t >= at + 3.0)
    });

    let path = format!("/api/v1/query?query=%7Bjob%3D%22prometheus%22%7D%5B25s%5D&time={at}");
    let local = sorted_result(&prom_get(writer_port, &path));
    let remote = sorted_result(&prom_get(reader_port, &path));
    assert!(local.len() > 100, "only {} series", local.len());
    if local != remote {
        let names = |v: &[serde_json::Value]| {
            v.iter()
                .map(|s| s["metric"].to_string())
                .collect::<Vec<_>>()
        };
        let first_diff = local.iter().zip(&remote).find(|(a, b)| a != b);
        panic!(
            "remote read differs: {} series locally, {} through Strata; first difference {first_diff:?}; missing {:?}",
            local.len(),
            remote.len(),
            names(&local)
                .into_iter()
                .filter(|n| !names(&remote).contains(n))
                .take(5)
                .collect::<Vec<_>>()
        );
    }
    // The window holds samples of both the file and the head.
    let points = local[0]["values"].as_array().unwrap().len();
    assert!(points >= 15, "{points} points in 25 s of 1 s scrapes");
    let _ = writer.kill();
    let _ = reader.kill();
    let _ = writer.wait();
    let _ = reader.wait();
}

/// Two Prometheus replicas of one HA pair (external labels `cluster` and
/// `__replica__`) scrape the same target and both remote-write: Strata
/// stores one copy, without the replica label, from the elected replica;
/// when that one stops, the other takes over after the failover timeout
/// and the series goes on.
#[test]
fn prometheus_ha_pair_is_stored_once() {
    let Some(bin) = prometheus_binary() else {
        eprintln!("SKIPPED: prometheus not installed (apt-get install prometheus)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("strata.toml");
    std::fs::write(
        &config,
        "[limits.tenant_defaults]\naccept_ha_samples = true\nha_failover_timeout = \"3s\"\n",
    )
    .unwrap();
    let server = Server::start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let target = server
        .url("/")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let ports = common::free_ports::<2>();
    let config_of = |replica: &str| {
        format!(
            r#"
global:
  scrape_interval: 1s
  external_labels:
    cluster: eu
    __replica__: {replica}
scrape_configs:
  - job_name: strata
    static_configs:
      - targets: ["{target}"]
remote_write:
  - url: "{}"
    queue_config:
      batch_send_deadline: 1s
"#,
            server.url("/api/v1/write")
        )
    };
    let logs = || {
        format!(
            "r1 log:\n{}\nr2 log:\n{}\nstrata log:\n{}",
            std::fs::read_to_string(dir.path().join("r1.log")).unwrap_or_default(),
            std::fs::read_to_string(dir.path().join("r2.log")).unwrap_or_default(),
            server.log()
        )
    };
    // `up` of the target as stored: (cluster, replica or "-", samples).
    let up_rows = || {
        server.rows(
            None,
            "SELECT labels['cluster'], coalesce(labels['__replica__'], '-'), count(*) \
             FROM samples WHERE metric = 'up' GROUP BY 1, 2",
        )
    };
    let up_count = || up_rows().first().and_then(|r| r[2].as_u64()).unwrap_or(0);
    let deduped = || {
        let (_, text) = server.get("/metrics");
        text.lines()
            .filter(|l| {
                l.starts_with("strata_ha_deduped_samples_total{") && l.contains("cluster=\"eu\"")
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>()
    };
    let wait_for = |what: &str, until: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(90);
        while !until() {
            assert!(Instant::now() < deadline, "{what} after 90s; {}", logs());
            std::thread::sleep(Duration::from_millis(500));
        }
    };
    // r1 alone first: it is elected.
    let mut r1 = start_prometheus(&bin, dir.path(), "r1", ports[0], &config_of("r1"));
    wait_for("no samples from r1", &|| up_count() >= 5);
    // r2 joins: its writes are answered 202 and not stored.
    let mut r2 = start_prometheus(&bin, dir.path(), "r2", ports[1], &config_of("r2"));
    wait_for("no deduplicated samples from r2", &|| deduped() > 0.0);
    std::thread::sleep(Duration::from_secs(10));
    let rows = up_rows();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        (rows[0][0].as_str(), rows[0][1].as_str()),
        (Some("eu"), Some("-")),
        "stored with the cluster label, without the replica label"
    );
    // One sample per scrape interval, not one per replica.
    let (_, json) = server.get_json(
        "default",
        "/api/v1/query?query=count_over_time(up%5B10s%5D)",
    );
    let per_10s: f64 = json["data"]["result"][0]["value"][1]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        per_10s <= 11.0,
        "{per_10s} samples in 10 s of 1 s scrapes: {json}"
    );

    // r1 stops: after the failover timeout r2 is elected and the same
    // series goes on.
    let _ = r1.kill();
    let _ = r1.wait();
    let counted = up_count();
    wait_for("no failover to r2", &|| up_count() >= counted + 5);
    let rows = up_rows();
    assert_eq!(rows.len(), 1, "still one series after failover: {rows:?}");
    let _ = r2.kill();
    let _ = r2.wait();
}

/// Serves `body` as OpenMetrics text to every request on a free port, in a
/// thread; the port.
fn serve_openmetrics(body: &'static str) -> u16 {
    serve(
        "application/openmetrics-text; version=1.0.0; charset=utf-8",
        body.as_bytes().to_vec(),
    )
}

/// A Prometheus at `port` with `config` (written to `dir/name.yml`, its
/// log to `dir/name.log`) and the feature flag `feature`.
fn prometheus_with(
    bin: &str,
    dir: &std::path::Path,
    name: &str,
    config: &str,
    port: u16,
    feature: &str,
) -> std::process::Child {
    let config_path = dir.join(format!("{name}.yml"));
    std::fs::write(&config_path, config).unwrap();
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    Command::new(bin)
        .arg(format!("--config.file={}", config_path.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg(format!("--enable-feature={feature}"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// A scrape target answering every request with `body` as `content_type`.
fn serve(content_type: &'static str, body: Vec<u8>) -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    port
}

/// A real Prometheus with exemplar storage scrapes a target exposing an
/// exemplar (OpenMetrics) and remote-writes it (`send_exemplars`); Strata
/// answers it from `/api/v1/query_exemplars` as Grafana asks for it.
#[test]
fn prometheus_sends_exemplars_to_strata() {
    let Some(bin) = prometheus_binary() else {
        eprintln!("SKIPPED: prometheus not installed (apt-get install prometheus)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);
    let target = serve_openmetrics(
        "# TYPE picking_requests counter\n\
         picking_requests_total{stage=\"picking\"} 5 # {trace_id=\"4bf92f3577b34da6\"} 0.25\n\
         # EOF\n",
    );
    let prom_port = free_port();
    let config = format!(
        r#"
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: odoo
    static_configs:
      - targets: ["127.0.0.1:{target}"]
remote_write:
  - url: "{}"
    send_exemplars: true
    queue_config:
      batch_send_deadline: 1s
"#,
        server.url("/api/v1/write")
    );
    let mut prom = prometheus_with(
        &bin,
        dir.path(),
        "exemplars",
        &config,
        prom_port,
        "exemplar-storage",
    );
    let path = "/api/v1/query_exemplars?query=rate(picking_requests_total[5m])\
                &start=0&end=9999999999";
    let deadline = Instant::now() + Duration::from_secs(90);
    let found = loop {
        let (status, json) = server.get_json("default", path);
        assert_eq!(status, 200, "{json}");
        if json["data"].as_array().is_some_and(|a| !a.is_empty()) {
            break json["data"].clone();
        }
        if Instant::now() > deadline {
            let _ = prom.kill();
            panic!(
                "no exemplars from Prometheus after 90s: {json}; its log:\n{}\nstrata log:\n{}",
                std::fs::read_to_string(dir.path().join("exemplars.log")).unwrap_or_default(),
                server.log()
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let _ = prom.kill();
    let _ = prom.wait();
    let series = &found[0];
    assert_eq!(series["seriesLabels"]["__name__"], "picking_requests_total");
    assert_eq!(series["seriesLabels"]["stage"], "picking");
    assert_eq!(series["seriesLabels"]["job"], "odoo");
    let e = &series["exemplars"][0];
    assert_eq!(
        e["labels"],
        serde_json::json!({"trace_id": "4bf92f3577b34da6"})
    );
    assert_eq!(e["value"], "0.25");
    assert!(e["timestamp"].as_f64().is_some_and(|t| t > 1.7e9), "{e}");
}

/// The protobuf exposition format (`io.prometheus.client`), the fields a
/// native histogram needs.
mod exposition {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct MetricFamily {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(string, tag = "2")]
        pub help: String,
        #[prost(int32, tag = "3")]
        pub r#type: i32,
        #[prost(message, repeated, tag = "4")]
        pub metric: Vec<Metric>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Metric {
        #[prost(message, repeated, tag = "1")]
        pub label: Vec<LabelPair>,
        #[prost(message, optional, tag = "7")]
        pub histogram: Option<Histogram>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct LabelPair {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(string, tag = "2")]
        pub value: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Histogram {
        #[prost(uint64, tag = "1")]
        pub sample_count: u64,
        #[prost(double, tag = "2")]
        pub sample_sum: f64,
        #[prost(sint32, tag = "5")]
        pub schema: i32,
        #[prost(double, tag = "6")]
        pub zero_threshold: f64,
        #[prost(uint64, tag = "7")]
        pub zero_count: u64,
        #[prost(message, repeated, tag = "12")]
        pub positive_span: Vec<BucketSpan>,
        #[prost(sint64, repeated, tag = "13")]
        pub positive_delta: Vec<i64>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct BucketSpan {
        #[prost(sint32, tag = "1")]
        pub offset: i32,
        #[prost(uint32, tag = "2")]
        pub length: u32,
    }
}

/// A real Prometheus with native histograms on scrapes a target exposing
/// one in the protobuf format and remote-writes it
/// (`send_native_histograms`, remote write 1.0); Strata keeps it in the
/// tenant's histograms table, as sent, once flushed.
#[test]
fn prometheus_sends_native_histograms_to_strata() {
    use prost::Message;
    let Some(bin) = prometheus_binary() else {
        eprintln!("SKIPPED: prometheus not installed (apt-get install prometheus)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &[]);
    // 6 observations: 1 in the zero bucket, 2 in bucket 0 (0.5, 1], 3 in
    // bucket 1 (1, 2] (deltas 2, +1).
    let family = exposition::MetricFamily {
        name: "dispatch_seconds".into(),
        help: "Dispatch latency.".into(),
        r#type: 4,
        metric: vec![exposition::Metric {
            label: vec![],
            histogram: Some(exposition::Histogram {
                sample_count: 6,
                sample_sum: 7.5,
                schema: 0,
                zero_threshold: 0.001,
                zero_count: 1,
                positive_span: vec![exposition::BucketSpan {
                    offset: 0,
                    length: 2,
                }],
                positive_delta: vec![2, 1],
            }),
        }],
    };
    let target = serve(
        "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; \
         encoding=delimited",
        family.encode_length_delimited_to_vec(),
    );
    let prom_port = free_port();
    let config = format!(
        r#"
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: odoo
    static_configs:
      - targets: ["127.0.0.1:{target}"]
remote_write:
  - url: "{}"
    send_native_histograms: true
    queue_config:
      batch_send_deadline: 1s
"#,
        server.url("/api/v1/write")
    );
    let mut prom = prometheus_with(
        &bin,
        dir.path(),
        "histograms",
        &config,
        prom_port,
        "native-histograms",
    );
    let deadline = Instant::now() + Duration::from_secs(90);
    let rows = loop {
        let (status, body) = server.post("/api/v1/admin/flush").unwrap();
        assert_eq!(status, 200, "{body}");
        let rows = common::histogram_rows(&data.join("objects"), "default", "dispatch_seconds");
        if !rows.is_empty() {
            break rows;
        }
        if Instant::now() > deadline {
            let _ = prom.kill();
            panic!(
                "no native histogram from Prometheus after 90s; its log:\n{}\nstrata log:\n{}",
                std::fs::read_to_string(dir.path().join("histograms.log")).unwrap_or_default(),
                server.log()
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(
        rows[0],
        ("odoo".into(), 6.0, 7.5, 0, vec![0, 1], vec![2.0, 3.0]),
        "{rows:?}"
    );
    // PromQL over the stored histograms answers what Prometheus answers
    // over the ones it scraped itself (the target serves one histogram,
    // so both are the same at any time) where 2.42 and 3.x agree.
    let enc = |q: &str| -> String {
        q.bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    let answer = |json: &serde_json::Value| -> serde_json::Value {
        let r = &json["data"]["result"][0];
        let value = if r["histogram"].is_null() {
            &r["value"][1]
        } else {
            &r["histogram"][1]
        };
        serde_json::json!({"metric": r["metric"], "value": value})
    };
    for q in [
        "dispatch_seconds",
        "histogram_count(dispatch_seconds)",
        "histogram_sum(dispatch_seconds)",
        "sum by (job) (dispatch_seconds)",
    ] {
        let (status, ours) = server.get_json("default", &format!("/api/v1/query?query={}", enc(q)));
        assert_eq!(status, 200, "{q}: {ours}");
        let theirs: serde_json::Value = {
            let mut resp = common::agent()
                .get(&format!(
                    "http://127.0.0.1:{prom_port}/api/v1/query?query={}",
                    enc(q)
                ))
                .call()
                .unwrap();
            serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap()
        };
        assert!(
            !theirs["data"]["result"][0].is_null(),
            "{q}: Prometheus: {theirs}"
        );
        assert_eq!(answer(&ours), answer(&theirs), "{q}");
    }
    // Quantiles as Prometheus 3 interpolates them (exponentially within a
    // bucket; 2.42 interpolated linearly): the median at the bucket (1, 2]'s
    // lower end, the 0.9 quantile 2^0.8 within it.
    for (q, want) in [(0.5, 1.0), (0.9, 0.8f64.exp2())] {
        let query = format!("histogram_quantile({q}, dispatch_seconds)");
        let (status, ours) =
            server.get_json("default", &format!("/api/v1/query?query={}", enc(&query)));
        assert_eq!(status, 200, "{query}: {ours}");
        let got: f64 = ours["data"]["result"][0]["value"][1]
            .as_str()
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN);
        assert!((got - want).abs() < 1e-12, "{query}: {ours}");
    }
    let _ = prom.kill();
    let _ = prom.wait();
}
