//! Prometheus remote write 1.0 and 2.0 (`/api/v1/write`, `/api/v1/push`),
//! with HA pairs deduplicated when the tenant asks for it ([`crate::ha`]).

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use strata_ingest::remote_write::decode;
use strata_ingest::{DecodeLimits, Proto, negotiate};
use strata_storage::Signal;
use strata_types::{ErrorKind, TenantId, WriteBatch};
use tracing::debug;

use crate::AppState;
use crate::error::{ApiError, Shape};
use crate::frontend::write::Write;
use crate::frontend::{Caller, Writer};
use crate::ha::{HaSettings, Verdict};
use crate::limits::Refusal;

/// Decodes, validates, makes durable, applies to the head, then answers 204.
/// Nothing is stored unless the whole request is valid. A 2.0 request
/// whose native histograms were not stored (Strata does not store them
/// yet) or whose exemplars came out of order (older than their series'
/// newest) gets 400 naming them once the rest is durable, as 2.0 requires
/// of a partial write and as Prometheus answers; 1.0 skips them (counted
/// in `strata_ingest_skipped_total`). Exemplars Prometheus would drop
/// without an error (labels over 128 characters, a tenant keeping none)
/// are dropped and counted the same way.
pub(super) async fn remote_write(
    State(state): State<Arc<AppState>>,
    caller: Caller<Writer>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match write(&state, &caller.tenant, &headers, body).await {
        Ok(Written {
            deduped: Some(why), ..
        }) => (
            StatusCode::ACCEPTED,
            written_headers(0, 0, 0),
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            why,
        )
            .into_response(),
        Ok(Written {
            samples,
            exemplars,
            histograms,
            not_written: None,
            ..
        }) => (
            StatusCode::NO_CONTENT,
            written_headers(samples, exemplars, histograms),
        )
            .into_response(),
        Ok(Written {
            samples,
            exemplars,
            histograms,
            not_written: Some(why),
            ..
        }) => (
            StatusCode::BAD_REQUEST,
            written_headers(samples, exemplars, histograms),
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            why,
        )
            .into_response(),
        Err(e) => {
            let mut resp = e.into_response();
            resp.headers_mut().extend(written_headers(0, 0, 0));
            resp
        }
    }
}

/// A request header as text, if it is.
pub(super) fn header_text(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers
        .get(name)
        .and_then(|v: &HeaderValue| v.to_str().ok())
}

/// What a request stored, and what it carried that was not stored (2.0);
/// or why none of it was (an HA replica that is not elected).
struct Written {
    samples: u64,
    exemplars: u64,
    histograms: u64,
    not_written: Option<String>,
    deduped: Option<String>,
}

/// A write after HA deduplication.
enum Ha {
    /// Stored; `true` when without the replica label (an elected replica).
    Store(WriteBatch, bool),
    Deduped(String),
}

/// HA pair deduplication ([`crate::ha`]) of a decoded write, with the
/// tenant's settings: the batch to store (the replica label taken off
/// when it came from the elected replica), or why it is not stored.
fn ha_dedupe(
    state: &AppState,
    tenant: &TenantId,
    batch: WriteBatch,
    histograms: &[strata_types::SeriesHistograms],
) -> Result<Ha, ApiError> {
    let limits = state.limits.of(tenant);
    if !limits.accept_ha_samples {
        return Ok(Ha::Store(batch, false));
    }
    // Read from the first series, as Mimir reads them (a native
    // histogram's when the request has no float series).
    let pair = |get: &dyn Fn(&str) -> Option<String>| {
        Some((
            get(&limits.ha_cluster_label)?,
            get(&limits.ha_replica_label)?,
        ))
    };
    let labels = match batch.series().next() {
        Some(s) => pair(&|n| s.label(n).map(str::to_owned)),
        None => histograms
            .first()
            .and_then(|s| pair(&|n| s.labels.get(n).map(str::to_owned))),
    };
    let Some((cluster, replica)) = labels else {
        return Ok(Ha::Store(batch, false));
    };
    let settings = HaSettings {
        max_clusters: limits.ha_max_clusters,
        failover_timeout: limits.ha_failover_timeout,
    };
    match state
        .ha
        .check(tenant, &cluster, &replica, &settings, Instant::now())
    {
        Verdict::Elected => Ok(Ha::Store(
            batch.without_label(&limits.ha_replica_label),
            true,
        )),
        Verdict::NotElected { replica, elected } => {
            state
                .metrics
                .ha_deduped
                .get_or_create(&vec![
                    ("tenant", tenant.to_string()),
                    ("cluster", cluster),
                ])
                .inc_by(batch.sample_count() as u64);
            Ok(Ha::Deduped(format!(
                "replicas did not match, rejecting sample: replica={replica}, elected={elected}"
            )))
        }
        Verdict::TooManyClusters { limit } => Err(state.refused(
            tenant,
            Refusal {
                kind: ErrorKind::BadInput,
                reason: "ha_max_clusters",
                message: format!(
                    "the write has been rejected because the tenant has reached its maximum number of HA clusters (ha_max_clusters: {limit})"
                ),
            },
            Shape::PlainText,
        )),
    }
}

