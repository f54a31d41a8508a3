use datafusion::error::DataFusionError;
use strata_types::ErrorKind;

/// Errors from planning or running a query.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    #[error("{}", describe(.0))]
    DataFusion(#[from] DataFusionError),
    #[error("query is empty")]
    Empty,
    #[error(transparent)]
    TooDeep(#[from] strata_query_lang::nesting::TooDeep),
    #[error("query timed out after {0:?} (the server's query timeout)")]
    Timeout(std::time::Duration),
    /// Reading a tenant's logs failed.
    #[error("{0}")]
    LogSource(String),
}

/// DataFusion's message; for a memory bound, which settings set it (its
/// operators reword the pool's own error).
fn describe(e: &DataFusionError) -> String {
    let text = e.to_string();
    if exhausted(e) && !text.contains("sql.max") {
        format!(
            "{text} (a query may hold sql.max_query_memory for sorts, joins and aggregations, all queries together sql.max_memory: narrow the time range, filter, or add a LIMIT)"
        )
    } else {
        text
    }
}

fn exhausted(e: &DataFusionError) -> bool {
    match e {
        DataFusionError::ResourcesExhausted(_) => true,
        DataFusionError::Context(_, inner) | DataFusionError::Diagnostic(_, inner) => {
            exhausted(inner)
        }
        DataFusionError::Shared(inner) => exhausted(inner),
        _ => false,
    }
}

impl QueryError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Empty | Self::TooDeep(_) => ErrorKind::BadInput,
            Self::Timeout(_) => ErrorKind::Timeout,
            Self::LogSource(_) => ErrorKind::Internal,
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
        // The query's own bound: retrying the same query will not help.
        DataFusionError::ResourcesExhausted(_) => ErrorKind::Unprocessable,
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

impl QueryError {
    /// The PostgreSQL error code (SQLSTATE) for the Postgres wire protocol.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            Self::Empty => "42601",
            // statement_too_complex
            Self::TooDeep(_) => "54001",
            // query_canceled (as statement_timeout answers)
            Self::Timeout(_) => "57014",
            // internal_error
            Self::LogSource(_) => "XX000",
            Self::DataFusion(e) => sqlstate(e),
        }
    }
}

fn sqlstate(e: &DataFusionError) -> &'static str {
    use datafusion::common::SchemaError;
    match e {
        DataFusionError::Context(_, inner) | DataFusionError::Diagnostic(_, inner) => {
            sqlstate(inner)
        }
        DataFusionError::Shared(inner) => sqlstate(inner),
        // syntax_error
        DataFusionError::SQL(..) => "42601",
        DataFusionError::SchemaError(s, _) => match s.as_ref() {
            // undefined_column
            SchemaError::FieldNotFound { .. } => "42703",
            // ambiguous_column / duplicate_column
            SchemaError::AmbiguousReference { .. } => "42702",
            _ => "42P10",
        },
        // undefined_table, undefined_function, or a plan the statement
        // cannot have (syntax_error_or_access_rule_violation)
        DataFusionError::Plan(msg) if msg.contains("table") && msg.contains("not found") => "42P01",
        DataFusionError::Plan(msg) if msg.contains("Invalid function") => "42883",
        DataFusionError::Plan(msg) if msg.contains("not supported") => "0A000",
        DataFusionError::Plan(_) | DataFusionError::Configuration(_) => "42000",
        DataFusionError::NotImplemented(_) => "0A000",
        // program_limit_exceeded
        DataFusionError::ResourcesExhausted(_) => "54000",
        DataFusionError::ExecutionJoin(_) | DataFusionError::Execution(_) => {
            if e.to_string().contains("Divide by zero") {
                "22012"
            } else {
                "22000"
            }
        }
        _ => match classify(e) {
            // io_error: the store may come back
            ErrorKind::Unavailable => "58030",
            ErrorKind::Internal => "XX000",
            _ => "42000",
        },
    }
}
