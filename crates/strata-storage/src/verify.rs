//! Integrity verification: every live data file is read back and its size
//! and SHA-256 compared with what the Delta log recorded when it was
//! committed. Missing and altered files are reported; nothing is changed.

use futures::StreamExt;
use object_store::ObjectStoreExt;
use sha2::{Digest, Sha256};
use strata_types::TenantId;

use crate::{DataFile, MetricsTable, ObjectStoreHandle, StorageError};

/// What is wrong with one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The log references it; the store does not have it.
    Missing,
    /// Its size differs from the log's.
    Size { logged: u64, found: u64 },
    /// Its content hashes to something else than the log recorded.
    Checksum { logged: String, found: String },
    /// The log recorded no checksum (a file Strata did not write).
    NoChecksum,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Missing => write!(f, "missing"),
            Self::Size { logged, found } => {
                write!(f, "size {found} bytes, the log recorded {logged}")
            }
            Self::Checksum { logged, found } => {
                write!(f, "sha256 {found}, the log recorded {logged}")
            }
            Self::NoChecksum => write!(f, "no checksum in the log"),
        }
    }
}

/// The outcome for one file.
#[derive(Debug, Clone)]
pub struct FileCheck {
    pub tenant: TenantId,
    pub file: DataFile,
    pub problem: Option<Problem>,
}

/// Checks one file against its log entry, streaming its bytes.
pub async fn check_file(
    store: &ObjectStoreHandle,
    table: &MetricsTable,
    file: &DataFile,
) -> Result<Option<Problem>, StorageError> {
    let path = file.path.under(table.root());
    let got = match store.store().get(&path).await {
        Ok(g) => g,
        Err(object_store::Error::NotFound { .. }) => return Ok(Some(Problem::Missing)),
        Err(e) => return Err(e.into()),
    };
    let mut stream = got.into_stream();
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        size += chunk.len() as u64;
        hasher.update(&chunk);
    }
    if size != file.size {
        return Ok(Some(Problem::Size {
            logged: file.size,
            found: size,
        }));
    }
    let found = hex::encode(hasher.finalize());
    Ok(match &file.sha256 {
        None => Some(Problem::NoChecksum),
        Some(logged) if *logged != found => Some(Problem::Checksum {
            logged: logged.clone(),
            found,
        }),
        Some(_) => None,
    })
}

/// Tenants that have a metrics table in the store.
pub async fn tenants(store: &ObjectStoreHandle) -> Result<Vec<TenantId>, StorageError> {
    crate::storage::list_tenants(store).await
}
