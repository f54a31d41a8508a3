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
    let body = state.metrics.render(
        &state.storage,
        state.wal().map(|w| w.as_ref()),
        state.config.storage.compaction_delay,
    );
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
}

/// `POST /api/v1/admin/flush`: flushes the head now and reports what was
/// written. For operators and tests; flushes otherwise run on their own.
pub(super) async fn flush(
    State(state): State<Arc<AppState>>,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    use axum::Json;
    use strata_types::ErrorKind;

    use crate::error::{ApiError, Shape};

    if let Err(e) = state
        .auth
        .require_role(&headers, crate::auth::Role::Admin, Shape::Json)
    {
        return e.into_response();
    }
    let Some(wal) = state.wal() else {
        return ApiError::new(
            ErrorKind::Unavailable,
            "not ready: replaying the WAL",
            Shape::Json,
        )
        .into_response();
    };
    let result = state.storage.flush(wal.as_ref()).await;
    state.metrics.observe_flush(&result);
    match result {
        Ok(r) => Json(serde_json::json!({
            "status": "success",
            "data": {
                "tenants": r.tenants,
                "files": r.files,
                "samples": r.rows,
                "logEntries": r.log_rows,
                "bytes": r.bytes,
                "walSegmentsRemoved": r.wal_segments_removed,
                "elapsedMs": r.elapsed.as_millis() as u64,
            }
        }))
        .into_response(),
        Err(e) => {
            ApiError::new(e.kind(), format!("flush failed: {e}"), Shape::Json).into_response()
        }
    }
}
