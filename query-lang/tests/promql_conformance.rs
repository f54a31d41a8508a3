//! Runs Prometheus' PromQL acceptance tests (`tests/promql/testdata`,
//! copied from prometheus/prometheus, Apache-2.0) against the engine.
//!
//! Every eval is run; those that need features outside stable float PromQL
//! (native histograms, experimental functions, duration expressions,
//! extended range selectors, fill modifiers, type/unit labels, start
//! timestamps — the `tags` column of `eval-index.tsv`) are reported as
//! skipped when they fail rather than as failures. Annotation expectations
//! (`expect warn|info|no_warn|no_info`) are not checked; result values,
//! labels, order (`expect ordered`) and failures (`expect fail`) are.
//!
//! As upstream's harness does, every instant eval is also run as a range
//! query from t-1m to t+1m step 1m and its point at t compared (skipped for
//! ordered, range-vector and string expectations and for `start()`,
//! `end()`, `range()`, `step()`).
//!
//! The test fails if fewer evals pass than `PASSING` below. Set
//! `STRATA_PROMQL_TABLE=<file>` to write the per-file table (committed as
//! docs/PROMQL_CONFORMANCE.md), `STRATA_PROMQL_VERBOSE=1` to print each
//! failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::Path;

use strata_query_lang::promql::{
    Engine, EngineConfig, Labels, MemorySource, QueryOutput, STALE_NAN_BITS, Value, is_stale,
};

#[path = "promql_conformance/histograms.rs"]
mod histograms;
use histograms::{Cell, custom_bucket_histograms, expand_histograms, value_tokens};

/// Evals passing at the last commit (core and `@`/subquery together).
const PASSING: usize = 1715;

fn parse_duration_ms(s: &str) -> i64 {
    let s = s.trim();
    if let Some(rest) = s.strip_prefix('-') {
        return -parse_duration_ms(rest);
    }
    if s.trim_start_matches('0')
        .chars()
        .all(|c| c.is_ascii_alphabetic())
    {
        return 0; // "0", "0s", "0m"
    }
    if let Ok(secs) = s.parse::<f64>() {
        return (secs * 1000.0).round() as i64;
    }
    let d =
        promql_parser::util::parse_duration(s).unwrap_or_else(|e| panic!("duration {s:?}: {e}"));
    d.as_millis() as i64
}

fn parse_float(s: &str) -> Option<f64> {
    match s {
        "Inf" | "+Inf" | "inf" | "+inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        "stale" => Some(f64::from_bits(STALE_NAN_BITS)),
        // No hex: in this notation `0x5` is five more zeros.
        _ => s.parse().ok(),
    }
}

/// Expands one value token: `Some(v)` per sample, `None` per gap.
fn expand(token: &str) -> Option<Vec<Option<Cell>>> {
    if token.starts_with("{{") {
        return expand_histograms(token);
    }
    Some(
        expand_floats(token)?
            .into_iter()
            .map(|v| v.map(Cell::F))
            .collect(),
    )
}

fn expand_floats(token: &str) -> Option<Vec<Option<f64>>> {
    if token == "_" {
        return Some(vec![None]);
    }
    if let Some(v) = parse_float(token) {
        return Some(vec![Some(v)]);
    }
    let (head, times) = token.rsplit_once('x')?;
    let n: usize = times.parse().ok()?;
    if head == "_" {
        return Some(vec![None; n]);
    }
    if let Some(v) = parse_float(head) {
        return Some(vec![Some(v); n + 1]);
    }
    // `a+b` or `a-b`: the sign that is not leading and not an exponent's.
    let bytes = head.as_bytes();
    let split = (1..bytes.len()).rev().find(|&i| {
        (bytes[i] == b'+' || bytes[i] == b'-') && !matches!(bytes[i - 1], b'e' | b'E')
    })?;
    let start = parse_float(&head[..split])?;
    let delta = parse_float(&head[split..])?;
    let mut out = Vec::with_capacity(n + 1);
    let mut v = start;
    for _ in 0..=n {
        out.push(Some(v));
        v += delta;
    }
    Some(out)
}

