//! The native-histograms table's files (docs/DESIGN.md, "Native
//! histograms"): written at a flush from the samples the histogram store
//! took since the one before, read back, and a day's files merged into one
//! by compaction.
//!
//! A file is one row group, built in memory, rows in (series id, time)
//! order, one file per UTC day. Two samples of a series at one time: the
//! one written last is kept, as the float head keeps it.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, AsArray, BooleanBuilder, Float64Builder, Int32Builder, ListBuilder, RecordBatch,
    StringBuilder,
};
use arrow::datatypes::{DataType, Field, Float64Type, Int32Type, TimestampMicrosecondType};
use chrono::NaiveDate;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use strata_head::HistogramRow;
use strata_types::{BucketSpan, Histogram, HistogramSample, ResetHint};

use crate::exemplar_files::{SeriesColumns, series_of, write_one_group};
use crate::paths::{FileLevel, Signal, day_of_ms};
use crate::schema::{histograms, histograms_schema};
use crate::{DataFile, FileStats, StorageError};

fn hint_name(h: ResetHint) -> &'static str {
    match h {
        ResetHint::Unknown => "unknown",
        ResetHint::Reset => "reset",
        ResetHint::NotReset => "not_reset",
        ResetHint::Gauge => "gauge",
    }
}

fn hint_of(name: &str) -> Option<ResetHint> {
    Some(match name {
        "unknown" => ResetHint::Unknown,
        "reset" => ResetHint::Reset,
        "not_reset" => ResetHint::NotReset,
        "gauge" => ResetHint::Gauge,
        _ => return None,
    })
}

/// The index of each bucket the spans name, in order.
fn bucket_indexes(spans: &[BucketSpan]) -> impl Iterator<Item = i32> + '_ {
    let mut next = 0i64;
    spans.iter().flat_map(move |s| {
        let start = next + i64::from(s.offset);
        next = start + i64::from(s.length);
        // Validated spans reach at most a few thousand buckets either way.
        (start..next).map(|i| i as i32)
    })
}

/// Spans from bucket indexes in increasing order (consecutive indexes
/// make one span).
fn spans_of(indexes: &[i32]) -> Vec<BucketSpan> {
    let mut spans: Vec<BucketSpan> = Vec::new();
    let mut end = 0i64;
    for (k, &i) in indexes.iter().enumerate() {
        let i = i64::from(i);
        match spans.last_mut() {
            Some(last) if i == end => last.length += 1,
            _ => spans.push(BucketSpan {
                offset: (if k == 0 { i } else { i - end }) as i32,
                length: 1,
            }),
        }
        end = i + 1;
    }
    spans
}

/// Sorts rows by (day, series, time), keeping for each series and time
/// the row that came last (the one written last).
pub fn sort_last_wins(rows: &mut Vec<HistogramRow>) {
    let key = |r: &HistogramRow| {
        (
            day_of_ms(r.1.timestamp_ms),
            r.0.series_id().0 as i64,
            r.1.timestamp_ms,
        )
    };
    // Stable: rows of one key stay in written order.
    rows.sort_by_key(key);
    let mut out: Vec<HistogramRow> = Vec::with_capacity(rows.len());
    for r in rows.drain(..) {
        match out.last_mut() {
            Some(last) if key(last) == key(&r) => *last = r,
            _ => out.push(r),
        }
    }
    *rows = out;
}

/// Writes `rows` (in written order) as data files of the histograms table
/// under `table`, one per UTC day, at `level`. Files already uploaded when
/// an error strikes are left for vacuum.
pub(crate) async fn write_histograms(
    mut rows: Vec<HistogramRow>,
    store: &Arc<dyn ObjectStore>,
    table: &Path,
    level: FileLevel,
) -> Result<Vec<DataFile>, StorageError> {
    sort_last_wins(&mut rows);
    let mut days: BTreeMap<NaiveDate, Vec<HistogramRow>> = BTreeMap::new();
    for row in rows {
        days.entry(day_of_ms(row.1.timestamp_ms))
            .or_default()
            .push(row);
    }
    let mut files = Vec::with_capacity(days.len());
    for (day, rows) in days {
        files.push(write_file(day, &rows, store, table, level).await?);
    }
    Ok(files)
}

fn list_builder<T: arrow::array::ArrayBuilder>(values: T, item: DataType) -> ListBuilder<T> {
    ListBuilder::new(values).with_field(Arc::new(Field::new(histograms::ELEMENT, item, false)))
}

async fn write_file(
    day: NaiveDate,
    rows: &[HistogramRow],
    store: &Arc<dyn ObjectStore>,
    table: &Path,
    level: FileLevel,
) -> Result<DataFile, StorageError> {
    let (batch, stats) = batch_of(rows)?;
    write_one_group(&batch, Signal::Histograms, day, stats, store, table, level).await
}

