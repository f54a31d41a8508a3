//! Service-level objectives.
//!
//! A spec file (TOML) lists SLOs:
//!
//! ```toml
//! [[slo]]
//! name = "picking-availability"
//! tenant = "acme"                 # default: "default"
//! business_process = "picking"    # receiving, picking, packing, dispatch, invoicing, …
//! objective = 0.995               # the share of good events to meet
//! window = "28d"                  # the compliance window (default 28d)
//! # Either a ratio of two PromQL queries, `$window` standing for the
//! # window being evaluated …
//! good = 'sum(rate(http_requests_total{route=~"/picking.*", code!~"5.."}[$window]))'
//! total = 'sum(rate(http_requests_total{route=~"/picking.*"}[$window]))'
//! # … or a latency threshold over a classic histogram:
//! # latency = { histogram = "http_request_duration_seconds", selector = '{route="/pick"}', threshold = 0.3 }
//! ```
//!
//! For each SLO (and each label set its queries group by) Strata computes
//! the SLI over the compliance window and over the alert windows, the
//! burn rate of each window (`(1 - SLI) / (1 - objective)`: 1 spends the
//! budget exactly over the compliance window), the error budget left
//! (`1 - burn rate over the compliance window`; below 0: overspent), and
//! the SRE workbook's four alerts: page when 2% of the budget goes in an
//! hour (1h and 5m windows) or 5% in six hours (6h and 30m), ticket when
//! 10% goes in a day (1d and 2h) or in three days (3d and 6h) — each
//! firing when both of its windows burn faster than that.

pub mod export;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use strata_query_lang::promql::{Engine, Source, Value};

pub use crate::common::{EvalError, SpecError};
use crate::common::{default_tenant, default_window, humantime_serde, label_map, window_text};

/// A latency SLI: the share of requests faster than `threshold` seconds,
/// from a classic histogram.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Latency {
    /// The histogram's name, without `_bucket`/`_count`.
    pub histogram: String,
    /// Label matchers, `{job="odoo"}` (optional).
    #[serde(default)]
    pub selector: String,
    /// Seconds; must be one of the histogram's bucket bounds.
    pub threshold: f64,
    /// Labels to report the SLO by (optional).
    #[serde(default)]
    pub by: Vec<String>,
}

/// One SLO as written in the file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SloSpec {
    pub name: String,
    #[serde(default = "default_tenant")]
    pub tenant: String,
    #[serde(default)]
    pub business_process: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    pub objective: f64,
    #[serde(default = "default_window", with = "humantime_serde")]
    pub window: Duration,
    #[serde(default)]
    pub good: Option<String>,
    #[serde(default)]
    pub total: Option<String>,
    #[serde(default)]
    pub latency: Option<Latency>,
    /// Or good and total event counts from SQL over the tenant's tables
    /// (`logs`, a metric table), `$start` and `$end` standing for the
    /// window's bounds (UTC timestamps): text columns name the label set,
    /// the last numeric column is the count.
    #[serde(default)]
    pub good_sql: Option<String>,
    #[serde(default)]
    pub total_sql: Option<String>,
}

/// Runs an SLO's SQL queries for its tenant.
#[async_trait::async_trait]
pub trait SqlSource: Send + Sync {
    /// Each row of `sql`: its text columns by name, and its last numeric
    /// column.
    async fn rows(&self, sql: &str) -> Result<Vec<(BTreeMap<String, String>, f64)>, String>;
}

/// The burn-rate alerts: (severity, long window, short window, share of
/// the budget spent over the long window that triggers it).
pub const ALERTS: &[(&str, u64, u64, f64)] = &[
    ("page", 3_600, 300, 0.02),
    ("page", 6 * 3_600, 1_800, 0.05),
    ("ticket", 86_400, 2 * 3_600, 0.10),
    ("ticket", 3 * 86_400, 6 * 3_600, 0.10),
];

