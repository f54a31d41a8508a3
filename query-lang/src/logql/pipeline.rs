//! Running one entry through a LogQL pipeline.

use std::borrow::Cow;

use super::ast::*;
use super::parsers;
use super::source::SourceEntry;
use super::template::Context;

pub use super::labels::{ERROR_DETAILS, ERROR_LABEL, Labels};

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
    let mut line: Cow<'_, str> = Cow::Borrowed(&entry.line);
    for stage in pipeline {
        match stage {
            Stage::Line(f) => {
                if !f.passes(&line) {
                    return None;
                }
            }
            Stage::Json(fields) => parsers::json(&line, fields, stream, &mut labels),
            Stage::Logfmt(params) => parsers::logfmt(&line, params, stream, &mut labels),
            Stage::Regexp(re) => parsers::regexp(&line, re, stream, &mut labels),
            Stage::Pattern(p) => parsers::pattern(&line, p, stream, &mut labels),
            Stage::Unpack => {
                if let Some(l) = parsers::unpack(&line, stream, &mut labels) {
                    line = Cow::Owned(l);
                }
            }
            Stage::Label(f) => {
                if !label_filter(f, &mut labels) {
                    return None;
                }
            }
            Stage::LineFormat(t) => {
                let ctx = Context {
                    labels: &labels,
                    line: &line,
                    timestamp_ns: entry.timestamp_ns,
                };
                match t.render(&ctx) {
                    Ok(out) => line = Cow::Owned(out),
                    Err(e) => {
                        labels.insert(ERROR_LABEL.into(), "TemplateFormatErr".into());
                        labels.insert(ERROR_DETAILS.into(), e);
                    }
                }
            }
            Stage::LabelFormat(assignments) => {
                label_format(assignments, &line, entry.timestamp_ns, &mut labels);
            }
            Stage::Drop(names) => labels.retain(|k, v| !names.iter().any(|n| n.matches(k, v))),
            Stage::Keep(names) => labels.retain(|k, v| {
                k == ERROR_LABEL || k == ERROR_DETAILS || names.iter().any(|n| n.matches(k, v))
            }),
        }
    }
    Some((labels, line.into_owned()))
}

/// `label_format`: every template sees the labels as the stage found
/// them; renames remove their source.
fn label_format(
    assignments: &[(String, LabelFormat)],
    line: &str,
    timestamp_ns: i64,
    labels: &mut Labels,
) {
    let before = labels.clone();
    let ctx = Context {
        labels: &before,
        line,
        timestamp_ns,
    };
    for (dst, f) in assignments {
        match f {
            // A missing source renames nothing.
            LabelFormat::Rename(src) => {
                if let Some(v) = before.get(src) {
                    if src != dst {
                        labels.remove(src);
                    }
                    labels.insert(dst.clone(), v.clone());
                }
            }
            LabelFormat::Template(t) => match t.render(&ctx) {
                Ok(v) => {
                    labels.insert(dst.clone(), v);
                }
                Err(e) => {
                    labels.insert(ERROR_LABEL.into(), "TemplateFormatErr".into());
                    labels.insert(ERROR_DETAILS.into(), e);
                }
            },
        }
    }
}

pub fn label_filter(f: &LabelFilter, labels: &mut Labels) -> bool {
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
        LabelFilter::Ip {
            name,
            negated,
            pattern,
        } => {
            let inside = labels
                .get(name)
                .and_then(|v| v.trim().parse().ok())
                .is_some_and(|ip| pattern.contains(ip));
            inside != *negated
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
                Unit::Duration => super::units::parse_duration(raw.trim()).map(|d| d.as_secs_f64()),
                Unit::Bytes => {
                    super::units::parse_bytes(raw.trim()).or_else(|| raw.trim().parse::<f64>().ok())
                }
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
