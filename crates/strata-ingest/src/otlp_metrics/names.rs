//! OTLP names as Prometheus names: metric names with their unit and type
//! suffixes, attribute keys as label names, under each of Prometheus 3's
//! translation strategies (see the parent module's docs).

/// How OTLP metric and attribute names become Prometheus names:
/// Prometheus 3's `otlp.translation_strategy`, by the same names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum TranslationStrategy {
    /// Characters outside the legacy sets become `_`; unit and type
    /// suffixes added (`http.server.duration` in s →
    /// `http_server_duration_seconds`).
    #[default]
    UnderscoreEscapingWithSuffixes,
    /// Characters outside the legacy sets become `_`; no suffixes.
    UnderscoreEscapingWithoutSuffixes,
    /// Names kept as UTF-8 text; unit and type suffixes added
    /// (`http.server.duration_seconds`).
    NoUTF8EscapingWithSuffixes,
    /// Names kept as they are sent.
    NoTranslation,
}

impl TranslationStrategy {
    /// Whether names keep their UTF-8 text.
    pub fn utf8(self) -> bool {
        matches!(self, Self::NoUTF8EscapingWithSuffixes | Self::NoTranslation)
    }
}

/// An attribute key as a label name: characters outside `[a-zA-Z0-9_]`
/// become `_` (as for log metadata), but a leading digit gets `key_` in
/// front, as Prometheus' OTLP translation does, rather than `_`.
pub(super) fn label_name(key: &str) -> String {
    let name = crate::logs::sanitize_name(key);
    if key.starts_with(|c: char| c.is_ascii_digit()) {
        format!("key{name}")
    } else {
        name
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Gauge,
    Counter,
    Histogram,
    Summary,
}

/// The Prometheus name of an OTLP metric under `strategy`.
pub(super) fn metric_name(
    name: &str,
    unit: &str,
    kind: Kind,
    strategy: TranslationStrategy,
) -> String {
    match strategy {
        TranslationStrategy::UnderscoreEscapingWithSuffixes => escaped_name(name, unit, kind),
        TranslationStrategy::UnderscoreEscapingWithoutSuffixes => {
            let mut out = name
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == ':' || c == '_'))
                .filter(|t| !t.is_empty())
                .collect::<Vec<_>>()
                .join("_");
            if out.starts_with(|c: char| c.is_ascii_digit()) {
                out.insert(0, '_');
            }
            if out.is_empty() { "_".to_owned() } else { out }
        }
        TranslationStrategy::NoUTF8EscapingWithSuffixes => utf8_name(name, unit, kind),
        TranslationStrategy::NoTranslation => name.to_owned(),
    }
}

/// The name as sent, with the unit and type suffixes Prometheus' OTLP
/// translation adds when names keep their UTF-8 text: `_<unit>`,
/// `_per_<unit>`, `_total` for counters, `_ratio` for gauges of unit
/// `1`, each taken off first when the name already ends with it (and
/// the character before it), so it comes once and in that order.
fn utf8_name(name: &str, unit: &str, kind: Kind) -> String {
    fn trim<'a>(name: &'a str, suffix: &str) -> &'a str {
        match name.strip_suffix(suffix) {
            Some(rest) if rest.len() > 1 => {
                let mut chars = rest.chars();
                chars.next_back();
                chars.as_str()
            }
            _ => name,
        }
    }
    let ratio = unit == "1" && kind == Kind::Gauge;
    let counter = kind == Kind::Counter;
    let (main, per) = unit_suffixes(unit);
    let mut out = name;
    if ratio {
        out = trim(out, "ratio");
    }
    if counter {
        out = trim(out, "total");
    }
    if let Some(per) = &per {
        out = trim(out, per);
    }
    let mut out = out.to_owned();
    if let Some(main) = main.filter(|m| !out.ends_with(m.as_str())) {
        out = format!("{out}_{main}");
    }
    if let Some(per) = per {
        out = format!("{out}_{per}");
    }
    if counter {
        out.push_str("_total");
    }
    if ratio {
        out.push_str("_ratio");
    }
    out
}

