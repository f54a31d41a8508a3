//! The functions templates call: Prometheus' (`humanize` and friends,
//! `reReplaceAll`, `stripPort`…) and Go's built-ins (`printf`, `eq`,
//! `index`…), each printing as Go prints.

use std::fmt::Write as _;

use super::super::gofmt::{format_e, format_f, format_g};
use super::{TemplateData, TemplateError, Val, err};

pub(super) fn call(data: &TemplateData, f: &str, a: Vec<Val>) -> Result<Val, TemplateError> {
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
        "query" => {
            let q = one(&a)?.string(f)?;
            match data.queries.get(&q) {
                Some(Ok(samples)) => Val::Samples(samples.clone()),
                Some(Err(e)) => return err(format!("error executing query: {e}")),
                None => {
                    return err(format!(
                        "query {q:?}: only queries written as literal strings run in templates"
                    ));
                }
            }
        }
        "first" => match one(&a)? {
            Val::Samples(v) => match v.into_iter().next() {
                Some(s) => Val::Sample(s),
                None => return err("first() called on vector with no elements"),
            },
            other => {
                return err(format!(
                    "first: expected query results, got {}",
                    other.go_type()
                ));
            }
        },
        "label" => match two(&a)? {
            (name, Val::Sample(s)) => {
                Val::Str(s.labels.get(&name.string(f)?).cloned().unwrap_or_default())
            }
            (_, other) => return err(format!("label: expected a sample, got {}", other.go_type())),
        },
        "value" => match one(&a)? {
            Val::Sample(s) => Val::Num(s.value),
            other => return err(format!("value: expected a sample, got {}", other.go_type())),
        },
        "strvalue" => match one(&a)? {
            Val::Sample(s) => Val::Str(s.labels.get("__value__").cloned().unwrap_or_default()),
            other => {
                return err(format!(
                    "strvalue: expected a sample, got {}",
                    other.go_type()
                ));
            }
        },
        "sortByLabel" => match two(&a)? {
            (name, Val::Samples(mut v)) => {
                let name = name.string(f)?;
                v.sort_by(|x, y| x.labels.get(&name).cmp(&y.labels.get(&name)));
                Val::Samples(v)
            }
            (_, other) => {
                return err(format!(
                    "sortByLabel: expected query results, got {}",
                    other.go_type()
                ));
            }
        },
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
        "externalURL" => Val::Str(data.external_url.clone()),
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
        "println" => Val::Str(a.iter().map(Val::text).collect::<Vec<_>>().join(" ") + "\n"),
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
    if let Some(rest) = s.strip_prefix('[')
        && let Some((host, _)) = rest.split_once(']')
    {
        return host.to_string();
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

/// Go's bound on a verb's width and precision.
const MAX_WIDTH: usize = 1_000_000;

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
        // Go stops reading a width or precision past 1e6.
        let mut width = None;
        while let Some(d) = c.get(i).and_then(|x| x.to_digit(10)) {
            width = Some((width.unwrap_or(0) * 10 + d as usize).min(MAX_WIDTH + 1));
            i += 1;
        }
        let mut prec = None;
        if c.get(i) == Some(&'.') {
            i += 1;
            let mut p = 0usize;
            while let Some(d) = c.get(i).and_then(|x| x.to_digit(10)) {
                p = (p * 10 + d as usize).min(MAX_WIDTH + 1);
                i += 1;
            }
            prec = Some(p);
        }
        if width.is_some_and(|w| w > MAX_WIDTH) || prec.is_some_and(|p| p > MAX_WIDTH) {
            // Go's parsenum gives up on such a number and the rest of the
            // format with it.
            out.push_str("%!(NOVERB)");
            break;
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
