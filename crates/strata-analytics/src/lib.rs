//! Strata's analytics stage: answers operators ask every day, computed
//! inside the database over the tenant's own data.
//!
//! [`slo`]: service-level objectives from a spec file — the SLI over any
//! window, the error budget left, and the Google SRE workbook's
//! multi-window multi-burn-rate alert states — evaluated with the PromQL
//! engine over a [`strata_query_lang::promql::Source`].

pub mod slo;
