//! Strata's ingest stage: protocol decoders that turn request bodies into
//! validated [`WriteBatch`](strata_types::WriteBatch)es.
//!
//! Sits between the HTTP server and the WAL. Its promise: a decoder either
//! returns a batch in which every series and sample is valid, or an error
//! naming what was wrong — never a half-accepted request. What a protocol
//! carries that Strata does not store yet (exemplars, native histograms)
//! is counted in [`Skipped`] and reported, not failed on; metric metadata
//! (type, help, unit) comes back beside the batch ([`MetricMetadata`]).
//! Remote read's codec ([`remote_read`]) lives here too: the same
//! protobuf package, and the XOR chunks Prometheus answers in.

mod error;
pub mod logs;
mod metadata;
pub mod otlp_metrics;
pub mod remote_read;
pub mod remote_write;
pub mod start_zeros;

pub use error::{IngestError, Position};
pub use metadata::{MetricMetadata, MetricType};
pub use remote_write::{DecodeLimits, Decoded, Proto, Skipped, decode_v1, negotiate};
