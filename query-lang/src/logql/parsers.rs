//! LogQL's parser stages: `json`, `logfmt`, `pattern`, `regexp` and
//! `unpack`, each adding labels to an entry (Loki's rules: names
//! sanitized, a name the stream already has gets `_extracted`, a line that
//! does not parse gets `__error__` and `__error_details__`).

use serde_json::Value;

use super::ast::{JsonPath, JsonStep, LogfmtParams, Pattern, PatternPart};
use super::labels::{ERROR_DETAILS, ERROR_LABEL, Labels};

/// Adds a parsed label; a name the stream already has gets `_extracted`
/// (Loki's rule), an invalid one is sanitized.
pub fn add_parsed(labels: &mut Labels, stream: &[(String, String)], name: &str, value: String) {
    let mut name = sanitize(name);
    if stream.iter().any(|(k, _)| *k == name) {
        name.push_str("_extracted");
    }
    labels.insert(name, value);
}

fn set_error(labels: &mut Labels, error: &str, details: String) {
    labels.insert(ERROR_LABEL.into(), error.into());
    labels.insert(ERROR_DETAILS.into(), details);
}

pub fn sanitize(name: &str) -> String {
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

/// `| json` (every field, nested keys joined with `_`, arrays skipped) or
/// `| json a="path"` (the named fields; objects and arrays as JSON text).
pub fn json(
    line: &str,
    fields: &[(String, JsonPath)],
    stream: &[(String, String)],
    labels: &mut Labels,
) {
    let map = match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(map)) => map,
        Ok(_) => {
            return set_error(labels, "JSONParserErr", "line is not a JSON object".into());
        }
        Err(e) => return set_error(labels, "JSONParserErr", e.to_string()),
    };
    if !fields.is_empty() {
        for (name, path) in fields {
            let mut at = Some(&Value::Object(map.clone()));
            for step in &path.0 {
                at = match (at, step) {
                    (Some(Value::Object(m)), JsonStep::Key(k)) => m.get(k),
                    (Some(Value::Array(a)), JsonStep::Index(i)) => a.get(*i),
                    _ => None,
                };
            }
            if let Some(v) = at {
                let text = match v {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                };
                add_parsed(labels, stream, name, text);
            }
        }
        return;
    }
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

/// `| unpack`: a JSON object's string fields become labels and `_entry`
/// the line. Returns the new line, if any.
pub fn unpack(line: &str, stream: &[(String, String)], labels: &mut Labels) -> Option<String> {
    match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(map)) => {
            let mut entry = None;
            for (k, v) in map {
                if let Value::String(s) = v {
                    if k == "_entry" {
                        entry = Some(s);
                    } else {
                        add_parsed(labels, stream, &k, s);
                    }
                }
            }
            entry
        }
        Ok(_) => {
            set_error(labels, "JSONParserErr", "line is not a JSON object".into());
            None
        }
        Err(e) => {
            set_error(labels, "JSONParserErr", e.to_string());
            None
        }
    }
}

/// `| logfmt`: `key=value key="quoted value"` pairs.
pub fn logfmt(line: &str, params: &LogfmtParams, stream: &[(String, String)], labels: &mut Labels) {
    let mut pairs: Vec<(String, Option<String>)> = Vec::new();
    let mut chars = line.chars().peekable();
    let malformed = |labels: &mut Labels, why: &str| {
        set_error(labels, "LogfmtParserErr", why.into());
    };
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        let mut bad_key = false;
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            if c == '"' {
                bad_key = true;
            }
            key.push(c);
            chars.next();
        }
        let mut value = None;
        if chars.peek() == Some(&'=') {
            chars.next();
            let mut v = String::new();
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
                            Some('n') => v.push('\n'),
                            Some('t') => v.push('\t'),
                            Some(c) => v.push(c),
                            None => break,
                        },
                        c => v.push(c),
                    }
                }
                if !closed {
                    return malformed(labels, "unterminated quoted value");
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() {
                        break;
                    }
                    if c == '=' || c == '"' {
                        bad_key = true;
                    }
                    v.push(c);
                    chars.next();
                }
            }
            value = Some(v);
        }
        if key.is_empty() || bad_key {
            if params.strict {
                return malformed(labels, &format!("malformed key/value pair at {:?}", key));
            }
            continue;
        }
        pairs.push((key, value));
    }
    if params.fields.is_empty() {
        for (k, v) in pairs {
            match v {
                Some(v) if !v.is_empty() => add_parsed(labels, stream, &k, v),
                _ if params.keep_empty => add_parsed(labels, stream, &k, String::new()),
                _ => {}
            }
        }
    } else {
        for (name, key) in &params.fields {
            if let Some((_, v)) = pairs.iter().find(|(k, _)| k == key) {
                add_parsed(labels, stream, name, v.clone().unwrap_or_default());
            }
        }
    }
}

