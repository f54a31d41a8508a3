//! The cache of data files' label indexes ([`FileIndex`]): built on a
//! query's miss (several at once, as many as there are cores), warmed
//! for queried tenants' new files, bounded by the series they hold, and
//! rid of the indexes of files a compaction replaced.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::path::Path;
use parking_lot::Mutex;

use crate::series_labels::FileIndex;

/// Indexes of the data files queries have looked at, by path.
#[derive(Debug, Default)]
pub struct FileIndexCache {
    map: Mutex<HashMap<String, Arc<FileIndex>>>,
    /// Series held by the indexes in `map`, to bound their memory.
    series: std::sync::atomic::AtomicUsize,
}

/// Series the file indexes may hold before the cache starts over (each
/// series' symbol pairs, postings, id and row runs: a few hundred bytes).
const INDEX_SERIES: usize = 4_000_000;

/// The files of one table a query sees (its view's): when a query builds
/// an index, the indexes of that table's files no longer among them are
/// dropped (compaction replaced them), so merged flush files' indexes do
/// not stay held until the cache starts over.
#[derive(Clone)]
pub(crate) struct LiveFiles {
    root: Path,
    files: Arc<[strata_storage::DataFile]>,
}

impl LiveFiles {
    pub(crate) fn new(root: &Path, files: &Arc<[strata_storage::DataFile]>) -> Self {
        Self {
            root: root.clone(),
            files: Arc::clone(files),
        }
    }
}

impl FileIndexCache {
    /// The indexes of `view`'s files that `keep` selects, in file order,
    /// each built on a miss: the one walk label lookups, metric tables and
    /// the written-series listing share.
    pub(crate) async fn indexes_of<'v>(
        &self,
        view: &'v strata_storage::TenantView,
        keep: impl Fn(&strata_storage::DataFile) -> bool,
    ) -> Result<
        Vec<(&'v strata_storage::DataFile, Arc<FileIndex>)>,
        datafusion::error::DataFusionError,
    > {
        let live = LiveFiles::new(&view.table_root, &view.files);
        let store = view.store.store();
        // Indexes not held yet are built at once, each on a task of its
        // own, as many at a time as there are cores (a restart or a new
        // flush leaves several to build; each is CPU work that one core
        // would do in turn, and holds its decoded series index until
        // done). Dropping the request aborts them.
        let missing: Vec<(Path, u64)> = {
            let map = self.map.lock();
            view.files
                .iter()
                .filter(|f| keep(f))
                .map(|f| (f.path.under(&view.table_root), f.size))
                .filter(|(p, _)| !map.contains_key(p.as_ref()))
                .collect()
        };
        if missing.len() > 1 {
            let at_once = std::thread::available_parallelism().map_or(2, |n| n.get());
            let mut missing = missing.into_iter();
            let mut builds = tokio::task::JoinSet::new();
            loop {
                while builds.len() < at_once
                    && let Some((path, size)) = missing.next()
                {
                    let store = Arc::clone(store);
                    builds.spawn(async move {
                        let index = FileIndex::build(&store, &path, size).await;
                        (path, index)
                    });
                }
                let Some(done) = builds.join_next().await else {
                    break;
                };
                let (path, index) =
                    done.map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
                self.insert(&path, Arc::new(index?), &live);
            }
        }
        let mut out = Vec::new();
        for file in view.files.iter().filter(|f| keep(f)) {
            let path = file.path.under(&view.table_root);
            out.push((file, self.index(store, &path, file.size, &live).await?));
        }
        Ok(out)
    }

    /// Builds, one after another, the indexes of `view`'s files that
    /// `keep` selects and that are not held, when the table already has
    /// one held (someone queries this tenant) and the cache is under half
    /// its bound; the number built. A file that cannot be indexed is left
    /// for the query that needs it to report.
    pub(crate) async fn warm(
        &self,
        view: &strata_storage::TenantView,
        keep: impl Fn(&strata_storage::DataFile) -> bool,
    ) -> usize {
        use std::sync::atomic::Ordering;
        let prefix = format!("{}/", view.table_root);
        let missing: Vec<&strata_storage::DataFile> = {
            let map = self.map.lock();
            if self.series.load(Ordering::Relaxed) >= INDEX_SERIES / 2
                || !map.keys().any(|p| p.starts_with(&prefix))
            {
                return 0;
            }
            view.files
                .iter()
                .filter(|f| keep(f))
                .filter(|f| !map.contains_key(f.path.under(&view.table_root).as_ref()))
                .collect()
        };
        let live = LiveFiles::new(&view.table_root, &view.files);
        let store = view.store.store();
        let mut built = 0;
        for file in missing {
            let path = file.path.under(&view.table_root);
            match self.index(store, &path, file.size, &live).await {
                Ok(_) => built += 1,
                Err(e) => tracing::debug!(%path, error = %e, "file index not warmed"),
            }
        }
        built
    }

    /// The paths whose indexes are held.
    #[cfg(test)]
    pub(crate) fn paths(&self) -> Vec<String> {
        let mut v: Vec<String> = self.map.lock().keys().cloned().collect();
        v.sort();
        v
    }

    /// `path`'s index, built on a miss (`live`: the files of its table).
    pub(crate) async fn index(
        &self,
        store: &Arc<dyn ObjectStore>,
        path: &Path,
        size: u64,
        live: &LiveFiles,
    ) -> Result<Arc<FileIndex>, datafusion::error::DataFusionError> {
        if let Some(ix) = self.map.lock().get(path.as_ref()) {
            return Ok(Arc::clone(ix));
        }
        let index = Arc::new(FileIndex::build(store, path, size).await?);
        self.insert(path, Arc::clone(&index), live);
        Ok(index)
    }

    /// Holds `index` as `path`'s, first dropping the indexes of `live`'s
    /// table that are no longer among its files, and starting over when
    /// the held series would pass [`INDEX_SERIES`].
    fn insert(&self, path: &Path, index: Arc<FileIndex>, live: &LiveFiles) {
        use std::sync::atomic::Ordering;
        let live_paths: HashSet<String> = live
            .files
            .iter()
            .map(|f| f.path.under(&live.root).to_string())
            .collect();
        let prefix = format!("{}/", live.root);
        let mut map = self.map.lock();
        let mut dropped = 0;
        map.retain(|p, ix| {
            let keep = !p.starts_with(&prefix) || live_paths.contains(p);
            if !keep {
                dropped += ix.ids.len();
            }
            keep
        });
        self.series.fetch_sub(
            dropped.min(self.series.load(Ordering::Relaxed)),
            Ordering::Relaxed,
        );
        if self.series.load(Ordering::Relaxed) + index.ids.len() > INDEX_SERIES {
            map.clear();
            self.series.store(0, Ordering::Relaxed);
        }
        let series = index.ids.len();
        if map.insert(path.to_string(), index).is_none() {
            self.series.fetch_add(series, Ordering::Relaxed);
        }
    }
}
