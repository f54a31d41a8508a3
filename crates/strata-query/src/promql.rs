//! PromQL's [`Source`] over a tenant's heads and files.
//!
//! Heads and files answer alike, through a label index each: the head's
//! own postings, and for every data file a [`FileIndex`] built the first
//! time a query touches the file (its series, their labels, postings and
//! row runs; files are immutable, so it is kept). Matchers select series
//! on postings with Prometheus' rules (a missing label is ""); only the
//! selected series' rows of `timestamp` and `value` are read from a file,
//! and label names, values and series lookups read no samples at all.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use strata_head::Matcher as HeadMatcher;
use strata_query_lang::promql::{
    DeferredSeries, ErrorKind, FastMap, Labels, METRIC_NAME, MatchOp, Matcher, Points, PromError,
    Series, Source, matches_all, par_map,
};
use strata_storage::TenantView;
use strata_types::TenantId;

use crate::QueryError;
use crate::file_index_cache::{FileIndexCache, LiveFiles};
use crate::series_labels::{Cover, FileIndex, Piece};

mod found;
mod histograms;
mod parting;

use found::{Found, Run};
use parting::Parting;

/// One file's selected series: its index, and each series' position in it
/// with its rows.
type FileRead =
    Result<(Arc<FileIndex>, Vec<(u32, Vec<Piece>)>), datafusion::error::DataFusionError>;

/// A spawned task stopped when its query is dropped (a client gone, a
/// timeout), not left running to the end.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Files a query decodes at once: every core, and one more to keep them
/// busy while another file's pages are fetched.
fn read_parallelism() -> usize {
    std::thread::available_parallelism().map_or(2, usize::from) + 1
}

/// One tenant's data as PromQL sees it.
pub struct PromSource {
    tenant: TenantId,
    view: TenantView,
    file_index: Arc<FileIndexCache>,
    /// The split of each selection this query reads part by part, by
    /// selection, range and part count: every part's read must split it
    /// the same way.
    partings: parking_lot::Mutex<HashMap<String, Arc<Parting>>>,
    /// Where native histograms are read (not in a time-travel view).
    histograms: Option<Arc<strata_storage::Storage>>,
}

impl std::fmt::Debug for PromSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PromSource")
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
    }
}

fn prom_error(e: QueryError) -> PromError {
    let kind = match e.kind() {
        strata_types::ErrorKind::Unavailable => ErrorKind::Unavailable,
        strata_types::ErrorKind::BadInput => ErrorKind::BadData,
        _ => ErrorKind::Internal,
    };
    PromError::new(kind, e.to_string())
}

fn df_error(e: datafusion::error::DataFusionError) -> PromError {
    prom_error(e.into())
}

/// A PromQL matcher as the head's index takes it.
pub fn head_matcher(m: &Matcher) -> Result<HeadMatcher, PromError> {
    Ok(match &m.op {
        MatchOp::Equal => HeadMatcher::equal(&m.name, &m.value),
        MatchOp::NotEqual => HeadMatcher::not_equal(&m.name, &m.value),
        MatchOp::Re(_) => {
            HeadMatcher::regex(&m.name, &m.value).map_err(|e| PromError::bad_data(e.to_string()))?
        }
        MatchOp::NotRe(_) => HeadMatcher::not_regex(&m.name, &m.value)
            .map_err(|e| PromError::bad_data(e.to_string()))?,
    })
}

/// Label indexes of one lookup's heads and files.
struct Indexes<'a> {
    heads: Vec<&'a Arc<strata_head::TenantHead>>,
    files: Vec<Arc<FileIndex>>,
}

/// `selectors` as the index takes them; one empty selector (every series)
/// when there are none.
fn head_selectors(selectors: &[Vec<Matcher>]) -> Result<Vec<Vec<HeadMatcher>>, PromError> {
    if selectors.is_empty() {
        return Ok(vec![Vec::new()]);
    }
    selectors
        .iter()
        .map(|s| s.iter().map(head_matcher).collect())
        .collect()
}

fn sorted(set: HashSet<Arc<str>>) -> Vec<String> {
    let mut v: Vec<String> = set.into_iter().map(|s| s.to_string()).collect();
    v.sort_unstable();
    v
}

impl PromSource {
    pub(crate) fn new(
        tenant: &TenantId,
        view: TenantView,
        file_index: Arc<FileIndexCache>,
        histograms: Option<Arc<strata_storage::Storage>>,
    ) -> Self {
        Self {
            tenant: tenant.clone(),
            view,
            file_index,
            partings: parking_lot::Mutex::default(),
            histograms,
        }
    }

