//! A hand-written LogQL parser for the subset in [`super::ast`].

use std::time::Duration;

use super::ast::*;

/// Why a query does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("parse error at {pos}: {message}")]
pub struct ParseError {
    pub pos: usize,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(f64),
    /// A number with a unit: `5m`, `1h30m`, `10MB`.
    Unit(String),
    Sym(&'static str),
    End,
}

const SYMBOLS: &[&str] = &[
    "|=", "|~", "!=", "!~", "=~", "==", ">=", "<=", "{", "}", "(", ")", "[", "]", ",", "|", "=",
    ">", "<", "+", "-", "*", "/", "%", "^",
];

fn lex(s: &str) -> Result<Vec<(usize, Tok)>, ParseError> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let err = |pos, message: String| ParseError { pos, message };
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'#' {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        let start = i;
        if c == b'"' {
            i += 1;
            let mut v = String::new();
            loop {
                let Some(ch) = s[i..].chars().next() else {
                    return Err(err(start, "unterminated string".into()));
                };
                i += ch.len_utf8();
                match ch {
                    '"' => break,
                    '\\' => {
                        let Some(e) = s[i..].chars().next() else {
                            return Err(err(start, "unterminated string".into()));
                        };
                        i += e.len_utf8();
                        match e {
                            'n' => v.push('\n'),
                            't' => v.push('\t'),
                            'r' => v.push('\r'),
                            '"' | '\\' => v.push(e),
                            other => {
                                v.push('\\');
                                v.push(other);
                            }
                        }
                    }
                    ch => v.push(ch),
                }
            }
            out.push((start, Tok::Str(v)));
            continue;
        }
        if c == b'`' {
            let Some(end) = s[i + 1..].find('`') else {
                return Err(err(start, "unterminated raw string".into()));
            };
            out.push((start, Tok::Str(s[i + 1..i + 1 + end].to_owned())));
            i += end + 2;
            continue;
        }
        if c.is_ascii_digit() || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit)) {
            while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
                i += 1;
            }
            if i < b.len() && b[i].is_ascii_alphabetic() {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.') {
                    i += 1;
                }
                out.push((start, Tok::Unit(s[start..i].to_owned())));
            } else {
                let n = s[start..i]
                    .parse()
                    .map_err(|_| err(start, format!("bad number {}", &s[start..i])))?;
                out.push((start, Tok::Num(n)));
            }
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push((start, Tok::Ident(s[start..i].to_owned())));
            continue;
        }
        match SYMBOLS.iter().find(|sym| s[i..].starts_with(**sym)) {
            Some(sym) => {
                out.push((start, Tok::Sym(sym)));
                i += sym.len();
            }
            None => {
                let ch = s[i..].chars().next().unwrap_or('?');
                return Err(err(start, format!("unexpected character {ch:?}")));
            }
        }
    }
    out.push((s.len(), Tok::End));
    Ok(out)
}

/// Parses a LogQL query.
pub fn parse(query: &str) -> Result<Query, ParseError> {
    crate::nesting::check(query, crate::nesting::Syntax::LogQl).map_err(|e| ParseError {
        pos: 0,
        message: e.to_string(),
    })?;
    let toks = lex(query)?;
    let mut p = Parser { toks, at: 0 };
    let q = if p.peek() == &Tok::Sym("{") {
        let log = p.log_expr()?;
        Query::Log(log)
    } else {
        Query::Metric(p.metric(0)?)
    };
    if p.peek() != &Tok::End {
        return Err(p.error(format!("unexpected {}", p.describe())));
    }
    Ok(q)
}

struct Parser {
    toks: Vec<(usize, Tok)>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> &Tok {
        &self.toks[self.at.min(self.toks.len() - 1)].1
    }

    fn peek_at(&self, n: usize) -> &Tok {
        &self.toks[(self.at + n).min(self.toks.len() - 1)].1
    }

    fn next(&mut self) -> Tok {
        let t = self.peek().clone();
        if self.at < self.toks.len() - 1 {
            self.at += 1;
        }
        t
    }

