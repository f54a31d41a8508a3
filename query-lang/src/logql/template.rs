//! The part of Go's `text/template` that LogQL's `line_format` and
//! `label_format` use: text, `{{ pipeline }}` actions with `{{-`/`-}}`
//! trimming, `if`/`else if`/`else`/`end`, pipelines (`a | f x`, the value
//! passed as the last argument), parenthesised sub-pipelines, labels as
//! `.name`, `__line__`, `__timestamp__`, and Loki's function set
//! ([`super::template_fns`]). `range`, `with`, variables and `define` are
//! refused when the query is parsed.
//!
//! A missing label is Go's invalid value: it prints `<no value>`, and a
//! function taking a string sees `""`.

pub use super::template_fns::Context;
use super::template_fns::{V, call, is_function};

/// The longest text a template renders for one entry.
const MAX_RENDERED: usize = 1 << 20;

/// Deepest nesting of `if` blocks and parentheses a template may have.
const MAX_NESTING: usize = 64;

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<Node>,
}

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Action(Pipe),
    /// `if` branches (condition, body) in order, then the `else` body.
    If(Vec<(Pipe, Vec<Node>)>, Vec<Node>),
}

#[derive(Debug, Clone)]
struct Pipe(Vec<Cmd>);

#[derive(Debug, Clone)]
struct Cmd(Vec<Arg>);

#[derive(Debug, Clone)]
enum Arg {
    /// `.name` (`.` alone is the empty name).
    Field(String),
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Nil,
    /// A function name (`__line__`, `now`, `upper`, …).
    Func(String),
    Sub(Pipe),
}

impl Template {
    /// Parses `text`; the error says what is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        // Frames of open `if` blocks: (branches, else body, in else).
        struct Frame {
            branches: Vec<(Pipe, Vec<Node>)>,
            otherwise: Vec<Node>,
            in_else: bool,
        }
        let mut stack: Vec<Frame> = Vec::new();
        let mut top: Vec<Node> = Vec::new();
        fn target<'a>(stack: &'a mut [Frame], top: &'a mut Vec<Node>) -> &'a mut Vec<Node> {
            match stack.last_mut() {
                None => top,
                Some(f) if f.in_else => &mut f.otherwise,
                Some(f) => match f.branches.last_mut() {
                    Some(b) => &mut b.1,
                    None => &mut f.otherwise,
                },
            }
        }
        let mut rest = text;
        let mut trim_next = false;
        while !rest.is_empty() {
            let open = rest.find("{{");
            let mut chunk = &rest[..open.unwrap_or(rest.len())];
            if trim_next {
                chunk = chunk.trim_start();
            }
            let Some(open) = open else {
                if !chunk.is_empty() {
                    target(&mut stack, &mut top).push(Node::Text(chunk.to_owned()));
                }
                break;
            };
            let after = &rest[open + 2..];
            let trim_left = after.starts_with("- ") || after.starts_with("-\t");
            if trim_left {
                chunk = chunk.trim_end();
            }
            if !chunk.is_empty() {
                target(&mut stack, &mut top).push(Node::Text(chunk.to_owned()));
            }
            let body_start = if trim_left { 1 } else { 0 };
            let close = find_close(&after[body_start..])
                .ok_or_else(|| "unclosed action: {{ without }}".to_owned())?;
            let mut body = &after[body_start..body_start + close];
            trim_next = false;
            if body.ends_with(" -") || body.ends_with("\t-") {
                body = &body[..body.len() - 1];
                trim_next = true;
            }
            rest = &after[body_start + close + 2..];
            let toks = lex(body.trim())?;
            match toks.first() {
                Some(Tok::Word(w)) if w == "if" => {
                    if stack.len() >= MAX_NESTING {
                        return Err("template nests too deeply".into());
                    }
                    let cond = parse_pipe(&toks[1..], 0)?;
                    stack.push(Frame {
                        branches: vec![(cond, Vec::new())],
                        otherwise: Vec::new(),
                        in_else: false,
                    });
                }
                Some(Tok::Word(w)) if w == "else" => {
                    let frame = stack
                        .last_mut()
                        .filter(|f| !f.in_else)
                        .ok_or_else(|| "{{else}} outside an {{if}}".to_owned())?;
                    match toks.get(1) {
                        Some(Tok::Word(w)) if w == "if" => {
                            let cond = parse_pipe(&toks[2..], 0)?;
                            frame.branches.push((cond, Vec::new()));
                        }
                        None => frame.in_else = true,
                        Some(_) => return Err("expected {{else}} or {{else if …}}".into()),
                    }
                }
                Some(Tok::Word(w)) if w == "end" => {
                    if toks.len() > 1 {
                        return Err("unexpected words after {{end}}".into());
                    }
                    let frame = stack
                        .pop()
                        .ok_or_else(|| "{{end}} without an {{if}}".to_owned())?;
                    target(&mut stack, &mut top).push(Node::If(frame.branches, frame.otherwise));
                }
                Some(Tok::Word(w))
                    if matches!(
                        w.as_str(),
                        "range" | "with" | "define" | "template" | "block" | "break" | "continue"
                    ) =>
                {
                    return Err(format!("{{{{{w}}}}} is not supported in LogQL templates"));
                }
                None => {}
                Some(_) => {
                    let pipe = parse_pipe(&toks, 0)?;
                    target(&mut stack, &mut top).push(Node::Action(pipe));
                }
            }
        }
        if !stack.is_empty() {
            return Err("unclosed {{if}}: missing {{end}}".into());
        }
        Ok(Self { nodes: top })
    }

    /// Renders for one entry.
    pub fn render(&self, ctx: &Context<'_>) -> Result<String, String> {
        let mut out = String::new();
        render_nodes(&self.nodes, ctx, &mut out)?;
        Ok(out)
    }
}

