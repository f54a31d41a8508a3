use strata_types::{ErrorKind, LabelError};

/// Why a write request was refused.
/// Where in a log push a problem is: the protocol's stream (0-based, as
/// the body lists them) or an NDJSON line (1-based, as editors count).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    Stream(usize),
    Line(usize),
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Stream(i) => write!(f, "stream {i}"),
            Self::Line(n) => write!(f, "line {n}"),
        }
    }
}

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
    #[error("{at} {labels}: {source}")]
    InvalidStream {
        at: Position,
        labels: String,
        #[source]
        source: LabelError,
    },
    #[error("{at}: line of {len} bytes is longer than the limit of {max} bytes")]
    LineTooLong {
        at: Position,
        len: usize,
        max: usize,
    },
    #[error("{at}: structured metadata name {name:?} is not a valid label name")]
    InvalidMetadata { at: Position, name: String },
    #[error("{at}: invalid timestamp {value:?}: {reason}")]
    InvalidTimestamp {
        at: Position,
        value: String,
        reason: &'static str,
    },
    #[error("invalid snappy block: {reason}")]
    Snappy { reason: String },
    #[error("decompressed body would be {len} bytes, the limit is {max}")]
    TooLarge { len: usize, max: usize },
    #[error("invalid protobuf WriteRequest: {reason}")]
    Protobuf { reason: String },
    #[error("invalid protobuf ReadRequest: {reason}")]
    ReadProtobuf { reason: String },
    #[error("{reason}")]
    InvalidReadRequest { reason: String },
    #[error("series {index} {labels}: native histogram at {timestamp_ms} ms: {reason}")]
    InvalidHistogram {
        index: usize,
        labels: String,
        timestamp_ms: i64,
        reason: String,
    },
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
            | Self::ReadProtobuf { .. }
            | Self::InvalidReadRequest { .. }
            | Self::InvalidSeries { .. }
            | Self::InvalidHistogram { .. }
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
