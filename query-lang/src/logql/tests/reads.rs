//! Reads by parts: a limited log query reads from its end only, a big
//! part in slices, and a metric query scans what one part holds alone and
//! slices overlaps — each answering as one read of everything would.

use super::super::ast::{LineFilter, StreamMatcher};
use super::super::eval::*;
use super::super::parse;
use super::super::source::Part;
use super::{Memory, S, opts};

/// A source in parts of 1000 s (as files are), counting the entries it
/// hands out; each stream's entries at times divisible by 500 s stand in
/// two parts (an entry flushed twice).
struct Parted(Memory, std::sync::atomic::AtomicUsize);

const PART_S: i64 = 1000;

impl Parted {
    fn part_of(ts: i64) -> i64 {
        ts.div_euclid(PART_S * S)
    }
}

#[async_trait::async_trait]
impl LogSource for Parted {
    async fn select(
        &self,
        matchers: &[StreamMatcher],
        line_filters: &[LineFilter],
        start_ns: i64,
        end_ns: i64,
    ) -> Result<Vec<SourceStream>, EvalError> {
        let out = self
            .0
            .select(matchers, line_filters, start_ns, end_ns)
            .await?;
        let n: usize = out.iter().map(|s| s.entries.len()).sum();
        self.1.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        Ok(out)
    }

    fn parts(&self, start_ns: i64, end_ns: i64) -> Vec<Part> {
        (Self::part_of(start_ns)..=Self::part_of(end_ns - 1))
            .map(|p| Part {
                id: p as usize,
                min_ns: p * PART_S * S,
                max_ns: (p + 1) * PART_S * S,
                rows: 1_200,
            })
            .collect()
    }

    async fn select_parts(
        &self,
        parts: &[usize],
        matchers: &[StreamMatcher],
        line_filters: &[LineFilter],
        start_ns: i64,
        end_ns: i64,
    ) -> Result<Vec<SourceStream>, EvalError> {
        let mut out = Vec::new();
        for &id in parts {
            let p = Part {
                id,
                min_ns: id as i64 * PART_S * S,
                max_ns: (id as i64 + 1) * PART_S * S,
                rows: 1_200,
            };
            // A part holds its own entries and the next part's first one.
            let mut streams = self
                .0
                .select(
                    matchers,
                    line_filters,
                    p.min_ns.max(start_ns),
                    (p.max_ns + 1).min(end_ns),
                )
                .await?;
            for s in &mut streams {
                s.entries
                    .retain(|e| e.timestamp_ns < p.max_ns || e.timestamp_ns % (500 * S) == 0);
            }
            let n: usize = streams.iter().map(|s| s.entries.len()).sum();
            self.1.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
            out.extend(streams);
        }
        Ok(out)
    }
}

/// A limited log query reads parts from its end until the limit is met,
/// not the whole range, and answers as a full read would, an entry stored
/// in two parts once.
#[tokio::test]
async fn limited_log_queries_read_from_their_end_only() {
    let stream = |level: &str, every: i64| SourceStream {
        labels: vec![
            ("job".into(), "odoo".into()),
            ("level".into(), level.into()),
        ],
        entries: (0..10_000)
            .step_by(every as usize)
            .map(|t| SourceEntry {
                timestamp_ns: t * S,
                line: format!("{level} {t}"),
                metadata: Vec::new(),
            })
            .collect(),
    };
    let data = || Memory(vec![stream("info", 1), stream("error", 5)]);
    let crate::logql::Query::Log(e) = parse(r#"{job="odoo"} != "x""#).unwrap() else {
        panic!()
    };
    let flat = |out: Vec<OutStream>, direction: Direction| {
        let mut v: Vec<_> = out
            .into_iter()
            .flat_map(|s| {
                s.entries
                    .into_iter()
                    .map(move |x| (x.0, s.labels.clone(), x.1))
            })
            .collect();
        match direction {
            Direction::Backward => v.sort_by_key(|r| std::cmp::Reverse(r.0)),
            Direction::Forward => v.sort_by_key(|r| r.0),
        }
        v
    };
    for (limit, direction) in [
        (20, Direction::Backward),
        (20, Direction::Forward),
        (2_500, Direction::Backward),
    ] {
        let parted = Parted(data(), Default::default());
        let limited = eval_log(&parted, &e, 0, 10_000 * S, limit, direction, &opts())
            .await
            .unwrap();
        let read = parted.1.load(std::sync::atomic::Ordering::Relaxed);
        let mut all = flat(
            eval_log(&data(), &e, 0, 10_000 * S, 0, direction, &opts())
                .await
                .unwrap(),
            direction,
        );
        all.truncate(limit);
        assert_eq!(flat(limited, direction), all, "{limit} {direction:?}");
        // 12,000 entries in ten parts of 1,200: one or two parts read.
        let parts_read = read.div_ceil(1_200);
        assert!(
            parts_read <= limit / 1_200 + 2,
            "{limit} {direction:?}: read {read} entries"
        );
    }
}

