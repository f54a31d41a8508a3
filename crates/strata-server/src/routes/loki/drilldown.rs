//! The endpoints Grafana's Logs Drilldown calls besides the query API:
//! `detected_labels`, `detected_fields`, `detected_field/<name>/values`,
//! `patterns` and `drilldown-limits`, in Loki's shapes (the detected ones
//! bare, without Loki's `status`/`data` envelope, as Loki sends them).
//!
//! Fields and patterns are detected on a sample: the newest entries of the
//! range that pass the query's pipeline (`line_limit`, default 1000, for
//! fields; [`PATTERN_LINES`] for patterns), as Loki's querier detects
//! fields on the lines it read.

use std::collections::{BTreeMap, BTreeSet};

use strata_query_lang::logql::detect;

use super::*;

/// Entries patterns are detected on.
const PATTERN_LINES: usize = 50_000;

/// A `usize` parameter with a default, bounded.
fn count(params: &Params, name: &str, default: usize, max: usize) -> Result<usize, ApiError> {
    match params.get(name) {
        None => Ok(default),
        Some(v) => v
            .parse::<usize>()
            .map(|n| n.clamp(1, max))
            .map_err(|_| bad(format!("invalid parameter {name}: {v:?}"))),
    }
}

/// The `query` parameter as a log query (a selector and its pipeline).
fn log_query(params: &Params) -> Result<logql::LogExpr, ApiError> {
    match parse_query(params)? {
        Query::Log(e) => Ok(e),
        Query::Metric(_) => Err(bad(
            "expected a log query, e.g. {service_name=\"x\"} | json",
        )),
    }
}

/// The newest `lines` entries of `[start, end)` that pass the `query`
/// parameter's log query, read in the tenant's query slot.
async fn sample(
    state: &Arc<AppState>,
    tenant: &TenantId,
    params: &Params,
    start: i64,
    end: i64,
    lines: usize,
) -> Result<Vec<(Labels, logql::SourceEntry)>, ApiError> {
    let expr = log_query(params)?;
    let opts = options(state, tenant);
    let src = source(state, tenant)?;
    run(state, tenant, async {
        logql::sample_entries(&src, &expr, start, end, lines, &opts)
            .await
            .map_err(from_eval)
    })
    .await
}

/// `GET /loki/api/v1/detected_labels`: each stream label of the streams
/// the selector matches in the range, with its number of values.
pub(in crate::routes) async fn detected_labels(
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
            let src = source(&state, &tenant)?;
            let streams = run(&state, &tenant, async {
                src.stream_stats(&matchers, start, end.saturating_add(1))
                    .await
                    .map_err(from_eval)
            })
            .await?;
            let mut values: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            for (labels, _, _) in streams {
                for (k, v) in labels {
                    values.entry(k).or_default().insert(v);
                }
            }
            let labels: Vec<Json> = values
                .into_iter()
                .map(|(label, v)| json!({"label": label, "cardinality": v.len()}))
                .collect();
            Ok(axum::Json(json!({ "detectedLabels": labels })).into_response())
        }
        .await,
    )
}

/// `GET /loki/api/v1/detected_fields`: the fields of the sample's lines
/// and structured metadata (name, type, cardinality, parsers, JSON path).
pub(in crate::routes) async fn detected_fields(
    State(state): State<Arc<AppState>>,
    Caller { tenant, .. }: Caller,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    fields_or_values(state, tenant, headers, raw, body, None).await
}

/// `GET /loki/api/v1/detected_field/<name>/values`: one field's values.
pub(in crate::routes) async fn detected_field_values(
    State(state): State<Arc<AppState>>,
    Caller { tenant, .. }: Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    fields_or_values(state, tenant, headers, raw, body, Some(name)).await
}

async fn fields_or_values(
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
            let line_limit = count(&params, "line_limit", 1000, PATTERN_LINES)?;
            let limit = count(&params, "limit", 1000, 100_000)?;
            let entries = sample(&state, &tenant, &params, start, end, line_limit).await?;
            let mut fields = detect::detect_fields(&entries);
            if let Some(name) = name {
                let mut values = fields
                    .into_iter()
                    .find(|f| f.label == name)
                    .map(|f| f.values)
                    .unwrap_or_default();
                values.truncate(limit);
                return Ok(axum::Json(json!({"values": values, "limit": limit})).into_response());
            }
            fields.truncate(limit);
            let fields: Vec<Json> = fields
                .into_iter()
                .map(|f| {
                    let mut o = json!({
                        "label": f.label,
                        "type": f.kind,
                        "cardinality": f.cardinality,
                        "parsers": if f.parsers.is_empty() { Json::Null } else { json!(f.parsers) },
                    });
                    if !f.json_path.is_empty() {
                        o["jsonPath"] = json!(f.json_path);
                    }
                    o
                })
                .collect();
            Ok(axum::Json(json!({"fields": fields, "limit": limit})).into_response())
        }
        .await,
    )
}

/// `GET /loki/api/v1/patterns`: the patterns of the sample's lines, each
/// with its lines per `step` (seconds, count), most frequent first.
pub(in crate::routes) async fn patterns(
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
            let step = match params.get("step") {
                Some(s) => {
                    parse_step(s).map_err(|e| bad(format!("invalid parameter step: {e}")))?
                }
                None => ((end - start) / 300).max(10 * NS),
            };
            if step <= 0 {
                return Err(bad("step must be positive"));
            }
            let entries = sample(&state, &tenant, &params, start, end, PATTERN_LINES).await?;
            let found = detect::patterns(
                entries
                    .iter()
                    .map(|(_, e)| (e.timestamp_ns, e.line.as_str())),
                step,
            );
            let data: Vec<Json> = found
                .into_iter()
                .map(|(pattern, samples)| {
                    let samples: Vec<Json> = samples
                        .into_iter()
                        .map(|(t, n)| json!([t / NS, n]))
                        .collect();
                    json!({"pattern": pattern, "samples": samples})
                })
                .collect();
            Ok(envelope(json!(data)))
        }
        .await,
    )
}

/// `GET /loki/api/v1/drilldown-limits`: the tenant's limits as Logs
/// Drilldown reads them (Loki's names), and that patterns are served.
pub(in crate::routes) async fn drilldown_limits(
    State(state): State<Arc<AppState>>,
    Caller { tenant, .. }: Caller,
) -> Response {
    let l = state.limits.of(&tenant);
    let duration = |d: std::time::Duration| humantime::format_duration(d).to_string();
    let retention = state
        .config
        .retention
        .period_for(tenant.as_str())
        .map_or_else(|| "0s".to_owned(), duration);
    axum::Json(json!({
        "limits": {
            "discover_log_levels": false,
            "discover_service_name": [],
            "log_level_fields": [],
            "max_entries_limit_per_query": options(&state, &tenant).max_entries,
            "max_line_size_truncate": false,
            "max_query_bytes_read": "0B",
            "max_query_length": "0s",
            "max_query_lookback": duration(l.max_query_lookback),
            "max_query_range": "0s",
            "max_query_series": l.max_query_series,
            "metric_aggregation_enabled": false,
            "pattern_persistence_enabled": false,
            "query_timeout": duration(state.config.promql.timeout),
            "retention_period": retention,
            "volume_enabled": true,
            "volume_max_series": 1000,
        },
        "pattern_ingester_enabled": true,
        "version": "3.0.0",
    }))
    .into_response()
}
