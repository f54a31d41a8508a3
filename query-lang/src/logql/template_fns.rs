//! The functions LogQL templates call (Loki's set: Go's built-ins, the
//! Sprig functions Loki registers, its date and label helpers) and the
//! values they pass around. Conversions follow Sprig's `cast`: a string
//! that is not a number is 0.

use chrono::{DateTime, TimeZone, Utc};

use super::go_time::{go_format, go_parse};
use super::labels::Labels;

/// What a template sees of one entry.
pub struct Context<'a> {
    pub labels: &'a Labels,
    pub line: &'a str,
    pub timestamp_ns: i64,
}

/// A template value.
#[derive(Debug, Clone, PartialEq)]
pub enum V {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Time(DateTime<Utc>),
    /// A missing label or `nil`.
    Nil,
}

impl V {
    /// As Go's `fmt.Sprint` prints it.
    pub fn render(&self) -> String {
        match self {
            Self::Str(s) => s.clone(),
            Self::Int(i) => i.to_string(),
            Self::Float(f) => float(*f),
            Self::Bool(b) => b.to_string(),
            Self::Time(t) => go_format(t, "2006-01-02 15:04:05.999999999 -0700 MST"),
            Self::Nil => "<no value>".into(),
        }
    }

    /// Go's truth: false, 0, "" and nil are false.
    pub fn truthy(&self) -> bool {
        match self {
            Self::Str(s) => !s.is_empty(),
            Self::Int(i) => *i != 0,
            Self::Float(f) => *f != 0.0,
            Self::Bool(b) => *b,
            Self::Time(_) => true,
            Self::Nil => false,
        }
    }

    fn string(&self) -> String {
        match self {
            Self::Nil => String::new(),
            other => other.render(),
        }
    }

    fn f64(&self) -> f64 {
        match self {
            Self::Str(s) => s.trim().parse().unwrap_or(0.0),
            Self::Int(i) => *i as f64,
            Self::Float(f) => *f,
            Self::Bool(b) => f64::from(u8::from(*b)),
            Self::Time(t) => t.timestamp() as f64,
            Self::Nil => 0.0,
        }
    }

    fn i64(&self) -> i64 {
        match self {
            Self::Str(s) => s.trim().parse().unwrap_or(0),
            Self::Int(i) => *i,
            Self::Float(f) => *f as i64,
            Self::Bool(b) => i64::from(*b),
            Self::Time(t) => t.timestamp(),
            Self::Nil => 0,
        }
    }

    fn is_number(&self) -> bool {
        matches!(self, Self::Int(_) | Self::Float(_))
    }
}

/// Go's `%v` of a float64: shortest digits, no trailing `.0`.
fn float(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else if f != 0.0 && (f.abs() >= 1e21 || f.abs() < 1e-4) {
        let s = format!("{f:e}");
        // Go writes e+21 / e-05.
        match s.split_once('e') {
            Some((m, e)) => {
                let (sign, digits) = e.strip_prefix('-').map_or(("+", e), |d| ("-", d));
                format!("{m}e{sign}{digits:0>2}")
            }
            None => s,
        }
    } else {
        format!("{f}")
    }
}

/// The longest text a template function returns.
const MAX_OUTPUT: usize = 1 << 20;

/// Refuses a result of `base` bytes plus `n` insertions of `each` bytes
/// past [`MAX_OUTPUT`], before it is built.
fn bounded(name: &str, base: usize, n: usize, each: usize) -> Result<(), String> {
    if base.saturating_add(n.saturating_mul(each)) > MAX_OUTPUT {
        return Err(format!("{name}: result longer than 1 MiB"));
    }
    Ok(())
}

