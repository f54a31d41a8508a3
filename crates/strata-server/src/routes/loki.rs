//! The Loki query API Grafana's Loki data source calls (see
//! shared/conformance/protocols, section (d)): `query_range`, `query`,
//! `labels`, `label/<name>/values`, `series`, `index/stats`,
//! `index/volume`, `index/volume_range` and `status/buildinfo`, answering from the tenant's log
//! heads and files through LogQL; Logs Drilldown's endpoints
//! ([`drilldown`]) and `tail` ([`tail`]) beside it.
//!
//! Times are Unix nanoseconds (up to ten digits: seconds), float seconds
//! or RFC 3339; errors are plain text, as Loki sends them.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value as Json, json};
use strata_query_lang::logql::ast::{AggOp, Grouping, RangeFn};
use strata_query_lang::logql::{
    self, Direction, EvalError, Labels, LogExpr, MatchOp, MetricExpr, Options, OutStream, Query,
    Series, StreamMatcher, Value,
};
use strata_types::{ErrorKind, TenantId};

use super::prom::Params;
use crate::AppState;
use crate::error::{ApiError, Shape};
use crate::frontend::Caller;

mod drilldown;
mod tail;
pub(super) use drilldown::{
    detected_field_values, detected_fields, detected_labels, drilldown_limits, patterns,
};
pub(super) use tail::tail;

const SHAPE: Shape = Shape::PlainText;
const NS: i64 = 1_000_000_000;

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorKind::BadInput, message, SHAPE)
}

fn from_eval(e: EvalError) -> ApiError {
    let kind = match e {
        EvalError::Invalid(_) | EvalError::Pipeline { .. } => ErrorKind::BadInput,
        EvalError::TooManyEntries { .. } | EvalError::TooManySeries { .. } => {
            ErrorKind::Unprocessable
        }
        EvalError::Source(_) => ErrorKind::Internal,
    };
    ApiError::new(kind, e.to_string(), SHAPE)
}

fn now_ns() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}

/// Loki's time parameter: float seconds, integer seconds (≤ 10 digits) or
/// nanoseconds, or RFC 3339.
fn parse_time(v: &str) -> Result<i64, String> {
    let v = v.trim();
    if v.contains('.')
        && let Ok(f) = v.parse::<f64>()
    {
        return Ok((f * NS as f64) as i64);
    }
    match v.parse::<i64>() {
        Ok(n) if v.trim_start_matches('-').len() <= 10 => Ok(n.saturating_mul(NS)),
        Ok(n) => Ok(n),
        Err(_) => chrono::DateTime::parse_from_rfc3339(v)
            .ok()
            .and_then(|t| t.timestamp_nanos_opt())
            .ok_or_else(|| format!("cannot parse {v:?} as a time")),
    }
}

/// A step or `since`: a duration (`15s`, `1m30s`) or float seconds, in ns.
fn parse_step(v: &str) -> Result<i64, String> {
    if let Ok(f) = v.trim().parse::<f64>() {
        return Ok((f * NS as f64) as i64);
    }
    logql::parse_duration(v.trim())
        .and_then(|d| i64::try_from(d.as_nanos()).ok())
        .ok_or_else(|| format!("cannot parse {v:?} as a duration"))
}

fn time(params: &Params, name: &str, default: i64) -> Result<i64, ApiError> {
    params.get(name).map_or(Ok(default), |v| {
        parse_time(v).map_err(|e| bad(format!("invalid parameter {name}: {e}")))
    })
}

/// `start`/`end`/`since` as Loki reads them: end defaults to now, start
/// to `end - since` (since defaults to one hour).
fn range(params: &Params) -> Result<(i64, i64), ApiError> {
    let end = time(params, "end", now_ns())?;
    let since = match params.get("since") {
        Some(s) => parse_step(s).map_err(|e| bad(format!("invalid parameter since: {e}")))?,
        None => 3600 * NS,
    };
    let start = time(params, "start", end.saturating_sub(since))?;
    if end < start {
        return Err(bad("end timestamp must not be before start time"));
    }
    Ok((start, end))
}

