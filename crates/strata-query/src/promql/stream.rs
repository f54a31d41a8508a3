//! A selection read as its files stream it ([`Source::select_streamed`]).
//!
//! Every file that may hold the selection is read on its own task, batch
//! by batch; a series is answered as soon as each head and file holding it
//! has given its rows (the files' indexes say, before any row is read,
//! which series each file holds), in chunks of about [`CHUNK_POINTS`]
//! points. Files are written in the same series order, so they pass each
//! series at about the same time: what is held at once is a few decoded
//! batches per file and the series waiting on a slower file, not the
//! selection's rows. The query reduces a chunk while the next is read, in
//! memory the allocator has just freed.
//!
//! [`Source::select_streamed`]: strata_query_lang::promql::Source::select_streamed

use std::sync::Arc;

use futures::channel::mpsc;
use futures::{SinkExt, StreamExt};
use strata_query_lang::promql::{
    DeferredSeries, ErrorKind, FastMap, Labels, METRIC_NAME, MatchOp, Matcher, Points, PromError,
    SeriesChunks, matches_all,
};

use super::found::{Found, Run};
use super::{AbortOnDrop, PromSource, df_error, head_matcher};
use crate::series_labels::{Cover, FileIndex, Piece};

/// About how many points a chunk of series holds (4 MB of them; a few
/// series in tests, so that their selections stream many chunks).
const CHUNK_POINTS: usize = if cfg!(test) { 64 } else { 1 << 18 };

/// Above this many files a selection is not streamed (each open file holds
/// its decoded batches): it is read in parts.
const MAX_FILES: usize = 256;

/// Messages a file may read ahead of the merge.
const FILE_AHEAD: usize = 2;

/// What a file's read task sends: first its index and how many entries
/// each selected position will have, then entries as their rows are read.
enum FileMsg {
    Index(Arc<FileIndex>, Vec<(u32, u32)>),
    Rows(Vec<(u32, Vec<Piece>)>),
}

type FileSend = Result<FileMsg, PromError>;

/// A series not yet answered: its labels, each source's rows (by source:
/// heads, then files in file order) and how many entries files still owe.
#[derive(Default)]
struct Pending {
    labels: Option<Arc<Labels>>,
    runs: Vec<(usize, Run)>,
    waiting: u32,
}

fn internal(what: &str) -> PromError {
    PromError::new(ErrorKind::Internal, what.to_string())
}

impl PromSource {
    /// [`Source::select_streamed`](strata_query_lang::promql::Source::select_streamed):
    /// `None` when the selection spans more than [`MAX_FILES`] files.
    pub(super) async fn stream(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Option<SeriesChunks>, PromError> {
        let start_ms = start_ms.max(self.view.not_before_ms);
        let metric = matchers.iter().find_map(|m| {
            (m.name == METRIC_NAME && matches!(m.op, MatchOp::Equal)).then_some(m.value.as_str())
        });
        let files: Vec<_> = self
            .view
            .files
            .iter()
            .filter(|f| crate::samples::may_hold(f, start_ms, end_ms, metric))
            .collect();
        if files.len() > MAX_FILES {
            return Ok(None);
        }
        let head_matchers: Arc<Vec<_>> = Arc::new(
            matchers
                .iter()
                .map(head_matcher)
                .collect::<Result<_, _>>()?,
        );
        // The heads' series first, here (their points are in memory).
        let mut pending: FastMap<i64, Pending> = FastMap::default();
        let heads: Vec<_> = self
            .view
            .heads
            .iter()
            .filter(|h| h.overlaps(start_ms, end_ms))
            .collect();
        for (h, head) in heads.iter().enumerate() {
            for s in head.query_points_where(&head_matchers, start_ms, end_ms, |_| true) {
                let p = pending.entry(s.id.0 as i64).or_default();
                if p.labels.is_none() {
                    // The head's own strings: no text is copied.
                    p.labels = Some(Arc::new(Labels::from_shared(s.labels)));
                }
                p.runs.push((h, Run::Points(s.points)));
            }
        }
        let store = self.view.store.store();
        let mut tasks = Vec::with_capacity(files.len());
        let mut receivers = Vec::with_capacity(files.len());
        for file in files {
            let (store, cache, matchers, live) = (
                Arc::clone(store),
                Arc::clone(&self.file_index),
                Arc::clone(&head_matchers),
                self.live(),
            );
            let (path, size) = (file.path.under(&self.view.table_root), file.size);
            let cover = Cover::of(start_ms, end_ms, file.stats.min_ts_ms, file.stats.max_ts_ms);
            let (mut tx, rx) = mpsc::channel::<FileSend>(FILE_AHEAD);
            receivers.push(rx);
            tasks.push(AbortOnDrop(tokio::spawn(async move {
                let read = async {
                    let ix = cache.index(&store, &path, size, &live).await?;
                    let selected = ix.labels.select(&matchers);
                    let mut reader = ix
                        .point_reader(&store, &path, size, &selected, start_ms, end_ms, cover)
                        .await?;
                    let entries = reader.entries();
                    // A send fails only when the query is gone.
                    if tx.send(Ok(FileMsg::Index(ix, entries))).await.is_err() {
                        return Ok(());
                    }
                    while let Some(rows) = reader.next().await? {
                        if tx.send(Ok(FileMsg::Rows(rows))).await.is_err() {
                            return Ok(());
                        }
                    }
                    Ok::<_, datafusion::error::DataFusionError>(())
                };
                if let Err(e) = read.await {
                    let _ = tx.send(Err(df_error(e))).await;
                }
            })));
        }
        let (out, chunks) = mpsc::channel(1);
        let merge = Merge {
            pending,
            heads: heads.len(),
            matchers: matchers.to_vec(),
            chunk: Vec::new(),
            chunk_points: 0,
            out,
        };
        let merging = AbortOnDrop(tokio::spawn(merge.run(receivers, tasks)));
        // The merge (and with it every file's read) stops when the query
        // drops the stream.
        Ok(Some(
            chunks
                .map(move |c| {
                    let _ = &merging;
                    c
                })
                .boxed(),
        ))
    }
}

/// The merge of the heads' and files' rows into whole series.
struct Merge {
    pending: FastMap<i64, Pending>,
    heads: usize,
    matchers: Vec<Matcher>,
    chunk: Vec<DeferredSeries>,
    chunk_points: usize,
    out: mpsc::Sender<Result<Vec<DeferredSeries>, PromError>>,
}

impl Merge {
    async fn run(mut self, receivers: Vec<mpsc::Receiver<FileSend>>, _reads: Vec<AbortOnDrop<()>>) {
        if let Err(e) = self.merge(receivers).await {
            let _ = self.out.send(Err(e)).await;
        }
    }