/// A unit's main and `per_` suffixes as Prometheus' OTLP translation
/// builds them (`otlptranslator`'s `buildUnitSuffixes`): known units in
/// Prometheus' words, others as written; none for an empty unit, `1`, or
/// a part with `{…}` annotations.
fn unit_suffixes(unit: &str) -> (Option<String>, Option<String>) {
    let mut parts = unit.splitn(2, '/');
    let word = |u: &str, known: fn(&str) -> Option<&'static str>| {
        let u = u.trim();
        if u.is_empty() || u.contains(['{', '}']) {
            return None;
        }
        Some(known(u).map_or_else(|| u.to_owned(), str::to_owned)).filter(|w| !w.is_empty())
    };
    let main = parts.next().and_then(|m| word(m, unit_word));
    let per = parts
        .next()
        .and_then(|p| word(p, per_unit_word))
        .map(|p| format!("per_{p}"));
    (main, per)
}

/// A unit suffix in the legacy character set (`cleanUpUnit`): other
/// characters become `_`, a run of `_` one, none in front.
fn clean_unit(unit: &str) -> String {
    let mut out = String::with_capacity(unit.len());
    for c in unit.chars() {
        let c = if c.is_ascii_alphanumeric() || c == ':' {
            c
        } else {
            '_'
        };
        if !(c == '_' && out.ends_with('_')) {
            out.push(c);
        }
    }
    out.trim_start_matches('_').to_owned()
}

/// The Prometheus name of an OTLP metric with escaping and suffixes, as
/// `otlptranslator`'s `normalizeName` builds it: the name's runs of
/// `[a-zA-Z0-9:]` as tokens, the unit's suffixes added unless a token
/// already is one, `total` moved to the end of a counter's, `ratio` of a
/// gauge of unit `1`'s.
fn escaped_name(name: &str, unit: &str, kind: Kind) -> String {
    let mut tokens: Vec<String> = name
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == ':'))
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    let (main, per) = unit_suffixes(unit);
    let per = per
        .map(|p| clean_unit(&p))
        .filter(|p| p != "per_")
        .map(|p| p.strip_suffix('_').map_or_else(|| p.clone(), str::to_owned))
        .filter(|p| !tokens.contains(p));
    let main = main
        .map(|m| clean_unit(&m))
        .filter(|m| !m.is_empty() && !tokens.contains(m))
        .map(|m| match (&per, m.strip_suffix('_')) {
            (Some(_), Some(trimmed)) => trimmed.to_owned(),
            _ => m,
        });
    tokens.extend(main);
    tokens.extend(per);
    for (applies, word) in [
        (kind == Kind::Counter, "total"),
        (unit == "1" && kind == Kind::Gauge, "ratio"),
    ] {
        if applies {
            tokens.retain(|t| t != word);
            tokens.push(word.to_owned());
        }
    }
    let mut out = tokens.join("_");
    if out.is_empty() {
        out.push('_');
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// An OTLP unit as Prometheus' OTLP receiver puts it in metadata
/// (`otlptranslator`'s `UnitNamer`): `ms` → `milliseconds`, `By/s` →
/// `bytes_per_second`, other units as written (in the legacy character
/// set unless names keep their UTF-8 text), annotations and `1` left out.
pub(super) fn prom_unit(unit: &str, utf8: bool) -> String {
    let (main, per) = unit_suffixes(unit);
    let clean = |u: String| if utf8 { u } else { clean_unit(&u) };
    let words: Vec<String> = main.into_iter().chain(per).map(clean).collect();
    let joined = words.join("_");
    let joined = joined.strip_prefix('_').unwrap_or(&joined);
    joined.strip_suffix('_').unwrap_or(joined).to_owned()
}

/// Prometheus' words for UCUM units (otlptranslator's unit map).
fn unit_word(unit: &str) -> Option<&'static str> {
    Some(match unit {
        "d" => "days",
        "h" => "hours",
        "min" => "minutes",
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "By" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "GiBy" => "gibibytes",
        "TiBy" => "tibibytes",
        "KBy" => "kilobytes",
        "MBy" => "megabytes",
        "GBy" => "gigabytes",
        "TBy" => "terabytes",
        "m" => "meters",
        "V" => "volts",
        "A" => "amperes",
        "J" => "joules",
        "W" => "watts",
        "g" => "grams",
        "Cel" => "celsius",
        "Hz" => "hertz",
        "%" => "percent",
        "1" => "",
        _ => return None,
    })
}

fn per_unit_word(unit: &str) -> Option<&'static str> {
    Some(match unit {
        "s" => "second",
        "m" => "minute",
        "h" => "hour",
        "d" => "day",
        "w" => "week",
        "mo" => "month",
        "y" => "year",
        _ => return None,
    })
}
