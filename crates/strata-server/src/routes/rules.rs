//! `/api/v1/rules` and `/api/v1/alerts` in Prometheus' shape, from the
//! ruler's last evaluated state of the tenant's groups (see
//! [`crate::ruler`]). Filters as Prometheus takes them: `type=alert|record`,
//! `rule_name[]`, `rule_group[]` (also `group_name[]`), `file[]`,
//! `exclude_alerts`.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Value as J, json};
use strata_analytics::rules::gofmt::format_e_shortest;
use strata_analytics::rules::group::{Alert, AlertState, Rule, RuleKind};

use super::prom::{Params, bad, envelope, reply};
use crate::AppState;
use crate::frontend::Caller;

/// Prometheus' time format; Go's zero time for "never".
fn time(ms: Option<i64>) -> String {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map_or("0001-01-01T00:00:00Z".into(), |t| {
            t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
        })
}

/// Seconds as Go writes a float64 (`60`, `1.5`).
fn secs(ms: i64) -> J {
    if ms % 1000 == 0 {
        json!(ms / 1000)
    } else {
        json!(ms as f64 / 1e3)
    }
}

fn map(m: impl IntoIterator<Item = (String, String)>) -> J {
    J::Object(m.into_iter().map(|(k, v)| (k, J::String(v))).collect())
}

fn alert_json(a: &Alert) -> J {
    let mut j = json!({
        "labels": map(a.labels.iter().map(|(k, v)| (k.to_string(), v.to_string()))),
        "annotations": map(a.annotations.clone()),
        "state": a.state.as_str(),
        "activeAt": time(Some(a.active_at_ms)),
        "value": format_e_shortest(a.value),
    });
    if let Some(since) = a.keep_firing_since_ms {
        j["keepFiringSince"] = json!(time(Some(since)));
    }
    j
}

fn active(r: &Rule) -> impl Iterator<Item = &Alert> {
    r.alerts()
        .into_iter()
        .filter(|a| a.state != AlertState::Inactive)
}

fn rule_json(r: &Rule, with_alerts: bool) -> J {
    let labels = map(r.def.labels.iter().map(|(k, v)| (k.clone(), v.0.clone())));
    let mut j = match &r.kind {
        RuleKind::Alerting {
            for_ms,
            keep_firing_for_ms,
            ..
        } => {
            let mut j = json!({
                "state": r.state().as_str(),
                "name": r.name(),
                "query": r.expr.to_string(),
                "duration": secs(*for_ms),
                "keepFiringFor": secs(*keep_firing_for_ms),
                "labels": labels,
                "annotations": map(r.def.annotations.iter().map(|(k, v)| (k.clone(), v.0.clone()))),
                "type": "alerting",
            });
            if with_alerts {
                j["alerts"] = J::Array(active(r).map(alert_json).collect());
            }
            j
        }
        RuleKind::Recording { .. } => json!({
            "name": r.name(),
            "query": r.expr.to_string(),
            "labels": labels,
            "type": "recording",
        }),
    };
    j["health"] = json!(r.health.as_str());
    if let Some(e) = &r.last_error {
        j["lastError"] = json!(e);
    }
    j["evaluationTime"] = json!(r.eval_seconds);
    j["lastEvaluation"] = json!(time(r.last_eval_ms));
    j
}

pub(super) async fn rules(
    State(state): State<Arc<AppState>>,
    Caller { tenant, .. }: Caller,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    if !state.config.node.compactors.is_empty() {
        return from_compactors(&state, &tenant, &headers, "/api/v1/rules", raw, "groups").await;
    }
    let params = Params::new(raw, &headers, &[]);
    reply((|| {
        let kind = match params.get("type") {
            None | Some("") => None,
            Some("alert") => Some(true),
            Some("record") => Some(false),
            Some(other) => {
                return Err(bad(format!(
                    "invalid type {other:?}: must be \"alert\" or \"record\""
                )));
            }
        };
        let exclude_alerts = match params.get("exclude_alerts") {
            None | Some("") | Some("false") => false,
            Some("true") => true,
            Some(other) => return Err(bad(format!("invalid exclude_alerts {other:?}"))),
        };
        let names = params.all("rule_name[]");
        let mut groups_wanted = params.all("rule_group[]");
        groups_wanted.extend(params.all("group_name[]"));
        let files = params.all("file[]");
        let mut out = Vec::new();
        for (key, g) in state.rules.of(&tenant) {
            if !groups_wanted.is_empty() && !groups_wanted.contains(&key.name.as_str()) {
                continue;
            }
            if !files.is_empty() && !files.contains(&key.namespace.as_str()) {
                continue;
            }
            let rules: Vec<J> = g
                .rules
                .iter()
                .filter(|r| {
                    let alerting = matches!(r.kind, RuleKind::Alerting { .. });
                    kind.is_none_or(|k| k == alerting)
                        && (names.is_empty() || names.contains(&r.name()))
                })
                .map(|r| rule_json(r, !exclude_alerts))
                .collect();
            // A filtered-out group is left out, as Prometheus does.
            if rules.is_empty() && (kind.is_some() || !names.is_empty()) {
                continue;
            }
            out.push(json!({
                "name": key.name,
                "file": key.namespace,
                "rules": rules,
                "interval": secs(g.interval_ms),
                "limit": g.def.limit,
                "evaluationTime": g.eval_seconds,
                "lastEvaluation": time(g.last_eval_ms),
            }));
        }
        Ok(envelope(json!({"groups": out}), Vec::new(), Vec::new()))
    })())
}

