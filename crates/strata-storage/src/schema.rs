//! The metrics table's schema, in Arrow (files, queries) and Delta (log).

use std::sync::{Arc, LazyLock};

use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use deltalake_core::kernel::{DataType as DeltaType, MapType, StructField};

pub const METRIC: &str = "metric";
pub const LABELS: &str = "labels";
pub const SERIES_ID: &str = "series_id";
pub const TIMESTAMP: &str = "timestamp";
pub const VALUE: &str = "value";
/// Partition column: the UTC day of `timestamp`. In the Delta schema and
/// the file paths, not inside the Parquet files.
pub const DAY: &str = "day";

/// Column indexes of [`metrics_schema`].
pub mod col {
    pub const METRIC: usize = 0;
    pub const LABELS: usize = 1;
    pub const SERIES_ID: usize = 2;
    pub const TIMESTAMP: usize = 3;
    pub const VALUE: usize = 4;
}

/// Field names of the `labels` map, as Parquet and Delta spell them.
pub const MAP_ENTRIES: &str = "key_value";
pub const MAP_KEY: &str = "key";
pub const MAP_VALUE: &str = "value";

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let entries = Fields::from(vec![
        Field::new(MAP_KEY, DataType::Utf8, false),
        Field::new(MAP_VALUE, DataType::Utf8, false),
    ]);
    Arc::new(Schema::new(vec![
        Field::new(METRIC, DataType::Utf8, false),
        Field::new(
            LABELS,
            DataType::Map(
                Arc::new(Field::new(MAP_ENTRIES, DataType::Struct(entries), false)),
                false,
            ),
            false,
        ),
        Field::new(SERIES_ID, DataType::Int64, false),
        Field::new(
            TIMESTAMP,
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new(VALUE, DataType::Float64, false),
    ]))
});

/// One row per float sample: `metric`, `labels` (every label but
/// `__name__`), `series_id` (the series' 64-bit hash, as a signed integer
/// because Delta has no unsigned types), `timestamp` (µs, UTC: Delta's
/// timestamp type; Prometheus' milliseconds convert exactly) and `value`.
/// The schema of the data files and of SQL's `samples` table.
pub fn metrics_schema() -> SchemaRef {
    Arc::clone(&SCHEMA)
}

/// The Delta table's columns: the file columns plus the `day` partition.
pub(crate) fn delta_columns() -> Vec<StructField> {
    vec![
        StructField::new(METRIC, DeltaType::STRING, false),
        StructField::new(
            LABELS,
            DeltaType::Map(Box::new(MapType::new(
                DeltaType::STRING,
                DeltaType::STRING,
                false,
            ))),
            false,
        ),
        StructField::new(SERIES_ID, DeltaType::LONG, false),
        StructField::new(TIMESTAMP, DeltaType::TIMESTAMP, false),
        StructField::new(VALUE, DeltaType::DOUBLE, false),
        StructField::new(DAY, DeltaType::DATE, false),
    ]
}

/// Logs table column names.
pub mod logs {
    pub const STREAM_ID: &str = "stream_id";
    pub const LABELS: &str = "labels";
    pub const TIMESTAMP_NS: &str = "timestamp_ns";
    pub const LINE: &str = "line";
    pub const METADATA: &str = "metadata";

    /// Column indexes of [`super::logs_schema`].
    pub mod col {
        pub const STREAM_ID: usize = 0;
        pub const LABELS: usize = 1;
        pub const TIMESTAMP_NS: usize = 2;
        pub const LINE: usize = 3;
        pub const METADATA: usize = 4;
    }
}

fn string_map(name: &str) -> Field {
    let entries = Fields::from(vec![
        Field::new(MAP_KEY, DataType::Utf8, false),
        Field::new(MAP_VALUE, DataType::Utf8, false),
    ]);
    Field::new(
        name,
        DataType::Map(
            Arc::new(Field::new(MAP_ENTRIES, DataType::Struct(entries), false)),
            false,
        ),
        false,
    )
}

static LOGS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new(logs::STREAM_ID, DataType::Int64, false),
        string_map(logs::LABELS),
        Field::new(logs::TIMESTAMP_NS, DataType::Int64, false),
        Field::new(logs::LINE, DataType::Utf8, false),
        string_map(logs::METADATA),
    ]))
});

/// One row per log entry: `stream_id` (the stream's 64-bit label hash,
/// signed), `labels` (the stream's labels), `timestamp_ns` (Unix
/// nanoseconds as a plain integer: Delta's timestamp type stops at
/// microseconds, log order needs nanoseconds), `line`, and `metadata`
/// (structured metadata: severity, trace and span ids, attributes).
pub fn logs_schema() -> SchemaRef {
    Arc::clone(&LOGS_SCHEMA)
}

