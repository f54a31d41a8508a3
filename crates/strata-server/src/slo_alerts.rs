//! SLOs evaluated in the background: recorded as series of the SLO's
//! tenant, and firing burn-rate alerts sent to Alertmanager (its v2 API).
//!
//! Every `slo.evaluation_interval` the spec file is read and each SLO
//! evaluated for its tenant. The results are written through the WAL like
//! any sample, so PromQL (and Grafana) see them and keep their history:
//! `strata_slo_sli`, `strata_slo_error_budget_remaining`,
//! `strata_slo_objective`, `strata_slo_burn_rate{window}` and
//! `strata_slo_alert_firing{severity, long_window, short_window}`, each
//! labelled `slo`, `business_process` and the SLO's own labels. With an
//! Alertmanager URL every firing burn-rate alert is also posted to
//! `<slo.alertmanager_url>/api/v2/alerts` with an end time a few intervals
//! ahead (so a Strata that stops sending lets them resolve), and an alert
//! that stopped firing is posted once more ending now (resolved). A failed
//! post is logged and retried at the next evaluation.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::{Value, json};
use strata_analytics::slo::{self, SloStatus, SpecFile};
use strata_query_lang::promql::{Engine, EngineConfig};
use strata_types::TenantId;
use tracing::{info, warn};

use crate::AppState;

/// The Alertmanager alert for one firing burn-rate alert of `status`.
fn alert(tenant: &TenantId, status: &SloStatus, i: usize) -> Option<(String, Value)> {
    let a = status.alerts.get(i).filter(|a| a.firing)?;
    let mut labels: BTreeMap<String, String> = status.labels.clone();
    labels.insert("alertname".into(), "SLOErrorBudgetBurn".into());
    labels.insert("slo".into(), status.name.clone());
    labels.insert("tenant".into(), tenant.to_string());
    labels.insert("severity".into(), a.severity.into());
    labels.insert("long_window".into(), a.long_window.clone());
    labels.insert("short_window".into(), a.short_window.clone());
    if let Some(p) = &status.business_process {
        labels.insert("business_process".into(), p.clone());
    }
    let burn = |w: &str| status.burn_rates.get(w).copied().unwrap_or(f64::NAN);
    let key = labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let body = json!({
        "labels": labels,
        "annotations": {
            "summary": format!(
                "SLO {} is burning its error budget {:.1}× too fast",
                status.name,
                burn(&a.long_window)
            ),
            "description": format!(
                "burn rate {:.2} over {} and {:.2} over {} (threshold {:.2}); objective {}, SLI {}, error budget left {}",
                burn(&a.long_window),
                a.long_window,
                burn(&a.short_window),
                a.short_window,
                a.threshold,
                status.objective,
                status.sli.map_or("-".into(), |s| format!("{s:.5}")),
                status
                    .error_budget_remaining
                    .map_or("-".into(), |b| format!("{:.1}%", b * 100.0)),
            ),
        },
    });
    Some((key, body))
}

/// The recorded series of one status, at `t_ms`.
fn recorded(status: &SloStatus, t_ms: i64) -> Vec<strata_types::SeriesSamples> {
    let mut base: BTreeMap<String, String> = status.labels.clone();
    base.insert("slo".into(), status.name.clone());
    if let Some(p) = &status.business_process {
        base.insert("business_process".into(), p.clone());
    }
    let series = |name: &str, extra: &[(&str, &str)], v: f64| {
        let mut labels = base.clone();
        labels.insert("__name__".into(), name.into());
        for (k, v) in extra {
            labels.insert((*k).into(), (*v).into());
        }
        let pairs: Vec<(&str, &str)> = labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        strata_types::SeriesSamples::try_from_pairs(&pairs, &[(t_ms, v)]).ok()
    };
    let mut out = Vec::new();
    out.extend(series("strata_slo_objective", &[], status.objective));
    if let Some(v) = status.sli {
        out.extend(series("strata_slo_sli", &[], v));
    }
    if let Some(v) = status.error_budget_remaining {
        out.extend(series("strata_slo_error_budget_remaining", &[], v));
    }
    for (w, v) in &status.burn_rates {
        out.extend(series("strata_slo_burn_rate", &[("window", w)], *v));
    }
    for a in &status.alerts {
        out.extend(series(
            "strata_slo_alert_firing",
            &[
                ("severity", a.severity),
                ("long_window", &a.long_window),
                ("short_window", &a.short_window),
            ],
            f64::from(u8::from(a.firing)),
        ));
    }
    out
}

