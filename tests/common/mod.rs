//! Helpers for end-to-end tests: run the real `strata` binary, talk to it
//! over HTTP like a client would.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use strata_ingest::remote_write::proto;

/// A running `strata serve`, killed when dropped.
pub struct Server {
    pub child: Child,
    pub addr: String,
    /// The Postgres wire protocol listener.
    pub pg_port: u16,
    /// The Arrow Flight SQL listener.
    pub flight_port: u16,
    pub data_dir: PathBuf,
    agent: ureq::Agent,
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build(),
    )
}

pub fn free_port() -> u16 {
    free_ports::<1>()[0]
}

/// `N` distinct free ports: all bound at once, so the OS cannot hand the
/// same one out twice (one server's listeners collided that way).
pub fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    std::array::from_fn(|i| listeners[i].local_addr().unwrap().port())
}

impl Server {
    /// Starts the binary on a free port and waits until `/-/ready` is 200.
    pub fn start(data_dir: &Path, extra: &[&str]) -> Self {
        Self::start_with_env(data_dir, extra, &[])
    }

    /// Like [`Server::start`], with extra environment variables.
    pub fn start_with_env(data_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Self {
        // The three ports are picked together, so they differ.
        let [port, pg_port, flight_port] = free_ports::<3>();
        Self::spawn([port, pg_port, flight_port], data_dir, extra, env)
    }

    /// Like [`Server::start_with_env`], on HTTP port `port` (a restart at
    /// the same address, as a StatefulSet pod's name stays).
    pub fn start_at(port: u16, data_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Self {
        let others = loop {
            let p = free_ports::<2>();
            if !p.contains(&port) {
                break p;
            }
        };
        Self::spawn([port, others[0], others[1]], data_dir, extra, env)
    }

    fn spawn(
        [port, pg_port, flight_port]: [u16; 3],
        data_dir: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let addr = format!("127.0.0.1:{port}");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data_dir.with_extension("log"))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_strata"))
            .args([
                "serve",
                "--data-dir",
                data_dir.to_str().unwrap(),
                "--listen",
                &addr,
                "--pg-listen",
                &format!("127.0.0.1:{pg_port}"),
                "--flight-listen",
                &format!("127.0.0.1:{flight_port}"),
            ])
            .args(extra)
            .env_remove("STRATA_CONFIG")
            .env_remove("STRATA_REQUIRE_TENANT")
            .env_remove("STRATA_FAILPOINT")
            .env_remove("STRATA_OBJECT_STORE_URL")
            .env_remove("STRATA_PG_LISTEN")
            .env_remove("STRATA_FLIGHT_LISTEN")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn strata");
        let server = Self {
            child,
            addr,
            pg_port,
            flight_port,
            data_dir: data_dir.to_owned(),
            agent: agent(),
        };
        server.wait_ready();
        server
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(resp) = self.agent.get(&self.url("/-/ready")).call()
                && resp.status() == 200
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "strata did not become ready; log: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.with_extension("log")).unwrap_or_default()
    }

    /// `kill -9`.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        self.child.wait().unwrap()
    }

    /// POSTs a remote-write body; returns status and body text.
    pub fn write(&self, tenant: Option<&str>, body: &[u8]) -> (u16, String) {
        let mut req = self
            .agent
            .post(&self.url("/api/v1/write"))
            .header("Content-Type", "application/x-protobuf")
            .header("Content-Encoding", "snappy")
            .header("X-Prometheus-Remote-Write-Version", "0.1.0");
        if let Some(t) = tenant {
            req = req.header("X-Scope-OrgID", t);
        }
        let mut resp = req.send(body).unwrap();
        (
            resp.status().as_u16(),
            resp.body_mut().read_to_string().unwrap_or_default(),
        )
    }

