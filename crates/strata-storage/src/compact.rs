//! Compaction: flush files merged into hour files, then into one file per
//! day, deduplicating (series, timestamp) so the newest write wins.
//!
//! **Plan.** Per day partition: once the day has ended (plus a delay for
//! late data), all its files (if more than one) become one day file. Before
//! that, flush files are grouped by the hour their data starts in; a group
//! is widened with every file whose time range overlaps it (so no file left
//! out can hold a copy of a merged sample, and dedup is exact), and merged
//! into an hour file once all its hours have ended (plus the delay). Data
//! arriving after its day file was written waits, merged by the hour, until
//! it is worth rewriting the day for ([`late_data_waits`]).
//!
//! **Merge.** Input files are sorted by metric, series and timestamp, the
//! series in storage order (each series' rank in it computed once per
//! merge from the inputs' series indexes) or, for a day written before
//! that order, by series id (a day's files share one order); the
//! k-way merge shared with logs ([`crate::merge`]) streams them batch by
//! batch through a heap, so memory is one batch per input whatever the file
//! sizes, and keeps the newest copy of each key.
//!
//! **Commit.** Inputs removed and the output added in one Delta commit;
//! readers see the old files or the new one, never both. Removed files stay
//! on the store until vacuum deletes them after the grace period.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Int64Type, TimestampMicrosecondType};
use chrono::NaiveDate;
use object_store::ObjectStore;
use object_store::path::Path;
use parquet::arrow::ParquetRecordBatchStreamBuilder;
use parquet::arrow::arrow_reader::ArrowReaderOptions;
// Deprecated upstream in favour of implementing `AsyncFileReader` by hand
// (arrow-rs#10308, whose replacement is an example, not a type); this is
// still the object-store reader parquet ships.
#[allow(deprecated)]
use parquet::arrow::async_reader::ParquetObjectReader;

use std::collections::HashMap;

use strata_types::SeriesOrderKey;

use crate::merge::MergePolicy;
use crate::paths::FileLevel;
use crate::series_index::{SeriesIndex, SeriesIndexLocation};
use crate::writer::{FileWriter, value_layout};
use crate::{DataFile, SeriesOrder, StorageError};

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;
const BATCH_ROWS: usize = 8192;

/// One merge to do: files of one day partition.
#[derive(Debug, Clone, PartialEq)]
pub struct CompactionJob {
    pub day: NaiveDate,
    pub level: FileLevel,
    pub inputs: Vec<DataFile>,
    /// When the job could first have run (ms since the epoch): its window
    /// closed (plus the delay) and it had its second input (a lone file
    /// of an open day waits for no merge). How late compaction is, is
    /// measured from here.
    pub ready_ms: i64,
}

impl CompactionJob {
    /// When the newest write among the inputs happened: the merged file's
    /// own write time.
    pub fn newest_written_ms(&self) -> i64 {
        self.inputs
            .iter()
            .map(|f| f.written_ms)
            .max()
            .unwrap_or_default()
    }

    fn new(day: NaiveDate, level: FileLevel, inputs: Vec<DataFile>, due_ms: i64) -> Self {
        let mut written: Vec<i64> = inputs.iter().map(|f| f.written_ms).collect();
        written.sort_unstable();
        let mergeable = written
            .get(1)
            .or(written.first())
            .copied()
            .unwrap_or(i64::MIN);
        Self {
            day,
            level,
            inputs,
            ready_ms: due_ms.max(mergeable),
        }
    }

    /// How long an hour merge has waited at `now_ms` (`None` for day
    /// merges: at high rates a day merge runs for hours by design, and
    /// holds back no flush files of an open day).
    pub fn hour_lag_ms(&self, now_ms: i64) -> Option<i64> {
        (self.level == FileLevel::Hour).then(|| now_ms.saturating_sub(self.ready_ms).max(0))
    }
}

