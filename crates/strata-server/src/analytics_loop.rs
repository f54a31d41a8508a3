//! Analytics evaluated in the background, every `slo.evaluation_interval`:
//!
//! - Strata's own usage, per tenant, recorded into the usage tenant
//!   (`slo.usage_tenant`, default `_strata`) as `strata_tenant_*{tenant}`
//!   series: the history `/api/v1/neighbours/usage` ranks tenants by.
//! - Every spec of the spec file, evaluated for its tenant in one of its
//!   internal query slots (`ruler_max_concurrent_queries`, apart from
//!   its dashboards'; the fair scheduler, its sample
//!   limit) and written through the write path remote write takes (its
//!   limits, the WAL, usage), so PromQL (and Grafana) see them and keep
//!   their history:
//!   - SLOs: `strata_slo_sli`, `strata_slo_error_budget_remaining`,
//!     `strata_slo_good_rate5m` and `strata_slo_total_rate5m` (windows of
//!     a day and more are summed from these once they cover them),
//!     `strata_slo_objective`, `strata_slo_burn_rate{window}` and
//!     `strata_slo_alert_firing{severity, long_window, short_window}`,
//!     labelled `slo`, `business_process` and the SLO's own labels;
//!   - capacity: `strata_capacity_seconds_left{bound="estimate|earliest|latest"}`,
//!     `strata_capacity_utilisation`, `strata_capacity_limit`,
//!     `strata_capacity_trend_per_day` and `strata_capacity_rank`, labelled
//!     `capacity`, `business_process` and the usage series' labels;
//!   - neighbours: `strata_neighbour_share`, `strata_neighbour_baseline_share`,
//!     `strata_neighbour_ratio`, `strata_neighbour_blame` and
//!     `strata_neighbour_rank`, labelled `neighbours`, the workload label and
//!     `workload`;
//!     `strata_neighbour_contention` per spec.
//! - With an Alertmanager URL every firing burn-rate alert is posted to
//!   `<slo.alertmanager_url>/api/v2/alerts` with an end time a few
//!   intervals ahead (so a Strata that stops sending lets them resolve),
//!   and an alert that stopped firing is posted once more ending now
//!   (resolved). A failed post is logged and retried at the next round.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::{Value, json};
use strata_analytics::capacity::{self, CapacitySpec, Forecast};
use strata_analytics::neighbours::{self, NeighbourSpec, Report};
use strata_analytics::slo::{self, SloStatus};
use strata_analytics::spec::SpecFile;
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

/// Builds recorded series sharing `base` labels, at one instant.
struct Recorder {
    base: BTreeMap<String, String>,
    t_ms: i64,
    out: Vec<strata_types::SeriesSamples>,
}

impl Recorder {
    fn new(base: BTreeMap<String, String>, t_ms: i64) -> Self {
        Recorder {
            base,
            t_ms,
            out: Vec::new(),
        }
    }

    fn add(&mut self, name: &str, extra: &[(&str, &str)], v: f64) {
        if !v.is_finite() {
            return;
        }
        let mut labels = self.base.clone();
        labels.insert("__name__".into(), name.into());
        for (k, v) in extra {
            labels.insert((*k).into(), (*v).into());
        }
        let pairs: Vec<(&str, &str)> = labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.out
            .extend(strata_types::SeriesSamples::try_from_pairs(&pairs, &[(self.t_ms, v)]).ok());
    }
}

fn with_process(
    mut labels: BTreeMap<String, String>,
    kind: &str,
    name: &str,
    process: &Option<String>,
) -> BTreeMap<String, String> {
    labels.insert(kind.into(), name.into());
    if let Some(p) = process {
        labels.insert("business_process".into(), p.clone());
    }
    labels
}

/// The recorded series of one SLO status.
fn recorded(status: &SloStatus, t_ms: i64) -> Vec<strata_types::SeriesSamples> {
    let base = with_process(
        status.labels.clone(),
        "slo",
        &status.name,
        &status.business_process,
    );
    let mut r = Recorder::new(base, t_ms);
    r.add("strata_slo_objective", &[], status.objective);
    if let Some(v) = status.sli {
        r.add("strata_slo_sli", &[], v);
    }
    if let Some(v) = status.error_budget_remaining {
        r.add("strata_slo_error_budget_remaining", &[], v);
    }
    // What long windows are summed from (strata_analytics::slo).
    if let (Some(g), Some(t)) = (status.good_rate_5m, status.total_rate_5m) {
        r.add(slo::GOOD_RATE_5M, &[], g);
        r.add(slo::TOTAL_RATE_5M, &[], t);
    }
    for (w, v) in &status.burn_rates {
        r.add("strata_slo_burn_rate", &[("window", w)], *v);
    }
    for a in &status.alerts {
        r.add(
            "strata_slo_alert_firing",
            &[
                ("severity", a.severity),
                ("long_window", &a.long_window),
                ("short_window", &a.short_window),
            ],
            f64::from(u8::from(a.firing)),
        );
    }
    r.out
}

