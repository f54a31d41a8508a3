//! LogQL: a parser and evaluator for the language Grafana's Loki data
//! source and users write: stream selectors, line filters, the `json`,
//! `logfmt`, `pattern`, `regexp` and `unpack` parsers, label filters,
//! `line_format`/`label_format` templates, `drop`/`keep`, log range
//! aggregations and unwrapped ones (`sum_over_time` … `rate_counter`,
//! `absent_over_time`), vector aggregations, `label_replace`, and binary
//! operators with vector matching; evaluated over streams from a
//! [`LogSource`].

pub mod ast;
mod cells;
pub mod detect;
pub mod eval;
mod fold;
mod go_time;
pub mod ip;
mod labels;
mod limited;
mod model;
mod ops;
pub mod parser;
pub mod parsers;
pub mod pipeline;
mod range;
mod slices;
pub mod source;
pub mod template;
mod template_fns;
#[cfg(test)]
mod tests;
pub mod units;

pub use ast::{LineFilter, LogExpr, MatchOp, MetricExpr, Query, StreamMatcher};
pub use eval::{
    Direction, EvalError, LogSource, Options, OutStream, Series, SourceEntry, SourceStream, Value,
    eval_log, eval_metric, raw_line_filters, sample_entries,
};
pub use parser::{ParseError, parse, parse_duration};
pub use pipeline::Labels;
pub use source::{Part, Visit};