const FUNCTIONS: &[&str] = &[
    "__line__",
    "__timestamp__",
    "now",
    "date",
    "toDate",
    "toDateInZone",
    "unixEpoch",
    "unixEpochMillis",
    "unixEpochNanos",
    "unixToTime",
    "duration",
    "duration_seconds",
    "bytes",
    "lower",
    "upper",
    "title",
    "trim",
    "trimAll",
    "trimPrefix",
    "trimSuffix",
    "trunc",
    "substr",
    "replace",
    "repeat",
    "default",
    "contains",
    "hasPrefix",
    "hasSuffix",
    "alignLeft",
    "alignRight",
    "indent",
    "nindent",
    "b64enc",
    "b64dec",
    "urlencode",
    "urldecode",
    "printf",
    "print",
    "count",
    "regexReplaceAll",
    "regexReplaceAllLiteral",
    "add",
    "sub",
    "mul",
    "div",
    "mod",
    "addf",
    "subf",
    "mulf",
    "divf",
    "ceil",
    "floor",
    "round",
    "max",
    "min",
    "maxf",
    "minf",
    "float64",
    "int",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "and",
    "or",
    "not",
    "len",
    "ToLower",
    "ToUpper",
    "Replace",
    "Trim",
    "TrimLeft",
    "TrimRight",
    "TrimPrefix",
    "TrimSuffix",
    "TrimSpace",
];

pub fn is_function(name: &str) -> bool {
    FUNCTIONS.contains(&name)
}

