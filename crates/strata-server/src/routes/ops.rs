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
    let role = state.config.node.role;
    if !role.takes_writes() {
        // No WAL to replay: ready once serving (the tables were opened
        // before the listener took requests).
        return (StatusCode::OK, "Strata is Ready.\n");
    }
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

/// `/metrics`, open to scrapers: series naming a tenant (its name and
/// volume) only for an operator's token (or with auth off).
pub(super) async fn metrics(
    State(state): State<Arc<AppState>>,
    headers: axum::http::HeaderMap,
) -> impl IntoResponse {
    let (read, skipped) = state.query.line_index_blocks();
    state.metrics.set_line_index_blocks(read, skipped);
    state.metrics.set_limit_ingesters(state.limits.ingesters());
    let mut body = state.metrics.render(
        &state.storage,
        state.wal().map(|w| w.as_ref()),
        state.config.storage.compaction_delay,
    );
    if !state.auth.is_operator(&headers) {
        body = without_tenants(&body);
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
}

/// `POST /api/v1/admin/flush`: flushes the head now and reports what was
/// written: a tenant admin's token flushes its tenant, an operator's (or
/// any request with auth off) every tenant. Flushes otherwise run on their
/// own.
pub(super) async fn flush(
    State(state): State<Arc<AppState>>,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    use axum::Json;
    use strata_types::ErrorKind;

    use crate::error::{ApiError, Shape};

    let scope = match state.auth.admin_scope(&headers, Shape::Json) {
        Ok(scope) => scope,
        Err(e) => return e.into_response(),
    };
    let Some(wal) = state.wal() else {
        let role = state.config.node.role;
        let message = if role.takes_writes() {
            "not ready: replaying the WAL".to_owned()
        } else {
            format!("this node is a {role}: it holds no head to flush (ingesters do)")
        };
        return ApiError::new(ErrorKind::Unavailable, message, Shape::Json).into_response();
    };
    let result = match &scope {
        Some(tenant) => state.storage.flush_one(tenant).await,
        None => state.storage.flush(wal.as_ref()).await,
    };
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

/// OpenMetrics text without the samples that carry a `tenant` label (their
/// families' HELP and TYPE stay: a family may have no samples).
fn without_tenants(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let names_tenant = !line.starts_with('#')
            && line.split_once('{').is_some_and(|(_, labels)| {
                labels.starts_with("tenant=\"") || labels.contains(",tenant=\"")
            });
        if !names_tenant {
            out.push_str(line);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn tenant_samples_are_left_out() {
        let text = "# HELP a x\n# TYPE a counter\na_total{tenant=\"acme\"} 1\na_total{api=\"q\",tenant=\"acme\"} 2\nb 3\nc{route=\"/x\"} 4\n# EOF\n";
        assert_eq!(
            super::without_tenants(text),
            "# HELP a x\n# TYPE a counter\nb 3\nc{route=\"/x\"} 4\n# EOF\n"
        );
    }
}
