//! Seeded Prometheus remote-write load generator.
//!
//! Builds a realistic Kubernetes/ERP series population (tenants × services ×
//! pods × metric families: HTTP counters per business route, latency
//! histograms, process gauges, Odoo queue depths, PostgreSQL connections),
//! pre-encodes every request (snappy + protobuf, remote write 1.0) so the
//! sender's own CPU is not in the measurement, then sends them round by round
//! (one sample per series per round, 15 s apart) with N concurrent
//! connections. Rounds are sequential so per-series samples stay in order,
//! which Prometheus requires.
//!
//! The same payloads go to any remote-write receiver: Strata
//! (`/api/v1/write`), Prometheus (`--web.enable-remote-write-receiver`,
//! `/api/v1/write`), VictoriaMetrics (`/api/v1/write`). With `--pid` it reads
//! the receiver's CPU time and peak RSS from `/proc` and reports samples per
//! CPU-second and bytes per active series.
//!
//! ```sh
//! cargo run --release -p strata-benches --bin strata-loadgen -- \
//!     --url http://127.0.0.1:9470/api/v1/write --series 100000 --rounds 10 \
//!     --concurrency 4 --pid $(pgrep -f 'strata serve')
//! ```
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use rand::SeedableRng;
use rand::rngs::StdRng;
use strata_benches::workload::{Series, population};
use strata_ingest::remote_write::proto::{self, encode_snappy};

#[derive(Debug, Parser)]
#[command(about = "Seeded remote-write load generator")]
struct Args {
    /// Remote-write URL of the receiver.
    #[arg(long, default_value = "http://127.0.0.1:9470/api/v1/write")]
    url: String,
    /// Active series to generate.
    #[arg(long, default_value_t = 100_000)]
    series: usize,
    /// Tenants the series are spread over (sent as X-Scope-OrgID).
    #[arg(long, default_value_t = 4)]
    tenants: usize,
    /// Number of the first tenant (`tenant-<first>` …), so a second
    /// generator can write beside a first one's tenants.
    #[arg(long, default_value_t = 0)]
    first_tenant: usize,
    /// Samples per series (rounds are 15 s apart in sample time).
    #[arg(long, default_value_t = 10)]
    rounds: usize,
    /// Series per request (Prometheus sends up to 2000 samples per request).
    #[arg(long, default_value_t = 2000)]
    batch: usize,
    /// Concurrent connections.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Seed for label values and sample values.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// PID of the receiver, to report its CPU time and peak RSS.
    #[arg(long)]
    pid: Option<u32>,
    /// Timestamp (ms) of the first round; default: `rounds` × the
    /// interval ago.
    #[arg(long)]
    start_ms: Option<i64>,
    /// Sample time between rounds, in ms.
    #[arg(long, default_value_t = 15_000)]
    interval_ms: i64,
    /// Retry a refused request (429, 5xx) as Prometheus does: after its
    /// Retry-After (or 1 s), until it is taken. Without it a refused
    /// request counts as failed.
    #[arg(long)]
    retry: bool,
    /// Name printed in the result line.
    #[arg(long, default_value = "receiver")]
    name: String,
    /// Samples per second to send at most (0: as fast as the receiver
    /// takes them). Paced round by round.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Prints the samples sent every this many seconds (0: never).
    #[arg(long, default_value_t = 0)]
    progress_s: u64,
    /// Remote-write protocol version: 1 (prometheus.WriteRequest) or 2
    /// (io.prometheus.write.v2.Request).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=2))]
    protocol: u8,
}

impl Args {
    fn content_type(&self) -> &'static str {
        if self.protocol == 2 {
            "application/x-protobuf;proto=io.prometheus.write.v2.Request"
        } else {
            "application/x-protobuf"
        }
    }

    fn version_header(&self) -> &'static str {
        if self.protocol == 2 { "2.0.0" } else { "0.1.0" }
    }
}

struct Request {
    tenant: String,
    body: Vec<u8>,
    samples: u64,
}

fn encode_round(series: &mut [Series], args: &Args, ts: i64, rng: &mut StdRng) -> Vec<Request> {
    let mut out = Vec::new();
    for tenant in 0..args.tenants.max(1) {
        let mut batch = Vec::with_capacity(args.batch);
        let mut flush = |batch: &mut Vec<proto::TimeSeries>| {
            if batch.is_empty() {
                return;
            }
            let req = proto::WriteRequest {
                timeseries: std::mem::take(batch),
                metadata: vec![],
            };
            let body = if args.protocol == 2 {
                proto::v2::encode_snappy(&proto::v2::Request::from(&req))
            } else {
                encode_snappy(&req)
            };
            out.push(Request {
                tenant: format!("tenant-{}", args.first_tenant + tenant),
                samples: req.timeseries.len() as u64,
                body,
            });
        };
        for s in series.iter_mut().filter(|s| s.tenant == tenant) {
            s.step(rng);
            batch.push(proto::TimeSeries {
                labels: s
                    .labels
                    .iter()
                    .map(|(n, v)| proto::Label {
                        name: (*n).into(),
                        value: v.clone(),
                    })
                    .collect(),
                samples: vec![proto::Sample {
                    value: s.value,
                    timestamp: ts,
                }],
                ..Default::default()
            });
            if batch.len() == args.batch {
                flush(&mut batch);
            }
        }
        flush(&mut batch);
    }
    out
}

