//! Alert label and annotation templates: the part of Go's `text/template`
//! that rule files use, with Prometheus' data and functions.
//!
//! Prometheus expands each label and annotation of a firing alert with
//! `{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}
//! {{$externalURL := .ExternalURL}}{{$value := .Value}}` before the text, and
//! with `missingkey=zero` (an absent label reads as ""). Supported: text,
//! actions with pipelines (`{{ $value | humanize }}`, `{{ printf "%.2f"
//! $value }}`), variables (declared and assigned), fields of the data and
//! of label maps, `if`/`else if`/`else`, `with`, `range` over a label map,
//! comments and `{{-`/`-}}` trimming; functions `humanize`,
//! `humanize1024`, `humanizeDuration`, `humanizePercentage`,
//! `humanizeTimestamp`, `toUpper`, `toLower`, `title`, `reReplaceAll`,
//! `match`, `stripPort`, `stripDomain`, `safeHtml`, `parseDuration`,
//! `externalURL`, and Go's `and`, `or`, `not`, `eq`, `ne`, `lt`, `le`, `gt`,
//! `ge`, `len`, `index`, `print`, `printf`, `println`, `urlquery`, `html`.
//! Not supported, and refused when the rule file is loaded: `query` (and
//! the functions over its answers: `first`, `label`, `value`,
//! `sortByLabel`), `define`/`template`/`block`, `tmpl`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::gofmt::{format_e, format_f, format_g};

/// A template that could not be parsed or expanded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("template: {0}")]
pub struct TemplateError(pub String);

fn err<T>(m: impl Into<String>) -> Result<T, TemplateError> {
    Err(TemplateError(m.into()))
}

/// What a template reads: an alert's labels, value and the server's
/// external labels and URL.
#[derive(Debug, Clone, Default)]
pub struct TemplateData {
    pub labels: BTreeMap<String, String>,
    pub external_labels: BTreeMap<String, String>,
    pub external_url: String,
    pub value: f64,
}

#[derive(Debug, Clone, PartialEq)]
enum Val {
    Nil,
    Bool(bool),
    Num(f64),
    Str(String),
    Map(BTreeMap<String, String>),
    Data,
}

impl Val {
    fn truthy(&self) -> bool {
        match self {
            Val::Nil => false,
            Val::Bool(b) => *b,
            Val::Num(n) => *n != 0.0,
            Val::Str(s) => !s.is_empty(),
            Val::Map(m) => !m.is_empty(),
            Val::Data => true,
        }
    }

    /// `%v` / `print`.
    fn text(&self) -> String {
        match self {
            Val::Nil => "<no value>".into(),
            Val::Bool(b) => b.to_string(),
            Val::Num(n) => format_g(*n, None),
            Val::Str(s) => s.clone(),
            Val::Map(m) => {
                let inner: Vec<String> = m.iter().map(|(k, v)| format!("{k}:{v}")).collect();
                format!("map[{}]", inner.join(" "))
            }
            Val::Data => "{...}".into(),
        }
    }

