//! The server on a real S3-compatible store (Garage, from `scripts/test`):
//! flushes land in the bucket; while the store is unreachable writes are
//! still acknowledged (the WAL holds them), queries still see everything,
//! flushes fail and are retried, and once the store is back the backlog is
//! flushed. Skipped without `STRATA_TEST_S3_*` unless `STRATA_E2E_REQUIRE_S3=1`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{Server, payload, series};

/// A TCP forwarder that can be switched off: connections are then closed
/// at once, as a store that is down would.
struct Proxy {
    port: u16,
    up: Arc<AtomicBool>,
}

impl Proxy {
    fn start(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let flag = Arc::clone(&up);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if !flag.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(&target) else {
                    continue;
                };
                let f = &flag;
                pipe(
                    client.try_clone().unwrap(),
                    server.try_clone().unwrap(),
                    Arc::clone(f),
                );
                pipe(server, client, Arc::clone(f));
            }
        });
        Self { port, up }
    }
}

/// Copies bytes one way until either side closes or the proxy goes down
/// (which also cuts kept-alive connections).
fn pipe(mut from: TcpStream, mut to: TcpStream, up: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        let _ = from.set_read_timeout(Some(Duration::from_millis(50)));
        let mut buf = [0u8; 64 * 1024];
        while up.load(Ordering::SeqCst) {
            match from.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => break,
            }
        }
        let _ = to.shutdown(std::net::Shutdown::Both);
        let _ = from.shutdown(std::net::Shutdown::Both);
    });
}

fn count(server: &Server) -> u64 {
    server.rows(
        None,
        "SELECT count(*) FROM samples WHERE metric = 'os_test'",
    )[0][0]
        .as_u64()
        .unwrap()
}

/// Samples at or after the first unflushed request's timestamp: answered
/// from the head alone (the flushed file is pruned by its logged time
/// range), so it works while the store is down.
fn count_recent(server: &Server) -> u64 {
    server.rows(
        None,
        "SELECT count(*) FROM samples WHERE metric = 'os_test' \
         AND timestamp >= TIMESTAMP '2023-11-14T22:13:30Z'",
    )[0][0]
        .as_u64()
        .unwrap()
}

fn write(server: &Server, from: i64, to: i64) {
    for r in from..to {
        let ts: Vec<_> = (0..10)
            .map(|s| {
                let sid = s.to_string();
                series(
                    &[("__name__", "os_test"), ("s", &sid)],
                    &[(1_700_000_000_000 + r * 1000, r as f64)],
                )
            })
            .collect();
        let (status, body) = server.write(None, &payload(ts));
        assert_eq!(status, 204, "{body}");
    }
}

#[test]
fn flushes_survive_an_object_store_outage() {
    let var = |k: &str| std::env::var(k).ok();
    let Some(url) = var("STRATA_TEST_S3_URL") else {
        assert!(
            var("STRATA_E2E_REQUIRE_S3").as_deref() != Some("1"),
            "STRATA_E2E_REQUIRE_S3=1 but STRATA_TEST_S3_URL is not set"
        );
        eprintln!("skipping: STRATA_TEST_S3_URL not set");
        return;
    };
    let endpoint = var("STRATA_TEST_S3_ENDPOINT").unwrap();
    let proxy = Proxy::start(endpoint.trim_start_matches("http://").to_owned());

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("strata.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[object_store]
url = "{url}/{prefix}"
max_retries = 1
retry_timeout = "2s"
[object_store.options]
aws_endpoint = "http://127.0.0.1:{port}"
aws_region = "{region}"
aws_access_key_id = "{key}"
aws_secret_access_key = "{secret}"
aws_allow_http = "true"
aws_virtual_hosted_style_request = "false"
[storage]
flush_interval = "1h"
"#,
            prefix = uuid::Uuid::new_v4(),
            port = proxy.port,
            region = var("STRATA_TEST_S3_REGION").unwrap(),
            key = var("STRATA_TEST_S3_KEY_ID").unwrap(),
            secret = var("STRATA_TEST_S3_SECRET").unwrap(),
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let args = ["--config", config.to_str().unwrap()];
    let server = Server::start(&data, &args);

    write(&server, 0, 10);
    let (status, body) = server.post("/api/v1/admin/flush").unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"files\":1"), "{body}");
    assert!(
        !data.join("objects").exists(),
        "nothing written locally when the store is S3"
    );

    // The store goes away.
    proxy.up.store(false, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(200));
    write(&server, 10, 20);
    let (status, body) = server.post("/api/v1/admin/flush").unwrap();
    assert_eq!(status, 503, "{body}");
    assert_eq!(count_recent(&server), 100, "unflushed data still readable");
    let (status, body) = server.sql(None, "SELECT count(*) FROM samples");
    // Files are unreachable: a server error naming the store. (DataFusion
    // reports a failed Parquet metadata fetch as text, so this is 500, not
    // the 503 a typed store error gets.)
    assert!(status >= 500, "{body}");
    assert!(body.to_string().contains("Object Store error"), "{body}");
    let (_, metrics) = server.get("/metrics");
    assert!(
        metrics.contains("strata_flushes_total{result=\"error\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("strata_flush_pending_cuts 1"), "{metrics}");

    // A restart while it is down: the WAL still has the unflushed data.
    drop(server);
    proxy.up.store(true, Ordering::SeqCst);
    let server = Server::start(&data, &args);
    assert_eq!(count(&server), 200);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = server.post("/api/v1/admin/flush").unwrap();
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "store back but flush fails: {body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(count(&server), 200);
    let (_, metrics) = server.get("/metrics");
    assert!(
        metrics.contains("strata_table_samples{tenant=\"default\"} 200"),
        "{metrics}"
    );
}
