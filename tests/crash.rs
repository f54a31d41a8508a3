//! `kill -9` during concurrent ingest and background flushes: every
//! acknowledged sample is there after a restart, exactly once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Server, payload, series};

const WRITERS: usize = 8;
const ROUNDS: usize = 3;

#[test]
fn every_acknowledged_sample_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Small segments so kills also land around segment rotation, and
    // flushes every second or 20k samples so they land mid-flush too.
    let args = [
        "--wal-segment-size",
        "1MiB",
        "--flush-interval",
        "1s",
        "--flush-max-samples",
        "20000",
    ];
    let acked: Arc<Mutex<BTreeSet<(usize, u64)>>> = Arc::default();
    let mut next_seq = [0u64; WRITERS];

    for round in 0..ROUNDS {
        let server = Server::start(&data, &args);
        let stop = Arc::new(AtomicBool::new(false));
        let mut handles = Vec::new();
        for (w, start) in next_seq.iter().copied().enumerate() {
            let url = server.url("/api/v1/write");
            let acked = Arc::clone(&acked);
            let stop = Arc::clone(&stop);
            handles.push(std::thread::spawn(move || {
                let agent = common::agent();
                let mut seq = start;
                while !stop.load(Ordering::Relaxed) {
                    // 50 series per request; sample value = request seq.
                    let ts: Vec<_> = (0..50)
                        .map(|s| {
                            let writer = w.to_string();
                            let sid = s.to_string();
                            series(
                                &[
                                    ("__name__", "crash_test"),
                                    ("series", &sid),
                                    ("writer", &writer),
                                ],
                                &[(1_700_000_000_000 + seq as i64, seq as f64)],
                            )
                        })
                        .collect();
                    let resp = agent
                        .post(&url)
                        .header("Content-Type", "application/x-protobuf")
                        .header("Content-Encoding", "snappy")
                        .send(&payload(ts)[..]);
                    match resp {
                        Ok(r) if r.status() == 204 => {
                            acked.lock().unwrap().insert((w, seq));
                        }
                        Ok(r) => panic!("unexpected status {}", r.status()),
                        // The server was killed mid-request: not acknowledged.
                        Err(_) => return seq + 1,
                    }
                    seq += 1;
                }
                seq
            }));
        }
        // Long enough for background flushes (~0.8 s each in a debug
        // build) to complete, so later kills land on a table with files.
        std::thread::sleep(Duration::from_millis(3000 + 1000 * round as u64));
        server.kill();
        stop.store(true, Ordering::Relaxed);
        for (w, h) in handles.into_iter().enumerate() {
            next_seq[w] = h.join().unwrap();
        }
    }

    let server = Server::start(&data, &args);
    // The kills must have landed on a server that was flushing: part of
    // the data is in files, not all replayed from the WAL.
    let (_, metrics) = server.get("/metrics");
    let in_files: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("strata_table_samples{tenant=\"default\"} "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    assert!(
        in_files > 0,
        "no flush happened before the kills\n{metrics}"
    );
    let rows = server.rows(
        None,
        "SELECT labels['writer'], CAST(value AS BIGINT), count(*) FROM samples \
         WHERE metric = 'crash_test' GROUP BY 1, 2",
    );
    let mut stored = BTreeSet::new();
    for r in &rows {
        let w: usize = r[0].as_str().unwrap().parse().unwrap();
        let seq = r[1].as_u64().unwrap();
        // A request is all-or-nothing: all 50 series or none.
        assert_eq!(r[2], 50, "request ({w}, {seq}) half-stored");
        stored.insert((w, seq));
    }
    let acked = acked.lock().unwrap();
    assert!(
        acked.len() > 100,
        "too few writes acknowledged to prove anything: {}",
        acked.len()
    );
    let lost: Vec<_> = acked.difference(&stored).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged requests lost, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
    eprintln!(
        "acknowledged {} requests over {ROUNDS} kills; all present",
        acked.len()
    );
}
