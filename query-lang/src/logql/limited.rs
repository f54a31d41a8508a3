//! A log query with a limit reads only what its answer can come from: the
//! source's parts (heads, files) from the end the query starts at, each
//! once, stopping as soon as `limit` entries lie beyond everything not
//! read yet. A part holding many entries in the range is read in time
//! slices from its near end (about 16 × `limit` entries first, at least
//! 2^16, doubling after), so Grafana's "newest 1000 lines" reads a sliver
//! of a big head
//! or file — unless the query filters lines, which reads parts whole; a
//! slice that finds almost nothing (a label filter after a parser) has
//! the rest of its part read at once.

use std::collections::{HashMap, HashSet};

use super::ast::LogExpr;
use super::model::{Direction, Options, check_entries, raw_line_filters};
use super::slices::part_estimate;
use super::source::{EvalError, LogSource, Part, SourceEntry};

/// Entries of a part (estimated from its size and time extent) read in
/// one go; a part with more in the range is read in slices.
const SLICE_ROWS: u64 = 1 << 20;

/// A piece of a part still to read: times `[lo, hi)`.
#[derive(Debug, Clone, Copy)]
struct Unit {
    part: usize,
    lo: i64,
    hi: i64,
    /// Entries it is estimated to hold.
    est: u64,
    /// Slices of this part read before it.
    round: u32,
}

/// What `keep` makes of the entries in `[start_ns, end_ns)` it keeps
/// (each with its stream's labels; `None`: not kept), with their times:
/// at least the `limit` nearest the starting end of `direction` if there
/// are that many (more may be returned, unsorted).
#[allow(clippy::too_many_arguments)]
pub(super) async fn rows<T>(
    source: &dyn LogSource,
    expr: &LogExpr,
    parts: &[Part],
    start_ns: i64,
    end_ns: i64,
    limit: usize,
    direction: Direction,
    opts: &Options,
    mut keep: impl FnMut(&[(String, String)], &SourceEntry) -> Option<T>,
) -> Result<Vec<(i64, T)>, EvalError> {
    let estimate = |p: &Part, lo: i64, hi: i64| part_estimate(p, lo, hi, end_ns);
    let mut units: Vec<Unit> = parts
        .iter()
        .enumerate()
        .filter_map(|(i, p)| {
            let lo = p.min_ns.max(start_ns);
            let hi = p.max_ns.saturating_add(1).min(end_ns);
            (lo < hi).then(|| Unit {
                part: i,
                lo,
                hi,
                est: estimate(p, lo, hi),
                round: 0,
            })
        })
        .collect();
    // The edge of a unit nearest the query's starting end, as a time an
    // answer's entry must be beyond (`>` backward, `<` forward).
    let edge = |u: &Unit| match direction {
        Direction::Backward => u.hi - 1,
        Direction::Forward => u.lo,
    };
    let nearer = |a: i64, b: i64| match direction {
        Direction::Backward => a > b,
        Direction::Forward => a < b,
    };
    let filters = raw_line_filters(&expr.pipeline);
    // A query with line filters reads each part whole: a slice of a file
    // cost about a whole scan of it (benches/logs.sh, a needle over one
    // 1 GiB file: 0.4–0.6 s read whole, 0.8–0.9 s read as a slice and its
    // rest), and only what the filters let through counts against the
    // entry bound.
    let slicing = filters.is_empty();
    let mut rows: Vec<(i64, T)> = Vec::new();
    // An entry stored in two parts (a head and a file, two flush files)
    // is one entry: the lines taken, by stream and time, as 64-bit hashes.
    type LineHashes = HashMap<i64, Vec<u64>>;
    let mut taken: HashMap<Vec<(String, String)>, LineHashes> = HashMap::new();
    let mut whole: HashSet<usize> = HashSet::new();
    let mut read = 0usize;
    // The unit nearest the starting end next.
    while let Some(next) = (0..units.len()).reduce(|a, b| {
        if nearer(edge(&units[b]), edge(&units[a])) {
            b
        } else {
            a
        }
    }) {
        let mut u = units.swap_remove(next);
        if slicing && u.est > SLICE_ROWS && !whole.contains(&u.part) {
            // The first slice holds about 16 answers' worth (at least
            // 2^16 entries), each next one twice the one before.
            let first = (limit as u64).saturating_mul(16).max(1 << 16);
            let share = u128::from(first) << u.round.min(40);
            let len = (i128::from(u.hi) - i128::from(u.lo)) as u128;
            let width = i64::try_from((len * share / u128::from(u.est)).max(1)).unwrap_or(i64::MAX);
            if u128::try_from(width).unwrap_or(0) < len {
                let (slice, rest) = match direction {
                    Direction::Backward => ((u.hi - width, u.hi), (u.lo, u.hi - width)),
                    Direction::Forward => ((u.lo, u.lo + width), (u.lo + width, u.hi)),
                };
                let p = &parts[u.part];
                units.push(Unit {
                    lo: rest.0,
                    hi: rest.1,
                    est: estimate(p, rest.0, rest.1),
                    round: u.round + 1,
                    ..u
                });
                u = Unit {
                    lo: slice.0,
                    hi: slice.1,
                    est: estimate(p, slice.0, slice.1),
                    ..u
                };
            }
        }
        let found = source
            .select_parts(&[parts[u.part].id], &expr.matchers, &filters, u.lo, u.hi)
            .await?;
        read += found.iter().map(|s| s.entries.len()).sum::<usize>();
        check_entries(read, opts)?;
        let before = rows.len();
        for s in found {
            let lines = taken.entry(s.labels.clone()).or_default();
            for e in &s.entries {
                if e.timestamp_ns < u.lo || e.timestamp_ns >= u.hi {
                    continue;
                }
                let at = lines.entry(e.timestamp_ns).or_default();
                let hash = xxhash_rust::xxh3::xxh3_64(e.line.as_bytes());
                if at.contains(&hash) {
                    continue;
                }
                at.push(hash);
                if let Some(row) = keep(&s.labels, e) {
                    rows.push((e.timestamp_ns, row));
                }
            }
        }
        // Almost nothing passed: the rest of this part in one read.
        if rows.len() - before < limit.div_ceil(8) {
            whole.insert(u.part);
        }
        // Done when `limit` rows lie beyond every unit not read.
        let Some(frontier) = units
            .iter()
            .map(edge)
            .reduce(|a, b| if nearer(b, a) { b } else { a })
        else {
            break;
        };
        let beyond = rows.iter().filter(|r| nearer(r.0, frontier)).count();
        if beyond >= limit {
            break;
        }
    }
    Ok(rows)
}
