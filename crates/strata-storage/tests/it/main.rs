//! Storage integration tests in one binary (flush, compaction, retention,
//! the Delta/Parquet conformance checks), against a local or S3 store.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

mod compact;
mod conformance;
mod encodings;
mod exemplars;
mod flush;
mod histograms;
mod retention;
mod sharing;
