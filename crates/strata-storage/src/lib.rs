//! Strata's storage stage: the head's data, flushed to Parquet files under a
//! Delta Lake log per tenant on object storage.
//!
//! Sits between the head and query. It owns
//! * the object-store layout ([`paths`]) and the stores ([`ObjectStoreHandle`]);
//! * the metrics table of each tenant ([`MetricsTable`]): Parquet files
//!   sorted by metric, series in storage order
//!   ([`strata_types::cmp_series_order`]) and time, zstd, statistics and a bloom
//!   filter on series ids, committed through deltalake-core;
//! * the flush ([`Storage`]): the head is cut at a WAL position, written out,
//!   committed together with that position, and only then dropped from
//!   memory and the WAL. Readers get a [`TenantView`]: heads and files that
//!   together hold every sample exactly once.

mod catalog;
pub mod compact;
mod error;
pub mod exemplar_files;
pub mod histogram_files;
mod labels_chunk;
mod line_index;
mod logs_compact;
mod logs_writer;
mod merge;
pub mod paths;
mod retention;
pub mod rule_store;
mod schema;
mod series_index;
mod storage;
mod store;
mod table;
pub mod verify;
mod writer;

pub use catalog::{FileCatalog, MetricCatalog};
pub use error::StorageError;
pub use paths::{DataFilePath, FileLevel, RuleGroupPath, Signal, TablePath};
pub use retention::{RetentionConfig, RetentionReport, TenantRetention};
pub use schema::{
    col, exemplars_schema, histograms, histograms_schema, logs, logs_schema, map_row,
    metrics_schema,
};

/// Field names of the `labels` map as Parquet and Delta spell them.
pub mod schema_names {
    pub use crate::schema::{MAP_ENTRIES, MAP_KEY, MAP_VALUE};
}
pub use line_index::{
    BLOCK_ROWS as LINE_INDEX_BLOCK_ROWS, LineIndex, LineIndexLocation, LineNeed, LineTest,
};
pub use series_index::{SeriesIndex, SeriesIndexLocation};
pub use storage::{
    AsOf, CompactReport, CompactionBacklog, DEFAULT_EXEMPLAR_BOUNDS, ExemplarBoundsFn, FlushReport,
    HeadEvent, HistogramRead, LogView, Mirror, Sharing, Storage, StorageConfig, TenantView,
    record_event,
};
pub use store::{ObjectStoreConfig, ObjectStoreHandle};
pub use table::{
    DataFile, FileStats, MetricsTable, SHA256_TAG, SeriesOrder, WAL_APP_ID, ingester_wal_app_id,
};
