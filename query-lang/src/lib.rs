//! Strata's query languages other than SQL.
//!
//! [`logql`] parses and evaluates LogQL over streams from a
//! [`logql::LogSource`] (the server's reads the log heads and files).
//!
//! [`nesting`] is the one depth limit every query parser (SQL's too)
//! enforces before it parses, so no query can overflow a stack.
//!
//! [`promql`] parses with the `promql-parser` crate and evaluates with
//! Prometheus' semantics over series fetched from a [`promql::Source`]: the
//! server's source reads the head and the Parquet files through the same
//! scans SQL uses; [`promql::MemorySource`] holds series in memory (tests,
//! the conformance harness).

pub mod logql;
pub mod nesting;
pub mod promql;
