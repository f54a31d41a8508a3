use strata_types::{ErrorKind, LabelError};

/// Why a write request was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum IngestError {
    #[error(
        "unsupported content type {content_type:?}: expected application/x-protobuf with proto=prometheus.WriteRequest (remote write 1.0, the default) or proto=io.prometheus.write.v2.Request (2.0)"
    )]
    UnsupportedContentType { content_type: String },
    #[error("unsupported content encoding {encoding:?}: expected {expected}")]
    UnsupportedEncoding {
        encoding: String,
        expected: &'static str,
    },
    #[error("unsupported content type {content_type:?}: expected {expected}")]
    UnsupportedMediaType {
        content_type: String,
        expected: &'static str,
    },
    #[error("cannot decompress body: {reason}")]
    Decompress { reason: String },
    #[error("invalid JSON body: {reason}")]
    Json { reason: String },
    #[error("invalid protobuf body: {reason}")]
    LogProtobuf { reason: String },
    #[error("stream {index} {labels}: {source}")]
    InvalidStream {
        index: usize,
        labels: String,
        #[source]
        source: LabelError,
    },
    #[error("stream {stream}: line of {len} bytes is longer than the limit of {max} bytes")]
    LineTooLong {
        stream: usize,
        len: usize,
        max: usize,
    },
    #[error("stream {stream}: structured metadata name {name:?} is not a valid label name")]
    InvalidMetadata { stream: usize, name: String },
    #[error("stream {stream}: invalid timestamp {value:?}: {reason}")]
    InvalidTimestamp {
        stream: usize,
        value: String,
        reason: &'static str,
    },
    #[error("invalid snappy block: {reason}")]
    Snappy { reason: String },
    #[error("decompressed body would be {len} bytes, the limit is {max}")]
    TooLarge { len: usize, max: usize },
    #[error("invalid protobuf WriteRequest: {reason}")]
    Protobuf { reason: String },
    #[error("series {index} {labels}: {source}")]
    InvalidSeries {
        index: usize,
        labels: String,
        #[source]
        source: LabelError,
    },
}

impl IngestError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::UnsupportedContentType { .. }
            | Self::UnsupportedEncoding { .. }
            | Self::UnsupportedMediaType { .. } => ErrorKind::UnsupportedMediaType,
            Self::TooLarge { .. } => ErrorKind::PayloadTooLarge,
            Self::Snappy { .. }
            | Self::Protobuf { .. }
            | Self::InvalidSeries { .. }
            | Self::Decompress { .. }
            | Self::Json { .. }
            | Self::LogProtobuf { .. }
            | Self::InvalidStream { .. }
            | Self::LineTooLong { .. }
            | Self::InvalidMetadata { .. }
            | Self::InvalidTimestamp { .. } => ErrorKind::BadInput,
        }
    }
}