/// `rows` as a batch of the histograms table's columns (as its files hold
/// them), and the file statistics of those rows.
pub fn batch_of(rows: &[HistogramRow]) -> Result<(RecordBatch, FileStats), StorageError> {
    let mut series_columns = SeriesColumns::default();
    let mut schema = Int32Builder::new();
    let mut hint = StringBuilder::new();
    let mut integer = BooleanBuilder::new();
    let [mut zt, mut zc, mut count, mut sum] = std::array::from_fn(|_| Float64Builder::new());
    let mut pos_buckets = list_builder(Int32Builder::new(), DataType::Int32);
    let mut pos_counts = list_builder(Float64Builder::new(), DataType::Float64);
    let mut neg_buckets = list_builder(Int32Builder::new(), DataType::Int32);
    let mut neg_counts = list_builder(Float64Builder::new(), DataType::Float64);
    let mut custom = list_builder(Float64Builder::new(), DataType::Float64);
    for (series, s) in rows {
        let h = &s.histogram;
        series_columns.push(series, s.timestamp_ms, h.count);
        schema.append_value(h.schema);
        hint.append_value(hint_name(h.reset_hint));
        integer.append_value(h.integer);
        zt.append_value(h.zero_threshold);
        zc.append_value(h.zero_count);
        count.append_value(h.count);
        sum.append_value(h.sum);
        pos_buckets.append_value(bucket_indexes(&h.positive_spans).map(Some));
        pos_counts.append_value(h.positive_counts.iter().map(|&c| Some(c)));
        neg_buckets.append_value(bucket_indexes(&h.negative_spans).map(Some));
        neg_counts.append_value(h.negative_counts.iter().map(|&c| Some(c)));
        custom.append_value(h.custom_values.iter().map(|&c| Some(c)));
    }
    let (mut columns, stats) = series_columns.finish();
    columns.extend::<[ArrayRef; 12]>([
        Arc::new(schema.finish()),
        Arc::new(hint.finish()),
        Arc::new(integer.finish()),
        Arc::new(zt.finish()),
        Arc::new(zc.finish()),
        Arc::new(count.finish()),
        Arc::new(sum.finish()),
        Arc::new(pos_buckets.finish()),
        Arc::new(pos_counts.finish()),
        Arc::new(neg_buckets.finish()),
        Arc::new(neg_counts.finish()),
        Arc::new(custom.finish()),
    ]);
    Ok((RecordBatch::try_new(histograms_schema(), columns)?, stats))
}

/// Every row of one data file, in stored order.
pub async fn read_file(
    store: &Arc<dyn ObjectStore>,
    table: &Path,
    file: &DataFile,
) -> Result<Vec<HistogramRow>, StorageError> {
    let bytes = store.get(&file.path.under(table)).await?.bytes().await?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)?.build()?;
    let mut out = Vec::new();
    for batch in reader {
        rows_of(&batch?, &mut out)?;
    }
    Ok(out)
}

fn rows_of(batch: &RecordBatch, out: &mut Vec<HistogramRow>) -> Result<(), StorageError> {
    use histograms::col;
    let corrupt = |what: &str| StorageError::Corrupt {
        message: format!("histograms file: {what}"),
    };
    let types = corrupt("unexpected column types");
    let f64s = |c: usize| batch.column(c).as_primitive_opt::<Float64Type>();
    let lists = |c: usize| batch.column(c).as_list_opt::<i32>();
    let (
        Some(metric),
        Some(labels),
        Some(ts),
        Some(schema),
        Some(hint),
        Some(integer),
        Some(zt),
        Some(zc),
        Some(count),
        Some(sum),
    ) = (
        batch.column(col::METRIC).as_string_opt::<i32>(),
        batch.column(col::LABELS).as_map_opt(),
        batch
            .column(col::TIMESTAMP)
            .as_primitive_opt::<TimestampMicrosecondType>(),
        batch.column(col::SCHEMA).as_primitive_opt::<Int32Type>(),
        batch.column(col::RESET_HINT).as_string_opt::<i32>(),
        batch.column(col::INTEGER).as_boolean_opt(),
        f64s(col::ZERO_THRESHOLD),
        f64s(col::ZERO_COUNT),
        f64s(col::COUNT),
        f64s(col::SUM),
    )
    else {
        return Err(types);
    };
    let (Some(pb), Some(pc), Some(nb), Some(nc), Some(cv)) = (
        lists(col::POSITIVE_BUCKETS),
        lists(col::POSITIVE_COUNTS),
        lists(col::NEGATIVE_BUCKETS),
        lists(col::NEGATIVE_COUNTS),
        lists(col::CUSTOM_VALUES),
    ) else {
        return Err(types);
    };
    let ints = |l: &arrow::array::ListArray, i: usize| -> Option<Vec<i32>> {
        let v = l.value(i);
        Some(v.as_primitive_opt::<Int32Type>()?.values().to_vec())
    };
    let floats = |l: &arrow::array::ListArray, i: usize| -> Option<Vec<f64>> {
        let v = l.value(i);
        Some(v.as_primitive_opt::<Float64Type>()?.values().to_vec())
    };
    for i in 0..batch.num_rows() {
        let Some(series) = series_of(metric, labels, i) else {
            return Err(corrupt("a row's labels are not a valid series"));
        };
        let (Some(pb), Some(pc), Some(nb), Some(nc), Some(cv), Some(reset_hint)) = (
            ints(pb, i),
            floats(pc, i),
            ints(nb, i),
            floats(nc, i),
            floats(cv, i),
            hint_of(hint.value(i)),
        ) else {
            return Err(corrupt("a row's buckets or reset hint do not read"));
        };
        let histogram = Histogram {
            reset_hint,
            schema: schema.value(i),
            zero_threshold: zt.value(i),
            zero_count: zc.value(i),
            count: count.value(i),
            sum: sum.value(i),
            positive_spans: spans_of(&pb),
            positive_counts: pc,
            negative_spans: spans_of(&nb),
            negative_counts: nc,
            custom_values: cv,
            integer: integer.value(i),
        };
        if pb.len() != histogram.positive_counts.len()
            || nb.len() != histogram.negative_counts.len()
            || histogram.validate().is_err()
        {
            return Err(corrupt("a row is not a valid histogram"));
        }
        out.push((
            Arc::new(series),
            HistogramSample {
                timestamp_ms: ts.value(i).div_euclid(1000),
                histogram,
            },
        ));
    }
    Ok(())
}

