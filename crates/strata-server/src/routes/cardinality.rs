//! Mimir's cardinality API over a tenant's series in memory: which label
//! names and values hold the most series (`/api/v1/cardinality/label_names`,
//! `/api/v1/cardinality/label_values?label_names[]=…`). What a tenant's
//! operator looks at when its series limit bites.
//!
//! The heads are those the tenant's queries read: this node's (the one
//! taking writes and any being flushed) and, on a querier, its mirrors of
//! the ingesters' heads; a series in several counts once.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use strata_types::ErrorKind;

use strata_head::TenantHead;
use strata_types::TenantId;

use crate::AppState;
use crate::error::{ApiError, Shape};
use crate::frontend::Caller;

/// A series' label pairs.
type Pairs = Vec<(Arc<str>, Arc<str>)>;
/// A label's values with the series carrying each.
type Values = Vec<(Arc<str>, u64)>;

/// The tenant's heads as its queries see them.
fn heads(state: &AppState, tenant: &TenantId) -> Vec<Arc<TenantHead>> {
    state.storage.view(tenant).heads
}

/// Each series once over several heads, with its labels.
fn union(heads: &[Arc<TenantHead>]) -> HashMap<u64, Pairs> {
    let mut out = HashMap::new();
    for h in heads {
        for (id, labels) in h.series_labels_matching(&[]) {
            out.entry(id.0).or_insert(labels);
        }
    }
    out
}

/// Every label name with its number of distinct values and of series
/// carrying it.
fn name_cardinality(heads: &[Arc<TenantHead>]) -> Vec<(Arc<str>, u64, u64)> {
    match heads {
        [] => Vec::new(),
        [one] => one.label_name_cardinality(),
        _ => {
            let mut names: HashMap<Arc<str>, (HashSet<Arc<str>>, u64)> = HashMap::new();
            for labels in union(heads).into_values() {
                for (n, v) in labels {
                    let e = names.entry(n).or_default();
                    e.0.insert(v);
                    e.1 += 1;
                }
            }
            names
                .into_iter()
                .map(|(n, (values, series))| (n, values.len() as u64, series))
                .collect()
        }
    }
}

/// The series count and, per name, its values with the series carrying
/// each.
fn value_cardinality(heads: &[Arc<TenantHead>], names: &[&str]) -> (u64, Vec<Values>) {
    match heads {
        [] => (0, vec![Vec::new(); names.len()]),
        [one] => (
            one.series_count() as u64,
            names
                .iter()
                .map(|n| one.label_value_cardinality(n))
                .collect(),
        ),
        _ => {
            let series = union(heads);
            let mut per: Vec<HashMap<Arc<str>, u64>> = vec![HashMap::new(); names.len()];
            for labels in series.values() {
                for (i, name) in names.iter().enumerate() {
                    if let Some((_, v)) = labels.iter().find(|(n, _)| &**n == *name) {
                        *per[i].entry(Arc::clone(v)).or_default() += 1;
                    }
                }
            }
            (
                series.len() as u64,
                per.into_iter().map(|m| m.into_iter().collect()).collect(),
            )
        }
    }
}

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
        let mut names = name_cardinality(&heads(&state, &tenant));
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
        let (series_total, per_name) = value_cardinality(&heads(&state, &tenant), &names);
        let labels: Vec<_> = names
            .iter()
            .zip(per_name)
            .map(|(name, mut values)| {
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