/// Where the action's closing `}}` is, skipping quoted strings.
fn find_close(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'`' => {
                i += 1;
                while i < b.len() && b[i] != b'`' {
                    i += 1;
                }
            }
            b'}' if b.get(i + 1) == Some(&b'}') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Field(String),
    Str(String),
    Num(String),
    Pipe,
    Open,
    Close,
}

fn lex(s: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let mut chars = s.char_indices().peekable();
    while let Some(&(i, c)) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '|' => {
                chars.next();
                out.push(Tok::Pipe);
            }
            '(' => {
                chars.next();
                out.push(Tok::Open);
            }
            ')' => {
                chars.next();
                out.push(Tok::Close);
            }
            '"' => {
                chars.next();
                let mut v = String::new();
                let mut closed = false;
                while let Some((_, c)) = chars.next() {
                    match c {
                        '"' => {
                            closed = true;
                            break;
                        }
                        '\\' => match chars.next().map(|x| x.1) {
                            Some('n') => v.push('\n'),
                            Some('t') => v.push('\t'),
                            Some('r') => v.push('\r'),
                            Some(c) => v.push(c),
                            None => break,
                        },
                        c => v.push(c),
                    }
                }
                if !closed {
                    return Err("unterminated quoted string in template".into());
                }
                out.push(Tok::Str(v));
            }
            '`' => {
                chars.next();
                let mut v = String::new();
                let mut closed = false;
                for (_, c) in chars.by_ref() {
                    if c == '`' {
                        closed = true;
                        break;
                    }
                    v.push(c);
                }
                if !closed {
                    return Err("unterminated raw string in template".into());
                }
                out.push(Tok::Str(v));
            }
            '$' => return Err("template variables ($x) are not supported".into()),
            _ => {
                let start = i;
                let mut end = s.len();
                while let Some(&(j, c)) = chars.peek() {
                    if c.is_whitespace() || matches!(c, '|' | '(' | ')' | '"' | '`') {
                        end = j;
                        break;
                    }
                    chars.next();
                }
                let w = &s[start..end];
                if let Some(name) = w.strip_prefix('.') {
                    if !name
                        .chars()
                        .all(|c| c.is_alphanumeric() || c == '_' || c == '.')
                    {
                        return Err(format!("bad field {w:?} in template"));
                    }
                    out.push(Tok::Field(name.to_owned()));
                } else if w.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '+')
                    || (w.starts_with('.') && w.len() > 1)
                {
                    out.push(Tok::Num(w.to_owned()));
                } else if w.chars().all(|c| c.is_alphanumeric() || c == '_') {
                    out.push(Tok::Word(w.to_owned()));
                } else {
                    return Err(format!("unexpected {w:?} in template"));
                }
            }
        }
    }
    Ok(out)
}

