//! `POST /api/v1/sql`: `{"query": "...", "format": "json"}` → the result,
//! streamed batch by batch as JSON (`{"columns":[..],"rows":[..]}`, the
//! default), CSV, an Arrow IPC stream or a Parquet file. The format comes
//! from `format` (body or query string), else the `Accept` header.
//!
//! Errors found while planning or computing the first batch get a JSON
//! error and a 4xx/5xx status. Once rows are flowing the status is sent: a
//! later failure cuts the response off (the client sees a truncated body,
//! never a well-formed partial result).

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures::{StreamExt, stream};
use serde::Deserialize;
use strata_types::{ErrorKind, TenantId};

use crate::AppState;
use crate::error::{ApiError, Shape};
use crate::frontend::Caller;
use crate::sql_format::{Encoder, Format};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SqlRequest {
    query: String,
    #[serde(default)]
    format: Option<String>,
}

#[derive(Deserialize, Default)]
pub(super) struct SqlParams {
    #[serde(default)]
    format: Option<String>,
}

pub(super) async fn sql(
    State(state): State<Arc<AppState>>,
    Caller { tenant, .. }: Caller,
    Query(params): Query<SqlParams>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match run(state, tenant, params, &headers, &body).await {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    }
}

fn format_of(
    body: Option<&str>,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Result<Format, ApiError> {
    if let Some(name) = body.or(query) {
        return Format::named(name).ok_or_else(|| {
            ApiError::new(
                ErrorKind::BadInput,
                format!("unknown format {name:?}: use json, csv, arrow or parquet"),
                Shape::Json,
            )
        });
    }
    Ok(headers
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .and_then(Format::accepted)
        .unwrap_or(Format::Json))
}

async fn run(
    state: Arc<AppState>,
    tenant: TenantId,
    params: SqlParams,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let shape = Shape::Json;
    let req: SqlRequest = serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            ErrorKind::BadInput,
            format!("body must be JSON like {{\"query\": \"SELECT ...\"}}: {e}"),
            shape,
        )
    })?;
    let format = format_of(req.format.as_deref(), params.format.as_deref(), headers)?;
    // Held until the body is done (or dropped with a departed client).
    let admitted = state.admit(&tenant, "sql", shape).await?;
    let query_error = |e: strata_query::QueryError| ApiError::new(e.kind(), e.to_string(), shape);
    let mut results = state
        .query
        .plan(&tenant, &req.query, "sql")
        .await
        .map_err(query_error)?
        .execute(Vec::new())
        .await
        .map_err(query_error)?;
    let schema = results.schema();
    let internal =
        |e: arrow::error::ArrowError| ApiError::new(ErrorKind::Internal, e.to_string(), shape);
    let (mut encoder, head) = Encoder::start(format, &schema).map_err(internal)?;
    // The first batch before the status: most failures show up by then.
    let first = match results.next().await {
        Some(batch) => Some(
            encoder
                .batch(&batch.map_err(query_error)?)
                .map_err(internal)?,
        ),
        None => None,
    };
    // The rest, batch by batch, then the format's closing bytes.
    let rest = stream::unfold(Some((results, encoder, admitted)), |st| async move {
        let (mut results, mut encoder, admitted) = st?;
        match results.next().await {
            Some(Ok(batch)) => {
                let bytes = encoder.batch(&batch).map_err(std::io::Error::other);
                Some((bytes, Some((results, encoder, admitted))))
            }
            Some(Err(e)) => Some((Err(std::io::Error::other(e.to_string())), None)),
            None => Some((encoder.finish().map_err(std::io::Error::other), None)),
        }
    });
    let body = stream::iter([Ok(head)])
        .chain(stream::iter(first.map(Ok)))
        .chain(rest);
    let mut resp = Body::from_stream(body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    Ok(resp)
}