fn envelope(data: Json) -> Response {
    axum::Json(json!({"status": "success", "data": data})).into_response()
}

fn reply(result: Result<Response, ApiError>) -> Response {
    result.unwrap_or_else(IntoResponse::into_response)
}

fn labels_json(labels: &Labels) -> Json {
    Json::Object(
        labels
            .iter()
            .map(|(k, v)| (k.clone(), Json::String(v.clone())))
            .collect(),
    )
}

fn seconds(ns: i64) -> Json {
    // Loki answers sample times as float seconds.
    json!(ns as f64 / NS as f64)
}

fn value_text(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{v}")
    }
}

fn streams_json(streams: Vec<OutStream>) -> Json {
    Json::Array(
        streams
            .into_iter()
            .map(|s| {
                json!({
                    "stream": labels_json(&s.labels),
                    "values": s.entries.into_iter()
                        .map(|(ts, line)| json!([ts.to_string(), line]))
                        .collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}

fn matrix_json(series: Vec<Series>) -> Json {
    Json::Array(
        series
            .into_iter()
            .map(|s| {
                json!({
                    "metric": labels_json(&s.labels),
                    "values": s.points.into_iter()
                        .map(|(t, v)| json!([seconds(t), value_text(v)]))
                        .collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}

fn vector_json(series: Vec<Series>) -> Json {
    Json::Array(
        series
            .into_iter()
            .filter_map(|s| {
                let (t, v) = *s.points.last()?;
                Some(
                    json!({"metric": labels_json(&s.labels), "value": [seconds(t), value_text(v)]}),
                )
            })
            .collect(),
    )
}

fn stats(started: Instant, entries: usize) -> Json {
    let secs = started.elapsed().as_secs_f64();
    json!({"summary": {"execTime": secs, "totalEntriesReturned": entries}})
}

fn parse_query(params: &Params) -> Result<Query, ApiError> {
    let q = params
        .get("query")
        .ok_or_else(|| bad("missing parameter query"))?;
    logql::parse(q).map_err(|e| bad(e.to_string()))
}

/// Runs `f` with the tenant's query slot and fair-scheduler turn, under
/// the query timeout.
async fn run<T>(
    state: &Arc<AppState>,
    tenant: &TenantId,
    f: impl std::future::Future<Output = Result<T, ApiError>>,
) -> Result<T, ApiError> {
    let _admitted = state.admit(tenant, "logql", SHAPE).await?;
    tokio::time::timeout(state.config.promql.timeout, f)
        .await
        .map_err(|_| ApiError::new(ErrorKind::Timeout, "query timed out", SHAPE))?
}

/// Entries one LogQL query may read without a tenant limit: a log query
/// holds what it reads until it sorts and limits, so this bounds its
/// memory (about 1 GiB of typical lines).
const DEFAULT_MAX_ENTRIES: usize = 5_000_000;

fn options(state: &AppState, tenant: &TenantId) -> Options {
    let tenant_max = state.limits.of(tenant).max_query_samples;
    let max = state.config.promql.max_samples.min(DEFAULT_MAX_ENTRIES);
    Options {
        max_entries: if tenant_max > 0 {
            tenant_max.min(state.config.promql.max_samples)
        } else {
            max
        },
        max_series: state.limits.of(tenant).max_query_series,
    }
}

fn source(
    state: &AppState,
    tenant: &TenantId,
) -> Result<strata_query::logql::LogQlSource, ApiError> {
    state
        .query
        .logql_source(tenant)
        .map_err(|e| ApiError::new(e.kind(), e.to_string(), SHAPE))
}

/// `GET|POST /loki/api/v1/query_range`.
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
            let query = parse_query(&params)?;
            let (start, end) = range(&params)?;
            let limit = limit(&params)?;
            let direction = direction(&params)?;
            let started = Instant::now();
            let opts = options(&state, &tenant);
            let src = source(&state, &tenant)?;
            run(&state, &tenant, async {
                Ok(match query {
                    Query::Log(expr) => {
                        // The end is exclusive for logs.
                        let streams =
                            logql::eval_log(&src, &expr, start, end, limit, direction, &opts)
                                .await
                                .map_err(from_eval)?;
                        let n = streams.iter().map(|s| s.entries.len()).sum();
                        envelope(json!({
                            "resultType": "streams",
                            "result": streams_json(streams),
                            "stats": stats(started, n),
                        }))
                    }
                    Query::Metric(expr) => {
                        let step = metric_step(&params, start, end)?;
                        metric_response(&src, &expr, start, end, step, &opts, started, true).await?
                    }
                })
            })
            .await
        }
        .await,
    )
}

/// A metric query's `step`: as given (positive), else Loki's default of
/// about 250 points, at least 1s.
fn metric_step(params: &Params, start: i64, end: i64) -> Result<i64, ApiError> {
    let step = match params.get("step") {
        Some(s) => parse_step(s).map_err(|e| bad(format!("invalid parameter step: {e}")))?,
        None => ((end - start) / 250).max(NS),
    };
    if step <= 0 {
        return Err(bad(
            "zero or negative query resolution step widths are not accepted. Try a positive integer",
        ));
    }
    Ok(step)
}

#[allow(clippy::too_many_arguments)]
async fn metric_response(
    src: &strata_query::logql::LogQlSource,
    expr: &MetricExpr,
    start: i64,
    end: i64,
    step: i64,
    opts: &Options,
    started: Instant,
    matrix: bool,
) -> Result<Response, ApiError> {
    let value = logql::eval_metric(src, expr, start, end, step, opts)
        .await
        .map_err(from_eval)?;
    Ok(match value {
        Value::Scalar(v) => envelope(json!({
            "resultType": "scalar",
            "result": [seconds(end), value_text(v)],
            "stats": stats(started, 0),
        })),
        Value::Series(series) if matrix => envelope(json!({
            "resultType": "matrix",
            "result": matrix_json(series),
            "stats": stats(started, 0),
        })),
        Value::Series(series) => envelope(json!({
            "resultType": "vector",
            "result": vector_json(series),
            "stats": stats(started, 0),
        })),
    })
}

/// `GET|POST /loki/api/v1/query`: metric queries at one time.
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
            let Query::Metric(expr) = parse_query(&params)? else {
                return Err(bad(
                    "log queries are not supported as an instant query type, please change your query to a range query type",
                ));
            };
            let t = time(&params, "time", now_ns())?;
            let started = Instant::now();
            let opts = options(&state, &tenant);
            let src = source(&state, &tenant)?;
            run(&state, &tenant, async {
                metric_response(&src, &expr, t, t, NS, &opts, started, false).await
            })
            .await
        }
        .await,
    )
}

fn limit(params: &Params) -> Result<usize, ApiError> {
    match params.get("limit") {
        None => Ok(100),
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| bad(format!("invalid parameter limit: {v:?}"))),
    }
}

fn direction(params: &Params) -> Result<Direction, ApiError> {
    match params
        .get("direction")
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("backward") => Ok(Direction::Backward),
        Some("forward") => Ok(Direction::Forward),
        Some(other) => Err(bad(format!(
            "invalid parameter direction: {other:?} (forward or backward)"
        ))),
    }
}

/// The matchers of an optional `query` stream selector.
fn selector(q: Option<&str>) -> Result<Vec<StreamMatcher>, ApiError> {
    let Some(q) = q else {
        return Ok(Vec::new());
    };
    match logql::parse(q).map_err(|e| bad(e.to_string()))? {
        Query::Log(e) => Ok(e.matchers),
        Query::Metric(_) => Err(bad("expected a stream selector")),
    }
}

/// `GET|POST /loki/api/v1/labels`.
pub(super) async fn labels(
    State(state): State<Arc<AppState>>,
    Caller { tenant, .. }: Caller,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    label_values_of(state, tenant, headers, raw, body, None).await
}

/// `GET|POST /loki/api/v1/label/<name>/values`.
pub(super) async fn label_values(
    State(state): State<Arc<AppState>>,
    Caller { tenant, .. }: Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    label_values_of(state, tenant, headers, raw, body, Some(name)).await
}

async fn label_values_of(
    state: Arc<AppState>,
    tenant: TenantId,
    headers: HeaderMap,
    raw: Option<String>,
    body: Bytes,
    name: Option<String>,
) -> Response {
    reply(
        async {
            let params = Params::new(raw, &headers, &body);
            let (start, end) = range(&params)?;
            let matchers = selector(params.get("query"))?;
            let src = source(&state, &tenant)?;
            let values = run(&state, &tenant, async {
                src.label_values(name.as_deref(), &matchers, start, end.saturating_add(1))
                    .await
                    .map_err(from_eval)
            })
            .await?;
            Ok(envelope(json!(values)))
        }
        .await,
    )
}

/// `GET|POST /loki/api/v1/series`.
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
            let (start, end) = range(&params)?;
            let mut selectors = params.all("match[]");
            if selectors.is_empty() {
                selectors = params.all("match");
            }
            let selectors: Vec<Vec<StreamMatcher>> = selectors
                .into_iter()
                .map(|s| selector(Some(s)))
                .collect::<Result<_, _>>()?;
            let src = source(&state, &tenant)?;
            let out = run(&state, &tenant, async {
                let mut all: Vec<Vec<(String, String)>> = Vec::new();
                let lists = if selectors.is_empty() {
                    vec![Vec::new()]
                } else {
                    selectors
                };
                for m in &lists {
                    for s in src
                        .streams(m, &[], start, end.saturating_add(1), false)
                        .await
                        .map_err(from_eval)?
                    {
                        all.push(s.labels);
                    }
                }
                all.sort();
                all.dedup();
                Ok(all)
            })
            .await?;
            Ok(envelope(Json::Array(
                out.into_iter()
                    .map(|l| {
                        Json::Object(l.into_iter().map(|(k, v)| (k, Json::String(v))).collect())
                    })
                    .collect(),
            )))
        }
        .await,
    )
}