    fn live(&self) -> LiveFiles {
        LiveFiles::new(&self.view.table_root, &self.view.files)
    }

    /// Series ids, labels and samples in range: heads through their
    /// postings, files through their indexes (only the selected series'
    /// rows are read).
    ///
    /// With `part` (`(part, parts)`), only the series of that part
    /// ([`Parting`]): a range of the storage order, so a label-ordered
    /// file reads them from one stretch of its rows per metric, and the
    /// head decodes no other.
    async fn collect(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
        part: Option<(usize, usize)>,
    ) -> Result<FastMap<i64, Found>, PromError> {
        let parting = match part {
            Some((p, n)) if n > 1 => Some((p, self.parting(matchers, start_ms, end_ms, n).await?)),
            _ => None,
        };
        // The tenant's lookback limit: nothing older is read.
        let start_ms = start_ms.max(self.view.not_before_ms);
        let mut found: FastMap<i64, Found> = FastMap::default();
        let head_matchers: Vec<HeadMatcher> = matchers
            .iter()
            .map(head_matcher)
            .collect::<Result<_, _>>()?;
        let metric = matchers.iter().find_map(|m| {
            (m.name == METRIC_NAME && matches!(m.op, MatchOp::Equal)).then_some(m.value.as_str())
        });
        // Every file that may hold the series is read on its own task, a
        // few at a time (decoding is most of a query's fetch, and one task
        // uses one core); their answers merge in file order, so the first
        // copy of a sample written twice is still the one kept.
        let store = self.view.store.store();
        let matchers = Arc::new(head_matchers);
        let permits = Arc::new(tokio::sync::Semaphore::new(read_parallelism()));
        let mut reads: Vec<AbortOnDrop<FileRead>> = Vec::new();
        for file in self.view.files.iter() {
            if !crate::samples::may_hold(file, start_ms, end_ms, metric) {
                continue;
            }
            let (store, cache, matchers, permits, live, parting) = (
                Arc::clone(store),
                Arc::clone(&self.file_index),
                Arc::clone(&matchers),
                Arc::clone(&permits),
                self.live(),
                parting.clone(),
            );
            let label_order = file.series_order == strata_storage::SeriesOrder::Labels;
            let (path, size) = (file.path.under(&self.view.table_root), file.size);
            let cover = Cover::of(start_ms, end_ms, file.stats.min_ts_ms, file.stats.max_ts_ms);
            reads.push(AbortOnDrop(tokio::spawn(async move {
                let _permit = permits.acquire_owned().await;
                let ix = cache.index(&store, &path, size, &live).await?;
                let mut selected = ix.labels.select(&matchers);
                if let Some((p, parting)) = &parting {
                    selected = parting.select_in_file(&ix, &path, &selected, *p, label_order);
                }
                if selected.is_empty() {
                    return Ok((ix, Vec::new()));
                }
                let read = ix
                    .read_points(&store, &path, size, &selected, start_ms, end_ms, cover)
                    .await?;
                Ok((ix, read))
            })));
        }
        // The heads meanwhile, here: their series come first.
        for head in &self.view.heads {
            if !head.overlaps(start_ms, end_ms) {
                continue;
            }
            let points = match &parting {
                Some((p, parting)) => {
                    let parts = parting.head_parts(head, &matchers);
                    head.query_points_of(parts.get(*p).map_or(&[], |v| &v[..]), start_ms, end_ms)
                }
                None => head.query_points(&matchers, start_ms, end_ms),
            };
            for s in points {
                // The head's own strings: no text is copied.
                let labels = s.labels;
                found.entry(s.id.0 as i64).or_default().add(
                    || Arc::new(Labels::from_shared(labels)),
                    Run::Points(s.points),
                );
            }
        }
        for read in &mut reads {
            let (ix, read) = (&mut read.0)
                .await
                .map_err(|e| PromError::new(ErrorKind::Internal, format!("file read failed: {e}")))?
                .map_err(df_error)?;
            for (pos, rows) in read {
                let Some(&id) = ix.ids.get(pos as usize) else {
                    continue;
                };
                // The index's own strings: no text is copied.
                found.entry(id).or_default().add(
                    || Arc::new(Labels::from_shared(ix.labels.shared_labels(pos))),
                    Run::Rows(rows),
                );
            }
        }
        Ok(found)
    }

