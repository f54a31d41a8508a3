//! What Grafana's Logs Drilldown asks of a sample of entries: the fields
//! their lines and structured metadata hold (`detected_fields`: name,
//! type, cardinality, the parser that finds it) and the patterns the
//! lines follow (`patterns`: a Drain-style clustering of whitespace
//! tokens, variable tokens as `<_>`, valid `pattern` expressions).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::Value;

use super::ast::LogfmtParams;
use super::labels::{ERROR_LABEL, Labels};
use super::parsers;
use super::source::SourceEntry;

/// Distinct values kept per field (the cardinality counts past it).
const MAX_VALUES: usize = 1000;

/// One detected field.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectedField {
    pub label: String,
    /// `string`, `int`, `float`, `boolean`, `duration` or `bytes`.
    pub kind: &'static str,
    pub cardinality: usize,
    /// `json`, `logfmt`; empty for structured metadata.
    pub parsers: Vec<&'static str>,
    /// The JSON keys leading to the field (json only).
    pub json_path: Vec<String>,
    /// Its distinct values, sorted (at most [`MAX_VALUES`]).
    pub values: Vec<String>,
}

#[derive(Default)]
struct Acc {
    parsers: BTreeSet<&'static str>,
    json_path: Vec<String>,
    values: BTreeSet<String>,
    overflow: usize,
}

impl Acc {
    fn add(&mut self, v: String) {
        if self.values.len() < MAX_VALUES || self.values.contains(&v) {
            self.values.insert(v);
        } else {
            self.overflow += 1;
        }
    }
}

/// The fields of `entries` (each with its stream's labels): parsed from
/// JSON lines (nested keys joined with `_`) or logfmt lines, and the
/// structured metadata; stream labels are not fields.
pub fn detect_fields(entries: &[(Labels, SourceEntry)]) -> Vec<DetectedField> {
    let mut acc: BTreeMap<String, Acc> = BTreeMap::new();
    for (stream, e) in entries {
        for (k, v) in &e.metadata {
            if !v.is_empty() && !stream.contains_key(k) {
                acc.entry(k.clone()).or_default().add(v.clone());
            }
        }
        let line = e.line.trim_start();
        if line.starts_with('{')
            && let Ok(Value::Object(map)) = serde_json::from_str::<Value>(line)
        {
            let mut out = Vec::new();
            flatten(&mut Vec::new(), &map, &mut out);
            for (path, v) in out {
                let mut label = parsers::sanitize(&path.join("_"));
                if stream.contains_key(&label) {
                    label.push_str("_extracted");
                }
                let a = acc.entry(label).or_default();
                a.parsers.insert("json");
                if a.json_path.is_empty() {
                    a.json_path = path;
                }
                a.add(v);
            }
            continue;
        }
        let mut parsed = Labels::new();
        parsers::logfmt(line, &LogfmtParams::default(), &[], &mut parsed);
        if parsed.contains_key(ERROR_LABEL) {
            continue;
        }
        for (k, v) in parsed {
            let label = if stream.contains_key(&k) {
                format!("{k}_extracted")
            } else {
                k
            };
            let a = acc.entry(label).or_default();
            a.parsers.insert("logfmt");
            a.add(v);
        }
    }
    acc.into_iter()
        .map(|(label, a)| DetectedField {
            kind: kind_of(&a.values),
            cardinality: a.values.len() + a.overflow,
            parsers: a.parsers.into_iter().collect(),
            json_path: a.json_path,
            values: a.values.into_iter().collect(),
            label,
        })
        .collect()
}

fn flatten(
    prefix: &mut Vec<String>,
    map: &serde_json::Map<String, Value>,
    out: &mut Vec<(Vec<String>, String)>,
) {
    // Bounded: a line is at most the line size limit, and serde_json
    // refuses nesting past 128.
    for (k, v) in map {
        prefix.push(k.clone());
        match v {
            Value::Object(inner) => flatten(prefix, inner, out),
            Value::Array(_) | Value::Null => {}
            Value::String(s) if s.is_empty() => {}
            Value::String(s) => out.push((prefix.clone(), s.clone())),
            other => out.push((prefix.clone(), other.to_string())),
        }
        prefix.pop();
    }
}

