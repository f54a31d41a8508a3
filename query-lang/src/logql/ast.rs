//! LogQL's syntax tree (the subset Strata evaluates).

use std::time::Duration;

/// A stream selector matcher: `name op "value"`.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamMatcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
}

/// A line filter: `|= "x"`, `!= "x"`, `|~ "re"`, `!~ "re"`.
#[derive(Debug, Clone)]
pub struct LineFilter {
    pub op: MatchOp,
    pub value: String,
    /// Compiled for the regex operators.
    pub regex: Option<regex::Regex>,
}

/// A label filter expression after a `|`.
#[derive(Debug, Clone)]
pub enum LabelFilter {
    And(Box<LabelFilter>, Box<LabelFilter>),
    Or(Box<LabelFilter>, Box<LabelFilter>),
    /// `name = "v"`, `name != "v"`, `name =~ "re"`, `name !~ "re"`.
    String {
        name: String,
        op: MatchOp,
        value: String,
        regex: Option<regex::Regex>,
    },
    /// `name > 10`, `name <= 1.5s`, `name == 20MB`: the label's value as a
    /// number (durations in seconds, bytes in bytes).
    Number {
        name: String,
        op: CmpOp,
        value: f64,
        unit: Unit,
    },
}

/// How a numeric label filter reads the label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Plain,
    Duration,
    Bytes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CmpOp {
    pub fn apply(self, a: f64, b: f64) -> bool {
        match self {
            Self::Eq => a == b,
            Self::Ne => a != b,
            Self::Gt => a > b,
            Self::Ge => a >= b,
            Self::Lt => a < b,
            Self::Le => a <= b,
        }
    }
}

/// One pipeline stage.
#[derive(Debug, Clone)]
pub enum Stage {
    Line(LineFilter),
    Json,
    Logfmt,
    Label(LabelFilter),
    /// `line_format "{{.a}} text {{ .b }}"`: the template's parts.
    LineFormat(Vec<TemplatePart>),
    /// `drop a, b`: remove labels.
    Drop(Vec<String>),
    /// `keep a, b`: keep only these labels.
    Keep(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplatePart {
    Text(String),
    Label(String),
}

/// A log query: a selector and its pipeline.
#[derive(Debug, Clone)]
pub struct LogExpr {
    pub matchers: Vec<StreamMatcher>,
    pub pipeline: Vec<Stage>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeFn {
    CountOverTime,
    Rate,
    BytesOverTime,
    BytesRate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggOp {
    Sum,
    Avg,
    Min,
    Max,
    Count,
    Topk,
    Bottomk,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grouping {
    By(Vec<String>),
    Without(Vec<String>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl BinOp {
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            Self::Eq | Self::Ne | Self::Gt | Self::Ge | Self::Lt | Self::Le
        )
    }

    pub fn apply(self, a: f64, b: f64) -> f64 {
        match self {
            Self::Add => a + b,
            Self::Sub => a - b,
            Self::Mul => a * b,
            Self::Div => a / b,
            Self::Mod => a % b,
            Self::Pow => a.powf(b),
            Self::Eq => f64::from(u8::from(a == b)),
            Self::Ne => f64::from(u8::from(a != b)),
            Self::Gt => f64::from(u8::from(a > b)),
            Self::Ge => f64::from(u8::from(a >= b)),
            Self::Lt => f64::from(u8::from(a < b)),
            Self::Le => f64::from(u8::from(a <= b)),
        }
    }
}

/// A metric query.
#[derive(Debug, Clone)]
pub enum MetricExpr {
    Range {
        func: RangeFn,
        log: LogExpr,
        range: Duration,
        offset: Duration,
    },
    Aggregate {
        op: AggOp,
        grouping: Option<Grouping>,
        /// `topk`/`bottomk`'s k.
        param: Option<f64>,
        inner: Box<MetricExpr>,
    },
    Binary {
        op: BinOp,
        /// Comparisons return 0/1 instead of filtering.
        bool_modifier: bool,
        lhs: Box<MetricExpr>,
        rhs: Box<MetricExpr>,
    },
    Number(f64),
    /// `vector(x)`: one series without labels.
    Vector(f64),
}

/// A parsed query.
#[derive(Debug, Clone)]
pub enum Query {
    Log(LogExpr),
    Metric(MetricExpr),
}
