use proptest::prelude::*;
use strata_types::{SeriesSamples, TenantId};

use super::*;

/// One series `{__name__="m", k="<key>"}` with one sample.
fn rec(key: u8, ts: i64, bits: u64) -> Arc<WriteBatch> {
    let k = key.to_string();
    Arc::new(WriteBatch::from_series(
        TenantId::try_new("t").unwrap(),
        vec![
            SeriesSamples::try_from_pairs(
                &[
                    ("__name__", "m"),
                    ("k", &k),
                    ("pod", "odoo-web-7c9f8d-00001"),
                ],
                &[(ts, f64::from_bits(bits))],
            )
            .unwrap(),
        ],
    ))
}

type Replayed = Vec<(WalSeq, WriteBatch)>;

fn open(dir: &Path, segment_bytes: u64) -> (SegmentedWal, Replayed, ReplaySummary) {
    let mut seen = Vec::new();
    let (wal, summary) = SegmentedWal::open(
        WalConfig::new(dir).with_segment_bytes(segment_bytes),
        |seq, record| {
            if let WalRecord::Samples(b) = record {
                seen.push((seq, b));
            }
        },
    )
    .unwrap();
    (wal, seen, summary)
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

/// Bytes on disk in the WAL directory, to check the in-memory counter.
fn disk_bytes(dir: &Path) -> u64 {
    segment_files(dir)
        .iter()
        .map(|p| fs::metadata(p).unwrap().len())
        .sum()
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

#[test]
fn appends_survive_reopen_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, seen, _) = open(dir.path(), 1 << 20);
    assert!(seen.is_empty());
    let written: Vec<_> = (0..10u8)
        .map(|i| rec(i % 3, i64::from(i), u64::from(i)))
        .collect();
    for (i, b) in written.iter().enumerate() {
        assert_eq!(
            block_on(wal.append(Arc::clone(b))).unwrap(),
            WalSeq(i as u64 + 1)
        );
    }
    drop(wal);
    let (wal, seen, summary) = open(dir.path(), 1 << 20);
    assert_eq!(summary.records, 10);
    assert_eq!(summary.truncated_bytes, 0);
    let want: Vec<_> = written
        .iter()
        .enumerate()
        .map(|(i, b)| (WalSeq(i as u64 + 1), (**b).clone()))
        .collect();
    assert_eq!(seen, want);
    // Numbering continues after a restart, in a fresh segment.
    assert_eq!(block_on(wal.append(rec(0, 99, 0))).unwrap(), WalSeq(11));
    assert_eq!(wal.stats().segments, 2);
    drop(wal);
    let (_, seen, _) = open(dir.path(), 1 << 20);
    assert_eq!(seen.len(), 11);
}