/// `| regexp "(?P<name>…)"`: each named group that matched is a label.
pub fn regexp(line: &str, re: &regex::Regex, stream: &[(String, String)], labels: &mut Labels) {
    let Some(caps) = re.captures(line) else {
        return;
    };
    for name in re.capture_names().flatten() {
        if let Some(m) = caps.name(name) {
            add_parsed(labels, stream, name, m.as_str().to_owned());
        }
    }
}

/// `| pattern "<a> - <_> <b>"`: anchored at the line's start; each
/// capture runs to the next literal (or the line's end); at a literal
/// that is not found the capture takes the rest and parsing stops.
pub fn pattern(line: &str, p: &Pattern, stream: &[(String, String)], labels: &mut Labels) {
    let mut rest = line;
    let mut parts = p.0.as_slice();
    if let Some(PatternPart::Literal(l)) = parts.first() {
        match rest.strip_prefix(l.as_str()) {
            Some(r) => rest = r,
            None => return,
        }
        parts = &parts[1..];
    }
    while let Some(PatternPart::Capture(name)) = parts.first() {
        match parts.get(1) {
            Some(PatternPart::Literal(l)) => match rest.find(l.as_str()) {
                Some(i) => {
                    if let Some(n) = name {
                        add_parsed(labels, stream, n, rest[..i].to_owned());
                    }
                    rest = &rest[i + l.len()..];
                    parts = &parts[2..];
                }
                None => {
                    if let Some(n) = name {
                        add_parsed(labels, stream, n, rest.to_owned());
                    }
                    return;
                }
            },
            _ => {
                if let Some(n) = name {
                    add_parsed(labels, stream, n, rest.to_owned());
                }
                return;
            }
        }
    }
}

/// Parses a `pattern` parser's expression; refuses one without a named
/// capture, with two captures in a row or with a name twice.
pub fn parse_pattern(s: &str) -> Result<Pattern, String> {
    let p = parse_pattern_parts(s)?;
    if !p
        .0
        .iter()
        .any(|p| matches!(p, PatternPart::Capture(Some(_))))
    {
        return Err(format!("pattern {s:?} has no named capture"));
    }
    Ok(p)
}

/// Parses a pattern line filter's expression (`|> "<_> error <_>"`):
/// captures need no name.
pub fn parse_pattern_filter(s: &str) -> Result<Pattern, String> {
    let p = parse_pattern_parts(s)?;
    if p.0.is_empty() {
        return Err("the pattern of a pattern filter is empty".into());
    }
    Ok(p)
}

fn parse_pattern_parts(s: &str) -> Result<Pattern, String> {
    let mut parts: Vec<PatternPart> = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        let capture = rest.find('<').and_then(|open| {
            let close = rest[open..].find('>')? + open;
            let name = &rest[open + 1..close];
            let valid = !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit());
            valid.then_some((open, close, name))
        });
        let Some((open, close, name)) = capture else {
            push_literal(&mut parts, rest);
            break;
        };
        if open > 0 {
            push_literal(&mut parts, &rest[..open]);
        }
        if matches!(parts.last(), Some(PatternPart::Capture(_))) {
            return Err(format!(
                "pattern {s:?}: captures must be separated by literals (at <{name}>)"
            ));
        }
        let name = (name != "_").then(|| name.to_owned());
        if let Some(n) = &name
            && parts
                .iter()
                .any(|p| matches!(p, PatternPart::Capture(Some(x)) if x == n))
        {
            return Err(format!("pattern {s:?}: capture <{n}> appears twice"));
        }
        parts.push(PatternPart::Capture(name));
        rest = &rest[close + 1..];
    }
    Ok(Pattern(parts))
}

