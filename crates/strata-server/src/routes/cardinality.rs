//! Mimir's cardinality API over a tenant's active head: which label names
//! and values hold the most series (`/api/v1/cardinality/label_names`,
//! `/api/v1/cardinality/label_values?label_names[]=…`). What a tenant's
//! operator looks at when its series limit bites.

use std::sync::Arc;

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use strata_types::ErrorKind;

use crate::AppState;
use crate::error::{ApiError, Shape};
use crate::frontend::Caller;

const SHAPE: Shape = Shape::Json;

fn params(raw: Option<String>) -> Vec<(String, String)> {
    raw.map(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .into_owned()
            .collect()
    })
    .unwrap_or_default()
}

fn limit(p: &[(String, String)]) -> Result<usize, ApiError> {
    match p.iter().find(|(k, _)| k == "limit") {
        None => Ok(20),
        Some((_, v)) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=500).contains(n))
            .ok_or_else(|| {
                ApiError::new(
                    ErrorKind::BadInput,
                    "limit must be between 1 and 500",
                    SHAPE,
                )
            }),
    }
}

pub(super) async fn label_names(
    State(state): State<Arc<AppState>>,
    Caller { tenant, .. }: Caller,
    RawQuery(raw): RawQuery,
) -> Response {
    let run = || -> Result<Response, ApiError> {
        let limit = limit(&params(raw))?;
        let mut names = state
            .head
            .tenant(&tenant)
            .map(|h| h.label_name_cardinality())
            .unwrap_or_default();
        let values_total: u64 = names.iter().map(|n| n.1).sum();
        let count = names.len();
        names.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let cardinality: Vec<_> = names
            .iter()
            .take(limit)
            .map(|(n, values, series)| json!({"label_name": &**n, "label_values_count": values, "series_count": series}))
            .collect();
        Ok(Json(json!({
            "label_values_count_total": values_total,
            "label_names_count": count,
            "cardinality": cardinality,
        }))
        .into_response())
    };
    run().unwrap_or_else(IntoResponse::into_response)
}

pub(super) async fn label_values(
    State(state): State<Arc<AppState>>,
    Caller { tenant, .. }: Caller,
    RawQuery(raw): RawQuery,
) -> Response {
    let run = || -> Result<Response, ApiError> {
        let p = params(raw);
        let limit = limit(&p)?;
        let names: Vec<&str> = p
            .iter()
            .filter(|(k, _)| k == "label_names[]")
            .map(|(_, v)| v.as_str())
            .collect();
        if names.is_empty() {
            return Err(ApiError::new(
                ErrorKind::BadInput,
                "label_names[] is required",
                SHAPE,
            ));
        }
        let head = state.head.tenant(&tenant);
        let series_total = head.as_ref().map_or(0, |h| h.series_count());
        let labels: Vec<_> = names
            .iter()
            .map(|name| {
                let mut values = head
                    .as_ref()
                    .map(|h| h.label_value_cardinality(name))
                    .unwrap_or_default();
                let series: u64 = values.iter().map(|v| v.1).sum();
                let count = values.len();
                values.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                let cardinality: Vec<_> = values
                    .iter()
                    .take(limit)
                    .map(|(v, n)| json!({"label_value": &**v, "series_count": n}))
                    .collect();
                json!({
                    "label_name": name,
                    "label_values_count": count,
                    "series_count": series,
                    "cardinality": cardinality,
                })
            })
            .collect();
        Ok(Json(json!({"series_count_total": series_total, "labels": labels})).into_response())
    };
    run().unwrap_or_else(IntoResponse::into_response)
}
