//! Error classification shared by every crate, so the server maps kinds to
//! status codes in one place.

/// What kind of failure an error is, independent of protocol.
///
/// Deliberately exhaustive: adding a kind must fail to compile until the
/// server's status mapping handles it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is malformed or invalid; retrying it unchanged fails again.
    BadInput,
    /// The request names no tenant, or an unacceptable one; or carries no
    /// valid credentials.
    Unauthenticated,
    /// Valid credentials that do not allow this (role, tenant).
    Forbidden,
    /// Content type or encoding this endpoint does not speak.
    UnsupportedMediaType,
    /// The request body is larger than allowed.
    PayloadTooLarge,
    /// A per-tenant or server limit was hit; retry later.
    Limit,
    /// The thing asked for does not exist.
    NotFound,
    /// Temporarily unable to serve (starting up, WAL down); retry later.
    Unavailable,
    /// Well-formed, but evaluating it failed (PromQL's `execution`: many-to-many
    /// matching, duplicate label sets, too many samples).
    Unprocessable,
    /// The request ran out of time.
    Timeout,
    /// The client went away before the answer.
    Canceled,
    /// A bug or broken invariant.
    Internal,
}

impl ErrorKind {
    /// Whether the same request may succeed if retried later.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            Self::Limit | Self::Unavailable | Self::Internal | Self::Timeout
        )
    }
}