/// Calls `name` with `args` (a piped value already appended last).
pub fn call(name: &str, args: Vec<V>, ctx: &Context<'_>) -> Result<V, String> {
    let n = args.len();
    let want = |k: usize| -> Result<(), String> {
        if n == k {
            Ok(())
        } else {
            Err(format!("wrong number of args for {name}: want {k} got {n}"))
        }
    };
    let at_least = |k: usize| -> Result<(), String> {
        if n >= k {
            Ok(())
        } else {
            Err(format!(
                "wrong number of args for {name}: want at least {k} got {n}"
            ))
        }
    };
    let s = |i: usize| args[i].string();
    let str_fn = |f: &dyn Fn(&str) -> String| -> Result<V, String> {
        want(1)?;
        Ok(V::Str(f(&args[0].string())))
    };
    Ok(match name {
        "__line__" => {
            want(0)?;
            V::Str(ctx.line.to_owned())
        }
        "__timestamp__" => {
            want(0)?;
            V::Time(Utc.timestamp_nanos(ctx.timestamp_ns))
        }
        "now" => {
            want(0)?;
            V::Time(Utc::now())
        }
        "date" => {
            want(2)?;
            V::Str(go_format(&time_of(&args[1]), &s(0)))
        }
        "toDate" => {
            want(2)?;
            V::Time(go_parse(&s(0), &s(1))?)
        }
        "toDateInZone" => {
            want(3)?;
            if !matches!(s(1).as_str(), "UTC" | "Local" | "") {
                return Err(format!(
                    "unknown time zone {:?} (Strata knows UTC and Local, which is UTC)",
                    s(1)
                ));
            }
            V::Time(go_parse(&s(0), &s(2))?)
        }
        "unixEpoch" => {
            want(1)?;
            V::Str(time_of(&args[0]).timestamp().to_string())
        }
        "unixEpochMillis" => {
            want(1)?;
            V::Str(time_of(&args[0]).timestamp_millis().to_string())
        }
        "unixEpochNanos" => {
            want(1)?;
            let t = time_of(&args[0]);
            V::Str(
                t.timestamp_nanos_opt()
                    .ok_or_else(|| "time out of range for nanoseconds".to_owned())?
                    .to_string(),
            )
        }
        "unixToTime" => {
            want(1)?;
            V::Time(unix_to_time(&s(0))?)
        }
        "duration" | "duration_seconds" => {
            want(1)?;
            V::Float(super::units::parse_go_duration(s(0).trim()).unwrap_or(0.0))
        }
        "bytes" => {
            want(1)?;
            V::Float(super::units::parse_humanized_bytes(s(0).trim()).unwrap_or(0.0))
        }
        "lower" | "ToLower" => str_fn(&|x| x.to_lowercase())?,
        "upper" | "ToUpper" => str_fn(&|x| x.to_uppercase())?,
        "trim" | "TrimSpace" => str_fn(&|x| x.trim().to_owned())?,
        "title" => str_fn(&title)?,
        "b64enc" => str_fn(&|x| b64_encode(x.as_bytes()))?,
        "urlencode" => str_fn(&url_encode)?,
        "b64dec" => {
            want(1)?;
            let bytes = b64_decode(&s(0)).ok_or_else(|| "illegal base64 data".to_owned())?;
            V::Str(String::from_utf8_lossy(&bytes).into_owned())
        }
        "urldecode" => {
            want(1)?;
            V::Str(url_decode(&s(0)).ok_or_else(|| "invalid URL escape".to_owned())?)
        }
        "trimAll" => {
            want(2)?;
            let cut = s(0);
            V::Str(s(1).trim_matches(|c| cut.contains(c)).to_owned())
        }
        "trimPrefix" => {
            want(2)?;
            let (p, v) = (s(0), s(1));
            V::Str(v.strip_prefix(p.as_str()).unwrap_or(&v).to_owned())
        }
        "trimSuffix" => {
            want(2)?;
            let (p, v) = (s(0), s(1));
            V::Str(v.strip_suffix(p.as_str()).unwrap_or(&v).to_owned())
        }
        "TrimPrefix" => {
            want(2)?;
            let (v, p) = (s(0), s(1));
            V::Str(v.strip_prefix(p.as_str()).unwrap_or(&v).to_owned())
        }
        "TrimSuffix" => {
            want(2)?;
            let (v, p) = (s(0), s(1));
            V::Str(v.strip_suffix(p.as_str()).unwrap_or(&v).to_owned())
        }
        "Trim" | "TrimLeft" | "TrimRight" => {
            want(2)?;
            let (v, cut) = (s(0), s(1));
            let hit = |c: char| cut.contains(c);
            V::Str(
                match name {
                    "Trim" => v.trim_matches(hit),
                    "TrimLeft" => v.trim_start_matches(hit),
                    _ => v.trim_end_matches(hit),
                }
                .to_owned(),
            )
        }
        "trunc" => {
            want(2)?;
            let c = args[0].i64();
            let chars: Vec<char> = s(1).chars().collect();
            let len = chars.len() as i64;
            V::Str(if c < 0 && len + c > 0 {
                chars[(len + c) as usize..].iter().collect()
            } else if c >= 0 && len > c {
                chars[..c as usize].iter().collect()
            } else {
                chars.iter().collect()
            })
        }
        "substr" => {
            want(3)?;
            let (start, end) = (args[0].i64(), args[1].i64());
            let chars: Vec<char> = s(2).chars().collect();
            let len = chars.len() as i64;
            let slice = |a: i64, b: i64| -> Result<String, String> {
                if a < 0 || b > len || a > b {
                    return Err(format!("substr: slice bounds out of range [{a}:{b}]"));
                }
                Ok(chars[a as usize..b as usize].iter().collect())
            };
            V::Str(if start < 0 {
                slice(0, end)?
            } else if end < 0 || end > len {
                slice(start, len)?
            } else {
                slice(start, end)?
            })
        }
        "replace" => {
            want(3)?;
            let (old, new, v) = (s(0), s(1), s(2));
            bounded(name, v.len(), v.matches(old.as_str()).count(), new.len())?;
            V::Str(v.replace(&old, &new))
        }
        "Replace" => {
            want(4)?;
            let k = args[3].i64();
            let (v, old, new) = (s(0), s(1), s(2));
            let n = v.matches(old.as_str()).count();
            let n = if k < 0 { n } else { n.min(k as usize) };
            bounded(name, v.len(), n, new.len())?;
            V::Str(if k < 0 {
                v.replace(&old, &new)
            } else {
                v.replacen(&old, &new, k as usize)
            })
        }
        "repeat" => {
            want(2)?;
            let k = usize::try_from(args[0].i64()).unwrap_or(0);
            let v = s(1);
            bounded(name, 0, k, v.len())?;
            V::Str(v.repeat(k))
        }
        "default" => {
            at_least(1)?;
            match args.get(1) {
                Some(v) if v.truthy() => v.clone(),
                _ => args[0].clone(),
            }
        }
        "contains" => {
            want(2)?;
            V::Bool(s(1).contains(&s(0)))
        }
        "hasPrefix" => {
            want(2)?;
            V::Bool(s(1).starts_with(&s(0)))
        }
        "hasSuffix" => {
            want(2)?;
            V::Bool(s(1).ends_with(&s(0)))
        }
        "alignLeft" | "alignRight" => {
            want(2)?;
            let k = usize::try_from(args[0].i64()).unwrap_or(0).min(1 << 20);
            let chars: Vec<char> = s(1).chars().collect();
            V::Str(if chars.len() >= k {
                if name == "alignLeft" {
                    chars[..k].iter().collect()
                } else {
                    chars[chars.len() - k..].iter().collect()
                }
            } else {
                let pad = " ".repeat(k - chars.len());
                let v: String = chars.iter().collect();
                if name == "alignLeft" {
                    v + &pad
                } else {
                    pad + &v
                }
            })
        }
        "indent" | "nindent" => {
            want(2)?;
            let pad = " ".repeat(usize::try_from(args[0].i64()).unwrap_or(0).min(1024));
            let v = s(1);
            bounded(name, v.len(), v.matches('\n').count() + 2, pad.len())?;
            let body = format!("{pad}{}", s(1).replace('\n', &format!("\n{pad}")));
            V::Str(if name == "nindent" {
                format!("\n{body}")
            } else {
                body
            })
        }
        "printf" => {
            at_least(1)?;
            V::Str(printf(&s(0), &args[1..]))
        }
        "print" => V::Str(args.iter().map(V::string).collect::<Vec<_>>().join("")),
        "count" => {
            want(2)?;
            let re = regex::Regex::new(&s(0)).map_err(|e| e.to_string())?;
            V::Int(re.find_iter(&s(1)).count() as i64)
        }
        "regexReplaceAll" | "regexReplaceAllLiteral" => {
            want(3)?;
            let re = regex::Regex::new(&s(0)).map_err(|e| e.to_string())?;
            let (src, rep) = (s(1), s(2));
            // An expanded `$1` is at most the source long.
            let each = if name == "regexReplaceAll" {
                rep.len() + src.len()
            } else {
                rep.len()
            };
            bounded(name, src.len(), re.find_iter(&src).count(), each)?;
            V::Str(if name == "regexReplaceAll" {
                re.replace_all(&src, rep.as_str()).into_owned()
            } else {
                re.replace_all(&src, regex::NoExpand(&rep)).into_owned()
            })
        }
        "add" => V::Int(args.iter().fold(0i64, |a, v| a.wrapping_add(v.i64()))),
        "mul" => V::Int(args.iter().fold(1i64, |a, v| a.wrapping_mul(v.i64()))),
        "sub" | "div" | "mod" => {
            want(2)?;
            let (a, b) = (args[0].i64(), args[1].i64());
            V::Int(match name {
                "sub" => a.wrapping_sub(b),
                _ if b == 0 => return Err("integer divide by zero".into()),
                "div" => a.wrapping_div(b),
                _ => a.wrapping_rem(b),
            })
        }
        "addf" => V::Float(args.iter().map(V::f64).sum()),
        "mulf" => V::Float(args.iter().map(V::f64).product()),
        "subf" | "divf" => {
            at_least(1)?;
            let first = args[0].f64();
            V::Float(
                args[1..]
                    .iter()
                    .map(V::f64)
                    .fold(first, |a, b| if name == "subf" { a - b } else { a / b }),
            )
        }
        "ceil" => {
            want(1)?;
            V::Float(args[0].f64().ceil())
        }
        "floor" => {
            want(1)?;
            V::Float(args[0].f64().floor())
        }
        "round" => {
            at_least(2)?;
            let on = args.get(2).map_or(0.5, V::f64);
            let pow = 10f64.powf(args[1].f64());
            let digit = pow * args[0].f64();
            let frac = digit.fract();
            V::Float(
                if frac >= on {
                    digit.ceil()
                } else {
                    digit.floor()
                } / pow,
            )
        }
        "max" | "min" => {
            at_least(1)?;
            let it = args.iter().map(V::i64);
            V::Int(if name == "max" { it.max() } else { it.min() }.unwrap_or(0))
        }
        "maxf" | "minf" => {
            at_least(1)?;
            let it = args.iter().map(V::f64);
            V::Float(if name == "maxf" {
                it.fold(f64::NEG_INFINITY, f64::max)
            } else {
                it.fold(f64::INFINITY, f64::min)
            })
        }
        "float64" => {
            want(1)?;
            V::Float(args[0].f64())
        }
        "int" => {
            want(1)?;
            V::Int(args[0].i64())
        }
        "eq" => {
            at_least(2)?;
            V::Bool(
                args[1..]
                    .iter()
                    .any(|b| compare(&args[0], b) == Some(std::cmp::Ordering::Equal)),
            )
        }
        "ne" | "lt" | "le" | "gt" | "ge" => {
            want(2)?;
            let o = compare(&args[0], &args[1])
                .ok_or_else(|| format!("{name}: incompatible values"))?;
            V::Bool(match name {
                "ne" => o.is_ne(),
                "lt" => o.is_lt(),
                "le" => o.is_le(),
                "gt" => o.is_gt(),
                _ => o.is_ge(),
            })
        }
        "and" => {
            at_least(1)?;
            args.iter()
                .find(|v| !v.truthy())
                .unwrap_or(&args[n - 1])
                .clone()
        }
        "or" => {
            at_least(1)?;
            args.iter()
                .find(|v| v.truthy())
                .unwrap_or(&args[n - 1])
                .clone()
        }
        "not" => {
            want(1)?;
            V::Bool(!args[0].truthy())
        }
        "len" => {
            want(1)?;
            V::Int(s(0).len() as i64)
        }
        other => return Err(format!("function {other:?} not defined")),
    })
}

