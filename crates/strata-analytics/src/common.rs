//! What the three kinds of analytics spec share: their errors, durations
//! written `28d`, the tenant an entry reads, a limit given as a number or a
//! query. The kinds depend on this module; the spec file ([`crate::spec`])
//! on the kinds.

use std::time::Duration;

use serde::Deserialize;

/// Why a spec file is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpecError {
    #[error("cannot read analytics spec file {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("analytics spec file: {0}")]
    Parse(String),
    #[error("{kind} {name}: {reason}")]
    Invalid {
        kind: &'static str,
        name: String,
        reason: String,
    },
}

impl SpecError {
    pub(crate) fn invalid(kind: &'static str, name: &str, reason: impl Into<String>) -> Self {
        SpecError::Invalid {
            kind,
            name: name.to_owned(),
            reason: reason.into(),
        }
    }
}

/// Why an evaluation failed (a query error, typically).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{kind} {name}: {reason}")]
pub struct EvalError {
    pub kind: &'static str,
    pub name: String,
    pub reason: String,
}

impl EvalError {
    pub(crate) fn new(kind: &'static str, name: &str, reason: impl Into<String>) -> Self {
        EvalError {
            kind,
            name: name.to_owned(),
            reason: reason.into(),
        }
    }
}

/// A limit or capacity: a fixed number, or a PromQL query evaluated at the
/// evaluation time.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(untagged)]
pub enum Limit {
    Number(f64),
    Query(String),
}

impl Limit {
    pub(crate) fn check(&self, kind: &'static str, name: &str) -> Result<(), SpecError> {
        match self {
            Limit::Number(v) if !v.is_finite() => Err(SpecError::invalid(
                kind,
                name,
                format!("limit {v} is not a finite number"),
            )),
            Limit::Number(_) => Ok(()),
            Limit::Query(q) => check_query(kind, name, q),
        }
    }
}

/// Refuses a query that does not parse, naming it.
pub(crate) fn check_query(kind: &'static str, name: &str, q: &str) -> Result<(), SpecError> {
    strata_query_lang::promql::parse_expr(q)
        .map(|_| ())
        .map_err(|e| SpecError::invalid(kind, name, format!("query {q:?} does not parse: {e}")))
}

pub(crate) fn default_tenant() -> String {
    "default".into()
}

pub(crate) fn default_window() -> Duration {
    Duration::from_secs(28 * 86_400)
}

/// `28d`, `1h30m`: humantime's spelling, as in the rest of the config.
pub(crate) mod humantime_serde {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s).map_err(serde::de::Error::custom)
    }
}

/// A duration in PromQL's spelling (`28d`, `6h`, `30m`, `15s`).
pub fn window_text(d: Duration) -> String {
    let s = d.as_secs();
    if s.is_multiple_of(86_400) {
        format!("{}d", s / 86_400)
    } else if s.is_multiple_of(3_600) {
        format!("{}h", s / 3_600)
    } else if s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

/// A series' labels without its name, as a map.
pub(crate) fn label_map(
    labels: &strata_query_lang::promql::Labels,
) -> std::collections::BTreeMap<String, String> {
    labels
        .iter()
        .filter(|(k, _)| *k != "__name__")
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// The resolution a lookback is read at: the smallest of a few round
/// steps that keeps it under ~4,000 points (whole divisors of a day, so a
/// daily season falls on whole steps).
pub(crate) fn step_for(lookback: Duration) -> Duration {
    const STEPS: [u64; 9] = [15, 30, 60, 120, 300, 600, 900, 1_800, 3_600];
    let want = lookback.as_secs() / 4_000;
    Duration::from_secs(STEPS.iter().copied().find(|s| *s >= want).unwrap_or(3_600))
}