/// Splits `metric{a="b"} rest` into the series part and the rest.
fn split_series(line: &str) -> (&str, &str) {
    let mut in_quote = false;
    let mut depth = 0;
    let mut prev = ' ';
    for (i, c) in line.char_indices() {
        match c {
            '"' if prev != '\\' => in_quote = !in_quote,
            '{' if !in_quote => depth += 1,
            '}' if !in_quote => {
                depth -= 1;
                if depth == 0 {
                    return (&line[..=i], line[i + 1..].trim());
                }
            }
            c if c.is_whitespace() && !in_quote && depth == 0 => {
                return (&line[..i], line[i..].trim());
            }
            _ => {}
        }
        prev = c;
    }
    (line, "")
}

fn parse_labels(s: &str) -> Option<Labels> {
    if s == "{}" {
        return Some(Labels::empty());
    }
    let expr = promql_parser::parser::parse(s).ok()?;
    let promql_parser::parser::Expr::VectorSelector(vs) = expr else {
        return None;
    };
    let mut pairs: Vec<(String, String)> = vs
        .matchers
        .matchers
        .iter()
        .map(|m| (m.name.clone(), m.value.clone()))
        .collect();
    if let Some(n) = vs.name {
        pairs.push(("__name__".into(), n));
    }
    Some(Labels::new(pairs))
}

#[derive(Debug)]
enum Expect {
    Fail,
    Scalar(f64),
    String(String),
    /// Series and their values; instant evals have one value each.
    Series(Vec<(Labels, Vec<Option<Cell>>)>),
}

#[derive(Debug)]
struct Eval {
    line: usize,
    query: String,
    /// Instant: (t, t, 0); range: (start, end, step).
    range: Option<(i64, i64, i64)>,
    at: i64,
    ordered: bool,
    /// `expect range vector from s to e step st`.
    range_vector: Option<(i64, i64, i64)>,
    expect: Expect,
}

enum Command {
    Load(Vec<(Labels, i64, Cell)>),
    Clear,
    Eval(Eval),
}

fn parse_file(text: &str) -> Vec<Command> {
    let lines: Vec<String> = text
        .lines()
        .map(|l| {
            let t = l.trim();
            if t.starts_with('#') {
                String::new()
            } else {
                t.to_owned()
            }
        })
        .collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = &lines[i];
        i += 1;
        if line.is_empty() {
            continue;
        }
        let (cmd, rest) = line
            .split_once(char::is_whitespace)
            .unwrap_or((line.as_str(), ""));
        match cmd {
            "clear" => out.push(Command::Clear),
            "load" | "load_with_nhcb" => {
                let interval = parse_duration_ms(rest.trim());
                let mut samples = Vec::new();
                let mut unsupported = false;
                while i < lines.len() && !lines[i].is_empty() {
                    let (series, values) = split_series(&lines[i]);
                    i += 1;
                    let series = series.strip_suffix("@st").map_or(series, |s| {
                        unsupported = true;
                        s
                    });
                    let Some(labels) = parse_labels(series) else {
                        unsupported = true;
                        continue;
                    };
                    let mut step = 0i64;
                    for tok in value_tokens(values) {
                        let Some(vals) = expand(tok) else {
                            unsupported = true;
                            break;
                        };
                        for v in vals {
                            if let Some(v) = v {
                                samples.push((labels.clone(), step * interval, v));
                            }
                            step += 1;
                        }
                    }
                }
                let _ = unsupported;
                if cmd == "load_with_nhcb" {
                    let nhcb = custom_bucket_histograms(&samples);
                    samples.extend(nhcb);
                }
                out.push(Command::Load(samples));
            }
            c if c.starts_with("eval") => {
                let line_no = i;
                let mut fail = c == "eval_fail";
                let mut ordered = c == "eval_ordered";
                let (range, at, query) = if let Some(r) = rest.strip_prefix("instant at ") {
                    let (t, q) = r.trim().split_once(char::is_whitespace).unwrap();
                    let t = parse_duration_ms(t);
                    (None, t, q.trim().to_owned())
                } else if let Some(r) = rest.strip_prefix("range from ") {
                    let parts: Vec<&str> = r.trim().splitn(6, char::is_whitespace).collect();
                    // from S to E step ST <expr>
                    let (s, e, st) = (
                        parse_duration_ms(parts[0]),
                        parse_duration_ms(parts[2]),
                        parse_duration_ms(parts[4]),
                    );
                    (Some((s, e, st)), s, parts[5].trim().to_owned())
                } else {
                    panic!("unknown eval form on line {line_no}: {line}");
                };
                let mut range_vector = None;
                let mut string = None;
                let mut scalar = None;
                let mut series = Vec::new();
                while i < lines.len() && !lines[i].is_empty() {
                    let l = lines[i].clone();
                    i += 1;
                    if let Some(e) = l.strip_prefix("expect ") {
                        let e = e.trim();
                        if e.starts_with("fail") {
                            fail = true;
                        } else if e == "ordered" {
                            ordered = true;
                        } else if let Some(r) = e.strip_prefix("range vector from ") {
                            let p: Vec<&str> = r.split_whitespace().collect();
                            range_vector = Some((
                                parse_duration_ms(p[0]),
                                parse_duration_ms(p[2]),
                                parse_duration_ms(p[4]),
                            ));
                        } else if let Some(s) = e.strip_prefix("string ") {
                            let s = s.trim();
                            let unquoted = s
                                .strip_prefix('"')
                                .and_then(|x| x.strip_suffix('"'))
                                .or_else(|| s.strip_prefix('`').and_then(|x| x.strip_suffix('`')))
                                .unwrap_or(s);
                            string = Some(unquoted.to_owned());
                        }
                        continue;
                    }
                    if l.starts_with("expected_fail_") {
                        fail = true;
                        continue;
                    }
                    if let Some(v) = parse_float(&l) {
                        scalar = Some(v);
                        continue;
                    }
                    let (s, values) = split_series(&l);
                    let labels =
                        parse_labels(s).unwrap_or_else(|| panic!("labels on line {i}: {l}"));
                    let mut vals = Vec::new();
                    for tok in value_tokens(values) {
                        match expand(tok) {
                            Some(v) => vals.extend(v),
                            None => vals.push(Some(Cell::F(f64::from_bits(0x7ff8_dead_0000_0001)))),
                        }
                    }
                    series.push((labels, vals));
                }
                let expect = if fail {
                    Expect::Fail
                } else if let Some(s) = string {
                    Expect::String(s)
                } else if let Some(v) = scalar {
                    Expect::Scalar(v)
                } else {
                    Expect::Series(series)
                };
                out.push(Command::Eval(Eval {
                    line: line_no,
                    query,
                    range,
                    at,
                    ordered,
                    range_vector,
                    expect,
                }));
            }
            other => panic!("unknown command {other:?}"),
        }
    }
    out
}

