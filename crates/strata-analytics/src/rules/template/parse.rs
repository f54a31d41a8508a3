//! Parsing templates: text and actions, the lexer, pipelines, and the
//! nesting of `if`/`with`/`range` blocks (bounded, as parsing and expanding
//! recurse).

use super::{Arg, Node, Pipeline, TemplateError, err};

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
    "query",
    "first",
    "label",
    "value",
    "strvalue",
    "sortByLabel",
];

/// Prometheus' functions Strata does not expand (they query the database
/// from inside a template).
const UNSUPPORTED: &[&str] = &[
    "tmpl",
    "graphLink",
    "tableLink",
    "pathPrefix",
    "args",
    "toTime",
    "toDuration",
];

/// Splits the text into text and actions, applying `{{-` / `-}}` trims.
pub(super) fn split(src: &str) -> Result<Vec<(bool, String)>, TemplateError> {
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

/// Deepest nesting of parentheses and blocks (`if`, `with`, `range`,
/// each `else if`) a template may have: parsing and expanding recurse.
const MAX_DEPTH: usize = 100;

fn too_deep<T>() -> Result<T, TemplateError> {
    err(format!("template nested more than {MAX_DEPTH} deep"))
}

struct Parser {
    toks: Vec<Tok>,
    at: usize,
    depth: usize,
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
        if allow_set
            && let (Some(Tok::Word(w)), Some(Tok::Declare | Tok::Assign)) =
                (self.toks.get(self.at), self.toks.get(self.at + 1))
            && w.starts_with('$')
            && !w.contains('.')
        {
            set = Some(w.clone());
            self.at += 2;
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
                    self.depth += 1;
                    if self.depth > MAX_DEPTH {
                        return too_deep();
                    }
                    let inner = self.pipeline(false)?;
                    self.depth -= 1;
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
        depth: 0,
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
    let (k, v, skip) = match (
        var(toks.first()),
        toks.get(1),
        var(toks.get(2)),
        toks.get(3),
    ) {
        (Some(k), Some(Tok::Comma), Some(v), Some(Tok::Declare)) => (Some(k), Some(v), 4),
        (Some(v), Some(Tok::Declare), _, _) => (None, Some(v), 2),
        _ => (None, None, 0),
    };
    let mut p = Parser {
        toks,
        at: skip,
        depth: 0,
    };
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
    depth: usize,
) -> Result<(Vec<Node>, Vec<Node>), TemplateError> {
    if depth > MAX_DEPTH {
        return too_deep();
    }
    let (body, end) = parse_nodes(items, at, depth)?;
    let els = match end {
        Stop::Eof => return err(format!("unexpected EOF in {kw}")),
        Stop::Closed => Vec::new(),
        Stop::Else(None) => match parse_nodes(items, at, depth)? {
            (e, Stop::Closed) => e,
            _ => return err(format!("expected end after else in {kw}")),
        },
        Stop::Else(Some(cond)) => {
            let p = parse_pipeline(&cond)?;
            let (b, e) = parse_tail(items, at, "if", depth + 1)?;
            vec![Node::If(p, b, e)]
        }
    };
    Ok((body, els))
}

/// What ended a list of nodes.
pub(super) enum Stop {
    Eof,
    Closed,
    Else(Option<String>),
}

pub(super) fn parse_nodes(
    items: &[(bool, String)],
    at: &mut usize,
    depth: usize,
) -> Result<(Vec<Node>, Stop), TemplateError> {
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
            "end" => return Ok((nodes, Stop::Closed)),
            "else" => {
                let cond = rest
                    .strip_prefix("if")
                    .filter(|r| r.starts_with(char::is_whitespace))
                    .map(|r| r.trim().to_string());
                if cond.is_none() && !rest.is_empty() {
                    return err(format!("unexpected {rest:?} after else"));
                }
                return Ok((nodes, Stop::Else(cond)));
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
                let (body, els) = parse_tail(items, at, kw, depth + 1)?;
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
    Ok((nodes, Stop::Eof))
}