/// Created-timestamp zero injection ([`strata_ingest::start_zeros`]) when
/// the tenant has `created_timestamp_zero_ingestion` on: the batch to
/// store, and the zero samples added to it.
fn start_zeros(
    state: &AppState,
    tenant: &TenantId,
    batch: WriteBatch,
    starts: &[i64],
) -> (WriteBatch, u64) {
    if starts.is_empty() || !state.limits.of(tenant).created_timestamp_zero_ingestion {
        return (batch, 0);
    }
    let now_ms = chrono::Utc::now().timestamp_millis();
    let floor = state.storage.stored_through_ms(tenant, now_ms);
    let newest = state
        .storage
        .head()
        .tenant(tenant)
        .map(|h| h.newest_sample_times(&batch))
        .unwrap_or_default();
    let injected = strata_ingest::start_zeros::inject(&batch, starts, floor, |i| {
        newest.get(i).copied().flatten()
    });
    match injected {
        Some((with_zeros, zeros)) => {
            state
                .metrics
                .created_zeros
                .get_or_create(&vec![("tenant", tenant.to_string())])
                .inc_by(zeros);
            (with_zeros, zeros)
        }
        None => (batch, 0),
    }
}

async fn write(
    state: &AppState,
    tenant: &TenantId,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Written, ApiError> {
    let (w, proto, decoded) = admit_and_decode(state, tenant, headers, body).await?;

    let (batch, elected) = match ha_dedupe(state, tenant, decoded.batch, &decoded.histograms)? {
        Ha::Store(batch, elected) => (batch, elected),
        Ha::Deduped(why) => {
            return Ok(Written {
                samples: 0,
                exemplars: 0,
                histograms: 0,
                not_written: None,
                deduped: Some(why),
            });
        }
    };
    let (mut exemplars, mut histograms) = (decoded.exemplars, decoded.histograms);
    if elected {
        let label = &state.limits.of(tenant).ha_replica_label;
        without_replica(label, exemplars.iter_mut().map(|s| &mut s.labels));
        without_replica(label, histograms.iter_mut().map(|s| &mut s.labels));
    }
    let (batch, zeros) = start_zeros(state, tenant, batch, &decoded.starts);
    // The header counts what the sender sent.
    let (samples, ex, histograms) = w
        .metrics_and_exemplars(batch, exemplars, histograms)
        .await?;
    let samples = samples.saturating_sub(zeros);
    state.record_metadata(tenant, &decoded.metadata);
    let mut skipped = decoded.skipped;
    skipped.exemplars += ex.dropped + ex.out_of_order;
    if skipped.any() {
        debug!(%tenant, exemplars = skipped.exemplars, "items not stored");
        for (i, (kind, n)) in [("exemplars", skipped.exemplars)].into_iter().enumerate() {
            if n > 0 {
                state
                    .metrics
                    .ingest_skipped
                    .get_or_create(&vec![("kind", kind.to_owned())])
                    .inc_by(n);
                state.log_skipped_once(i, kind, n);
            }
        }
    }
    let mut why = Vec::new();
    if proto == Proto::V2 && ex.out_of_order > 0 {
        why.push(format!(
            "{} exemplars not written: out of order exemplar (older than its series' newest)",
            ex.out_of_order
        ));
    }
    Ok(Written {
        samples,
        exemplars: ex.accepted,
        histograms,
        not_written: (!why.is_empty()).then(|| why.join("; ")),
        deduped: None,
    })
}

/// The exemplars' and native histograms' series of an elected HA
/// replica's write without its replica label `label`, as its samples are
/// stored.
fn without_replica<'a>(label: &str, series: impl Iterator<Item = &'a mut strata_types::Labels>) {
    for labels in series {
        if labels.get(label).is_some() {
            let kept = labels.iter().filter(|l| l.name != label).cloned().collect();
            *labels = strata_types::Labels::from_validated(kept);
        }
    }
}