impl SloSpec {
    /// The good and total queries for `window` (PromQL duration syntax).
    pub fn queries(&self, window: &str) -> (String, String) {
        if let Some(l) = &self.latency {
            let sel = l
                .selector
                .trim()
                .trim_start_matches('{')
                .trim_end_matches('}');
            let join = |extra: &str| {
                let mut parts: Vec<&str> = Vec::new();
                if !sel.trim().is_empty() {
                    parts.push(sel);
                }
                if !extra.is_empty() {
                    parts.push(extra);
                }
                parts.join(", ")
            };
            let by = if l.by.is_empty() {
                String::new()
            } else {
                format!(" by ({})", l.by.join(", "))
            };
            let le = format!("le=\"{}\"", prom_float(l.threshold));
            return (
                format!(
                    "sum{by}(rate({}_bucket{{{}}}[{window}]))",
                    l.histogram,
                    join(&le)
                ),
                format!(
                    "sum{by}(rate({}_count{{{}}}[{window}]))",
                    l.histogram,
                    join("")
                ),
            );
        }
        let sub = |q: &Option<String>| q.as_deref().unwrap_or_default().replace("$window", window);
        (sub(&self.good), sub(&self.total))
    }

    /// The good and total SQL of the window `[start_ms, end_ms)`, if the
    /// SLI is SQL.
    pub fn sql_queries(&self, start_ms: i64, end_ms: i64) -> Option<(String, String)> {
        let ts = |ms: i64| {
            chrono::DateTime::from_timestamp_millis(ms).map_or_else(
                || "NULL".to_owned(),
                |t| format!("TIMESTAMP '{}'", t.format("%Y-%m-%dT%H:%M:%S%.3fZ")),
            )
        };
        let sub = |q: &str| {
            q.replace("$start", &ts(start_ms))
                .replace("$end", &ts(end_ms))
        };
        match (&self.good_sql, &self.total_sql) {
            (Some(g), Some(t)) => Some((sub(g), sub(t))),
            _ => None,
        }
    }

    pub(crate) fn check(&self) -> Result<(), SpecError> {
        let bad = |reason: String| SpecError::invalid("SLO", &self.name, reason);
        if self.good_sql.is_some() || self.total_sql.is_some() {
            if self.good.is_some() || self.total.is_some() || self.latency.is_some() {
                return Err(bad(
                    "give either PromQL (good and total, or latency) or SQL (good_sql and total_sql), not both".into(),
                ));
            }
            let (Some(g), Some(t)) = (&self.good_sql, &self.total_sql) else {
                return Err(bad("give both good_sql and total_sql".into()));
            };
            for (what, q) in [("good_sql", g), ("total_sql", t)] {
                if !q.contains("$start") || !q.contains("$end") {
                    return Err(bad(format!(
                        "{what} must bound its window with $start and $end, e.g. WHERE timestamp >= $start AND timestamp < $end"
                    )));
                }
                strata_query_lang::nesting::check(q, strata_query_lang::nesting::Syntax::Sql)
                    .map_err(|e| bad(format!("{what}: {e}")))?;
            }
            if !(self.objective > 0.0 && self.objective < 1.0) {
                return Err(bad(format!(
                    "objective {} must be a share between 0 and 1, e.g. 0.995",
                    self.objective
                )));
            }
            if self.window < Duration::from_secs(3_600) {
                return Err(bad("window must be at least 1h".into()));
            }
            return Ok(());
        }
        if self.name.is_empty() {
            return Err(bad("name is empty".into()));
        }
        if !(self.objective > 0.0 && self.objective < 1.0) {
            return Err(bad(format!(
                "objective {} must be a share between 0 and 1, e.g. 0.995",
                self.objective
            )));
        }
        if self.window < Duration::from_secs(3_600) {
            return Err(bad("window must be at least 1h".into()));
        }
        match (&self.good, &self.total, &self.latency) {
            (Some(g), Some(t), None) => {
                for (what, q) in [("good", g), ("total", t)] {
                    if !q.contains("$window") {
                        return Err(bad(format!(
                            "{what} must use $window for the range, e.g. rate(x[$window])"
                        )));
                    }
                }
            }
            (None, None, Some(l)) => {
                if l.threshold.is_nan() || l.threshold <= 0.0 {
                    return Err(bad("latency.threshold must be positive seconds".into()));
                }
            }
            _ => {
                return Err(bad(
                    "give either good and total queries, or a latency table".into(),
                ));
            }
        }
        let (g, t) = self.queries("5m");
        for q in [g, t] {
            strata_query_lang::promql::parse_expr(&q)
                .map_err(|e| bad(format!("query {q:?} does not parse: {e}")))?;
        }
        Ok(())
    }
}