/// Merges a compaction job's histogram files into one (each series and
/// time once: the one written last); the merged file is written at the
/// job's level, as old as its newest input.
pub(crate) async fn merge(
    store: &Arc<dyn ObjectStore>,
    table: &Path,
    job: &crate::compact::CompactionJob,
) -> Result<(DataFile, crate::merge::MergeStats), StorageError> {
    let mut inputs: Vec<&DataFile> = job.inputs.iter().collect();
    inputs.sort_by_key(|f| f.written_ms);
    let mut rows = Vec::new();
    for f in inputs {
        rows.extend(read_file(store, table, f).await?);
    }
    let rows_in = rows.len() as u64;
    sort_last_wins(&mut rows);
    let rows_out = rows.len() as u64;
    let mut files = write_histograms(rows, store, table, job.level).await?;
    let Some(mut file) = files.pop().filter(|_| files.is_empty()) else {
        return Err(StorageError::Corrupt {
            message: format!(
                "histogram files of {} did not merge into one file of that day",
                job.day
            ),
        });
    };
    file.written_ms = job.newest_written_ms();
    Ok((file, crate::merge::MergeStats { rows_in, rows_out }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_types::{Label, Labels};

    fn row(job: &str, ts: i64, sum: f64, spans: Vec<BucketSpan>, counts: Vec<f64>) -> HistogramRow {
        (
            Arc::new(
                Labels::try_from_unsorted(vec![
                    Label::new("__name__", "lat"),
                    Label::new("job", job),
                ])
                .unwrap(),
            ),
            HistogramSample {
                timestamp_ms: ts,
                histogram: Histogram {
                    reset_hint: ResetHint::NotReset,
                    schema: 2,
                    zero_threshold: 1e-3,
                    zero_count: 1.0,
                    count: 1.0 + counts.iter().sum::<f64>(),
                    sum,
                    positive_spans: spans,
                    positive_counts: counts,
                    negative_spans: vec![],
                    negative_counts: vec![],
                    custom_values: vec![],
                    integer: true,
                },
            },
        )
    }

    fn span(offset: i32, length: u32) -> BucketSpan {
        BucketSpan { offset, length }
    }

    #[test]
    fn bucket_indexes_and_spans_round_trip() {
        let spans = vec![span(-3, 2), span(4, 1), span(0, 2)];
        let idx: Vec<i32> = bucket_indexes(&spans).collect();
        assert_eq!(idx, vec![-3, -2, 3, 4, 5]);
        // Adjacent spans come back as one: the same buckets.
        assert_eq!(spans_of(&idx), vec![span(-3, 2), span(4, 3)]);
        assert_eq!(spans_of(&[]), vec![]);
        assert_eq!(spans_of(&[7]), vec![span(7, 1)]);
    }

    #[tokio::test]
    async fn files_round_trip_by_day_and_the_last_written_wins() {
        let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        let table = Path::from("tenants/t/histograms");
        let day = 86_400_000;
        let rows = vec![
            row("b", 10, 1.0, vec![span(-1, 2)], vec![2.0, 3.0]),
            row(
                "a",
                day + 5,
                2.0,
                vec![span(0, 1), span(2, 1)],
                vec![1.0, 4.0],
            ),
            row("b", 10, 9.0, vec![span(-1, 2)], vec![2.0, 3.0]),
        ];
        let files = write_histograms(rows.clone(), &store, &table, FileLevel::Flush)
            .await
            .unwrap();
        assert_eq!(files.len(), 2, "one file per day");
        assert_eq!(files[0].stats.rows, 1, "one row per series and time");
        let first = read_file(&store, &table, &files[0]).await.unwrap();
        assert_eq!(first[0].1, rows[2].1, "the one written last");
        let second = read_file(&store, &table, &files[1]).await.unwrap();
        assert_eq!(second[0].1, rows[1].1);
        assert_eq!(*second[0].0, *rows[1].0);
    }
}
