use deltalake_core::DeltaTableError;
use strata_types::{ErrorKind, TenantId};

/// Errors from the storage stage.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    #[error("storage configuration: {message}")]
    Config { message: String },
    #[error("object store: {source}")]
    ObjectStore {
        #[from]
        source: object_store::Error,
    },
    #[error("object store path: {source}")]
    Path {
        #[from]
        source: object_store::path::Error,
    },
    #[error("delta table of tenant {tenant}: {source}")]
    Delta {
        tenant: TenantId,
        #[source]
        source: Box<DeltaTableError>,
    },
    #[error("parquet: {source}")]
    Parquet {
        #[from]
        source: parquet::errors::ParquetError,
    },
    #[error("arrow: {source}")]
    Arrow {
        #[from]
        source: arrow::error::ArrowError,
    },
    #[error("{path:?} is not a Strata data file path")]
    BadPath { path: String },
    #[error("{message}")]
    Corrupt { message: String },
    #[error("not found: {what}")]
    NotFound { what: String },
    #[error("WAL: {source}")]
    Wal {
        #[from]
        source: strata_wal::WalError,
    },
    #[error("series {series}: sample time {ts_ms} ms is outside the storable range {range}", range = strata_types::TIMESTAMP_RANGE_TEXT)]
    TimestampOutOfRange { series: String, ts_ms: i64 },
    #[error(
        "flush of tenant {tenant}'s {signal} failed (other tenants' flushes went on): {source}"
    )]
    TenantFlush {
        tenant: TenantId,
        signal: &'static str,
        #[source]
        source: Box<StorageError>,
    },
    #[error("head: {source}")]
    Head {
        #[from]
        source: strata_head::HeadError,
    },
}

impl StorageError {
    pub(crate) fn delta(tenant: &TenantId, source: DeltaTableError) -> Self {
        Self::Delta {
            tenant: tenant.clone(),
            source: Box::new(source),
        }
    }

    /// A Delta commit refused because another writer's commit conflicts
    /// with it (the table is unchanged by this one).
    pub fn is_commit_conflict(&self) -> bool {
        matches!(
            self,
            Self::Delta { source, .. } if matches!(
                source.as_ref(),
                DeltaTableError::Transaction {
                    source: deltalake_core::kernel::transaction::TransactionError::CommitConflict(_)
                }
            )
        )
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Config { .. } | Self::BadPath { .. } | Self::TimestampOutOfRange { .. } => {
                ErrorKind::BadInput
            }
            Self::NotFound { .. } => ErrorKind::NotFound,
            Self::ObjectStore {
                source: object_store::Error::NotFound { .. },
            } => ErrorKind::NotFound,
            Self::ObjectStore { .. } | Self::Delta { .. } => ErrorKind::Unavailable,
            Self::Wal { source } if source.is_retryable() => ErrorKind::Unavailable,
            Self::Wal { .. } => ErrorKind::BadInput,
            // The Parquet writer wraps the store's errors when uploading.
            Self::Parquet {
                source: parquet::errors::ParquetError::External(e),
            } if e.downcast_ref::<object_store::Error>().is_some()
                || e.downcast_ref::<std::io::Error>().is_some() =>
            {
                ErrorKind::Unavailable
            }
            Self::TenantFlush { source, .. } => source.kind(),
            Self::Path { .. }
            | Self::Parquet { .. }
            | Self::Arrow { .. }
            | Self::Corrupt { .. }
            | Self::Head { .. } => ErrorKind::Internal,
        }
    }
}
