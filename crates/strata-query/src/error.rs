use datafusion::error::DataFusionError;
use strata_types::ErrorKind;

/// Errors from planning or running a query.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    #[error("{0}")]
    DataFusion(#[from] DataFusionError),
    #[error("query is empty")]
    Empty,
}

impl QueryError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Empty => ErrorKind::BadInput,
            Self::DataFusion(e) => classify(e),
        }
    }
}

fn classify(e: &DataFusionError) -> ErrorKind {
    match e {
        DataFusionError::Context(_, inner) | DataFusionError::Diagnostic(_, inner) => {
            classify(inner)
        }
        DataFusionError::Shared(inner) => classify(inner),
        DataFusionError::ResourcesExhausted(_) => ErrorKind::Limit,
        DataFusionError::IoError(_) | DataFusionError::ObjectStore(_) => ErrorKind::Unavailable,
        DataFusionError::Internal(_)
        | DataFusionError::External(_)
        | DataFusionError::ParquetError(_)
        | DataFusionError::ArrowError(..)
        | DataFusionError::Substrait(_) => {
            if reached_storage(e) {
                ErrorKind::Unavailable
            } else {
                ErrorKind::Internal
            }
        }
        _ => ErrorKind::BadInput,
    }
}

/// Whether an object-store or I/O failure (retryable: the store may come
/// back) is somewhere in the error's chain of sources.
fn reached_storage(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = next {
        if err.is::<object_store::Error>() || err.is::<std::io::Error>() {
            return true;
        }
        if let Some(DataFusionError::ObjectStore(_) | DataFusionError::IoError(_)) =
            err.downcast_ref::<DataFusionError>()
        {
            return true;
        }
        next = err.source();
    }
    false
}
