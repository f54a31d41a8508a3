//! Running one entry through a LogQL pipeline.

use std::collections::BTreeMap;

use serde_json::Value;

use super::ast::*;
use super::source::SourceEntry;

/// A label set, sorted by name.
pub type Labels = BTreeMap<String, String>;

pub const ERROR_LABEL: &str = "__error__";
const ERROR_DETAILS: &str = "__error_details__";

/// The entry's final labels and line, or `None` when a filter drops it.
/// Labels start as the stream's, plus its structured metadata.
pub fn process(
    pipeline: &[Stage],
    stream: &[(String, String)],
    entry: &SourceEntry,
) -> Option<(Labels, String)> {
    let mut labels: Labels = stream.iter().cloned().collect();
    for (k, v) in &entry.metadata {
        labels.entry(k.clone()).or_insert_with(|| v.clone());
    }
    let mut line: std::borrow::Cow<'_, str> = std::borrow::Cow::Borrowed(&entry.line);
    for stage in pipeline {
        match stage {
            Stage::Line(f) => {
                if !f.passes(&line) {
                    return None;
                }
            }
            Stage::Json => json(&line, stream, &mut labels),
            Stage::Logfmt => logfmt(&line, stream, &mut labels),
            Stage::Label(f) => {
                if !label_filter(f, &mut labels) {
                    return None;
                }
            }
            Stage::LineFormat(parts) => {
                let mut out = String::new();
                for p in parts {
                    match p {
                        TemplatePart::Text(t) => out.push_str(t),
                        TemplatePart::Label(l) => {
                            out.push_str(labels.get(l).map_or("", String::as_str));
                        }
                    }
                }
                line = std::borrow::Cow::Owned(out);
            }
            Stage::Drop(names) => labels.retain(|k, _| !names.contains(k)),
            Stage::Keep(names) => labels.retain(|k, _| names.contains(k)),
        }
    }
    Some((labels, line.into_owned()))
}

/// Adds a parsed label; a name the stream already has gets `_extracted`
/// (Loki's rule), an invalid one is sanitized.
fn add_parsed(labels: &mut Labels, stream: &[(String, String)], name: &str, value: String) {
    let mut name = sanitize(name);
    if stream.iter().any(|(k, _)| *k == name) {
        name.push_str("_extracted");
    }
    labels.insert(name, value);
}

fn sanitize(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

fn json(line: &str, stream: &[(String, String)], labels: &mut Labels) {
    match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(map)) => {
            fn walk(
                prefix: &str,
                map: &serde_json::Map<String, Value>,
                stream: &[(String, String)],
                labels: &mut Labels,
            ) {
                for (k, v) in map {
                    let name = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}_{k}")
                    };
                    match v {
                        Value::Object(inner) => walk(&name, inner, stream, labels),
                        Value::Array(_) => {}
                        Value::Null => add_parsed(labels, stream, &name, String::new()),
                        Value::String(s) => add_parsed(labels, stream, &name, s.clone()),
                        other => add_parsed(labels, stream, &name, other.to_string()),
                    }
                }
            }
            walk("", &map, stream, labels);
        }
        Ok(_) => {
            labels.insert(ERROR_LABEL.into(), "JSONParserErr".into());
            labels.insert(ERROR_DETAILS.into(), "line is not a JSON object".into());
        }
        Err(e) => {
            labels.insert(ERROR_LABEL.into(), "JSONParserErr".into());
            labels.insert(ERROR_DETAILS.into(), e.to_string());
        }
    }
}

fn logfmt(line: &str, stream: &[(String, String)], labels: &mut Labels) {
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'=') {
            chars.next();
            if chars.peek() == Some(&'"') {
                chars.next();
                let mut closed = false;
                while let Some(c) = chars.next() {
                    match c {
                        '"' => {
                            closed = true;
                            break;
                        }
                        '\\' => match chars.next() {
                            Some('n') => value.push('\n'),
                            Some('t') => value.push('\t'),
                            Some(c) => value.push(c),
                            None => break,
                        },
                        c => value.push(c),
                    }
                }
                if !closed {
                    labels.insert(ERROR_LABEL.into(), "LogfmtParserErr".into());
                    labels.insert(ERROR_DETAILS.into(), "unterminated quoted value".into());
                    return;
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() {
                        break;
                    }
                    value.push(c);
                    chars.next();
                }
            }
        }
        if !key.is_empty() {
            add_parsed(labels, stream, &key, value);
        }
    }
}

