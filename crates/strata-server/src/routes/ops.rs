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

/// 200 once WAL replay has finished and while writes are accepted; 503
/// while replaying, or after a WAL write failure (until a restart).
pub(super) async fn ready(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    match state.wal() {
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Strata is replaying its WAL.\n",
        ),
        Some(wal) if wal.stats().poisoned => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Strata's WAL failed a write or fsync; restart to recover.\n",
        ),
        Some(_) => (StatusCode::OK, "Strata is Ready.\n"),
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