fn almost_equal(a: f64, b: f64) -> bool {
    if is_stale(a) || is_stale(b) {
        return is_stale(a) && is_stale(b);
    }
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    const EPS: f64 = 1e-6;
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < f64::MIN_POSITIVE {
        return diff < EPS * f64::MIN_POSITIVE;
    }
    diff / abs_sum.min(f64::MAX) < EPS
}

fn cells_match(got: &Cell, want: &Cell) -> bool {
    match (got, want) {
        (Cell::F(g), Cell::F(w)) => almost_equal(*g, *w),
        (Cell::H(g, _), Cell::H(w, hint_set)) => {
            let (mut g, mut w) = (g.clone(), w.clone());
            g.compact();
            w.compact();
            g.approx_eq(&w, 1e-6) && (!hint_set || g.hint == w.hint)
        }
        _ => false,
    }
}

/// A series' values as the expectations write them.
type Row = (Labels, Vec<Option<Cell>>);

fn check_series(got: &[Row], want: &[Row], ordered: bool) -> Result<(), String> {
    // A range result may end early; the expectation then lists fewer
    // values than there are steps.
    let trim = |v: &[Option<Cell>]| -> Vec<Option<Cell>> {
        let end = v.iter().rposition(Option::is_some).map_or(0, |i| i + 1);
        v[..end].to_vec()
    };
    let got: Vec<Row> = got.iter().map(|(l, v)| (l.clone(), trim(v))).collect();
    let want: Vec<Row> = want.iter().map(|(l, v)| (l.clone(), trim(v))).collect();
    let (got, want) = (&got[..], &want[..]);
    if got.len() != want.len() {
        return Err(format!(
            "got {} series, want {}: got {:?}",
            got.len(),
            want.len(),
            summary(got)
        ));
    }
    for (i, (wl, wv)) in want.iter().enumerate() {
        let found = if ordered {
            got.get(i).filter(|g| &g.0 == wl)
        } else {
            got.iter().find(|g| &g.0 == wl)
        };
        let Some((_, gv)) = found else {
            return Err(format!(
                "missing {wl} (ordered: {ordered}); got {:?}",
                summary(got)
            ));
        };
        if gv.len() != wv.len()
            || gv.iter().zip(wv).any(|(g, w)| match (g, w) {
                (None, None) => false,
                (Some(g), Some(w)) => !cells_match(g, w),
                _ => true,
            })
        {
            return Err(format!("{wl}: got {gv:?}, want {wv:?}"));
        }
    }
    Ok(())
}