fn parse_pipe(toks: &[Tok], depth: usize) -> Result<Pipe, String> {
    if depth > MAX_NESTING {
        return Err("template nests too deeply".into());
    }
    let mut cmds = Vec::new();
    let mut args = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        match &toks[i] {
            Tok::Pipe => {
                if args.is_empty() {
                    return Err("missing command before | in template".into());
                }
                cmds.push(Cmd(std::mem::take(&mut args)));
            }
            Tok::Open => {
                let mut level = 0usize;
                let mut j = i;
                loop {
                    match toks.get(j) {
                        Some(Tok::Open) => level += 1,
                        Some(Tok::Close) => {
                            level -= 1;
                            if level == 0 {
                                break;
                            }
                        }
                        Some(_) => {}
                        None => return Err("unclosed ( in template".into()),
                    }
                    j += 1;
                }
                args.push(Arg::Sub(parse_pipe(&toks[i + 1..j], depth + 1)?));
                i = j;
            }
            Tok::Close => return Err("unexpected ) in template".into()),
            Tok::Field(f) => args.push(Arg::Field(f.clone())),
            Tok::Str(s) => args.push(Arg::Str(s.clone())),
            Tok::Num(n) => args.push(number(n)?),
            Tok::Word(w) => args.push(match w.as_str() {
                "true" => Arg::Bool(true),
                "false" => Arg::Bool(false),
                "nil" => Arg::Nil,
                f if is_function(f) => Arg::Func(f.to_owned()),
                other => return Err(format!("function {other:?} not defined")),
            }),
        }
        i += 1;
    }
    if args.is_empty() {
        return Err("missing value for command in template".into());
    }
    cmds.push(Cmd(args));
    Ok(Pipe(cmds))
}

fn number(n: &str) -> Result<Arg, String> {
    if let Ok(i) = n.parse::<i64>() {
        return Ok(Arg::Int(i));
    }
    if let Some(Ok(i)) = n.strip_prefix("0x").map(|h| i64::from_str_radix(h, 16)) {
        return Ok(Arg::Int(i));
    }
    n.parse::<f64>()
        .map(Arg::Float)
        .map_err(|_| format!("bad number {n:?} in template"))
}

fn render_nodes(nodes: &[Node], ctx: &Context<'_>, out: &mut String) -> Result<(), String> {
    for n in nodes {
        match n {
            Node::Text(t) => out.push_str(t),
            Node::Action(p) => {
                out.push_str(&eval_pipe(p, ctx)?.render());
                // Each function's result is bounded; so is their sum.
                if out.len() > MAX_RENDERED {
                    return Err("template result longer than 1 MiB".into());
                }
            }
            Node::If(branches, otherwise) => {
                let mut taken = false;
                for (cond, body) in branches {
                    if eval_pipe(cond, ctx)?.truthy() {
                        render_nodes(body, ctx, out)?;
                        taken = true;
                        break;
                    }
                }
                if !taken {
                    render_nodes(otherwise, ctx, out)?;
                }
            }
        }
    }
    Ok(())
}

fn eval_pipe(p: &Pipe, ctx: &Context<'_>) -> Result<V, String> {
    let mut prev: Option<V> = None;
    for cmd in &p.0 {
        prev = Some(eval_cmd(cmd, ctx, prev)?);
    }
    Ok(prev.unwrap_or(V::Nil))
}

fn eval_cmd(cmd: &Cmd, ctx: &Context<'_>, piped: Option<V>) -> Result<V, String> {
    match cmd.0.first() {
        Some(Arg::Func(name)) => {
            let mut args = Vec::with_capacity(cmd.0.len());
            for a in &cmd.0[1..] {
                args.push(eval_arg(a, ctx)?);
            }
            args.extend(piped);
            call(name, args, ctx)
        }
        Some(first) => {
            if cmd.0.len() > 1 {
                return Err("can't give arguments to a non-function".into());
            }
            if piped.is_some() {
                return Err("can't pipe into a non-function".into());
            }
            eval_arg(first, ctx)
        }
        None => Ok(V::Nil),
    }
}

