//! The on-disk WAL: segment files plus one writer thread doing group commit.
//!
//! Appends are sent to a dedicated thread. Each turn it takes every request
//! waiting in its queue, writes their frames with one `write`, calls
//! `fdatasync` once and then answers them all. While one fsync runs, new
//! requests pile up and share the next one, so throughput grows with
//! concurrency instead of being capped at one fsync per request.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use tokio::sync::oneshot;
use tracing::{info, warn};

use strata_types::{ExemplarBatch, HistogramBatch, LogBatch, WriteBatch};

use crate::segment::{self, HEADER_LEN, MAX_RECORD_LEN};
use crate::{AppendFuture, SegmentDecoder, SegmentEncoder, Wal, WalError, WalRecord, WalSeq};

/// Called with the duration of every fsync (for the latency histogram).
pub type FsyncObserver = Arc<dyn Fn(Duration) + Send + Sync>;

/// Settings of the on-disk WAL.
#[derive(Clone)]
pub struct WalConfig {
    /// Directory holding the segment files.
    pub dir: PathBuf,
    /// A new segment is started once the current one reaches this size.
    pub segment_bytes: u64,
    /// Most bytes of frames written and synced in one group commit.
    pub max_group_bytes: usize,
    pub fsync_observer: Option<FsyncObserver>,
}

impl WalConfig {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            segment_bytes: 64 << 20,
            max_group_bytes: 16 << 20,
            fsync_observer: None,
        }
    }

    pub fn with_segment_bytes(mut self, bytes: u64) -> Self {
        self.segment_bytes = bytes;
        self
    }

    pub fn with_fsync_observer(mut self, observer: FsyncObserver) -> Self {
        self.fsync_observer = Some(observer);
        self
    }
}

impl std::fmt::Debug for WalConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WalConfig")
            .field("dir", &self.dir)
            .field("segment_bytes", &self.segment_bytes)
            .field("max_group_bytes", &self.max_group_bytes)
            .finish_non_exhaustive()
    }
}

/// Counters describing the WAL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WalStats {
    /// Last sequence number made durable (or replayed).
    pub last_seq: Option<WalSeq>,
    /// Segment files on disk.
    pub segments: usize,
    /// Bytes in those files.
    pub bytes: u64,
    /// Records appended since open.
    pub records_appended: u64,
    /// Group commits (fsyncs) since open.
    pub fsyncs: u64,
    /// A write or fsync failed: appends are refused until a restart.
    pub poisoned: bool,
}

/// What replay found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplaySummary {
    pub segments: usize,
    pub records: u64,
    /// Bytes cut from a corrupt or torn tail, if any.
    pub truncated_bytes: u64,
    /// Segments deleted because they followed a corruption.
    pub dropped_segments: usize,
    /// Records whose frame was valid but whose payload did not decode.
    pub undecodable_records: u64,
}

/// What a record carries.
enum Payload {
    Samples(Arc<WriteBatch>),
    Logs(Arc<LogBatch>),
    Exemplars(Arc<ExemplarBatch>),
    Histograms(Arc<HistogramBatch>),
}

struct Request {
    batch: Payload,
    reply: oneshot::Sender<Result<WalSeq, WalError>>,
}

#[derive(Debug, Default)]
struct Shared {
    /// Base seq of each segment on disk, oldest first; the last is active.
    segments: Mutex<Vec<WalSeq>>,
    last_seq: AtomicU64,
    records_appended: AtomicU64,
    fsyncs: AtomicU64,
    poisoned: AtomicBool,
    /// Bytes in the segment files, kept up to date so stats need no I/O
    /// (readiness probes and scrapes read them).
    bytes: AtomicU64,
}

