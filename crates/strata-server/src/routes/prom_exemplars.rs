//! `/api/v1/query_exemplars`, Prometheus' exemplar query.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::Value as J;
use strata_query_lang::promql::{self as pq, Matcher};

use super::prom::{Params, SHAPE, bad, envelope, from_prom, reply};
use super::prom_numbers::{write_ts, write_value};
use crate::AppState;
use crate::error::ApiError;
use crate::frontend::Caller;

/// `/api/v1/query_exemplars`: the exemplars in `[start, end]` of every
/// series a selector of `query` names, as Prometheus answers (`null` data
/// for a query without selectors). From the exemplar store (what this
/// process and the ingesters it mirrors hold) and the tenant's exemplars
/// table, each exemplar once.
pub(super) async fn query_exemplars(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    reply(
        async {
            let params = Params::new(raw, &headers, &body);
            let mut start = params.time("start", i64::MIN / 4)?;
            let end = params.time("end", i64::MAX / 4)?;
            if end < start {
                return Err(bad("end timestamp must not be before start timestamp"));
            }
            let expr = pq::parse(params.get("query").unwrap_or("")).map_err(from_prom)?;
            let mut selectors = Selectors(Vec::new());
            let _ = promql_parser::util::walk_expr(&mut selectors, &expr);
            if selectors.0.is_empty() {
                return Ok(envelope(J::Null, Vec::new(), Vec::new()));
            }
            let selectors = selectors
                .0
                .iter()
                .map(|s| {
                    s.iter()
                        .map(|m| strata_query::promql::head_matcher(m).map_err(from_prom))
                        .collect::<Result<Vec<_>, _>>()
                })
                .collect::<Result<Vec<_>, _>>()?;
            let lookback = state.limits.of(&caller.tenant).max_query_lookback;
            if !lookback.is_zero() {
                let now = chrono::Utc::now().timestamp_millis();
                let floor =
                    now.saturating_sub(i64::try_from(lookback.as_millis()).unwrap_or(i64::MAX));
                start = start.max(floor);
            }
            let held = state
                .storage
                .exemplars()
                .select(&caller.tenant, &selectors, start, end);
            let (files, root, store) = state.storage.exemplar_files(&caller.tenant);
            let stored = strata_storage::exemplar_files::select_from_files(
                store.store(),
                &root,
                &files,
                &selectors,
                start,
                end,
            )
            .await
            .map_err(|e| ApiError::new(e.kind(), e.to_string(), SHAPE))?;
            let found = strata_storage::exemplar_files::join(held.into_iter().chain(stored));
            Ok(envelope(exemplars_json(&found), Vec::new(), Vec::new()))
        }
        .await,
    )
}

/// The vector selectors of a query (those of range selectors too), each
/// as its matchers with the metric name as one.
struct Selectors(Vec<Vec<Matcher>>);

impl promql_parser::util::ExprVisitor for Selectors {
    type Error = std::convert::Infallible;

    fn pre_visit(&mut self, expr: &promql_parser::parser::Expr) -> Result<bool, Self::Error> {
        use promql_parser::parser::Expr;
        let vs = match expr {
            Expr::VectorSelector(vs) => vs,
            Expr::MatrixSelector(ms) => &ms.vs,
            _ => return Ok(true),
        };
        let mut matchers = vs.matchers.matchers.clone();
        if let Some(n) = &vs.name {
            matchers.push(Matcher::new(pq::MatchOp::Equal, pq::METRIC_NAME, n));
        }
        self.0.push(matchers);
        Ok(true)
    }
}

/// Prometheus' exemplar answer: per series its labels and exemplars, each
/// exemplar's value a string and time in seconds as samples are written.
fn exemplars_json(found: &[strata_types::SeriesExemplars]) -> J {
    let mut b = Vec::with_capacity(256 * found.len());
    b.push(b'[');
    for (i, s) in found.iter().enumerate() {
        if i > 0 {
            b.push(b',');
        }
        let labels: serde_json::Map<String, J> = s
            .labels
            .iter()
            .map(|l| (l.name.clone(), J::String(l.value.clone())))
            .collect();
        b.extend_from_slice(b"{\"seriesLabels\":");
        let _ = serde_json::to_writer(&mut b, &labels);
        b.extend_from_slice(b",\"exemplars\":[");
        for (j, e) in s.exemplars.iter().enumerate() {
            if j > 0 {
                b.push(b',');
            }
            let labels: serde_json::Map<String, J> = e
                .labels
                .iter()
                .map(|(n, v)| (n.clone(), J::String(v.clone())))
                .collect();
            b.extend_from_slice(b"{\"labels\":");
            let _ = serde_json::to_writer(&mut b, &labels);
            b.extend_from_slice(b",\"value\":\"");
            write_value(&mut b, e.value);
            b.extend_from_slice(b"\",\"timestamp\":");
            write_ts(&mut b, e.timestamp_ms);
            b.push(b'}');
        }
        b.extend_from_slice(b"]}");
    }
    b.push(b']');
    serde_json::from_slice(&b).unwrap_or(J::Null)
}
