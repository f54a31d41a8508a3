//! Seeded log load generator: Loki push (snappy protobuf) of realistic
//! ERP-platform logs — Odoo server lines, Traefik access logs, PostgreSQL
//! and Redis lines, JSON application events — spread over many streams.
//!
//! Every request is encoded before the clock starts, so the sender's CPU
//! is not in the measurement; with `--pid` it reads the receiver's CPU
//! time and peak RSS from `/proc`. `--needle` puts one line holding that
//! text at a random place, for needle-in-a-haystack searches.
//!
//! ```sh
//! cargo run --release -p strata-benches --bin strata-loggen -- \
//!     --url http://127.0.0.1:9470/loki/api/v1/push --bytes 1GiB --pid $(pgrep -f 'strata serve')
//! ```
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use strata_ingest::logs::loki::{encode_proto, proto};

#[derive(Debug, Parser)]
#[command(about = "Seeded Loki-push log load generator")]
struct Args {
    /// Loki push URL of the receiver.
    #[arg(long, default_value = "http://127.0.0.1:9470/loki/api/v1/push")]
    url: String,
    /// Raw line bytes to send, e.g. 1GiB or 200MB.
    #[arg(long, default_value = "256MiB", value_parser = parse_size)]
    bytes: u64,
    /// Streams (label sets) the lines are spread over.
    #[arg(long, default_value_t = 240)]
    streams: usize,
    /// Lines per request.
    #[arg(long, default_value_t = 2000)]
    batch: usize,
    /// Concurrent connections.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Tenant (X-Scope-OrgID).
    #[arg(long, default_value = "logs")]
    tenant: String,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// PID of the receiver, to report its CPU time and peak RSS.
    #[arg(long)]
    pid: Option<u32>,
    /// Text of one line placed at a random point.
    #[arg(long)]
    needle: Option<String>,
    /// Time span (seconds) the lines' timestamps cover, ending now.
    #[arg(long, default_value_t = 3600)]
    span_s: u64,
    /// End the span at this Unix time (seconds) instead of now: e.g. a
    /// closed day, for what compaction makes of it.
    #[arg(long)]
    end_s: Option<i64>,
}

fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len());
    let n: f64 = s[..split]
        .parse()
        .map_err(|_| format!("{s:?} is not a size like 1GiB"))?;
    let mult = match s[split..].to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        other => return Err(format!("unknown size unit {other:?}")),
    };
    Ok((n * mult) as u64)
}

const SERVICES: &[(&str, &str)] = &[
    ("odoo", "erp"),
    ("odoo-worker", "erp"),
    ("traefik", "ingress"),
    ("postgresql", "db"),
    ("redis", "cache"),
    ("wms-api", "logistics"),
];
const MODELS: &[&str] = &[
    "stock.picking",
    "stock.move",
    "sale.order",
    "account.move",
    "purchase.order",
    "stock.quant",
];
const ROUTES: &[&str] = &[
    "/web/dataset/call_kw/stock.picking/button_validate",
    "/web/dataset/search_read",
    "/api/v1/shipments",
    "/api/v1/receipts",
    "/longpolling/poll",
    "/web/action/load",
];
const PROCESSES: &[&str] = &["receiving", "picking", "packing", "dispatch", "invoicing"];

fn line(rng: &mut StdRng, service: usize, ts_ns: i64) -> String {
    let secs = ts_ns / 1_000_000_000;
    let ms = (ts_ns / 1_000_000) % 1000;
    let when = chrono::DateTime::from_timestamp(secs, 0)
        .unwrap_or_default()
        .format("%Y-%m-%d %H:%M:%S");
    let id = rng.random_range(1..200_000);
    let user = rng.random_range(1..400);
    match SERVICES[service].0 {
        "odoo" | "odoo-worker" => {
            let level =
                ["INFO", "INFO", "INFO", "WARNING", "ERROR", "DEBUG"][rng.random_range(0..6)];
            let model = MODELS[rng.random_range(0..MODELS.len())];
            format!(
                "{when},{ms:03} {} {level} erp odoo.models.{model}: {model} {id} write by uid {user} took {:.3}s",
                rng.random_range(1000..9000),
                rng.random_range(0.001..2.5)
            )
        }
        "traefik" => {
            let status = [200, 200, 200, 201, 204, 302, 404, 500, 502][rng.random_range(0..9)];
            format!(
                "10.{}.{}.{} - - [{when}] \"POST {} HTTP/1.1\" {status} {} \"-\" \"Mozilla/5.0\" {} \"odoo@kubernetes\" \"http://10.42.0.{}:8069\" {}ms",
                rng.random_range(0..255),
                rng.random_range(0..255),
                rng.random_range(0..255),
                ROUTES[rng.random_range(0..ROUTES.len())],
                rng.random_range(100..90_000),
                id,
                rng.random_range(2..250),
                rng.random_range(1..3000)
            )
        }
        "postgresql" => format!(
            "{when}.{ms:03} UTC [{}] odoo@erp LOG:  duration: {:.3} ms  statement: SELECT id FROM stock_move WHERE picking_id = {id}",
            rng.random_range(100..60_000),
            rng.random_range(0.05..900.0)
        ),
        "redis" => format!(
            "1:M {when}.{ms:03} * {} changes in 60 seconds. Saving... key=session:{id:x}",
            rng.random_range(1..10_000)
        ),
        _ => format!(
            "{{\"ts\":\"{when}.{ms:03}Z\",\"level\":\"{}\",\"process\":\"{}\",\"order\":\"WH/OUT/{id:05}\",\"user\":{user},\"latency_ms\":{},\"msg\":\"shipment label printed\"}}",
            ["info", "warn", "error"][rng.random_range(0..3)],
            PROCESSES[rng.random_range(0..PROCESSES.len())],
            rng.random_range(1..5000)
        ),
    }
}

