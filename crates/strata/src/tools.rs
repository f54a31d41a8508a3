//! Offline tools over a data dir or object store: `verify`, `compact`,
//! `retention` and `export`. They read the tables (not the WAL), so they
//! work on a store another process serves; `compact` and `retention`
//! commit through the Delta log and conflict safely with a running server.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use arrow::array::RecordBatch;
use clap::{Args, ValueEnum};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use strata_head::Head;
use strata_query::QueryEngine;
use strata_server::ServerConfig;
use strata_storage::verify;
use strata_storage::{MetricsTable, ObjectStoreHandle, Signal, Storage};
use strata_types::TenantId;

/// Where the tables are.
#[derive(Debug, Args)]
pub struct StoreArgs {
    /// TOML configuration file (the server's): its object_store, storage
    /// and retention sections are used.
    #[arg(long, env = "STRATA_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// The server's data directory (the local store is <dir>/objects).
    #[arg(long, env = "STRATA_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// The object store's URL, if not local (file://, s3://, gs://, az://).
    #[arg(long, env = "STRATA_OBJECT_STORE_URL", value_name = "URL")]
    object_store_url: Option<String>,
}

impl StoreArgs {
    fn resolve(&self) -> Result<(ServerConfig, ObjectStoreHandle), String> {
        let mut c = match &self.config {
            Some(path) => ServerConfig::from_file(path).map_err(|e| e.to_string())?,
            None => ServerConfig::default(),
        };
        if let Some(v) = &self.data_dir {
            c.data_dir = v.clone();
        }
        if let Some(v) = &self.object_store_url {
            c.object_store.url = Some(v.clone());
        }
        c.validate().map_err(|e| e.to_string())?;
        let store =
            ObjectStoreHandle::open(&c.object_store, &c.data_dir).map_err(|e| e.to_string())?;
        Ok((c, store))
    }

    /// The configuration and the tables, with an empty head (the tools do
    /// not read the WAL).
    async fn open(&self) -> Result<(ServerConfig, Storage), String> {
        let (config, store) = self.resolve()?;
        let storage = Storage::open(store, Arc::new(Head::new()))
            .await
            .map_err(|e| e.to_string())?;
        // The tools run alone: their merges at normal priority.
        storage.set_compaction(config.storage.compaction_workers, None);
        storage.set_day_file_zstd_level(config.storage.day_file_zstd_level);
        storage.set_day_file_page_rows(config.storage.day_file_page_rows);
        Ok((config, storage))
    }
}

