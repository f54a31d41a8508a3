//! `POST /api/v1/sql`: `{"query": "..."}` → columns and rows as JSON.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use strata_types::ErrorKind;

use crate::auth::Role;
use crate::error::{ApiError, Shape};
use crate::{AppState, sql_json};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SqlRequest {
    query: String,
}

pub(super) async fn sql(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match run(&state, &headers, &body).await {
        Ok(json) => Json(json).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn run(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<serde_json::Value, ApiError> {
    let shape = Shape::Json;
    let tenant = state.tenant_for(headers, Role::Read, shape)?;
    let req: SqlRequest = serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            ErrorKind::BadInput,
            format!("body must be JSON like {{\"query\": \"SELECT ...\"}}: {e}"),
            shape,
        )
    })?;
    let _slot = state
        .limits
        .start_query(&tenant)
        .map_err(|r| state.refused(&tenant, r, shape))?;
    let _permit = state.scheduler.acquire(&tenant).await;
    let started = std::time::Instant::now();
    let out = state
        .query
        .sql(&tenant, &req.query)
        .await
        .map_err(|e| ApiError::new(e.kind(), e.to_string(), shape))?;
    state.record_query(&tenant, "sql", started.elapsed().as_secs_f64(), 0);
    sql_json::render(&out).map_err(|e| ApiError::new(ErrorKind::Internal, e.to_string(), shape))
}
