//! Strata's analytics stage: answers operators ask every day, computed
//! inside the database over the tenant's own data with the PromQL engine
//! (over any [`strata_query_lang::promql::Source`]).
//!
//! - [`slo`]: service-level objectives — the SLI over any window, the error
//!   budget left, and the Google SRE workbook's multi-window
//!   multi-burn-rate alert states.
//! - [`capacity`]: when each resource runs out — linear and seasonal
//!   forecasts of a gauge against its limit, with a 95% band, ranked by
//!   urgency.
//! - [`neighbours`]: who loads a shared resource — each workload's share,
//!   its deviation from its own baseline, and who drives contention when
//!   the resource saturates.
//!
//! All three are specified in one TOML file ([`spec::SpecFile`]).
//!
//! - [`rules`]: Prometheus recording and alerting rules — rule files,
//!   alert templates and each group's evaluation.

pub mod capacity;
pub mod common;
pub mod neighbours;
pub mod rules;
pub mod slo;
pub mod spec;

#[cfg(test)]
pub(crate) mod testing {
    /// Deterministic noise in [-1, 1] (a linear congruential step).
    pub fn noise(i: i64) -> f64 {
        let x = (i as u64)
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((x >> 33) as f64 / (1u64 << 31) as f64) - 1.0
    }
}