fn label_filter(f: &LabelFilter, labels: &mut Labels) -> bool {
    match f {
        LabelFilter::And(a, b) => label_filter(a, labels) && label_filter(b, labels),
        LabelFilter::Or(a, b) => label_filter(a, labels) || label_filter(b, labels),
        LabelFilter::String {
            name,
            op,
            value,
            regex,
        } => {
            let v = labels.get(name).map_or("", String::as_str);
            match (op, regex) {
                (MatchOp::Equal, _) => v == value,
                (MatchOp::NotEqual, _) => v != value,
                (MatchOp::Regex, Some(r)) => r.is_match(v),
                (MatchOp::NotRegex, Some(r)) => !r.is_match(v),
                (_, None) => false,
            }
        }
        LabelFilter::Number {
            name,
            op,
            value,
            unit,
        } => {
            let Some(raw) = labels.get(name).cloned() else {
                return false;
            };
            let parsed = match unit {
                Unit::Plain => raw.trim().parse::<f64>().ok(),
                Unit::Duration => {
                    super::parser::parse_duration(raw.trim()).map(|d| d.as_secs_f64())
                }
                Unit::Bytes => super::parser::parse_bytes(raw.trim())
                    .or_else(|| raw.trim().parse::<f64>().ok()),
            };
            match parsed {
                Some(n) => op.apply(n, *value),
                // Loki keeps the line and marks it.
                None => {
                    labels.insert(ERROR_LABEL.into(), "LabelFilterErr".into());
                    labels.insert(
                        ERROR_DETAILS.into(),
                        format!("cannot convert {raw:?} of label {name} to a number"),
                    );
                    true
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::parser::parse;
    use super::*;

    fn run(q: &str, line: &str) -> Option<(Labels, String)> {
        let super::super::ast::Query::Log(expr) = parse(q).unwrap() else {
            panic!()
        };
        let stream = vec![("job".to_owned(), "odoo".to_owned())];
        let entry = SourceEntry {
            timestamp_ns: 1,
            line: line.into(),
            metadata: vec![("trace_id".into(), "t1".into())],
        };
        process(&expr.pipeline, &stream, &entry)
    }

    #[test]
    fn json_and_label_filters() {
        let (labels, line) = run(
            r#"{job="odoo"} |= "picking" | json | status >= 500 | line_format "{{.job}} {{.req_route}} {{.trace_id}}""#,
            r#"{"msg":"picking failed","status":503,"job":"x","req":{"route":"/pick"}}"#,
        )
        .unwrap();
        assert_eq!(line, "odoo /pick t1");
        assert_eq!(labels["status"], "503");
        assert_eq!(labels["job_extracted"], "x");
        assert!(run(r#"{job="odoo"} | json | status < 500"#, r#"{"status":503}"#).is_none());
        let (labels, _) = run(r#"{job="odoo"} | json"#, "not json").unwrap();
        assert_eq!(labels[ERROR_LABEL], "JSONParserErr");
        let (labels, _) = run(
            r#"{job="odoo"} | json | drop __error__, __error_details__"#,
            "x",
        )
        .unwrap();
        assert!(!labels.contains_key(ERROR_LABEL));
    }

    #[test]
    fn logfmt_durations_and_line_filters() {
        let q = r#"{job="odoo"} | logfmt | took > 1s and level=~"warn|error""#;
        assert!(run(q, r#"level=warn took=1.5s msg="slow pick""#).is_some());
        assert!(run(q, "level=warn took=500ms").is_none());
        assert!(run(q, "level=info took=3s").is_none());
        assert!(run(r#"{job="odoo"} != "debug" |~ "pick(ing)?""#, "picking").is_some());
        assert!(run(r#"{job="odoo"} != "debug""#, "debug picking").is_none());
        assert!(run(r#"{job="odoo"} | trace_id="t1""#, "x").is_some());
    }
}