/// The narrowest type every value parses as.
fn kind_of(values: &BTreeSet<String>) -> &'static str {
    let all = |f: &dyn Fn(&str) -> bool| !values.is_empty() && values.iter().all(|v| f(v));
    if all(&|v| v.parse::<i64>().is_ok()) {
        "int"
    } else if all(&|v| v.parse::<f64>().is_ok()) {
        "float"
    } else if all(&|v| v == "true" || v == "false") {
        "boolean"
    } else if all(&|v| {
        v.ends_with(|c: char| c.is_ascii_alphabetic())
            && super::units::parse_go_duration(v).is_some()
    }) {
        "duration"
    } else if all(&|v| {
        v.ends_with(|c: char| c.is_ascii_alphabetic())
            && super::units::parse_humanized_bytes(v).is_some()
    }) {
        "bytes"
    } else {
        "string"
    }
}

/// Clusters the most patterns are grouped into.
const MAX_CLUSTERS: usize = 500;
/// Share of equal tokens for a line to join a cluster (Drain's `simTh`).
const SIMILARITY: f64 = 0.3;

/// A token: its text and whether it follows the one before without a
/// space (the value after `key=`).
type Token<'a> = (&'a str, bool);

struct Cluster {
    /// `None` is a variable token; the flag as in [`Token`].
    template: Vec<(Option<String>, bool)>,
    /// Step bucket (ns) → lines.
    counts: BTreeMap<i64, u64>,
    total: u64,
}

/// A pattern and its lines per step: (pattern, [(bucket start ns, count)]).
pub type PatternSamples = (String, Vec<(i64, u64)>);

/// Whitespace-separated words; `key=value` as `key=` and `value`.
fn tokenize(line: &str) -> Vec<Token<'_>> {
    let mut out = Vec::new();
    for word in line.split_whitespace() {
        match word.find('=') {
            Some(i) if i > 0 && i + 1 < word.len() => {
                out.push((&word[..=i], false));
                out.push((&word[i + 1..], true));
            }
            _ => out.push((word, false)),
        }
    }
    out
}

/// The patterns of `lines` (time ns, line), with their counts per `step_ns`
/// bucket, most frequent first.
pub fn patterns<'a>(
    lines: impl Iterator<Item = (i64, &'a str)>,
    step_ns: i64,
) -> Vec<PatternSamples> {
    let step = step_ns.max(1);
    // Clusters by token count, then by first token (Drain's tree).
    let mut index: HashMap<(usize, String), Vec<usize>> = HashMap::new();
    let mut clusters: Vec<Cluster> = Vec::new();
    for (ts, line) in lines {
        let tokens = tokenize(line);
        let Some(first) = tokens.first() else {
            continue;
        };
        let route = if is_variable(first.0) { "<_>" } else { first.0 };
        let key = (tokens.len(), route.to_owned());
        let bucket = ts.div_euclid(step) * step;
        let candidates = index.entry(key).or_default();
        let best = candidates
            .iter()
            .map(|&i| (i, similarity(&clusters[i].template, &tokens)))
            .filter(|(_, s)| *s >= SIMILARITY)
            .max_by(|a, b| a.1.total_cmp(&b.1));
        let i = match best {
            Some((i, _)) => {
                for (slot, t) in clusters[i].template.iter_mut().zip(&tokens) {
                    if slot.0.as_deref() != Some(t.0) {
                        slot.0 = None;
                    }
                }
                i
            }
            None if clusters.len() < MAX_CLUSTERS => {
                clusters.push(Cluster {
                    template: tokens
                        .iter()
                        .map(|(t, glued)| ((!is_variable(t)).then(|| (*t).to_owned()), *glued))
                        .collect(),
                    counts: BTreeMap::new(),
                    total: 0,
                });
                candidates.push(clusters.len() - 1);
                clusters.len() - 1
            }
            None => continue,
        };
        *clusters[i].counts.entry(bucket).or_default() += 1;
        clusters[i].total += 1;
    }
    // Templates that became equal (after merging) are one pattern.
    let mut merged: HashMap<String, (u64, BTreeMap<i64, u64>)> = HashMap::new();
    for c in clusters {
        let e = merged.entry(render(&c.template)).or_default();
        e.0 += c.total;
        for (b, n) in c.counts {
            *e.1.entry(b).or_default() += n;
        }
    }
    let mut out: Vec<(u64, PatternSamples)> = merged
        .into_iter()
        .map(|(p, (total, counts))| (total, (p, counts.into_iter().collect())))
        .collect();
    out.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.0.cmp(&b.1.0)));
    out.into_iter().map(|(_, p)| p).collect()
}

/// Values rather than words: tokens with a digit (times, ids, numbers,
/// addresses); never a `key=`.
fn is_variable(t: &str) -> bool {
    !t.ends_with('=') && t.contains(|c: char| c.is_ascii_digit())
}

