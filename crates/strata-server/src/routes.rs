//! The router and request accounting.

mod analytics;
mod cardinality;
mod logs_write;
mod loki;
mod ops;
mod prom;
mod prom_exemplars;
mod prom_numbers;
mod remote_read;
mod ruler_config;
mod rules;
mod specs;
mod sql;
mod ui;
mod write;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use strata_analytics::capacity::CapacitySpec;
use strata_analytics::neighbours::NeighbourSpec;
use strata_analytics::slo::SloSpec;

use crate::AppState;

/// Every route the server answers.
pub fn router(state: Arc<AppState>) -> Router {
    let body_limit = usize::try_from(state.config.limits.max_request_size.0).unwrap_or(usize::MAX);
    Router::new()
        .route("/api/v1/write", post(write::remote_write))
        .route("/api/v1/push", post(write::remote_write))
        .route("/api/v1/read", post(remote_read::remote_read))
        .route("/api/v1/sql", post(sql::sql))
        .route("/loki/api/v1/push", post(logs_write::loki_push))
        .route("/v1/metrics", post(write::otlp_metrics))
        .route("/otlp/v1/metrics", post(write::otlp_metrics))
        .route("/api/v1/otlp/v1/metrics", post(write::otlp_metrics))
        .route("/v1/logs", post(logs_write::otlp_logs))
        .route("/otlp/v1/logs", post(logs_write::otlp_logs))
        .route("/api/v1/logs", post(logs_write::ndjson))
        .route(
            "/loki/api/v1/query_range",
            get(loki::query_range).post(loki::query_range),
        )
        .route("/loki/api/v1/query", get(loki::query).post(loki::query))
        .route("/loki/api/v1/labels", get(loki::labels).post(loki::labels))
        .route(
            "/loki/api/v1/label/{name}/values",
            get(loki::label_values).post(loki::label_values),
        )
        .route("/loki/api/v1/series", get(loki::series).post(loki::series))
        .route(
            "/loki/api/v1/index/stats",
            get(loki::index_stats).post(loki::index_stats),
        )
        .route(
            "/loki/api/v1/index/volume",
            get(loki::index_volume).post(loki::index_volume),
        )
        .route(
            "/loki/api/v1/index/volume_range",
            get(loki::index_volume_range).post(loki::index_volume_range),
        )
        .route("/loki/api/v1/status/buildinfo", get(loki::buildinfo))
        .route(
            "/loki/api/v1/detected_labels",
            get(loki::detected_labels).post(loki::detected_labels),
        )
        .route(
            "/loki/api/v1/detected_fields",
            get(loki::detected_fields).post(loki::detected_fields),
        )
        .route(
            "/loki/api/v1/detected_field/{name}/values",
            get(loki::detected_field_values).post(loki::detected_field_values),
        )
        .route(
            "/loki/api/v1/patterns",
            get(loki::patterns).post(loki::patterns),
        )
        .route("/loki/api/v1/drilldown-limits", get(loki::drilldown_limits))
        .route("/loki/api/v1/tail", get(loki::tail))
        .route("/api/v1/query", get(prom::query).post(prom::query))
        .route(
            "/api/v1/query_range",
            get(prom::query_range).post(prom::query_range),
        )
        .route("/api/v1/series", get(prom::series).post(prom::series))
        .route("/api/v1/labels", get(prom::labels).post(prom::labels))
        .route("/api/v1/label/{name}/values", get(prom::label_values))
        .route("/api/v1/metadata", get(prom::metadata))
        .route("/api/v1/status/buildinfo", get(prom::buildinfo))
        .route(
            "/api/v1/query_exemplars",
            get(prom_exemplars::query_exemplars).post(prom_exemplars::query_exemplars),
        )
        // Mimir's ruler API where mimirtool calls it, and again where a data
        // source whose URL is the server's root does. (Routes are written out
        // literally: the front-door test reads them from this file.)
        .route("/prometheus/config/v1/rules", get(ruler_config::list_all))
        .route(
            "/prometheus/config/v1/rules/{namespace}",
            get(ruler_config::list_namespace)
                .post(ruler_config::set_group)
                .delete(ruler_config::delete_namespace),
        )
        .route(
            "/prometheus/config/v1/rules/{namespace}/{group}",
            get(ruler_config::get_group).delete(ruler_config::delete_group),
        )
        .route("/config/v1/rules", get(ruler_config::list_all))
        .route(
            "/config/v1/rules/{namespace}",
            get(ruler_config::list_namespace)
                .post(ruler_config::set_group)
                .delete(ruler_config::delete_namespace),
        )
        .route(
            "/config/v1/rules/{namespace}/{group}",
            get(ruler_config::get_group).delete(ruler_config::delete_group),
        )
        .route("/api/v1/rules", get(rules::rules))
        .route("/api/v1/alerts", get(rules::alerts))
        .route(
            "/api/v1/format_query",
            get(prom::format_query).post(prom::format_query),
        )
        .route(
            "/api/v1/cardinality/label_names",
            get(cardinality::label_names),
        )
        .route(
            "/api/v1/cardinality/label_values",
            get(cardinality::label_values),
        )
        .route("/api/v1/slo", get(analytics::list::<SloSpec>))
        .route("/api/v1/slo/{name}", get(analytics::one::<SloSpec>))
        .route("/api/v1/slo/{name}/rules", get(analytics::slo_rules))
        .route("/api/v1/capacity", get(analytics::list::<CapacitySpec>))
        .route(
            "/api/v1/capacity/{name}",
            get(analytics::one::<CapacitySpec>),
        )
        .route("/api/v1/neighbours", get(analytics::list::<NeighbourSpec>))
        .route("/api/v1/neighbours/usage", get(analytics::neighbours_usage))
        .route(
            "/api/v1/neighbours/{name}",
            get(analytics::one::<NeighbourSpec>),
        )
        .route("/api/v1/specs", get(specs::list))
        .route(
            "/api/v1/specs/{kind}/{name}",
            axum::routing::put(specs::put).delete(specs::delete),
        )
        .route("/api/v1/admin/flush", post(ops::flush))
        .route(
            "/api/v1/internal/head-stream",
            get(crate::replication::head_stream),
        )
        .route(
            "/api/v1/internal/live-series",
            get(crate::peers::live_series),
        )
        .route("/api/v1/internal/write", post(write::internal_write))
        .route(
            "/api/v1/internal/rules-changed",
            post(ruler_config::rules_changed),
        )
        .route("/api/v1/status/session", get(ui::session))
        .route("/api/v1/status/tenants", get(ui::tenants))
        .route("/", get(ui::index))
        .route("/ui/{file}", get(ui::file))
        .route("/favicon.ico", get(ui::favicon))
        .route("/-/healthy", get(ops::healthy))
        .route("/-/ready", get(ops::ready))
        .route("/metrics", get(ops::metrics))
        // Every request needs a valid token when auth is on, decided here
        // for all routes rather than by each handler (which then checks the
        // role and tenant); only `PUBLIC_ROUTES` answer without one.
        .layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            authenticated,
        ))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn_with_state(Arc::clone(&state), track))
        .with_state(state)
}

