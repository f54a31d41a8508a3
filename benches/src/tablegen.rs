//! Builds a tenant table of several closed days through Strata's own
//! storage path (head → flush → compaction) and reports flush and
//! compaction throughput and bytes per sample at rest. The table it leaves
//! is what the long-range SQL comparison with DuckDB reads.
//!
//! ```sh
//! cargo run --release -p strata-benches --bin strata-tablegen -- \
//!     --data-dir /tmp/t --series 2000 --days 7
//! ```
//!
//! Samples are the load generator's workload (same population, same value
//! model), one every 15 s, flushed every `--flush-minutes` of sample time.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use rand::SeedableRng;
use rand::rngs::StdRng;
use strata_benches::workload::population;
use strata_head::Head;
use strata_storage::{CompactReport, ObjectStoreConfig, ObjectStoreHandle, Storage};
use strata_types::{SeriesSamples, TenantId, WriteBatch};
use strata_wal::MemoryWal;

#[derive(Debug, Parser)]
#[command(about = "Builds a multi-day Strata table and measures flush and compaction")]
struct Args {
    /// Data directory (the table goes to <dir>/objects/tenants/bench/metrics).
    #[arg(long, required_unless_present = "reencode")]
    data_dir: Option<std::path::PathBuf>,
    /// Only re-encode this data file with the alternative encodings.
    #[arg(long)]
    reencode: Option<std::path::PathBuf>,
    #[arg(long, default_value_t = 2000)]
    series: usize,
    /// Closed UTC days of data, ending yesterday.
    #[arg(long, default_value_t = 7)]
    days: i64,
    /// Sample time covered by one flush.
    #[arg(long, default_value_t = 60)]
    flush_minutes: i64,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Compact as the server does while a day is open: each hour's flush
    /// files into an hour file once the hour ended, then the closed days
    /// into day files. Without it the flush files go straight into day
    /// files.
    #[arg(long)]
    hourly: bool,
    /// Merges at once (the server's `storage.compaction_workers`).
    #[arg(long, default_value_t = 1)]
    workers: usize,
}

const STEP_MS: i64 = 15_000;
const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if let Some(path) = &args.reencode {
        encodings(path);
        return;
    }
    let data_dir = args.data_dir.clone().unwrap_or_default();
    let tenant = TenantId::try_new("bench").unwrap();
    let store = ObjectStoreHandle::open(&ObjectStoreConfig::default(), &data_dir).unwrap();
    let storage = Storage::open(store, Arc::new(Head::new())).await.unwrap();
    storage.set_compaction(args.workers, None);
    let wal = MemoryWal::new();
    let mut rng = StdRng::seed_from_u64(args.seed);
    let mut series = population(args.series, 1, &mut rng);
    let now = chrono::Utc::now().timestamp_millis();
    let start = (now.div_euclid(DAY_MS) - args.days) * DAY_MS;
    let end = now.div_euclid(DAY_MS) * DAY_MS;
    let per_flush = args.flush_minutes * 60_000 / STEP_MS;

    let (mut samples, mut flush_time, mut write_time) = (0u64, Duration::ZERO, Duration::ZERO);
    let (mut flushed_bytes, mut flush_files) = (0u64, 0usize);
    let mut t = start;
    let (mut hour_time, mut hour) = (Duration::ZERO, CompactReport::default());
    let (mut day_time, mut day) = (Duration::ZERO, CompactReport::default());
    while t < end {
        let started = Instant::now();
        // One batch per flush window: every series with its samples.
        let steps: Vec<i64> = (0..per_flush)
            .map(|i| t + i * STEP_MS)
            .filter(|ts| *ts < end)
            .collect();
        let mut values: Vec<Vec<(i64, f64)>> = vec![Vec::with_capacity(steps.len()); series.len()];
        for &ts in &steps {
            for (s, v) in series.iter_mut().zip(values.iter_mut()) {
                s.step(&mut rng);
                v.push((ts, s.value));
            }
        }
        let batch: Vec<SeriesSamples> = series
            .iter()
            .zip(&values)
            .map(|(s, v)| {
                let labels: Vec<(&str, &str)> =
                    s.labels.iter().map(|(n, v)| (*n, v.as_str())).collect();
                SeriesSamples::try_from_pairs(&labels, v).unwrap()
            })
            .collect();
        samples += (steps.len() * series.len()) as u64;
        storage
            .write(
                &wal,
                Arc::new(WriteBatch::from_series(tenant.clone(), batch)),
            )
            .await
            .unwrap();
        write_time += started.elapsed();
        let started = Instant::now();
        let report = storage.flush(&wal).await.unwrap();
        flush_time += started.elapsed();
        flushed_bytes += report.bytes;
        flush_files += report.files;
        t += per_flush * STEP_MS;
        if args.hourly && t % HOUR_MS == 0 {
            // An hour just ended: the server's compactor merges its flush
            // files once it is past (the delay is zero here); at midnight
            // the day closes and its files become the day file.
            let started = Instant::now();
            let r = storage.compact(t, Duration::ZERO).await.unwrap();
            let (sum, time) = if t % DAY_MS == 0 {
                (&mut day, &mut day_time)
            } else {
                (&mut hour, &mut hour_time)
            };
            *time += started.elapsed();
            sum.jobs += r.jobs;
            sum.files_in += r.files_in;
            sum.rows_in += r.rows_in;
            sum.rows_out += r.rows_out;
        }
    }
    // Closed days not merged yet (all of them without --hourly).
    let started = Instant::now();
    let rest = storage
        .compact(now, Duration::from_secs(600))
        .await
        .unwrap();
    day_time += started.elapsed();
    day.jobs += rest.jobs;
    day.files_in += rest.files_in;
    day.rows_in += rest.rows_in;
    day.rows_out += rest.rows_out;
    let view = storage.view(&tenant);
    let at_rest: u64 = view.files.iter().map(|f| f.size).sum();
    let log_bytes = dir_bytes(&data_dir.join("objects/tenants/bench/metrics/_delta_log"));
    println!(
        "{} series x {} days = {} samples ({} s apart)",
        series.len(),
        args.days,
        samples,
        STEP_MS / 1000
    );
    println!(
        "flush: {} files, {:.2} bytes/sample, {:.0} samples/s ({:.1}s; head writes {:.1}s)",
        flush_files,
        flushed_bytes as f64 / samples as f64,
        samples as f64 / flush_time.as_secs_f64(),
        flush_time.as_secs_f64(),
        write_time.as_secs_f64()
    );
    if args.hourly {
        println!(
            "hour compaction: {} merges of {} files, {} rows, {:.0} rows/s ({:.1}s)",
            hour.jobs,
            hour.files_in,
            hour.rows_in,
            hour.rows_in as f64 / hour_time.as_secs_f64(),
            hour_time.as_secs_f64()
        );
    }
    println!(
        "day compaction: {} merges of {} files, {} -> {} rows, {:.0} rows/s ({:.1}s)",
        day.jobs,
        day.files_in,
        day.rows_in,
        day.rows_out,
        day.rows_in as f64 / day_time.as_secs_f64(),
        day_time.as_secs_f64()
    );
    println!(
        "at rest: {} files, {} bytes = {:.3} bytes/sample (+ {} bytes of Delta log)",
        view.files.len(),
        at_rest,
        at_rest as f64 / samples as f64,
        log_bytes
    );
    if let Some(f) = view.files.first() {
        println!("re-encoding {} ({} rows):", f.path.relative(), f.stats.rows);
        encodings(
            &data_dir
                .join("objects/tenants/bench/metrics")
                .join(f.path.relative()),
        );
    }
}