/// The recorded series of one capacity forecast.
fn recorded_forecast(f: &Forecast, t_ms: i64) -> Vec<strata_types::SeriesSamples> {
    let base = with_process(f.labels.clone(), "capacity", &f.name, &f.business_process);
    let mut r = Recorder::new(base, t_ms);
    let left = |ms: Option<i64>| ms.map(|ms| (ms - t_ms) as f64 / 1_000.0);
    for (bound, v) in [
        ("estimate", f.seconds_left),
        ("earliest", left(f.earliest_ms)),
        ("latest", left(f.latest_ms)),
    ] {
        if let Some(v) = v {
            r.add("strata_capacity_seconds_left", &[("bound", bound)], v);
        }
    }
    if let Some(v) = f.utilisation {
        r.add("strata_capacity_utilisation", &[], v);
    }
    if let Some(v) = f.limit {
        r.add("strata_capacity_limit", &[], v);
    }
    if let Some(v) = f.trend_per_day {
        r.add("strata_capacity_trend_per_day", &[], v);
    }
    r.add("strata_capacity_rank", &[], f.rank as f64);
    r.out
}

/// The recorded series of one neighbours report.
fn recorded_neighbours(rep: &Report, t_ms: i64) -> Vec<strata_types::SeriesSamples> {
    let base = with_process(
        BTreeMap::new(),
        "neighbours",
        &rep.name,
        &rep.business_process,
    );
    let mut r = Recorder::new(base, t_ms);
    r.add(
        "strata_neighbour_contention",
        &[],
        f64::from(u8::from(rep.contention)),
    );
    for w in &rep.workloads {
        // The workload under its own label and under `workload`, so one
        // dashboard fits every spec.
        let l = [
            (rep.by.as_str(), w.workload.as_str()),
            ("workload", w.workload.as_str()),
        ];
        r.add("strata_neighbour_share", &l, w.share);
        r.add("strata_neighbour_baseline_share", &l, w.baseline_share);
        r.add("strata_neighbour_blame", &l, w.blame);
        r.add("strata_neighbour_rank", &l, w.rank as f64);
        if let Some(v) = w.ratio {
            r.add("strata_neighbour_ratio", &l, v);
        }
    }
    r.out
}

/// Strata's own usage of every tenant but the usage tenant itself, as
/// series of the usage tenant.
fn recorded_usage(
    state: &AppState,
    usage_tenant: &TenantId,
    t_ms: i64,
) -> Vec<strata_types::SeriesSamples> {
    let mut tenants: BTreeMap<TenantId, strata_query::usage::Counters> =
        state.query.usage().all().into_iter().collect();
    for t in state.storage.head().tenants() {
        tenants.entry(t).or_default();
    }
    tenants.remove(usage_tenant);
    let stored: HashMap<TenantId, u64> = state
        .storage
        .table_stats()
        .into_iter()
        .map(|(t, _, bytes, _)| (t, bytes))
        .collect();
    let mut out = Vec::new();
    for (tenant, c) in tenants {
        let mut r = Recorder::new(
            BTreeMap::from([("tenant".into(), tenant.to_string())]),
            t_ms,
        );
        r.add(
            "strata_tenant_samples_ingested_total",
            &[],
            c.samples_ingested as f64,
        );
        r.add(
            "strata_tenant_ingested_bytes_total",
            &[],
            c.bytes_ingested as f64,
        );
        r.add("strata_tenant_queries_total", &[], c.queries as f64);
        r.add("strata_tenant_query_seconds_total", &[], c.query_seconds);
        r.add(
            "strata_tenant_query_samples_total",
            &[],
            c.query_samples as f64,
        );
        r.add(
            "strata_tenant_log_bytes_ingested_total",
            &[],
            c.log_bytes_ingested as f64,
        );
        let active = state
            .storage
            .head()
            .tenant(&tenant)
            .map_or(0, |h| h.series_count());
        r.add("strata_tenant_active_series", &[], active as f64);
        r.add(
            "strata_tenant_stored_bytes",
            &[],
            stored.get(&tenant).copied().unwrap_or(0) as f64,
        );
        out.extend(r.out);
    }
    out
}

/// Writes recorded series into `tenant` through the write path remote
/// write takes (the tenant's limits, the WAL, usage).
async fn record(
    state: &AppState,
    tenant: &TenantId,
    series: Vec<strata_types::SeriesSamples>,
    what: &str,
) {
    if series.is_empty() {
        return;
    }
    if let Err(e) = crate::frontend::write::write_internal(state, tenant, series).await {
        warn!(%tenant, what, error = e.message, "analytics results not recorded");
    }
}

/// An internal query slot of `tenant` (its `ruler_max_concurrent_queries`,
/// then its turn in the fair scheduler); `None` (logged) when refused.
async fn slot(
    state: &Arc<AppState>,
    tenant: &TenantId,
    what: &str,
) -> Option<crate::frontend::query::Admitted> {
    match state
        .admit(
            tenant,
            crate::frontend::query::INTERNAL_ANALYTICS,
            crate::error::Shape::Json,
        )
        .await
    {
        Ok(a) => Some(a),
        Err(e) => {
            warn!(%tenant, what, error = e.message, "analytics not evaluated this round");
            None
        }
    }
}