/// The routes that answer without a token when auth is on (and the UI's
/// assets, [`is_public`]).
pub const PUBLIC_ROUTES: [&str; 3] = ["/-/healthy", "/-/ready", "/metrics"];

/// Whether `path` answers without a token: the public routes, and the web
/// UI's page and assets (which hold no data; the page asks for a token).
pub fn is_public(path: &str) -> bool {
    PUBLIC_ROUTES.contains(&path) || ui::ASSETS.contains(&path)
}

/// Refuses a request without valid credentials (401) when auth is on.
async fn authenticated(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    use axum::response::IntoResponse;
    let path = req.uri().path();
    if is_public(path) {
        return next.run(req).await;
    }
    // The 401 in the protocol's own shape, as the handler would answer.
    let shape = crate::frontend::shape_for(path, req.headers());
    match state.auth.authenticate(req.headers(), shape) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

/// The request id header: taken from the client when it sends a sane
/// one (a proxy's), else made here; echoed on the response.
const REQUEST_ID: &str = "x-request-id";

/// The client's request id if it is short printable ASCII, else a new one.
fn request_id(req: &Request) -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    req.headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(
            || {
                let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                format!("{:x}-{n:x}", std::process::id())
            },
            str::to_owned,
        )
}

/// Runs every request in a tracing span carrying its route, method and
/// request id, and the tenant once a handler has resolved it (see
/// `frontend::Caller`), so every log line a request causes names them;
/// counts requests and their latency by route, method and status.
async fn track(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    use tracing::Instrument;
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().as_str().to_owned();
    let id = request_id(&req);
    let span = tracing::info_span!(
        "request",
        id = %id,
        method = %method,
        route = %route,
        tenant = tracing::field::Empty,
    );
    let started = Instant::now();
    let mut resp = next.run(req).instrument(span.clone()).await;
    if let Ok(v) = axum::http::HeaderValue::from_str(&id) {
        resp.headers_mut().insert(REQUEST_ID, v);
    }
    span.in_scope(|| {
        tracing::debug!(
            status = resp.status().as_u16(),
            ms = started.elapsed().as_secs_f64() * 1e3,
            "request done"
        );
    });
    let code = resp.status().as_u16().to_string();
    state
        .metrics
        .http_duration
        .get_or_create(&vec![("route", route.clone()), ("code", code.clone())])
        .observe(started.elapsed().as_secs_f64());
    state
        .metrics
        .http_requests
        .get_or_create(&vec![("route", route), ("method", method), ("code", code)])
        .inc();
    resp
}

#[cfg(test)]
mod tests;