/// Evaluates every SLO of the file, records the results in each SLO's
/// tenant; the firing alerts by key.
async fn firing(state: &AppState, file: &SpecFile) -> HashMap<String, Value> {
    let cfg = &state.config.promql;
    let engine = Engine::new(EngineConfig {
        lookback: cfg.lookback_delta,
        max_samples: cfg.max_samples,
        max_points: cfg.max_points,
        ..EngineConfig::default()
    });
    let mut out = HashMap::new();
    for spec in &file.slo {
        let Ok(tenant) = TenantId::try_new(&spec.tenant) else {
            warn!(slo = %spec.name, tenant = %spec.tenant, "SLO names an invalid tenant; skipped");
            continue;
        };
        let source = match state.query.promql_source(&tenant) {
            Ok(s) => s,
            Err(error) => {
                warn!(slo = %spec.name, %error, "SLO not evaluated");
                continue;
            }
        };
        let now = chrono::Utc::now().timestamp_millis();
        match slo::evaluate(&engine, &source, spec, now).await {
            Ok(statuses) => {
                let series: Vec<_> = statuses.iter().flat_map(|s| recorded(s, now)).collect();
                if let (Some(wal), false) = (state.wal(), series.is_empty()) {
                    let batch = std::sync::Arc::new(strata_types::WriteBatch::from_series(
                        tenant.clone(),
                        series,
                    ));
                    if let Err(error) = state.storage.write(wal.as_ref(), batch).await {
                        warn!(slo = %spec.name, %error, "SLO results not recorded");
                    }
                }
                for s in &statuses {
                    for i in 0..s.alerts.len() {
                        if let Some((k, v)) = alert(&tenant, s, i) {
                            out.insert(k, v);
                        }
                    }
                }
            }
            Err(error) => warn!(slo = %spec.name, %error, "SLO not evaluated"),
        }
    }
    out
}

/// Runs until `stop` changes; nothing to do without a spec file and an
/// Alertmanager URL.
pub(crate) async fn run(state: Arc<AppState>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let Some(path) = state.config.slo.file.clone() else {
        return;
    };
    let endpoint = state
        .config
        .slo
        .alertmanager_url
        .as_ref()
        .map(|url| format!("{}/api/v2/alerts", url.trim_end_matches('/')));
    let interval = state
        .config
        .slo
        .evaluation_interval
        .max(std::time::Duration::from_secs(1));
    let hold = chrono::Duration::from_std(interval * 4).unwrap_or(chrono::Duration::minutes(4));
    // Key → (alert, when it started firing).
    let mut active: HashMap<String, (Value, chrono::DateTime<chrono::Utc>)> = HashMap::new();
    let mut tick = tokio::time::interval(interval);
    info!(
        alertmanager = endpoint.as_deref().unwrap_or("none"),
        interval_s = interval.as_secs_f64(),
        "evaluating SLOs in the background"
    );
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let file = match SpecFile::load(&path) {
            Ok(f) => f,
            Err(error) => {
                warn!(%error, "SLO file unreadable; alerts not evaluated this round");
                continue;
            }
        };
        let now = chrono::Utc::now();
        let firing = firing(&state, &file).await;
        let mut batch = Vec::new();
        for (key, alert) in &firing {
            let started = active.get(key).map_or(now, |(_, s)| *s);
            active.insert(key.clone(), (alert.clone(), started));
            let mut a = alert.clone();
            a["startsAt"] = json!(started.to_rfc3339());
            a["endsAt"] = json!((now + hold).to_rfc3339());
            batch.push(a);
        }
        let resolved: Vec<String> = active
            .keys()
            .filter(|k| !firing.contains_key(*k))
            .cloned()
            .collect();
        for key in resolved {
            if let Some((alert, started)) = active.remove(&key) {
                let mut a = alert;
                a["startsAt"] = json!(started.to_rfc3339());
                a["endsAt"] = json!(now.to_rfc3339());
                batch.push(a);
            }
        }
        let Some(target) = endpoint.clone() else {
            continue;
        };
        let target_shown = target.clone();
        if batch.is_empty() {
            continue;
        }
        let body = Value::Array(batch).to_string();
        let sent = tokio::task::spawn_blocking(move || {
            let agent = ureq::Agent::new_with_config(
                ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .timeout_global(Some(std::time::Duration::from_secs(10)))
                    .build(),
            );
            agent
                .post(&target)
                .header("Content-Type", "application/json")
                .send(body.as_bytes())
                .map(|r| r.status().as_u16())
                .map_err(|e| e.to_string())
        })
        .await;
        match sent {
            Ok(Ok(200..=299)) => {}
            Ok(Ok(status)) => {
                warn!(endpoint = %target_shown, status, "Alertmanager refused the SLO alerts; retrying next round")
            }
            Ok(Err(error)) => {
                warn!(endpoint = %target_shown, %error, "Alertmanager unreachable; retrying next round")
            }
            Err(error) => warn!(%error, "alert sender task failed"),
        }
    }
}