/// Which of `jobs` to start now, in order: hour merges first, oldest
/// first, then day merges; none whose inputs a running merge holds
/// (`busy`); no more than `workers` running in all, and, when there is
/// more than one worker, day merges on all but one, so a day merge
/// (hours long at high rates) never holds back the hour merges that keep
/// an open day's flush files few.
pub fn pick(
    jobs: &[CompactionJob],
    busy: impl Fn(&DataFile) -> bool,
    running: usize,
    running_days: usize,
    workers: usize,
) -> Vec<usize> {
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    order.sort_by_key(|&i| (jobs[i].level != FileLevel::Hour, jobs[i].ready_ms));
    let day_slots = if workers > 1 { workers - 1 } else { 1 };
    let (mut running, mut running_days) = (running, running_days);
    let mut picked = Vec::new();
    for i in order {
        if running >= workers {
            break;
        }
        let job = &jobs[i];
        let is_day = job.level == FileLevel::Day;
        if (is_day && running_days >= day_slots) || job.inputs.iter().any(&busy) {
            continue;
        }
        picked.push(i);
        running += 1;
        running_days += usize::from(is_day);
    }
    picked
}

/// What to merge now, given a table's live files.
pub fn plan(files: &[DataFile], now_ms: i64, delay_ms: i64) -> Vec<CompactionJob> {
    let mut by_day: BTreeMap<NaiveDate, Vec<&DataFile>> = BTreeMap::new();
    for f in files {
        by_day.entry(f.path.day).or_default().push(f);
    }
    let mut jobs = Vec::new();
    for (day, files) in by_day {
        let day_start = day
            .and_hms_opt(0, 0, 0)
            .map_or(i64::MAX, |t| t.and_utc().timestamp_millis());
        let day_due = day_start.saturating_add(DAY_MS).saturating_add(delay_ms);
        if day_due <= now_ms {
            if late_data_waits(&files, now_ms) {
                // Folded into the day file later; meanwhile its flush files
                // are merged by the hour, as in an open day.
                jobs.extend(hour_jobs(day, &files, now_ms, delay_ms));
                continue;
            }
            // A closed day ends as one day file: several merged, or a lone
            // flush or hour file rewritten at the day level's compression.
            if files.len() > 1 || files.iter().any(|f| f.path.level != FileLevel::Day) {
                jobs.push(CompactionJob::new(
                    day,
                    FileLevel::Day,
                    files.into_iter().cloned().collect(),
                    day_due,
                ));
            }
            continue;
        }
        jobs.extend(hour_jobs(day, &files, now_ms, delay_ms));
    }
    jobs
}

/// Late data for a day that already has its day file (samples that came
/// after the day closed, a sender's catch-up after an outage, a backfill)
/// is folded into it only once it holds at least 1/[`LATE_FRACTION`] of
/// the day file's rows, or [`LATE_QUIET_MS`] after its last write (the
/// catch-up is over): folding rewrites the whole day (hours of a core for
/// a busy tenant), and doing it every pass while late samples keep coming
/// would keep a worker rewriting days. Until then queries read the late
/// files beside the day file (PromQL counts a sample written twice once).
/// The quiet period is measured from the newest write because that
/// survives the hour merges of late files (a merged file is as new as its
/// newest input); the oldest would not.
const LATE_FRACTION: u64 = 8;
const LATE_QUIET_MS: i64 = HOUR_MS;

fn late_data_waits(files: &[&DataFile], now_ms: i64) -> bool {
    let (day, late): (Vec<&DataFile>, Vec<&DataFile>) =
        files.iter().partition(|f| f.path.level == FileLevel::Day);
    let Some(newest) = late.iter().map(|f| f.written_ms).max() else {
        return false;
    };
    let day_rows: u64 = day.iter().map(|f| f.stats.rows).sum();
    let late_rows: u64 = late.iter().map(|f| f.stats.rows).sum();
    day.len() == 1
        && late_rows.saturating_mul(LATE_FRACTION) < day_rows
        && newest.saturating_add(LATE_QUIET_MS) > now_ms
}

