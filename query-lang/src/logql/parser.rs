//! A hand-written LogQL parser for the subset in [`super::ast`].

use super::ast::*;
use super::ip::IpPattern;
use super::parsers;
use super::template::Template;
pub use super::units::{parse_bytes, parse_duration, parse_go_duration, parse_humanized_bytes};

mod metric;

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
    "|=", "|~", "|>", "!>", "!=", "!~", "=~", "==", ">=", "<=", "{", "}", "(", ")", "[", "]", ",",
    "|", "=", ">", "<", "+", "-", "*", "/", "%", "^",
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
        let matchers = self.selector()?;
        let pipeline = self.pipeline()?;
        Ok(LogExpr { matchers, pipeline })
    }

    /// `{name op "value", …}`.
    fn selector(&mut self) -> Result<Vec<StreamMatcher>, ParseError> {
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
        Ok(matchers)
    }

    /// The stages after a selector, up to the end, a `[range]`, a `)` or
    /// `| unwrap`.
    fn pipeline(&mut self) -> Result<Vec<Stage>, ParseError> {
        let mut pipeline = Vec::new();
        loop {
            let stage = match self.peek().clone() {
                Tok::Sym(op @ ("|>" | "!>")) => {
                    self.next();
                    let value = self.string()?;
                    let pattern =
                        parsers::parse_pattern_filter(&value).map_err(|m| self.error(m))?;
                    Stage::Line(LineFilter {
                        op: if op == "|>" {
                            MatchOp::Equal
                        } else {
                            MatchOp::NotEqual
                        },
                        value,
                        regex: None,
                        ip: None,
                        pattern: Some(pattern),
                    })
                }
                Tok::Sym(op @ ("|=" | "!=")) if self.ip_ahead(1) => {
                    self.next();
                    let (value, pattern) = self.ip_call()?;
                    let op = if op == "|=" {
                        MatchOp::Equal
                    } else {
                        MatchOp::NotEqual
                    };
                    Stage::Line(LineFilter {
                        op,
                        value,
                        regex: None,
                        ip: Some(pattern),
                        pattern: None,
                    })
                }
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
                    Stage::Line(LineFilter {
                        op,
                        value,
                        regex,
                        ip: None,
                        pattern: None,
                    })
                }
                Tok::Sym("|") if matches!(self.peek_at(1), Tok::Ident(w) if w == "unwrap") => {
                    break;
                }
                Tok::Sym("|") => {
                    self.next();
                    match self.stage()? {
                        Some(stage) => stage,
                        None => continue,
                    }
                }
                _ => break,
            };
            pipeline.push(stage);
        }
        Ok(pipeline)
    }

    /// One stage after `|` (`None`: a stage that does nothing).
    fn stage(&mut self) -> Result<Option<Stage>, ParseError> {
        let word = match self.peek() {
            Tok::Ident(w) if !self.is_filter_ahead() => w.clone(),
            Tok::Ident(_) | Tok::Sym("(") => return Ok(Some(Stage::Label(self.label_or()?))),
            _ => {
                return Err(self.error(format!(
                    "expected a parser, a label filter or a format after |, found {}",
                    self.describe()
                )));
            }
        };
        let stage = match word.as_str() {
            "json" => {
                self.next();
                let mut fields = Vec::new();
                for (name, expr) in self.extraction_params()? {
                    let path = parsers::parse_json_path(&expr).map_err(|m| self.error(m))?;
                    fields.push((name, path));
                }
                Stage::Json(fields)
            }
            "logfmt" => {
                self.next();
                let mut params = LogfmtParams::default();
                while self.peek() == &Tok::Sym("-") && self.peek_at(1) == &Tok::Sym("-") {
                    self.next();
                    self.next();
                    match self.ident()?.as_str() {
                        "strict" => params.strict = true,
                        "keep_empty" => params.keep_empty = true,
                        "keep" if self.peek() == &Tok::Sym("-") => {
                            self.next();
                            if self.ident()? != "empty" {
                                return Err(self.error("unknown logfmt flag".into()));
                            }
                            params.keep_empty = true;
                        }
                        other => {
                            return Err(self.error(format!(
                                "unknown logfmt flag --{other} (--strict, --keep-empty)"
                            )));
                        }
                    }
                }
                params.fields = self.extraction_params()?;
                Stage::Logfmt(params)
            }
            "regexp" => {
                self.next();
                let re = self.string()?;
                let regex = regex::Regex::new(&re)
                    .map_err(|e| self.error(format!("invalid regex {re:?}: {e}")))?;
                if regex.capture_names().flatten().next().is_none() {
                    return Err(self.error(format!(
                        "regexp {re:?} needs at least one named group, e.g. (?P<name>…)"
                    )));
                }
                Stage::Regexp(regex)
            }
            "pattern" => {
                self.next();
                let p = self.string()?;
                Stage::Pattern(parsers::parse_pattern(&p).map_err(|m| self.error(m))?)
            }
            "unpack" => {
                self.next();
                Stage::Unpack
            }
            "line_format" => {
                self.next();
                let t = self.string()?;
                Stage::LineFormat(
                    Template::parse(&t).map_err(|m| self.error(format!("line_format: {m}")))?,
                )
            }
            "label_format" => {
                self.next();
                let mut out: Vec<(String, LabelFormat)> = Vec::new();
                loop {
                    let dst = self.ident()?;
                    self.expect("=")?;
                    let f = match self.next() {
                        Tok::Ident(src) => LabelFormat::Rename(src),
                        Tok::Str(t) => LabelFormat::Template(
                            Template::parse(&t)
                                .map_err(|m| self.error(format!("label_format: {m}")))?,
                        ),
                        _ => {
                            self.at -= 1;
                            return Err(self.error(format!(
                                "label_format {dst}= needs a label or a template, found {}",
                                self.describe()
                            )));
                        }
                    };
                    if out.iter().any(|(d, _)| *d == dst) {
                        return Err(self
                            .error(format!("multiple label name '{dst}' appears in formatting")));
                    }
                    out.push((dst, f));
                    if self.peek() != &Tok::Sym(",") {
                        break;
                    }
                    self.next();
                }
                Stage::LabelFormat(out)
            }
            "drop" | "keep" => {
                self.next();
                let mut names = Vec::new();
                loop {
                    let name = self.ident()?;
                    let matcher = match self.peek().clone() {
                        Tok::Sym(op @ ("=" | "!=" | "=~" | "!~")) => {
                            self.next();
                            Some(self.string_match(op)?)
                        }
                        _ => None,
                    };
                    names.push(NameMatcher { name, matcher });
                    if self.peek() != &Tok::Sym(",") {
                        break;
                    }
                    self.next();
                }
                if word == "drop" {
                    Stage::Drop(names)
                } else {
                    Stage::Keep(names)
                }
            }
            "decolorize" => {
                self.next();
                return Ok(None);
            }
            _ => Stage::Label(self.label_or()?),
        };
        Ok(Some(stage))
    }

    /// `a="expr", b` after `json`/`logfmt`: (label, expression).
    fn extraction_params(&mut self) -> Result<Vec<(String, String)>, ParseError> {
        let mut out = Vec::new();
        while let Tok::Ident(name) = self.peek().clone() {
            self.next();
            let expr = if self.peek() == &Tok::Sym("=") {
                self.next();
                self.string()?
            } else {
                name.clone()
            };
            out.push((name, expr));
            if self.peek() != &Tok::Sym(",") || !matches!(self.peek_at(1), Tok::Ident(_)) {
                break;
            }
            self.next();
        }
        Ok(out)
    }

    /// The string after a label matcher's `op`: (op, value, the anchored
    /// regex for `=~`/`!~`).
    fn string_match(
        &mut self,
        op: &str,
    ) -> Result<(MatchOp, String, Option<regex::Regex>), ParseError> {
        let value = self.string()?;
        let op = match op {
            "=" => MatchOp::Equal,
            "!=" => MatchOp::NotEqual,
            "=~" => MatchOp::Regex,
            _ => MatchOp::NotRegex,
        };
        let regex = match op {
            MatchOp::Regex | MatchOp::NotRegex => {
                Some(anchored(&value).map_err(|m| self.error(m))?)
            }
            _ => None,
        };
        Ok((op, value, regex))
    }

    /// Whether `ip(` starts `n` tokens ahead.
    fn ip_ahead(&self, n: usize) -> bool {
        matches!(self.peek_at(n), Tok::Ident(w) if w == "ip")
            && self.peek_at(n + 1) == &Tok::Sym("(")
    }

    /// `ip("pattern")`: its text and the pattern.
    fn ip_call(&mut self) -> Result<(String, IpPattern), ParseError> {
        self.next();
        self.expect("(")?;
        let text = self.string()?;
        self.expect(")")?;
        let pattern = IpPattern::parse(&text).map_err(|m| self.error(m))?;
        Ok((text, pattern))
    }

    /// A parser word followed by a comparison operator is a label filter
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
            // (joins, the joining word or comma to skip)
            let (and, skip) = match self.peek() {
                Tok::Ident(w) if w == "and" => (true, true),
                // `| a="x", b="y"`: a comma joins with "and".
                Tok::Sym(",") => (
                    matches!(self.peek_at(1), Tok::Ident(_) | Tok::Sym("(")),
                    true,
                ),
                // So does a space: `| a="x" b="y"`.
                Tok::Ident(w) if w != "or" => (self.is_filter_ahead(), false),
                _ => (false, false),
            };
            if !and {
                break;
            }
            if skip {
                self.next();
            }
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
            (op @ ("=" | "!="), _) if self.ip_ahead(0) => {
                let (_, pattern) = self.ip_call()?;
                Ok(LabelFilter::Ip {
                    name,
                    negated: op == "!=",
                    pattern,
                })
            }
            (op @ ("=" | "!=" | "=~" | "!~"), Tok::Str(_)) => {
                let (op, value, regex) = self.string_match(op)?;
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

/// A regex anchored at both ends, as label matchers are.
fn anchored(value: &str) -> Result<regex::Regex, String> {
    regex::Regex::new(&format!("^(?:{value})$"))
        .map_err(|e| format!("invalid regex {value:?}: {e}"))
}

#[cfg(test)]
mod tests;