    fn pos(&self) -> usize {
        self.toks[self.at.min(self.toks.len() - 1)].0
    }

    fn error(&self, message: String) -> ParseError {
        ParseError {
            pos: self.pos(),
            message,
        }
    }

    fn describe(&self) -> String {
        match self.peek() {
            Tok::Ident(s) => format!("identifier {s:?}"),
            Tok::Str(s) => format!("string {s:?}"),
            Tok::Num(n) => format!("number {n}"),
            Tok::Unit(u) => format!("{u:?}"),
            Tok::Sym(s) => format!("{s:?}"),
            Tok::End => "end of query".into(),
        }
    }

    fn expect(&mut self, sym: &'static str) -> Result<(), ParseError> {
        if self.peek() == &Tok::Sym(sym) {
            self.next();
            Ok(())
        } else {
            Err(self.error(format!("expected {sym:?}, found {}", self.describe())))
        }
    }

    fn ident(&mut self) -> Result<String, ParseError> {
        match self.next() {
            Tok::Ident(s) => Ok(s),
            _ => {
                self.at -= 1;
                Err(self.error(format!("expected a name, found {}", self.describe())))
            }
        }
    }

    fn string(&mut self) -> Result<String, ParseError> {
        match self.next() {
            Tok::Str(s) => Ok(s),
            _ => {
                self.at -= 1;
                Err(self.error(format!("expected a string, found {}", self.describe())))
            }
        }
    }

    fn log_expr(&mut self) -> Result<LogExpr, ParseError> {
        self.expect("{")?;
        let mut matchers = Vec::new();
        while self.peek() != &Tok::Sym("}") {
            let name = self.ident()?;
            let op = match self.next() {
                Tok::Sym("=") => MatchOp::Equal,
                Tok::Sym("!=") => MatchOp::NotEqual,
                Tok::Sym("=~") => MatchOp::Regex,
                Tok::Sym("!~") => MatchOp::NotRegex,
                _ => {
                    self.at -= 1;
                    return Err(self.error(format!(
                        "expected =, !=, =~ or !~ after {name}, found {}",
                        self.describe()
                    )));
                }
            };
            let value = self.string()?;
            matchers.push(StreamMatcher { name, op, value });
            if self.peek() == &Tok::Sym(",") {
                self.next();
            } else if self.peek() != &Tok::Sym("}") {
                return Err(self.error(format!("expected , or }}, found {}", self.describe())));
            }
        }
        self.expect("}")?;
        if matchers.is_empty() {
            return Err(
                self.error("queries require at least one stream matcher, e.g. {job=\"x\"}".into())
            );
        }
        if matchers.iter().all(|m| {
            matches!(m.op, MatchOp::Equal | MatchOp::Regex)
                && (m.value.is_empty() || m.value == ".*")
                || matches!(m.op, MatchOp::NotEqual | MatchOp::NotRegex)
        }) {
            return Err(self.error(
                "queries require at least one matcher that does not match the empty string".into(),
            ));
        }
        let mut pipeline = Vec::new();
        loop {
            let stage = match self.peek().clone() {
                Tok::Sym(op @ ("|=" | "!=" | "|~" | "!~")) => {
                    self.next();
                    let value = self.string()?;
                    let op = match op {
                        "|=" => MatchOp::Equal,
                        "!=" => MatchOp::NotEqual,
                        "|~" => MatchOp::Regex,
                        _ => MatchOp::NotRegex,
                    };
                    let regex = match op {
                        MatchOp::Regex | MatchOp::NotRegex => Some(
                            regex::Regex::new(&value)
                                .map_err(|e| self.error(format!("invalid regex {value:?}: {e}")))?,
                        ),
                        _ => None,
                    };
                    Stage::Line(LineFilter { op, value, regex })
                }
                Tok::Sym("|") => {
                    self.next();
                    match self.peek().clone() {
                        Tok::Ident(w) if w == "json" && !self.is_filter_ahead() => {
                            self.next();
                            Stage::Json
                        }
                        Tok::Ident(w) if w == "logfmt" && !self.is_filter_ahead() => {
                            self.next();
                            Stage::Logfmt
                        }
                        Tok::Ident(w) if w == "line_format" => {
                            self.next();
                            let t = self.string()?;
                            Stage::LineFormat(template(&t).map_err(|m| self.error(m))?)
                        }
                        Tok::Ident(w)
                            if (w == "drop" || w == "keep") && !self.is_filter_ahead() =>
                        {
                            self.next();
                            let mut names = vec![self.ident()?];
                            while self.peek() == &Tok::Sym(",") {
                                self.next();
                                names.push(self.ident()?);
                            }
                            if w == "drop" {
                                Stage::Drop(names)
                            } else {
                                Stage::Keep(names)
                            }
                        }
                        Tok::Ident(w) if w == "decolorize" => {
                            self.next();
                            continue;
                        }
                        Tok::Ident(_) | Tok::Sym("(") => Stage::Label(self.label_or()?),
                        _ => {
                            return Err(self.error(format!(
                                "expected a parser, a label filter or line_format after |, found {}",
                                self.describe()
                            )));
                        }
                    }
                }
                _ => break,
            };
            pipeline.push(stage);
        }
        Ok(LogExpr { matchers, pipeline })
    }