/// Prometheus' spelling of a bucket bound (`0.3`, `1`, `+Inf`).
fn prom_float(v: f64) -> String {
    if v.is_infinite() {
        "+Inf".into()
    } else {
        format!("{v}")
    }
}

/// One burn-rate alert's state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertState {
    pub severity: &'static str,
    pub long_window: String,
    pub short_window: String,
    /// The burn rate both windows must exceed.
    pub threshold: f64,
    pub firing: bool,
}

/// An SLO's state for one label set of its queries.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SloStatus {
    pub name: String,
    pub business_process: Option<String>,
    pub objective: f64,
    pub window: String,
    pub labels: BTreeMap<String, String>,
    /// Over the compliance window; `None` without events.
    pub sli: Option<f64>,
    /// Share of the error budget left over the compliance window (1: all
    /// of it, 0: spent, below 0: overspent).
    pub error_budget_remaining: Option<f64>,
    /// Window → burn rate.
    pub burn_rates: BTreeMap<String, f64>,
    pub alerts: Vec<AlertState>,
    /// Good and total events per second over the last 5 minutes: what the
    /// background evaluation records, so long windows are cheap.
    pub good_rate_5m: Option<f64>,
    pub total_rate_5m: Option<f64>,
    /// The windows summed from those recordings rather than the raw series.
    pub recorded_windows: Vec<String>,
}

/// A label set of an SLO's queries.
type LabelSet = BTreeMap<String, String>;

/// Per label set with events: (good, total) event rates over a window.
type Rates = BTreeMap<LabelSet, (f64, f64)>;

/// The recorded 5-minute rates long windows are summed from.
pub const GOOD_RATE_5M: &str = "strata_slo_good_rate5m";
pub const TOTAL_RATE_5M: &str = "strata_slo_total_rate5m";

/// Windows at least this long are read from the recorded 5m rates when
/// those cover them.
const RECORDED_FROM: Duration = Duration::from_secs(86_400);

fn by_labels(v: Value, drop: &[&str]) -> BTreeMap<LabelSet, f64> {
    match v {
        Value::Vector(samples) => samples
            .into_iter()
            .map(|s| {
                let mut l = label_map(&s.labels);
                for d in drop {
                    l.remove(*d);
                }
                (l, s.v)
            })
            .collect(),
        Value::Scalar { v, .. } => BTreeMap::from([(BTreeMap::new(), v)]),
        _ => BTreeMap::new(),
    }
}

/// Pairs good and total by label set; a label set with events but no good
/// series had no good events.
fn pair(good: BTreeMap<LabelSet, f64>, total: BTreeMap<LabelSet, f64>) -> Rates {
    total
        .into_iter()
        .filter(|(_, t)| *t > 0.0 && t.is_finite())
        .map(|(l, t)| {
            let g = good.get(&l).copied().unwrap_or(0.0);
            (l, (g, t))
        })
        .collect()
}