/// The logs Delta table's columns: the file columns plus `day`.
/// A `map<string, string>` column's Delta type.
fn delta_string_map() -> DeltaType {
    DeltaType::Map(Box::new(MapType::new(
        DeltaType::STRING,
        DeltaType::STRING,
        false,
    )))
}

pub(crate) fn logs_delta_columns() -> Vec<StructField> {
    let map = delta_string_map;
    vec![
        StructField::new(logs::STREAM_ID, DeltaType::LONG, false),
        StructField::new(logs::LABELS, map(), false),
        StructField::new(logs::TIMESTAMP_NS, DeltaType::LONG, false),
        StructField::new(logs::LINE, DeltaType::STRING, false),
        StructField::new(logs::METADATA, map(), false),
        StructField::new(DAY, DeltaType::DATE, false),
    ]
}

/// Exemplars table column names (beside the metrics table's `metric`,
/// `labels`, `series_id`, `timestamp` and `value`).
pub mod exemplars {
    /// The exemplar's own labels (`trace_id`, `span_id`, ...).
    pub const EXEMPLAR: &str = "exemplar";

    /// Column indexes of [`super::exemplars_schema`].
    pub mod col {
        pub const METRIC: usize = 0;
        pub const LABELS: usize = 1;
        pub const SERIES_ID: usize = 2;
        pub const TIMESTAMP: usize = 3;
        pub const VALUE: usize = 4;
        pub const EXEMPLAR: usize = 5;
    }
}

static EXEMPLARS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new(METRIC, DataType::Utf8, false),
        string_map(LABELS),
        Field::new(SERIES_ID, DataType::Int64, false),
        Field::new(
            TIMESTAMP,
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new(VALUE, DataType::Float64, false),
        string_map(exemplars::EXEMPLAR),
    ]))
});

/// One row per exemplar: its series as the metrics table has it
/// (`metric`, `labels` without `__name__`, `series_id`), its `timestamp`
/// (µs, UTC) and `value`, and its own labels in `exemplar`.
pub fn exemplars_schema() -> SchemaRef {
    Arc::clone(&EXEMPLARS_SCHEMA)
}

/// The exemplars Delta table's columns: the file columns plus `day`.
pub(crate) fn exemplars_delta_columns() -> Vec<StructField> {
    let map = delta_string_map;
    vec![
        StructField::new(METRIC, DeltaType::STRING, false),
        StructField::new(LABELS, map(), false),
        StructField::new(SERIES_ID, DeltaType::LONG, false),
        StructField::new(TIMESTAMP, DeltaType::TIMESTAMP, false),
        StructField::new(VALUE, DeltaType::DOUBLE, false),
        StructField::new(exemplars::EXEMPLAR, map(), false),
        StructField::new(DAY, DeltaType::DATE, false),
    ]
}

/// Native-histogram table column names (beside the metrics table's
/// `metric`, `labels`, `series_id` and `timestamp`).
pub mod histograms {
    pub const SCHEMA: &str = "schema";
    /// `unknown`, `reset`, `not_reset` or `gauge`.
    pub const RESET_HINT: &str = "reset_hint";
    /// Sent as an integer histogram.
    pub const INTEGER: &str = "integer";
    pub const ZERO_THRESHOLD: &str = "zero_threshold";
    pub const ZERO_COUNT: &str = "zero_count";
    pub const COUNT: &str = "count";
    pub const SUM: &str = "sum";
    /// Index of each positive bucket held (bucket `i` of schema `s` has
    /// upper bound 2^(i * 2^-s); of schema -53, `custom_values[i]`).
    pub const POSITIVE_BUCKETS: &str = "positive_buckets";
    /// Absolute count of each of `positive_buckets`.
    pub const POSITIVE_COUNTS: &str = "positive_counts";
    /// The same for negative buckets (mirrored bounds).
    pub const NEGATIVE_BUCKETS: &str = "negative_buckets";
    pub const NEGATIVE_COUNTS: &str = "negative_counts";
    /// Upper bounds of schema -53's buckets (the last is +Inf, not listed).
    pub const CUSTOM_VALUES: &str = "custom_values";
    /// The item name of list columns, as Parquet and Delta spell it.
    pub const ELEMENT: &str = "element";

    /// Column indexes of [`super::histograms_schema`].
    pub mod col {
        pub const METRIC: usize = 0;
        pub const LABELS: usize = 1;
        pub const SERIES_ID: usize = 2;
        pub const TIMESTAMP: usize = 3;
        pub const SCHEMA: usize = 4;
        pub const RESET_HINT: usize = 5;
        pub const INTEGER: usize = 6;
        pub const ZERO_THRESHOLD: usize = 7;
        pub const ZERO_COUNT: usize = 8;
        pub const COUNT: usize = 9;
        pub const SUM: usize = 10;
        pub const POSITIVE_BUCKETS: usize = 11;
        pub const POSITIVE_COUNTS: usize = 12;
        pub const NEGATIVE_BUCKETS: usize = 13;
        pub const NEGATIVE_COUNTS: usize = 14;
        pub const CUSTOM_VALUES: usize = 15;
    }
}

