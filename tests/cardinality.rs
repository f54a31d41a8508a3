//! A cardinality explosion: a tenant limited to 20,000 active series sends
//! a million new ones. It gets 429s naming the limit, keeps exactly its
//! 20,000 series, another tenant keeps writing, and the server's peak
//! memory stays within a fixed bound of what it used before the attack —
//! not in proportion to the series attempted (a million series held would
//! take hundreds of MiB).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::{Server, payload, series};

const LIMIT: usize = 20_000;
const ATTACK_REQUESTS: usize = 40;
const PER_REQUEST: usize = 25_000;
/// What the attack may add to the server's peak resident memory.
const BOUND_MIB: u64 = 128;

/// `VmRSS` and `VmHWM` (peak) of a process, in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap()
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn batch(prefix: &str, from: usize, n: usize, t: i64) -> Vec<u8> {
    let ids: Vec<String> = (from..from + n).map(|i| format!("{prefix}-{i}")).collect();
    payload(
        ids.iter()
            .map(|id| {
                series(
                    &[
                        ("__name__", "odoo_session_active"),
                        ("job", "odoo"),
                        ("session", id),
                    ],
                    &[(t, 1.0)],
                )
            })
            .collect(),
    )
}

#[test]
fn a_cardinality_explosion_gets_429s_and_memory_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let limits = dir.path().join("limits.toml");
    std::fs::write(
        &limits,
        format!("[tenants.attacker]\nmax_series = {LIMIT}\n"),
    )
    .unwrap();
    let server = Server::start(
        &dir.path().join("data"),
        &["--limits-overrides-file", limits.to_str().unwrap()],
    );
    let pid = server.child.id();
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;

    // Up to its limit, in four writes.
    for i in 0..4 {
        let (status, text) = server.write(Some("attacker"), &batch("ok", i * 5_000, 5_000, t));
        assert_eq!(status, 204, "{text}");
    }
    let (before, _) = memory_kib(pid);

    // A million new series: every write refused whole.
    let mut refused = 0;
    for i in 0..ATTACK_REQUESTS {
        let body = batch("boom", i * PER_REQUEST, PER_REQUEST, t);
        let (status, text) = server.write(Some("attacker"), &body);
        assert_eq!(status, 429, "{text}");
        assert!(
            text.contains("max_series") && text.contains(&LIMIT.to_string()),
            "{text}"
        );
        refused += 1;
        // A neighbour keeps writing meanwhile.
        if i % 10 == 0 {
            let (status, text) = server.write(Some("neighbour"), &batch("n", i, 10, t));
            assert_eq!(status, 204, "{text}");
        }
    }
    assert_eq!(refused, ATTACK_REQUESTS);
    let (after, peak) = memory_kib(pid);
    let grew_mib = peak.saturating_sub(before) / 1024;
    eprintln!(
        "RSS before the attack {} MiB, after {} MiB, peak {} MiB ({} series attempted)",
        before / 1024,
        after / 1024,
        peak / 1024,
        ATTACK_REQUESTS * PER_REQUEST
    );
    assert!(
        grew_mib < BOUND_MIB,
        "peak RSS grew {grew_mib} MiB under the attack (before {} MiB, peak {} MiB)",
        before / 1024,
        peak / 1024
    );

    // Nothing of the attack was stored; the tenant keeps its series.
    let rows = server.rows(Some("attacker"), "SELECT active_series FROM system.usage");
    assert_eq!(rows, vec![serde_json::json!([LIMIT])]);
    let rows = server.rows(
        Some("attacker"),
        "SELECT count(*) FROM samples WHERE labels['session'] LIKE 'boom-%'",
    );
    assert_eq!(rows, vec![serde_json::json!([0])]);
    let (_, metrics) = server.get("/metrics");
    assert!(
        metrics.contains(&format!(
            "strata_rejected_total{{tenant=\"attacker\",reason=\"max_series\"}} {ATTACK_REQUESTS}"
        )),
        "{}",
        metrics
            .lines()
            .filter(|l| l.contains("rejected"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