fn compare(a: &V, b: &V) -> Option<std::cmp::Ordering> {
    if a.is_number() && b.is_number() {
        a.f64().partial_cmp(&b.f64())
    } else {
        Some(a.string().cmp(&b.string()))
    }
}

fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut start = true;
    for c in s.chars() {
        if start && c.is_alphabetic() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = c.is_whitespace() || c.is_ascii_punctuation() && c != '\'';
    }
    out
}

fn time_of(v: &V) -> DateTime<Utc> {
    match v {
        V::Time(t) => *t,
        other => Utc
            .timestamp_opt(other.i64(), 0)
            .single()
            .unwrap_or_default(),
    }
}

fn unix_to_time(epoch: &str) -> Result<DateTime<Utc>, String> {
    let n: i64 = epoch
        .parse()
        .map_err(|_| format!("unable to parse {epoch:?} as an epoch"))?;
    let t = match epoch.len() {
        5 => Utc.timestamp_opt(n * 86_400, 0).single(),
        10 => Utc.timestamp_opt(n, 0).single(),
        13 => Utc.timestamp_millis_opt(n).single(),
        16 => Utc
            .timestamp_opt(n / 1_000_000, (n % 1_000_000 * 1000) as u32)
            .single(),
        19 => Some(Utc.timestamp_nanos(n)),
        len => return Err(format!("cannot convert {epoch} of length {len} to a time")),
    };
    t.ok_or_else(|| format!("{epoch} is out of range"))
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn b64_encode(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len().div_ceil(3) * 4);
    for chunk in b.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |a, (i, x)| a | u32::from(*x) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn b64_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = B64.iter().position(|x| *x == c)? as u32;
        acc = acc << 6 | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits & 0xff) as u8);
        }
    }
    Some(out)
}

