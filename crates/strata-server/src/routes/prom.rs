//! The Prometheus HTTP API: what Grafana's Prometheus data source and
//! `promtool` call (see shared/conformance/protocols, section c).
//!
//! Parameters come from the URL and, for POST, a form body (the body wins);
//! times are RFC 3339 or float seconds, durations Prometheus durations or
//! float seconds. Every answer is the Prometheus envelope; errors carry
//! Prometheus' `errorType` and status through [`ApiError`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value as J, json};
use strata_query_lang::promql::{
    self as pq, Cancel, Engine, ErrorKind as PromKind, FloatHistogram, Labels, Matcher, PromError,
    QueryOutput, Value,
};
use strata_types::{ErrorKind, TenantId};

use super::prom_numbers::{write_float_seconds, write_scalar, write_ts, write_value};
use tracing::Instrument;

use crate::AppState;
use crate::error::{ApiError, Shape};
use crate::frontend::Caller;

pub(super) const SHAPE: Shape = Shape::Json;

pub(super) fn bad(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorKind::BadInput, message, SHAPE)
}

pub(super) fn from_prom(e: PromError) -> ApiError {
    prom_error(e, SHAPE)
}

/// A PromQL evaluation or selection error as `shape` answers it.
pub(super) fn prom_error(e: PromError, shape: Shape) -> ApiError {
    let kind = match e.kind {
        PromKind::BadData => ErrorKind::BadInput,
        PromKind::Execution | PromKind::TooLarge => ErrorKind::Unprocessable,
        PromKind::Timeout => ErrorKind::Timeout,
        PromKind::Canceled => ErrorKind::Canceled,
        PromKind::Unavailable => ErrorKind::Unavailable,
        PromKind::Internal => ErrorKind::Internal,
    };
    ApiError::new(kind, e.message, shape)
}

/// Request parameters: form body first, then the URL.
pub(super) struct Params(Vec<(String, String)>);

impl Params {
    pub(super) fn new(query: Option<String>, headers: &HeaderMap, body: &[u8]) -> Self {
        let mut pairs = Vec::new();
        let form = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        if form {
            pairs.extend(url::form_urlencoded::parse(body).into_owned());
        }
        if let Some(q) = query {
            pairs.extend(url::form_urlencoded::parse(q.as_bytes()).into_owned());
        }
        Params(pairs)
    }

    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    pub(super) fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub(super) fn time(&self, name: &str, default: i64) -> Result<i64, ApiError> {
        self.get(name).map_or(Ok(default), |v| {
            parse_time(v).map_err(|e| bad(format!("invalid parameter \"{name}\": {e}")))
        })
    }

    pub(super) fn duration(&self, name: &str) -> Result<Option<i64>, ApiError> {
        self.get(name)
            .map(|v| {
                parse_duration(v).map_err(|e| bad(format!("invalid parameter \"{name}\": {e}")))
            })
            .transpose()
    }

    pub(super) fn limit(&self) -> Result<usize, ApiError> {
        match self.get("limit") {
            None => Ok(0),
            Some(v) => v
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
                .ok_or_else(|| {
                    bad(format!(
                        "invalid parameter \"limit\": cannot parse {v:?} to a valid limit"
                    ))
                }),
        }
    }
}

/// RFC 3339 or Unix seconds (fraction rounded to milliseconds).
pub(crate) fn parse_time(s: &str) -> Result<i64, String> {
    if let Ok(secs) = s.parse::<f64>() {
        if !secs.is_finite() {
            return Err(format!("cannot parse {s:?} to a valid timestamp"));
        }
        return Ok((secs * 1000.0).round() as i64);
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_millis())
        .map_err(|_| format!("cannot parse {s:?} to a valid timestamp"))
}

