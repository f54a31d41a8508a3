//! PromQL through the Prometheus HTTP API with real clients:
//! - `promtool query instant|range|series|labels` against Strata;
//! - the same generated data remote-written to Strata and to a real
//!   Prometheus (Debian's 2.42, with its remote-write receiver), then a
//!   query set covering the language asked of both and the answers
//!   compared.
//!
//! Prometheus 2.42 and the 3.x semantics Strata follows differ where a
//! sample sits exactly on a window's start (3.x leaves windows open there);
//! every sample here is a few milliseconds off the whole seconds that all
//! query times, ranges and steps fall on, so no sample is on a boundary.
//!
//! Skipped without `prometheus`/`promtool`, unless
//! `STRATA_E2E_REQUIRE_PROMETHEUS=1` (set by `scripts/test`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Server, agent, free_port, payload, proto, series};
use serde_json::Value;

fn binary(name: &str) -> Option<String> {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    if found.is_none() && std::env::var("STRATA_E2E_REQUIRE_PROMETHEUS").as_deref() == Ok("1") {
        panic!("{name} is not installed but STRATA_E2E_REQUIRE_PROMETHEUS=1");
    }
    found
}

const STEP_MS: i64 = 15_000;
const STEPS: i64 = 160; // 40 minutes

/// A deterministic generator (no dependency, same data every run).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Labels (sorted) and samples of one generated series.
type GenSeries = (Vec<(String, String)>, Vec<(i64, f64)>);

/// Series and their samples: counters (with a reset), classic histogram
/// buckets, gauges, and a series that stops half way.
fn dataset(start: i64) -> Vec<GenSeries> {
    let mut rng = Lcg(7);
    let mut out = Vec::new();
    let mut k = 0i64;
    let mut next_offset = || {
        k += 1;
        // Off every whole second: 7 ms plus a per-series shift.
        (k * 1_013) % 14_000 + 7
    };
    let l = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        // Remote write wants labels sorted by name.
        let mut v: Vec<(String, String)> = pairs
            .iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect();
        v.sort();
        v
    };
    for job in ["api", "worker"] {
        for instance in ["a", "b", "c"] {
            for code in ["200", "500"] {
                let off = next_offset();
                let mut v = 0.0;
                let samples: Vec<(i64, f64)> = (0..STEPS)
                    .map(|i| {
                        // Fractional steps: no two series tie, so `topk`
                        // has one answer (Prometheus breaks ties by input
                        // order, which it does not fix).
                        v += rng.next() * 10.0 + if code == "200" { 20.0 } else { 1.0 };
                        if instance == "b" && i == 90 {
                            v = 3.0; // counter reset
                        }
                        (start + i * STEP_MS + off, v)
                    })
                    .collect();
                out.push((
                    l(&[
                        ("__name__", "http_requests_total"),
                        ("job", job),
                        ("instance", instance),
                        ("code", code),
                    ]),
                    samples,
                ));
            }
            let off = next_offset();
            let samples: Vec<(i64, f64)> = (0..STEPS)
                .map(|i| (start + i * STEP_MS + off, 20.0 + 10.0 * rng.next()))
                .collect();
            out.push((
                l(&[
                    ("__name__", "temperature_celsius"),
                    ("job", job),
                    ("instance", instance),
                ]),
                samples,
            ));
        }
        let mut counts = [0.0f64; 6];
        let bounds = ["0.05", "0.1", "0.25", "0.5", "1", "+Inf"];
        let off = next_offset();
        let mut per_bucket: Vec<Vec<(i64, f64)>> = vec![Vec::new(); 6];
        for i in 0..STEPS {
            let mut cumulative = 0.0;
            for (b, c) in counts.iter_mut().enumerate() {
                *c += (rng.next() * 5.0).round() + 1.0;
                cumulative += *c;
                per_bucket[b].push((start + i * STEP_MS + off, cumulative));
            }
        }
        for (b, samples) in per_bucket.into_iter().enumerate() {
            out.push((
                l(&[
                    ("__name__", "request_duration_seconds_bucket"),
                    ("job", job),
                    ("le", bounds[b]),
                ]),
                samples,
            ));
        }
    }
    let off = next_offset();
    out.push((
        l(&[("__name__", "batch_last_success"), ("job", "worker")]),
        (0..STEPS / 2)
            .map(|i| (start + i * STEP_MS + off, i as f64))
            .collect(),
    ));
    out
}

