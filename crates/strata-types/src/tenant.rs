//! Tenant identifiers.

use std::fmt;
use std::sync::Arc;

/// The tenant used when a request names none and tenancy is optional.
pub const DEFAULT_TENANT: &str = "default";

/// Longest accepted tenant id, in bytes.
pub const MAX_TENANT_LEN: usize = 128;

/// A validated tenant id: 1–128 characters of `[A-Za-z0-9_.-]`, never `.` or
/// `..`, so it can be used verbatim as a directory name or object-store prefix.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(Arc<str>);

/// Why a tenant id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TenantError {
    #[error("tenant id is empty")]
    Empty,
    #[error("tenant id is {len} bytes long, the limit is {MAX_TENANT_LEN}")]
    TooLong { len: usize },
    #[error(
        "tenant id {id:?} contains {ch:?}; allowed are ASCII letters, digits, '_', '.' and '-'"
    )]
    InvalidChar { id: String, ch: char },
    #[error("tenant id {id:?} is reserved")]
    Reserved { id: String },
}

impl TenantId {
    /// Validates `id` and wraps it.
    pub fn try_new(id: &str) -> Result<Self, TenantError> {
        if id.is_empty() {
            return Err(TenantError::Empty);
        }
        if id.len() > MAX_TENANT_LEN {
            return Err(TenantError::TooLong { len: id.len() });
        }
        if let Some(ch) = id
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
        {
            let shown: String = id.chars().take(MAX_TENANT_LEN).collect();
            return Err(TenantError::InvalidChar { id: shown, ch });
        }
        if id == "." || id == ".." {
            return Err(TenantError::Reserved { id: id.to_owned() });
        }
        Ok(Self(Arc::from(id)))
    }

    /// The default tenant, used when tenancy is optional and none is named.
    pub fn default_tenant() -> Self {
        Self(Arc::from(DEFAULT_TENANT))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TenantId({:?})", &*self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_ids() {
        for id in [
            "a",
            "default",
            "team-A_1.prod",
            &"x".repeat(128),
            "...",
            ".a",
        ] {
            assert_eq!(TenantId::try_new(id).unwrap().as_str(), id);
        }
    }

    #[test]
    fn rejects_path_tricks_and_bad_characters() {
        assert_eq!(TenantId::try_new(""), Err(TenantError::Empty));
        assert!(matches!(
            TenantId::try_new("."),
            Err(TenantError::Reserved { .. })
        ));
        assert!(matches!(
            TenantId::try_new(".."),
            Err(TenantError::Reserved { .. })
        ));
        for bad in ["a/b", "../etc", "a b", "é", "a\0", "a\\b", "a:b"] {
            assert!(
                matches!(TenantId::try_new(bad), Err(TenantError::InvalidChar { .. })),
                "{bad:?}"
            );
        }
        assert_eq!(
            TenantId::try_new(&"x".repeat(129)),
            Err(TenantError::TooLong { len: 129 })
        );
    }
}
