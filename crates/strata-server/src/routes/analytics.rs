//! The analytics API, in the Prometheus API envelope, over the asking
//! tenant's data and specs (`slo.file`, docs/SLO.md, docs/CAPACITY.md):
//!
//! - `GET /api/v1/slo[/<name>]`: SLI, error budget left, burn rates and
//!   burn-rate alert states per label set.
//! - `GET /api/v1/capacity[/<name>]`: time-to-exhaustion forecasts of every
//!   capacity spec, ranked by urgency across them; or of one ad-hoc
//!   `usage` query against `limit` (a number or a query), with `lookback`,
//!   `model` (linear, seasonal), `season`, `horizon`, `direction`;
//!   `detail=true` adds each forecast's chart (history, line and band).
//! - `GET /api/v1/neighbours[/<name>]`: shares, baselines and contention
//!   blame per workload; ad hoc with `resource` and `by` (and `window`,
//!   `baseline`, `capacity`, `saturation`); `series=true` adds each
//!   workload's share at every step of the window, and the steps that
//!   saturated the resource.
//! - `GET /api/v1/neighbours/usage`: the same over Strata's own usage
//!   accounting (which tenant loads this database), for tokens of the
//!   usage tenant (`_strata`) when auth is on: `resource` is one of
//!   [`USAGE_RESOURCES`].
//!
//! Every request reads the spec file when asked (edits apply without a
//! restart), takes a query slot like any query and is bounded by the
//! PromQL timeout. `time` evaluates at another instant.

use std::future::Future;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;
use strata_analytics::capacity::{self, CapacitySpec, Direction, Model};
use strata_analytics::neighbours::{self, NeighbourSpec};
use strata_analytics::slo::{self, SloSpec};
use strata_analytics::spec::{Entry, Limit, SpecFile};
use strata_query::promql::PromSource;
use strata_query_lang::promql::Engine;
use strata_types::{ErrorKind, TenantId};

use super::prom::{Params, parse_time};
use crate::AppState;
use crate::auth::Role;
use crate::error::{ApiError, Shape};
use crate::frontend::Caller;

const SHAPE: Shape = Shape::Json;

/// Strata's own usage series, by the name `resource=` takes, as recorded
/// into the usage tenant (`slo.usage_tenant`) by the background loop.
pub(crate) const USAGE_RESOURCES: &[(&str, &str)] = &[
    (
        "query_seconds",
        "rate(strata_tenant_query_seconds_total[5m])",
    ),
    ("queries", "rate(strata_tenant_queries_total[5m])"),
    (
        "query_samples",
        "rate(strata_tenant_query_samples_total[5m])",
    ),
    (
        "samples_ingested",
        "rate(strata_tenant_samples_ingested_total[5m])",
    ),
    (
        "bytes_ingested",
        "rate(strata_tenant_ingested_bytes_total[5m])",
    ),
    (
        "log_bytes_ingested",
        "rate(strata_tenant_log_bytes_ingested_total[5m])",
    ),
    ("active_series", "strata_tenant_active_series"),
    ("stored_bytes", "strata_tenant_stored_bytes"),
];

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorKind::BadInput, message, SHAPE)
}

/// The spec file, read now: edits apply without a restart; a broken edit
/// is reported, never half-applied.
pub(crate) fn specs(state: &AppState) -> Result<SpecFile, ApiError> {
    match &state.config.slo.file {
        None => Ok(SpecFile::default()),
        Some(path) => SpecFile::load(path)
            .map_err(|e| ApiError::new(ErrorKind::Unavailable, e.to_string(), SHAPE)),
    }
}

/// What every analytics request needs: its tenant, parameters, instant,
/// engine and source.
pub(super) struct Ask {
    state: Arc<AppState>,
    tenant: TenantId,
    params: Params,
    t_ms: i64,
    engine: Engine,
    source: PromSource,
}

impl Ask {
    fn new(state: Arc<AppState>, tenant: TenantId, params: Params) -> Result<Ask, ApiError> {
        let t_ms = match params.get("time") {
            Some(v) => {
                parse_time(v).map_err(|e| bad(format!("invalid parameter \"time\": {e}")))?
            }
            None => chrono::Utc::now().timestamp_millis(),
        };
        let engine = state.promql_engine(Some(&tenant), state.config.promql.lookback_delta);
        let source = state
            .query
            .promql_source(&tenant)
            .map_err(|e| ApiError::new(e.kind(), e.to_string(), SHAPE))?;
        Ok(Ask {
            state,
            tenant,
            params,
            t_ms,
            engine,
            source,
        })
    }