/// What `index/stats` and `index/volume` read: the request's end, the
/// matchers of its `query` and the counts of the streams they select in
/// its range.
async fn selected_stats(
    state: &Arc<AppState>,
    tenant: &TenantId,
    params: &Params,
) -> Result<
    (
        i64,
        Vec<StreamMatcher>,
        Vec<strata_query::logql::StreamStats>,
    ),
    ApiError,
> {
    let (start, end) = range(params)?;
    let matchers = selector(params.get("query"))?;
    let src = source(state, tenant)?;
    let streams = run(state, tenant, async {
        src.stream_stats(&matchers, start, end.saturating_add(1))
            .await
            .map_err(from_eval)
    })
    .await?;
    Ok((end, matchers, streams))
}

/// `GET|POST /loki/api/v1/index/stats`: streams, entries and bytes a
/// selector covers (Grafana's query size estimate). `chunks` counts the
/// data files and heads read.
pub(super) async fn index_stats(
    State(state): State<Arc<AppState>>,
    Caller { tenant, .. }: Caller,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    reply(
        async {
            let params = Params::new(raw, &headers, &body);
            let (_, _, streams) = selected_stats(&state, &tenant, &params).await?;
            let entries: u64 = streams.iter().map(|s| s.1).sum();
            let bytes: u64 = streams.iter().map(|s| s.2).sum();
            Ok(axum::Json(json!({
                "streams": streams.len(),
                "chunks": streams.len(),
                "entries": entries,
                "bytes": bytes,
            }))
            .into_response())
        }
        .await,
    )
}

