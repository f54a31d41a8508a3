//! The offline tools against a real server's data dir: `verify` proves the
//! files are what the log recorded (and catches tampering), `export` writes
//! what SQL sees, `compact` and `retention` commit their changes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::path::Path;
use std::process::{Command, Output};

use common::{Server, payload, series};

const DAY_MS: i64 = 86_400_000;
/// 2023-11-15T00:00:00Z
const T0: i64 = 1_700_006_400_000;

fn strata(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(args)
        .env_remove("STRATA_CONFIG")
        .env_remove("STRATA_OBJECT_STORE_URL")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Two flushes of 20 series on each of days 0..3.
fn populate(data: &Path) -> u64 {
    let server = Server::start(data, &["--flush-interval", "1h"]);
    for round in 0..2 {
        let ts: Vec<_> = (0..20)
            .map(|s| {
                let sid = s.to_string();
                let samples: Vec<(i64, f64)> = (0..3)
                    .map(|d| (T0 + d * DAY_MS + round * 60_000, (s * 10 + round) as f64))
                    .collect();
                series(&[("__name__", "tool_test"), ("s", &sid)], &samples)
            })
            .collect();
        let (status, body) = server.write(None, &payload(ts));
        assert_eq!(status, 204, "{body}");
        let (status, body) = server.post("/api/v1/admin/flush").unwrap();
        assert_eq!(status, 200, "{body}");
    }
    let n = server.rows(None, "SELECT count(*) FROM samples")[0][0]
        .as_u64()
        .unwrap();
    assert!(server.terminate().success());
    n
}

fn data_files(data: &Path) -> Vec<std::path::PathBuf> {
    let root = data.join("objects/tenants/default/metrics");
    let mut v = Vec::new();
    for day in std::fs::read_dir(root).unwrap().flatten() {
        if day.file_name().to_string_lossy().starts_with("day=") {
            v.extend(
                std::fs::read_dir(day.path())
                    .unwrap()
                    .flatten()
                    .map(|e| e.path()),
            );
        }
    }
    v.sort();
    v
}

#[test]
fn verify_passes_then_catches_altered_and_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    populate(&data);
    let d = data.to_str().unwrap();

    let out = strata(&["verify", "--data-dir", d]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("verified 6 files"), "{}", text(&out));
    assert!(text(&out).contains("all intact"), "{}", text(&out));

    let files = data_files(&data);
    // Flip one byte in the middle of one file; delete another.
    let mut bytes = std::fs::read(&files[0]).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&files[0], bytes).unwrap();
    std::fs::remove_file(&files[1]).unwrap();

    let out = strata(&["verify", "--data-dir", d]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("sha256"), "{t}");
    assert!(t.contains("missing"), "{t}");
    assert!(t.contains("2 missing or altered"), "{t}");

    let out = strata(&["verify", "--data-dir", d, "--tenant", "nobody"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn export_compact_and_retention_work_on_the_tables() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let total = populate(&data);
    let d = data.to_str().unwrap();
    assert_eq!(total, 120);

    // Export one day to CSV and everything to Parquet.
    let csv = dir.path().join("day1.csv");
    let out = strata(&[
        "export",
        "--data-dir",
        d,
        "--tenant",
        "default",
        "--from",
        "2023-11-16T00:00:00Z",
        "--to",
        "2023-11-17T00:00:00Z",
        "--format",
        "csv",
        "-o",
        csv.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let body = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(
        body.lines().count(),
        1 + 40,
        "header + 20 series × 2 samples"
    );
    assert!(
        body.lines().nth(1).unwrap().contains(r#"{""s"":"#),
        "{body}"
    );
    let pq = dir.path().join("all.parquet");
    let out = strata(&[
        "export",
        "--data-dir",
        d,
        "--tenant",
        "default",
        "-o",
        pq.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("exported 120 rows"), "{}", text(&out));

    // Days of 2023 are long closed: each day's two flush files merge.
    let out = strata(&["compact", "--data-dir", d]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("3 merges: 6 files (120 rows"),
        "{}",
        text(&out)
    );
    let out = strata(&["verify", "--data-dir", d]);
    assert!(text(&out).contains("verified 3 files"), "{}", text(&out));

    // Retention of 1 day from now removes everything of 2023, by commit;
    // vacuum keeps the files for the grace period.
    let config = dir.path().join("strata.toml");
    std::fs::write(
        &config,
        "[retention]\nperiod = \"1d\"\nvacuum_grace = \"1h\"\n",
    )
    .unwrap();
    let out = strata(&[
        "retention",
        "--config",
        config.to_str().unwrap(),
        "--data-dir",
        d,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("removed 3 files (120 rows)"),
        "{}",
        text(&out)
    );
    assert_eq!(data_files(&data).len(), 3 + 6, "still on disk until vacuum");

    let server = Server::start(&data, &[]);
    assert_eq!(
        server.rows(None, "SELECT count(*) FROM samples")[0][0],
        0,
        "gone from the table"
    );
    assert_eq!(
        server.rows(None, "SELECT count(*) FROM samples_at_version(2)")[0][0],
        120,
        "still there in the table's history"
    );
}