#[test]
fn labels_are_written_once_per_segment() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _, _) = open(dir.path(), 1 << 20);
    block_on(wal.append(rec(1, 0, 0))).unwrap();
    let first = wal.stats().bytes;
    for i in 1..=100 {
        block_on(wal.append(rec(1, i, 0))).unwrap();
    }
    let per_record = (wal.stats().bytes - first) / 100;
    // frame header 16 + kind, tenant, count, ref, sample: about 30 bytes,
    // against ~70 for the first record that carried the labels.
    assert!(per_record <= 32, "{per_record} bytes per repeated record");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_share_fsyncs() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _, _) = open(dir.path(), 64 << 20);
    let wal = Arc::new(wal);
    let mut tasks = Vec::new();
    for t in 0..32u8 {
        let wal = Arc::clone(&wal);
        tasks.push(tokio::spawn(async move {
            for i in 0..20 {
                wal.append(rec(t, i, 0)).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let stats = wal.stats();
    assert_eq!(stats.records_appended, 640);
    assert_eq!(stats.last_seq, Some(WalSeq(640)));
    assert!(
        stats.fsyncs < 640,
        "group commit shared no fsync: {stats:?}"
    );
}

#[test]
fn rotates_and_removes_covered_segments() {
    let dir = tempfile::tempdir().unwrap();
    // Every group overflows a 1-byte limit: one record per segment.
    let (wal, _, _) = open(dir.path(), 1);
    for i in 0..10u8 {
        block_on(wal.append(rec(i, 0, 0))).unwrap();
    }
    assert_eq!(wal.stats().segments, 10);
    assert_eq!(wal.stats().bytes, disk_bytes(dir.path()));
    assert_eq!(wal.remove_segments_before(WalSeq(4)).unwrap(), 3);
    assert_eq!(segment_files(dir.path()).len(), 7);
    assert_eq!(wal.stats().bytes, disk_bytes(dir.path()));
    // The active segment is never removed.
    assert_eq!(wal.remove_segments_before(WalSeq(1000)).unwrap(), 6);
    assert_eq!(wal.stats().segments, 1);
    drop(wal);
    // The remaining segment defines its own series: it replays alone.
    let (wal, seen, _) = open(dir.path(), 1);
    assert_eq!(seen, vec![(WalSeq(10), (*rec(9, 0, 0)).clone())]);
    assert_eq!(wal.stats().bytes, disk_bytes(dir.path()));
    assert_eq!(block_on(wal.append(rec(1, 1, 1))).unwrap(), WalSeq(11));
    assert_eq!(wal.stats().bytes, disk_bytes(dir.path()));
}

#[test]
fn torn_tail_is_truncated_and_logged_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _, _) = open(dir.path(), 1 << 20);
    block_on(wal.append(rec(1, 1, 1))).unwrap();
    block_on(wal.append(rec(2, 2, 2))).unwrap();
    drop(wal);
    let path = segment_files(dir.path()).pop().unwrap();
    let len = fs::metadata(&path).unwrap().len();
    truncate_file(&path, len - 2).unwrap();
    let (wal, seen, summary) = open(dir.path(), 1 << 20);
    assert_eq!(seen, vec![(WalSeq(1), (*rec(1, 1, 1)).clone())]);
    assert!(summary.truncated_bytes > 16, "{summary:?}");
    assert_eq!(wal.stats().bytes, disk_bytes(dir.path()));
    // The torn record's seq is reused: it was never acknowledged.
    assert_eq!(block_on(wal.append(rec(3, 3, 3))).unwrap(), WalSeq(2));
    drop(wal);
    let (_, seen, summary) = open(dir.path(), 1 << 20);
    assert_eq!(seen.len(), 2);
    assert_eq!(summary.truncated_bytes, 0);
}

#[test]
fn io_error_on_read_fails_open() {
    let dir = tempfile::tempdir().unwrap();
    // A directory where a segment should be: reading it is an I/O error,
    // which must not be mistaken for corruption and silently dropped.
    fs::create_dir(dir.path().join(segment::file_name(WalSeq(1)))).unwrap();
    let err = SegmentedWal::open(WalConfig::new(dir.path()), |_, _| {}).unwrap_err();
    assert!(matches!(err, WalError::Io { .. }), "{err}");
}

#[derive(Debug, Clone)]
enum Damage {
    Truncate { file: usize, at: usize },
    Flip { file: usize, at: usize, bit: u8 },
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        (any::<usize>(), any::<usize>()).prop_map(|(file, at)| Damage::Truncate { file, at }),
        (any::<usize>(), any::<usize>(), 0u8..8).prop_map(|(file, at, bit)| Damage::Flip {
            file,
            at,
            bit
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Write arbitrary records across several segments (series repeating,
    /// so most records refer to definitions made earlier in the segment),
    /// damage one byte or cut one file anywhere: replay yields a clean
    /// prefix of what was written, never a panic, and the WAL accepts
    /// appends afterwards.
    #[test]
    fn replay_after_damage_is_a_clean_prefix(
        records in prop::collection::vec((0u8..4, any::<i64>(), any::<u64>()), 1..30),
        damage in damage(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _, _) = open(dir.path(), 256);
        let written: Vec<_> = records.iter().map(|&(k, t, v)| rec(k, t, v)).collect();
        for b in &written {
            block_on(wal.append(Arc::clone(b))).unwrap();
        }
        drop(wal);
        let files = segment_files(dir.path());
        match damage {
            Damage::Truncate { file, at } => {
                let p = &files[file % files.len()];
                let len = fs::metadata(p).unwrap().len() as usize;
                truncate_file(p, (at % (len + 1)) as u64).unwrap();
            }
            Damage::Flip { file, at, bit } => {
                let p = &files[file % files.len()];
                let mut bytes = fs::read(p).unwrap();
                let i = at % bytes.len();
                bytes[i] ^= 1 << bit;
                fs::write(p, bytes).unwrap();
            }
        }
        let (wal, seen, summary) = open(dir.path(), 256);
        prop_assert_eq!(summary.undecodable_records, 0);
        prop_assert!(seen.len() <= written.len());
        for (i, (seq, batch)) in seen.iter().enumerate() {
            prop_assert_eq!(*seq, WalSeq(i as u64 + 1));
            prop_assert_eq!(batch, &*written[i]);
        }
        let next = block_on(wal.append(rec(0, 0, 0))).unwrap();
        prop_assert_eq!(next, WalSeq(seen.len() as u64 + 1));
        drop(wal);
        let (_, again, summary) = open(dir.path(), 256);
        prop_assert_eq!(again.len(), seen.len() + 1);
        prop_assert_eq!(summary.truncated_bytes, 0);
    }
}