/// Hour groups of a day's flush files, each widened to every file it
/// overlaps, merged once all their hours have ended.
fn hour_jobs(
    day: NaiveDate,
    files: &[&DataFile],
    now_ms: i64,
    delay_ms: i64,
) -> Vec<CompactionJob> {
    let mut flush: Vec<&DataFile> = files
        .iter()
        .copied()
        .filter(|f| f.path.level == FileLevel::Flush)
        .collect();
    flush.sort_by_key(|f| (f.stats.min_ts_ms, f.stats.max_ts_ms));
    let mut jobs = Vec::new();
    let mut taken = vec![false; flush.len()];
    for i in 0..flush.len() {
        if taken[i] {
            continue;
        }
        let hour = flush[i].stats.min_ts_ms.div_euclid(HOUR_MS);
        let (mut lo, mut hi) = (hour * HOUR_MS, (hour + 1) * HOUR_MS - 1);
        let mut group = vec![i];
        // Widen until no other file overlaps [lo, hi].
        loop {
            let mut grew = false;
            for (j, f) in flush.iter().enumerate() {
                let overlaps = f.stats.min_ts_ms <= hi && f.stats.max_ts_ms >= lo;
                let starts_in = f.stats.min_ts_ms.div_euclid(HOUR_MS) == hour;
                if !taken[j] && !group.contains(&j) && (overlaps || starts_in) {
                    group.push(j);
                    lo = lo.min(f.stats.min_ts_ms);
                    hi = hi.max(f.stats.max_ts_ms);
                    grew = true;
                }
            }
            if !grew {
                break;
            }
        }
        for &j in &group {
            taken[j] = true;
        }
        let window_end = (hi.div_euclid(HOUR_MS) + 1) * HOUR_MS;
        let due = window_end.saturating_add(delay_ms);
        if group.len() > 1 && due <= now_ms {
            jobs.push(CompactionJob::new(
                day,
                FileLevel::Hour,
                group.into_iter().map(|j| flush[j].clone()).collect(),
                due,
            ));
        }
    }
    jobs
}

/// A metric row's merge key: (metric, series, timestamp), the series by
/// its id or its rank in label order (the inputs' [`SeriesOrder`]).
/// Metrics are interned per merge, so equal metrics (the common case:
/// every input is in the same metric) compare by pointer instead of by
/// bytes.
pub(crate) struct MetricKey {
    metric: Arc<str>,
    series: i64,
    ts: i64,
}

impl Ord for MetricKey {
    fn cmp(&self, other: &Self) -> Ordering {
        let metric = if Arc::ptr_eq(&self.metric, &other.metric) {
            Ordering::Equal
        } else {
            self.metric.cmp(&other.metric)
        };
        metric
            .then(self.series.cmp(&other.series))
            .then(self.ts.cmp(&other.ts))
    }
}
impl PartialOrd for MetricKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl PartialEq for MetricKey {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for MetricKey {}

/// The metrics merge: the newest copy of each (series, timestamp); labels
/// written where a series starts.
struct MetricsMerge {
    out: FileWriter,
    metrics: Metrics,
    /// Each input's current metric, shared by the keys of its rows: rows
    /// are sorted by metric, so it is rarely re-allocated.
    current: Vec<Arc<str>>,
    /// Label-ordered inputs: every series' rank in that order, and each
    /// input's current series (id, rank), looked up once per series.
    ranks: Option<HashMap<i64, i64>>,
    last: Vec<Option<(i64, i64)>>,
}

impl MergePolicy for MetricsMerge {
    type Key = MetricKey;

    fn key(&mut self, input: usize, b: &RecordBatch, r: usize) -> Result<MetricKey, StorageError> {
        let metric = b.column(crate::col::METRIC).as_string::<i32>().value(r);
        let current = self
            .current
            .get_mut(input)
            .ok_or_else(|| StorageError::Corrupt {
                message: format!("compaction lost track of input {input}"),
            })?;
        if **current != *metric {
            *current = self.metrics.intern(metric);
        }
        let id = b
            .column(crate::col::SERIES_ID)
            .as_primitive::<Int64Type>()
            .value(r);
        let series = match (&self.ranks, self.last.get_mut(input)) {
            (None, _) => id,
            (Some(_), Some(Some((last, rank)))) if *last == id => *rank,
            (Some(ranks), Some(last)) => {
                let rank = ranks.get(&id).copied().ok_or_else(|| StorageError::Corrupt {
                    message: format!(
                        "compaction input {input} holds series {id}, which its series index does not"
                    ),
                })?;
                *last = Some((id, rank));
                rank
            }
            (Some(_), None) => {
                return Err(StorageError::Corrupt {
                    message: format!("compaction lost track of input {input}"),
                });
            }
        };
        Ok(MetricKey {
            metric: Arc::clone(current),
            series,
            ts: b
                .column(crate::col::TIMESTAMP)
                .as_primitive::<TimestampMicrosecondType>()
                .value(r),
        })
    }