/// Re-encodes one day file with other column encodings and prints the
/// sizes, so the writer's choices rest on measurement.
fn encodings(path: &std::path::Path) {
    use parquet::arrow::ArrowWriter;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::basic::{Compression, Encoding, ZstdLevel};
    use parquet::file::properties::WriterProperties;
    use parquet::schema::types::ColumnPath;

    let file = std::fs::File::open(path).unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
    let schema = reader.schema().clone();
    let batches: Vec<_> = reader.build().unwrap().map(Result::unwrap).collect();
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    let col = |c: &str| ColumnPath::from(c);
    // The writer's settings but the value column's; `zstd` and `page`
    // (rows per data page) for the value column.
    let base = |zstd: i32, page: usize| {
        WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .set_max_row_group_row_count(Some(1 << 20))
            .set_data_page_row_count_limit(page)
            .set_data_page_size_limit((page * 8).max(1 << 20))
            .set_column_dictionary_enabled(col("timestamp"), false)
            .set_column_encoding(col("timestamp"), Encoding::DELTA_BINARY_PACKED)
            .set_column_dictionary_enabled(col("series_id"), false)
            .set_column_encoding(col("series_id"), Encoding::DELTA_BINARY_PACKED)
            .set_column_compression(
                col("value"),
                Compression::ZSTD(ZstdLevel::try_new(zstd).unwrap()),
            )
    };
    let bss = |zstd: i32, page: usize| {
        base(zstd, page)
            .set_column_dictionary_enabled(col("value"), false)
            .set_column_encoding(col("value"), Encoding::BYTE_STREAM_SPLIT)
    };
    let variants: Vec<(&str, WriterProperties)> = vec![
        (
            "value bss z17, 1M-row pages (day files)",
            bss(17, 1 << 20).build(),
        ),
        ("value bss z17, 256k-row pages", bss(17, 1 << 18).build()),
        ("value bss z17, 128k-row pages", bss(17, 1 << 17).build()),
        ("value bss z17, 64k-row pages", bss(17, 1 << 16).build()),
        ("value bss z5, 1M-row pages", bss(5, 1 << 20).build()),
        (
            "value bss z15, 20k-row pages (before)",
            bss(15, 20_000).build(),
        ),
        (
            "value bss z3, 256k-row pages (hour files)",
            bss(3, 1 << 18).build(),
        ),
        (
            "value plain z17, 1M-row pages",
            base(17, 1 << 20)
                .set_column_dictionary_enabled(col("value"), false)
                .build(),
        ),
        (
            "value dictionary z17, 1M-row pages",
            base(17, 1 << 20).build(),
        ),
        (
            "timestamp plain, value bss z17",
            bss(17, 1 << 20)
                .set_column_encoding(col("timestamp"), Encoding::PLAIN)
                .build(),
        ),
    ];
    for (name, props) in variants {
        let started = Instant::now();
        let mut buf = Vec::new();
        let mut w = ArrowWriter::try_new(&mut buf, schema.clone(), Some(props)).unwrap();
        for b in &batches {
            w.write(b).unwrap();
        }
        w.close().unwrap();
        println!(
            "  {name:<42} {:>12} bytes = {:.3} bytes/sample, written at {:.2}M rows/s",
            buf.len(),
            buf.len() as f64 / rows as f64,
            rows as f64 / started.elapsed().as_secs_f64() / 1e6
        );
    }
}

fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}