    /// `json` / `drop` followed by a comparison operator is a label filter
    /// on a label named so.
    fn is_filter_ahead(&self) -> bool {
        matches!(
            self.peek_at(1),
            Tok::Sym("=" | "!=" | "=~" | "!~" | "==" | ">" | ">=" | "<" | "<=")
        )
    }

    fn label_or(&mut self) -> Result<LabelFilter, ParseError> {
        let mut left = self.label_and()?;
        while matches!(self.peek(), Tok::Ident(w) if w == "or") {
            self.next();
            let right = self.label_and()?;
            left = LabelFilter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn label_and(&mut self) -> Result<LabelFilter, ParseError> {
        let mut left = self.label_atom()?;
        loop {
            let and = match self.peek() {
                Tok::Ident(w) if w == "and" => true,
                // `| a="x", b="y"`: a comma joins with "and".
                Tok::Sym(",") => matches!(self.peek_at(1), Tok::Ident(_) | Tok::Sym("(")),
                _ => false,
            };
            if !and {
                break;
            }
            self.next();
            let right = self.label_atom()?;
            left = LabelFilter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn label_atom(&mut self) -> Result<LabelFilter, ParseError> {
        if self.peek() == &Tok::Sym("(") {
            self.next();
            let f = self.label_or()?;
            self.expect(")")?;
            return Ok(f);
        }
        let name = self.ident()?;
        let op = match self.next() {
            Tok::Sym(s) => s,
            _ => {
                self.at -= 1;
                return Err(self.error(format!(
                    "expected a comparison after label {name}, found {}",
                    self.describe()
                )));
            }
        };
        match (op, self.peek().clone()) {
            (op @ ("=" | "!=" | "=~" | "!~"), Tok::Str(value)) => {
                self.next();
                let op = match op {
                    "=" => MatchOp::Equal,
                    "!=" => MatchOp::NotEqual,
                    "=~" => MatchOp::Regex,
                    _ => MatchOp::NotRegex,
                };
                let regex = match op {
                    MatchOp::Regex | MatchOp::NotRegex => Some(
                        regex::Regex::new(&format!("^(?:{value})$"))
                            .map_err(|e| self.error(format!("invalid regex {value:?}: {e}")))?,
                    ),
                    _ => None,
                };
                Ok(LabelFilter::String {
                    name,
                    op,
                    value,
                    regex,
                })
            }
            (op @ ("==" | "=" | "!=" | ">" | ">=" | "<" | "<="), Tok::Num(n)) => {
                self.next();
                Ok(LabelFilter::Number {
                    name,
                    op: cmp(op),
                    value: n,
                    unit: Unit::Plain,
                })
            }
            (op @ ("==" | "=" | "!=" | ">" | ">=" | "<" | "<="), Tok::Unit(u)) => {
                self.next();
                let (value, unit) = if let Some(d) = parse_duration(&u) {
                    (d.as_secs_f64(), Unit::Duration)
                } else if let Some(b) = parse_bytes(&u) {
                    (b, Unit::Bytes)
                } else {
                    return Err(self.error(format!("{u:?} is neither a duration nor a size")));
                };
                Ok(LabelFilter::Number {
                    name,
                    op: cmp(op),
                    value,
                    unit,
                })
            }
            (op, _) => Err(self.error(format!(
                "label filter {name} {op} needs a string, number, duration or size, found {}",
                self.describe()
            ))),
        }
    }

    /// Metric expressions by precedence climbing: `or`-free LogQL
    /// arithmetic and comparisons.
    fn metric(&mut self, min_prec: u8) -> Result<MetricExpr, ParseError> {
        let mut lhs = self.metric_unary()?;
        while let Some((op, prec, right_assoc)) = self.binop() {
            if prec < min_prec {
                break;
            }
            self.next();
            let bool_modifier = matches!(self.peek(), Tok::Ident(w) if w == "bool");
            if bool_modifier {
                self.next();
            }
            let rhs = self.metric(if right_assoc { prec } else { prec + 1 })?;
            lhs = MetricExpr::Binary {
                op,
                bool_modifier,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
            };
        }
        Ok(lhs)
    }

    fn binop(&self) -> Option<(BinOp, u8, bool)> {
        Some(match self.peek() {
            Tok::Sym("==") => (BinOp::Eq, 1, false),
            Tok::Sym("!=") => (BinOp::Ne, 1, false),
            Tok::Sym(">") => (BinOp::Gt, 1, false),
            Tok::Sym(">=") => (BinOp::Ge, 1, false),
            Tok::Sym("<") => (BinOp::Lt, 1, false),
            Tok::Sym("<=") => (BinOp::Le, 1, false),
            Tok::Sym("+") => (BinOp::Add, 2, false),
            Tok::Sym("-") => (BinOp::Sub, 2, false),
            Tok::Sym("*") => (BinOp::Mul, 3, false),
            Tok::Sym("/") => (BinOp::Div, 3, false),
            Tok::Sym("%") => (BinOp::Mod, 3, false),
            Tok::Sym("^") => (BinOp::Pow, 4, true),
            _ => return None,
        })
    }

    fn metric_unary(&mut self) -> Result<MetricExpr, ParseError> {
        match self.peek().clone() {
            Tok::Num(n) => {
                self.next();
                Ok(MetricExpr::Number(n))
            }
            Tok::Sym("-") => {
                self.next();
                let inner = self.metric_unary()?;
                Ok(MetricExpr::Binary {
                    op: BinOp::Mul,
                    bool_modifier: false,
                    lhs: Box::new(MetricExpr::Number(-1.0)),
                    rhs: Box::new(inner),
                })
            }
            Tok::Sym("(") => {
                self.next();
                let e = self.metric(0)?;
                self.expect(")")?;
                Ok(e)
            }
            Tok::Ident(name) => {
                self.next();
                match name.as_str() {
                    "vector" => {
                        self.expect("(")?;
                        let v = match self.next() {
                            Tok::Num(n) => n,
                            _ => return Err(self.error("vector() takes a number".into())),
                        };
                        self.expect(")")?;
                        Ok(MetricExpr::Vector(v))
                    }
                    "count_over_time" | "rate" | "bytes_over_time" | "bytes_rate" => {
                        let func = match name.as_str() {
                            "count_over_time" => RangeFn::CountOverTime,
                            "rate" => RangeFn::Rate,
                            "bytes_over_time" => RangeFn::BytesOverTime,
                            _ => RangeFn::BytesRate,
                        };
                        self.expect("(")?;
                        let log = self.log_expr()?;
                        self.expect("[")?;
                        let range = match self.next() {
                            Tok::Unit(u) => parse_duration(&u)
                                .ok_or_else(|| self.error(format!("bad range {u:?}")))?,
                            _ => return Err(self.error("expected a range like [5m]".into())),
                        };
                        self.expect("]")?;
                        let mut offset = Duration::ZERO;
                        if matches!(self.peek(), Tok::Ident(w) if w == "offset") {
                            self.next();
                            offset = match self.next() {
                                Tok::Unit(u) => parse_duration(&u)
                                    .ok_or_else(|| self.error(format!("bad offset {u:?}")))?,
                                _ => return Err(self.error("expected an offset like 1h".into())),
                            };
                        }
                        self.expect(")")?;
                        if range.is_zero() {
                            return Err(self.error("the range must be positive".into()));
                        }
                        Ok(MetricExpr::Range {
                            func,
                            log,
                            range,
                            offset,
                        })
                    }
                    "sum" | "avg" | "min" | "max" | "count" | "topk" | "bottomk" => {
                        let op = match name.as_str() {
                            "sum" => AggOp::Sum,
                            "avg" => AggOp::Avg,
                            "min" => AggOp::Min,
                            "max" => AggOp::Max,
                            "count" => AggOp::Count,
                            "topk" => AggOp::Topk,
                            _ => AggOp::Bottomk,
                        };
                        let mut grouping = self.grouping()?;
                        self.expect("(")?;
                        let param = if matches!(op, AggOp::Topk | AggOp::Bottomk) {
                            let k = match self.next() {
                                Tok::Num(n) if n >= 1.0 => n,
                                _ => return Err(self.error(format!("{name} needs k ≥ 1 first"))),
                            };
                            self.expect(",")?;
                            Some(k)
                        } else {
                            None
                        };
                        let inner = self.metric(0)?;
                        self.expect(")")?;
                        if grouping.is_none() {
                            grouping = self.grouping()?;
                        }
                        Ok(MetricExpr::Aggregate {
                            op,
                            grouping,
                            param,
                            inner: Box::new(inner),
                        })
                    }
                    other => Err(ParseError {
                        pos: self.toks[self.at - 1].0,
                        message: format!("unknown function or aggregation {other:?}"),
                    }),
                }
            }
            _ => Err(self.error(format!(
                "expected a metric query (e.g. rate({{job=\"x\"}}[5m])), found {}",
                self.describe()
            ))),
        }
    }

    fn grouping(&mut self) -> Result<Option<Grouping>, ParseError> {
        let by = match self.peek() {
            Tok::Ident(w) if w == "by" => true,
            Tok::Ident(w) if w == "without" => false,
            _ => return Ok(None),
        };
        self.next();
        self.expect("(")?;
        let mut names = Vec::new();
        while self.peek() != &Tok::Sym(")") {
            names.push(self.ident()?);
            if self.peek() == &Tok::Sym(",") {
                self.next();
            }
        }
        self.expect(")")?;
        Ok(Some(if by {
            Grouping::By(names)
        } else {
            Grouping::Without(names)
        }))
    }
}

fn cmp(op: &str) -> CmpOp {
    match op {
        "==" | "=" => CmpOp::Eq,
        "!=" => CmpOp::Ne,
        ">" => CmpOp::Gt,
        ">=" => CmpOp::Ge,
        "<" => CmpOp::Lt,
        _ => CmpOp::Le,
    }
}

/// `1h30m`, `5m`, `500ms`, `2d`, `1w` (Prometheus' duration syntax).
pub fn parse_duration(s: &str) -> Option<Duration> {
    let mut total = Duration::ZERO;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit() && c != '.')?;
        if digits == 0 {
            return None;
        }
        let n: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let secs = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            "w" => 604_800.0,
            "y" => 31_536_000.0,
            _ => return None,
        };
        // Checked: `99999999999999999999y` is text a user can send.
        total = total.checked_add(Duration::try_from_secs_f64(n * secs).ok()?)?;
        rest = &rest[unit_len..];
    }
    Some(total)
}

/// `10MB`, `1KiB`, `512B` (Loki's humanized bytes).
pub fn parse_bytes(s: &str) -> Option<f64> {
    let split = s.find(|c: char| c.is_ascii_alphabetic())?;
    let n: f64 = s[..split].parse().ok()?;
    let mult = match s[split..].to_ascii_lowercase().as_str() {
        "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024f64.powi(4),
        _ => return None,
    };
    Some(n * mult)
}

/// A `line_format` template: text and `{{.label}}` references (Go
/// template's field syntax; other actions are not supported).
fn template(t: &str) -> Result<Vec<TemplatePart>, String> {
    let mut parts = Vec::new();
    let mut rest = t;
    while let Some(open) = rest.find("{{") {
        if open > 0 {
            parts.push(TemplatePart::Text(rest[..open].to_owned()));
        }
        let after = &rest[open + 2..];
        let close = after
            .find("}}")
            .ok_or_else(|| "unterminated {{ in line_format".to_owned())?;
        let action = after[..close]
            .trim()
            .trim_start_matches('-')
            .trim_end_matches('-')
            .trim();
        let name = action
            .strip_prefix('.')
            .filter(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
            .ok_or_else(|| {
                format!("line_format supports {{{{.label}}}} references only, not {{{{{action}}}}}")
            })?;
        parts.push(TemplatePart::Label(name.to_owned()));
        rest = &after[close + 2..];
    }
    if !rest.is_empty() {
        parts.push(TemplatePart::Text(rest.to_owned()));
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    /// Found by the `logql` fuzz target's kin in PromQL: a duration too
    /// large for `Duration` is not a duration, not a panic.
    #[test]
    fn huge_durations_are_refused() {
        assert_eq!(super::parse_duration("99999999999999999999999y"), None);
        assert_eq!(super::parse_duration("1e400s"), None);
        assert!(super::parse("rate({a=\"b\"}[99999999999999999999999y])").is_err());
        assert_eq!(
            super::parse_duration("1h30m"),
            Some(std::time::Duration::from_secs(5400))
        );
    }

    use super::*;

    #[test]
    fn parses_log_queries_with_pipelines() {
        let Query::Log(q) = parse(
            r#"{job="odoo", level=~"err.*"} |= "picking" != `debug` | json | status >= 500 and route="/x" | line_format "{{.route}} {{ .status }}""#,
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(q.matchers.len(), 2);
        assert_eq!(q.pipeline.len(), 5);
        assert!(matches!(q.pipeline[3], Stage::Label(LabelFilter::And(..))));
        let Stage::LineFormat(parts) = &q.pipeline[4] else {
            panic!()
        };
        assert_eq!(parts[0], TemplatePart::Label("route".into()));
    }

    #[test]
    fn parses_metric_queries() {
        let Query::Metric(MetricExpr::Aggregate { op, grouping, .. }) =
            parse(r#"sum by (level) (count_over_time({job="odoo"} | drop __error__ [5m]))"#)
                .unwrap()
        else {
            panic!()
        };
        assert_eq!(op, AggOp::Sum);
        assert_eq!(grouping, Some(Grouping::By(vec!["level".into()])));
        assert!(matches!(
            parse("vector(1)+vector(1)").unwrap(),
            Query::Metric(MetricExpr::Binary { op: BinOp::Add, .. })
        ));
        assert!(parse(r#"topk(3, rate({job="a"}[1m] offset 5m))"#).is_ok());
        assert!(parse(r#"sum(rate({job="a"}[1m])) by (x) / 2"#).is_ok());
    }

    #[test]
    fn errors_say_where_and_what() {
        for (q, want) in [
            (r#"{job="x""#, "expected , or }"),
            (r#"{job=~".*"}"#, "does not match the empty string"),
            ("{}", "at least one stream matcher"),
            (r#"rate({job="x"})"#, "expected \"[\""),
            (r#"{job="x"} | line_format "{{if .a}}""#, "references only"),
            (r#"{job="x"} |~ "(""#, "invalid regex"),
            (r#"nope({job="x"}[1m])"#, "unknown function"),
        ] {
            let e = parse(q).unwrap_err();
            assert!(e.to_string().contains(want), "{q}: {e}");
        }
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_bytes("1KiB"), Some(1024.0));
    }
}
