//! Helpers shared by the storage tests.
#![allow(dead_code, clippy::unwrap_used)]

use arrow::array::AsArray;
use arrow::datatypes::{Float64Type, Int64Type, TimestampMicrosecondType};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use strata_storage::DataFile;

/// (metric, series_id, timestamp µs, value) of every row of one data file
/// of `tenant`'s table in a local store under `dir`, in file order.
pub fn file_rows(
    dir: &std::path::Path,
    tenant: &str,
    f: &DataFile,
) -> Vec<(String, i64, i64, f64)> {
    let mut rows = Vec::new();
    for b in batches(dir, tenant, f) {
        let m = b.column(0).as_string::<i32>();
        let id = b.column(2).as_primitive::<Int64Type>();
        let ts = b.column(3).as_primitive::<TimestampMicrosecondType>();
        let v = b.column(4).as_primitive::<Float64Type>();
        for i in 0..b.num_rows() {
            rows.push((m.value(i).to_owned(), id.value(i), ts.value(i), v.value(i)));
        }
    }
    rows
}

/// Each row's full label set (`__name__` from the `metric` column, then
/// the `labels` map), sorted by name, of one data file as in [`file_rows`].
pub fn file_labels(
    dir: &std::path::Path,
    tenant: &str,
    f: &DataFile,
) -> Vec<Vec<(String, String)>> {
    let mut rows = Vec::new();
    for b in batches(dir, tenant, f) {
        let m = b.column(0).as_string::<i32>();
        let labels = b.column(1).as_map();
        for i in 0..b.num_rows() {
            let entries = labels.value(i);
            let keys = entries.column(0).as_string::<i32>();
            let values = entries.column(1).as_string::<i32>();
            let mut set: Vec<(String, String)> = (0..arrow::array::Array::len(&entries))
                .map(|j| (keys.value(j).to_owned(), values.value(j).to_owned()))
                .collect();
            if !m.value(i).is_empty() {
                set.push(("__name__".to_owned(), m.value(i).to_owned()));
            }
            set.sort();
            rows.push(set);
        }
    }
    rows
}

/// The record batches of one data file of `tenant`'s table in a local
/// store under `dir`, in file order.
fn batches(
    dir: &std::path::Path,
    tenant: &str,
    f: &DataFile,
) -> impl Iterator<Item = arrow::array::RecordBatch> {
    let path = dir
        .join(format!("objects/tenants/{tenant}/metrics"))
        .join(f.path.relative());
    ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&path).unwrap())
        .unwrap()
        .build()
        .unwrap()
        .map(Result::unwrap)
}
