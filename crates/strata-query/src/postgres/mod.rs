//! Everything Postgres, in one place: the wire protocol ([`wire`]: psql,
//! psycopg, JDBC, Grafana's PostgreSQL data source), the catalog those
//! clients read ([`catalog`]: `pg_catalog`, its functions, and the rewrite
//! of Postgres-only syntax into what DataFusion plans), and how Strata's
//! error kinds read as SQLSTATEs.
//!
//! The wire protocol is an adapter over the server's front door: it asks a
//! [`wire::Service`] to check a login, admit a query and plan a statement,
//! and renders what it gets back in the protocol's own shape.

pub mod catalog;
pub mod wire;

use strata_types::ErrorKind;

/// The SQLSTATE an error kind reads as, for errors that are not a query's
/// own (those carry a finer code: `QueryError::sqlstate`).
pub fn sqlstate_for(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::BadInput | ErrorKind::Unprocessable => "42000",
        // invalid_password, insufficient_privilege
        ErrorKind::Unauthenticated => "28P01",
        ErrorKind::Forbidden => "42501",
        // program_limit_exceeded
        ErrorKind::UnsupportedMediaType | ErrorKind::PayloadTooLarge => "54000",
        // too_many_connections covers "try again later" for clients.
        ErrorKind::Limit => "53300",
        // invalid_catalog_name: the database (tenant) named is not valid.
        ErrorKind::NotFound => "3D000",
        ErrorKind::Unavailable => "58030",
        ErrorKind::Timeout | ErrorKind::Canceled => "57014",
        ErrorKind::Internal => "XX000",
    }
}