    async fn write(
        &mut self,
        picks: &[(usize, usize)],
        pinned: &[RecordBatch],
    ) -> Result<(), StorageError> {
        let gather = |c: usize| {
            let arrays: Vec<&dyn Array> = pinned.iter().map(|b| b.column(c).as_ref()).collect();
            arrow::compute::interleave(&arrays, picks)
        };
        let [(m, _), (i, _), (t, _), (v, _)] = crate::writer::LEAVES;
        let columns = [gather(m)?, gather(i)?, gather(t)?, gather(v)?];
        // Labels only where a series starts: the writer repeats them.
        let ids = columns[1].as_primitive::<Int64Type>();
        let mut starts = Vec::new();
        for (row, &(slot, r)) in picks.iter().enumerate() {
            if row > 0 && ids.value(row) == ids.value(row - 1) {
                continue;
            }
            // A start left out would give the series the labels of the one
            // before: a lost batch is an error.
            let batch = pinned.get(slot).ok_or_else(|| StorageError::Corrupt {
                message: format!("compaction lost track of the batch of output row {row}"),
            })?;
            starts.push((row, labels_at(batch, r)?));
        }
        self.out.push_rows(columns, picks.len(), starts).await
    }
}

pub use crate::merge::MergeStats;

/// Merges `job`'s inputs into one new file under `table`; a day file's
/// values are written with `day`'s zstd level and page rows.
pub(crate) async fn merge(
    store: &Arc<dyn ObjectStore>,
    table: &Path,
    job: &CompactionJob,
    day: crate::writer::ValueLayout,
) -> Result<(DataFile, MergeStats), StorageError> {
    // Bloom filter size: the inputs' series (an upper bound of the
    // output's); files from before the count was logged guess 100k.
    let rows: u64 = job.inputs.iter().map(|f| f.stats.rows).sum();
    let expected_series: u64 = job
        .inputs
        .iter()
        .map(|f| {
            if f.stats.series > 0 {
                f.stats.series
            } else {
                100_000
            }
        })
        .sum::<u64>()
        .clamp(1, rows.max(1));
    // A day's files share one order (`write_head`); a merge of two
    // orders could not stream, so it is refused rather than mis-sorted.
    let order = job
        .inputs
        .first()
        .map_or(SeriesOrder::Labels, |f| f.series_order);
    if let Some(f) = job.inputs.iter().find(|f| f.series_order != order) {
        return Err(StorageError::Corrupt {
            message: format!(
                "compaction of {}: {} orders its series by {}, other inputs by {}",
                job.day,
                f.path.relative(),
                f.series_order.as_str(),
                order.as_str()
            ),
        });
    }
    let mut inputs = Vec::with_capacity(job.inputs.len());
    let mut indexes = Vec::new();
    for f in &job.inputs {
        let path = f.path.under(table);
        #[allow(deprecated)]
        let reader =
            ParquetObjectReader::new(Arc::clone(store), path.clone()).with_file_size(f.size);
        let options = ArrowReaderOptions::new().with_schema(read_schema());
        let builder = ParquetRecordBatchStreamBuilder::new_with_options(reader, options).await?;
        if order == SeriesOrder::Labels {
            indexes.push(series_index_of(store, &path, builder.metadata()).await?);
        }
        let stream = builder.with_batch_size(BATCH_ROWS).build()?;
        inputs.push((stream, f.written_ms));
    }
    let ranks = (order == SeriesOrder::Labels).then(|| label_ranks(&indexes));
    drop(indexes);
    let layout = if job.level == FileLevel::Day {
        day
    } else {
        value_layout(job.level)
    };
    let mut out = FileWriter::with_layout(
        Arc::clone(store),
        table,
        job.day,
        job.level,
        expected_series,
        layout,
        order,
    )?;
    out.set_written_ms(job.newest_written_ms());
    let mut policy = MetricsMerge {
        out,
        metrics: Metrics::default(),
        current: vec![Arc::from(""); inputs.len()],
        ranks,
        last: vec![None; inputs.len()],
    };
    let stats = crate::merge::merge(inputs, &mut policy, BATCH_ROWS).await?;
    let file = policy.out.finish().await?;
    Ok((file, stats))
}

/// A label-ordered input's series index (the writer stores one in every
/// file with rows).
async fn series_index_of(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
    meta: &parquet::file::metadata::ParquetMetaData,
) -> Result<SeriesIndex, StorageError> {
    if meta.file_metadata().num_rows() == 0 {
        return Ok(SeriesIndex::default());
    }
    let missing = || StorageError::Corrupt {
        message: format!("{path}: a label-ordered file without a series index"),
    };
    let at = meta
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|kv| kv.key == SeriesIndex::KEY))
        .and_then(|kv| kv.value.as_deref())
        .and_then(SeriesIndexLocation::from_footer)
        .ok_or_else(missing)?;
    let end = at.offset.checked_add(at.len).ok_or_else(missing)?;
    let bytes =
        object_store::ObjectStoreExt::get_range(store.as_ref(), path, at.offset..end).await?;
    let index = SeriesIndex::decode(&bytes, at)?;
    if i64::try_from(index.rows).ok() != Some(meta.file_metadata().num_rows()) {
        return Err(StorageError::Corrupt {
            message: format!("{path}: the series index does not cover the file's rows"),
        });
    }
    Ok(index)
}