/// The good and total rates of each label set over `window`, from the
/// SLO's own queries.
async fn rates(
    engine: &Engine,
    source: &dyn Source,
    sql: Option<&dyn SqlSource>,
    spec: &SloSpec,
    window: Duration,
    t_ms: i64,
) -> Result<Rates, EvalError> {
    let err = |e: String| EvalError::new("SLO", &spec.name, e);
    let start_ms = t_ms - window.as_millis() as i64;
    if let Some((good, total)) = spec.sql_queries(start_ms, t_ms) {
        let Some(sql) = sql else {
            return Err(err("SQL SLIs need the SQL engine".into()));
        };
        // Counts over the window, as events per second like PromQL's.
        let secs = window.as_secs_f64();
        let run = |q: String| async move {
            sql.rows(&q).await.map(|rows| {
                rows.into_iter()
                    .map(|(l, v)| (l, v / secs))
                    .collect::<BTreeMap<_, _>>()
            })
        };
        let good = run(good).await.map_err(|e| err(format!("good_sql: {e}")))?;
        let total = run(total)
            .await
            .map_err(|e| err(format!("total_sql: {e}")))?;
        return Ok(pair(good, total));
    }
    let (good, total) = spec.queries(&window_text(window));
    let run = |q: String| async move { engine.instant(source, &q, t_ms).await };
    let good = run(good).await.map_err(|e| err(e.to_string()))?;
    let total = run(total).await.map_err(|e| err(e.to_string()))?;
    Ok(pair(
        by_labels(good.value, &[]),
        by_labels(total.value, &[]),
    ))
}

/// The rates over `window` from the recorded 5m rates, if the recordings
/// (one every `interval`) of some label set cover at least 95% of it — the
/// SLO has been recorded that long; label sets recorded for less have
/// existed for less, as their raw series have. The mean of the 5m rates
/// is the window's rate, at the cost of one point per interval instead of
/// every raw sample of every series.
async fn recorded_rates(
    engine: &Engine,
    source: &dyn Source,
    spec: &SloSpec,
    window: Duration,
    interval: Duration,
    t_ms: i64,
) -> Result<Option<Rates>, EvalError> {
    let err = |e: String| EvalError::new("SLO", &spec.name, e);
    let sel = |name: &str| format!("{name}{{slo={:?}}}", spec.name);
    let w = window_text(window);
    let drop = ["slo", "business_process"];
    let run = |q: String| async move {
        engine
            .instant(source, &q, t_ms)
            .await
            .map(|o| by_labels(o.value, &drop))
            .map_err(|e| err(e.to_string()))
    };
    let counts = run(format!("count_over_time({}[{w}])", sel(TOTAL_RATE_5M))).await?;
    let needed = 0.95 * window.as_secs_f64() / interval.as_secs_f64().max(1.0);
    if !counts.values().any(|c| *c >= needed) {
        return Ok(None);
    }
    let good = run(format!("sum_over_time({}[{w}])", sel(GOOD_RATE_5M))).await?;
    let total = run(format!("sum_over_time({}[{w}])", sel(TOTAL_RATE_5M))).await?;
    Ok(Some(pair(good, total)))
}

