//! An SLO as Prometheus rules, as Sloth and Pyrra generate them, so a team
//! can take its SLOs to any Prometheus-compatible ruler (or run them in
//! Strata's): recording rules for the error ratio over every window the
//! burn-rate alerts read, the period's error ratio and budget, and the four
//! multi-window burn-rate alerts with Strata's own thresholds, labels and
//! summary.
//!
//! The recorded error ratio of a window is `1 - clamp(good / total, 0, 1)`
//! per label set with events, a label set without good series counting as
//! no good events — what [`super::evaluate`] computes. The period's ratio is
//! the mean of the 5m ratios recorded over the compliance window (Sloth's
//! way: a raw 28-day `rate` at every evaluation would cost more than the
//! rest together), so it can differ from the raw ratio where traffic was
//! uneven.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{ALERTS, SloSpec};
use crate::common::SpecError;
use crate::common::window_text;
use crate::rules::file::{PromDuration, RuleDef, RuleFile, RuleGroup, Scalar};

/// The error-ratio recording rule's metric for `window`.
pub fn ratio_metric(window: Duration) -> String {
    format!("slo:sli_error:ratio_rate{}", window_text(window))
}

fn record(name: &str, expr: String, labels: &BTreeMap<String, Scalar>) -> RuleDef {
    RuleDef {
        record: Some(name.to_string()),
        expr: Scalar(expr),
        labels: labels.clone(),
        ..RuleDef::default()
    }
}

/// `spec` as a rule file: a recording group and an alerting group, both
/// evaluated every `interval`.
pub fn rules(spec: &SloSpec, interval: Duration) -> Result<RuleFile, SpecError> {
    let bad = |m: &str| SpecError::invalid("SLO", &spec.name, m);
    if spec.good_sql.is_some() {
        return Err(bad(
            "an SQL SLI has no PromQL rules (its events are counted from tables)",
        ));
    }
    let mut labels = BTreeMap::from([("slo".to_string(), Scalar(spec.name.clone()))]);
    if let Some(p) = &spec.business_process {
        labels.insert("business_process".into(), Scalar(p.clone()));
    }
    let sel = format!("{{slo={:?}}}", spec.name);
    let mut windows: Vec<Duration> = vec![Duration::from_secs(300)];
    for (_, long, short, _) in ALERTS {
        windows.push(Duration::from_secs(*long));
        windows.push(Duration::from_secs(*short));
    }
    windows.sort();
    windows.dedup();
    let mut recording = Vec::new();
    for w in &windows {
        let (good, total) = spec.queries(&window_text(*w));
        recording.push(record(
            &ratio_metric(*w),
            format!("1 - clamp((({good}) or ({total}) * 0) / (({total}) > 0), 0, 1)"),
            &labels,
        ));
    }
    let period = window_text(spec.window);
    let five = ratio_metric(Duration::from_secs(300));
    let period_metric = ratio_metric(spec.window);
    recording.push(record(
        &period_metric,
        format!("sum_over_time({five}{sel}[{period}]) / count_over_time({five}{sel}[{period}])"),
        &labels,
    ));
    let objective = spec.objective;
    for (name, expr) in [
        ("slo:objective:ratio", format!("vector({objective})")),
        ("slo:error_budget:ratio", format!("vector(1 - {objective})")),
        (
            "slo:current_burn_rate:ratio",
            format!("{five}{sel} / (1 - {objective})"),
        ),
        (
            "slo:period_burn_rate:ratio",
            format!("{period_metric}{sel} / (1 - {objective})"),
        ),
        (
            "slo:period_error_budget_remaining:ratio",
            format!("1 - slo:period_burn_rate:ratio{sel}"),
        ),
    ] {
        recording.push(record(name, expr, &labels));
    }
    let window_hours = spec.window.as_secs_f64() / 3_600.0;
    let alerting = ALERTS
        .iter()
        .map(|(severity, long, short, share)| {
            let threshold = share * window_hours / (*long as f64 / 3_600.0);
            let (lw, sw) = (
                window_text(Duration::from_secs(*long)),
                window_text(Duration::from_secs(*short)),
            );
            let burn = |w: Duration| {
                format!(
                    "{}{sel} / (1 - {}) > {threshold}",
                    ratio_metric(w),
                    spec.objective
                )
            };
            let mut l = labels.clone();
            l.insert("severity".into(), Scalar((*severity).into()));
            l.insert("long_window".into(), Scalar(lw.clone()));
            l.insert("short_window".into(), Scalar(sw.clone()));
            RuleDef {
                alert: Some("SLOErrorBudgetBurn".into()),
                expr: Scalar(format!(
                    "({}) and ({})",
                    burn(Duration::from_secs(*long)),
                    burn(Duration::from_secs(*short))
                )),
                labels: l,
                annotations: BTreeMap::from([(
                    "summary".to_string(),
                    Scalar(format!(
                        "SLO {} is burning its error budget {{{{ printf \"%.1f\" $value }}}}× too fast",
                        spec.name
                    )),
                ), (
                    "description".to_string(),
                    Scalar(format!(
                        "burn rate over {lw} and {sw} above {threshold:.2} (objective {}, window {period})",
                        spec.objective
                    )),
                )]),
                ..RuleDef::default()
            }
        })
        .collect();
    let every = Some(PromDuration(
        i64::try_from(interval.as_millis()).unwrap_or(60_000),
    ));
    let file = RuleFile {
        groups: vec![
            RuleGroup {
                name: format!("slo:{}:recording", spec.name),
                interval: every,
                rules: recording,
                ..RuleGroup::default()
            },
            RuleGroup {
                name: format!("slo:{}:alerts", spec.name),
                interval: every,
                rules: alerting,
                ..RuleGroup::default()
            },
        ],
    };
    file.check().map_err(|e| bad(&e.to_string()))?;
    Ok(file)
}

#[cfg(test)]
mod tests;