    /// Every file's index first, so a series is known to be whole when its
    /// last entry arrives; then rows as they come, from whichever file.
    /// `Ok` also when the query is gone.
    async fn merge(&mut self, receivers: Vec<mpsc::Receiver<FileSend>>) -> Result<(), PromError> {
        let mut indexes: Vec<Arc<FileIndex>> = Vec::with_capacity(receivers.len());
        let mut streams = Vec::with_capacity(receivers.len());
        for (f, mut rx) in receivers.into_iter().enumerate() {
            let Some(FileMsg::Index(ix, entries)) = rx.next().await.transpose()? else {
                return Err(internal("a file read stopped before its index"));
            };
            for (pos, n) in entries {
                if let Some(&id) = ix.ids.get(pos as usize) {
                    self.pending.entry(id).or_default().waiting += n;
                }
            }
            indexes.push(ix);
            streams.push(rx.map(move |m| (f, m)));
        }
        // Series no file holds (of the heads alone) are whole already.
        let whole: Vec<i64> = self
            .pending
            .iter()
            .filter(|(_, p)| p.waiting == 0)
            .map(|(&id, _)| id)
            .collect();
        for id in whole {
            if !self.answer(id).await {
                return Ok(());
            }
        }
        let mut rows = futures::stream::select_all(streams);
        while let Some((f, msg)) = rows.next().await {
            let FileMsg::Rows(entries) = msg? else {
                return Err(internal("a file read sent its index twice"));
            };
            let Some(ix) = indexes.get(f) else {
                continue;
            };
            for (pos, pieces) in entries {
                let Some(&id) = ix.ids.get(pos as usize) else {
                    continue;
                };
                let Some(p) = self.pending.get_mut(&id) else {
                    return Err(internal("a file read answered a series it did not hold"));
                };
                if p.labels.is_none() {
                    // The index's own strings: no text is copied.
                    p.labels = Some(Arc::new(Labels::from_shared(ix.labels.shared_labels(pos))));
                }
                if !pieces.is_empty() {
                    p.runs.push((self.heads + f, Run::Rows(pieces)));
                }
                p.waiting = p.waiting.saturating_sub(1);
                if p.waiting == 0 && !self.answer(id).await {
                    return Ok(());
                }
            }
        }
        if !self.pending.is_empty() {
            return Err(internal("a file read stopped before its last rows"));
        }
        if !self.chunk.is_empty() {
            let chunk = std::mem::take(&mut self.chunk);
            let _ = self.out.send(Ok(chunk)).await;
        }
        Ok(())
    }

    /// Adds the whole series `id` to the chunk, sending the chunk when it
    /// is full; `false` when the query is gone.
    async fn answer(&mut self, id: i64) -> bool {
        let Some(mut p) = self.pending.remove(&id) else {
            return true;
        };
        let Some(labels) = p.labels.take() else {
            return true;
        };
        if !matches_all(&labels, &self.matchers) {
            return true;
        }
        // Scan order, as a read of the whole selection merges them: the
        // first source's copy of a sample written twice is kept.
        p.runs.sort_by_key(|r| r.0);
        let found = Found::of_runs(p.runs.into_iter().map(|r| r.1));
        if found.is_empty() {
            return true;
        }
        self.chunk_points += found.len();
        self.chunk.push(DeferredSeries {
            labels: Arc::unwrap_or_clone(labels),
            points: Points::Deferred(Box::new(found)),
        });
        if self.chunk_points < CHUNK_POINTS {
            return true;
        }
        self.chunk_points = 0;
        let chunk = std::mem::take(&mut self.chunk);
        self.out.send(Ok(chunk)).await.is_ok()
    }
}
