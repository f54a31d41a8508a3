//! The ruler configuration API of Mimir and Cortex, per tenant, so
//! `mimirtool rules list/sync/diff` and Grafana's rule editor for a Mimir
//! data source manage Strata's rules. Served under `/prometheus/config/v1`
//! (mimirtool's default) and `/config/v1` (a data source whose URL is the
//! server's root):
//!
//! - `GET  …/rules`: every stored group, YAML `namespace: [groups]`
//!   (404 `no rule groups found` when none);
//! - `GET  …/rules/{namespace}`: that namespace's groups (404 when none);
//! - `GET  …/rules/{namespace}/{group}`: the group's YAML (404);
//! - `POST …/rules/{namespace}`: a group's YAML, checked as `promtool
//!   check rules` checks it and against the tenant's `ruler_max_rule_groups`
//!   and `ruler_max_rules_per_group`, created or replaced (202);
//! - `DELETE …/rules/{namespace}/{group}` and `…/rules/{namespace}` (202,
//!   404 when absent).
//!
//! Groups are stored in the object store under the tenant's prefix
//! ([`strata_storage::rule_store`]); the ruler loads them beside the rules
//! directory's (a directory group of the same namespace and name wins) and
//! reloads at once after a change — on a querier, the compactors that
//! evaluate the rules are told (`POST /api/v1/internal/rules-changed`,
//! with the caller's credentials), as Mimir's rulers are. Writing takes
//! the admin role. Errors are plain text, as Mimir answers them.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use strata_analytics::rules::RuleGroup;
use strata_storage::{RuleGroupPath, rule_store};
use strata_types::{ErrorKind, TenantId};

use crate::AppState;
use crate::error::{ApiError, Shape};
use crate::frontend::{Admin, Caller};

const SHAPE: Shape = Shape::PlainText;

/// One edit at a time, so the group limit holds under concurrent posts.
static EDIT: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn not_found(what: &str) -> ApiError {
    ApiError::new(ErrorKind::NotFound, what, SHAPE)
}

fn stored(e: strata_storage::StorageError) -> ApiError {
    ApiError::new(e.kind(), format!("rule store: {e}"), SHAPE)
}

fn yaml<T: serde::Serialize>(v: &T) -> Response {
    match serde_norway::to_string(v) {
        Ok(text) => ([(header::CONTENT_TYPE, "application/yaml")], text).into_response(),
        Err(e) => ApiError::new(ErrorKind::Internal, format!("YAML: {e}"), SHAPE).into_response(),
    }
}

fn accepted() -> Response {
    (
        StatusCode::ACCEPTED,
        axum::Json(
            serde_json::json!({"status": "success", "data": null, "errorType": "", "error": ""}),
        ),
    )
        .into_response()
}

/// The tenant's stored groups, parsed, by namespace.
async fn groups(
    state: &AppState,
    tenant: &TenantId,
) -> Result<BTreeMap<String, Vec<RuleGroup>>, ApiError> {
    let mut out: BTreeMap<String, Vec<RuleGroup>> = BTreeMap::new();
    for (path, bytes) in rule_store::list(state.storage.store(), tenant)
        .await
        .map_err(stored)?
    {
        let text = String::from_utf8_lossy(&bytes);
        match serde_norway::from_str::<RuleGroup>(&text) {
            Ok(g) => out.entry(path.namespace).or_default().push(g),
            Err(error) => {
                tracing::warn!(%tenant, namespace = path.namespace, group = path.group, %error, "stored rule group unreadable; left out");
            }
        }
    }
    Ok(out)
}

pub(super) async fn list_all(
    State(state): State<Arc<AppState>>,
    Caller { tenant, .. }: Caller,
) -> Response {
    match groups(&state, &tenant).await {
        Ok(g) if g.is_empty() => not_found("no rule groups found").into_response(),
        Ok(g) => yaml(&g),
        Err(e) => e.into_response(),
    }
}

pub(super) async fn list_namespace(
    State(state): State<Arc<AppState>>,
    Caller { tenant, .. }: Caller,
    UrlPath(namespace): UrlPath<String>,
) -> Response {
    match groups(&state, &tenant).await {
        Ok(mut g) => match g.remove(&namespace) {
            Some(list) => yaml(&BTreeMap::from([(namespace, list)])),
            None => not_found("no rule groups found").into_response(),
        },
        Err(e) => e.into_response(),
    }
}

pub(super) async fn get_group(
    State(state): State<Arc<AppState>>,
    Caller { tenant, .. }: Caller,
    UrlPath((namespace, group)): UrlPath<(String, String)>,
) -> Response {
    match groups(&state, &tenant).await {
        Ok(mut g) => match g
            .remove(&namespace)
            .and_then(|list| list.into_iter().find(|x| x.name == group))
        {
            Some(found) => yaml(&found),
            None => not_found("group does not exist").into_response(),
        },
        Err(e) => e.into_response(),
    }
}