/// Evaluates `spec` at `t_ms`: one status per label set of its queries.
/// `recorded`: the interval its 5m rates are recorded at (by Strata's
/// background evaluation), so windows of a day and longer are summed from
/// them where they cover the window; `None`: always the raw queries.
pub async fn evaluate(
    engine: &Engine,
    source: &dyn Source,
    spec: &SloSpec,
    t_ms: i64,
    recorded: Option<Duration>,
    sql: Option<&dyn SqlSource>,
) -> Result<Vec<SloStatus>, EvalError> {
    let budget = 1.0 - spec.objective;
    let mut windows: Vec<Duration> = vec![spec.window];
    for (_, long, short, _) in ALERTS {
        windows.push(Duration::from_secs(*long));
        windows.push(Duration::from_secs(*short));
    }
    windows.push(Duration::from_secs(300));
    windows.sort();
    windows.dedup();
    // Window → label set → (good, total) rates; which windows each label
    // set read from the recordings.
    let mut all: BTreeMap<Duration, Rates> = BTreeMap::new();
    let mut from_recorded: BTreeMap<LabelSet, Vec<String>> = BTreeMap::new();
    for w in &windows {
        let summed = match recorded {
            Some(interval) if *w >= RECORDED_FROM => {
                recorded_rates(engine, source, spec, *w, interval, t_ms).await?
            }
            _ => None,
        };
        let got = match summed {
            Some(mut got) => {
                for l in got.keys() {
                    from_recorded
                        .entry(l.clone())
                        .or_default()
                        .push(window_text(*w));
                }
                // A label set with events now but not yet recorded (it
                // appeared since the last evaluation): the raw queries.
                let five = Duration::from_secs(300);
                let unrecorded = all
                    .get(&five)
                    .is_some_and(|now| now.keys().any(|l| !got.contains_key(l)));
                if unrecorded {
                    for (l, r) in rates(engine, source, sql, spec, *w, t_ms).await? {
                        got.entry(l).or_insert(r);
                    }
                }
                got
            }
            None => rates(engine, source, sql, spec, *w, t_ms).await?,
        };
        all.insert(*w, got);
    }
    let sli_of = |w: Duration, labels: &LabelSet| -> Option<f64> {
        all.get(&w)?
            .get(labels)
            .map(|(g, t)| (g / t).clamp(0.0, 1.0))
    };
    let mut label_sets: Vec<LabelSet> = all.values().flat_map(|m| m.keys().cloned()).collect();
    label_sets.sort();
    label_sets.dedup();
    let burn = |w: Duration, labels: &LabelSet| -> Option<f64> {
        sli_of(w, labels).map(|s| (1.0 - s) / budget)
    };
    let five = Duration::from_secs(300);
    let window_hours = spec.window.as_secs_f64() / 3_600.0;
    Ok(label_sets
        .into_iter()
        .map(|labels| {
            let sli = sli_of(spec.window, &labels);
            let burn_rates = windows
                .iter()
                .filter_map(|w| burn(*w, &labels).map(|b| (window_text(*w), b)))
                .collect();
            let alerts = ALERTS
                .iter()
                .map(|(severity, long, short, share)| {
                    let threshold = share * window_hours / (*long as f64 / 3_600.0);
                    let over = |w: u64| {
                        burn(Duration::from_secs(w), &labels).is_some_and(|b| b > threshold)
                    };
                    AlertState {
                        severity,
                        long_window: window_text(Duration::from_secs(*long)),
                        short_window: window_text(Duration::from_secs(*short)),
                        threshold,
                        firing: over(*long) && over(*short),
                    }
                })
                .collect();
            let rates_5m = all.get(&five).and_then(|m| m.get(&labels)).copied();
            SloStatus {
                name: spec.name.clone(),
                business_process: spec.business_process.clone(),
                objective: spec.objective,
                window: window_text(spec.window),
                error_budget_remaining: sli.map(|s| 1.0 - (1.0 - s) / budget),
                sli,
                burn_rates,
                alerts,
                good_rate_5m: rates_5m.map(|r| r.0),
                total_rate_5m: rates_5m.map(|r| r.1),
                recorded_windows: from_recorded.remove(&labels).unwrap_or_default(),
                labels,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use strata_query_lang::promql::{EngineConfig, Labels, MemorySource};

    use super::*;
    use crate::spec::SpecFile;

    const MIN: i64 = 60_000;
    pub(super) const NOW: i64 = 1_800_000_000_000;

    /// Request counters of two routes over the last 4 days, one sample a
    /// minute: `/pick` fails `base` of its requests, `burn` in the last
    /// `burn_minutes`; `/invoice` never fails.
    pub(super) fn source(base: f64, burn: f64, burn_minutes: i64) -> MemorySource {
        let mut src = MemorySource::new();
        let labels = |route: &str, code: &str| {
            Labels::new(vec![
                ("__name__".into(), "http_requests_total".into()),
                ("route".into(), route.into()),
                ("code".into(), code.into()),
            ])
        };
        let (mut ok, mut err, mut inv) = (0.0, 0.0, 0.0);
        let start = NOW - 4 * 1440 * MIN;
        for i in 0..=4 * 1440 {
            let t = start + i * MIN;
            let share = if t > NOW - burn_minutes * MIN {
                burn
            } else {
                base
            };
            // 1000 requests a minute.
            err += 1000.0 * share;
            ok += 1000.0 * (1.0 - share);
            inv += 500.0;
            src.add(&labels("/pick", "200"), t, ok);
            src.add(&labels("/pick", "500"), t, err);
            src.add(&labels("/invoice", "200"), t, inv);
        }
        src
    }

    pub(super) fn spec() -> SloSpec {
        SpecFile::parse(
            r#"
            [[slo]]
            name = "availability"
            business_process = "picking"
            objective = 0.99
            window = "28d"
            good = 'sum by (route) (rate(http_requests_total{code!~"5.."}[$window]))'
            total = 'sum by (route) (rate(http_requests_total[$window]))'
            "#,
        )
        .unwrap()
        .slo
        .remove(0)
    }

    fn engine() -> Engine {
        Engine::new(EngineConfig::default())
    }

    fn route<'a>(out: &'a [SloStatus], r: &str) -> &'a SloStatus {
        out.iter().find(|s| s.labels["route"] == r).unwrap()
    }

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * b.abs().max(1e-9)
    }

    #[tokio::test]
    async fn a_steady_error_rate_spends_the_budget_at_its_rate() {
        // 0.5% errors against a 1% budget: burn 0.5 everywhere, half the
        // budget left, nothing fires.
        let out = evaluate(
            &engine(),
            &source(0.005, 0.005, 0),
            &spec(),
            NOW,
            None,
            None,
        )
        .await
        .unwrap();
        let pick = route(&out, "/pick");
        assert!(close(pick.sli.unwrap(), 0.995, 1e-3), "{pick:?}");
        assert!(
            close(pick.error_budget_remaining.unwrap(), 0.5, 1e-2),
            "{pick:?}"
        );
        assert!(close(pick.burn_rates["1h"], 0.5, 1e-2), "{pick:?}");
        assert!(pick.alerts.iter().all(|a| !a.firing));
        let inv = route(&out, "/invoice");
        assert_eq!(inv.sli, Some(1.0));
        assert_eq!(inv.error_budget_remaining, Some(1.0));
    }

    #[tokio::test]
    async fn an_injected_burn_pages_without_ticketing() {
        // Half the requests fail for the last 50 minutes (0.1% before),
        // against a 28-day budget of 1%: the page thresholds are 13.44
        // (2% of the budget in 1h) and 5.6 (5% in 6h), the tickets' 2.8
        // (10% in 1d) and 0.93 (10% in 3d).
        // 1h: (50 × 0.5 + 10 × 0.001) / 60 / 0.01 ≈ 41.7; 5m: 50.
        // 6h: (25 + 310 × 0.001) / 360 / 0.01 ≈ 7.0; 30m: 50.
        // 1d: (25 + 1390 × 0.001) / 1440 / 0.01 ≈ 1.8 — no ticket.
        let out = evaluate(&engine(), &source(0.001, 0.5, 50), &spec(), NOW, None, None)
            .await
            .unwrap();
        let pick = route(&out, "/pick");
        assert!(close(pick.burn_rates["5m"], 50.0, 0.05), "{pick:?}");
        assert!(close(pick.burn_rates["1h"], 41.7, 0.05), "{pick:?}");
        assert!(close(pick.burn_rates["6h"], 7.0, 0.05), "{pick:?}");
        assert!(close(pick.burn_rates["1d"], 1.83, 0.05), "{pick:?}");
        assert!(close(pick.alerts[0].threshold, 13.44, 1e-9));
        let firing: Vec<(&str, &str)> = pick
            .alerts
            .iter()
            .filter(|a| a.firing)
            .map(|a| (a.severity, a.long_window.as_str()))
            .collect();
        assert_eq!(firing, [("page", "1h"), ("page", "6h")]);
        assert!(route(&out, "/invoice").alerts.iter().all(|a| !a.firing));
    }

    #[tokio::test]
    async fn long_windows_are_summed_from_the_recorded_rates() {
        // Raw counters exist for 4 days (0.5% errors); the background
        // evaluation recorded 28 days of 5m rates (2% errors on /pick, one
        // point a minute). With recordings, the 1d, 3d and 28d windows are
        // the recordings' (SLI 0.98); shorter ones stay raw; without them,
        // every window is raw.
        let mut src = source(0.005, 0.005, 0);
        for (name, v) in [(GOOD_RATE_5M, 980.0 / 60.0), (TOTAL_RATE_5M, 1000.0 / 60.0)] {
            let labels = Labels::new(vec![
                ("__name__".into(), name.into()),
                ("business_process".into(), "picking".into()),
                ("route".into(), "/pick".into()),
                ("slo".into(), "availability".into()),
            ]);
            for i in 0..28 * 1440 {
                src.add(&labels, NOW - i * MIN, v);
            }
        }
        let with = evaluate(
            &engine(),
            &src,
            &spec(),
            NOW,
            Some(Duration::from_secs(60)),
            None,
        )
        .await
        .unwrap();
        let pick = route(&with, "/pick");
        assert!(close(pick.sli.unwrap(), 0.98, 1e-9), "{pick:?}");
        assert_eq!(pick.recorded_windows, ["1d", "3d", "28d"]);
        assert!(close(pick.burn_rates["1h"], 0.5, 1e-2), "raw: {pick:?}");
        assert!(
            close(pick.total_rate_5m.unwrap(), 1000.0 / 60.0, 1e-2),
            "{pick:?}"
        );
        // /invoice has events but no recordings (as if it appeared since
        // the last evaluation): its long windows come from the raw series.
        let invoice = route(&with, "/invoice");
        assert_eq!(invoice.sli, Some(1.0));
        assert!(invoice.recorded_windows.is_empty());
        let without = evaluate(&engine(), &src, &spec(), NOW, None, None)
            .await
            .unwrap();
        let pick = route(&without, "/pick");
        assert!(close(pick.sli.unwrap(), 0.995, 1e-3), "{pick:?}");
        assert!(pick.recorded_windows.is_empty());
        // Recordings of a single day do not cover a 3-day window.
        let mut short = source(0.005, 0.005, 0);
        for (name, v) in [(GOOD_RATE_5M, 0.0), (TOTAL_RATE_5M, 1.0)] {
            let labels = Labels::new(vec![
                ("__name__".into(), name.into()),
                ("route".into(), "/pick".into()),
                ("slo".into(), "availability".into()),
            ]);
            for i in 0..1440 {
                short.add(&labels, NOW - i * MIN, v);
            }
        }
        let out = evaluate(
            &engine(),
            &short,
            &spec(),
            NOW,
            Some(Duration::from_secs(60)),
            None,
        )
        .await
        .unwrap();
        assert_eq!(route(&out, "/pick").recorded_windows, ["1d"]);
        assert!(close(route(&out, "/pick").burn_rates["3d"], 0.5, 1e-2));
    }

    /// Answers `good` or `total` counts for a route, per query seen.
    struct FakeSql(std::sync::Mutex<Vec<String>>);

    #[async_trait::async_trait]
    impl SqlSource for FakeSql {
        async fn rows(&self, sql: &str) -> Result<Vec<(BTreeMap<String, String>, f64)>, String> {
            self.0.lock().unwrap().push(sql.to_owned());
            let v = if sql.contains("good") { 970.0 } else { 1000.0 };
            Ok(vec![(
                BTreeMap::from([("route".to_owned(), "/pick".to_owned())]),
                v,
            )])
        }
    }

    #[tokio::test]
    async fn a_sql_sli_counts_events_in_each_window() {
        let spec = SpecFile::parse(
            r#"
            [[slo]]
            name = "pickings"
            objective = 0.99
            good_sql = "SELECT route, count(*) FROM good WHERE timestamp >= $start AND timestamp < $end GROUP BY route"
            total_sql = "SELECT route, count(*) FROM total WHERE timestamp >= $start AND timestamp < $end GROUP BY route"
            "#,
        )
        .unwrap()
        .slo
        .remove(0);
        let sql = FakeSql(std::sync::Mutex::new(Vec::new()));
        let out = evaluate(
            &engine(),
            &MemorySource::new(),
            &spec,
            NOW,
            None,
            Some(&sql),
        )
        .await
        .unwrap();
        let pick = route(&out, "/pick");
        assert!(close(pick.sli.unwrap(), 0.97, 1e-9), "{pick:?}");
        assert!(close(pick.burn_rates["1h"], 3.0, 1e-9), "{pick:?}");
        let seen = sql.0.lock().unwrap().clone();
        // NOW is 2027-01-15T08:00:00Z; the 1h window starts an hour before.
        assert!(
            seen.iter().any(|q| q.contains(
                "timestamp >= TIMESTAMP '2027-01-15T07:00:00.000Z' AND timestamp < TIMESTAMP '2027-01-15T08:00:00.000Z'"
            )),
            "{seen:?}"
        );
        // Without the SQL engine, a clear error.
        let e = evaluate(&engine(), &MemorySource::new(), &spec, NOW, None, None)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("SQL"), "{e}");
    }

    #[test]
    fn specs_are_checked() {
        for (toml, want) in [
            (
                "[[slo]]\nname = \"a\"\nobjective = 99.5\ngood = 'x[$window]'\ntotal = 'y[$window]'",
                "between 0 and 1",
            ),
            (
                "[[slo]]\nname = \"a\"\nobjective = 0.9\ngood = 'rate(x[5m])'\ntotal = 'rate(y[$window])'",
                "$window",
            ),
            (
                "[[slo]]\nname = \"a\"\nobjective = 0.9",
                "either good and total",
            ),
            (
                "[[slo]]\nname = \"a\"\nobjective = 0.9\ngood = 'rate(x[$window]'\ntotal = 'rate(y[$window])'",
                "does not parse",
            ),
            (
                "[[slo]]\nname = \"a\"\nobjective = 0.9\nwindow = \"5m\"\nlatency = { histogram = \"h\", threshold = 0.3 }",
                "at least 1h",
            ),
            (
                "[[slo]]\nname = \"a\"\nobjective = 0.9\ngood_sql = 'SELECT 1'\ntotal_sql = 'SELECT 2 WHERE $start < $end'",
                "$start and $end",
            ),
            (
                "[[slo]]\nname = \"a\"\nobjective = 0.9\ngood_sql = 'SELECT 1 WHERE $start < $end'",
                "both good_sql and total_sql",
            ),
        ] {
            let e = SpecFile::parse(toml).unwrap_err().to_string();
            assert!(e.contains(want), "{toml}: {e}");
        }
        let f = SpecFile::parse(
            "[[slo]]\nname = \"lat\"\nobjective = 0.95\nlatency = { histogram = \"http_request_duration_seconds\", selector = '{job=\"odoo\"}', threshold = 0.3, by = [\"route\"] }",
        )
        .unwrap();
        let (g, t) = f.slo[0].queries("1h");
        assert_eq!(
            g,
            "sum by (route)(rate(http_request_duration_seconds_bucket{job=\"odoo\", le=\"0.3\"}[1h]))"
        );
        assert_eq!(
            t,
            "sum by (route)(rate(http_request_duration_seconds_count{job=\"odoo\"}[1h]))"
        );
    }
}
