//! Alerts to Alertmanager's v2 API, as Prometheus' notifier sends them:
//! a firing alert starts at its firing time and ends four evaluation
//! intervals (or resend delays) ahead, so a ruler that stops sending lets
//! it resolve; a resolved alert ends when it resolved. External labels are
//! added where the alert has no label of that name. Each tenant's alerts
//! carry `X-Scope-OrgID` for a multi-tenant Alertmanager; the tenant's
//! `ruler_alertmanager_url` replaces the server's `rules.alertmanager_urls`.
//! A failed post is logged and counted; the alert is sent again at its next
//! resend.

use std::sync::Arc;

use serde_json::{Value, json};
use strata_analytics::rules::{Alert, Group};
use strata_types::TenantId;
use tracing::warn;

use crate::AppState;

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The v2 API's body for `alerts` of a rule of `group`.
fn body(state: &AppState, group: &Group, alerts: &[Alert]) -> Value {
    let cfg = &state.config.rules;
    let list: Vec<Value> = alerts
        .iter()
        .map(|a| {
            let mut labels: serde_json::Map<String, Value> = a
                .labels
                .iter()
                .map(|(k, v)| (k.to_string(), json!(v)))
                .collect();
            for (k, v) in &cfg.external_labels {
                labels.entry(k.clone()).or_insert_with(|| json!(v));
            }
            let rule = a.labels.get("alertname").unwrap_or("");
            let expr = group
                .rules
                .iter()
                .find(|r| r.name() == rule)
                .map(|r| r.expr.to_string())
                .unwrap_or_default();
            let generator = format!(
                "{}/graph?g0.expr={}&g0.tab=1",
                state.config.rules_external_url(),
                url::form_urlencoded::byte_serialize(expr.as_bytes()).collect::<String>()
            );
            let ends = a.resolved_at_ms.unwrap_or(a.valid_until_ms);
            json!({
                "labels": labels,
                "annotations": a.annotations,
                "startsAt": rfc3339(a.fired_at_ms.unwrap_or(a.active_at_ms)),
                "endsAt": rfc3339(ends),
                "generatorURL": generator,
            })
        })
        .collect();
    Value::Array(list)
}

/// Posts `alerts` to the tenant's Alertmanagers in the background.
pub(super) fn send(state: &Arc<AppState>, tenant: &TenantId, group: &Group, alerts: Vec<Alert>) {
    let override_url = state.limits.of(tenant).ruler_alertmanager_url;
    let urls: Vec<String> = if override_url.is_empty() {
        state.config.rules.alertmanager_urls.clone()
    } else {
        vec![override_url]
    };
    if urls.is_empty() {
        return;
    }
    let payload = body(state, group, &alerts).to_string();
    let state = Arc::clone(state);
    let tenant = tenant.clone();
    tokio::task::spawn_blocking(move || {
        let agent = crate::http_agent(std::time::Duration::from_secs(10));
        for url in urls {
            let endpoint = format!("{}/api/v2/alerts", url.trim_end_matches('/'));
            let sent = agent
                .post(&endpoint)
                .header("Content-Type", "application/json")
                .header("X-Scope-OrgID", tenant.as_str())
                .send(payload.as_bytes())
                .map(|r| r.status().as_u16());
            let result = match sent {
                Ok(200..=299) => "sent",
                Ok(status) => {
                    warn!(%tenant, endpoint, status, "Alertmanager refused the alerts");
                    "refused"
                }
                Err(error) => {
                    warn!(%tenant, endpoint, %error, "Alertmanager unreachable");
                    "unreachable"
                }
            };
            state
                .metrics
                .rule_notifications
                .get_or_create(&vec![
                    ("tenant", tenant.to_string()),
                    ("result", result.to_string()),
                ])
                .inc_by(alerts.len() as u64);
        }
    });
}
