//! One error type for handlers, mapped to HTTP status in one place.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use strata_types::ErrorKind;

/// How an error is rendered: each protocol has its own error shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Remote write and other Prometheus/Loki push endpoints: plain text.
    PlainText,
    /// JSON APIs: `{"status":"error","errorType":..,"error":..}`.
    Json,
    /// OTLP/HTTP: a `google.rpc.Status`, as protobuf or as JSON (the
    /// request's encoding).
    Otlp { json: bool },
}

/// `google.rpc.Status`: what OTLP/HTTP answers a failed export with.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
}

/// A handler's failure: its kind, message and how to render it.
#[derive(Debug)]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
    pub shape: Shape,
    /// The `Retry-After` of a retryable error, in seconds.
    pub retry_after_s: u32,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>, shape: Shape) -> Self {
        Self {
            kind,
            message: message.into(),
            shape,
            retry_after_s: 1,
        }
    }

    /// Asks clients to wait `secs` before retrying (default 1).
    pub fn retry_after(mut self, secs: u32) -> Self {
        self.retry_after_s = secs;
        self
    }
}

/// The single mapping from error kind to HTTP status.
pub fn status_for(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::BadInput => StatusCode::BAD_REQUEST,
        ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorKind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::Limit => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::Timeout => StatusCode::SERVICE_UNAVAILABLE,
        // nginx's "client closed request"; nobody reads it but the logs.
        ErrorKind::Canceled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The mapping from error kind to a PostgreSQL SQLSTATE lives with the rest
/// of the Postgres code; it is one of this module's mappings all the same.
pub use strata_query::postgres::sqlstate_for;

/// The mapping from error kind to a gRPC status code (Flight SQL).
pub fn grpc_code_for(kind: ErrorKind) -> tonic::Code {
    match kind {
        ErrorKind::BadInput | ErrorKind::UnsupportedMediaType | ErrorKind::Unprocessable => {
            tonic::Code::InvalidArgument
        }
        ErrorKind::Unauthenticated => tonic::Code::Unauthenticated,
        ErrorKind::Forbidden => tonic::Code::PermissionDenied,
        ErrorKind::PayloadTooLarge | ErrorKind::Limit => tonic::Code::ResourceExhausted,
        ErrorKind::NotFound => tonic::Code::NotFound,
        ErrorKind::Unavailable => tonic::Code::Unavailable,
        ErrorKind::Timeout => tonic::Code::DeadlineExceeded,
        ErrorKind::Canceled => tonic::Code::Cancelled,
        ErrorKind::Internal => tonic::Code::Internal,
    }
}

/// Prometheus' `errorType` for a kind.
fn error_type(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::BadInput | ErrorKind::UnsupportedMediaType => "bad_data",
        ErrorKind::PayloadTooLarge => "payload_too_large",
        ErrorKind::Unauthenticated => "unauthorized",
        ErrorKind::Forbidden => "forbidden",
        ErrorKind::Limit => "too_many_requests",
        ErrorKind::NotFound => "not_found",
        ErrorKind::Unavailable => "unavailable",
        ErrorKind::Unprocessable => "execution",
        ErrorKind::Timeout => "timeout",
        ErrorKind::Canceled => "canceled",
        ErrorKind::Internal => "internal",
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = status_for(self.kind);
        if status.is_server_error() {
            tracing::error!(status = status.as_u16(), error = %self.message, "request failed");
        }
        let mut resp = match self.shape {
            Shape::PlainText => (status, format!("{}\n", self.message)).into_response(),
            Shape::Json => (
                status,
                axum::Json(serde_json::json!({
                    "status": "error",
                    "errorType": error_type(self.kind),
                    "error": self.message,
                })),
            )
                .into_response(),
            Shape::Otlp { json } => {
                let code = grpc_code_for(self.kind) as i32;
                if json {
                    (
                        status,
                        axum::Json(serde_json::json!({"code": code, "message": self.message})),
                    )
                        .into_response()
                } else {
                    let body = prost::Message::encode_to_vec(&RpcStatus {
                        code,
                        message: self.message,
                    });
                    (
                        status,
                        [(
                            axum::http::header::CONTENT_TYPE,
                            axum::http::HeaderValue::from_static("application/x-protobuf"),
                        )],
                        body,
                    )
                        .into_response()
                }
            }
        };
        if self.kind == ErrorKind::Unauthenticated {
            // Tells browsers and Grafana's proxy which schemes work.
            resp.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Basic realm=\"strata\", Bearer"),
            );
        }
        if self.kind.is_retryable() && status != StatusCode::INTERNAL_SERVER_ERROR {
            resp.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(self.retry_after_s),
            );
        }
        resp
    }
}