    fn go_type(&self) -> &'static str {
        match self {
            Val::Nil => "<nil>",
            Val::Bool(_) => "bool",
            Val::Num(_) => "float64",
            Val::Str(_) => "string",
            Val::Map(_) => "map[string]string",
            Val::Data => "struct",
        }
    }

    fn num(&self, f: &str) -> Result<f64, TemplateError> {
        match self {
            Val::Num(n) => Ok(*n),
            Val::Str(s) => s
                .trim()
                .parse::<f64>()
                .or_else(|_| err(format!("{f}: cannot convert {s:?} to a number"))),
            Val::Bool(_) | Val::Nil | Val::Map(_) | Val::Data => {
                err(format!("{f}: cannot convert {} to a number", self.go_type()))
            }
        }
    }

    fn string(&self, f: &str) -> Result<String, TemplateError> {
        match self {
            Val::Str(s) => Ok(s.clone()),
            other => err(format!("{f}: expected a string, got {}", other.go_type())),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Arg {
    /// `.a.b` (empty: `.`).
    Field(Vec<String>),
    /// `$x.a.b`.
    Var(String, Vec<String>),
    Str(String),
    Num(f64),
    Bool(bool),
    Nil,
    Func(String),
    Pipe(Box<Pipeline>),
}

#[derive(Debug, Clone, PartialEq)]
struct Pipeline {
    /// `$x :=` (declare) or `$x =` (assign).
    set: Option<String>,
    cmds: Vec<Vec<Arg>>,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    Action(Pipeline),
    If(Pipeline, Vec<Node>, Vec<Node>),
    With(Pipeline, Vec<Node>, Vec<Node>),
    /// Key and value variables, the map, the body, the else branch.
    Range(Option<String>, Option<String>, Pipeline, Vec<Node>, Vec<Node>),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    nodes: Vec<Node>,
}

const FUNCS: &[&str] = &[
    "humanize",
    "humanize1024",
    "humanizeDuration",
    "humanizePercentage",
    "humanizeTimestamp",
    "toUpper",
    "toLower",
    "title",
    "reReplaceAll",
    "match",
    "stripPort",
    "stripDomain",
    "safeHtml",
    "parseDuration",
    "externalURL",
    "and",
    "or",
    "not",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "len",
    "index",
    "print",
    "printf",
    "println",
    "urlquery",
    "html",
];

/// Prometheus' functions Strata does not expand (they query the database
/// from inside a template).
const UNSUPPORTED: &[&str] = &[
    "query",
    "first",
    "label",
    "value",
    "sortByLabel",
    "tmpl",
    "graphLink",
    "tableLink",
    "pathPrefix",
    "args",
    "toTime",
    "toDuration",
    "strvalue",
];

/// Splits the text into text and actions, applying `{{-` / `-}}` trims.
fn split(src: &str) -> Result<Vec<(bool, String)>, TemplateError> {
    let mut out: Vec<(bool, String)> = Vec::new();
    let mut rest = src;
    while let Some(open) = rest.find("{{") {
        let mut text = rest[..open].to_string();
        let mut body = &rest[open + 2..];
        if let Some(b) = body.strip_prefix("- ") {
            text = text.trim_end().to_string();
            body = b;
        } else if body.starts_with('-') && body[1..].starts_with(['\t', '\n', '\r']) {
            text = text.trim_end().to_string();
            body = &body[1..];
        }
        if !text.is_empty() {
            out.push((false, text));
        }
        let close = find_close(body).ok_or_else(|| TemplateError("unclosed action".into()))?;
        let mut action = &body[..close];
        let mut after = &body[close + 2..];
        if action.ends_with(" -") || action.ends_with("\t-") || action.ends_with("\n-") {
            action = &action[..action.len() - 1];
            after = after.trim_start();
        }
        out.push((true, action.trim().to_string()));
        rest = after;
    }
    if !rest.is_empty() {
        out.push((false, rest.to_string()));
    }
    Ok(out)
}

/// Where the action's `}}` is, skipping quoted strings.
fn find_close(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while i + 1 < b.len() {
        match b[i] {
            b'"' | b'`' => {
                let q = b[i];
                i += 1;
                while i < b.len() && b[i] != q {
                    if q == b'"' && b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'}' if b[i + 1] == b'}' => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Num(f64),
    Pipe,
    Open,
    Close,
    Declare,
    Assign,
    Comma,
}

fn lex(s: &str) -> Result<Vec<Tok>, TemplateError> {
    let c: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if ch.is_whitespace() {
            i += 1;
        } else if ch == '|' {
            out.push(Tok::Pipe);
            i += 1;
        } else if ch == '(' {
            out.push(Tok::Open);
            i += 1;
        } else if ch == ')' {
            out.push(Tok::Close);
            i += 1;
        } else if ch == ',' {
            out.push(Tok::Comma);
            i += 1;
        } else if ch == ':' && c.get(i + 1) == Some(&'=') {
            out.push(Tok::Declare);
            i += 2;
        } else if ch == '=' {
            out.push(Tok::Assign);
            i += 1;
        } else if ch == '"' {
            let mut v = String::new();
            i += 1;
            loop {
                let Some(&x) = c.get(i) else {
                    return err("unterminated quoted string");
                };
                i += 1;
                match x {
                    '"' => break,
                    '\\' => {
                        let e = c.get(i).copied().unwrap_or('\\');
                        i += 1;
                        v.push(match e {
                            'n' => '\n',
                            't' => '\t',
                            'r' => '\r',
                            '0' => '\0',
                            other => other,
                        });
                    }
                    x => v.push(x),
                }
            }
            out.push(Tok::Str(v));
        } else if ch == '`' {
            let start = i + 1;
            let end = c[start..]
                .iter()
                .position(|&x| x == '`')
                .ok_or_else(|| TemplateError("unterminated raw string".into()))?;
            out.push(Tok::Str(c[start..start + end].iter().collect()));
            i = start + end + 1;
        } else if ch.is_ascii_digit()
            || ((ch == '-' || ch == '+') && c.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            let start = i;
            i += 1;
            while i < c.len() && (c[i].is_ascii_alphanumeric() || matches!(c[i], '.' | '_')) {
                i += 1;
            }
            let t: String = c[start..i].iter().collect();
            let n = t
                .replace('_', "")
                .parse::<f64>()
                .or_else(|_| err(format!("bad number syntax: {t:?}")))?;
            out.push(Tok::Num(n));
        } else if ch.is_alphanumeric() || matches!(ch, '.' | '$' | '_') {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || matches!(c[i], '.' | '$' | '_')) {
                i += 1;
            }
            out.push(Tok::Word(c[start..i].iter().collect()));
        } else {
            return err(format!("unexpected {ch:?} in action"));
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    at: usize,
}

fn word_arg(w: &str) -> Result<Arg, TemplateError> {
    if w == "true" || w == "false" {
        return Ok(Arg::Bool(w == "true"));
    }
    if w == "nil" {
        return Ok(Arg::Nil);
    }
    if let Some(path) = w.strip_prefix('.') {
        let fields = if path.is_empty() {
            Vec::new()
        } else {
            path.split('.').map(str::to_string).collect()
        };
        if fields.iter().any(String::is_empty) {
            return err(format!("bad field {w:?}"));
        }
        return Ok(Arg::Field(fields));
    }
    if w.starts_with('$') {
        let mut parts = w.split('.');
        let var = parts.next().unwrap_or("$").to_string();
        let fields: Vec<String> = parts.map(str::to_string).collect();
        if fields.iter().any(String::is_empty) {
            return err(format!("bad variable {w:?}"));
        }
        return Ok(Arg::Var(var, fields));
    }
    if UNSUPPORTED.contains(&w) {
        return err(format!(
            "function {w:?} is not supported by Strata's rule templates"
        ));
    }
    if FUNCS.contains(&w) {
        return Ok(Arg::Func(w.to_string()));
    }
    err(format!("function {w:?} not defined"))
}

impl Parser {
    fn pipeline(&mut self, allow_set: bool) -> Result<Pipeline, TemplateError> {
        let mut set = None;
        if allow_set {
            if let (Some(Tok::Word(w)), Some(Tok::Declare | Tok::Assign)) =
                (self.toks.get(self.at), self.toks.get(self.at + 1))
            {
                if w.starts_with('$') && !w.contains('.') {
                    set = Some(w.clone());
                    self.at += 2;
                }
            }
        }
        let mut cmds = Vec::new();
        let mut cmd = Vec::new();
        while let Some(t) = self.toks.get(self.at).cloned() {
            self.at += 1;
            match t {
                Tok::Pipe => {
                    if cmd.is_empty() {
                        return err("missing command before '|'");
                    }
                    cmds.push(std::mem::take(&mut cmd));
                }
                Tok::Open => {
                    let inner = self.pipeline(false)?;
                    if self.toks.get(self.at) != Some(&Tok::Close) {
                        return err("unclosed '('");
                    }
                    self.at += 1;
                    cmd.push(Arg::Pipe(Box::new(inner)));
                }
                Tok::Close => {
                    self.at -= 1;
                    break;
                }
                Tok::Word(w) => cmd.push(word_arg(&w)?),
                Tok::Str(s) => cmd.push(Arg::Str(s)),
                Tok::Num(n) => cmd.push(Arg::Num(n)),
                Tok::Declare | Tok::Assign | Tok::Comma => return err("unexpected ':=' or ','"),
            }
        }
        if cmd.is_empty() {
            return err("missing value for command");
        }
        cmds.push(cmd);
        Ok(Pipeline { set, cmds })
    }
}

fn parse_pipeline(text: &str) -> Result<Pipeline, TemplateError> {
    let mut p = Parser {
        toks: lex(text)?,
        at: 0,
    };
    let pipe = p.pipeline(true)?;
    if p.at != p.toks.len() {
        return err(format!("unexpected tokens in {text:?}"));
    }
    Ok(pipe)
}

/// `range $k, $v := pipeline` / `range $v := pipeline` / `range pipeline`.
fn parse_range(text: &str) -> Result<Node, TemplateError> {
    let toks = lex(text)?;
    let var = |t: Option<&Tok>| match t {
        Some(Tok::Word(w)) if w.starts_with('$') && !w.contains('.') => Some(w.clone()),
        _ => None,
    };
    let (k, v, skip) = match (var(toks.first()), toks.get(1), var(toks.get(2)), toks.get(3)) {
        (Some(k), Some(Tok::Comma), Some(v), Some(Tok::Declare)) => (Some(k), Some(v), 4),
        (Some(v), Some(Tok::Declare), _, _) => (None, Some(v), 2),
        _ => (None, None, 0),
    };
    let mut p = Parser { toks, at: skip };
    let pipe = p.pipeline(false)?;
    if p.at != p.toks.len() {
        return err(format!("unexpected tokens in range {text:?}"));
    }
    Ok(Node::Range(k, v, pipe, Vec::new(), Vec::new()))
}

/// The body of an `if`/`with`/`range` and its else branch, up to the
/// `end` (an `else if` chain shares it).
fn parse_tail(
    items: &[(bool, String)],
    at: &mut usize,
    kw: &str,
) -> Result<(Vec<Node>, Vec<Node>), TemplateError> {
    let (body, end) = parse_nodes(items, at)?;
    let els = match end {
        End::Eof => return err(format!("unexpected EOF in {kw}")),
        End::End => Vec::new(),
        End::Else(None) => match parse_nodes(items, at)? {
            (e, End::End) => e,
            _ => return err(format!("expected end after else in {kw}")),
        },
        End::Else(Some(cond)) => {
            let p = parse_pipeline(&cond)?;
            let (b, e) = parse_tail(items, at, "if")?;
            vec![Node::If(p, b, e)]
        }
    };
    Ok((body, els))
}

/// What ended a list of nodes.
enum End {
    Eof,
    End,
    Else(Option<String>),
}

fn parse_nodes(
    items: &[(bool, String)],
    at: &mut usize,
) -> Result<(Vec<Node>, End), TemplateError> {
    let mut nodes = Vec::new();
    while let Some((action, text)) = items.get(*at) {
        *at += 1;
        if !action {
            nodes.push(Node::Text(text.clone()));
            continue;
        }
        if text.starts_with("/*") {
            if !text.ends_with("*/") {
                return err("unclosed comment");
            }
            continue;
        }
        let (kw, rest) = text
            .split_once(char::is_whitespace)
            .map_or((text.as_str(), ""), |(a, b)| (a, b.trim()));
        match kw {
            "end" => return Ok((nodes, End::End)),
            "else" => {
                let cond = rest
                    .strip_prefix("if")
                    .filter(|r| r.starts_with(char::is_whitespace))
                    .map(|r| r.trim().to_string());
                if cond.is_none() && !rest.is_empty() {
                    return err(format!("unexpected {rest:?} after else"));
                }
                return Ok((nodes, End::Else(cond)));
            }
            "if" | "with" | "range" => {
                let mut head = match kw {
                    "range" => parse_range(rest)?,
                    _ => {
                        let p = parse_pipeline(rest)?;
                        if kw == "if" {
                            Node::If(p, Vec::new(), Vec::new())
                        } else {
                            Node::With(p, Vec::new(), Vec::new())
                        }
                    }
                };
                let (body, els) = parse_tail(items, at, kw)?;
                match &mut head {
                    Node::If(_, b, e) | Node::With(_, b, e) | Node::Range(_, _, _, b, e) => {
                        *b = body;
                        *e = els;
                    }
                    Node::Text(_) | Node::Action(_) => {}
                }
                nodes.push(head);
            }
            "define" | "template" | "block" | "break" | "continue" => {
                return err(format!(
                    "{{{{{kw}}}}} is not supported by Strata's rule templates"
                ));
            }
            _ => nodes.push(Node::Action(parse_pipeline(text)?)),
        }
    }
    Ok((nodes, End::Eof))
}

impl Template {
    /// Parses `src`; errors name what is wrong, as `promtool check rules`
    /// reports a template that does not parse.
    pub fn parse(src: &str) -> Result<Self, TemplateError> {
        let items = split(src)?;
        let mut at = 0;
        match parse_nodes(&items, &mut at)? {
            (nodes, End::Eof) => Ok(Template { nodes }),
            (_, End::End) => err("unexpected {{end}}"),
            (_, End::Else(_)) => err("unexpected {{else}}"),
        }
    }

    /// Expands the template over `data`.
    pub fn expand(&self, data: &TemplateData) -> Result<String, TemplateError> {
        let mut ctx = Ctx {
            data,
            vars: vec![
                ("$".into(), Val::Data),
                ("$labels".into(), Val::Map(data.labels.clone())),
                (
                    "$externalLabels".into(),
                    Val::Map(data.external_labels.clone()),
                ),
                ("$externalURL".into(), Val::Str(data.external_url.clone())),
                ("$value".into(), Val::Num(data.value)),
            ],
            out: String::new(),
        };
        ctx.nodes(&self.nodes, &Val::Data)?;
        Ok(ctx.out)
    }
}

struct Ctx<'a> {
    data: &'a TemplateData,
    vars: Vec<(String, Val)>,
    out: String,
}

impl Ctx<'_> {
    fn nodes(&mut self, nodes: &[Node], dot: &Val) -> Result<(), TemplateError> {
        for n in nodes {
            match n {
                Node::Text(t) => self.out.push_str(t),
                Node::Action(p) => {
                    let v = self.pipeline(p, dot)?;
                    if p.set.is_none() {
                        self.out.push_str(&v.text());
                    }
                }
                Node::If(p, then, els) => {
                    let depth = self.vars.len();
                    let v = self.pipeline(p, dot)?;
                    let branch = if v.truthy() { then } else { els };
                    self.nodes(branch, dot)?;
                    self.vars.truncate(depth);
                }
                Node::With(p, then, els) => {
                    let depth = self.vars.len();
                    let v = self.pipeline(p, dot)?;
                    if v.truthy() {
                        self.nodes(then, &v)?;
                    } else {
                        self.nodes(els, dot)?;
                    }
                    self.vars.truncate(depth);
                }
                Node::Range(k, v, p, body, els) => {
                    let depth = self.vars.len();
                    let over = self.pipeline(p, dot)?;
                    let Val::Map(m) = over else {
                        if !over.truthy() {
                            self.nodes(els, dot)?;
                            self.vars.truncate(depth);
                            continue;
                        }
                        return err(format!("range can't iterate over {}", over.go_type()));
                    };
                    if m.is_empty() {
                        self.nodes(els, dot)?;
                    }
                    for (key, val) in &m {
                        let inner = self.vars.len();
                        if let Some(k) = k {
                            self.vars.push((k.clone(), Val::Str(key.clone())));
                        }
                        if let Some(v) = v {
                            self.vars.push((v.clone(), Val::Str(val.clone())));
                        }
                        self.nodes(body, &Val::Str(val.clone()))?;
                        self.vars.truncate(inner);
                    }
                    self.vars.truncate(depth);
                }
            }
        }
        Ok(())
    }

    fn pipeline(&mut self, p: &Pipeline, dot: &Val) -> Result<Val, TemplateError> {
        let mut last: Option<Val> = None;
        for cmd in &p.cmds {
            last = Some(self.command(cmd, dot, last)?);
        }
        let v = last.unwrap_or(Val::Nil);
        if let Some(name) = &p.set {
            if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                slot.1 = v.clone();
            } else {
                self.vars.push((name.clone(), v.clone()));
            }
        }
        Ok(v)
    }

    fn field(&self, base: Val, fields: &[String]) -> Result<Val, TemplateError> {
        let mut v = base;
        for f in fields {
            v = match v {
                Val::Data => match f.as_str() {
                    "Labels" => Val::Map(self.data.labels.clone()),
                    "ExternalLabels" => Val::Map(self.data.external_labels.clone()),
                    "ExternalURL" => Val::Str(self.data.external_url.clone()),
                    "Value" => Val::Num(self.data.value),
                    other => return err(format!("can't evaluate field {other}")),
                },
                // missingkey=zero: an absent label is "".
                Val::Map(m) => Val::Str(m.get(f).cloned().unwrap_or_default()),
                other => {
                    return err(format!(
                        "can't evaluate field {f} in type {}",
                        other.go_type()
                    ));
                }
            };
        }
        Ok(v)
    }

    fn arg(&mut self, a: &Arg, dot: &Val) -> Result<Val, TemplateError> {
        Ok(match a {
            Arg::Field(f) => self.field(dot.clone(), f)?,
            Arg::Var(name, f) => {
                let Some((_, v)) = self.vars.iter().rev().find(|(n, _)| n == name) else {
                    return err(format!("undefined variable {name:?}"));
                };
                self.field(v.clone(), f)?
            }
            Arg::Str(s) => Val::Str(s.clone()),
            Arg::Num(n) => Val::Num(*n),
            Arg::Bool(b) => Val::Bool(*b),
            Arg::Nil => Val::Nil,
            Arg::Pipe(p) => self.pipeline(p, dot)?,
            Arg::Func(f) => self.call(f, Vec::new())?,
        })
    }

    fn command(
        &mut self,
        cmd: &[Arg],
        dot: &Val,
        piped: Option<Val>,
    ) -> Result<Val, TemplateError> {
        let Some(Arg::Func(f)) = cmd.first() else {
            if cmd.len() > 1 || piped.is_some() {
                return err("can't give argument to non-function");
            }
            return self.arg(&cmd[0], dot);
        };
        let mut args = Vec::with_capacity(cmd.len());
        for a in &cmd[1..] {
            args.push(self.arg(a, dot)?);
        }
        if let Some(p) = piped {
            args.push(p);
        }
        self.call(f, args)
    }

    fn call(&self, f: &str, a: Vec<Val>) -> Result<Val, TemplateError> {
        let one = |a: &[Val]| -> Result<Val, TemplateError> {
            match a {
                [v] => Ok(v.clone()),
                _ => err(format!(
                    "wrong number of args for {f}: want 1 got {}",
                    a.len()
                )),
            }
        };
        let two = |a: &[Val]| -> Result<(Val, Val), TemplateError> {
            match a {
                [x, y] => Ok((x.clone(), y.clone())),
                _ => err(format!(
                    "wrong number of args for {f}: want 2 got {}",
                    a.len()
                )),
            }
        };
        Ok(match f {
            "humanize" => Val::Str(humanize(one(&a)?.num(f)?)),
            "humanize1024" => Val::Str(humanize1024(one(&a)?.num(f)?)),
            "humanizeDuration" => Val::Str(humanize_duration(one(&a)?.num(f)?)),
            "humanizePercentage" => {
                Val::Str(format!("{}%", format_g(one(&a)?.num(f)? * 100.0, Some(4))))
            }
            "humanizeTimestamp" => Val::Str(humanize_timestamp(one(&a)?.num(f)?)),
            "toUpper" => Val::Str(one(&a)?.string(f)?.to_uppercase()),
            "toLower" => Val::Str(one(&a)?.string(f)?.to_lowercase()),
            "title" => Val::Str(title(&one(&a)?.string(f)?)),
            "safeHtml" => Val::Str(one(&a)?.string(f)?),
            "stripPort" => Val::Str(strip_port(&one(&a)?.string(f)?)),
            "stripDomain" => Val::Str(strip_domain(&one(&a)?.string(f)?)),
            "parseDuration" => {
                let s = one(&a)?.string(f)?;
                let ms = strata_query_lang::promql::parse_duration_ms(&s)
                    .map_err(|e| TemplateError(format!("parseDuration: {e}")))?;
                Val::Num(ms as f64 / 1e3)
            }
            "externalURL" => Val::Str(self.data.external_url.clone()),
            "reReplaceAll" => {
                let [p, r, t] = a.as_slice() else {
                    return err("wrong number of args for reReplaceAll: want 3");
                };
                let re = anchored(&p.string(f)?)?;
                Val::Str(
                    re.replace_all(&t.string(f)?, r.string(f)?.as_str())
                        .into_owned(),
                )
            }
            "match" => {
                let (p, t) = two(&a)?;
                let re = regex::Regex::new(&p.string(f)?)
                    .map_err(|e| TemplateError(format!("match: {e}")))?;
                Val::Bool(re.is_match(&t.string(f)?))
            }
            "not" => Val::Bool(!one(&a)?.truthy()),
            "and" => {
                let mut last = Val::Nil;
                for v in a {
                    if !v.truthy() {
                        return Ok(v);
                    }
                    last = v;
                }
                last
            }
            "or" => {
                let mut last = Val::Nil;
                for v in a {
                    if v.truthy() {
                        return Ok(v);
                    }
                    last = v;
                }
                last
            }
            "eq" => {
                let Some((x, rest)) = a.split_first() else {
                    return err("missing argument for comparison");
                };
                Val::Bool(rest.iter().any(|y| compare(x, y).is_ok_and(|o| o.is_eq())))
            }
            "ne" | "lt" | "le" | "gt" | "ge" => {
                let (x, y) = two(&a)?;
                let o = compare(&x, &y)?;
                Val::Bool(match f {
                    "ne" => o.is_ne(),
                    "lt" => o.is_lt(),
                    "le" => o.is_le(),
                    "gt" => o.is_gt(),
                    _ => o.is_ge(),
                })
            }
            "len" => match one(&a)? {
                Val::Str(s) => Val::Num(s.len() as f64),
                Val::Map(m) => Val::Num(m.len() as f64),
                other => return err(format!("len of {}", other.go_type())),
            },
            "index" => {
                let (m, k) = two(&a)?;
                match m {
                    Val::Map(m) => Val::Str(m.get(&k.string(f)?).cloned().unwrap_or_default()),
                    other => return err(format!("can't index item of type {}", other.go_type())),
                }
            }
            "print" => Val::Str(go_print(&a)),
            "println" => Val::Str(
                a.iter()
                    .map(Val::text)
                    .collect::<Vec<_>>()
                    .join(" ")
                    + "\n",
            ),
            "printf" => {
                let Some((fmt, rest)) = a.split_first() else {
                    return err("wrong number of args for printf");
                };
                Val::Str(printf(&fmt.string(f)?, rest))
            }
            "urlquery" => Val::Str(urlquery(&go_print(&a))),
            "html" => Val::Str(html(&go_print(&a))),
            other => return err(format!("function {other:?} not defined")),
        })
    }
}

/// Go's `print`: operands joined, a space between two that are not strings.
fn go_print(a: &[Val]) -> String {
    let mut s = String::new();
    for (i, v) in a.iter().enumerate() {
        if i > 0 && !matches!(v, Val::Str(_)) && !matches!(a[i - 1], Val::Str(_)) {
            s.push(' ');
        }
        s.push_str(&v.text());
    }
    s
}

fn compare(x: &Val, y: &Val) -> Result<std::cmp::Ordering, TemplateError> {
    match (x, y) {
        (Val::Num(a), Val::Num(b)) => a
            .partial_cmp(b)
            .ok_or_else(|| TemplateError("comparison of NaN".into())),
        (Val::Str(a), Val::Str(b)) => Ok(a.cmp(b)),
        (Val::Bool(a), Val::Bool(b)) => Ok(a.cmp(b)),
        (a, b) => err(format!(
            "incompatible types for comparison: {} and {}",
            a.go_type(),
            b.go_type()
        )),
    }
}

/// Prometheus anchors `reReplaceAll`'s pattern (`^(?:pattern)$`).
fn anchored(p: &str) -> Result<regex::Regex, TemplateError> {
    regex::Regex::new(&format!("^(?:{p})$"))
        .map_err(|e| TemplateError(format!("reReplaceAll: {e}")))
}

fn humanize(v: f64) -> String {
    if v == 0.0 || v.is_nan() || v.is_infinite() {
        return format_g(v, Some(4));
    }
    let mut v = v;
    let mut prefix = "";
    if v.abs() >= 1.0 {
        for p in ["k", "M", "G", "T", "P", "E", "Z", "Y"] {
            if v.abs() < 1000.0 {
                break;
            }
            prefix = p;
            v /= 1000.0;
        }
    } else {
        for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
            if v.abs() >= 1.0 {
                break;
            }
            prefix = p;
            v *= 1000.0;
        }
    }
    format!("{}{prefix}", format_g(v, Some(4)))
}

fn humanize1024(v: f64) -> String {
    if v.abs() <= 1.0 || v.is_nan() || v.is_infinite() {
        return format_g(v, Some(4));
    }
    let mut v = v;
    let mut prefix = "";
    for p in ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"] {
        if v.abs() < 1024.0 {
            break;
        }
        prefix = p;
        v /= 1024.0;
    }
    format!("{}{prefix}", format_g(v, Some(4)))
}

fn humanize_duration(v: f64) -> String {
    if v.is_nan() || v.is_infinite() {
        return format_g(v, Some(4));
    }
    if v == 0.0 {
        return format!("{}s", format_g(v, Some(4)));
    }
    if v.abs() >= 1.0 {
        let sign = if v < 0.0 { "-" } else { "" };
        let v = v.abs();
        let d = v as i64;
        let (s, m, h, days) = (d % 60, (d / 60) % 60, (d / 3600) % 24, d / 86400);
        if days != 0 {
            return format!("{sign}{days}d {h}h {m}m {s}s");
        }
        if h != 0 {
            return format!("{sign}{h}h {m}m {s}s");
        }
        if m != 0 {
            return format!("{sign}{m}m {s}s");
        }
        return format!("{sign}{}s", format_g(v, Some(4)));
    }
    let mut v = v;
    let mut prefix = "";
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    format!("{}{prefix}s", format_g(v, Some(4)))
}

/// Go's `time.Time.String()` of the UTC time `v` seconds after the epoch:
/// `2006-01-02 15:04:05.999999999 +0000 UTC`.
fn humanize_timestamp(v: f64) -> String {
    if v.is_nan() || v.is_infinite() {
        return format_g(v, Some(4));
    }
    // As Prometheus: through a millisecond timestamp (nanoseconds
    // truncated to milliseconds).
    let ns = v * 1e9;
    if ns >= i64::MAX as f64 || ns <= i64::MIN as f64 {
        return format!("<{v} cannot be represented as a nanoseconds timestamp>");
    }
    let ms = (ns as i64) / 1_000_000;
    let Some(t) = chrono::DateTime::from_timestamp_millis(ms) else {
        return format_g(v, Some(4));
    };
    let mut s = t.format("%Y-%m-%d %H:%M:%S").to_string();
    let frac_ms = ms.rem_euclid(1000);
    if frac_ms > 0 {
        let frac = format!("{frac_ms:03}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push_str(" +0000 UTC");
    s
}

/// Go's `strings.Title` as Prometheus uses it: each word's first letter
/// upper-cased.
fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut start = true;
    for c in s.chars() {
        if start && c.is_alphanumeric() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = !(c.is_alphanumeric() || c == '_' || c == '\'');
    }
    out
}

fn strip_port(s: &str) -> String {
    if let Some(rest) = s.strip_prefix('[') {
        if let Some((host, _)) = rest.split_once(']') {
            return host.to_string();
        }
    }
    match s.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && !port.is_empty() => host.to_string(),
        _ => s.to_string(),
    }
}

fn strip_domain(s: &str) -> String {
    if s.starts_with('[') || s.matches(':').count() > 1 {
        return s.to_string();
    }
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (s, None),
    };
    if host.parse::<std::net::Ipv4Addr>().is_ok() {
        return s.to_string();
    }
    let short = host.split('.').next().unwrap_or(host);
    match port {
        Some(p) => format!("{short}:{p}"),
        None => short.to_string(),
    }
}

