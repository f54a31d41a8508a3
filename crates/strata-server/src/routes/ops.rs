//! Health, readiness and metrics.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

use crate::AppState;

/// 200 as soon as the process serves HTTP.
pub(super) async fn healthy() -> &'static str {
    "Strata is Healthy.\n"
}

/// 200 once WAL replay has finished and writes are accepted.
pub(super) async fn ready(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    if state.wal().is_some() {
        (StatusCode::OK, "Strata is Ready.\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "Strata is replaying its WAL.\n",
        )
    }
}

pub(super) async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let body = state
        .metrics
        .render(&state.head, state.wal().map(|w| w.as_ref()));
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
}