/// Remote-write bodies in time order, 20 steps each.
fn bodies(data: &[GenSeries]) -> Vec<Vec<u8>> {
    (0..STEPS)
        .step_by(20)
        .map(|from| {
            let ts: Vec<proto::TimeSeries> = data
                .iter()
                .filter_map(|(labels, samples)| {
                    let chunk: Vec<(i64, f64)> = samples
                        .iter()
                        .copied()
                        .skip(from as usize)
                        .take(20)
                        .collect();
                    let pairs: Vec<(&str, &str)> = labels
                        .iter()
                        .map(|(a, b)| (a.as_str(), b.as_str()))
                        .collect();
                    (!chunk.is_empty()).then(|| series(&pairs, &chunk))
                })
                .collect();
            payload(ts)
        })
        .collect()
}

fn post_write(url: &str, body: &[u8]) -> u16 {
    agent()
        .post(url)
        .header("Content-Type", "application/x-protobuf")
        .header("Content-Encoding", "snappy")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .send(body)
        .unwrap()
        .status()
        .as_u16()
}

fn api(base: &str, path: &str, params: &[(&str, String)]) -> Value {
    let mut req = agent().get(format!("{base}{path}"));
    for (k, v) in params {
        req = req.query(*k, v);
    }
    let mut resp = req.call().unwrap();
    let text = resp.body_mut().read_to_string().unwrap();
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("{path}: not JSON: {text}"))
}

