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
    /// `|= ip("…")` / `!= ip("…")`: the line holds (or not) an address
    /// in the pattern; `value` is the pattern's text.
    pub ip: Option<super::ip::IpPattern>,
    /// `|> "<_> error <_>"` / `!> "…"`: the line follows (or not) the
    /// pattern; `value` is its text.
    pub pattern: Option<Pattern>,
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
    /// `name = ip("…")`, `name != ip("…")`.
    Ip {
        name: String,
        negated: bool,
        pattern: super::ip::IpPattern,
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
    /// `json` (every field) or `json a="path", b` (the named fields).
    Json(Vec<(String, JsonPath)>),
    /// `logfmt [--strict] [--keep-empty] [a, b="key"]`.
    Logfmt(LogfmtParams),
    /// `regexp "(?P<name>re)"`: named groups become labels.
    Regexp(regex::Regex),
    /// `pattern "<ip> - <_> <status>"`.
    Pattern(Pattern),
    /// `unpack`: a packed JSON entry's labels, `_entry` as the line.
    Unpack,
    Label(LabelFilter),
    /// `line_format "template"`.
    LineFormat(super::template::Template),
    /// `label_format dst=src, dst="template"`.
    LabelFormat(Vec<(String, LabelFormat)>),
    /// `drop a, b="v"`: remove labels (a matcher drops only when it matches).
    Drop(Vec<NameMatcher>),
    /// `keep a, b="v"`: keep only these labels (and `__error__`).
    Keep(Vec<NameMatcher>),
}

/// `logfmt`'s flags and requested fields (label, key).
#[derive(Debug, Clone, Default)]
pub struct LogfmtParams {
    pub strict: bool,
    pub keep_empty: bool,
    pub fields: Vec<(String, String)>,
}

/// A path into a JSON document: `a.b[0]["c d"]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath(pub Vec<JsonStep>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonStep {
    Key(String),
    Index(usize),
}

/// A `pattern` expression: literals and captures (`None` is `<_>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern(pub Vec<PatternPart>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatternPart {
    Literal(String),
    Capture(Option<String>),
}

/// One `label_format` assignment's right side.
#[derive(Debug, Clone)]
pub enum LabelFormat {
    /// `dst=src`: the value of `src`, which is removed.
    Rename(String),
    /// `dst="{{.a}}-{{.b}}"`.
    Template(super::template::Template),
}

/// A `drop`/`keep` operand: a name, optionally with a value matcher.
#[derive(Debug, Clone)]
pub struct NameMatcher {
    pub name: String,
    /// `op "value"` (the regex compiled, anchored, for `=~`/`!~`).
    pub matcher: Option<(MatchOp, String, Option<regex::Regex>)>,
}

impl NameMatcher {
    /// Whether the label `name = value` is this operand's.
    pub fn matches(&self, name: &str, value: &str) -> bool {
        if name != self.name {
            return false;
        }
        match &self.matcher {
            None => true,
            Some((op, v, re)) => match (op, re) {
                (MatchOp::Equal, _) => value == v,
                (MatchOp::NotEqual, _) => value != v,
                (MatchOp::Regex, Some(r)) => r.is_match(value),
                (MatchOp::NotRegex, Some(r)) => !r.is_match(value),
                (_, None) => false,
            },
        }
    }
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
    AbsentOverTime,
    /// The functions of unwrapped ranges.
    SumOverTime,
    AvgOverTime,
    MinOverTime,
    MaxOverTime,
    StdvarOverTime,
    StddevOverTime,
    QuantileOverTime,
    FirstOverTime,
    LastOverTime,
    RateCounter,
}

impl RangeFn {
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "count_over_time" => Self::CountOverTime,
            "rate" => Self::Rate,
            "bytes_over_time" => Self::BytesOverTime,
            "bytes_rate" => Self::BytesRate,
            "absent_over_time" => Self::AbsentOverTime,
            "sum_over_time" => Self::SumOverTime,
            "avg_over_time" => Self::AvgOverTime,
            "min_over_time" => Self::MinOverTime,
            "max_over_time" => Self::MaxOverTime,
            "stdvar_over_time" => Self::StdvarOverTime,
            "stddev_over_time" => Self::StddevOverTime,
            "quantile_over_time" => Self::QuantileOverTime,
            "first_over_time" => Self::FirstOverTime,
            "last_over_time" => Self::LastOverTime,
            "rate_counter" => Self::RateCounter,
            _ => return None,
        })
    }

    /// Needs `| unwrap` (a value per entry) rather than counting entries.
    pub fn needs_unwrap(self) -> bool {
        !matches!(
            self,
            Self::CountOverTime
                | Self::Rate
                | Self::BytesOverTime
                | Self::BytesRate
                | Self::AbsentOverTime
        )
    }

    /// Takes no `| unwrap`.
    pub fn refuses_unwrap(self) -> bool {
        matches!(
            self,
            Self::CountOverTime | Self::BytesOverTime | Self::BytesRate
        )
    }

    /// Takes `by`/`without` (Loki: the unwrapped functions but sum, rate,
    /// rate_counter and absent).
    pub fn takes_grouping(self) -> bool {
        self.needs_unwrap() && !matches!(self, Self::SumOverTime | Self::RateCounter)
    }
}

/// `| unwrap [conversion(]label[)]` and the label filters after it.
#[derive(Debug, Clone)]
pub struct Unwrap {
    pub label: String,
    pub conversion: Conversion,
    pub post_filters: Vec<LabelFilter>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conversion {
    Float,
    /// `duration(x)` / `duration_seconds(x)`: Go durations, in seconds.
    Duration,
    /// `bytes(x)`: humanized sizes, in bytes.
    Bytes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggOp {
    Sum,
    Avg,
    Min,
    Max,
    Count,
    Stddev,
    Stdvar,
    Topk,
    Bottomk,
    Sort,
    SortDesc,
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
    And,
    Or,
    Unless,
}

/// `on`/`ignoring` and `group_left`/`group_right` of a binary operation
/// between vectors.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VectorMatching {
    /// `on(...)` (true) or `ignoring(...)` (false, also the default).
    pub on: bool,
    pub labels: Vec<String>,
    pub card: Cardinality,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Cardinality {
    #[default]
    OneToOne,
    /// `group_left(extra labels)`: many on the left.
    ManyToOne(Vec<String>),
    /// `group_right(extra labels)`: many on the right.
    OneToMany(Vec<String>),
}

impl BinOp {
    pub fn is_set(self) -> bool {
        matches!(self, Self::And | Self::Or | Self::Unless)
    }

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
            // Set operators never combine values.
            Self::And | Self::Or | Self::Unless => a,
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
        unwrap: Option<Unwrap>,
        /// `quantile_over_time`'s φ.
        param: Option<f64>,
        grouping: Option<Grouping>,
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
        matching: VectorMatching,
        lhs: Box<MetricExpr>,
        rhs: Box<MetricExpr>,
    },
    /// `label_replace(v, "dst", "replacement", "src", "regex")`.
    LabelReplace {
        inner: Box<MetricExpr>,
        dst: String,
        replacement: String,
        src: String,
        /// Anchored.
        regex: regex::Regex,
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