/// Every series of `indexes` ranked in label order
/// ([`strata_types::cmp_series_order`]): the order label-ordered inputs
/// are in, as numbers the merge compares.
fn label_ranks(indexes: &[SeriesIndex]) -> HashMap<i64, i64> {
    let pairs = |(k, i): (usize, usize)| {
        let index = &indexes[k];
        index
            .pairs_of(i)
            .iter()
            .map(move |&(n, v)| (index.string(n).unwrap_or(""), index.string(v).unwrap_or("")))
    };
    let mut seen = HashMap::new();
    let mut all: Vec<(SeriesOrderKey<'_>, (usize, usize))> = Vec::new();
    for (k, index) in indexes.iter().enumerate() {
        for (i, &id) in index.ids.iter().enumerate() {
            if seen.insert(id, ()).is_none() {
                all.push((SeriesOrderKey::of(pairs((k, i))), (k, i)));
            }
        }
    }
    all.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| pairs(a.1).cmp(pairs(b.1))));
    all.iter()
        .enumerate()
        .map(|(rank, &(_, (k, i)))| (indexes[k].ids[i], rank as i64))
        .collect()
}

/// The file schema with the label map's keys and values read as
/// dictionaries: a merge looks at one row's labels per series, and the
/// other rows' cost the reader indices, not string copies.
fn read_schema() -> arrow::datatypes::SchemaRef {
    use arrow::datatypes::{DataType, Field, Fields, Schema};
    static SCHEMA: std::sync::LazyLock<arrow::datatypes::SchemaRef> =
        std::sync::LazyLock::new(|| {
            let file = crate::metrics_schema();
            let dict = || DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
            let entries = Fields::from(vec![
                Field::new(crate::schema::MAP_KEY, dict(), false),
                Field::new(crate::schema::MAP_VALUE, dict(), false),
            ]);
            let labels = Field::new(
                crate::schema::LABELS,
                DataType::Map(
                    Arc::new(Field::new(
                        crate::schema::MAP_ENTRIES,
                        DataType::Struct(entries),
                        false,
                    )),
                    false,
                ),
                false,
            );
            let fields: Vec<Field> = file
                .fields()
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    if i == crate::col::LABELS {
                        labels.clone()
                    } else {
                        f.as_ref().clone()
                    }
                })
                .collect();
            Arc::new(Schema::new_with_metadata(fields, file.metadata().clone()))
        });
    Arc::clone(&SCHEMA)
}

