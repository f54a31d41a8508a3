//! The literal units LogQL reads: Prometheus durations (`[5m]`, label
//! filters), Loki's byte sizes, Go durations and go-humanize sizes
//! (`unwrap duration(…)` / `bytes(…)`, templates).

use std::time::Duration;

/// `1h30m`, `5m`, `500ms`, `2d`, `1w` (Prometheus' duration syntax).
pub fn parse_duration(s: &str) -> Option<Duration> {
    let mut total = Duration::ZERO;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit() && c != '.')?;
        if digits == 0 {
            return None;
        }
        let n: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let secs = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            "w" => 604_800.0,
            "y" => 31_536_000.0,
            _ => return None,
        };
        // Checked: `99999999999999999999y` is text a user can send.
        total = total.checked_add(Duration::try_from_secs_f64(n * secs).ok()?)?;
        rest = &rest[unit_len..];
    }
    Some(total)
}

/// `10MB`, `1KiB`, `512B` (Loki's humanized bytes).
pub fn parse_bytes(s: &str) -> Option<f64> {
    let split = s.find(|c: char| c.is_ascii_alphabetic())?;
    let n: f64 = s[..split].parse().ok()?;
    let mult = match s[split..].to_ascii_lowercase().as_str() {
        "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024f64.powi(4),
        _ => return None,
    };
    Some(n * mult)
}

/// Go's `time.ParseDuration`, in seconds: `1h30m`, `-1.5s`, `300ms`, `0`.
pub fn parse_go_duration(s: &str) -> Option<f64> {
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Some(0.0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total = 0.0;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit() && c != '.')?;
        if digits == 0 {
            return None;
        }
        let n: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let secs = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += n * secs;
        rest = &rest[unit_len..];
    }
    Some(if neg { -total } else { total })
}

/// go-humanize's `ParseBytes`: `42MB`, `42 MB`, `1.5KiB`, `3k`, `1G`, `512`.
pub fn parse_humanized_bytes(s: &str) -> Option<f64> {
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.' && c != ',')
        .unwrap_or(s.len());
    let n: f64 = s[..split].replace(',', "").parse().ok()?;
    let unit = s[split..].trim().to_ascii_lowercase();
    let k = 1000f64;
    let ki = 1024f64;
    let mult = match unit.as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => k,
        "ki" | "kib" => ki,
        "m" | "mb" => k.powi(2),
        "mi" | "mib" => ki.powi(2),
        "g" | "gb" => k.powi(3),
        "gi" | "gib" => ki.powi(3),
        "t" | "tb" => k.powi(4),
        "ti" | "tib" => ki.powi(4),
        "p" | "pb" => k.powi(5),
        "pi" | "pib" => ki.powi(5),
        "e" | "eb" => k.powi(6),
        "ei" | "eib" => ki.powi(6),
        _ => return None,
    };
    Some(n * mult)
}
