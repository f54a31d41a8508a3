//! Strata's query stage: DataFusion sessions over a tenant's data.
//!
//! Sits on the head (and, once storage lands, on its files). Every query runs
//! in a fresh DataFusion session that holds only its tenant's tables, so a
//! statement cannot name another tenant's data. Statements that would write
//! or change the catalog (DDL, DML, `COPY`, `SET`) are refused: this is a
//! read path.
//!
//! Tables:
//! * `samples` — one row per float sample: `metric`, `labels` (a map of every
//!   label except `__name__`, filterable as `labels['job'] = 'api'`),
//!   `series_id`, `timestamp` (ms, UTC) and `value`. Filters on `metric`,
//!   `labels[..]` and `timestamp` are pushed into the scans; files are
//!   pruned by their logged time range, row groups by Parquet statistics.
//! * `samples_at_version(v)`, `samples_as_of('2026-11-01T00:00:00Z')` — the
//!   tenant's table at a Delta version or time (time travel, files only).

pub mod catalog;
mod date_trunc;
mod engine;
mod error;
mod file_index_cache;
mod functions;
mod histograms;
mod line_index_cache;
mod line_needs;
pub mod logql;
pub mod logs;
pub mod memory;
mod metric_table;
pub mod postgres;
pub mod promql;
pub mod running;
mod samples;
mod series_labels;
mod system;
mod time_travel;
pub mod usage;

pub use engine::{Planned, QueryEngine, QueryOutput, QueryStream, SessionExtension};
pub use error::QueryError;
pub use samples::{SamplesTable, samples_schema};
pub use system::{MetricDescription, MetricDescriptions};
