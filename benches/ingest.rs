//! Criterion benches for the ingest path, one stage at a time.
//!
//! ```sh
//! cargo bench -p strata-benches --bench ingest
//! ```
//!
//! Every bench works on one realistic request: 2000 series of ~10 labels
//! (Kubernetes pod labels plus route/method/code), one sample each — what a
//! Prometheus remote-write shard sends. Throughput is reported in samples, so
//! `thrpt` reads directly as samples per second for that stage on one core:
//! * `decode`: snappy + protobuf + label validation (`decode_v1`);
//! * `decode_v2`: the same request as remote write 2.0 (symbol table);
//! * `wal_encode`: encoding the WAL record once the segment knows the series;
//! * `wal_append_fsync/1` and `/8`: append with fsync, one request at a time
//!   and 8 in flight (group commit shares fsyncs), on this machine's disk;
//! * `head_insert`: applying the batch to a warm head (series exist);
//! * `head_read/1h` and `head_read/last_5m`: PromQL's read of those 2000
//!   series after an hour of 15 s counter samples in the head
//!   (`TenantHead::query_points`), the whole hour and an instant query's
//!   last five minutes; throughput in samples held.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use strata_head::Head;
use strata_ingest::remote_write::proto::{self, encode_snappy};
use strata_ingest::{DecodeLimits, Proto, decode_v1};
use strata_types::{TenantId, WriteBatch};
use strata_wal::{SegmentEncoder, SegmentedWal, Wal, WalConfig};

const SERIES: usize = 2000;

/// The request at `ts`; `k`: samples written before it (counters grow by
/// a per-series step, so values differ sample to sample as real ones do).
fn request(ts: i64, k: i64) -> proto::WriteRequest {
    let routes = [
        "/api/receiving",
        "/api/picking",
        "/api/dispatch",
        "/api/invoicing",
    ];
    let timeseries = (0..SERIES)
        .map(|i| {
            let mut labels = vec![
                ("__name__", "http_requests_total".to_owned()),
                ("cluster", "eu-west-1".to_owned()),
                ("code", ["200", "404", "500"][i % 3].to_owned()),
                ("instance", format!("10.0.{}.{}:8080", i / 250, i % 250)),
                ("job", "kubernetes-pods".to_owned()),
                ("method", ["GET", "POST"][i % 2].to_owned()),
                ("namespace", "odoo".to_owned()),
                ("pod", format!("odoo-web-7c9f8d-{i:05x}")),
                ("route", routes[i % 4].to_owned()),
                ("service", "odoo-web".to_owned()),
            ];
            labels.sort();
            let pairs: Vec<(&str, &str)> = labels.iter().map(|(n, v)| (*n, v.as_str())).collect();
            let value = i as f64 + (k * (i as i64 % 13 + 1)) as f64;
            proto::TimeSeries::from_pairs(&pairs, &[(ts, value)])
        })
        .collect();
    proto::WriteRequest {
        timeseries,
        metadata: vec![],
    }
}

fn batch(ts: i64) -> WriteBatch {
    batch_at(ts, 0)
}

fn batch_at(ts: i64, k: i64) -> WriteBatch {
    decode_v1(
        TenantId::try_new("bench").unwrap(),
        &encode_snappy(&request(ts, k)),
        DecodeLimits::default(),
    )
    .unwrap()
    .batch
}

fn benches(c: &mut Criterion) {
    let body = encode_snappy(&request(1_700_000_000_000, 0));
    let tenant = TenantId::try_new("bench").unwrap();
    let mut g = c.benchmark_group("ingest");
    g.throughput(Throughput::Elements(SERIES as u64));

    g.bench_function("decode", |b| {
        b.iter(|| decode_v1(tenant.clone(), &body, DecodeLimits::default()).unwrap())
    });
    let body_v2 =
        proto::v2::encode_snappy(&proto::v2::Request::from(&request(1_700_000_000_000, 0)));
    g.bench_function("decode_v2", |b| {
        b.iter(|| {
            strata_ingest::remote_write::decode(
                Proto::V2,
                tenant.clone(),
                &body_v2,
                DecodeLimits::default(),
            )
            .unwrap()
        })
    });

    let b0 = batch(1_700_000_000_000);
    // Steady state: the segment has defined these series already.
    let mut encoder = SegmentEncoder::default();
    let mut out = Vec::new();
    encoder.encode_samples(&b0, &mut out);
    g.bench_function("wal_encode", |b| {
        b.iter(|| {
            out.clear();
            encoder.encode_samples(&b0, &mut out);
        })
    });

    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = SegmentedWal::open(WalConfig::new(dir.path()), |_, _| {}).unwrap();
    let wal = Arc::new(wal);
    let record = Arc::new(b0.clone());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    g.bench_function("wal_append_fsync/1", |b| {
        b.iter(|| rt.block_on(wal.append(record.clone())).unwrap())
    });
    g.throughput(Throughput::Elements(8 * SERIES as u64));
    g.bench_function("wal_append_fsync/8", |b| {
        b.iter(|| {
            rt.block_on(async {
                let futs: Vec<_> = (0..8).map(|_| wal.append(record.clone())).collect();
                for f in futs {
                    f.await.unwrap();
                }
            })
        })
    });
    g.throughput(Throughput::Elements(SERIES as u64));

    let head = Head::new();
    head.append(&b0).unwrap();
    let mut ts = 1_700_000_000_000;
    g.bench_function("head_insert", |b| {
        b.iter_batched(
            || {
                ts += 15_000;
                batch(ts)
            },
            |next| head.append(&next).unwrap(),
            BatchSize::LargeInput,
        )
    });
    g.finish();

    let mut g = c.benchmark_group("head_read");
    let t0 = 1_700_000_000_000i64;
    let head = Head::new();
    for k in 0..240 {
        head.append(&batch_at(t0 + k * 15_000, k)).unwrap();
    }
    let tenant = head.tenant(&TenantId::try_new("bench").unwrap()).unwrap();
    let end = t0 + 239 * 15_000;
    g.throughput(Throughput::Elements(SERIES as u64 * 240));
    g.bench_function("1h", |b| b.iter(|| tenant.query_points(&[], t0, end)));
    g.bench_function("last_5m", |b| {
        b.iter(|| tenant.query_points(&[], end - 300_000, end))
    });
    g.finish();
}

criterion_group!(ingest, benches);
criterion_main!(ingest);
