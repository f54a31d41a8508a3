use strata_types::{ErrorKind, LabelError};

/// Why a write request was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum IngestError {
    #[error(
        "unsupported content type {content_type:?}: expected application/x-protobuf (remote write 1.0, proto=prometheus.WriteRequest)"
    )]
    UnsupportedContentType { content_type: String },
    #[error("unsupported content encoding {encoding:?}: expected snappy")]
    UnsupportedEncoding { encoding: String },
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
            Self::UnsupportedContentType { .. } | Self::UnsupportedEncoding { .. } => {
                ErrorKind::UnsupportedMediaType
            }
            Self::TooLarge { .. } => ErrorKind::PayloadTooLarge,
            Self::Snappy { .. } | Self::Protobuf { .. } | Self::InvalidSeries { .. } => {
                ErrorKind::BadInput
            }
        }
    }
}