fn bar(len: u64, template: &str) -> ProgressBar {
    let b = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template(template) {
        b.set_style(style.progress_chars("=> "));
    }
    b
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

fn finish(result: Result<ExitCode, String>) -> ExitCode {
    result.unwrap_or_else(|e| {
        eprintln!("strata: {e}");
        ExitCode::from(2)
    })
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Only these tenants (default: every tenant in the store).
    #[arg(long = "tenant", value_name = "TENANT")]
    tenants: Vec<String>,
}

/// Exit 0 when every file matches its log entry, 1 when any is missing or
/// altered, 2 when verification could not run.
pub fn verify(args: VerifyArgs) -> ExitCode {
    finish(runtime().and_then(|rt| rt.block_on(verify_async(args))))
}

async fn verify_async(args: VerifyArgs) -> Result<ExitCode, String> {
    let (_, store) = args.store.resolve()?;
    let tenants = if args.tenants.is_empty() {
        verify::tenants(&store).await.map_err(|e| e.to_string())?
    } else {
        args.tenants
            .iter()
            .map(|t| TenantId::try_new(t).map_err(|e| e.to_string()))
            .collect::<Result<_, _>>()?
    };
    // Every table of each tenant: metrics, logs and exemplars.
    let mut tables = Vec::new();
    for t in &tenants {
        let before = tables.len();
        for signal in Signal::ALL {
            if let Some(table) = MetricsTable::open_signal(&store, t, signal)
                .await
                .map_err(|e| e.to_string())?
            {
                tables.push(table);
            }
        }
        if tables.len() == before {
            return Err(format!("tenant {t} has no table in {}", store.url()));
        }
    }
    let mut files = Vec::new();
    for table in &tables {
        for f in table.files().map_err(|e| e.to_string())? {
            files.push((table, f));
        }
    }
    let total: u64 = files.iter().map(|(_, f)| f.size).sum();
    let progress = bar(total, "verifying {bar:40} {bytes}/{total_bytes} {msg}");
    let mut problems = 0usize;
    for (table, f) in &files {
        progress.set_message(format!(
            "{}/{}/{}",
            table.tenant(),
            table.signal().as_str(),
            f.path.relative()
        ));
        let problem = verify::check_file(&store, table, f)
            .await
            .map_err(|e| format!("reading {}: {e}", f.path.relative()))?;
        if let Some(p) = problem {
            problems += 1;
            progress.suspend(|| {
                println!(
                    "FAIL tenant={} table={} file={} {}",
                    table.tenant(),
                    table.signal().as_str(),
                    f.path.relative(),
                    p
                );
            });
        }
        progress.inc(f.size);
    }
    progress.finish_and_clear();
    println!(
        "verified {} files ({} bytes) of {} tables of {} tenants against the Delta log: {}",
        files.len(),
        total,
        tables.len(),
        tenants.len(),
        if problems == 0 {
            "all intact".to_owned()
        } else {
            format!("{problems} missing or altered")
        }
    );
    Ok(if problems == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[derive(Debug, Args)]
pub struct CompactArgs {
    #[command(flatten)]
    store: StoreArgs,
}

pub fn compact(args: CompactArgs) -> ExitCode {
    finish(runtime().and_then(|rt| {
        rt.block_on(async {
            let (config, storage) = args.store.open().await?;
            let progress = bar(0, "compacting {bar:40} {pos}/{len} merges");
            let p = progress.clone();
            let report = storage
                .compact_with_progress(
                    chrono::Utc::now().timestamp_millis(),
                    config.storage.compaction_delay,
                    &move |done, total| {
                        p.set_length(total as u64);
                        p.set_position(done as u64);
                    },
                )
                .await
                .map_err(|e| e.to_string())?;
            progress.finish_and_clear();
            println!(
                "{} merges: {} files ({} rows, {} bytes) into {} rows, {} bytes in {:.1}s",
                report.jobs,
                report.files_in,
                report.rows_in,
                report.bytes_in,
                report.rows_out,
                report.bytes_out,
                report.elapsed.as_secs_f64()
            );
            Ok(ExitCode::SUCCESS)
        })
    }))
}

#[derive(Debug, Args)]
pub struct RetentionArgs {
    #[command(flatten)]
    store: StoreArgs,
}

pub fn retention(args: RetentionArgs) -> ExitCode {
    finish(runtime().and_then(|rt| {
        rt.block_on(async {
            let (config, storage) = args.store.open().await?;
            let spinner = ProgressBar::new_spinner();
            spinner.set_message("applying retention and vacuum");
            spinner.enable_steady_tick(std::time::Duration::from_millis(120));
            let report = storage
                .apply_retention(chrono::Utc::now().timestamp_millis(), &config.retention)
                .await
                .map_err(|e| e.to_string())?;
            spinner.finish_and_clear();
            println!(
                "removed {} files ({} rows) past retention; vacuum deleted {} files; {} tenants on legal hold",
                report.files_removed, report.rows_removed, report.files_deleted, report.tenants_held
            );
            Ok(ExitCode::SUCCESS)
        })
    }))
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    Parquet,
    Csv,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// The tenant whose data to export.
    #[arg(long)]
    tenant: String,
    /// First instant included (RFC 3339), default: the beginning.
    #[arg(long, value_name = "TIME")]
    from: Option<String>,
    /// First instant excluded (RFC 3339), default: the end.
    #[arg(long, value_name = "TIME")]
    to: Option<String>,
    /// Only this metric.
    #[arg(long)]
    metric: Option<String>,
    #[arg(long, value_enum, default_value = "parquet")]
    format: ExportFormat,
    /// File to write.
    #[arg(long, short)]
    output: PathBuf,
}

pub fn export(args: ExportArgs) -> ExitCode {
    finish(runtime().and_then(|rt| rt.block_on(export_async(args))))
}

fn rfc3339(s: &str) -> Result<String, String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&chrono::Utc).to_rfc3339())
        .map_err(|e| format!("{s:?} is not an RFC 3339 time: {e}"))
}