pub(super) async fn alerts(
    State(state): State<Arc<AppState>>,
    Caller { tenant, .. }: Caller,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    if !state.config.node.compactors.is_empty() {
        return from_compactors(&state, &tenant, &headers, "/api/v1/alerts", raw, "alerts").await;
    }
    let alerts: Vec<J> = state
        .rules
        .of(&tenant)
        .iter()
        .flat_map(|(_, g)| {
            g.rules
                .iter()
                .flat_map(active)
                .map(alert_json)
                .collect::<Vec<_>>()
        })
        .collect();
    envelope(json!({"alerts": alerts}), Vec::new(), Vec::new())
}

/// A querier's answer: what every compactor of `node.compactors` answers
/// at `path` for `tenant`, asked with the caller's own credentials (each
/// checks them as it checks any request), the `field` arrays of their
/// answers joined, each group or alert once (while the compactors' count
/// changes two may evaluate one tenant). A compactor that cannot be asked
/// leaves a warning naming it; a refusal (401, 403, 400) is answered as
/// the compactor gave it.
async fn from_compactors(
    state: &AppState,
    tenant: &strata_types::TenantId,
    headers: &HeaderMap,
    path: &str,
    raw: Option<String>,
    field: &'static str,
) -> Response {
    use axum::response::IntoResponse;
    let urls: Vec<String> = state
        .config
        .node
        .compactors
        .iter()
        .map(|base| {
            let mut url = format!("{}{path}", base.trim_end_matches('/'));
            if let Some(q) = raw.as_deref().filter(|q| !q.is_empty()) {
                url.push('?');
                url.push_str(q);
            }
            url
        })
        .collect();
    let auth = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let tenant = tenant.to_string();
    let answers = tokio::task::spawn_blocking(move || {
        let agent = crate::http_agent(std::time::Duration::from_secs(10));
        urls.into_iter()
            .map(|url| {
                let mut req = agent
                    .get(&url)
                    .header(crate::tenant::TENANT_HEADER, tenant.as_str());
                if let Some(a) = &auth {
                    req = req.header("Authorization", a.as_str());
                }
                let answer = req.call().map_err(|e| e.to_string()).and_then(|mut r| {
                    let status = r.status().as_u16();
                    r.body_mut()
                        .with_config()
                        .limit(64 << 20)
                        .read_to_string()
                        .map(|text| (status, text))
                        .map_err(|e| e.to_string())
                });
                (url, answer)
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default();
    let mut joined: Vec<J> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut warnings = Vec::new();
    for (url, answer) in answers {
        let parsed = answer.and_then(|(status, text)| {
            serde_json::from_str::<J>(&text)
                .map(|j| (status, j))
                .map_err(|e| format!("{status}: not JSON ({e})"))
        });
        match parsed {
            Ok((200, j)) => {
                for item in j["data"][field].as_array().into_iter().flatten() {
                    let key = if field == "groups" {
                        format!("{}\u{ff}{}", item["file"], item["name"])
                    } else {
                        item["labels"].to_string()
                    };
                    if seen.insert(key) {
                        joined.push(item.clone());
                    }
                }
            }
            Ok((status @ (400 | 401 | 403), j)) => {
                let mut resp = axum::Json(j).into_response();
                *resp.status_mut() = axum::http::StatusCode::from_u16(status)
                    .unwrap_or(axum::http::StatusCode::BAD_GATEWAY);
                return resp;
            }
            Ok((status, _)) => warnings.push(format!(
                "compactor {url} answered {status}: its tenants' {field} are missing"
            )),
            Err(error) => warnings.push(format!(
                "compactor {url} not reached ({error}): its tenants' {field} are missing"
            )),
        }
    }
    envelope(json!({ field: joined }), warnings, Vec::new())
}