/// Evaluates every SLO of the file, records the results in each SLO's
/// tenant; the firing alerts by key.
async fn firing(state: &Arc<AppState>, file: &SpecFile) -> HashMap<String, Value> {
    let mut out = HashMap::new();
    for spec in &file.slo {
        if !state.config.node.evaluates(&spec.tenant) {
            // Another compactor's tenant.
            continue;
        }
        let Ok(tenant) = TenantId::try_new(&spec.tenant) else {
            warn!(slo = %spec.name, tenant = %spec.tenant, "SLO names an invalid tenant; skipped");
            continue;
        };
        let engine = state.promql_engine(Some(&tenant), state.config.promql.lookback_delta);
        let Some(admitted) = slot(state, &tenant, "SLO").await else {
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
        let interval = Some(state.config.slo.evaluation_interval);
        let sql = crate::sql_analytics::TenantSql {
            engine: state.query.clone(),
            tenant: tenant.clone(),
        };
        let evaluated = slo::evaluate(&engine, &source, spec, now, interval, Some(&sql)).await;
        drop(admitted);
        match evaluated {
            Ok(statuses) => {
                let series = statuses.iter().flat_map(|s| recorded(s, now)).collect();
                record(state, &tenant, series, "SLO").await;
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

/// Evaluates and records every capacity and neighbours spec of the file.
async fn evaluate_specs(state: &Arc<AppState>, file: &SpecFile) {
    let tenants = file
        .capacity
        .iter()
        .map(|s| &s.tenant)
        .chain(file.neighbours.iter().map(|s| &s.tenant));
    let mut seen = std::collections::BTreeSet::new();
    for name in tenants {
        if !seen.insert(name) || !state.config.node.evaluates(name) {
            continue;
        }
        let Ok(tenant) = TenantId::try_new(name) else {
            warn!(tenant = %name, "analytics spec names an invalid tenant; skipped");
            continue;
        };
        let engine = state.promql_engine(Some(&tenant), state.config.promql.lookback_delta);
        let Some(admitted) = slot(state, &tenant, "capacity and neighbours").await else {
            continue;
        };
        let source = match state.query.promql_source(&tenant) {
            Ok(s) => s,
            Err(error) => {
                warn!(%tenant, %error, "analytics specs not evaluated");
                continue;
            }
        };
        let now = chrono::Utc::now().timestamp_millis();
        let mut forecasts = Vec::new();
        for spec in file.of::<CapacitySpec>(name) {
            match capacity::evaluate(&engine, &source, spec, now, false).await {
                Ok(f) => forecasts.extend(f),
                Err(error) => warn!(%error, "capacity not evaluated"),
            }
        }
        // Ranked across the tenant's resources, as the API ranks them.
        capacity::rank(&mut forecasts);
        let mut series: Vec<_> = forecasts
            .iter()
            .flat_map(|f| recorded_forecast(f, now))
            .collect();
        for spec in file.of::<NeighbourSpec>(name) {
            match neighbours::evaluate(&engine, &source, spec, now, false).await {
                Ok(r) => series.extend(recorded_neighbours(&r, now)),
                Err(error) => warn!(%error, "neighbours not evaluated"),
            }
        }
        drop(admitted);
        record(state, &tenant, series, "capacity and neighbours").await;
    }
}

/// Runs until `stop` changes; nothing to do without a spec file or a
/// usage tenant.
pub(crate) async fn run(state: Arc<AppState>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let path = state.config.slo.file.clone();
    // Usage counters are each process's own: only the single server has
    // every tenant's (the split roles show theirs on `/metrics`).
    let usage_tenant = TenantId::try_new(&state.config.slo.usage_tenant)
        .ok()
        .filter(|_| state.config.node.role == crate::config::Role::All);
    if path.is_none() && usage_tenant.is_none() {
        return;
    }
    if !crate::ruler::ready_to_evaluate(&state, &mut stop).await {
        return;
    }
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
        usage_tenant = usage_tenant.as_ref().map_or("none", |t| t.as_str()),
        specs = path
            .as_ref()
            .map_or("none".into(), |p| p.display().to_string()),
        "evaluating analytics in the background"
    );
    // The first tick is immediate: usage is first recorded an interval in.
    let mut first = true;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        if let (Some(t), false) = (&usage_tenant, first) {
            let series = recorded_usage(&state, t, chrono::Utc::now().timestamp_millis());
            record(&state, t, series, "usage").await;
        }
        first = false;
        let Some(path) = &path else {
            continue;
        };
        let file = match SpecFile::load(path) {
            Ok(f) => f,
            Err(error) => {
                warn!(%error, "analytics spec file unreadable; not evaluated this round");
                continue;
            }
        };
        evaluate_specs(&state, &file).await;
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
            let agent = crate::http_agent(std::time::Duration::from_secs(10));
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
