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
//! `externalURL`, `query` with `first`, `label`, `value`, `strvalue`,
//! `sortByLabel` and `range` over its samples (`.Labels`, `.Value`), and
//! Go's `and`, `or`, `not`, `eq`, `ne`, `lt`, `le`, `gt`, `ge`, `len`,
//! `index`, `print`, `printf`, `println`, `urlquery`, `html`. A `query` is
//! run before the template is expanded (expansion does not wait on the
//! database), so its text must be a literal string; one built while
//! expanding fails with that reason. Refused when the rule file is loaded:
//! `define`/`template`/`block`, `tmpl` and the link functions.

use std::collections::BTreeMap;

use super::gofmt::format_g;

mod funcs;
mod parse;

use parse::{Stop, parse_nodes, split};

/// A template that could not be parsed or expanded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("template: {0}")]
pub struct TemplateError(pub String);

fn err<T>(m: impl Into<String>) -> Result<T, TemplateError> {
    Err(TemplateError(m.into()))
}

/// Go's `%v` of Prometheus' template sample: `&{map[a:b] 1}`.
fn sample_text(s: &QuerySample) -> String {
    let inner: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}:{v}")).collect();
    format!("&{{map[{}] {}}}", inner.join(" "), format_g(s.value, None))
}

/// What a template reads: an alert's labels, value and the server's
/// external labels and URL.
#[derive(Debug, Clone, Default)]
pub struct TemplateData {
    pub labels: BTreeMap<String, String>,
    pub external_labels: BTreeMap<String, String>,
    pub external_url: String,
    pub value: f64,
    /// The answers of the queries the template names ([`Template::queries`]),
    /// run before it is expanded; a query missing here is an error.
    pub queries: std::sync::Arc<BTreeMap<String, Result<Vec<QuerySample>, String>>>,
}

/// One sample of a template's `query`: its labels (`__name__` included)
/// and value.
#[derive(Debug, Clone, PartialEq)]
pub struct QuerySample {
    pub labels: BTreeMap<String, String>,
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
    Sample(QuerySample),
    Samples(Vec<QuerySample>),
}

impl Val {
    fn truthy(&self) -> bool {
        match self {
            Val::Nil => false,
            Val::Bool(b) => *b,
            Val::Num(n) => *n != 0.0,
            Val::Str(s) => !s.is_empty(),
            Val::Map(m) => !m.is_empty(),
            Val::Data | Val::Sample(_) => true,
            Val::Samples(v) => !v.is_empty(),
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
            Val::Sample(s) => sample_text(s),
            Val::Samples(v) => {
                let inner: Vec<String> = v.iter().map(sample_text).collect();
                format!("[{}]", inner.join(" "))
            }
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
            Val::Sample(_) => "*template.sample",
            Val::Samples(_) => "template.queryResult",
        }
    }

    fn num(&self, f: &str) -> Result<f64, TemplateError> {
        match self {
            Val::Num(n) => Ok(*n),
            Val::Str(s) => s
                .trim()
                .parse::<f64>()
                .or_else(|_| err(format!("{f}: cannot convert {s:?} to a number"))),
            Val::Bool(_)
            | Val::Nil
            | Val::Map(_)
            | Val::Data
            | Val::Sample(_)
            | Val::Samples(_) => err(format!(
                "{f}: cannot convert {} to a number",
                self.go_type()
            )),
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
    Range(
        Option<String>,
        Option<String>,
        Pipeline,
        Vec<Node>,
        Vec<Node>,
    ),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    nodes: Vec<Node>,
}

impl Template {
    /// Parses `src`; errors name what is wrong, as `promtool check rules`
    /// reports a template that does not parse.
    pub fn parse(src: &str) -> Result<Self, TemplateError> {
        let items = split(src)?;
        let mut at = 0;
        match parse_nodes(&items, &mut at, 0)? {
            (nodes, Stop::Eof) => Ok(Template { nodes }),
            (_, Stop::Closed) => err("unexpected {{end}}"),
            (_, Stop::Else(_)) => err("unexpected {{else}}"),
        }
    }

    /// The queries the template runs, written as literal strings
    /// (`query "up"`, `"up" | query`): run them and put their answers in
    /// [`TemplateData::queries`] before expanding. A query built at
    /// expansion time (`query (printf …)`) is not known here and fails.
    pub fn queries(&self) -> Vec<String> {
        fn pipe(p: &Pipeline, out: &mut Vec<String>) {
            for (i, cmd) in p.cmds.iter().enumerate() {
                if let Some(Arg::Func(f)) = cmd.first()
                    && f == "query"
                {
                    if let Some(Arg::Str(s)) = cmd.get(1) {
                        out.push(s.clone());
                    } else if cmd.len() == 1
                        && let Some(prev) = i.checked_sub(1).and_then(|j| p.cmds.get(j))
                        && let [Arg::Str(s)] = prev.as_slice()
                    {
                        out.push(s.clone());
                    }
                }
                for a in cmd {
                    if let Arg::Pipe(inner) = a {
                        pipe(inner, out);
                    }
                }
            }
        }
        fn nodes(list: &[Node], out: &mut Vec<String>) {
            for n in list {
                match n {
                    Node::Text(_) => {}
                    Node::Action(p) => pipe(p, out),
                    Node::If(p, a, b) | Node::With(p, a, b) | Node::Range(_, _, p, a, b) => {
                        pipe(p, out);
                        nodes(a, out);
                        nodes(b, out);
                    }
                }
            }
        }
        let mut out = Vec::new();
        nodes(&self.nodes, &mut out);
        out.sort();
        out.dedup();
        out
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
                    if let Val::Samples(list) = over {
                        if list.is_empty() {
                            self.nodes(els, dot)?;
                        }
                        for (i, s) in list.into_iter().enumerate() {
                            let inner = self.vars.len();
                            if let Some(k) = k {
                                self.vars.push((k.clone(), Val::Num(i as f64)));
                            }
                            if let Some(v) = v {
                                self.vars.push((v.clone(), Val::Sample(s.clone())));
                            }
                            self.nodes(body, &Val::Sample(s))?;
                            self.vars.truncate(inner);
                        }
                        self.vars.truncate(depth);
                        continue;
                    }
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
                Val::Sample(s) => match f.as_str() {
                    "Labels" => Val::Map(s.labels),
                    "Value" => Val::Num(s.value),
                    other => {
                        return err(format!(
                            "can't evaluate field {other} in type *template.sample"
                        ));
                    }
                },
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
            Arg::Func(f) => funcs::call(self.data, f, Vec::new())?,
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
        funcs::call(self.data, f, args)
    }
}

#[cfg(test)]
mod tests;