    fn for_tenant(
        state: Arc<AppState>,
        tenant: TenantId,
        headers: &HeaderMap,
        raw: Option<String>,
    ) -> Result<Ask, ApiError> {
        let params = Params::new(raw, headers, &Bytes::new());
        Ask::new(state, tenant, params)
    }

    /// SQL SLIs run as the asking tenant.
    fn sql(&self) -> crate::sql_analytics::TenantSql {
        crate::sql_analytics::TenantSql {
            engine: self.state.query.clone(),
            tenant: self.tenant.clone(),
        }
    }

    /// The interval SLO rates are recorded at, when they are.
    fn recorded(&self) -> Option<std::time::Duration> {
        self.state
            .config
            .slo
            .file
            .as_ref()
            .map(|_| self.state.config.slo.evaluation_interval)
    }

    /// The asking tenant's entries of one kind.
    fn mine<T: Entry>(&self) -> Result<Vec<T>, ApiError> {
        Ok(specs(&self.state)?
            .of::<T>(self.tenant.as_str())
            .cloned()
            .collect())
    }

    /// The asking tenant's entry `name` of one kind; 404 without.
    fn named<T: Entry>(&self, name: &str) -> Result<T, ApiError> {
        specs(&self.state)?
            .named::<T>(self.tenant.as_str(), name)
            .cloned()
            .ok_or_else(|| {
                ApiError::new(
                    ErrorKind::NotFound,
                    format!("tenant {} has no {} named {name:?}", self.tenant, T::KIND),
                    SHAPE,
                )
            })
    }

    fn duration(&self, name: &str) -> Result<Option<std::time::Duration>, ApiError> {
        self.params
            .get(name)
            .map(|v| {
                humantime::parse_duration(v)
                    .or_else(|_| {
                        strata_query_lang::promql::parse_duration_ms(v)
                            .map(|ms| std::time::Duration::from_millis(ms.max(0) as u64))
                    })
                    .map_err(|e| bad(format!("invalid parameter \"{name}\": {e}")))
            })
            .transpose()
    }

    fn limit(&self, name: &str) -> Option<Limit> {
        self.params
            .get(name)
            .map(|v| match v.trim().parse::<f64>() {
                Ok(n) => Limit::Number(n),
                Err(_) => Limit::Query(v.to_owned()),
            })
    }

    /// Runs `work` in a query slot, within the PromQL timeout, and answers
    /// its data.
    async fn answer<T: Serialize>(
        &self,
        what: &'static str,
        work: impl Future<Output = Result<T, ApiError>>,
    ) -> Result<Response, ApiError> {
        let _admitted = self.state.admit(&self.tenant, what, SHAPE).await?;
        let started = std::time::Instant::now();
        let out = tokio::time::timeout(self.state.config.promql.timeout, work)
            .await
            .map_err(|_| {
                ApiError::new(
                    ErrorKind::Timeout,
                    format!("{what} evaluation timed out"),
                    SHAPE,
                )
            })??;
        self.state
            .query
            .usage()
            .queried(&self.tenant, started.elapsed().as_secs_f64(), 0);
        Ok(axum::Json(json!({"status": "success", "data": out})).into_response())
    }
}

fn unprocessable(e: impl ToString) -> ApiError {
    ApiError::new(ErrorKind::Unprocessable, e.to_string(), SHAPE)
}

/// One kind of spec the analytics API answers: the ad-hoc spec a request's
/// parameters may describe, what the parameters change in a stored one,
/// and how a list of them is evaluated into the answer.
pub(super) trait Kind: Entry + Sized {
    /// The ad-hoc spec of the request's parameters, if they describe one.
    fn ad_hoc(_ask: &Ask) -> Result<Option<Self>, ApiError> {
        Ok(None)
    }

    /// A stored spec with the request's parameters applied.
    fn with_params(self, _ask: &Ask) -> Result<Self, ApiError> {
        Ok(self)
    }

    fn answer(
        ask: Ask,
        specs: Vec<Self>,
    ) -> impl Future<Output = Result<Response, ApiError>> + Send;
}