fn eval_arg(a: &Arg, ctx: &Context<'_>) -> Result<V, String> {
    Ok(match a {
        Arg::Field(f) if f.is_empty() => V::Nil,
        Arg::Field(f) => ctx
            .labels
            .get(f.as_str())
            .map_or(V::Nil, |v| V::Str(v.clone())),
        Arg::Str(s) => V::Str(s.clone()),
        Arg::Int(i) => V::Int(*i),
        Arg::Float(f) => V::Float(*f),
        Arg::Bool(b) => V::Bool(*b),
        Arg::Nil => V::Nil,
        Arg::Func(name) => call(name, Vec::new(), ctx)?,
        Arg::Sub(p) => eval_pipe(p, ctx)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logql::labels::Labels;

    fn render(t: &str, labels: &[(&str, &str)]) -> Result<String, String> {
        let labels: Labels = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Template::parse(t)?.render(&Context {
            labels: &labels,
            line: "the Line",
            // 2021-06-10T09:14:29.5Z
            timestamp_ns: 1_623_316_469_500_000_000,
        })
    }

    /// Loki's documented examples (docs/sources/query/template_functions.md).
    #[test]
    fn documented_examples() {
        let l = &[
            ("path", "/api/a b"),
            ("query", "up"),
            ("duration", "3000"),
            ("err", "ErrTimeout"),
            ("cluster", "eu-cluster"),
        ];
        for (t, want) in [
            ("{{.query}} {{.duration}}", "up 3000"),
            (
                r#"{{ .path | replace " " "_" | trunc 5 | upper }}"#,
                "/API/",
            ),
            (
                r#"{{ if and (contains "he" "hello") (contains "llo" "hello") }} yes {{end}}"#,
                " yes ",
            ),
            (
                r#"{{ if contains .err "ErrTimeout" }} timeout {{else if contains "he" "hello"}} yes {{else}} no {{end}}"#,
                " timeout ",
            ),
            (
                r#"{{ if eq "x" .err }}a{{else if hasPrefix "he" "hello"}}b{{else}}c{{end}}"#,
                "b",
            ),
            ("{{ __line__ | lower }}", "the line"),
            (
                r#"{{ __timestamp__ | date "2006-01-02T15:04:05.00Z07:00" }}"#,
                "2021-06-10T09:14:29.50Z",
            ),
            ("{{ __timestamp__ | unixEpoch }}", "1623316469"),
            ("{{ div .duration 1000 }}", "3"),
            (r#"{{ alignLeft 5 "hello world"}}"#, "hello"),
            (r#"{{ alignLeft 5 "hi"}}"#, "hi   "),
            (r#"{{ alignRight 5 "hello world"}}"#, "world"),
            (r#"{{ alignRight 5 "hi"}}"#, "   hi"),
            (r#"{{ default "-" "" }}"#, "-"),
            (r#"{{ default "-" "foo" }}"#, "foo"),
            (r#"{{ .missing | default "-" }}"#, "-"),
            (r#"{{ repeat 3 "hello" }}"#, "hellohellohello"),
            (
                r#"{{ printf "The IP address was %s" .query }}"#,
                "The IP address was up",
            ),
            (r#"{{ printf "%-5.5s|" "abcdefgh" }}"#, "abcde|"),
            (r#"{{ .cluster | replace "-cluster" "" }}"#, "eu"),
            (
                r#"{{ replace "hello" "world" "hello world" }}"#,
                "world world",
            ),
            (r#"{{ substr 0 5 "hello world"}}"#, "hello"),
            (r#"{{ substr 6 11 "hello world"}}"#, "world"),
            (r#"{{ title "hello world"}}"#, "Hello World"),
            (r#"{{ trim "   hello    " }}"#, "hello"),
            (r#"{{ trimAll "$" "$5.00" }}"#, "5.00"),
            (r#"{{ trimPrefix "-" "-hello" }}"#, "hello"),
            (r#"{{ trimSuffix "-" "hello-" }}"#, "hello"),
            (r#"{{ trunc 5 "hello world"}}"#, "hello"),
            (r#"{{ trunc -5 "hello world"}}"#, "world"),
            (r#"{{ upper "hello"}}"#, "HELLO"),
            (r#"{{ lower "HELLO"}}"#, "hello"),
            (r#"{{ "a b&c" | urlencode }}"#, "a+b%26c"),
            (r#"{{ "a+b%26c" | urldecode }}"#, "a b&c"),
            (r#"{{ "hello" | b64enc }}"#, "aGVsbG8="),
            (r#"{{ "aGVsbG8=" | b64dec }}"#, "hello"),
            ("{{ add 3 2 5 }}", "10"),
            ("{{ addf 3.5 2 5 }}", "10.5"),
            ("{{ ceil 123.001 }}", "124"),
            ("{{ divf 10 2 4}}", "1.25"),
            (r#"{{ "3.5" | float64 }}"#, "3.5"),
            ("{{ floor 123.9999 }}", "123"),
            (r#"{{ "3" | int }}"#, "3"),
            ("{{ max 1 2 3 }}", "3"),
            ("{{ maxf 1 2.5 3 }}", "3"),
            ("{{ min 1 2 3 }}", "1"),
            ("{{ minf 1 2.5 3 }}", "1"),
            ("{{ mul 5 2 3}}", "30"),
            ("{{ mulf 5.5 2 2.5 }}", "27.5"),
            ("{{ mod 10 3}}", "1"),
            ("{{ round 123.555555 3 }}", "123.556"),
            ("{{ round 123.88571428571 5 .2 }}", "123.88572"),
            ("{{ sub 5 2 }}", "3"),
            ("{{ subf 5.5 2 1.5 }}", "2"),
            (r#"{{ count "a|b" "abab" }}"#, "4"),
            (r#"{{ count "o" "foo" }}"#, "2"),
            (r#"{{ regexReplaceAll "(a*)bc" "aabcx" "${1}a" }}"#, "aaax"),
            (
                r#"{{ regexReplaceAllLiteral "(ts=)" "ts=1" "timestamp=" }}"#,
                "timestamp=1",
            ),
            (
                r#"{{ toDate "2006-01-02" "2021-11-02" | unixEpoch }}"#,
                "1635811200",
            ),
            (
                r#"{{ toDateInZone "2006-01-02" "UTC" "2021-11-02" | unixEpochMillis }}"#,
                "1635811200000",
            ),
            (
                r#"{{ date "2006-01-02" (unixToTime "1679577215") }}"#,
                "2023-03-23",
            ),
            (r#"{{ .d | duration }}"#, "0"),
            (r#"{{ "1m30s" | duration_seconds }}"#, "90"),
            (r#"{{ "2KiB" | bytes }}"#, "2048"),
            ("{{- .query -}}  x", "upx"),
            ("a  {{- .query }}", "aup"),
            (r#"{{ indent 2 "a\nb" }}"#, "  a\n  b"),
            (r#"{{ nindent 2 "a" }}"#, "\n  a"),
            ("{{ .missing }}", "<no value>"),
            ("{{ if not .missing }}none{{ end }}", "none"),
            (
                r#"{{ ToUpper .query }} {{ Replace .cluster "-" "_" -1 }}"#,
                "UP eu_cluster",
            ),
        ] {
            assert_eq!(render(t, l).as_deref(), Ok(want), "{t}");
        }
    }

    #[test]
    fn refuses_what_it_cannot_run() {
        for (t, want) in [
            ("{{ range .a }}x{{ end }}", "not supported"),
            ("{{ $x := 1 }}", "variables"),
            ("{{ nope .a }}", "not defined"),
            ("{{ if .a }}x", "missing {{end}}"),
            ("{{ end }}", "without an {{if}}"),
            ("{{ .a", "unclosed action"),
        ] {
            let e = Template::parse(t).unwrap_err();
            assert!(e.contains(want), "{t}: {e}");
        }
        let deep = format!("{{{{ {}1{} }}}}", "(".repeat(500), ")".repeat(500));
        assert!(Template::parse(&deep).unwrap_err().contains("too deeply"));
        // Runtime errors are errors, not panics.
        assert!(render(r#"{{ div 1 0 }}"#, &[]).is_err());
        assert!(render(r#"{{ b64dec "***" }}"#, &[]).is_err());
    }
}