/// (utime + stime in seconds, VmHWM bytes, VmRSS bytes) of `pid`.
fn proc_usage(pid: u32) -> Option<(f64, u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb = |key: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(key))?;
        line.split_whitespace()
            .nth(1)?
            .parse::<u64>()
            .ok()
            .map(|k| k * 1024)
    };
    // Linux reports CPU times in USER_HZ, 100 on every mainstream build.
    Some((ticks / 100.0, kb("VmHWM:")?, kb("VmRSS:")?))
}

fn main() {
    let args = Args::parse();
    let mut rng = StdRng::seed_from_u64(args.seed);
    let started = Instant::now();
    let mut series = population(args.series, args.tenants, &mut rng);
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let t0 = args
        .start_ms
        .unwrap_or(now_ms - (args.rounds as i64) * args.interval_ms);
    let rounds: Vec<Vec<Request>> = (0..args.rounds)
        .map(|r| {
            encode_round(
                &mut series,
                &args,
                t0 + r as i64 * args.interval_ms,
                &mut rng,
            )
        })
        .collect();
    let bytes: usize = rounds.iter().flatten().map(|r| r.body.len()).sum();
    let requests: usize = rounds.iter().map(Vec::len).sum();
    eprintln!(
        "prepared {} series x {} rounds = {} requests, {:.1} MB compressed, in {:.1}s",
        series.len(),
        args.rounds,
        requests,
        bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );

    let before = args.pid.and_then(proc_usage);
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let retried = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut sent = 0u64;
    let mut last_report = Instant::now();
    for round in rounds {
        if args.rate > 0 {
            let due = Duration::from_secs_f64(sent as f64 / args.rate as f64);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        sent += round.iter().map(|r| r.samples).sum::<u64>();
        if args.progress_s > 0 && last_report.elapsed().as_secs() >= args.progress_s {
            last_report = Instant::now();
            let elapsed = started.elapsed().as_secs_f64();
            let ok = ok.load(Ordering::Relaxed);
            eprintln!(
                "{:.0}s: {} samples ok, {:.0}/s, {} failed, {} requests retried",
                elapsed,
                ok,
                ok as f64 / elapsed,
                failed.load(Ordering::Relaxed),
                retried.load(Ordering::Relaxed)
            );
        }
        let round = Arc::new(round);
        let next = Arc::new(AtomicUsize::new(0));
        let workers: Vec<_> = (0..args.concurrency.max(1))
            .map(|_| {
                let (round, next, ok, failed, retried, url, retry) = (
                    Arc::clone(&round),
                    Arc::clone(&next),
                    Arc::clone(&ok),
                    Arc::clone(&failed),
                    Arc::clone(&retried),
                    args.url.clone(),
                    args.retry,
                );
                let (content_type, version) = (args.content_type(), args.version_header());
                std::thread::spawn(move || {
                    let agent = ureq::Agent::new_with_config(
                        ureq::Agent::config_builder()
                            .http_status_as_error(false)
                            .timeout_global(Some(Duration::from_secs(120)))
                            .build(),
                    );
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(req) = round.get(i) else { return };
                        let mut resp;
                        loop {
                            resp = agent
                                .post(&url)
                                .header("Content-Type", content_type)
                                .header("Content-Encoding", "snappy")
                                .header("X-Prometheus-Remote-Write-Version", version)
                                .header("X-Scope-OrgID", &req.tenant)
                                .send(&req.body[..]);
                            let refused = match &resp {
                                Ok(r) => r.status() == 429 || r.status().is_server_error(),
                                Err(_) => true,
                            };
                            if !(retry && refused) {
                                break;
                            }
                            let after = resp
                                .as_ref()
                                .ok()
                                .and_then(|r| r.headers().get("retry-after"))
                                .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
                                .unwrap_or(1)
                                .min(30);
                            retried.fetch_add(1, Ordering::Relaxed);
                            std::thread::sleep(Duration::from_secs(after));
                        }
                        match resp {
                            Ok(r) if r.status().is_success() => {
                                ok.fetch_add(req.samples, Ordering::Relaxed);
                            }
                            Ok(mut r) => {
                                if failed.fetch_add(req.samples, Ordering::Relaxed) == 0 {
                                    eprintln!(
                                        "error {}: {}",
                                        r.status(),
                                        r.body_mut().read_to_string().unwrap_or_default()
                                    );
                                }
                            }
                            Err(e) => {
                                if failed.fetch_add(req.samples, Ordering::Relaxed) == 0 {
                                    eprintln!("error: {e}");
                                }
                            }
                        }
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let ok = ok.load(Ordering::Relaxed);
    let failed = failed.load(Ordering::Relaxed);
    let mut line = format!(
        "{}: series={} samples_ok={} samples_failed={} requests_retried={} wall_s={:.2} samples_per_s={:.0}",
        args.name,
        series.len(),
        ok,
        failed,
        retried.load(Ordering::Relaxed),
        elapsed,
        ok as f64 / elapsed
    );
    if let (Some(pid), Some((cpu0, _, _))) = (args.pid, before) {
        // Give the receiver a moment to finish background work it started.
        std::thread::sleep(Duration::from_millis(500));
        if let Some((cpu1, hwm, rss)) = proc_usage(pid) {
            let cpu = cpu1 - cpu0;
            line.push_str(&format!(
                " cpu_s={:.2} samples_per_cpu_s={:.0} peak_rss_mb={:.1} rss_mb={:.1} rss_bytes_per_series={:.0}",
                cpu,
                ok as f64 / cpu.max(0.001),
                hwm as f64 / 1e6,
                rss as f64 / 1e6,
                rss as f64 / series.len() as f64
            ));
        }
    }
    println!("{line}");
}
