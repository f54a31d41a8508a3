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
    let config_path = dir.path().join("prometheus.yml");
    std::fs::write(&config_path, config).unwrap();
    let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
    let mut prom = Command::new(bin)
        .arg(format!("--config.file={}", config_path.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();

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