fn proc_usage(pid: u32) -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse::<u64>()
        .ok()?
        * 1024;
    Some((ticks / 100.0, hwm))
}

fn main() {
    let args = Args::parse();
    let target = args.bytes;
    let mut rng = StdRng::seed_from_u64(args.seed);
    let streams: Vec<(String, usize)> = (0..args.streams.max(1))
        .map(|i| {
            let service = i % SERVICES.len();
            let (job, ns) = SERVICES[service];
            (
                format!(
                    "{{job=\"{job}\", namespace=\"{ns}\", pod=\"{job}-{:x}-{}\", cluster=\"eu-west\"}}",
                    0x5f3a + i / SERVICES.len(),
                    i
                ),
                service,
            )
        })
        .collect();
    // Estimate lines from a sample of generated lines.
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    let now = args.end_s.map_or(wall, |s| s * 1_000_000_000);
    let avg: f64 = (0..2000)
        .map(|i| line(&mut rng, i % SERVICES.len(), now).len() as f64)
        .sum::<f64>()
        / 2000.0;
    let total_lines = ((target as f64 / avg) as u64).max(1);
    let start = now - (args.span_s as i64) * 1_000_000_000;
    let step = ((args.span_s as i64 * 1_000_000_000) / total_lines as i64).max(1);
    let needle_at = args
        .needle
        .as_ref()
        .map(|_| rng.random_range(0..total_lines));
    let encode_started = Instant::now();
    let mut requests: Vec<Vec<u8>> = Vec::new();
    let mut raw_bytes = 0u64;
    let mut n = 0u64;
    let per_stream = (args.batch / 100).max(1);
    while n < total_lines {
        // One request: `batch` lines over a rotating window of streams.
        let mut by_stream: Vec<proto::StreamAdapter> = Vec::new();
        let lines_here = (args.batch as u64).min(total_lines - n);
        let mut made = 0u64;
        let mut s = (n as usize / per_stream) % streams.len();
        while made < lines_here {
            let (labels, service) = &streams[s];
            let mut entries = Vec::with_capacity(per_stream);
            for _ in 0..per_stream.min((lines_here - made) as usize) {
                let ts = start + (n + made) as i64 * step;
                let text = if needle_at == Some(n + made) {
                    format!(
                        "{} {}",
                        line(&mut rng, *service, ts),
                        args.needle.as_deref().unwrap_or("")
                    )
                } else {
                    line(&mut rng, *service, ts)
                };
                raw_bytes += text.len() as u64;
                entries.push(proto::EntryAdapter {
                    timestamp: Some(proto::Timestamp {
                        seconds: ts.div_euclid(1_000_000_000),
                        nanos: ts.rem_euclid(1_000_000_000) as i32,
                    }),
                    line: text,
                    structured_metadata: Vec::new(),
                });
                made += 1;
            }
            by_stream.push(proto::StreamAdapter {
                labels: labels.clone(),
                entries,
                hash: 0,
            });
            s = (s + 1) % streams.len();
        }
        n += made;
        requests.push(encode_proto(&proto::PushRequest { streams: by_stream }));
    }
    let wire: usize = requests.iter().map(Vec::len).sum();
    eprintln!(
        "prepared {n} lines, {:.1} MB raw, {:.1} MB on the wire, {} requests, in {:.1}s",
        raw_bytes as f64 / 1e6,
        wire as f64 / 1e6,
        requests.len(),
        encode_started.elapsed().as_secs_f64()
    );
    let requests = Arc::new(requests);
    let next = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let before = args.pid.and_then(proc_usage);
    let started = Instant::now();
    let workers: Vec<_> = (0..args.concurrency.max(1))
        .map(|_| {
            let (requests, next, failed) = (
                Arc::clone(&requests),
                Arc::clone(&next),
                Arc::clone(&failed),
            );
            let (url, tenant) = (args.url.clone(), args.tenant.clone());
            std::thread::spawn(move || {
                let agent = ureq::Agent::new_with_config(
                    ureq::Agent::config_builder()
                        .http_status_as_error(false)
                        .timeout_global(Some(Duration::from_secs(120)))
                        .build(),
                );
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(body) = requests.get(i) else { break };
                    let status = agent
                        .post(&url)
                        .header("Content-Type", "application/x-protobuf")
                        .header("X-Scope-OrgID", &tenant)
                        .send(body.as_slice())
                        .map(|r| r.status().as_u16())
                        .unwrap_or(0);
                    if status != 204 {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let wall = started.elapsed().as_secs_f64();
    let after = args.pid.and_then(proc_usage);
    let mb = raw_bytes as f64 / 1e6;
    let mut out = format!(
        "loggen: lines={n} raw_mb={mb:.1} wire_mb={:.1} failed_requests={} wall_s={wall:.2} lines_per_s={:.0} mb_per_s={:.1}",
        wire as f64 / 1e6,
        failed.load(Ordering::Relaxed),
        n as f64 / wall,
        mb / wall
    );
    if let (Some((cpu0, _)), Some((cpu1, hwm))) = (before, after) {
        let cpu = cpu1 - cpu0;
        out.push_str(&format!(
            " cpu_s={cpu:.2} lines_per_cpu_s={:.0} mb_per_cpu_s={:.1} peak_rss_mb={:.0}",
            n as f64 / cpu,
            mb / cpu,
            hwm as f64 / 1e6
        ));
    }
    println!("{out}");
}