fn summary(s: &[Row]) -> Vec<String> {
    s.iter()
        .take(6)
        .map(|(l, v)| format!("{l} {v:?}"))
        .collect()
}

/// A range result laid out on the eval's steps.
fn on_steps(m: &[strata_query_lang::promql::Series], start: i64, end: i64, step: i64) -> Vec<Row> {
    m.iter()
        .map(|s| {
            let mut vals = Vec::new();
            let mut t = start;
            while t <= end {
                let float = s.points.iter().find(|p| p.0 == t).map(|p| Cell::F(p.1));
                let hist = || {
                    s.histograms
                        .iter()
                        .find(|p| p.0 == t)
                        .map(|p| Cell::H(Box::new((*p.1).clone()), false))
                };
                vals.push(float.or_else(hist));
                t += step;
            }
            (s.labels.clone(), vals)
        })
        .collect()
}

fn check(e: &Eval, out: Result<QueryOutput, String>) -> Result<(), String> {
    let out = match (&e.expect, out) {
        (Expect::Fail, Err(_)) => return Ok(()),
        (Expect::Fail, Ok(o)) => return Err(format!("expected failure, got {:?}", o.value)),
        (_, Err(msg)) => return Err(format!("error: {msg}")),
        (_, Ok(o)) => o,
    };
    match (&e.expect, out.value) {
        (Expect::Scalar(w), Value::Scalar { v, .. }) => {
            if almost_equal(v, *w) {
                Ok(())
            } else {
                Err(format!("scalar {v}, want {w}"))
            }
        }
        (Expect::Scalar(w), Value::Matrix(m)) if e.range.is_some() => {
            let (s, en, st) = e.range.unwrap_or_default();
            let got = on_steps(&m, s, en, st);
            let n = ((en - s) / st + 1) as usize;
            check_series(
                &got,
                &[(Labels::empty(), vec![Some(Cell::F(*w)); n])],
                false,
            )
        }
        (Expect::String(w), Value::String { s, .. }) => {
            if &s == w {
                Ok(())
            } else {
                Err(format!("string {s:?}, want {w:?}"))
            }
        }
        (Expect::Series(want), Value::Vector(v)) => {
            let got: Vec<_> = v
                .into_iter()
                .map(|s| {
                    let cell = match s.h {
                        Some(h) => Cell::H(Box::new((*h).clone()), false),
                        None => Cell::F(s.v),
                    };
                    (s.labels, vec![Some(cell)])
                })
                .collect();
            check_series(&got, want, e.ordered)
        }
        (Expect::Series(want), Value::Matrix(m)) => {
            let (s, en, st) = e
                .range
                .or(e.range_vector)
                .ok_or("unexpected range vector")?;
            check_series(&on_steps(&m, s, en, st), want, false)
        }
        (w, got) => Err(format!("got {got:?}, want {w:?}")),
    }
}

/// Stable PromQL beyond the core: must pass like core evals.
const STABLE: &[&str] = &["at_modifier", "subquery"];

/// Tags that say how an eval checks, not what it needs.
fn neutral(tag: &str) -> bool {
    tag.starts_with("expect_") || tag == "legacy_eval_fail"
}

#[derive(Default)]
struct Tally {
    pass: usize,
    fail: usize,
    skip: usize,
    core_pass: usize,
    core_total: usize,
}