pub(super) async fn set_group(
    State(state): State<Arc<AppState>>,
    Caller { tenant, .. }: Caller<Admin>,
    headers: HeaderMap,
    UrlPath(namespace): UrlPath<String>,
    body: Bytes,
) -> Response {
    async {
        let bad = |m: String| ApiError::new(ErrorKind::BadInput, m, SHAPE);
        let text = std::str::from_utf8(&body).map_err(|_| bad("the body is not UTF-8".into()))?;
        let group: RuleGroup = serde_norway::from_str(text).map_err(|e| bad(e.to_string()))?;
        group.check().map_err(|e| bad(e.to_string()))?;
        let limits = state.limits.of(&tenant);
        if limits.ruler_max_rules_per_group > 0
            && group.rules.len() > limits.ruler_max_rules_per_group
        {
            return Err(bad(format!(
                "per-user rules per rule group limit (limit: {}) exceeded",
                limits.ruler_max_rules_per_group
            )));
        }
        let path = RuleGroupPath {
            tenant: tenant.clone(),
            namespace,
            group: group.name.clone(),
        };
        // Counted from the listing: the groups' bodies are not read.
        let _one = EDIT.lock().await;
        let stored_paths = rule_store::versions(state.storage.store(), &tenant)
            .await
            .map_err(stored)?;
        let replaces = stored_paths.iter().any(|(p, _)| *p == path);
        let limit = limits.ruler_max_rule_groups;
        let over = || {
            bad(format!(
                "per-user rule groups limit (limit: {limit}) exceeded"
            ))
        };
        if !replaces && limit > 0 && stored_paths.len() >= limit {
            return Err(over());
        }
        let yaml = serde_norway::to_string(&group)
            .map_err(|e| ApiError::new(ErrorKind::Internal, format!("YAML: {e}"), SHAPE))?;
        rule_store::put(state.storage.store(), &path, Bytes::from(yaml))
            .await
            .map_err(stored)?;
        // The lock is this process's: another node may have added a group
        // since the listing. Counted again with this one in, a group past
        // the limit is taken back. Of groups racing, the last to be counted
        // saw every one kept before it, so the groups kept never pass the
        // limit (racing posts may all be refused; a retry passes).
        if !replaces && limit > 0 {
            let now = match rule_store::versions(state.storage.store(), &tenant).await {
                Ok(now) => now,
                Err(e) => {
                    // Not counted: not kept (as far as the store lets us).
                    let _ = rule_store::delete(state.storage.store(), &path).await;
                    return Err(stored(e));
                }
            };
            if now.len() > limit {
                rule_store::delete(state.storage.store(), &path)
                    .await
                    .map_err(stored)?;
                return Err(over());
            }
        }
        changed(&state, &tenant, &headers);
        Ok(accepted())
    }
    .await
    .unwrap_or_else(IntoResponse::into_response)
}

pub(super) async fn delete_group(
    State(state): State<Arc<AppState>>,
    Caller { tenant, .. }: Caller<Admin>,
    headers: HeaderMap,
    UrlPath((namespace, group)): UrlPath<(String, String)>,
) -> Response {
    let _one = EDIT.lock().await;
    let path = RuleGroupPath {
        tenant: tenant.clone(),
        namespace,
        group,
    };
    match rule_store::delete(state.storage.store(), &path).await {
        Ok(true) => {
            changed(&state, &tenant, &headers);
            accepted()
        }
        Ok(false) => not_found("group does not exist").into_response(),
        Err(e) => stored(e).into_response(),
    }
}

pub(super) async fn delete_namespace(
    State(state): State<Arc<AppState>>,
    Caller { tenant, .. }: Caller<Admin>,
    headers: HeaderMap,
    UrlPath(namespace): UrlPath<String>,
) -> Response {
    let _one = EDIT.lock().await;
    let listed = match rule_store::versions(state.storage.store(), &tenant).await {
        Ok(l) => l,
        Err(e) => return stored(e).into_response(),
    };
    let mut any = false;
    for (path, _) in listed.into_iter().filter(|(p, _)| p.namespace == namespace) {
        if let Err(e) = rule_store::delete(state.storage.store(), &path).await {
            return stored(e).into_response();
        }
        any = true;
    }
    if !any {
        return not_found("group namespace does not exist").into_response();
    }
    changed(&state, &tenant, &headers);
    accepted()
}

/// A stored group changed: this node's ruler reloads now, and so do the
/// compactors of `node.compactors` (which evaluate the rules in the split
/// roles; asked in the background with the caller's credentials, a
/// compactor that misses it reads the store within
/// `rules.store_poll_interval`).
fn changed(state: &AppState, tenant: &TenantId, headers: &HeaderMap) {
    state.rules.changed();
    let compactors = state.config.node.compactors.clone();
    if compactors.is_empty() {
        return;
    }
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let tenant = tenant.to_string();
    tokio::task::spawn_blocking(move || {
        let agent = crate::http_agent(std::time::Duration::from_secs(10));
        for base in compactors {
            let url = format!(
                "{}/api/v1/internal/rules-changed",
                base.trim_end_matches('/')
            );
            let mut req = agent
                .post(&url)
                .header(crate::tenant::TENANT_HEADER, tenant.as_str());
            if let Some(a) = &auth {
                req = req.header("Authorization", a.as_str());
            }
            match req.send_empty().map(|r| r.status().as_u16()) {
                Ok(204) => {}
                Ok(status) => {
                    tracing::warn!(compactor = %base, status, "compactor not told of a rule change; it reads the store at its next poll")
                }
                Err(error) => {
                    tracing::warn!(compactor = %base, %error, "compactor not told of a rule change; it reads the store at its next poll")
                }
            }
        }
    });
}

/// `POST /api/v1/internal/rules-changed` (the tenant's admin role): a
/// querier tells the compactor that a stored group of the tenant changed;
/// its ruler reloads now.
pub(super) async fn rules_changed(
    State(state): State<Arc<AppState>>,
    _caller: Caller<Admin>,
) -> Response {
    state.rules.changed();
    StatusCode::NO_CONTENT.into_response()
}
