//! The line indexes of logs files ([`strata_storage::LineIndex`]) needle
//! searches have read, by path: read on a query's miss (footer, then the
//! index's byte range), bounded by the bytes they hold, rid of the
//! indexes of files a compaction replaced. A file without one (written
//! before indexes, or whose index does not read back) is remembered as
//! such and searched whole; one that could not be read (the store
//! failed) is searched whole by this query and read again by the next.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use datafusion::parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
#[allow(deprecated)]
use datafusion::parquet::arrow::async_reader::ParquetObjectReader;
use datafusion::parquet::file::metadata::PageIndexPolicy;
use futures::StreamExt;
use object_store::ObjectStore;
use object_store::path::Path;
use parking_lot::Mutex;
use strata_storage::{DataFile, LineIndex, LineIndexLocation};

/// Bytes the held indexes may take before the cache starts over.
const INDEX_BYTES: usize = 512 << 20;

#[derive(Debug, Default)]
pub struct LineIndexCache {
    map: Mutex<HashMap<String, Option<Arc<LineIndex>>>>,
    bytes: std::sync::atomic::AtomicUsize,
    /// Blocks of rows needle searches read and skipped, since start.
    blocks_read: AtomicU64,
    blocks_skipped: AtomicU64,
}

impl LineIndexCache {
    /// Counts a file's blocks a search read and skipped.
    pub(crate) fn count(&self, read: u64, skipped: u64) {
        self.blocks_read.fetch_add(read, Ordering::Relaxed);
        self.blocks_skipped.fetch_add(skipped, Ordering::Relaxed);
    }

    /// Blocks of rows needle searches read and skipped, since start.
    pub fn blocks(&self) -> (u64, u64) {
        (
            self.blocks_read.load(Ordering::Relaxed),
            self.blocks_skipped.load(Ordering::Relaxed),
        )
    }

    /// The index of each of `files` (under `root`), in order; `None` for
    /// a file without one. Misses are read a few at a time.
    pub(crate) async fn indexes(
        &self,
        store: &Arc<dyn ObjectStore>,
        root: &Path,
        files: &[&DataFile],
    ) -> Vec<Option<Arc<LineIndex>>> {
        let live: HashSet<String> = files
            .iter()
            .map(|f| f.path.under(root).to_string())
            .collect();
        let missing: Vec<(Path, u64)> = {
            let map = self.map.lock();
            files
                .iter()
                .map(|f| (f.path.under(root), f.size))
                .filter(|(p, _)| !map.contains_key(p.as_ref()))
                .collect()
        };
        let read: Vec<(Path, Option<Arc<LineIndex>>)> = futures::stream::iter(missing)
            .map(|(path, size)| async move {
                let index = read_index(store, &path, size).await;
                (path, index)
            })
            .buffer_unordered(4)
            .filter_map(
                |(path, index)| async move { index.ok().map(|ix| (path, ix.map(Arc::new))) },
            )
            .collect()
            .await;
        let root_prefix = format!("{root}/");
        {
            let mut map = self.map.lock();
            // Indexes of this table's files no longer in it (compacted
            // away) go first.
            let mut freed = 0;
            map.retain(|p, ix| {
                let keep = !p.starts_with(&root_prefix) || live.contains(p);
                if !keep {
                    freed += ix.as_ref().map_or(0, |ix| ix.memory());
                }
                keep
            });
            let held = self.bytes.load(Ordering::Relaxed).saturating_sub(freed);
            let adding: usize = read
                .iter()
                .map(|(_, ix)| ix.as_ref().map_or(0, |ix| ix.memory()))
                .sum();
            if held + adding > INDEX_BYTES {
                map.clear();
                self.bytes.store(0, Ordering::Relaxed);
            } else {
                self.bytes.store(held, Ordering::Relaxed);
            }
            for (path, index) in &read {
                let size = index.as_ref().map_or(0, |ix| ix.memory());
                if map.insert(path.to_string(), index.clone()).is_none() {
                    self.bytes.fetch_add(size, Ordering::Relaxed);
                }
            }
        }
        let found: HashMap<String, Option<Arc<LineIndex>>> = read
            .into_iter()
            .map(|(p, ix)| (p.to_string(), ix))
            .collect();
        let map = self.map.lock();
        files
            .iter()
            .map(|f| {
                let p = f.path.under(root).to_string();
                map.get(&p).or_else(|| found.get(&p)).cloned().flatten()
            })
            .collect()
    }
}

/// The store could not be read (logged).
struct Unread;

/// `path`'s line index; `None` when it has none or it does not decode
/// (logged: the file is then searched whole).
async fn read_index(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
    size: u64,
) -> Result<Option<LineIndex>, Unread> {
    #[allow(deprecated)]
    let mut reader = ParquetObjectReader::new(Arc::clone(store), path.clone()).with_file_size(size);
    let meta = match ArrowReaderMetadata::load_async(
        &mut reader,
        ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Skip),
    )
    .await
    {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(%path, error = %e, "logs file footer unreadable; searching it whole");
            return Err(Unread);
        }
    };
    let Some(at) = meta
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|kv| kv.key == LineIndex::KEY))
        .and_then(|kv| kv.value.as_deref())
        .and_then(LineIndexLocation::from_footer)
    else {
        return Ok(None);
    };
    let Some(end) = at.offset.checked_add(at.len) else {
        return Ok(None);
    };
    let bytes = match object_store::ObjectStoreExt::get_range(store.as_ref(), path, at.offset..end)
        .await
    {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(%path, error = %e, "line index unreadable; searching the file whole");
            return Err(Unread);
        }
    };
    match LineIndex::decode(&bytes) {
        Ok(ix)
            if i64::try_from(ix.rows).ok() == Some(meta.metadata().file_metadata().num_rows()) =>
        {
            Ok(Some(ix))
        }
        Ok(ix) => {
            tracing::warn!(%path, index_rows = ix.rows, "line index does not cover the file; searching it whole");
            Ok(None)
        }
        Err(e) => {
            tracing::warn!(%path, error = %e, "line index does not decode; searching the file whole");
            Ok(None)
        }
    }
}