    /// How the selection `matchers` over the range is split into `parts`
    /// (built by the first part's read, then shared): bounds from a sample
    /// of the head or file holding the most of it.
    async fn parting(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
        parts: usize,
    ) -> Result<Arc<Parting>, PromError> {
        let key = format!("{matchers:?} {start_ms} {end_ms} {parts}");
        if let Some(p) = self.partings.lock().get(&key) {
            return Ok(Arc::clone(p));
        }
        // The heads and files `collect` reads.
        let start_ms = start_ms.max(self.view.not_before_ms);
        let metric = matchers.iter().find_map(|m| {
            (m.name == METRIC_NAME && matches!(m.op, MatchOp::Equal)).then_some(m.value.as_str())
        });
        let files = self
            .file_index
            .indexes_of(&self.view, |f| {
                crate::samples::may_hold(f, start_ms, end_ms, metric)
            })
            .await
            .map_err(df_error)?;
        let sel: Vec<HeadMatcher> = matchers
            .iter()
            .map(head_matcher)
            .collect::<Result<_, _>>()?;
        let head = self
            .view
            .heads
            .iter()
            .filter(|h| h.overlaps(start_ms, end_ms))
            .map(|h| (h.count_matching(&sel), h))
            .max_by_key(|(n, _)| *n);
        let file = files
            .iter()
            .map(|(_, f)| (f.labels.select(&sel), f))
            .max_by_key(|(s, _)| s.len());
        let sample: Vec<parting::LabelSet> = match (head, file) {
            (Some((n, h)), f) if f.as_ref().is_none_or(|(s, _)| n >= s.len()) => {
                h.sample_labels_matching(&sel, Parting::sample_size(parts))
            }
            (_, Some((selected, f))) => {
                let len = selected.len() as usize;
                let n = Parting::sample_size(parts).min(len);
                (0..n)
                    .filter_map(|i| selected.select((i * len / n) as u32))
                    .map(|pos| f.labels.shared_labels(pos))
                    .collect()
            }
            _ => Vec::new(),
        };
        let parting = Arc::new(Parting::of(sample, parts));
        Ok(Arc::clone(
            self.partings.lock().entry(key).or_insert(parting),
        ))
    }

