//! The front door every protocol goes through: HTTP handlers, the Postgres
//! wire protocol and Flight SQL are thin adapters over this module.
//!
//! - [`Caller`]: who a request acts for — its tenant, checked for a role —
//!   as an axum extractor, so an HTTP handler cannot forget it; the error
//!   shape of a route ([`shape_for`]) decided once for the auth layer and
//!   the extractor.
//! - [`query::admit`]: every query of every language (PromQL, LogQL, SQL
//!   over HTTP, pgwire and Flight, the analytics API) takes its tenant's
//!   concurrency slot and its turn in the fair scheduler here, bounded by
//!   a timeout, and records its usage when done.
//! - [`write::Write`]: every write of every signal (remote write 1.0/2.0,
//!   OTLP metrics and logs, Loki push, NDJSON): readiness, compaction lag,
//!   ingest budget, decoded bytes in flight, decoding off the async
//!   workers, limits (series reserved atomically), WAL and head, usage.
//!   What the server computes itself goes in through
//!   [`write::write_internal`]; a node without a WAL (a compactor's
//!   rules and SLOs) writes it through an ingester (`forward`).
//!
//! - [`postgres`]: the Postgres wire protocol (in `strata_query::postgres`
//!   with the rest of the Postgres code) over this front door.
//!
//! Errors are [`ApiError`](crate::error::ApiError)s: a kind, a message and a retry hint; each
//! adapter renders them in its protocol's shape.

mod caller;
mod forward;
pub mod postgres;
pub mod query;
pub mod write;

pub use caller::{Admin, Caller, Read, RoleOf, Writer, shape_for};