/// Row `r`'s labels, from a batch in [`read_schema`].
fn labels_at(batch: &RecordBatch, r: usize) -> Result<crate::writer::Labels, StorageError> {
    let entries = batch.column(crate::col::LABELS).as_map().value(r);
    let text = |c: usize| -> Result<Vec<Box<str>>, StorageError> {
        let column = entries.column(c);
        let Some(dict) = column.as_any_dictionary_opt() else {
            return Err(StorageError::Corrupt {
                message: format!("labels read as {}, not a dictionary", column.data_type()),
            });
        };
        if dict.is_empty() {
            // No labels in this row (possibly none in the whole batch: an
            // empty dictionary, which `normalized_keys` refuses).
            return Ok(Vec::new());
        }
        if dict.values().is_empty() {
            return Err(StorageError::Corrupt {
                message: "labels dictionary is empty but indexed".into(),
            });
        }
        let values = dict.values().as_string::<i32>();
        Ok(dict
            .normalized_keys()
            .into_iter()
            .map(|k| Box::from(values.value(k)))
            .collect())
    };
    Ok(text(0)?.into_iter().zip(text(1)?).collect())
}

/// One shared `Arc<str>` per metric name seen in a merge.
#[derive(Default)]
struct Metrics(std::collections::HashMap<Box<str>, Arc<str>>);

impl Metrics {
    fn intern(&mut self, m: &str) -> Arc<str> {
        if let Some(a) = self.0.get(m) {
            return Arc::clone(a);
        }
        let a: Arc<str> = Arc::from(m);
        self.0.insert(m.into(), Arc::clone(&a));
        a
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::paths::{DataFilePath, Signal};
    use crate::table::FileStats;

    const T0: i64 = 1_700_006_400_000; // 2023-11-15T00:00:00Z
    const DELAY: i64 = 600_000;

    fn file(level: FileLevel, min_ts: i64, max_ts: i64, written_ms: i64) -> DataFile {
        let mut stats = FileStats::default();
        (stats.rows, stats.min_ts_ms, stats.max_ts_ms) = (1, min_ts, max_ts);
        DataFile {
            signal: Signal::Metrics,
            path: DataFilePath::new(NaiveDate::from_ymd_opt(2023, 11, 15).unwrap(), level),
            size: 1,
            sha256: None,
            stats,
            written_ms,
            series_order: crate::SeriesOrder::Labels,
        }
    }

    #[test]
    fn an_hour_merge_is_ready_when_its_hour_closed_and_it_has_two_files() {
        // Written during the hour: ready when the hour closes, plus delay.
        let files = [
            file(FileLevel::Flush, T0, T0 + 1000, T0 + 60_000),
            file(FileLevel::Flush, T0 + 2000, T0 + 3000, T0 + 120_000),
        ];
        let now = T0 + 5 * HOUR_MS;
        let jobs = plan(&files, now, DELAY);
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].ready_ms, T0 + HOUR_MS + DELAY);
        assert_eq!(jobs[0].hour_lag_ms(now), Some(4 * HOUR_MS - DELAY));

        // Backfilled hours later, a file at a time: a lone file waits for
        // nothing, so the merge is ready when the second one arrives.
        let late = T0 + 3 * HOUR_MS;
        let files = [
            file(FileLevel::Flush, T0, T0 + 1000, late),
            file(FileLevel::Flush, T0 + 2000, T0 + 3000, late + HOUR_MS),
        ];
        let jobs = plan(&files, now, DELAY);
        assert_eq!(jobs[0].ready_ms, late + HOUR_MS);
        assert_eq!(jobs[0].hour_lag_ms(now), Some(HOUR_MS));
        assert_eq!(jobs[0].hour_lag_ms(late), Some(0), "never negative");