/// `POST /api/v1/internal/write` (operator role): what a compactor's rules
/// and SLOs computed for the tenant named by `X-Scope-OrgID`, as remote
/// write 1.0, stored as the single server stores its own rule output
/// (`frontend::write::write_internal`): the tenant's limits, the WAL,
/// usage; no HA election, no created-timestamp zeros. 204 with the
/// written-samples header once durable.
pub(super) async fn internal_write(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refused) =
        crate::replication::operator_refusal(&state, &headers, "the internal write")
    {
        return refused;
    }
    let stored = async {
        let tenant = crate::tenant::resolve(&headers, true, Shape::PlainText)?;
        internal(&state, &tenant, &headers, body).await
    };
    match stored.await {
        Ok(samples) => (StatusCode::NO_CONTENT, written_headers(samples, 0, 0)).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn internal(
    state: &AppState,
    tenant: &TenantId,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<u64, ApiError> {
    let (w, _, decoded) = admit_and_decode(state, tenant, headers, body).await?;
    w.metrics(decoded.batch).await
}

/// A remote-write body admitted ([`Write::begin`]: readiness, the
/// tenant's budget, room for its decoded bytes) and decoded in the
/// protocol its headers name.
async fn admit_and_decode<'a>(
    state: &'a AppState,
    tenant: &'a TenantId,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<(Write<'a>, Proto, strata_ingest::Decoded), ApiError> {
    let shape = Shape::PlainText;
    let proto = negotiate(
        header_text(headers, header::CONTENT_TYPE),
        header_text(headers, header::CONTENT_ENCODING),
    )
    .map_err(|e| ApiError::new(e.kind(), e.to_string(), shape))?;
    let hint = crate::decoded::decoded_size_hint(
        &body,
        header_text(headers, header::CONTENT_ENCODING),
        true,
        state.config.limits.max_decoded_size.0,
    );
    let w = Write::begin(state, tenant, Signal::Metrics, body.len(), hint, shape).await?;
    let limits = DecodeLimits {
        max_decoded_bytes: w.max_decoded_bytes(),
        names: state.limits.of(tenant).name_validation_scheme,
    };
    let t = tenant.clone();
    let decoded = w
        .decode(body.len(), move || decode(proto, t, &body, limits))
        .await?;
    Ok((w, proto, decoded))
}

/// The remote-write 2.0 "written" headers, set on every response as the
/// reference handler does (for 1.0 too).
fn written_headers(
    samples: u64,
    exemplars: u64,
    histograms: u64,
) -> [(header::HeaderName, HeaderValue); 3] {
    [
        (
            header::HeaderName::from_static("x-prometheus-remote-write-samples-written"),
            HeaderValue::from(samples),
        ),
        (
            header::HeaderName::from_static("x-prometheus-remote-write-histograms-written"),
            HeaderValue::from(histograms),
        ),
        (
            header::HeaderName::from_static("x-prometheus-remote-write-exemplars-written"),
            HeaderValue::from(exemplars),
        ),
    ]
}

/// `POST /v1/metrics`, `/otlp/v1/metrics`, `/api/v1/otlp/v1/metrics`:
/// OTLP/HTTP protobuf or JSON (gzip or not). 200 with an
/// `ExportMetricsServiceResponse` once the samples are durable, its
/// `partial_success` naming the points not stored; errors as
/// `google.rpc.Status`.
pub(super) async fn otlp_metrics(
    State(state): State<Arc<AppState>>,
    caller: Caller<Writer>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let json = match strata_ingest::logs::otlp::is_json(header_text(&headers, header::CONTENT_TYPE))
    {
        Ok(json) => json,
        Err(e) => {
            return ApiError::new(e.kind(), e.to_string(), Shape::Otlp { json: false })
                .into_response();
        }
    };
    let shape = Shape::Otlp { json };
    let result = async {
        let tenant = &caller.tenant;
        let encoding = header_text(&headers, header::CONTENT_ENCODING).map(str::to_owned);
        let hint = crate::decoded::decoded_size_hint(
            &body,
            encoding.as_deref(),
            false,
            state.config.limits.max_decoded_size.0,
        );
        let w = Write::begin(&state, tenant, Signal::Metrics, body.len(), hint, shape).await?;
        let limits = strata_ingest::logs::LogLimits {
            max_decoded_bytes: w.max_decoded_bytes(),
            ..Default::default()
        };
        let t = tenant.clone();
        let len = body.len();
        let strategy = state.limits.of(tenant).otlp_translation_strategy;
        let decode = move || {
            let raw = strata_ingest::logs::decompress(&body, encoding.as_deref(), &limits)?;
            if json {
                strata_ingest::otlp_metrics::decode_json_as(t, &raw, strategy)
            } else {
                strata_ingest::otlp_metrics::decode_proto_as(t, &raw, strategy)
            }
        };
        let decoded = w.decode(len, decode).await?;
        let (batch, _) = start_zeros(&state, tenant, decoded.batch, &decoded.starts);
        let (_, ex, _) = w
            .metrics_and_exemplars(batch, decoded.exemplars, decoded.histograms)
            .await?;
        state.record_metadata(tenant, &decoded.metadata);
        // Exemplars are not data points: dropped ones are counted, not
        // reported as rejected (Prometheus' receiver drops them the same).
        let dropped = decoded.skipped_exemplars + ex.dropped + ex.out_of_order;
        if dropped > 0 {
            state
                .metrics
                .ingest_skipped
                .get_or_create(&vec![("kind", "exemplars".to_owned())])
                .inc_by(dropped);
        }
        if decoded.rejected > 0 {
            state
                .metrics
                .ingest_skipped
                .get_or_create(&vec![("kind", "otlp_points".to_owned())])
                .inc_by(decoded.rejected);
        }
        Ok::<_, ApiError>((decoded.rejected, decoded.rejected_why))
    }
    .await;
    match result {
        Ok((rejected, why)) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(if json {
                    "application/json"
                } else {
                    "application/x-protobuf"
                }),
            )],
            strata_ingest::otlp_metrics::response(json, rejected, &why),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}