/// `GET /api/v1/<kind>`: the ad-hoc spec of the parameters, else every spec
/// of the kind the asking tenant has.
pub(super) async fn list<K: Kind>(
    State(state): State<Arc<AppState>>,
    Caller { tenant, .. }: Caller,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    async {
        let ask = Ask::for_tenant(state, tenant, &headers, raw)?;
        let specs = match K::ad_hoc(&ask)? {
            Some(spec) => vec![spec],
            None => ask.mine()?,
        };
        K::answer(ask, specs).await
    }
    .await
    .unwrap_or_else(IntoResponse::into_response)
}

/// `GET /api/v1/<kind>/<name>`: the asking tenant's spec `name`.
pub(super) async fn one<K: Kind>(
    State(state): State<Arc<AppState>>,
    Caller { tenant, .. }: Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    async {
        let ask = Ask::for_tenant(state, tenant, &headers, raw)?;
        let spec = ask.named::<K>(&name)?.with_params(&ask)?;
        K::answer(ask, vec![spec]).await
    }
    .await
    .unwrap_or_else(IntoResponse::into_response)
}

/// `GET /api/v1/slo/{name}/rules`: the SLO as a Prometheus rule file
/// (YAML), as Sloth or Pyrra would generate it, for any Prometheus-compatible
/// ruler (this one's API included); `?interval=` sets the groups' interval
/// (default: `slo.evaluation_interval`).
pub(super) async fn slo_rules(
    State(state): State<Arc<AppState>>,
    Caller { tenant, .. }: Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    async {
        let every = state.config.slo.evaluation_interval;
        let ask = Ask::for_tenant(state, tenant, &headers, raw)?;
        let spec: SloSpec = ask.named(&name)?;
        let interval = ask.duration("interval")?.unwrap_or(every);
        let file = slo::export::rules(&spec, interval).map_err(|e| bad(e.to_string()))?;
        Ok::<_, ApiError>(
            (
                [(axum::http::header::CONTENT_TYPE, "application/yaml")],
                file.to_yaml(),
            )
                .into_response(),
        )
    }
    .await
    .unwrap_or_else(IntoResponse::into_response)
}

impl Kind for SloSpec {
    async fn answer(ask: Ask, specs: Vec<SloSpec>) -> Result<Response, ApiError> {
        ask.answer("slo", async {
            let mut out = Vec::new();
            for spec in &specs {
                out.extend(
                    slo::evaluate(
                        &ask.engine,
                        &ask.source,
                        spec,
                        ask.t_ms,
                        ask.recorded(),
                        Some(&ask.sql()),
                    )
                    .await
                    .map_err(unprocessable)?,
                );
            }
            Ok(out)
        })
        .await
    }
}

impl Kind for CapacitySpec {
    /// `usage` against `limit`, with `lookback`, `season`, `horizon`,
    /// `model` and `direction`.
    fn ad_hoc(ask: &Ask) -> Result<Option<CapacitySpec>, ApiError> {
        let Some(usage) = ask.params.get("usage") else {
            return Ok(None);
        };
        let limit = ask
            .limit("limit")
            .ok_or_else(|| bad("missing parameter \"limit\" (a number or a PromQL query)"))?;
        let mut spec = CapacitySpec::ad_hoc(usage, limit);
        spec.tenant = ask.tenant.to_string();
        if let Some(d) = ask.duration("lookback")? {
            spec.lookback = d;
        }
        if let Some(d) = ask.duration("season")? {
            spec.season = d;
        }
        if let Some(d) = ask.duration("horizon")? {
            spec.horizon = d;
        }
        spec.model = match ask.params.get("model") {
            None | Some("linear") => Model::Linear,
            Some("seasonal") => Model::Seasonal,
            Some(m) => {
                return Err(bad(format!(
                    "invalid parameter \"model\": {m:?} (linear or seasonal)"
                )));
            }
        };
        spec.direction = match ask.params.get("direction") {
            None | Some("up") => Direction::Up,
            Some("down") => Direction::Down,
            Some(d) => {
                return Err(bad(format!(
                    "invalid parameter \"direction\": {d:?} (up or down)"
                )));
            }
        };
        spec.check().map_err(|e| bad(e.to_string()))?;
        Ok(Some(spec))
    }