        // Day merges have no hour lag.
        let jobs = plan(&files, T0 + 2 * 24 * HOUR_MS, DELAY);
        assert_eq!(jobs[0].level, FileLevel::Day);
        assert_eq!(jobs[0].hour_lag_ms(T0 + 2 * 24 * HOUR_MS), None);
    }

    #[test]
    fn late_data_waits_until_it_is_worth_rewriting_the_day() {
        let written = T0 + 3 * 24 * HOUR_MS;
        let mut day = file(FileLevel::Day, T0, T0 + 24 * HOUR_MS - 1, T0 + 25 * HOUR_MS);
        day.stats.rows = 1000;
        let late = |hour: i64, rows: u64, at: i64| {
            let mut f = file(
                FileLevel::Flush,
                T0 + hour * HOUR_MS,
                T0 + hour * HOUR_MS + 1,
                at,
            );
            f.stats.rows = rows;
            f
        };
        // A little late data: no day rewrite; its flush files merge by
        // the hour meanwhile.
        let files = [day.clone(), late(3, 10, written)];
        assert_eq!(plan(&files, written + HOUR_MS / 2, DELAY), []);
        let files = [day.clone(), late(3, 10, written), late(3, 10, written + 1)];
        let jobs = plan(&files, written + HOUR_MS / 2, DELAY);
        assert_eq!(jobs.len(), 1);
        assert_eq!((jobs[0].level, jobs[0].inputs.len()), (FileLevel::Hour, 2));
        // An hour after its last write, it is folded in.
        let jobs = plan(&files, written + 2 * HOUR_MS, DELAY);
        assert_eq!((jobs[0].level, jobs[0].inputs.len()), (FileLevel::Day, 3));
        // Merged by the hour, it still waits for the quiet hour after its
        // newest write.
        let mut merged = late(3, 20, written + HOUR_MS);
        merged.path = DataFilePath::new(merged.path.day, FileLevel::Hour);
        let files = [day.clone(), merged];
        assert_eq!(plan(&files, written + HOUR_MS + HOUR_MS / 2, DELAY), []);
        let jobs = plan(&files, written + 2 * HOUR_MS + 1, DELAY);
        assert_eq!((jobs[0].level, jobs[0].inputs.len()), (FileLevel::Day, 2));
        // So is an eighth of the day at once.
        let files = [day.clone(), late(3, 125, written)];
        let jobs = plan(&files, written + HOUR_MS / 2, DELAY);
        assert_eq!((jobs[0].level, jobs[0].inputs.len()), (FileLevel::Day, 2));
        // A day without its day file yet is merged whole at once.
        let files = [late(3, 10, written), late(4, 10, written)];
        let jobs = plan(&files, written + HOUR_MS, DELAY);
        assert_eq!((jobs[0].level, jobs[0].inputs.len()), (FileLevel::Day, 2));
    }

    fn job(level: FileLevel, ready_ms: i64) -> CompactionJob {
        CompactionJob {
            day: NaiveDate::from_ymd_opt(2023, 11, 15).unwrap(),
            level,
            inputs: vec![
                file(FileLevel::Flush, T0, T0, T0),
                file(FileLevel::Flush, T0, T0, T0),
            ],
            ready_ms,
        }
    }

    #[test]
    fn hour_merges_go_first_and_a_day_merge_never_takes_the_last_worker() {
        let jobs = [
            job(FileLevel::Day, 1),
            job(FileLevel::Hour, 30),
            job(FileLevel::Day, 2),
            job(FileLevel::Hour, 10),
        ];
        let idle = |_: &DataFile| false;
        assert_eq!(
            pick(&jobs, idle, 0, 0, 2),
            [3, 1],
            "hour merges, oldest first"
        );
        assert_eq!(pick(&jobs, idle, 0, 0, 3), [3, 1, 0]);
        assert_eq!(pick(&jobs, idle, 0, 0, 8), [3, 1, 0, 2]);
        // A day merge running on one of two workers: no second one.
        let days = [job(FileLevel::Day, 1), job(FileLevel::Day, 2)];
        assert_eq!(pick(&days, idle, 1, 1, 2), Vec::<usize>::new());
        assert_eq!(pick(&days, idle, 0, 0, 2), [0]);
        // One worker: the day merge runs when nothing else is due.
        assert_eq!(pick(&days, idle, 0, 0, 1), [0]);
        assert_eq!(pick(&jobs, idle, 0, 0, 1), [3]);
        // Full, or inputs held by a running merge: nothing.
        assert_eq!(pick(&jobs, idle, 2, 0, 2), Vec::<usize>::new());
        let held = jobs[3].inputs[0].path.id;
        assert_eq!(
            pick(&jobs, |f: &DataFile| f.path.id == held, 0, 0, 2),
            [1, 0]
        );
    }
}