async fn export_async(args: ExportArgs) -> Result<ExitCode, String> {
    let tenant = TenantId::try_new(&args.tenant).map_err(|e| e.to_string())?;
    let storage = Arc::new(args.store.open().await?.1);
    let mut filters = Vec::new();
    if let Some(f) = &args.from {
        filters.push(format!("timestamp >= TIMESTAMP '{}'", rfc3339(f)?));
    }
    if let Some(t) = &args.to {
        filters.push(format!("timestamp < TIMESTAMP '{}'", rfc3339(t)?));
    }
    if let Some(m) = &args.metric {
        filters.push(format!("metric = '{}'", m.replace('\'', "''")));
    }
    let sql = format!(
        "SELECT metric, labels, series_id, timestamp, value FROM samples{}",
        if filters.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", filters.join(" AND "))
        }
    );
    let estimate: u64 = storage
        .view(&tenant)
        .files
        .iter()
        .map(|f| f.stats.rows)
        .sum();
    let engine = QueryEngine::new(Arc::clone(&storage));
    let ctx = engine.session(&tenant).await.map_err(|e| e.to_string())?;
    let df = ctx.sql(&sql).await.map_err(|e| e.to_string())?;
    let schema = Arc::clone(df.schema().inner());
    let mut stream = df.execute_stream().await.map_err(|e| e.to_string())?;
    let file = std::fs::File::create(&args.output)
        .map_err(|e| format!("creating {}: {e}", args.output.display()))?;
    let progress = bar(estimate, "exporting {bar:40} {pos}/~{len} rows");
    let mut sink = Sink::new(args.format, file, schema)?;
    let mut rows = 0u64;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(|e| e.to_string())?;
        rows += batch.num_rows() as u64;
        sink.write(&batch)?;
        progress.set_position(rows);
    }
    sink.close()?;
    progress.finish_and_clear();
    println!(
        "exported {rows} rows of tenant {tenant} to {}",
        args.output.display()
    );
    Ok(ExitCode::SUCCESS)
}

enum Sink {
    Parquet(parquet::arrow::ArrowWriter<std::fs::File>),
    Csv(arrow::csv::Writer<std::fs::File>),
}

impl Sink {
    fn new(
        format: ExportFormat,
        file: std::fs::File,
        schema: arrow::datatypes::SchemaRef,
    ) -> Result<Self, String> {
        Ok(match format {
            ExportFormat::Parquet => {
                let props = parquet::file::properties::WriterProperties::builder()
                    .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
                    .build();
                Self::Parquet(
                    parquet::arrow::ArrowWriter::try_new(file, schema, Some(props))
                        .map_err(|e| e.to_string())?,
                )
            }
            ExportFormat::Csv => Self::Csv(arrow::csv::Writer::new(file)),
        })
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<(), String> {
        match self {
            Self::Parquet(w) => w.write(batch).map_err(|e| e.to_string()),
            Self::Csv(w) => {
                // CSV has no map type: labels as a JSON object.
                let flat = labels_as_json(batch)?;
                w.write(&flat).map_err(|e| e.to_string())
            }
        }
    }

    fn close(self) -> Result<(), String> {
        match self {
            Self::Parquet(w) => w.close().map(|_| ()).map_err(|e| e.to_string()),
            Self::Csv(_) => Ok(()),
        }
    }
}

/// The batch with its `labels` map replaced by a JSON object string column.
fn labels_as_json(batch: &RecordBatch) -> Result<RecordBatch, String> {
    use arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
    use arrow::datatypes::{DataType, Field, Schema};

    let schema = batch.schema();
    let mut fields = Vec::with_capacity(schema.fields().len());
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        if field.name() != "labels" {
            fields.push(field.as_ref().clone());
            columns.push(Arc::clone(column));
            continue;
        }
        let map = column.as_map();
        let mut out = StringBuilder::new();
        for row in 0..map.len() {
            let entries = map.value(row);
            let keys = entries.column(0).as_string::<i32>();
            let values = entries.column(1).as_string::<i32>();
            let obj: serde_json::Map<String, serde_json::Value> = (0..keys.len())
                .map(|i| (keys.value(i).to_owned(), values.value(i).into()))
                .collect();
            out.append_value(serde_json::Value::Object(obj).to_string());
        }
        fields.push(Field::new("labels", DataType::Utf8, false));
        columns.push(Arc::new(out.finish()));
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(|e| e.to_string())
}