    /// Runs SQL; returns status and the JSON body.
    pub fn sql(&self, tenant: Option<&str>, query: &str) -> (u16, serde_json::Value) {
        let mut req = self
            .agent
            .post(&self.url("/api/v1/sql"))
            .header("Content-Type", "application/json");
        if let Some(t) = tenant {
            req = req.header("X-Scope-OrgID", t);
        }
        let mut resp = req
            .send(serde_json::json!({ "query": query }).to_string())
            .unwrap();
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        )
    }

    /// Rows of a query that must succeed.
    pub fn rows(&self, tenant: Option<&str>, query: &str) -> Vec<serde_json::Value> {
        let (status, json) = self.sql(tenant, query);
        assert_eq!(status, 200, "{query}: {json}");
        json["rows"].as_array().unwrap().clone()
    }

    /// POSTs `body` of `content_type` for `tenant`: status and text.
    pub fn post_body(
        &self,
        tenant: &str,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> (u16, String) {
        let mut resp = self
            .agent
            .post(&self.url(path))
            .header("X-Scope-OrgID", tenant)
            .header("Content-Type", content_type)
            .send(body)
            .unwrap();
        (
            resp.status().as_u16(),
            resp.body_mut().read_to_string().unwrap_or_default(),
        )
    }

    /// POSTs an empty body; `None` if the connection failed (the server
    /// died answering).
    pub fn post(&self, path: &str) -> Option<(u16, String)> {
        let mut resp = self.agent.post(&self.url(path)).send_empty().ok()?;
        Some((
            resp.status().as_u16(),
            resp.body_mut().read_to_string().unwrap_or_default(),
        ))
    }

    /// Waits for the process to exit on its own.
    pub fn wait_exit(mut self) -> std::process::ExitStatus {
        self.child.wait().unwrap()
    }

    /// GETs `path` as `tenant`; status and the JSON body (a string if the
    /// body is not JSON).
    pub fn get_json(&self, tenant: &str, path: &str) -> (u16, serde_json::Value) {
        let mut resp = self
            .agent
            .get(&self.url(path))
            .header("X-Scope-OrgID", tenant)
            .call()
            .unwrap();
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        )
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        let mut resp = self.agent.get(&self.url(path)).call().unwrap();
        (
            resp.status().as_u16(),
            resp.body_mut().read_to_string().unwrap_or_default(),
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn series(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> proto::TimeSeries {
    proto::TimeSeries::from_pairs(labels, samples)
}

/// A series of one integer native histogram at `timestamp`: `count`
/// observations, all in the zero bucket (one empty bucket beside it).
pub fn histogram_series(labels: &[(&str, &str)], timestamp: i64, count: u64) -> proto::TimeSeries {
    let mut s = series(labels, &[]);
    s.histograms.push(proto::Histogram {
        count_int: Some(count),
        zero_count_int: Some(count),
        sum: 1.0,
        schema: 0,
        positive_spans: vec![proto::BucketSpan {
            offset: 0,
            length: 1,
        }],
        positive_deltas: vec![0],
        timestamp,
        ..Default::default()
    });
    s
}

/// An exemplar with one label, `trace_id`.
pub fn exemplar(trace: &str, value: f64, timestamp: i64) -> proto::Exemplar {
    proto::Exemplar {
        labels: vec![proto::Label {
            name: "trace_id".into(),
            value: trace.into(),
        }],
        value,
        timestamp,
    }
}

pub fn payload(ts: Vec<proto::TimeSeries>) -> Vec<u8> {
    proto::encode_snappy(&proto::WriteRequest {
        timeseries: ts,
        metadata: vec![],
    })
}

/// Three series of `http_requests_total` for `tenant` (job api/db, code
/// 200/500, values 0..10, one per 15 s from 2026-11-01), written over
/// remote write.
pub fn load_http_requests(server: &Server, tenant: &str) {
    let ts = [("api", "200"), ("api", "500"), ("db", "200")]
        .iter()
        .map(|(job, code)| {
            let samples: Vec<(i64, f64)> = (0..10)
                .map(|i| (1_793_491_200_000 + i * 15_000, i as f64))
                .collect();
            series(
                &[
                    ("__name__", "http_requests_total"),
                    ("code", code),
                    ("job", job),
                ],
                &samples,
            )
        })
        .collect();
    assert_eq!(server.write(Some(tenant), &payload(ts)).0, 204);
}

/// Whether the real clients a test needs are here: each of `commands`
/// answers `--version` and python3 imports `modules`. Missing ones skip
/// the test, unless `STRATA_E2E_REQUIRE_PYTHON=1` (CI) makes it a failure.
/// `modules` empty: no Python needed.
/// Percent-encodes a query-string value.
pub fn escape(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

pub fn clients_ready(commands: &[&str], modules: &str) -> bool {
    let mut missing: Vec<String> = commands
        .iter()
        .filter(|c| {
            !Command::new(c)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .map(|c| (*c).to_owned())
        .collect();
    let python = modules.is_empty()
        || Command::new("python3")
            .args(["-c", &format!("import {modules}")])
            .status()
            .is_ok_and(|s| s.success());
    if !python {
        missing.push(format!("python3 with {modules}"));
    }
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var("STRATA_E2E_REQUIRE_PYTHON").as_deref() != Ok("1"),
        "STRATA_E2E_REQUIRE_PYTHON=1 but missing: {}",
        missing.join(", ")
    );
    eprintln!("skipping: missing {}", missing.join(", "));
    false
}

/// Debian's Alertmanager on a free port, storing under `dir`, every alert
/// to a receiver that drops it; the process and its URL.
pub fn alertmanager(dir: &Path) -> (Child, String) {
    let config = dir.join("am.yml");
    std::fs::write(
        &config,
        "route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n",
    )
    .unwrap();
    let port = free_port();
    let child = Command::new("prometheus-alertmanager")
        .args([
            &format!("--config.file={}", config.display()),
            &format!("--storage.path={}", dir.join("am").display()),
            &format!("--web.listen-address=127.0.0.1:{port}"),
            "--cluster.listen-address=",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    (child, format!("http://127.0.0.1:{port}"))
}

/// Runs `tests/interop/<script>` with python3 and `args`, and returns its
/// stdout; a failure shows its stderr and, given one, the server's log.
/// Runs `cmd`, asserting that it succeeds (naming what it printed when
/// not); its standard output.
pub fn stdout_of(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

pub fn interop(script: &str, args: &[&str], server: Option<&Server>) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/interop")
        .join(script);
    let out = Command::new("python3")
        .arg(&path)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script} {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.map(Server::log).unwrap_or_default()
    );
    out.stdout
}

/// Rows of `metric` in `tenant`'s histograms table, read from its Parquet
/// files under `objects` (a local object store):
/// (job label, count, sum, schema, positive bucket indexes, their counts).
pub type HistogramRow = (String, f64, f64, i32, Vec<i32>, Vec<f64>);

pub fn histogram_rows(objects: &std::path::Path, tenant: &str, metric: &str) -> Vec<HistogramRow> {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{Float64Type, Int32Type};
    let table = objects.join(format!("tenants/{tenant}/histograms"));
    let mut rows = Vec::new();
    let Ok(days) = std::fs::read_dir(&table) else {
        return rows;
    };
    for day in days
        .flatten()
        .filter(|d| d.file_name().to_string_lossy().starts_with("day="))
    {
        for file in std::fs::read_dir(day.path()).unwrap().flatten() {
            let f = std::fs::File::open(file.path()).unwrap();
            let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
                .unwrap()
                .build()
                .unwrap();
            for batch in reader {
                let b = batch.unwrap();
                let col = |name: &str| b.column_by_name(name).unwrap().clone();
                let names = col("metric");
                let labels = col("labels");
                let labels = labels.as_map();
                let (count, sum) = (col("count"), col("sum"));
                let schema = col("schema");
                let (buckets, counts) = (col("positive_buckets"), col("positive_counts"));
                for i in 0..b.num_rows() {
                    if names.as_string::<i32>().value(i) != metric {
                        continue;
                    }
                    let entries = labels.value(i);
                    let keys = entries.column(0).as_string::<i32>();
                    let values = entries.column(1).as_string::<i32>();
                    let job = (0..entries.len())
                        .find(|&k| keys.value(k) == "job")
                        .map(|k| values.value(k).to_owned())
                        .unwrap_or_default();
                    rows.push((
                        job,
                        count.as_primitive::<Float64Type>().value(i),
                        sum.as_primitive::<Float64Type>().value(i),
                        schema.as_primitive::<Int32Type>().value(i),
                        buckets
                            .as_list::<i32>()
                            .value(i)
                            .as_primitive::<Int32Type>()
                            .values()
                            .to_vec(),
                        counts
                            .as_list::<i32>()
                            .value(i)
                            .as_primitive::<Float64Type>()
                            .values()
                            .to_vec(),
                    ));
                }
            }
        }
    }
    rows
}
