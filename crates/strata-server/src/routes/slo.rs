//! `GET /api/v1/slo` and `/api/v1/slo/<name>`: the asking tenant's SLOs
//! from the spec file (`slo.file`), evaluated now (or at `time`): SLI,
//! error budget left, burn rates and burn-rate alert states, per label
//! set of the SLO's queries. Answers in the Prometheus API envelope.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use strata_analytics::slo::{self, SloSpec, SpecFile};
use strata_query_lang::promql::{Engine, EngineConfig};
use strata_types::{ErrorKind, TenantId};

use super::prom::{Params, parse_time};
use crate::AppState;
use crate::auth::Role;
use crate::error::{ApiError, Shape};

const SHAPE: Shape = Shape::Json;

fn specs(state: &AppState) -> Result<SpecFile, ApiError> {
    match &state.config.slo.file {
        None => Ok(SpecFile::default()),
        // Read when asked for: edits apply without a restart; a broken
        // edit is reported, never half-applied.
        Some(path) => SpecFile::load(path)
            .map_err(|e| ApiError::new(ErrorKind::Unavailable, e.to_string(), SHAPE)),
    }
}

async fn evaluate(
    state: &Arc<AppState>,
    tenant: &TenantId,
    specs: Vec<SloSpec>,
    params: &Params,
) -> Result<Response, ApiError> {
    let t = match params.get("time") {
        Some(v) => parse_time(v).map_err(|e| {
            ApiError::new(
                ErrorKind::BadInput,
                format!("invalid parameter \"time\": {e}"),
                SHAPE,
            )
        })?,
        None => chrono::Utc::now().timestamp_millis(),
    };
    let _admitted = state.admit(tenant, "slo", SHAPE).await?;
    let cfg = &state.config.promql;
    let tenant_max = state.limits.of(tenant).max_query_samples;
    let engine = Engine::new(EngineConfig {
        lookback: cfg.lookback_delta,
        max_samples: if tenant_max > 0 {
            cfg.max_samples.min(tenant_max)
        } else {
            cfg.max_samples
        },
        max_points: cfg.max_points,
        ..EngineConfig::default()
    });
    let source = state
        .query
        .promql_source(tenant)
        .map_err(|e| ApiError::new(e.kind(), e.to_string(), SHAPE))?;
    let work = async {
        let mut out = Vec::new();
        for spec in &specs {
            let statuses = slo::evaluate(&engine, &source, spec, t)
                .await
                .map_err(|e| ApiError::new(ErrorKind::Unprocessable, e.to_string(), SHAPE))?;
            out.extend(statuses);
        }
        Ok::<_, ApiError>(out)
    };
    let out = tokio::time::timeout(cfg.timeout, work)
        .await
        .map_err(|_| ApiError::new(ErrorKind::Timeout, "SLO evaluation timed out", SHAPE))??;
    Ok(axum::Json(json!({"status": "success", "data": out})).into_response())
}

pub(super) async fn list(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let result = async {
        let tenant = state.tenant_for(&headers, Role::Read, SHAPE)?;
        let params = Params::new(raw, &headers, &Bytes::new());
        let file = specs(&state)?;
        let mine: Vec<SloSpec> = file.of_tenant(tenant.as_str()).cloned().collect();
        evaluate(&state, &tenant, mine, &params).await
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

pub(super) async fn one(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let result = async {
        let tenant = state.tenant_for(&headers, Role::Read, SHAPE)?;
        let params = Params::new(raw, &headers, &Bytes::new());
        let file = specs(&state)?;
        let Some(spec) = file
            .of_tenant(tenant.as_str())
            .find(|s| s.name == name)
            .cloned()
        else {
            return Err(ApiError::new(
                ErrorKind::NotFound,
                format!("tenant {tenant} has no SLO named {name:?}"),
                SHAPE,
            ));
        };
        evaluate(&state, &tenant, vec![spec], &params).await
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}
