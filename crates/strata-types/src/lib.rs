//! Core types shared by every stage of Strata's pipeline.
//!
//! Sits at the bottom of the crate graph: `strata-types` → `strata-wal` →
//! `strata-head` → `strata-query` → `strata-server`. It promises that a
//! [`TenantId`] is always valid (safe as a path component and object-store
//! prefix), that a [`SeriesId`] is a stable hash of a sorted label set — the
//! same in the head, on disk and on every node — and that sample values keep
//! their exact bits (the Prometheus stale marker survives every hop).

mod labels;
mod sample;
mod tenant;

pub use labels::{
    Label, LabelError, Labels, METRIC_NAME_LABEL, NameScheme, SeriesId, is_valid_label_name,
    is_valid_metric_name, validate_sorted, validate_stream_sorted,
};
pub use sample::{
    MAX_TIMESTAMP_MS, MIN_TIMESTAMP_MS, STALE_NAN_BITS, Sample, TIMESTAMP_RANGE_TEXT, is_stale_nan,
    stale_nan, timestamp_in_range,
};
pub use tenant::{DEFAULT_TENANT, TenantError, TenantId};

mod batch;
pub use batch::{LabelWidths, SeriesRef, SeriesSamples, WriteBatch};

mod kind;
pub use kind::ErrorKind;

mod logs;
pub use logs::{LogBatch, LogEntry, LogStream};

mod series_order;
pub use series_order::{SeriesOrderKey, cmp_series_order};

mod exemplar;
pub use exemplar::{
    EXEMPLAR_MAX_LABEL_CHARS, Exemplar, ExemplarBatch, ExemplarError, SeriesExemplars,
    exemplar_labels,
};

mod histogram;
pub use histogram::{
    BucketSpan, CUSTOM_BUCKETS_SCHEMA, EXPONENTIAL_SCHEMAS, Histogram, HistogramBatch,
    HistogramError, HistogramSample, ResetHint, SeriesHistograms,
};
