//! The web UI (docs/UI.md): its page and assets, embedded in the binary
//! at build time (no network at run time), and the two status calls only
//! it needs — who the session is, and each tenant's standing against its
//! limits and storage. The assets carry no data: they answer without a
//! token, and every call the page makes carries the token the user gave.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;
use strata_storage::{DataFile, Signal};
use strata_types::TenantId;

use crate::AppState;
use crate::error::{ApiError, Shape};

const INDEX: &str = include_str!("../../ui/index.html");
const APP_JS: &str = include_str!("../../ui/app.js");
const CHART_JS: &str = include_str!("../../ui/chart.js");
const APP_CSS: &str = include_str!("../../ui/app.css");
const ICON: &str = include_str!("../../ui/icon.svg");

/// The UI's files by the paths they are served at (the page is `/`).
pub const ASSETS: [&str; 6] = [
    "/",
    "/ui/app.js",
    "/ui/chart.js",
    "/ui/app.css",
    "/ui/icon.svg",
    "/favicon.ico",
];

/// Assets change with the binary: a browser checks each load (`no-cache`
/// revalidates, it does not mean "don't store").
fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

/// `GET /favicon.ico`: the icon, for browsers that ask before reading the
/// page's `<link rel="icon">`.
pub(super) async fn favicon() -> Response {
    asset("image/svg+xml", ICON)
}

/// `GET /`: the page.
pub(super) async fn index() -> Response {
    let mut r = asset("text/html; charset=utf-8", INDEX);
    // The page runs only its own scripts and calls only this server.
    r.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'",
        ),
    );
    r
}

/// `GET /ui/<file>`: a script or the style sheet.
pub(super) async fn file(Path(name): Path<String>) -> Response {
    match name.as_str() {
        "app.js" => asset("text/javascript; charset=utf-8", APP_JS),
        "chart.js" => asset("text/javascript; charset=utf-8", CHART_JS),
        "app.css" => asset("text/css; charset=utf-8", APP_CSS),
        "icon.svg" => asset("image/svg+xml", ICON),
        _ => (StatusCode::NOT_FOUND, "no such file\n").into_response(),
    }
}

/// `GET /api/v1/status/session`: whether auth is on, and the token's
/// name, tenant and roles; the tenants the UI may offer (with auth on, the
/// token's own; with auth off, every tenant holding data); the usage
/// tenant's name.
pub(super) async fn session(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let usage_tenant = &state.config.slo.usage_tenant;
    let data = match state.auth.whoami(&headers, Shape::Json)? {
        Some((name, tenant, roles)) => json!({
            "auth": true,
            "token": name,
            "tenant": tenant.as_str(),
            "roles": roles,
            "tenants": [tenant.as_str()],
            "usage_tenant": usage_tenant,
        }),
        None => {
            let mut tenants: Vec<String> = state
                .storage
                .tenants()
                .into_iter()
                .map(|t| t.as_str().to_owned())
                .collect();
            let default = TenantId::default_tenant().as_str().to_owned();
            if !tenants.contains(&default) {
                tenants.insert(0, default.clone());
            }
            json!({
                "auth": false,
                "tenant": default,
                "roles": ["read", "write", "admin", "operator"],
                "tenants": tenants,
                "usage_tenant": usage_tenant,
            })
        }
    };
    Ok(axum::Json(json!({"status": "success", "data": data})).into_response())
}

#[derive(Debug, Default, Serialize)]
struct Level {
    files: usize,
    bytes: u64,
    rows: u64,
}

#[derive(Debug, Default, Serialize)]
struct Stored {
    files: usize,
    bytes: u64,
    rows: u64,
    /// By compaction level: `flush`, `hour`, `day`.
    levels: BTreeMap<&'static str, Level>,
    oldest_ms: Option<i64>,
    newest_ms: Option<i64>,
    /// How long the oldest hour waiting for its merge has waited.
    compaction_lag_seconds: Option<f64>,
}