#[test]
fn prometheus_promql_tests() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/promql");
    let index = std::fs::read_to_string(dir.join("eval-index.tsv")).unwrap();
    let mut tags: HashMap<(String, usize), Vec<String>> = HashMap::new();
    for row in index.lines().skip(1) {
        let f: Vec<&str> = row.split('\t').collect();
        let t = if f[4] == "-" {
            Vec::new()
        } else {
            f[4].split(',').map(str::to_owned).collect()
        };
        tags.insert((f[0].to_owned(), f[1].parse().unwrap()), t);
    }
    let verbose = std::env::var_os("STRATA_PROMQL_VERBOSE").is_some();
    let only = std::env::var("STRATA_PROMQL_FILE").ok();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    // The default: a selection a step table reduces is read in parts of
    // 8192 series (one part for these files' selections).
    let engine = Engine::default();
    // Every such selection read one series per part, and read whole.
    let parted = Engine::new(EngineConfig {
        part_series: 1,
        ..EngineConfig::default()
    });
    let whole = Engine::new(EngineConfig {
        part_series: 0,
        ..EngineConfig::default()
    });
    let mut files: Vec<_> = std::fs::read_dir(dir.join("testdata"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut table: BTreeMap<String, Tally> = BTreeMap::new();
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if only.as_ref().is_some_and(|o| !name.contains(o.as_str())) {
            continue;
        }
        let tally = table.entry(name.clone()).or_default();
        let mut source = MemorySource::new();
        for cmd in parse_file(&std::fs::read_to_string(&path).unwrap()) {
            match cmd {
                Command::Clear => {
                    source.clear();
                }
                Command::Load(samples) => {
                    for (l, t, v) in samples {
                        match v {
                            Cell::F(v) => source.add(&l, t, v),
                            Cell::H(h, _) => source.add_histogram(&l, t, *h),
                        }
                    }
                }
                Command::Eval(e) => {
                    let t = tags
                        .get(&(name.clone(), e.line))
                        .cloned()
                        .unwrap_or_default();
                    // Data the loader cannot hold (native histograms, start
                    // timestamps) is tagged in the index too.
                    let optional = t
                        .iter()
                        .any(|t| !neutral(t) && !STABLE.contains(&t.as_str()));
                    let core = t.iter().all(|t| neutral(t));
                    let result = run_eval(&rt, &engine, &source, &e)
                        .and_then(|()| run_again(&rt, &parted, &source, &e, "read in parts"))
                        .and_then(|()| run_again(&rt, &whole, &source, &e, "read whole"));
                    if core {
                        tally.core_total += 1;
                    }
                    match result {
                        Ok(()) => {
                            tally.pass += 1;
                            if core {
                                tally.core_pass += 1;
                            }
                        }
                        Err(msg) if optional => {
                            tally.skip += 1;
                            if std::env::var("STRATA_PROMQL_VERBOSE").as_deref() == Ok("2") {
                                println!("SKIP {name}:{} {}\n    {msg}", e.line, e.query);
                            }
                        }
                        Err(msg) => {
                            tally.fail += 1;
                            if verbose {
                                println!("FAIL {name}:{} {}\n    {msg}", e.line, e.query);
                            }
                        }
                    }
                }
            }
        }
    }
    let mut total = Tally::default();
    let mut report = String::from(
        "| file | pass | fail | skip | core pass / core |\n|---|---:|---:|---:|---:|\n",
    );
    for (name, t) in &table {
        println!(
            "{name:28} pass {:4} fail {:4} skip {:4} core {:4}/{:4}",
            t.pass, t.fail, t.skip, t.core_pass, t.core_total
        );
        writeln!(
            report,
            "| {name} | {} | {} | {} | {} / {} |",
            t.pass, t.fail, t.skip, t.core_pass, t.core_total
        )
        .unwrap();
        total.pass += t.pass;
        total.fail += t.fail;
        total.skip += t.skip;
        total.core_pass += t.core_pass;
        total.core_total += t.core_total;
    }
    println!(
        "TOTAL pass {} fail {} skip {} (core {}/{}; {} evals also passed their @ re-run)",
        total.pass,
        total.fail,
        total.skip,
        total.core_pass,
        total.core_total,
        RERUNS.load(std::sync::atomic::Ordering::Relaxed)
    );
    writeln!(
        report,
        "| **total** | **{}** | **{}** | **{}** | **{} / {}** |",
        total.pass, total.fail, total.skip, total.core_pass, total.core_total
    )
    .unwrap();
    if let Ok(p) = std::env::var("STRATA_PROMQL_TABLE") {
        std::fs::write(p, report).unwrap();
    }
    if only.is_none() {
        assert!(
            total.pass >= PASSING,
            "PromQL conformance dropped: {} passing, committed figure {PASSING}",
            total.pass
        );
    }
}

/// The eval's query on `engine`, as the eval says (range or instant).
fn query(
    rt: &tokio::runtime::Runtime,
    engine: &Engine,
    source: &MemorySource,
    e: &Eval,
) -> Result<QueryOutput, String> {
    match e.range {
        Some((s, en, st)) => rt.block_on(engine.range(source, &e.query, s, en, st)),
        None => rt.block_on(engine.instant(source, &e.query, e.at)),
    }
    .map_err(|err| err.message)
}