/// Segmented, CRC-framed, group-committed WAL on local disk.
pub struct SegmentedWal {
    dir: PathBuf,
    tx: RwLock<Option<mpsc::Sender<Request>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SegmentedWal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentedWal")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl SegmentedWal {
    /// Opens the WAL in `config.dir`, replaying every valid record through
    /// `visit` in sequence order, then starts the writer thread.
    ///
    /// A torn or corrupt tail is truncated (and later segments deleted) with a
    /// warning; only I/O errors fail the open. Appends always go to a fresh
    /// segment (or to the last one if it holds no record), because a
    /// segment's series definitions live only in the process that wrote it.
    pub fn open(
        config: WalConfig,
        mut visit: impl FnMut(WalSeq, WalRecord),
    ) -> Result<(Self, ReplaySummary), WalError> {
        let dir = config.dir.clone();
        fs::create_dir_all(&dir).map_err(|e| WalError::io(&dir, e))?;
        let mut bases = list_segments(&dir)?;
        let mut summary = ReplaySummary::default();
        let mut next_seq: Option<u64> = None;
        let mut kept: Vec<WalSeq> = Vec::new();
        // (valid length, records) of the last kept segment.
        let mut tail: Option<(u64, usize)> = None;
        let mut kept_bytes = 0u64;

        let mut i = 0;
        while i < bases.len() {
            let base = bases[i];
            let path = segment::path_for(&dir, base);
            let bytes = fs::read(&path).map_err(|e| WalError::io(&path, e))?;
            let scan = segment::scan(&bytes);
            // A segment whose header is bad, or that does not continue the
            // sequence, is unusable as a whole; a frame-level problem keeps
            // the valid prefix.
            let unusable = match scan.base {
                None => scan.corruption.as_ref().map(ToString::to_string),
                Some(b) if b != base => {
                    Some(format!("header says base {b}, file name says {base}"))
                }
                Some(b) => match next_seq {
                    Some(n) if n != b.0 => Some(format!("segment starts at seq {b}, expected {n}")),
                    _ => None,
                },
            };
            summary.segments += 1;
            let problem = match unusable {
                Some(problem) => {
                    fs::remove_file(&path).map_err(|e| WalError::io(&path, e))?;
                    summary.truncated_bytes += bytes.len() as u64;
                    next_seq.get_or_insert(base.0);
                    problem
                }
                None => {
                    let mut decoder = SegmentDecoder::default();
                    for (seq, range) in &scan.records {
                        match decoder.decode(&bytes[range.clone()]) {
                            Ok(record) => visit(*seq, record),
                            Err(error) => {
                                // The frame's CRC held, so this is a bug or
                                // a newer format, not a torn write: skip it
                                // loudly rather than cut everything after.
                                summary.undecodable_records += 1;
                                warn!(%seq, %error, segment = %path.display(), "skipping undecodable WAL record");
                            }
                        }
                    }
                    summary.records += scan.records.len() as u64;
                    next_seq = Some(scan.records.last().map_or(base.0, |(s, _)| s.0 + 1));
                    kept.push(base);
                    let Some(corruption) = &scan.corruption else {
                        kept_bytes += bytes.len() as u64;
                        tail = Some((bytes.len() as u64, scan.records.len()));
                        i += 1;
                        continue;
                    };
                    truncate_file(&path, scan.valid_len as u64)?;
                    summary.truncated_bytes += (bytes.len() - scan.valid_len) as u64;
                    kept_bytes += scan.valid_len as u64;
                    tail = Some((scan.valid_len as u64, scan.records.len()));
                    corruption.to_string()
                }
            };
            let cut = summary.truncated_bytes;
            let later = bases.split_off(i + 1);
            summary.dropped_segments = later.len();
            for b in &later {
                let p = segment::path_for(&dir, *b);
                fs::remove_file(&p).map_err(|e| WalError::io(&p, e))?;
            }
            warn!(
                segment = %path.display(),
                %problem,
                truncated_bytes = cut,
                dropped_segments = later.len(),
                "truncating corrupt WAL tail at the last valid record"
            );
            sync_dir(&dir)?;
            break;
        }

        let next = next_seq.unwrap_or(1);
        let file = match (kept.last(), tail) {
            (Some(base), Some((len, 0))) => {
                let path = segment::path_for(&dir, *base);
                let file = OpenOptions::new()
                    .append(true)
                    .open(&path)
                    .map_err(|e| WalError::io(&path, e))?;
                ActiveSegment { file, path, len }
            }
            _ => {
                let seg = ActiveSegment::create(&dir, WalSeq(next))?;
                kept.push(WalSeq(next));
                kept_bytes += seg.len;
                seg
            }
        };
        info!(
            dir = %dir.display(),
            segments = summary.segments,
            records = summary.records,
            next_seq = next,
            "WAL replayed"
        );

        let shared = Arc::new(Shared {
            segments: Mutex::new(kept),
            last_seq: AtomicU64::new(next - 1),
            bytes: AtomicU64::new(kept_bytes),
            ..Shared::default()
        });
        let (tx, rx) = mpsc::channel();
        let writer = Writer {
            dir: dir.clone(),
            active: file,
            next_seq: next,
            segment_bytes: config.segment_bytes,
            max_group_bytes: config.max_group_bytes,
            observer: config.fsync_observer,
            shared: Arc::clone(&shared),
            poisoned: None,
            encoder: SegmentEncoder::default(),
        };
        let thread = std::thread::Builder::new()
            .name("strata-wal".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| WalError::io(&dir, e))?;
        Ok((
            Self {
                dir,
                tx: RwLock::new(Some(tx)),
                thread: Mutex::new(Some(thread)),
                shared,
            },
            summary,
        ))
    }
}