fn stored(state: &AppState, tenant: &TenantId, signal: Signal, files: &[DataFile]) -> Stored {
    let mut s = Stored::default();
    for f in files {
        s.files += 1;
        s.bytes += f.size;
        s.rows += f.stats.rows;
        let level = s.levels.entry(f.path.level.as_str()).or_default();
        level.files += 1;
        level.bytes += f.size;
        level.rows += f.stats.rows;
        if f.stats.rows > 0 {
            s.oldest_ms = Some(
                s.oldest_ms
                    .map_or(f.stats.min_ts_ms, |m| m.min(f.stats.min_ts_ms)),
            );
            s.newest_ms = Some(
                s.newest_ms
                    .map_or(f.stats.max_ts_ms, |m| m.max(f.stats.max_ts_ms)),
            );
        }
    }
    s.compaction_lag_seconds = state
        .storage
        .compaction_lag(tenant, signal)
        .map(|d| d.as_secs_f64());
    s
}

/// `GET /api/v1/status/tenants`: each tenant's limits and where it stands
/// against them (live series and streams, refusals by limit), what it
/// sent and asked since start, what it stores (files, bytes and rows per
/// level, the compaction lag), its retention and legal hold; and the
/// server's WAL. A tenant admin sees its own tenant; an operator (or
/// anybody with auth off) every tenant.
pub(super) async fn tenants(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let scope = state.auth.admin_scope(&headers, Shape::Json)?;
    let tenants: Vec<TenantId> = match &scope {
        Some(t) => vec![t.clone()],
        None => state.storage.tenants().into_iter().collect(),
    };
    let retention = &state.config.retention;
    let mut out = Vec::with_capacity(tenants.len());
    for tenant in &tenants {
        let limits = state.limits.of(tenant);
        let (live_series, live_streams) = state.limits.live_counts(tenant);
        let usage = state.query.usage().get(tenant);
        let metrics = state.storage.view(tenant);
        let logs = state.storage.log_view(tenant);
        // Over the heads queries read (on a querier, its mirrors of the
        // ingesters'), each series or stream once.
        let head_series = match metrics.heads.as_slice() {
            [one] => one.series_count(),
            heads => heads
                .iter()
                .flat_map(|h| h.series_metrics().into_iter().map(|(id, _)| id))
                .collect::<std::collections::HashSet<_>>()
                .len(),
        };
        let head_streams = match logs.heads.as_slice() {
            [one] => one.stream_count(),
            heads => heads
                .iter()
                .flat_map(|h| h.stream_ids())
                .collect::<std::collections::HashSet<_>>()
                .len(),
        };
        out.push(json!({
            "tenant": tenant.as_str(),
            "limits": limits,
            "head_series": head_series,
            "head_streams": head_streams,
            "live_series": live_series,
            "live_streams": live_streams,
            "samples_ingested": usage.samples_ingested,
            "bytes_ingested": usage.bytes_ingested,
            "log_entries_ingested": usage.log_entries_ingested,
            "log_bytes_ingested": usage.log_bytes_ingested,
            "queries": usage.queries,
            "query_seconds": usage.query_seconds,
            "rejected": usage.rejected,
            "metrics": stored(&state, tenant, Signal::Metrics, &metrics.files),
            "logs": stored(&state, tenant, Signal::Logs, &logs.files),
            "retention": {
                "period_seconds": retention.period_for(tenant.as_str()).map(|d| d.as_secs()),
                "legal_hold": retention.legal_hold(tenant.as_str()),
            },
        }));
    }
    let wal = state.wal().map(|w| {
        let s = w.stats();
        json!({
            "bytes": s.bytes,
            "segments": s.segments,
            "last_seq": s.last_seq.map(|q| q.0),
            "poisoned": s.poisoned,
        })
    });
    let data = json!({
        "tenants": out,
        // Server-wide: only for who sees every tenant.
        "wal": if scope.is_none() { wal } else { None },
    });
    Ok(axum::Json(json!({"status": "success", "data": data})).into_response())
}
