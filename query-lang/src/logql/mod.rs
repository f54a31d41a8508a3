//! LogQL: a parser for the subset Grafana's Loki data source and users
//! need (stream selectors, line filters, `json`, `logfmt`, label filters,
//! `line_format`, `drop`/`keep`, `count_over_time`, `rate`,
//! `bytes_over_time`, `bytes_rate`, `sum`/`avg`/`min`/`max`/`count`/
//! `topk`/`bottomk` with `by`/`without`, arithmetic and comparisons) and
//! its evaluation over streams from a [`LogSource`].

pub mod ast;
pub mod eval;
pub mod parser;
pub mod pipeline;
pub mod source;

pub use ast::{LineFilter, LogExpr, MatchOp, MetricExpr, Query, StreamMatcher};
pub use eval::{
    Direction, EvalError, LogSource, Options, OutStream, Series, SourceEntry, SourceStream, Value,
    eval_log, eval_metric, raw_line_filters,
};
pub use parser::{ParseError, parse, parse_duration};
pub use pipeline::Labels;