impl SegmentedWal {
    fn send(&self, batch: Payload) -> AppendFuture {
        let (reply, rx) = oneshot::channel();
        let sent = match &*self.tx.read() {
            Some(tx) => tx.send(Request { batch, reply }).is_ok(),
            None => false,
        };
        Box::pin(async move {
            if !sent {
                return Err(WalError::Closed);
            }
            rx.await.unwrap_or(Err(WalError::Closed))
        })
    }
}

impl Wal for SegmentedWal {
    fn append(&self, batch: Arc<WriteBatch>) -> AppendFuture {
        self.send(Payload::Samples(batch))
    }

    fn append_logs(&self, batch: Arc<LogBatch>) -> AppendFuture {
        self.send(Payload::Logs(batch))
    }

    fn append_exemplars(&self, batch: Arc<ExemplarBatch>) -> AppendFuture {
        self.send(Payload::Exemplars(batch))
    }

    fn append_histograms(&self, batch: Arc<HistogramBatch>) -> AppendFuture {
        self.send(Payload::Histograms(batch))
    }

    fn remove_segments_before(&self, seq: WalSeq) -> Result<usize, WalError> {
        let mut segments = self.shared.segments.lock();
        let mut removed = 0;
        // A segment can go when the next one starts at or before `seq`: all
        // its records are then below `seq`. The active segment always stays.
        while segments.len() > 1 && segments[1] <= seq {
            let path = segment::path_for(&self.dir, segments[0]);
            let len = fs::metadata(&path)
                .map_err(|e| WalError::io(&path, e))?
                .len();
            fs::remove_file(&path).map_err(|e| WalError::io(&path, e))?;
            self.shared.bytes.fetch_sub(len, Ordering::Relaxed);
            segments.remove(0);
            removed += 1;
        }
        if removed > 0 {
            sync_dir(&self.dir)?;
        }
        Ok(removed)
    }

    fn stats(&self) -> WalStats {
        let segments = self.shared.segments.lock().len();
        let bytes = self.shared.bytes.load(Ordering::Relaxed);
        let last = self.shared.last_seq.load(Ordering::Acquire);
        WalStats {
            last_seq: (last > 0).then_some(WalSeq(last)),
            segments,
            bytes,
            records_appended: self.shared.records_appended.load(Ordering::Relaxed),
            fsyncs: self.shared.fsyncs.load(Ordering::Relaxed),
            poisoned: self.shared.poisoned.load(Ordering::Acquire),
        }
    }

    fn shutdown(&self) {
        // Dropping the sender lets the writer drain what is queued and exit.
        self.tx.write().take();
        if let Some(handle) = self.thread.lock().take()
            && handle.join().is_err()
        {
            warn!("WAL writer thread panicked during shutdown");
        }
    }
}

impl Drop for SegmentedWal {
    fn drop(&mut self) {
        self.shutdown();
    }
}

struct ActiveSegment {
    file: File,
    path: PathBuf,
    len: u64,
}

impl ActiveSegment {
    fn create(dir: &Path, base: WalSeq) -> Result<Self, WalError> {
        let path = segment::path_for(dir, base);
        let mut file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(|e| WalError::io(&path, e))?;
        file.write_all(&segment::encode_header(base))
            .and_then(|()| file.sync_data())
            .map_err(|e| WalError::io(&path, e))?;
        sync_dir(dir)?;
        Ok(Self {
            file,
            path,
            len: HEADER_LEN as u64,
        })
    }
}