fn similarity(template: &[(Option<String>, bool)], tokens: &[Token<'_>]) -> f64 {
    let same = template
        .iter()
        .zip(tokens)
        .filter(|(a, b)| a.0.as_deref() == Some(b.0))
        .count();
    same as f64 / tokens.len() as f64
}

/// The template as a `pattern` expression: variables as `<_>`, a run of
/// them as one.
fn render(template: &[(Option<String>, bool)]) -> String {
    let mut out = String::new();
    let mut last_var = false;
    for (t, glued) in template {
        match t {
            None if last_var => continue,
            None => {
                if !out.is_empty() && !glued {
                    out.push(' ');
                }
                out.push_str("<_>");
                last_var = true;
            }
            Some(s) => {
                if !out.is_empty() && !glued {
                    out.push(' ');
                }
                out.push_str(s);
                last_var = false;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Loki's documented example (docs/sources/reference/loki-http-api.md,
    /// patterns detection) and the pattern parser reading the result.
    #[test]
    fn patterns_follow_lokis_example_and_parse_as_patterns() {
        let lines = [
            "ts=2024-03-30T23:03:40 caller=grpc_logging.go:66 level=info method=/cortex.Ingester/Push duration=200ms msg=gRPC",
            "ts=2024-03-30T23:03:41 caller=grpc_logging.go:66 level=info method=/cortex.Ingester/Push duration=500ms msg=gRPC",
            "ts=2024-03-30T23:03:52 caller=grpc_logging.go:66 level=info method=/cortex.Ingester/Push duration=20ms msg=gRPC",
            "GET /api/v1/users/42 200 1.2ms",
            "GET /api/v1/users/7 404 0.3ms",
        ];
        let s = 1_000_000_000i64;
        let got = patterns(
            lines
                .iter()
                .enumerate()
                .map(|(i, l)| (i as i64 * 10 * s, *l)),
            20 * s,
        );
        assert_eq!(
            got[0].0,
            "ts=<_> caller=<_> level=info method=/cortex.Ingester/Push duration=<_> msg=gRPC"
        );
        assert_eq!(got[0].1, vec![(0, 2), (20 * s, 1)]);
        assert_eq!(got[1].0, "GET <_>");
        // Each pattern selects its own lines through `|>`.
        for (p, _) in &got {
            let filter = parsers::parse_pattern_filter(p).unwrap_or_else(|e| panic!("{p}: {e}"));
            let hits = lines.iter().filter(|l| filter.test(l)).count();
            assert_eq!(hits, if p.starts_with("ts=") { 3 } else { 2 }, "{p}");
        }
    }

    #[test]
    fn fields_by_parser_with_types_and_cardinality() {
        let stream: Labels = [("job".to_owned(), "api".to_owned())].into();
        let entry = |line: &str, meta: &[(&str, &str)]| {
            (
                stream.clone(),
                SourceEntry {
                    timestamp_ns: 0,
                    line: line.into(),
                    metadata: meta
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                        .collect(),
                },
            )
        };
        let fields = detect_fields(&[
            entry(
                r#"{"status":200,"path":"/a","ok":true,"req":{"took":"1.5s"},"job":"x"}"#,
                &[("trace_id", "t1")],
            ),
            entry(
                r#"{"status":404,"path":"/a","ok":false,"req":{"took":"20ms"}}"#,
                &[("trace_id", "t2")],
            ),
            entry("level=info size=10KB latency=0.5", &[]),
            entry("level=warn size=2MB latency=1", &[]),
        ]);
        let by: HashMap<&str, &DetectedField> =
            fields.iter().map(|f| (f.label.as_str(), f)).collect();
        assert_eq!((by["status"].kind, by["status"].cardinality), ("int", 2));
        assert_eq!(by["status"].parsers, vec!["json"]);
        assert_eq!(by["req_took"].kind, "duration");
        assert_eq!(by["req_took"].json_path, vec!["req", "took"]);
        assert_eq!(by["ok"].kind, "boolean");
        assert_eq!(by["path"].kind, "string");
        assert_eq!(by["job_extracted"].values, vec!["x"]);
        assert_eq!(
            (by["level"].parsers.clone(), by["size"].kind),
            (vec!["logfmt"], "bytes")
        );
        assert_eq!(by["latency"].kind, "float");
        assert!(by["trace_id"].parsers.is_empty());
        assert!(!by.contains_key("job"), "stream labels are not fields");
    }
}