/// Go's `url.QueryEscape`.
fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char);
            }
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Go's `url.QueryUnescape`.
fn url_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// The widest padding or precision `printf` writes.
const MAX_PAD: usize = 4096;

/// Go's `fmt.Sprintf` for the verbs templates use: `%s %v %d %f %e %g %q
/// %x %t %%` with flags `-+0 `, width and precision.
fn printf(format: &str, args: &[V]) -> String {
    let mut out = String::new();
    let mut it = format.chars().peekable();
    let mut next = 0usize;
    while let Some(c) = it.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let (mut left, mut zero, mut plus, mut space) = (false, false, false, false);
        while let Some(&f) = it.peek() {
            match f {
                '-' => left = true,
                '0' => zero = true,
                '+' => plus = true,
                ' ' => space = true,
                _ => break,
            }
            it.next();
        }
        let mut width = String::new();
        while let Some(&d) = it.peek().filter(|d| d.is_ascii_digit()) {
            width.push(d);
            it.next();
        }
        let mut prec: Option<usize> = None;
        if it.peek() == Some(&'.') {
            it.next();
            let mut p = String::new();
            while let Some(&d) = it.peek().filter(|d| d.is_ascii_digit()) {
                p.push(d);
                it.next();
            }
            // Bounded: a query's text must not size an allocation.
            prec = Some(p.parse::<usize>().unwrap_or(0).min(MAX_PAD));
        }
        let Some(verb) = it.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(next) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        next += 1;
        let sign = |s: String, neg: bool| {
            if neg {
                s
            } else if plus {
                format!("+{s}")
            } else if space {
                format!(" {s}")
            } else {
                s
            }
        };
        let body = match verb {
            's' | 'v' => {
                let s = arg.string();
                match prec {
                    Some(p) => s.chars().take(p).collect(),
                    None => s,
                }
            }
            'q' => format!("{:?}", arg.string()),
            't' => arg.truthy().to_string(),
            'd' => {
                let n = arg.i64();
                sign(n.to_string(), n < 0)
            }
            'x' => match arg {
                V::Str(s) => s.bytes().map(|b| format!("{b:02x}")).collect(),
                other => format!("{:x}", other.i64()),
            },
            'f' | 'F' => {
                let f = arg.f64();
                sign(format!("{:.*}", prec.unwrap_or(6), f), f < 0.0)
            }
            'e' => {
                let f = arg.f64();
                let s = format!("{:.*e}", prec.unwrap_or(6), f);
                let s = match s.split_once('e') {
                    Some((m, e)) => {
                        let (sg, d) = e.strip_prefix('-').map_or(("+", e), |d| ("-", d));
                        format!("{m}e{sg}{d:0>2}")
                    }
                    None => s,
                };
                sign(s, f < 0.0)
            }
            'g' => {
                let f = arg.f64();
                sign(float(f), f < 0.0)
            }
            other => format!("%!{other}({})", arg.string()),
        };
        let w: usize = width.parse::<usize>().unwrap_or(0).min(MAX_PAD);
        let len = body.chars().count();
        if len >= w {
            out.push_str(&body);
        } else if left {
            out.push_str(&body);
            out.push_str(&" ".repeat(w - len));
        } else if zero && matches!(verb, 'd' | 'f' | 'F' | 'e' | 'g') {
            let (sg, digits) = match body.strip_prefix(['-', '+']) {
                Some(d) => (&body[..1], d),
                None => ("", body.as_str()),
            };
            out.push_str(sg);
            out.push_str(&"0".repeat(w - len));
            out.push_str(digits);
        } else {
            out.push_str(&" ".repeat(w - len));
            out.push_str(&body);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printf_and_base64() {
        // Results are bounded before they are built.
        let ctx_labels = Labels::new();
        let ctx = Context {
            labels: &ctx_labels,
            line: "",
            timestamp_ns: 0,
        };
        let big = V::Str("x".repeat(200_000));
        let e = call(
            "replace",
            vec![V::Str(String::new()), V::Str("y".repeat(100)), big.clone()],
            &ctx,
        );
        assert!(e.unwrap_err().contains("longer than 1 MiB"));
        let e = call(
            "regexReplaceAll",
            vec![V::Str("x".into()), big.clone(), V::Str("${0}${0}".into())],
            &ctx,
        );
        assert!(e.is_err());
        assert!(call("repeat", vec![V::Int(1 << 30), V::Str("ab".into())], &ctx).is_err());
        // Widths and precisions from the query are bounded.
        assert_eq!(printf("%999999999d", &[V::Int(1)]).len(), MAX_PAD);
        assert!(printf("%.999999999f", &[V::Float(1.0)]).len() <= MAX_PAD + 2);
        assert_eq!(
            printf(
                "%5d|%-4s|%.2f|%05.1f|%q|%%",
                &[
                    V::Int(42),
                    V::Str("ab".into()),
                    V::Float(1.005),
                    V::Float(-2.25),
                    V::Str("x".into())
                ]
            ),
            "   42|ab  |1.00|-02.2|\"x\"|%"
        );
        for s in ["", "a", "ab", "abc", "abcd"] {
            assert_eq!(b64_decode(&b64_encode(s.as_bytes())).unwrap(), s.as_bytes());
        }
        assert_eq!(float(1e21), "1e+21");
        assert_eq!(float(0.5), "0.5");
    }
}