/// One part said to hold 100M entries (10,000 here): read in slices.
struct Big(
    Memory,
    std::sync::atomic::AtomicUsize,
    std::sync::atomic::AtomicUsize,
);

#[async_trait::async_trait]
impl LogSource for Big {
    async fn select(
        &self,
        matchers: &[StreamMatcher],
        line_filters: &[LineFilter],
        start_ns: i64,
        end_ns: i64,
    ) -> Result<Vec<SourceStream>, EvalError> {
        self.0
            .select(matchers, line_filters, start_ns, end_ns)
            .await
    }

    fn parts(&self, _start_ns: i64, _end_ns: i64) -> Vec<Part> {
        vec![Part {
            id: 7,
            min_ns: 0,
            max_ns: 9_999 * S,
            rows: 100_000_000,
        }]
    }

    async fn select_parts(
        &self,
        parts: &[usize],
        matchers: &[StreamMatcher],
        line_filters: &[LineFilter],
        start_ns: i64,
        end_ns: i64,
    ) -> Result<Vec<SourceStream>, EvalError> {
        assert_eq!(parts, [7]);
        let out = self
            .0
            .select(matchers, line_filters, start_ns, end_ns)
            .await?;
        let n: usize = out.iter().map(|s| s.entries.len()).sum();
        self.1.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        self.2.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(out)
    }
}

