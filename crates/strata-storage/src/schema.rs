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
pub(crate) fn logs_delta_columns() -> Vec<StructField> {
    let map = || {
        DeltaType::Map(Box::new(MapType::new(
            DeltaType::STRING,
            DeltaType::STRING,
            false,
        )))
    };
    vec![
        StructField::new(logs::STREAM_ID, DeltaType::LONG, false),
        StructField::new(logs::LABELS, map(), false),
        StructField::new(logs::TIMESTAMP_NS, DeltaType::LONG, false),
        StructField::new(logs::LINE, DeltaType::STRING, false),
        StructField::new(logs::METADATA, map(), false),
        StructField::new(DAY, DeltaType::DATE, false),
    ]
}
