//! Prometheus-compatible rules: recording and alerting rule groups in
//! Prometheus' rule file format, evaluated with Prometheus' semantics.
//!
//! - [`file`]: the rule file format and the checks `promtool check rules`
//!   makes.
//! - [`template`]: alert label and annotation templates (Go's
//!   `text/template` as rule files use it, with Prometheus' functions).
//! - [`group`]: a group's evaluation state machine — recorded series,
//!   alert states, stale markers, notifications due, restoring pending
//!   times after a restart. The server drives it ([`group::RuleQuerier`]
//!   answers its queries; the server writes and sends what it returns).

pub mod file;
pub mod gofmt;
pub mod group;
pub mod template;

pub use file::{PromDuration, RuleDef, RuleFile, RuleFileError, RuleGroup};
pub use group::{Alert, AlertState, Group, GroupOutput, Health, RuleContext, RuleQuerier};
pub use template::{QuerySample, Template, TemplateData, TemplateError};