    /// Every spec's forecasts, ranked by urgency across them.
    async fn answer(ask: Ask, specs: Vec<CapacitySpec>) -> Result<Response, ApiError> {
        ask.answer("capacity", async {
            // Each forecast's chart only when asked (the UI).
            let detail = ask.params.get("detail") == Some("true");
            let mut out = Vec::new();
            for spec in &specs {
                out.extend(
                    capacity::evaluate(&ask.engine, &ask.source, spec, ask.t_ms, detail)
                        .await
                        .map_err(unprocessable)?,
                );
            }
            capacity::rank(&mut out);
            Ok(out)
        })
        .await
    }
}

impl Kind for NeighbourSpec {
    /// `resource` by `by`, with the parameters of [`Kind::with_params`].
    fn ad_hoc(ask: &Ask) -> Result<Option<NeighbourSpec>, ApiError> {
        match (ask.params.get("resource"), ask.params.get("by")) {
            (Some(resource), Some(by)) => {
                let mut spec = NeighbourSpec::ad_hoc(resource, by);
                spec.tenant = ask.tenant.to_string();
                spec.with_params(ask).map(Some)
            }
            (Some(_), None) => Err(bad(
                "missing parameter \"by\" (the tenant or workload label)",
            )),
            _ => Ok(None),
        }
    }

    /// Applies the request's `window`, `baseline`, `capacity` and
    /// `saturation`.
    fn with_params(mut self, ask: &Ask) -> Result<NeighbourSpec, ApiError> {
        if let Some(d) = ask.duration("window")? {
            self.window = d;
        }
        if let Some(d) = ask.duration("baseline")? {
            self.baseline = d;
        }
        if let Some(c) = ask.limit("capacity") {
            self.capacity = Some(c);
        }
        if let Some(s) = ask.params.get("saturation") {
            self.saturation = s
                .parse()
                .map_err(|_| bad(format!("invalid parameter \"saturation\": {s:?}")))?;
        }
        self.check().map_err(|e| bad(e.to_string()))?;
        Ok(self)
    }

    /// `series=true` adds each workload's share at every step.
    async fn answer(ask: Ask, specs: Vec<NeighbourSpec>) -> Result<Response, ApiError> {
        let series = matches!(ask.params.get("series"), Some("true" | "1"));
        ask.answer("neighbours", async {
            let mut out = Vec::new();
            for spec in &specs {
                out.push(
                    neighbours::evaluate(&ask.engine, &ask.source, spec, ask.t_ms, series)
                        .await
                        .map_err(unprocessable)?,
                );
            }
            Ok(out)
        })
        .await
    }
}

/// `GET /api/v1/neighbours/usage`: which tenant loads this database.
pub(super) async fn neighbours_usage(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    async {
        let usage_tenant = state.config.slo.usage_tenant.clone();
        let tenant = TenantId::try_new(&usage_tenant).map_err(|_| {
            ApiError::new(
                ErrorKind::NotFound,
                "usage is not recorded (slo.usage_tenant is empty)",
                SHAPE,
            )
        })?;
        // Every tenant's usage is the usage tenant's data: with auth on,
        // reading it takes a token of that tenant, never another's admin.
        if state.auth.enabled() {
            let caller = state.tenant_for(&headers, Role::Read, SHAPE)?;
            if caller != tenant {
                return Err(ApiError::new(
                    ErrorKind::Forbidden,
                    format!(
                        "Strata's own usage belongs to tenant {tenant}: ask with a token of that tenant (yours: {caller})"
                    ),
                    SHAPE,
                ));
            }
        }
        let params = Params::new(raw, &headers, &Bytes::new());
        let ask = Ask::new(state, tenant, params)?;
        let name = ask.params.get("resource").unwrap_or("query_seconds");
        let Some((_, query)) = USAGE_RESOURCES.iter().find(|(n, _)| *n == name) else {
            return Err(bad(format!(
                "invalid parameter \"resource\": {name:?}; one of {}",
                USAGE_RESOURCES
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        let mut spec = NeighbourSpec::ad_hoc(query, "tenant");
        spec.name = format!("strata-{name}");
        spec.baseline = std::time::Duration::from_secs(86_400);
        let spec = spec.with_params(&ask)?;
        NeighbourSpec::answer(ask, vec![spec]).await
    }
    .await
    .unwrap_or_else(IntoResponse::into_response)
}