    /// The label indexes of the heads and files with data in the range:
    /// what label names, values and series lookups read (no samples).
    async fn indexes(&self, start_ms: i64, end_ms: i64) -> Result<Indexes<'_>, PromError> {
        let start_ms = start_ms.max(self.view.not_before_ms);
        let heads = self
            .view
            .heads
            .iter()
            .filter(|h| h.overlaps(start_ms, end_ms))
            .collect();
        let files = self
            .file_index
            .indexes_of(&self.view, |f| f.stats.overlaps(start_ms, end_ms))
            .await
            .map_err(df_error)?
            .into_iter()
            .map(|(_, ix)| ix)
            .collect();
        Ok(Indexes { heads, files })
    }

    /// Label names of the series matching any of `selectors` (of every
    /// series with none) with data in the range, sorted.
    pub async fn label_names(
        &self,
        selectors: &[Vec<Matcher>],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<String>, PromError> {
        self.strings(
            selectors,
            start_ms,
            end_ms,
            |h, sel| h.label_names_matching(sel),
            |ix, sel| ix.label_names(sel),
        )
        .await
    }

    /// Values of `name` among the series matching any of `selectors` (of
    /// every series with none) with data in the range, sorted.
    pub async fn label_values(
        &self,
        name: &str,
        selectors: &[Vec<Matcher>],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<String>, PromError> {
        self.strings(
            selectors,
            start_ms,
            end_ms,
            |h, sel| h.label_values_matching(name, sel),
            |ix, sel| ix.label_values(name, sel),
        )
        .await
    }

    /// The union, over heads and files, of what `head` and `file` read
    /// from each index for each selector, sorted.
    async fn strings(
        &self,
        selectors: &[Vec<Matcher>],
        start_ms: i64,
        end_ms: i64,
        head: impl Fn(&strata_head::TenantHead, &[HeadMatcher]) -> Vec<Arc<str>>,
        file: impl Fn(&strata_head::LabelIndex, Option<&roaring::RoaringBitmap>) -> Vec<Arc<str>>,
    ) -> Result<Vec<String>, PromError> {
        let ix = self.indexes(start_ms, end_ms).await?;
        let selectors = head_selectors(selectors)?;
        let mut out: HashSet<Arc<str>> = HashSet::new();
        for sel in &selectors {
            for h in &ix.heads {
                out.extend(head(h, sel));
            }
            for f in &ix.files {
                if sel.is_empty() {
                    out.extend(file(&f.labels, None));
                } else {
                    let s = f.labels.select(sel);
                    out.extend(file(&f.labels, Some(&s)));
                }
            }
        }
        Ok(sorted(out))
    }

    /// Label sets of the series matching `matchers` with data in the
    /// range, sorted.
    pub async fn series(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Labels>, PromError> {
        let ix = self.indexes(start_ms, end_ms).await?;
        let sel: Vec<HeadMatcher> = matchers
            .iter()
            .map(head_matcher)
            .collect::<Result<_, _>>()?;
        // A series in several heads or files is taken once, by its id,
        // before the sort: most label sets sorted then come from one
        // index (the first holding them), whose strings are shared, so
        // comparisons test pointers rather than bytes. The indexes' own
        // strings: no text is copied.
        let mut by_id: FastMap<i64, Labels> = FastMap::default();
        for h in &ix.heads {
            for (id, labels) in h.series_labels_matching(&sel) {
                by_id
                    .entry(id.0 as i64)
                    .or_insert_with(|| Labels::from_shared(labels));
            }
        }
        for f in &ix.files {
            for r in &f.labels.select(&sel) {
                let Some(&id) = f.ids.get(r as usize) else {
                    continue;
                };
                by_id
                    .entry(id)
                    .or_insert_with(|| Labels::from_shared(f.labels.shared_labels(r)));
            }
        }
        let mut out: Vec<Labels> = by_id.into_values().collect();
        out.sort_unstable();
        // Ids are derived from label sets: two ids of one set would still
        // be one series here.
        out.dedup();
        Ok(out)
    }
}

#[async_trait]
impl Source for PromSource {
    async fn select(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Series>, PromError> {
        self.series_of(
            self.collect(matchers, start_ms, end_ms, None).await?,
            matchers,
        )
    }

    /// The most matching series of one head or file, counted on its
    /// postings (a series is in every file of its time range, so the sum
    /// would count most several times).
    async fn series_estimate(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Option<u64>, PromError> {
        let ix = self.indexes(start_ms, end_ms).await?;
        let sel: Vec<HeadMatcher> = matchers
            .iter()
            .map(head_matcher)
            .collect::<Result<_, _>>()?;
        let heads = ix.heads.iter().map(|h| h.count_matching(&sel));
        let files = ix.files.iter().map(|f| f.labels.select(&sel).len());
        Ok(Some(heads.chain(files).max().unwrap_or(0)))
    }

    async fn select_histograms(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Series>, PromError> {
        let Some(storage) = &self.histograms else {
            return Ok(Vec::new());
        };
        let start_ms = start_ms.max(self.view.not_before_ms);
        if end_ms < start_ms {
            return Ok(Vec::new());
        }
        histograms::select(storage, &self.tenant, matchers, start_ms, end_ms).await
    }

    async fn select_part(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
        part: usize,
        parts: usize,
    ) -> Result<Vec<Series>, PromError> {
        let found = self
            .collect(matchers, start_ms, end_ms, Some((part, parts.max(1))))
            .await?;
        self.series_of(found, matchers)
    }

    /// [`Source::select_part`] with each series' points left in the
    /// decoded rows until the query reduces the series.
    async fn select_deferred(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
        part: usize,
        parts: usize,
    ) -> Result<Vec<DeferredSeries>, PromError> {
        let found = self
            .collect(matchers, start_ms, end_ms, Some((part, parts.max(1))))
            .await?;
        Ok(found
            .into_values()
            .filter_map(|mut f| Some((f.labels.take()?, f)))
            .filter(|(labels, f)| matches_all(labels, matchers) && !f.is_empty())
            .map(|(labels, f)| DeferredSeries {
                labels: Arc::unwrap_or_clone(labels),
                points: Points::Deferred(Box::new(f)),
            })
            .collect())
    }
}

impl PromSource {
    fn series_of(
        &self,
        found: FastMap<i64, Found>,
        matchers: &[Matcher],
    ) -> Result<Vec<Series>, PromError> {
        let found: Vec<(Arc<Labels>, Found)> = found
            .into_values()
            // The labels taken out: the series' own copy when no one else holds it.
            .filter_map(|mut f| Some((f.labels.take()?, f)))
            .filter(|(labels, f)| matches_all(labels, matchers) && !f.is_empty())
            .collect();
        // Each sample written into its series (a pass over every point
        // read): on every core when there are many.
        par_map(
            found,
            |(_, f)| f.len(),
            |(labels, f)| Series {
                labels: Arc::unwrap_or_clone(labels),
                points: f.into_points(),
                histograms: Vec::new(),
            },
        )
    }
}