fn urlquery(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

fn html(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '\0' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Go's `fmt.Sprintf` for the verbs templates use: `%v %s %d %f %e %g %q
/// %x %%` with flags `-+ 0`, width and precision. A verb given the wrong
/// type prints as Go does (`%!d(float64=1.5)`).
fn printf(fmt: &str, args: &[Val]) -> String {
    let c: Vec<char> = fmt.chars().collect();
    let mut out = String::new();
    let mut next = 0;
    let mut i = 0;
    while i < c.len() {
        if c[i] != '%' {
            out.push(c[i]);
            i += 1;
            continue;
        }
        i += 1;
        let (mut minus, mut plus, mut zero, mut space) = (false, false, false, false);
        while let Some(&f) = c.get(i) {
            match f {
                '-' => minus = true,
                '+' => plus = true,
                '0' => zero = true,
                ' ' => space = true,
                _ => break,
            }
            i += 1;
        }
        let mut width = None;
        while let Some(d) = c.get(i).and_then(|x| x.to_digit(10)) {
            width = Some(width.unwrap_or(0) * 10 + d as usize);
            i += 1;
        }
        let mut prec = None;
        if c.get(i) == Some(&'.') {
            i += 1;
            let mut p = 0;
            while let Some(d) = c.get(i).and_then(|x| x.to_digit(10)) {
                p = p * 10 + d as usize;
                i += 1;
            }
            prec = Some(p);
        }
        let Some(&verb) = c.get(i) else {
            out.push_str("%!(NOVERB)");
            break;
        };
        i += 1;
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(next) else {
            let _ = write!(out, "%!{verb}(MISSING)");
            continue;
        };
        next += 1;
        let bad = |a: &Val| format!("%!{verb}({}={})", a.go_type(), a.text());
        let mut num = false;
        let mut s = match (verb, arg) {
            ('v', Val::Num(n)) | ('g', Val::Num(n)) | ('G', Val::Num(n)) => {
                num = true;
                format_g(*n, prec)
            }
            ('v', v) => v.text(),
            ('s', Val::Str(s)) => match prec {
                Some(p) => s.chars().take(p).collect(),
                None => s.clone(),
            },
            ('q', Val::Str(s)) => format!("{s:?}"),
            ('f' | 'F', Val::Num(n)) => {
                num = true;
                format_f(*n, prec.unwrap_or(6))
            }
            ('e', Val::Num(n)) => {
                num = true;
                format_e(*n, prec.unwrap_or(6))
            }
            ('t', Val::Bool(b)) => b.to_string(),
            ('x', Val::Str(s)) => s.bytes().map(|b| format!("{b:02x}")).collect(),
            (_, a) => bad(a),
        };
        if num && !s.starts_with('-') {
            if plus {
                s.insert(0, '+');
            } else if space {
                s.insert(0, ' ');
            }
        }
        let len = s.chars().count();
        if let Some(w) = width.filter(|w| *w > len) {
            let pad = w - len;
            if minus {
                s.push_str(&" ".repeat(pad));
            } else if zero && num {
                let at = usize::from(s.starts_with(['-', '+', ' ']));
                s.insert_str(at, &"0".repeat(pad));
            } else {
                s.insert_str(0, &" ".repeat(pad));
            }
        }
        out.push_str(&s);
    }
    if next < args.len() {
        out.push_str("%!(EXTRA ");
        let extra: Vec<String> = args[next..]
            .iter()
            .map(|a| format!("{}={}", a.go_type(), a.text()))
            .collect();
        out.push_str(&extra.join(", "));
        out.push(')');
    }
    out
}

#[cfg(test)]
mod tests;
