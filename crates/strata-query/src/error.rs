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
        DataFusionError::ResourcesExhausted(_) => ErrorKind::Limit,
        DataFusionError::Internal(_)
        | DataFusionError::IoError(_)
        | DataFusionError::ObjectStore(_)
        | DataFusionError::External(_)
        | DataFusionError::Substrait(_)
        | DataFusionError::Shared(_) => ErrorKind::Internal,
        _ => ErrorKind::BadInput,
    }
}
