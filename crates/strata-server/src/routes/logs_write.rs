//! Log ingest: Loki push (`/loki/api/v1/push`), OTLP/HTTP logs
//! (`/v1/logs`, `/otlp/v1/logs`) and NDJSON (`/api/v1/logs`).
//!
//! Each decodes and validates the whole request, checks the tenant's
//! limits, makes the batch durable in the WAL, applies it to the log head,
//! and only then answers success — in its protocol's shape: Loki 204,
//! OTLP 200 with an `ExportLogsServiceResponse`, NDJSON 204. Errors come
//! in the protocol's error shape (plain text, `google.rpc.Status`, JSON).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use strata_ingest::IngestError;
use strata_ingest::logs::{self, LogLimits};
use strata_storage::Signal;
use strata_types::{LogBatch, TenantId};

use super::write::header_text;
use crate::AppState;
use crate::error::{ApiError, Shape};
use crate::frontend::write::Write;
use crate::frontend::{Caller, Writer};

/// `POST /loki/api/v1/push`.
pub(super) async fn loki_push(
    State(state): State<Arc<AppState>>,
    caller: Caller<Writer>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let shape = Shape::PlainText;
    let json = match logs::loki::is_json(header_text(&headers, header::CONTENT_TYPE)) {
        Ok(json) => json,
        Err(e) => return bad(&e, shape).into_response(),
    };
    let stored = ingest(
        &state,
        &caller,
        &headers,
        body,
        shape,
        !json,
        move |tenant, body, encoding, limits| {
            if json {
                let raw = logs::decompress(body, encoding, limits)?;
                logs::loki::decode_json(tenant, &raw, limits)
            } else {
                // Protobuf pushes are always snappy; the header may say so.
                match encoding.map(str::trim) {
                    None | Some("" | "snappy") => {}
                    Some(other) => {
                        return Err(IngestError::UnsupportedEncoding {
                            encoding: other.to_owned(),
                            expected: "snappy (protobuf pushes are snappy-compressed)",
                        });
                    }
                }
                logs::loki::decode_proto(tenant, body, limits)
            }
        },
    )
    .await;
    answer(stored, || StatusCode::NO_CONTENT.into_response())
}

/// `POST /v1/logs` and `/otlp/v1/logs`.
pub(super) async fn otlp_logs(
    State(state): State<Arc<AppState>>,
    caller: Caller<Writer>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let json = match logs::otlp::is_json(header_text(&headers, header::CONTENT_TYPE)) {
        Ok(json) => json,
        Err(e) => return bad(&e, Shape::Otlp { json: false }).into_response(),
    };
    let stored = ingest(
        &state,
        &caller,
        &headers,
        body,
        Shape::Otlp { json },
        false,
        move |tenant, body, encoding, limits| {
            let raw = logs::decompress(body, encoding, limits)?;
            if json {
                logs::otlp::decode_json(tenant, &raw, limits)
            } else {
                logs::otlp::decode_proto(tenant, &raw, limits)
            }
        },
    )
    .await;
    answer(stored, || {
        let content_type = if json {
            "application/json"
        } else {
            "application/x-protobuf"
        };
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
            logs::otlp::success_body(json),
        )
            .into_response()
    })
}

/// `POST /api/v1/logs` (`application/x-ndjson`).
pub(super) async fn ndjson(
    State(state): State<Arc<AppState>>,
    caller: Caller<Writer>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let shape = Shape::Json;
    let media = header_text(&headers, header::CONTENT_TYPE)
        .and_then(|ct| ct.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase());
    if let Some(m) = media.filter(|m| {
        !matches!(
            m.as_str(),
            "" | "application/x-ndjson" | "application/jsonl" | "application/json-seq"
        )
    }) {
        let e = IngestError::UnsupportedMediaType {
            content_type: m,
            expected: "application/x-ndjson",
        };
        return bad(&e, shape).into_response();
    }
    let stored = ingest(
        &state,
        &caller,
        &headers,
        body,
        shape,
        false,
        |tenant, body, encoding, limits| {
            let raw = logs::decompress(body, encoding, limits)?;
            logs::ndjson::decode(tenant, &raw, limits)
        },
    )
    .await;
    answer(stored, || StatusCode::NO_CONTENT.into_response())
}

/// The protocol's success answer, or its error.
fn answer(stored: Result<u64, ApiError>, success: impl FnOnce() -> Response) -> Response {
    match stored {
        Ok(_) => success(),
        Err(e) => e.into_response(),
    }
}

fn bad(e: &IngestError, shape: Shape) -> ApiError {
    ApiError::new(e.kind(), e.to_string(), shape)
}

/// The shared path of the three log protocols: the write admitted (see
/// [`Write::begin`]) against what the body says it decodes to (`snappy`:
/// a bare snappy block whatever the headers say), decoded with its
/// `Content-Encoding` (on the blocking pool when large), stored. Returns
/// the entries written.
async fn ingest(
    state: &AppState,
    caller: &Caller<Writer>,
    headers: &HeaderMap,
    body: Bytes,
    shape: Shape,
    snappy: bool,
    decode: impl FnOnce(TenantId, &[u8], Option<&str>, &LogLimits) -> Result<LogBatch, IngestError>
    + Send
    + 'static,
) -> Result<u64, ApiError> {
    let encoding = header_text(headers, header::CONTENT_ENCODING).map(str::to_owned);
    let hint = crate::decoded::decoded_size_hint(
        &body,
        encoding.as_deref(),
        snappy,
        state.config.limits.max_decoded_size.0,
    );
    let tenant = &caller.tenant;
    let w = Write::begin(state, tenant, Signal::Logs, body.len(), hint, shape).await?;
    let limits = LogLimits {
        max_decoded_bytes: w.max_decoded_bytes(),
        max_line_bytes: usize::try_from(state.config.limits.max_log_line_size.0)
            .unwrap_or(usize::MAX),
    };
    let t = tenant.clone();
    let len = body.len();
    let batch = w
        .decode(len, move || decode(t, &body, encoding.as_deref(), &limits))
        .await?;
    w.logs(batch).await
}