/// The eval again on an engine that reads reduced selections otherwise
/// (`how`): the same answer.
fn run_again(
    rt: &tokio::runtime::Runtime,
    engine: &Engine,
    source: &MemorySource,
    e: &Eval,
    how: &str,
) -> Result<(), String> {
    check(e, query(rt, engine, source, e)).map_err(|m| format!("{how}: {m}"))
}

fn run_eval(
    rt: &tokio::runtime::Runtime,
    engine: &Engine,
    source: &MemorySource,
    e: &Eval,
) -> Result<(), String> {
    let out = query(rt, engine, source, e);
    check(e, out)?;
    // Upstream's range re-run of instant evals.
    let rerun = e.range.is_none()
        && !e.ordered
        && e.range_vector.is_none()
        && !matches!(e.expect, Expect::String(_) | Expect::Fail)
        && !["start()", "end()", "range()", "step()"]
            .iter()
            .any(|f| e.query.contains(f));
    if rerun {
        let out = rt
            .block_on(engine.range(source, &e.query, e.at - 60_000, e.at + 60_000, 60_000))
            .map_err(|err| err.message)?;
        let Value::Matrix(m) = out.value else {
            return Err("range re-run: not a matrix".into());
        };
        let at_t: Vec<Row> = on_steps(&m, e.at, e.at, 1)
            .into_iter()
            .filter(|(_, v)| v[0].is_some())
            .collect();
        let want = match &e.expect {
            Expect::Scalar(w) => vec![(Labels::empty(), vec![Some(Cell::F(*w))])],
            Expect::Series(s) => s.clone(),
            _ => return Ok(()),
        };
        check_series(&at_t, &want, false).map_err(|m| format!("range re-run: {m}"))?;
    }
    // Upstream's `@` re-run: every selector and subquery pinned to the
    // eval time, evaluated at other times, must give the same answer.
    let time_dependent = [
        "time(",
        "timestamp(",
        "predict_linear(",
        "hour(",
        "minute(",
        "month(",
        "year(",
        "day_of_",
        "days_in_month(",
        "start(",
        "end(",
        "range(",
        "step(",
    ];
    if at_rerun()
        && e.range.is_none()
        && !matches!(e.expect, Expect::Fail)
        && !time_dependent.iter().any(|f| e.query.contains(f))
    {
        let mut expr =
            promql_parser::parser::parse(&e.query).map_err(|m| format!("@ re-run: {m}"))?;
        pin_at(&mut expr, e.at);
        let times = if e.at == 0 {
            vec![-1000, 0, 1000]
        } else {
            vec![-10 * e.at, 0, e.at / 5, e.at, 10 * e.at]
        };
        RERUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        for t in times {
            let out = rt
                .block_on(engine.instant_expr(source, &expr, t))
                .map_err(|err| format!("@ re-run at {t}: {}", err.message));
            check(e, out).map_err(|m| format!("@ re-run at {t}: {m}"))?;
        }
    }
    Ok(())
}

static RERUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn at_rerun() -> bool {
    std::env::var("STRATA_PROMQL_AT_RERUN").map_or(true, |v| v != "0")
}

/// Adds `@ t` to every selector and subquery that has none.
fn pin_at(e: &mut promql_parser::parser::Expr, t: i64) {
    use promql_parser::parser::{AtModifier, Expr};
    let at = || {
        let st = if t >= 0 {
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(t as u64)
        } else {
            std::time::UNIX_EPOCH - std::time::Duration::from_millis(t.unsigned_abs())
        };
        Some(AtModifier::At(st))
    };
    match e {
        Expr::VectorSelector(vs) if vs.at.is_none() => vs.at = at(),
        Expr::MatrixSelector(m) if m.vs.at.is_none() => m.vs.at = at(),
        Expr::Subquery(sq) if sq.at.is_none() => sq.at = at(),
        Expr::Aggregate(a) => {
            pin_at(&mut a.expr, t);
            if let Some(p) = a.param.as_mut() {
                pin_at(p, t);
            }
        }
        Expr::Unary(u) => pin_at(&mut u.expr, t),
        Expr::Binary(b) => {
            pin_at(&mut b.lhs, t);
            pin_at(&mut b.rhs, t);
        }
        Expr::Paren(p) => pin_at(&mut p.expr, t),
        Expr::Call(c) => {
            for a in c.args.args.iter_mut() {
                pin_at(a, t);
            }
        }
        _ => {}
    }
}