struct Prometheus {
    child: std::process::Child,
    base: String,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_prometheus(bin: &str, dir: &std::path::Path) -> Prometheus {
    let port = free_port();
    let config = dir.join("prometheus.yml");
    std::fs::write(&config, "global:\n  scrape_interval: 1h\n").unwrap();
    let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
    let child = Command::new(bin)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--web.enable-remote-write-receiver")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let prom = Prometheus {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = agent()
            .get(format!("{}/-/ready", prom.base))
            .call()
            .is_ok_and(|r| r.status().as_u16() == 200);
        if ready {
            return prom;
        }
        assert!(
            Instant::now() < deadline,
            "prometheus not ready: {}",
            std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

type Normal = (String, Vec<(String, Vec<(String, String)>)>);

/// Result type and series (labels as canonical JSON, points), sorted by
/// labels unless the order is part of the answer.
fn normalize(resp: &Value, ordered: bool) -> Normal {
    assert_eq!(resp["status"], "success", "{resp}");
    let data = &resp["data"];
    let kind = data["resultType"].as_str().unwrap().to_owned();
    let point = |p: &Value| (p[0].to_string(), p[1].as_str().unwrap().to_owned());
    let mut series: Vec<(String, Vec<(String, String)>)> = match kind.as_str() {
        "scalar" | "string" => vec![("{}".into(), vec![point(&data["result"])])],
        _ => data["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let labels = serde_json::to_string(&s["metric"]).unwrap();
                let points = match s.get("values") {
                    Some(v) => v.as_array().unwrap().iter().map(point).collect(),
                    None => vec![point(&s["value"])],
                };
                (labels, points)
            })
            .collect(),
    };
    if !ordered {
        series.sort();
    }
    (kind, series)
}

fn same_value(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => {
            (x.is_nan() && y.is_nan()) || (x - y).abs() <= 1e-9 * x.abs().max(y.abs())
        }
        _ => false,
    }
}

fn same(a: &Normal, b: &Normal) -> bool {
    a.0 == b.0
        && a.1.len() == b.1.len()
        && a.1.iter().zip(&b.1).all(|(x, y)| {
            x.0 == y.0
                && x.1.len() == y.1.len()
                && x.1
                    .iter()
                    .zip(&y.1)
                    .all(|(p, q)| p.0 == q.0 && same_value(&p.1, &q.1))
        })
}

/// Subquery ranges are not multiples of their steps: an inner step exactly
/// on the window's start is in the window for 2.x and not for 3.x.
///
/// The query set: selectors, every aggregation, vector matching, set
/// operators, `bool`, functions, `offset`, `@`, subqueries, SLO-style ratios.
fn queries(at: i64) -> Vec<(String, bool)> {
    let q = |s: &str| (s.to_owned(), false);
    vec![
        q("http_requests_total"),
        q("http_requests_total{code=~\"5..\", instance!=\"c\"}"),
        q("temperature_celsius offset 5m"),
        q(&format!("temperature_celsius @ {}", at / 1000)),
        q(&format!("rate(http_requests_total[5m] @ {})", at / 1000)),
        q("rate(http_requests_total[5m])"),
        q("irate(http_requests_total[2m])"),
        q("increase(http_requests_total[10m])"),
        q("delta(temperature_celsius[10m])"),
        q("idelta(temperature_celsius[3m])"),
        q("deriv(temperature_celsius[10m])"),
        q("predict_linear(temperature_celsius[10m], 600)"),
        q("resets(http_requests_total[30m])"),
        q("changes(temperature_celsius[5m])"),
        q("avg_over_time(temperature_celsius[7m])"),
        q("min_over_time(temperature_celsius[7m])"),
        q("max_over_time(temperature_celsius[7m])"),
        q("sum_over_time(temperature_celsius[7m])"),
        q("count_over_time(temperature_celsius[7m])"),
        q("quantile_over_time(0.9, temperature_celsius[7m])"),
        q("stddev_over_time(temperature_celsius[7m])"),
        q("stdvar_over_time(temperature_celsius[7m])"),
        q("last_over_time(batch_last_success[10m])"),
        q("present_over_time(batch_last_success[10m])"),
        q("absent_over_time(batch_last_success[2m])"),
        q("absent(nonexistent{job=\"api\"})"),
        q("absent(http_requests_total)"),
        q("sum by (job) (rate(http_requests_total[5m]))"),
        q("sum without (instance, code) (rate(http_requests_total[5m]))"),
        q("avg by (job) (temperature_celsius)"),
        q("min by (job) (temperature_celsius)"),
        q("max by (job) (temperature_celsius)"),
        q("count by (code) (http_requests_total)"),
        q("group by (job) (http_requests_total)"),
        q("stddev by (job) (temperature_celsius)"),
        q("stdvar(temperature_celsius)"),
        q("quantile by (job) (0.75, temperature_celsius)"),
        q("count_values(\"code_count\", count by (code) (http_requests_total))"),
        q("topk(3, rate(http_requests_total[5m]))"),
        q("bottomk by (job) (2, temperature_celsius)"),
        q("sum by (job, instance) (rate(http_requests_total[5m]))"),
        q("topk by (job) (1, sum by (job, instance) (rate(http_requests_total[5m])))"),
        q("histogram_quantile(0.9, sum by (le) (rate(request_duration_seconds_bucket[5m])))"),
        q("histogram_quantile(0.5, rate(request_duration_seconds_bucket[5m]))"),
        q("sum(rate(http_requests_total{code=\"500\"}[5m])) / sum(rate(http_requests_total[5m]))"),
        q(
            "sum by (job) (rate(http_requests_total{code=\"500\"}[5m])) / on (job) sum by (job) (rate(http_requests_total[5m]))",
        ),
        q(
            "rate(http_requests_total[5m]) / on (job, instance) group_left sum by (job, instance) (rate(http_requests_total[5m]))",
        ),
        q(
            "sum by (job, instance) (rate(http_requests_total[5m])) / ignoring (code) group_right rate(http_requests_total[5m])",
        ),
        q("temperature_celsius > 25"),
        q("temperature_celsius > bool 25"),
        q("25 < temperature_celsius"),
        q("http_requests_total and on (instance) temperature_celsius{instance=\"a\"}"),
        q("temperature_celsius or batch_last_success"),
        q("http_requests_total unless on (instance) temperature_celsius{instance=\"b\"}"),
        q("temperature_celsius - ignoring (job) group_left temperature_celsius{job=\"api\"}"),
        q("-temperature_celsius + 2 * temperature_celsius ^ 2 % 7"),
        q("abs(delta(temperature_celsius[5m]))"),
        q("ceil(temperature_celsius) - floor(temperature_celsius)"),
        q("round(temperature_celsius, 0.5)"),
        q(
            "sqrt(temperature_celsius) + exp(temperature_celsius / 100) + ln(temperature_celsius) + log2(temperature_celsius) + log10(temperature_celsius)",
        ),
        q("clamp(temperature_celsius, 22, 28)"),
        q("clamp_min(temperature_celsius, 25)"),
        q("clamp_max(temperature_celsius, 25)"),
        q("label_replace(temperature_celsius, \"host\", \"$1-host\", \"instance\", \"(.*)\")"),
        q("label_join(temperature_celsius, \"where\", \"/\", \"job\", \"instance\")"),
        q("timestamp(temperature_celsius)"),
        q("time()"),
        q("scalar(sum(temperature_celsius))"),
        q("vector(1) + scalar(count(temperature_celsius))"),
        q(
            "hour() + minute() + day_of_week() + day_of_month() + month() + year() + days_in_month() + day_of_year()",
        ),
        q("max_over_time(rate(http_requests_total[1m])[9m30s:1m])"),
        q("avg_over_time(sum by (job) (temperature_celsius)[5m15s:30s])"),
        q("min_over_time(temperature_celsius[10m30s:] offset 5m)"),
        // Subquery ranges off their grid: where a window's start falls on
        // a grid step, 2.x counts that step and 3.x does not.
        q("max_over_time(deriv(temperature_celsius[5m])[10m15s:30s])"),
        q("sum_over_time(sum by (job) (rate(http_requests_total[5m]))[3m10s:20s] offset 2m)"),
        q("max_over_time(rate(http_requests_total[2m])[35s:10s])"),
        q("max_over_time(avg_over_time(rate(http_requests_total[2m])[4m30s:1m])[6m30s:2m])"),
        q(&format!(
            "avg_over_time(rate(http_requests_total[5m])[10m30s:1m] @ {})",
            at / 1000
        )),
        q("quantile_over_time(0.5, increase(http_requests_total[3m])[7m30s:1m])"),
        q("min_over_time(max(temperature_celsius)[5m20s:45s])"),
        q("1 + 1"),
        (
            "sort_desc(sum by (job, instance) (rate(http_requests_total[5m])))".to_owned(),
            true,
        ),
        (
            "sort(avg by (instance) (temperature_celsius))".to_owned(),
            true,
        ),
    ]
}

#[test]
fn answers_match_prometheus() {
    let Some(bin) = binary("prometheus") else {
        eprintln!("SKIPPED: prometheus not installed");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let now = chrono_now_ms();
    let start = (now / 60_000) * 60_000 - 45 * 60_000;
    let data = dataset(start);
    let strata = Server::start(&dir.path().join("data"), &[]);
    let prom = start_prometheus(&bin, dir.path());
    for body in bodies(&data) {
        assert_eq!(strata.write(None, &body).0, 204);
        let status = post_write(&format!("{}/api/v1/write", prom.base), &body);
        assert!(status == 204 || status == 200, "prometheus write: {status}");
    }
    // Half the samples in Parquet files, half in the head.
    let strata_base = strata.url("");
    let strata_base = strata_base.trim_end_matches('/');
    // Every window (the longest: 10m30s behind a 5m offset) starts after
    // the first sample: where a series starts inside a window, 2.x and 3.x
    // extrapolate `rate` differently.
    let times: Vec<i64> = [17, 20, 30, 41]
        .iter()
        .map(|m| start + m * 60_000)
        .collect();
    let mut failures = Vec::new();
    let mut compared = 0;
    let check = |flushed: bool, failures: &mut Vec<String>, compared: &mut usize| {
        for (query, ordered) in queries(times[1]) {
            for &t in &times {
                let params = [("query", query.clone()), ("time", (t / 1000).to_string())];
                let a = api(strata_base, "/api/v1/query", &params);
                let b = api(&prom.base, "/api/v1/query", &params);
                *compared += 1;
                if a["status"] != "success"
                    || !same(&normalize(&a, ordered), &normalize(&b, ordered))
                {
                    failures.push(format!(
                        "instant {query} @{t} (flushed {flushed})\n  strata: {a}\n  prometheus: {b}"
                    ));
                }
            }
            let params = [
                ("query", query.clone()),
                ("start", ((start + 16 * 60_000) / 1000).to_string()),
                ("end", ((start + 44 * 60_000) / 1000).to_string()),
                ("step", "60".to_owned()),
            ];
            let a = api(strata_base, "/api/v1/query_range", &params);
            let b = api(&prom.base, "/api/v1/query_range", &params);
            *compared += 1;
            if a["status"] != "success" || !same(&normalize(&a, false), &normalize(&b, false)) {
                failures.push(format!(
                    "range {query} (flushed {flushed})\n  strata: {a}\n  prometheus: {b}"
                ));
            }
        }
    };
    check(false, &mut failures, &mut compared);
    assert_eq!(strata.post("/api/v1/admin/flush").map(|r| r.0), Some(200));
    check(true, &mut failures, &mut compared);
    assert!(
        failures.is_empty(),
        "{} of {compared} answers differ from Prometheus:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn chrono_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[test]
fn promtool_queries_strata() {
    let Some(promtool) = binary("promtool") else {
        eprintln!("SKIPPED: promtool not installed");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let strata = Server::start(&dir.path().join("data"), &[]);
    let now = chrono_now_ms();
    let start = (now / 60_000) * 60_000 - 45 * 60_000;
    for body in bodies(&dataset(start)) {
        assert_eq!(strata.write(None, &body).0, 204);
    }
    let server = strata.url("");
    let server = server.trim_end_matches('/').to_owned();
    let run = |args: &[&str]| -> String {
        let out = Command::new(&promtool)
            .arg("query")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let t = ((start + 30 * 60_000) / 1000).to_string();
    let instant = run(&[
        "instant",
        "--time",
        &t,
        &server,
        "sum by (job) (rate(http_requests_total[5m]))",
    ]);
    assert!(
        instant.contains("{job=\"api\"} =>") && instant.contains("{job=\"worker\"} =>"),
        "{instant}"
    );
    let (s, e) = (
        ((start + 10 * 60_000) / 1000).to_string(),
        ((start + 20 * 60_000) / 1000).to_string(),
    );
    let range = run(&[
        "range",
        "--start",
        &s,
        "--end",
        &e,
        "--step",
        "1m",
        &server,
        "max(temperature_celsius)",
    ]);
    assert_eq!(range.matches(" @[").count(), 11, "{range}");
    let series = run(&[
        "series",
        "--match",
        "temperature_celsius{job=\"api\"}",
        &server,
    ]);
    assert_eq!(
        series
            .lines()
            .filter(|l| l.contains("temperature_celsius"))
            .count(),
        3,
        "{series}"
    );
    let labels = run(&["labels", &server, "instance"]);
    assert_eq!(
        labels.split_whitespace().collect::<Vec<_>>(),
        ["a", "b", "c"],
        "{labels}"
    );
}
