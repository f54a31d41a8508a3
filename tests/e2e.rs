//! Strata's end-to-end tests, in one test binary: each module starts the
//! real `strata` binary (and real clients: Prometheus, promtool,
//! Alertmanager, psql, psycopg, ADBC, DuckDB/deltalake, the OpenTelemetry
//! SDK, Garage as S3) and talks to it as a user would. One binary instead of
//! one per file keeps the debug target small and links once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

mod analytics;
mod auth;
mod cardinality;
mod crash;
mod deploy;
mod flight;
mod flush_crash;
mod interop;
mod logging;
mod logs;
mod loki_grafana;
mod object_store;
mod otlp_metrics;
mod postgres;
mod prometheus_sender;
mod promql_api;
mod remote_read;
mod remote_write;
mod roles;
mod rules;
mod slo;
mod tls;
mod tools;
mod ui;