/// `GET|POST /loki/api/v1/index/volume`: bytes per stream (or per
/// `targetLabels` / the selector's labels, `aggregateBy=labels`), largest
/// first, as a vector.
pub(super) async fn index_volume(
    State(state): State<Arc<AppState>>,
    Caller { tenant, .. }: Caller,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    reply(
        async {
            let params = Params::new(raw, &headers, &body);
            let (end, matchers, streams) = selected_stats(&state, &tenant, &params).await?;
            let (limit, target) = volume_params(&params, &matchers)?;
            let mut volume: std::collections::BTreeMap<Labels, u64> =
                std::collections::BTreeMap::new();
            for (labels, _, bytes) in streams {
                let key: Labels = labels
                    .into_iter()
                    .filter(|(k, _)| target.is_empty() || target.contains(k))
                    .collect();
                *volume.entry(key).or_default() += bytes;
            }
            let mut rows: Vec<(Labels, u64)> = volume.into_iter().collect();
            rows.sort_by_key(|r| std::cmp::Reverse(r.1));
            rows.truncate(limit);
            Ok(envelope(json!({
                "resultType": "vector",
                "result": rows.into_iter()
                    .map(|(l, b)| json!({"metric": labels_json(&l), "value": [seconds(end), b.to_string()]}))
                    .collect::<Vec<_>>(),
            })))
        }
        .await,
    )
}