impl Pattern {
    /// Whether `line` follows the pattern (Loki's pattern line filter):
    /// each literal in order with a non-empty capture between; a line
    /// ending past the last literal only when a capture ends the pattern.
    pub fn test(&self, line: &str) -> bool {
        if line.is_empty() || self.0.is_empty() {
            return line.is_empty() && self.0.is_empty();
        }
        let mut off = 0;
        for (i, part) in self.0.iter().enumerate() {
            let PatternPart::Literal(lit) = part else {
                continue;
            };
            let Some(j) = line[off..].find(lit.as_str()) else {
                return false;
            };
            if i != 0 && j == 0 {
                return false;
            }
            off += j + lit.len();
        }
        let ends_on_capture = matches!(self.0.last(), Some(PatternPart::Capture(_)));
        ends_on_capture == (off != line.len())
    }
}

fn push_literal(parts: &mut Vec<PatternPart>, text: &str) {
    if let Some(PatternPart::Literal(l)) = parts.last_mut() {
        l.push_str(text);
    } else {
        parts.push(PatternPart::Literal(text.to_owned()));
    }
}

/// Parses a `json` field expression: `a.b[0]["c d"]`.
pub fn parse_json_path(s: &str) -> Result<JsonPath, String> {
    let mut steps = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    let bad = || format!("invalid json expression {s:?}");
    while i < b.len() {
        match b[i] {
            b'.' if i > 0 => i += 1,
            b'[' => {
                let close = s[i..].find(']').ok_or_else(bad)? + i;
                let inner = s[i + 1..close].trim();
                if let Some(q) = inner.strip_prefix('"').and_then(|x| x.strip_suffix('"')) {
                    steps.push(JsonStep::Key(q.replace("\\\"", "\"")));
                } else {
                    steps.push(JsonStep::Index(inner.parse().map_err(|_| bad())?));
                }
                i = close + 1;
            }
            _ => {
                let end = s[i..].find(['.', '[']).map_or(s.len(), |e| e + i);
                if end == i {
                    return Err(bad());
                }
                steps.push(JsonStep::Key(s[i..end].to_owned()));
                i = end;
            }
        }
    }
    if steps.is_empty() {
        return Err(bad());
    }
    Ok(JsonPath(steps))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(f: impl Fn(&mut Labels)) -> Labels {
        let mut l = Labels::new();
        f(&mut l);
        l
    }

    /// Loki's documented examples (docs/sources/query/log_queries).
    #[test]
    fn pattern_regexp_and_json_fields() {
        let nginx = r#"0.191.12.2 - - [10/Jun/2021:09:14:29 +0000] "GET /api/plugins/versioncheck HTTP/1.1" 200 2 "-" "Go-http-client/2.0" "13.76.247.102, 34.120.177.193" "TLSv1.2" "US" """#;
        let p =
            parse_pattern(r#"<ip> - - <_> "<method> <uri> <_>" <status> <size> <_> "<agent>" <_>"#)
                .unwrap();
        let l = run(|l| pattern(nginx, &p, &[], l));
        assert_eq!(l["ip"], "0.191.12.2");
        assert_eq!(l["method"], "GET");
        assert_eq!(l["uri"], "/api/plugins/versioncheck");
        assert_eq!(l["status"], "200");
        assert_eq!(l["size"], "2");
        assert_eq!(l["agent"], "Go-http-client/2.0");
        assert_eq!(l.len(), 6);
        let p = parse_pattern(r#"<_> msg="<method> <path> (<status>) <latency>""#).unwrap();
        let l = run(|l| {
            pattern(
                r#"level=debug ts=2021-06-10T09:24:13.472094048Z caller=logging.go:66 traceID=0568b66ad2d9294c msg="POST /loki/api/v1/push (204) 16.652862ms""#,
                &p,
                &[],
                l,
            )
        });
        assert_eq!(
            (&*l["method"], &*l["path"], &*l["status"], &*l["latency"]),
            ("POST", "/loki/api/v1/push", "204", "16.652862ms")
        );
        for bad in ["<a><b>", "no captures", "<_> x", "<a> <a>"] {
            assert!(parse_pattern(bad).is_err(), "{bad}");
        }
        // The pattern line filter's examples (Loki's matcher tests).
        let test = |p: &str, line: &str| parse_pattern_filter(p).unwrap().test(line);
        assert!(!test("<_> bar", "foo bar baz"));
        assert!(test("<_> baz", "foo bar baz"));
        assert!(test("foo <_>", "foo bar baz"));
        assert!(!test("<_> bar <_>", " bar "));
        assert!(test("<_>bar<_>", " bar "));
        let re = regex::Regex::new(
            r"(?P<method>\w+) (?P<path>[\w|/]+) \((?P<status>\d+?)\) (?P<duration>.*)",
        )
        .unwrap();
        let l = run(|l| regexp("POST /api/prom/api/v1/query_range (200) 1.5s", &re, &[], l));
        assert_eq!(l["path"], "/api/prom/api/v1/query_range");
        assert_eq!(l["duration"], "1.5s");
        let doc = r#"{"servers":["129.0.1.1","10.2.1.3"],"request":{"headers":{"User-Agent":"curl/7.68.0"}}}"#;
        let fields = vec![
            (
                "first_server".to_owned(),
                parse_json_path("servers[0]").unwrap(),
            ),
            (
                "ua".to_owned(),
                parse_json_path(r#"request.headers["User-Agent"]"#).unwrap(),
            ),
            (
                "server_list".to_owned(),
                parse_json_path("servers").unwrap(),
            ),
        ];
        let l = run(|l| json(doc, &fields, &[], l));
        assert_eq!(l["first_server"], "129.0.1.1");
        assert_eq!(l["ua"], "curl/7.68.0");
        assert_eq!(l["server_list"], r#"["129.0.1.1","10.2.1.3"]"#);
    }

    #[test]
    fn logfmt_modes() {
        let line = r#"at=info method=GET path=/ host=grafana.net fwd="124.133.124.161" service=8ms status=200 flag"#;
        let l = run(|l| logfmt(line, &LogfmtParams::default(), &[], l));
        assert_eq!(l["fwd"], "124.133.124.161");
        assert!(!l.contains_key("flag"));
        let keep = LogfmtParams {
            keep_empty: true,
            ..Default::default()
        };
        assert_eq!(run(|l| logfmt(line, &keep, &[], l))["flag"], "");
        let some = LogfmtParams {
            fields: vec![
                ("host".into(), "host".into()),
                ("fwd_ip".into(), "fwd".into()),
            ],
            ..Default::default()
        };
        let l = run(|l| logfmt(line, &some, &[], l));
        assert_eq!(l.len(), 2);
        assert_eq!(l["fwd_ip"], "124.133.124.161");
        let strict = LogfmtParams {
            strict: true,
            ..Default::default()
        };
        let l = run(|l| logfmt("a=1 =value b=2", &strict, &[], l));
        assert_eq!(l[ERROR_LABEL], "LogfmtParserErr");
        let l = run(|l| logfmt("a=1 foo=bar=buzz b=2", &LogfmtParams::default(), &[], l));
        assert_eq!(
            (
                l.get("a").map(String::as_str),
                l.get("b").map(String::as_str)
            ),
            (Some("1"), Some("2"))
        );
        assert!(!l.contains_key("foo"));
        let l = run(|l| {
            let line = unpack(
                r#"{"container":"myapp","pod":"pod-3223f","_entry":"original log message"}"#,
                &[],
                l,
            );
            assert_eq!(line.as_deref(), Some("original log message"));
        });
        assert_eq!(l["pod"], "pod-3223f");
    }
}