/// A Prometheus duration or float seconds, in milliseconds.
pub(crate) fn parse_duration(s: &str) -> Result<i64, String> {
    if let Ok(secs) = s.parse::<f64>() {
        if !secs.is_finite() || secs * 1000.0 > i64::MAX as f64 || secs < 0.0 {
            return Err(format!("cannot parse {s:?} to a valid duration"));
        }
        return Ok((secs * 1000.0).round() as i64);
    }
    // `0s`, `0m`: valid for Prometheus, refused by the PromQL parser.
    if s.starts_with('0')
        && s.trim_start_matches('0')
            .chars()
            .all(|c| c.is_ascii_alphabetic())
    {
        return Ok(0);
    }
    pq::parse_duration_ms(s).map_err(|_| format!("cannot parse {s:?} to a valid duration"))
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

pub(super) fn envelope(data: J, warnings: Vec<String>, infos: Vec<String>) -> Response {
    let mut body = json!({"status": "success", "data": data});
    if !warnings.is_empty() {
        body["warnings"] = json!(warnings);
    }
    if !infos.is_empty() {
        body["infos"] = json!(infos);
    }
    Json(body).into_response()
}

pub(super) fn reply(r: Result<Response, ApiError>) -> Response {
    r.unwrap_or_else(IntoResponse::into_response)
}

/// Cancels the evaluation when the request goes away.
struct CancelOnDrop(Cancel);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

#[derive(Debug, Clone, Copy)]
enum When {
    Instant(i64),
    Range { start: i64, end: i64, step: i64 },
}

/// Fetches and evaluates one query: its answer, fetch and evaluation
/// times. Owns what it needs, so it can run on either runtime.
async fn run(
    engine: Engine,
    source: strata_query::promql::PromSource,
    query: String,
    when: When,
    cancel: Cancel,
    timeout: Duration,
) -> Result<(QueryOutput, Duration, Duration), ApiError> {
    let prepare = async {
        match when {
            When::Instant(t) => engine.prepare_instant(&source, &query, t).await,
            When::Range { start, end, step } => {
                engine
                    .prepare_range(&source, &query, start, end, step)
                    .await
            }
        }
    };
    let fetch_started = Instant::now();
    let prepared = tokio::time::timeout(timeout, prepare)
        .await
        .map_err(|_| {
            ApiError::new(
                ErrorKind::Timeout,
                "query timed out in query execution",
                SHAPE,
            )
        })?
        .map_err(from_prom)?;
    let fetch_time = fetch_started.elapsed();
    let started = Instant::now();
    let out = tokio::task::spawn_blocking(move || prepared.evaluate(&cancel))
        .await
        .map_err(|e| {
            ApiError::new(
                ErrorKind::Internal,
                format!("query evaluation failed: {e}"),
                SHAPE,
            )
        })?
        .map_err(from_prom)?;
    Ok((out, fetch_time, started.elapsed()))
}

async fn evaluate(
    state: &Arc<AppState>,
    tenant: &TenantId,
    params: &Params,
    query: &str,
    when: When,
) -> Result<QueryOutput, ApiError> {
    let cfg = &state.config.promql;
    let mut timeout = cfg.timeout;
    if let Some(t) = params.duration("timeout")? {
        timeout = timeout.min(Duration::from_millis(u64::try_from(t).unwrap_or(0)));
    }
    let lookback = match params.duration("lookback_delta")? {
        Some(ms) if ms > 0 => Duration::from_millis(u64::try_from(ms).unwrap_or(0)),
        _ => cfg.lookback_delta,
    };
    // Waiting for a slot counts against the timeout; leaving (client gone)
    // gives up the place in line.
    let queued = Instant::now();
    let admitted = crate::frontend::query::admit(state, tenant, "promql", SHAPE, timeout).await?;
    let timeout = timeout.saturating_sub(queued.elapsed());
    let engine = state.promql_engine(Some(tenant), lookback);
    let source = state
        .query
        .promql_source(tenant)
        .map_err(|e| ApiError::new(e.kind(), e.to_string(), SHAPE))?;
    let cancel = Cancel::new(Some(Instant::now() + timeout));
    let guard = CancelOnDrop(cancel.clone());
    let work = run(engine, source, query.to_owned(), when, cancel, timeout);
    // A tenant with queries already running or waiting computes on
    // low-priority threads: the CPU goes first to tenants asking less.
    let (out, fetch_time, eval_time) = match crate::scheduler::low_priority(cfg.heavy_query_nice) {
        Some(low) if admitted.heavy() => {
            low.spawn(work.in_current_span()).await.map_err(|e| {
                ApiError::new(
                    ErrorKind::Internal,
                    format!("query evaluation failed: {e}"),
                    SHAPE,
                )
            })??
        }
        _ => work.await?,
    };
    drop(guard);
    tracing::debug!(
        fetch_ms = fetch_time.as_secs_f64() * 1e3,
        eval_ms = eval_time.as_secs_f64() * 1e3,
        "promql evaluated"
    );
    admitted.read_samples(out.samples_loaded);
    Ok(out)
}

/// A query's answer in Prometheus' JSON, written straight into the body:
/// a range query's points are most of an answer, and a JSON tree of them
/// cost more than the query (an allocation per timestamp and value).
fn render(out: QueryOutput, limit: usize) -> Response {
    let mut warnings = out.warnings;
    let mut b: Vec<u8> = Vec::with_capacity(4096);
    b.extend_from_slice(br#"{"status":"success","data":{"resultType":"#);
    match out.value {
        // Scalars and strings as their own JSON methods write them.
        Value::Scalar { t, v } => {
            b.extend_from_slice(br#""scalar","result":["#);
            write_float_seconds(&mut b, t);
            b.extend_from_slice(b",\"");
            write_scalar(&mut b, v);
            b.extend_from_slice(b"\"]");
        }
        Value::String { t, s } => {
            b.extend_from_slice(br#""string","result":["#);
            write_float_seconds(&mut b, t);
            b.push(b',');
            write_str(&mut b, &s);
            b.push(b']');
        }
        Value::Vector(mut v) => {
            truncate(&mut v, limit, &mut warnings);
            b.extend_from_slice(br#""vector","result":"#);
            write_list(&mut b, &v, |b, s| {
                b.extend_from_slice(br#"{"metric":"#);
                write_labels(b, &s.labels);
                match &s.h {
                    Some(h) => {
                        b.extend_from_slice(br#","histogram":"#);
                        write_histogram_point(b, s.t, h);
                    }
                    None => {
                        b.extend_from_slice(br#","value":"#);
                        write_point(b, s.t, s.v);
                    }
                }
                b.push(b'}');
            });
        }
        Value::Matrix(mut m) => {
            truncate(&mut m, limit, &mut warnings);
            b.extend_from_slice(br#""matrix","result":"#);
            write_list(&mut b, &m, |b, s| {
                b.extend_from_slice(br#"{"metric":"#);
                write_labels(b, &s.labels);
                // As Prometheus: each list only when the series has some.
                if !s.points.is_empty() || s.histograms.is_empty() {
                    b.extend_from_slice(br#","values":"#);
                    write_list(b, &s.points, |b, (t, v)| write_point(b, *t, *v));
                }
                if !s.histograms.is_empty() {
                    b.extend_from_slice(br#","histograms":"#);
                    write_list(b, &s.histograms, |b, (t, h)| {
                        write_histogram_point(b, *t, h)
                    });
                }
                b.push(b'}');
            });
        }
    }
    b.push(b'}');
    finish(b, &warnings, &out.infos)
}

/// Closes a body begun with `{"status":"success","data":…`: warnings and
/// infos when there are any.
fn finish(mut b: Vec<u8>, warnings: &[String], infos: &[String]) -> Response {
    for (key, list) in [("warnings", warnings), ("infos", infos)] {
        if !list.is_empty() {
            b.extend_from_slice(format!(r#","{key}":"#).as_bytes());
            write_list(&mut b, list, |b, w| write_str(b, w));
        }
    }
    b.push(b'}');
    ([(header::CONTENT_TYPE, "application/json")], Bytes::from(b)).into_response()
}

/// A JSON string, escaped.
fn write_str(b: &mut Vec<u8>, s: &str) {
    // Writing a &str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *b, s);
}

/// `open item,item,… close`, each item written by `each`.
fn write_seq<I: IntoIterator>(
    b: &mut Vec<u8>,
    (open, close): (u8, u8),
    items: I,
    mut each: impl FnMut(&mut Vec<u8>, I::Item),
) {
    b.push(open);
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            b.push(b',');
        }
        each(b, item);
    }
    b.push(close);
}

/// `[item,item,…]`, each written by `each`.
fn write_list<T>(b: &mut Vec<u8>, items: &[T], each: impl FnMut(&mut Vec<u8>, &T)) {
    write_seq(b, (b'[', b']'), items, each);
}

fn write_labels(b: &mut Vec<u8>, l: &Labels) {
    write_seq(b, (b'{', b'}'), l.iter(), |b, (k, v)| {
        write_str(b, k);
        b.push(b':');
        write_str(b, v);
    });
}

/// `[<seconds>,"<value>"]`.
fn write_point(b: &mut Vec<u8>, t: i64, v: f64) {
    b.push(b'[');
    write_ts(b, t);
    b.extend_from_slice(b",\"");
    write_value(b, v);
    b.extend_from_slice(b"\"]");
}

/// `[<seconds>,{"count":…,"sum":…,"buckets":[…]}]`: a native histogram as
/// Prometheus' API writes one. Each populated bucket is `[boundaries,
/// lower, upper, count]`, boundaries 0 for `(lower, upper]` (positive and
/// custom buckets), 1 for `[lower, upper)` (negative), 3 for the zero
/// bucket `[lower, upper]`.
fn write_histogram_point(b: &mut Vec<u8>, t: i64, h: &FloatHistogram) {
    b.push(b'[');
    write_ts(b, t);
    b.extend_from_slice(br#",{"count":""#);
    write_value(b, h.count);
    b.extend_from_slice(br#"","sum":""#);
    write_value(b, h.sum);
    b.push(b'"');
    let buckets: Vec<_> = h.buckets().into_iter().filter(|x| x.count != 0.0).collect();
    if !buckets.is_empty() {
        b.extend_from_slice(br#","buckets":"#);
        write_list(b, &buckets, |b, x| {
            let rule: &[u8] = if x.zero {
                b"3"
            } else if x.negative {
                b"1"
            } else {
                b"0"
            };
            b.push(b'[');
            b.extend_from_slice(rule);
            for v in [x.lower, x.upper, x.count] {
                b.extend_from_slice(b",\"");
                write_value(b, v);
                b.push(b'"');
            }
            b.push(b']');
        });
    }
    b.extend_from_slice(b"}]");
}

fn required<'a>(params: &'a Params, name: &str) -> Result<&'a str, ApiError> {
    params
        .get(name)
        .ok_or_else(|| bad(format!("invalid parameter \"{name}\": missing")))
}

pub(super) async fn query(
    State(state): State<Arc<AppState>>,
    Caller { tenant, .. }: Caller,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    reply(
        async {
            let params = Params::new(raw, &headers, &body);
            let query = required(&params, "query")?;
            let t = params.time("time", now_ms())?;
            let limit = params.limit()?;
            let out = evaluate(&state, &tenant, &params, query, When::Instant(t)).await?;
            Ok(render(out, limit))
        }
        .await,
    )
}

pub(super) async fn query_range(
    State(state): State<Arc<AppState>>,
    Caller { tenant, .. }: Caller,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    reply(
        async {
            let params = Params::new(raw, &headers, &body);
            let query = required(&params, "query")?;
            required(&params, "start")?;
            required(&params, "end")?;
            let start = params.time("start", 0)?;
            let end = params.time("end", 0)?;
            let step = params
                .duration("step")?
                .ok_or_else(|| bad("invalid parameter \"step\": missing"))?;
            let limit = params.limit()?;
            let out = evaluate(
                &state,
                &tenant,
                &params,
                query,
                When::Range { start, end, step },
            )
            .await?;
            Ok(render(out, limit))
        }
        .await,
    )
}

/// The matchers of each `match[]` selector.
fn match_params(params: &Params) -> Result<Vec<Vec<Matcher>>, ApiError> {
    params
        .all("match[]")
        .into_iter()
        .map(|m| {
            // The parser's own message: `pq::parse` words it for `query`.
            let expr = pq::parse_expr(m)
                .map_err(|e| bad(format!("invalid parameter \"match[]\": {e}")))?;
            let promql_parser::parser::Expr::VectorSelector(vs) = expr else {
                return Err(bad(format!("invalid parameter \"match[]\": {m:?} is not a series selector")));
            };
            let mut matchers = vs.matchers.matchers.clone();
            if let Some(n) = &vs.name {
                matchers.push(Matcher::new(pq::MatchOp::Equal, pq::METRIC_NAME, n));
            }
            if !matchers.iter().any(|m| !m.is_match("")) {
                return Err(bad(
                    "invalid parameter \"match[]\": match[] must contain at least one non-empty matcher",
                ));
            }
            Ok(matchers)
        })
        .collect()
}

/// A lookup's source, selectors, start and end.
type Lookup = (
    strata_query::promql::PromSource,
    Vec<Vec<Matcher>>,
    i64,
    i64,
);

/// What a label or series lookup reads: the tenant's source, the
/// `match[]` selectors and the time range (all of time without start/end,
/// as Prometheus).
fn lookup(state: &AppState, tenant: &TenantId, params: &Params) -> Result<Lookup, ApiError> {
    let start = params.time("start", i64::MIN / 4)?;
    let end = params.time("end", i64::MAX / 4)?;
    let selectors = match_params(params)?;
    let source = state
        .query
        .promql_source(tenant)
        .map_err(|e| ApiError::new(e.kind(), e.to_string(), SHAPE))?;
    Ok((source, selectors, start, end))
}

/// Every series the `match[]` selectors (or, with none, all series) name
/// in `[start, end]`.
async fn matching_series(
    state: &AppState,
    tenant: &TenantId,
    params: &Params,
) -> Result<Vec<Labels>, ApiError> {
    let (source, mut selectors, start, end) = lookup(state, tenant, params)?;
    if selectors.is_empty() {
        // `{__name__!=""}`: every series.
        selectors.push(vec![Matcher::new(
            pq::MatchOp::NotEqual,
            pq::METRIC_NAME,
            "",
        )]);
    }
    let mut out = Vec::new();
    for m in selectors {
        out.extend(source.series(&m, start, end).await.map_err(from_prom)?);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

pub(super) async fn series(
    State(state): State<Arc<AppState>>,
    Caller { tenant, .. }: Caller,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    reply(
        async {
            let params = Params::new(raw, &headers, &body);
            if params.all("match[]").is_empty() {
                return Err(bad("no match[] parameter provided"));
            }
            let limit = params.limit()?;
            let mut series = matching_series(&state, &tenant, &params).await?;
            let mut warnings = Vec::new();
            truncate(&mut series, limit, &mut warnings);
            let mut b: Vec<u8> = Vec::with_capacity(64 + series.len() * 128);
            b.extend_from_slice(br#"{"status":"success","data":"#);
            write_list(&mut b, &series, write_labels);
            Ok(finish(b, &warnings, &[]))
        }
        .await,
    )
}

/// Cuts `v` to `limit` (0: no limit), saying so as Prometheus does.
fn truncate<T>(v: &mut Vec<T>, limit: usize, warnings: &mut Vec<String>) {
    if limit > 0 && v.len() > limit {
        v.truncate(limit);
        warnings.push("results truncated due to limit".to_owned());
    }
}

fn string_list(mut v: Vec<String>, limit: usize) -> Response {
    v.sort();
    v.dedup();
    let mut warnings = Vec::new();
    truncate(&mut v, limit, &mut warnings);
    envelope(json!(v), warnings, Vec::new())
}

pub(super) async fn labels(
    State(state): State<Arc<AppState>>,
    Caller { tenant, .. }: Caller,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    reply(
        async {
            let params = Params::new(raw, &headers, &body);
            let limit = params.limit()?;
            let (source, selectors, start, end) = lookup(&state, &tenant, &params)?;
            let names = source
                .label_names(&selectors, start, end)
                .await
                .map_err(from_prom)?;
            Ok(string_list(names, limit))
        }
        .await,
    )
}

/// `U__` names: `_<hex>_` for a character, `__` for `_` (Prometheus'
/// escaping of names outside the legacy character set). A name that does
/// not unescape is taken as written, as Prometheus does.
fn unescape_label_name(name: &str) -> Result<String, ApiError> {
    Ok(try_unescape(name).unwrap_or_else(|| name.to_owned()))
}

fn try_unescape(name: &str) -> Option<String> {
    let rest = name.strip_prefix("U__")?;
    let mut out = String::new();
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '_' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'_') {
            chars.next();
            out.push('_');
            continue;
        }
        let mut hex = String::new();
        loop {
            match chars.next()? {
                '_' => break,
                c => hex.push(c),
            }
        }
        out.push(
            u32::from_str_radix(&hex, 16)
                .ok()
                .and_then(char::from_u32)?,
        );
    }
    Some(out)
}

pub(super) async fn label_values(
    State(state): State<Arc<AppState>>,
    Caller { tenant, .. }: Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    reply(
        async {
            let name = unescape_label_name(&name)?;
            let params = Params::new(raw, &headers, &[]);
            let limit = params.limit()?;
            let (source, selectors, start, end) = lookup(&state, &tenant, &params)?;
            let values = source
                .label_values(&name, &selectors, start, end)
                .await
                .map_err(from_prom)?;
            Ok(string_list(values, limit))
        }
        .await,
    )
}

/// The tenant's metric metadata as Prometheus answers it: each metric's
/// distinct `{type, help, unit}`; `metric` picks one, `limit` bounds the
/// metrics (negative: all) and `limit_per_metric` the entries of each
/// (0 or negative: all).
pub(super) async fn metadata(
    State(state): State<Arc<AppState>>,
    Caller { tenant, .. }: Caller,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let params = Params::new(raw, &headers, &[]);
    let number = |name: &str| -> Result<Option<i64>, ApiError> {
        params
            .get(name)
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| bad(format!("{name} must be a number")))
            })
            .transpose()
    };
    reply((|| {
        let limit = number("limit")?.and_then(|n| usize::try_from(n).ok());
        let per_metric = number("limit_per_metric")?
            .filter(|n| *n > 0)
            .and_then(|n| usize::try_from(n).ok());
        let found = state.metadata.answer(
            &tenant,
            params.get("metric"),
            limit,
            per_metric,
            chrono::Utc::now().timestamp(),
        );
        let data: serde_json::Map<String, J> = found
            .into_iter()
            .map(|(name, entries)| {
                let list = entries
                    .into_iter()
                    .map(|e| json!({"type": e.kind.as_str(), "help": e.help, "unit": e.unit}))
                    .collect();
                (name, J::Array(list))
            })
            .collect();
        Ok(envelope(J::Object(data), Vec::new(), Vec::new()))
    })())
}

pub(super) async fn buildinfo(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Err(e) = state.auth.authenticate(&headers, SHAPE) {
        return e.into_response();
    }
    // No `features`: Grafana would take the server for Mimir.
    envelope(
        json!({
            "version": env!("CARGO_PKG_VERSION"),
            "revision": "",
            "branch": "",
            "buildUser": "",
            "buildDate": "",
            "goVersion": "",
        }),
        Vec::new(),
        Vec::new(),
    )
}

pub(super) async fn format_query(
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    reply(
        async {
            let params = Params::new(raw, &headers, &body);
            let query = required(&params, "query")?;
            let pretty = pq::format_query(query).map_err(from_prom)?;
            Ok(envelope(json!(pretty), Vec::new(), Vec::new()))
        }
        .await,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The body written without a JSON tree is Prometheus' answer: every
    /// result type, escapes, special values, fractional times, warnings.
    #[tokio::test]
    async fn answers_are_prometheus_json() {
        let labels = Labels::new(vec![
            ("__name__".into(), "up".into()),
            ("job".into(), "a\"b\\c\n".into()),
        ]);
        let body = |value: Value, warnings: Vec<String>| async move {
            let resp = render(
                QueryOutput {
                    value,
                    warnings,
                    infos: vec!["i".into()],
                    samples_loaded: 0,
                },
                0,
            );
            let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
                .await
                .unwrap();
            serde_json::from_slice::<J>(&bytes).unwrap()
        };
        let m = body(
            Value::Matrix(vec![strata_query_lang::promql::Series {
                labels: labels.clone(),
                points: vec![
                    (1_000, 1.5),
                    (2_500, f64::NAN),
                    (3_000, 1e-7),
                    (4_000, f64::NEG_INFINITY),
                ],
                histograms: Vec::new(),
            }]),
            vec!["w\"".into()],
        )
        .await;
        assert_eq!(
            m,
            json!({"status": "success", "data": {"resultType": "matrix", "result": [
                {"metric": {"__name__": "up", "job": "a\"b\\c\n"},
                 "values": [[1, "1.5"], [2.5, "NaN"], [3, "1e-07"], [4, "-Inf"]]}]},
                "warnings": ["w\""], "infos": ["i"]})
        );
        let v = body(
            Value::Vector(vec![strata_query_lang::promql::Sample {
                labels: labels.clone(),
                t: 1_234,
                v: 2.0,
                h: None,
            }]),
            Vec::new(),
        )
        .await;
        assert_eq!(
            v["data"],
            json!({"resultType": "vector", "result": [
                {"metric": {"__name__": "up", "job": "a\"b\\c\n"}, "value": [1.234, "2"]}]})
        );
        assert!(v.get("warnings").is_none());
        // Native histograms: `histogram` and `histograms` in Prometheus'
        // shape, populated buckets only, the zero bucket closed.
        let h = std::sync::Arc::new(FloatHistogram {
            schema: 0,
            zero_threshold: 0.001,
            zero_count: 2.0,
            count: 6.0,
            sum: 5.0,
            positive: vec![(0, 1.0), (1, 0.0), (2, 3.0)],
            ..FloatHistogram::default()
        });
        let want = json!({"count": "6", "sum": "5", "buckets": [
            [3, "-0.001", "0.001", "2"], [0, "0.5", "1", "1"], [0, "2", "4", "3"]]});
        let v = body(
            Value::Vector(vec![strata_query_lang::promql::Sample {
                labels: labels.clone(),
                t: 1_000,
                v: 0.0,
                h: Some(std::sync::Arc::clone(&h)),
            }]),
            Vec::new(),
        )
        .await;
        assert_eq!(
            v["data"]["result"][0]["histogram"],
            json!([1, want.clone()])
        );
        assert!(v["data"]["result"][0].get("value").is_none());
        let m = body(
            Value::Matrix(vec![strata_query_lang::promql::Series {
                labels,
                points: Vec::new(),
                histograms: vec![(1_000, h)],
            }]),
            Vec::new(),
        )
        .await;
        assert_eq!(m["data"]["result"][0]["histograms"], json!([[1, want]]));
        assert!(m["data"]["result"][0].get("values").is_none());
        let s = body(Value::Scalar { t: 5_000, v: 0.25 }, Vec::new()).await;
        assert_eq!(
            s["data"],
            json!({"resultType": "scalar", "result": [5, "0.25"]})
        );
        let s = body(
            Value::String {
                t: 5_000,
                s: "x".into(),
            },
            Vec::new(),
        )
        .await;
        assert_eq!(
            s["data"],
            json!({"resultType": "string", "result": [5, "x"]})
        );
    }

    #[test]
    fn times_and_durations() {
        assert_eq!(parse_time("1435781451.781"), Ok(1_435_781_451_781));
        assert_eq!(
            parse_time("2015-07-01T20:10:51.781Z"),
            Ok(1_435_781_451_781)
        );
        assert!(parse_time("yesterday").is_err());
        assert_eq!(parse_duration("15"), Ok(15_000));
        assert_eq!(parse_duration("0.5"), Ok(500));
        assert_eq!(parse_duration("1h30m"), Ok(5_400_000));
        assert_eq!(parse_duration("0s"), Ok(0));
        assert!(parse_duration("-1").is_err());
    }

    #[test]
    fn escaped_label_names() {
        assert_eq!(unescape_label_name("job").ok(), Some("job".into()));
        assert_eq!(
            unescape_label_name("U__http_2e_status__code").ok(),
            Some("http.status_code".into())
        );
        assert_eq!(
            unescape_label_name("U__bad_zz_").ok(),
            Some("U__bad_zz_".into())
        );
        assert_eq!(unescape_label_name("U__a__b").ok(), Some("a_b".into()));
    }
}