/// A big part is read from its near end in slices; a filter that finds
/// almost nothing in the first slice has the rest read in one go.
#[tokio::test]
async fn a_big_part_is_sliced_and_a_needle_reads_it_about_once() {
    let data = || {
        Memory(vec![SourceStream {
            labels: vec![("job".into(), "odoo".into())],
            entries: (0..10_000)
                .map(|t| SourceEntry {
                    timestamp_ns: t * S,
                    line: format!("line {t}"),
                    metadata: Vec::new(),
                })
                .collect(),
        }])
    };
    let run = |q: &'static str, limit: usize| async move {
        let crate::logql::Query::Log(e) = parse(q).unwrap() else {
            panic!()
        };
        let big = Big(data(), Default::default(), Default::default());
        let out = eval_log(&big, &e, 0, 10_000 * S, limit, Direction::Backward, &opts())
            .await
            .unwrap();
        let lines: Vec<String> = out
            .into_iter()
            .flat_map(|s| s.entries)
            .map(|e| e.1)
            .collect();
        let read = big.1.load(std::sync::atomic::Ordering::Relaxed);
        let calls = big.2.load(std::sync::atomic::Ordering::Relaxed);
        (lines, read, calls)
    };
    // 2^16 of the 100M said to be there is 1/1526 of the range: 7 entries;
    // then 13 (twice as long), 27, 53: 50 found in four slices.
    let (lines, read, calls) = run(r#"{job="odoo"}"#, 50).await;
    assert_eq!(lines.len(), 50);
    assert_eq!(lines[0], "line 9999");
    assert!(read < 120 && calls == 4, "read {read} in {calls}");
    // A label filter that passes almost nothing: a slice, then the rest.
    let (lines, read, calls) = run(
        r#"{job="odoo"} | regexp "line (?P<n>\\d+)" | n =~ "42.*""#,
        10,
    )
    .await;
    let mut lines = lines;
    lines.sort();
    let want: Vec<String> = (4290..4300).map(|t| format!("line {t}")).collect();
    assert_eq!(lines, want);
    assert_eq!(calls, 2, "a slice, then the rest at once");
    assert_eq!(read, 10_000, "every entry once");
    // A line filter reads the part whole, once.
    let (lines, _, calls) = run(r#"{job="odoo"} |= "line 42""#, 10).await;
    assert_eq!((lines.len(), calls), (10, 1));
}

/// A source said to hold 100M entries (20,000 here) in two parts over
/// [0, 6000 s] and [4000 s, 9999 s]: metric queries scan what one part
/// holds alone (here in runs of at most 100 entries) and read the overlap
/// in time slices. Counts the most entries one read or run held, the
/// reads, and the part scans asked for no lines — which get entries
/// with empty lines, as a file scan hands them out.
struct Said(
    Memory,
    std::sync::atomic::AtomicUsize,
    std::sync::atomic::AtomicUsize,
    std::sync::atomic::AtomicUsize,
);

#[async_trait::async_trait]
impl LogSource for Said {
    async fn select(
        &self,
        matchers: &[StreamMatcher],
        line_filters: &[LineFilter],
        start_ns: i64,
        end_ns: i64,
    ) -> Result<Vec<SourceStream>, EvalError> {
        let out = self
            .0
            .select(matchers, line_filters, start_ns, end_ns)
            .await?;
        let n: usize = out.iter().map(|s| s.entries.len()).sum();
        self.1.fetch_max(n, std::sync::atomic::Ordering::Relaxed);
        self.2.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(out)
    }

    fn parts(&self, _start_ns: i64, _end_ns: i64) -> Vec<Part> {
        vec![
            Part {
                id: 3,
                min_ns: 0,
                max_ns: 6_000 * S,
                rows: 60_000_000,
            },
            Part {
                id: 4,
                min_ns: 4_000 * S,
                max_ns: 9_999 * S,
                rows: 60_000_000,
            },
        ]
    }

    async fn scan_part(
        &self,
        part: usize,
        matchers: &[StreamMatcher],
        line_filters: &[LineFilter],
        lines: bool,
        start_ns: i64,
        end_ns: i64,
        visit: &mut crate::logql::Visit<'_>,
    ) -> Result<(), EvalError> {
        // Alone: part 3 before 4000 s, part 4 after 6000 s.
        let alone = match part {
            3 => (0, 4_000 * S),
            4 => (6_000 * S + 1, 10_000 * S),
            _ => panic!("no part {part}"),
        };
        assert!(
            start_ns >= alone.0 && end_ns <= alone.1,
            "{part}: {start_ns}..{end_ns}"
        );
        let streams = self
            .0
            .select(matchers, line_filters, start_ns, end_ns)
            .await?;
        if !lines {
            self.3.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        for mut s in streams {
            if !lines {
                for e in &mut s.entries {
                    e.line.clear();
                }
            }
            for run in s.entries.chunks(100) {
                visit(&s.labels, run);
            }
        }
        self.2.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}

/// A metric query folds what it reads into its answer slice by slice,
/// holding a sliver of the range at a time, and answers exactly what one
/// read of everything does — every range function, windows longer and
/// shorter than the step, an offset.
#[tokio::test]
async fn metric_queries_read_in_time_slices_and_answer_as_one_read() {
    let data = || {
        let stream = |level: &str, every: usize| SourceStream {
            labels: vec![
                ("job".into(), "odoo".into()),
                ("level".into(), level.into()),
            ],
            entries: (0..10_000)
                .step_by(every)
                .map(|t| SourceEntry {
                    timestamp_ns: t as i64 * S,
                    line: format!("n={} ms={}.5 pad={}", t % 7, t % 13, "x".repeat(t % 5)),
                    metadata: Vec::new(),
                })
                .collect(),
        };
        Memory(vec![
            stream("info", 1),
            stream("error", 1),
            stream("warn", 97),
        ])
    };
    let queries = [
        r#"sum by (level) (count_over_time({job="odoo"} [10m]))"#,
        r#"count_over_time({job="odoo"} |= "n=3" [1m] offset 5m)"#,
        r#"rate({job="odoo"} [30s])"#,
        r#"bytes_over_time({job="odoo"} [20m])"#,
        r#"bytes_rate({job="odoo"} [7m])"#,
        r#"sum_over_time({job="odoo"} | logfmt | unwrap ms [5m])"#,
        r#"rate({job="odoo"} | logfmt | unwrap ms [5m])"#,
        r#"min_over_time({job="odoo"} | logfmt | unwrap n [3m]) by (level)"#,
        r#"max_over_time({job="odoo"} | logfmt | unwrap ms [15m])"#,
        r#"avg_over_time({job="odoo"} | logfmt | unwrap ms [5m])"#,
        r#"stddev_over_time({job="odoo"} | logfmt | unwrap ms [5m])"#,
        r#"quantile_over_time(0.9, {job="odoo"} | logfmt | unwrap ms [5m]) by (level)"#,
        r#"first_over_time({job="odoo", level="warn"} | logfmt | unwrap n [30m])"#,
        r#"last_over_time({job="odoo", level="warn"} | logfmt | unwrap n [30m])"#,
        r#"rate_counter({job="odoo"} | logfmt | unwrap ms [5m])"#,
        r#"absent_over_time({job="odoo", level="warn"} [1m])"#,
    ];
    for q in queries {
        let crate::logql::Query::Metric(e) = parse(q).unwrap() else {
            panic!("{q}")
        };
        for (start, end, step) in [(0, 12_000, 60), (1_000, 9_000, 600), (5_000, 5_000, 1)] {
            let said = Said(
                data(),
                Default::default(),
                Default::default(),
                Default::default(),
            );
            let sliced = eval_metric(&said, &e, start * S, end * S, step * S, &opts())
                .await
                .unwrap();
            let whole = eval_metric(&data(), &e, start * S, end * S, step * S, &opts())
                .await
                .unwrap();
            assert_eq!(sliced, whole, "{q} {start}..{end} by {step}");
            // Through a pipeline that rebuilds every entry's labels (the
            // same ones): the same answer as counting per stream.
            if let Some(at) = q.find(" [").filter(|_| !q.contains("unwrap")) {
                let slow = format!("{} | keep job, level{}", &q[..at], &q[at..]);
                let crate::logql::Query::Metric(e) = parse(&slow).unwrap() else {
                    panic!("{slow}")
                };
                let rebuilt = eval_metric(&data(), &e, start * S, end * S, step * S, &opts())
                    .await
                    .unwrap();
                assert_eq!(rebuilt, whole, "{slow}");
            }
            let most = said.1.load(std::sync::atomic::Ordering::Relaxed);
            let calls = said.2.load(std::sync::atomic::Ordering::Relaxed);
            let lineless = said.3.load(std::sync::atomic::Ordering::Relaxed);
            if end > start {
                assert!(calls > 3, "{q}: {calls} reads");
                assert!(most < 10_000, "{q}: {most} entries in one read");
                // A plain count scans its parts without lines (and the
                // answers above, equal to one read of whole entries, show
                // nothing that needs lines went without them).
                let plain_count = !q.contains('|')
                    && (q.contains("count_over_time(")
                        || q.starts_with("rate(")
                        || q.starts_with("absent_over_time("));
                assert_eq!(
                    lineless > 0,
                    plain_count,
                    "{q}: {lineless} scans without lines"
                );
            }
        }
    }
}