/// A volume request's `limit` (100) and the labels it sums by:
/// `targetLabels`, else with `aggregateBy=labels` the selector's `=` and
/// `=~` labels, else none (every stream on its own).
fn volume_params(
    params: &Params,
    matchers: &[StreamMatcher],
) -> Result<(usize, Vec<String>), ApiError> {
    let limit = match params.get("limit") {
        None => 100,
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| bad(format!("invalid parameter limit: {v:?}")))?,
    };
    let target = match params.get("targetLabels") {
        Some(t) => t
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect(),
        None if params.get("aggregateBy") == Some("labels") => matchers
            .iter()
            .filter(|m| matches!(m.op, MatchOp::Equal | MatchOp::Regex))
            .map(|m| m.name.clone())
            .collect(),
        None => Vec::new(),
    };
    Ok((limit, target))
}

/// `GET|POST /loki/api/v1/index/volume_range`: bytes per stream (or per
/// label set, as `index/volume` groups them) in each `step` up to every
/// step's time, as a matrix: the `limit` series of most bytes over the
/// range, largest first. Evaluated as `sum by (…) (bytes_over_time(…))`
/// over the selector.
pub(super) async fn index_volume_range(
    State(state): State<Arc<AppState>>,
    Caller { tenant, .. }: Caller,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    reply(
        async {
            let params = Params::new(raw, &headers, &body);
            let (start, end) = range(&params)?;
            let matchers = selector(params.get("query"))?;
            let (limit, target) = volume_params(&params, &matchers)?;
            let step = metric_step(&params, start, end)?;
            let bytes = MetricExpr::Range {
                func: RangeFn::BytesOverTime,
                log: LogExpr {
                    matchers,
                    pipeline: Vec::new(),
                },
                range: std::time::Duration::from_nanos(step.unsigned_abs()),
                offset: std::time::Duration::ZERO,
                unwrap: None,
                param: None,
                grouping: None,
            };
            let expr = if target.is_empty() {
                bytes
            } else {
                MetricExpr::Aggregate {
                    op: AggOp::Sum,
                    grouping: Some(Grouping::By(target)),
                    param: None,
                    inner: Box::new(bytes),
                }
            };
            let started = Instant::now();
            let opts = options(&state, &tenant);
            let src = source(&state, &tenant)?;
            let value = run(&state, &tenant, async {
                logql::eval_metric(&src, &expr, start, end, step, &opts)
                    .await
                    .map_err(from_eval)
            })
            .await?;
            let mut series = match value {
                Value::Series(s) => s,
                Value::Scalar(_) => Vec::new(),
            };
            let total = |s: &Series| s.points.iter().map(|p| p.1).sum::<f64>();
            series.sort_by(|a, b| total(b).total_cmp(&total(a)));
            series.truncate(limit);
            Ok(envelope(json!({
                "resultType": "matrix",
                "result": matrix_json(series),
                "stats": stats(started, 0),
            })))
        }
        .await,
    )
}

/// `GET /loki/api/v1/status/buildinfo`: the Loki API version Strata
/// answers as (Grafana picks features by it).
pub(super) async fn buildinfo() -> Response {
    axum::Json(json!({
        "version": "3.0.0",
        "revision": env!("CARGO_PKG_VERSION"),
        "branch": "strata",
        "buildUser": "strata",
        "buildDate": "",
        "goVersion": "",
    }))
    .into_response()
}
