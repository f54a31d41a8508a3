//! What evaluation hands around: answers (streams, series, values), the
//! options bounding one evaluation, and the line filters a source may
//! apply early. The evaluator and its parts (`range`, `ops`, `limited`)
//! all depend on this module, not on each other.

use super::ast::*;
use super::labels::Labels;
use super::source::EvalError;

/// The line filters of a pipeline that see the line as stored: those
/// before any stage that rewrites it (`line_format`, `unpack`).
pub fn raw_line_filters(pipeline: &[Stage]) -> Vec<LineFilter> {
    pipeline
        .iter()
        .take_while(|s| !matches!(s, Stage::LineFormat(_) | Stage::Unpack))
        .filter_map(|s| match s {
            // Address filters run in the pipeline only.
            Stage::Line(f) if f.ip.is_none() && f.pattern.is_none() => Some(f.clone()),
            _ => None,
        })
        .collect()
}

impl LineFilter {
    /// Whether `line` passes.
    pub fn passes(&self, line: &str) -> bool {
        if let Some(p) = &self.pattern {
            return p.test(line) == (self.op == MatchOp::Equal);
        }
        if let Some(ip) = &self.ip {
            return ip.matches_line(line) == (self.op == MatchOp::Equal);
        }
        match (&self.op, &self.regex) {
            (MatchOp::Equal, _) => line.contains(self.value.as_str()),
            (MatchOp::NotEqual, _) => !line.contains(self.value.as_str()),
            (MatchOp::Regex, Some(r)) => r.is_match(line),
            (MatchOp::NotRegex, Some(r)) => !r.is_match(line),
            (_, None) => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Forward,
    Backward,
}

/// A stream of a log query's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct OutStream {
    pub labels: Labels,
    /// (timestamp ns, line), in the query's direction.
    pub entries: Vec<(i64, String)>,
}

/// A series of a metric query's answer: points at steps (ns).
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: Labels,
    pub points: Vec<(i64, f64)>,
}

/// A metric query's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar(f64),
    Series(Vec<Series>),
}

/// Bounds on one evaluation.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Most entries a query may read (0: unlimited).
    pub max_entries: usize,
    /// Most series a metric query may return (0: unlimited).
    pub max_series: usize,
}

pub fn check_entries(n: usize, opts: &Options) -> Result<(), EvalError> {
    if opts.max_entries > 0 && n > opts.max_entries {
        return Err(EvalError::TooManyEntries {
            limit: opts.max_entries,
        });
    }
    Ok(())
}

/// `{a="x", b="y"}`, as Loki prints a series in messages.
pub fn format_labels(labels: &Labels) -> String {
    let pairs: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", pairs.join(", "))
}
