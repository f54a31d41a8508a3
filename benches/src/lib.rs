//! Shared pieces of Strata's benchmarks and generators.
#![allow(clippy::expect_used, clippy::unwrap_used)]

pub mod workload;