/// A `list<item>` field, items never null.
pub(crate) fn list_field(name: &str, item: DataType) -> Field {
    Field::new(
        name,
        DataType::List(Arc::new(Field::new(histograms::ELEMENT, item, false))),
        false,
    )
}

static HISTOGRAMS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    use histograms as h;
    Arc::new(Schema::new(vec![
        Field::new(METRIC, DataType::Utf8, false),
        string_map(LABELS),
        Field::new(SERIES_ID, DataType::Int64, false),
        Field::new(
            TIMESTAMP,
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new(h::SCHEMA, DataType::Int32, false),
        Field::new(h::RESET_HINT, DataType::Utf8, false),
        Field::new(h::INTEGER, DataType::Boolean, false),
        Field::new(h::ZERO_THRESHOLD, DataType::Float64, false),
        Field::new(h::ZERO_COUNT, DataType::Float64, false),
        Field::new(h::COUNT, DataType::Float64, false),
        Field::new(h::SUM, DataType::Float64, false),
        list_field(h::POSITIVE_BUCKETS, DataType::Int32),
        list_field(h::POSITIVE_COUNTS, DataType::Float64),
        list_field(h::NEGATIVE_BUCKETS, DataType::Int32),
        list_field(h::NEGATIVE_COUNTS, DataType::Float64),
        list_field(h::CUSTOM_VALUES, DataType::Float64),
    ]))
});

/// One row per native-histogram sample: its series as the metrics table
/// has it (`metric`, `labels` without `__name__`, `series_id`), its
/// `timestamp` (µs, UTC), and the histogram in plain columns: `schema`,
/// `reset_hint`, `integer`, `zero_threshold`, `zero_count`, `count`,
/// `sum`, and per side the index and absolute count of each bucket held
/// (`positive_buckets`/`positive_counts`, `negative_*`), with
/// `custom_values` for schema -53. Readable as is by DuckDB and any Delta
/// reader; docs/DESIGN.md, "Native histograms".
pub fn histograms_schema() -> SchemaRef {
    Arc::clone(&HISTOGRAMS_SCHEMA)
}

/// The histograms Delta table's columns: the file columns plus `day`.
pub(crate) fn histograms_delta_columns() -> Vec<StructField> {
    use deltalake_core::kernel::ArrayType;
    use histograms as h;
    let list = |item: DeltaType| DeltaType::Array(Box::new(ArrayType::new(item, false)));
    vec![
        StructField::new(METRIC, DeltaType::STRING, false),
        StructField::new(LABELS, delta_string_map(), false),
        StructField::new(SERIES_ID, DeltaType::LONG, false),
        StructField::new(TIMESTAMP, DeltaType::TIMESTAMP, false),
        StructField::new(h::SCHEMA, DeltaType::INTEGER, false),
        StructField::new(h::RESET_HINT, DeltaType::STRING, false),
        StructField::new(h::INTEGER, DeltaType::BOOLEAN, false),
        StructField::new(h::ZERO_THRESHOLD, DeltaType::DOUBLE, false),
        StructField::new(h::ZERO_COUNT, DeltaType::DOUBLE, false),
        StructField::new(h::COUNT, DeltaType::DOUBLE, false),
        StructField::new(h::SUM, DeltaType::DOUBLE, false),
        StructField::new(h::POSITIVE_BUCKETS, list(DeltaType::INTEGER), false),
        StructField::new(h::POSITIVE_COUNTS, list(DeltaType::DOUBLE), false),
        StructField::new(h::NEGATIVE_BUCKETS, list(DeltaType::INTEGER), false),
        StructField::new(h::NEGATIVE_COUNTS, list(DeltaType::DOUBLE), false),
        StructField::new(h::CUSTOM_VALUES, list(DeltaType::DOUBLE), false),
        StructField::new(DAY, DeltaType::DATE, false),
    ]
}

/// One row of a `map<string, string>` column (`labels`, `metadata`,
/// `exemplar`) as (key, value) pairs, in stored order.
pub fn map_row(map: &arrow::array::MapArray, row: usize) -> Vec<(String, String)> {
    use arrow::array::{Array, AsArray};
    let entries = map.value(row);
    let keys = entries.column(0).as_string::<i32>();
    let values = entries.column(1).as_string::<i32>();
    (0..entries.len())
        .map(|i| (keys.value(i).to_owned(), values.value(i).to_owned()))
        .collect()
}