struct Writer {
    dir: PathBuf,
    active: ActiveSegment,
    next_seq: u64,
    segment_bytes: u64,
    max_group_bytes: usize,
    observer: Option<FsyncObserver>,
    shared: Arc<Shared>,
    poisoned: Option<String>,
    encoder: SegmentEncoder,
}

/// Rough encoded size of a record, for bounding a group commit.
fn estimated_bytes(batch: &Payload) -> usize {
    match batch {
        Payload::Samples(b) => b.series_count() * 16 + b.sample_count() * 12,
        Payload::Logs(b) => b.streams.len() * 64 + b.entry_count() * 12 + b.bytes(),
        Payload::Exemplars(b) => b.series.len() * 200 + b.exemplar_count() * 80,
        Payload::Histograms(b) => {
            b.series.len() * 200
                + b.series
                    .iter()
                    .flat_map(|s| &s.samples)
                    .map(|h| 64 + h.histogram.bucket_count() * 10)
                    .sum::<usize>()
        }
    }
}

/// Largest size the record of `batch` can encode to (every series defined).
fn max_encoded_bytes(batch: &Payload) -> usize {
    let label_bytes = |pairs: &mut dyn Iterator<Item = (&str, &str)>| {
        20 + pairs.map(|(n, v)| 20 + n.len() + v.len()).sum::<usize>()
    };
    match batch {
        Payload::Samples(batch) => {
            let labels: usize = batch.series().map(|s| label_bytes(&mut s.labels())).sum();
            32 + batch.tenant.as_str().len() + labels + batch.sample_count() * 18
        }
        Payload::Logs(batch) => {
            let streams: usize = batch
                .streams
                .iter()
                .map(|s| {
                    label_bytes(&mut s.labels.iter().map(|l| (l.name.as_str(), l.value.as_str())))
                        + 10
                        + s.entries
                            .iter()
                            .map(|e| 30 + e.bytes() + 20 * e.metadata.len())
                            .sum::<usize>()
                })
                .sum();
            32 + batch.tenant.as_str().len() + streams
        }
        Payload::Exemplars(batch) => {
            let series: usize = batch
                .series
                .iter()
                .map(|s| {
                    label_bytes(&mut s.labels.iter().map(|l| (l.name.as_str(), l.value.as_str())))
                        + 10
                        + s.exemplars
                            .iter()
                            .map(|e| {
                                label_bytes(
                                    &mut e.labels.iter().map(|(n, v)| (n.as_str(), v.as_str())),
                                ) + 20
                            })
                            .sum::<usize>()
                })
                .sum();
            32 + batch.tenant.as_str().len() + series
        }
        Payload::Histograms(batch) => {
            let series: usize = batch
                .series
                .iter()
                .map(|s| {
                    label_bytes(&mut s.labels.iter().map(|l| (l.name.as_str(), l.value.as_str())))
                        + 10
                        + s.samples
                            .iter()
                            .map(|smp| {
                                let h = &smp.histogram;
                                100 + 15 * (h.positive_spans.len() + h.negative_spans.len())
                                    + 8 * (h.bucket_count() + h.custom_values.len())
                            })
                            .sum::<usize>()
                })
                .sum();
            32 + batch.tenant.as_str().len() + series
        }
    }
}

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<Request>) {
        let mut buf = Vec::with_capacity(1 << 20);
        let mut scratch = Vec::with_capacity(1 << 16);
        let mut group: Vec<(WalSeq, oneshot::Sender<Result<WalSeq, WalError>>)> = Vec::new();
        while let Ok(first) = rx.recv() {
            let mut pending = vec![first];
            let mut bytes = estimated_bytes(&pending[0].batch);
            while bytes < self.max_group_bytes {
                match rx.try_recv() {
                    Ok(req) => {
                        bytes += estimated_bytes(&req.batch);
                        pending.push(req);
                    }
                    Err(_) => break,
                }
            }
            if let Some(reason) = &self.poisoned {
                for req in pending {
                    let _ = req.reply.send(Err(WalError::Poisoned {
                        reason: reason.clone(),
                    }));
                }
                continue;
            }
            if let Err(e) = self.maybe_rotate() {
                self.poison(&e);
                for req in pending {
                    let _ = req.reply.send(Err(WalError::Poisoned {
                        reason: e.to_string(),
                    }));
                }
                continue;
            }
            buf.clear();
            group.clear();
            for req in pending {
                // Checked before encoding: a refused record must not define
                // series that later records in this segment would refer to.
                let bound = max_encoded_bytes(&req.batch);
                if bound > MAX_RECORD_LEN {
                    let _ = req.reply.send(Err(WalError::RecordTooLarge {
                        len: bound,
                        max: MAX_RECORD_LEN,
                    }));
                    continue;
                }
                scratch.clear();
                match &req.batch {
                    Payload::Samples(b) => self.encoder.encode_samples(b, &mut scratch),
                    Payload::Logs(b) => self.encoder.encode_logs(b, &mut scratch),
                    Payload::Exemplars(b) => self.encoder.encode_exemplars(b, &mut scratch),
                    Payload::Histograms(b) => self.encoder.encode_histograms(b, &mut scratch),
                }
                let seq = WalSeq(self.next_seq);
                self.next_seq += 1;
                segment::encode_frame(seq, &scratch, &mut buf);
                group.push((seq, req.reply));
            }
            if group.is_empty() {
                continue;
            }
            match self.write_and_sync(&buf) {
                Ok(()) => {
                    let last = self.next_seq - 1;
                    self.shared.last_seq.store(last, Ordering::Release);
                    self.shared
                        .records_appended
                        .fetch_add(group.len() as u64, Ordering::Relaxed);
                    for (seq, reply) in group.drain(..) {
                        let _ = reply.send(Ok(seq));
                    }
                }
                Err(e) => {
                    self.poison(&e);
                    for (_, reply) in group.drain(..) {
                        let _ = reply.send(Err(WalError::Poisoned {
                            reason: e.to_string(),
                        }));
                    }
                }
            }
        }
        if let Err(error) = self.active.file.sync_all() {
            warn!(%error, "final WAL sync at shutdown failed");
        }
    }

    fn write_and_sync(&mut self, buf: &[u8]) -> Result<(), WalError> {
        let path = &self.active.path;
        self.active
            .file
            .write_all(buf)
            .map_err(|e| WalError::io(path, e))?;
        self.active.len += buf.len() as u64;
        self.shared
            .bytes
            .fetch_add(buf.len() as u64, Ordering::Relaxed);
        let started = Instant::now();
        self.active
            .file
            .sync_data()
            .map_err(|e| WalError::io(path, e))?;
        self.shared.fsyncs.fetch_add(1, Ordering::Relaxed);
        if let Some(observe) = &self.observer {
            observe(started.elapsed());
        }
        Ok(())
    }

    fn maybe_rotate(&mut self) -> Result<(), WalError> {
        if self.active.len < self.segment_bytes {
            return Ok(());
        }
        let base = WalSeq(self.next_seq);
        if self.active.len > HEADER_LEN as u64 {
            self.active = ActiveSegment::create(&self.dir, base)?;
            self.shared.segments.lock().push(base);
            self.shared
                .bytes
                .fetch_add(HEADER_LEN as u64, Ordering::Relaxed);
        }
        self.encoder.reset();
        Ok(())
    }

    /// After a failed write or fsync the file's state is unknown (the kernel
    /// may have dropped dirty pages), so every later append fails until a
    /// restart replays what really is on disk.
    fn poison(&mut self, error: &WalError) {
        tracing::error!(%error, "WAL write failed; refusing further appends until restart");
        self.poisoned = Some(error.to_string());
        self.shared.poisoned.store(true, Ordering::Release);
    }
}

fn list_segments(dir: &Path) -> Result<Vec<WalSeq>, WalError> {
    let mut bases = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| WalError::io(dir, e))? {
        let entry = entry.map_err(|e| WalError::io(dir, e))?;
        let path = entry.path();
        match segment::parse_file_name(&path) {
            Some(base) => bases.push(base),
            None => warn!(file = %path.display(), "ignoring unexpected file in WAL directory"),
        }
    }
    bases.sort();
    Ok(bases)
}

fn truncate_file(path: &Path, len: u64) -> Result<(), WalError> {
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| WalError::io(path, e))?;
    file.set_len(len)
        .and_then(|()| file.sync_all())
        .map_err(|e| WalError::io(path, e))
}

fn sync_dir(dir: &Path) -> Result<(), WalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| WalError::io(dir, e))
}

#[cfg(test)]
mod tests;
