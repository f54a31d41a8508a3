//! A subquery's expression at the steps of its grid, kept series by series.
//!
//! A subquery's steps lie on a grid of its step, so consecutive outer
//! steps' windows share most of theirs. Each grid step is evaluated once,
//! its answer appended to the series it belongs to, and each window read
//! off the kept series (Prometheus evaluates a subquery's expression once
//! over the whole range and slices it). A window's series come in the order
//! they first appear in it (by grid step, then by place in that step's
//! answer), as gathering the window step by step would give them: ties in
//! `topk` and friends break the same way.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use super::super::memo::{AddrMap, ptr};
use super::super::{FloatHistogram, Labels};
use super::{RSeries, Samp};

#[cfg(test)]
thread_local! {
    /// Grid steps evaluated on this thread (the test counts them to see
    /// kept steps not evaluated again).
    static STEPS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// A histogram's `Reset`/`NotReset` hint made `Unknown`, as Prometheus
/// does for a subquery's histograms: the grid may skip the sample of a
/// reset, or see it twice, so resets are found from the counts again.
fn unknown_reset(h: Arc<FloatHistogram>) -> Arc<FloatHistogram> {
    use super::super::ResetHint;
    if matches!(h.hint, ResetHint::Reset | ResetHint::NotReset) {
        let mut h = Arc::unwrap_or_clone(h);
        h.hint = ResetHint::Unknown;
        Arc::new(h)
    } else {
        h
    }
}

/// A series' labels and whether its name is dropped.
type Key = (Arc<Labels>, bool);

/// One subquery node's kept steps.
#[derive(Default)]
pub(super) struct SubGrid {
    /// The first and the last grid step kept.
    span: Option<(i64, i64)>,
    series: Vec<SubSeries>,
    index: HashMap<Key, usize>,
    /// By the address of the series' key and its name flag: most steps
    /// answer with the same `Arc`s (a selector's series, interned
    /// groups), so a series is found without hashing its labels' text.
    /// The key keeps its `Arc` alive, so the address is not reused.
    by_ptr: AddrMap<(usize, bool), usize>,
    /// The expression is a scalar (its points are not samples loaded).
    scalar: bool,
}

struct SubSeries {
    key: Key,
    /// (grid step, value, place in that step's answer, the histogram of
    /// a native-histogram sample), in step order.
    points: VecDeque<(i64, f64, u32, Option<Arc<FloatHistogram>>)>,
}

impl SubGrid {
    /// Drops the steps before `from` and answers the first step to
    /// evaluate for a window of steps `from..=to` (`step` apart): the one
    /// after the last kept, or `from` when the kept steps do not lead into
    /// the window (nothing kept, or a window before them: everything is
    /// dropped and evaluated again).
    pub(super) fn advance(&mut self, from: i64, step: i64) -> i64 {
        match self.span {
            Some((first, last)) if first <= from && from <= last.saturating_add(step) => {
                for s in &mut self.series {
                    while s.points.front().is_some_and(|p| p.0 < from) {
                        s.points.pop_front();
                    }
                }
                self.span = Some((from, last));
                last + step
            }
            _ => {
                *self = SubGrid::default();
                from
            }
        }
    }

    /// Samples kept up to `to` (a scalar's points are not samples).
    pub(super) fn samples(&self, to: i64) -> usize {
        if self.scalar {
            return 0;
        }
        self.series
            .iter()
            .map(|s| s.points.iter().take_while(|p| p.0 <= to).count())
            .sum()
    }

    fn series_of(&mut self, key: Key) -> &mut SubSeries {
        let at = (ptr(&key.0), key.1);
        if let Some(&i) = self.by_ptr.get(&at) {
            return &mut self.series[i];
        }
        let n = self.series.len();
        let i = *self.index.entry(key.clone()).or_insert(n);
        if i == n {
            self.by_ptr.insert(at, i);
            self.series.push(SubSeries {
                key,
                points: VecDeque::new(),
            });
        }
        &mut self.series[i]
    }

    fn kept(&mut self, ts: i64) {
        #[cfg(test)]
        STEPS.with(|n| n.set(n.get() + 1));
        self.span = Some(match self.span {
            Some((first, _)) => (first, ts),
            None => (ts, ts),
        });
    }

    /// A scalar answer at grid step `ts` (after the last kept).
    pub(super) fn push_scalar(&mut self, ts: i64, v: f64) {
        self.scalar = true;
        self.series_of((Arc::new(Labels::empty()), false))
            .points
            .push_back((ts, v, 0, None));
        self.kept(ts);
    }

    /// A vector answer at grid step `ts` (after the last kept).
    pub(super) fn push_vector(&mut self, ts: i64, v: Vec<Samp>) {
        for (place, s) in v.into_iter().enumerate() {
            let place = u32::try_from(place).unwrap_or(u32::MAX);
            self.series_of((s.labels, s.drop_name)).points.push_back((
                ts,
                s.v,
                place,
                s.h.map(unknown_reset),
            ));
        }
        self.kept(ts);
    }

    /// The window of steps up to `to`, its series in the order they first
    /// appear in it.
    pub(super) fn window(&self, to: i64) -> Vec<RSeries> {
        let mut first: Vec<((i64, u32), usize)> = self
            .series
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                let p = s.points.front().filter(|p| p.0 <= to)?;
                Some(((p.0, p.2), i))
            })
            .collect();
        first.sort_unstable_by_key(|f| f.0);
        first
            .into_iter()
            .map(|(_, i)| {
                let s = &self.series[i];
                let (mut points, mut hist) = (Vec::new(), Vec::new());
                for p in s.points.iter().take_while(|p| p.0 <= to) {
                    match &p.3 {
                        Some(h) => hist.push((p.0, Arc::clone(h))),
                        None => points.push((p.0, p.1)),
                    }
                }
                if hist.is_empty() {
                    RSeries::new(Arc::clone(&s.key.0), points, s.key.1)
                } else {
                    RSeries::with_histograms(Arc::clone(&s.key.0), points, hist, s.key.1)
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samp(name: &str, v: f64) -> Samp {
        Samp::float(
            Arc::new(Labels::new(vec![("s".to_string(), name.to_string())])),
            0,
            v,
            false,
        )
    }

    fn read(w: &[RSeries]) -> Vec<(String, Vec<(i64, f64)>)> {
        w.iter()
            .map(|s| {
                (
                    s.labels.get("s").unwrap_or("").to_string(),
                    s.points().to_vec(),
                )
            })
            .collect()
    }

    /// A window's series come in the order they first appear in it (as a
    /// window gathered step by step), steps before it are dropped, and kept
    /// steps are not asked for again.
    #[test]
    fn windows_slide_over_kept_steps_in_first_seen_order() {
        let mut g = SubGrid::default();
        assert_eq!(g.advance(10, 10), 10);
        g.push_vector(10, vec![samp("a", 1.0), samp("b", 2.0)]);
        g.push_vector(20, vec![samp("c", 3.0), samp("a", 4.0)]);
        assert_eq!(read(&g.window(20))[0].0, "a");
        // The next window starts at 20: 10 is dropped, 30 is evaluated.
        assert_eq!(g.advance(20, 10), 30);
        g.push_vector(30, vec![samp("b", 5.0), samp("c", 6.0)]);
        assert_eq!(
            read(&g.window(30)),
            vec![
                ("c".to_string(), vec![(20, 3.0), (30, 6.0)]),
                ("a".to_string(), vec![(20, 4.0)]),
                ("b".to_string(), vec![(30, 5.0)]),
            ]
        );
        assert_eq!(g.samples(30), 4);
        assert_eq!(g.samples(20), 2);
        // A window before the kept steps starts over.
        assert_eq!(g.advance(0, 10), 0);
        assert!(g.window(30).is_empty());
    }

    /// A range query over a subquery evaluates the subquery's expression
    /// once per step of its grid: over an hour at 30 s, `[30m:1m]` is the
    /// 30 steps of the first window and one more a minute after (90), not
    /// 30 for each of the 121 outer steps.
    #[tokio::test]
    async fn a_range_query_evaluates_each_grid_step_once() {
        use crate::promql::{Engine, MemorySource, Value};
        let mut src = MemorySource::new();
        let x = Labels::new(vec![("__name__".to_string(), "x".to_string())]);
        for k in -240..=240 {
            src.add(&x, k * 15_000, k as f64);
        }
        STEPS.with(|n| n.set(0));
        let out = Engine::default()
            .range(&src, "max_over_time(x[30m:1m])", 0, 3_600_000, 30_000)
            .await
            .unwrap();
        assert_eq!(STEPS.with(std::cell::Cell::get), 90);
        let Value::Matrix(m) = out.value else {
            panic!("{:?}", out.value);
        };
        // The newest minute step at or before each outer step: x at it.
        let want: Vec<(i64, f64)> = (0..=120)
            .map(|i| i * 30_000)
            .map(|t| (t, (t - t % 60_000) as f64 / 15_000.0))
            .collect();
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].points, want);
    }

    /// The calls under a subquery are computed for every step of its grid
    /// at once (none evaluated step by step), in a range query, a nested
    /// subquery and an instant query alike, with the answers the step by
    /// step evaluation gives (a window shorter than the range step leaves
    /// grid steps unread, and is evaluated step by step).
    #[tokio::test]
    async fn calls_under_a_subquery_are_computed_over_its_grid() {
        use crate::promql::functions::STEPWISE;
        use crate::promql::{Engine, MemorySource, Value};
        let mut src = MemorySource::new();
        for (job, slope) in [("a", 1.0), ("b", 3.0), ("c", 2.0)] {
            let l = Labels::new(vec![
                ("__name__".to_string(), "x".to_string()),
                ("job".to_string(), job.to_string()),
            ]);
            // A counter with a reset 40 minutes in.
            for k in -240..=240i64 {
                let v = if k < 160 { k + 240 } else { k - 160 };
                src.add(&l, k * 15_000, v as f64 * slope);
            }
        }
        let range = |q: &'static str, step: i64| {
            let src = &src;
            async move {
                STEPWISE.with(|n| n.set(0));
                let out = Engine::default()
                    .range(src, q, 0, 3_600_000, step)
                    .await
                    .unwrap();
                let Value::Matrix(m) = out.value else {
                    panic!("{:?}", out.value);
                };
                (m, STEPWISE.with(std::cell::Cell::get))
            }
        };
        let instant = |q: String, t: i64| {
            let src = &src;
            async move {
                let out = Engine::default().instant(src, &q, t).await.unwrap();
                let Value::Vector(v) = out.value else {
                    panic!("{:?}", out.value);
                };
                v
            }
        };
        for q in [
            "max_over_time(rate(x[5m])[30m:1m])",
            "min_over_time(sum by (job) (increase(x[3m]))[20m:45s] offset 2m)",
            "avg_over_time(max_over_time(deriv(x[4m])[6m:1m])[12m:2m])",
            "max_over_time(sum(x)[10m:1m])",
        ] {
            let (m, stepwise) = range(q, 30_000).await;
            assert_eq!(stepwise, 0, "{q}");
            assert!(!m.is_empty(), "{q}");
            // Each step as an instant query (its own window's grid).
            for s in &m {
                for &(t, v) in s.points.iter().step_by(17) {
                    STEPWISE.with(|n| n.set(0));
                    let at = instant(q.to_string(), t).await;
                    assert_eq!(STEPWISE.with(std::cell::Cell::get), 0, "{q} @ {t}");
                    let want = at.iter().find(|x| x.labels == s.labels).map(|x| x.v);
                    assert_eq!(want, Some(v), "{q} @ {t}");
                }
            }
        }
        // Tables past what one evaluator's tables may hold together are
        // not built: the grid's calls are evaluated step by step, with the
        // same answer.
        let (whole, _) = range(
            "max_over_time(rate(x[5m])[30m:1m]) + max_over_time(rate(x[4m])[30m:1m])",
            30_000,
        )
        .await;
        super::super::precompute::CELLS.with(|c| c.set(Some(3 * 91 + 10)));
        let (bounded, stepwise) = range(
            "max_over_time(rate(x[5m])[30m:1m]) + max_over_time(rate(x[4m])[30m:1m])",
            30_000,
        )
        .await;
        super::super::precompute::CELLS.with(|c| c.set(None));
        assert_eq!(
            stepwise, 90,
            "one table of 3 series x 91 steps fits, not two"
        );
        assert_eq!(bounded, whole);
        // Two-minute windows every ten minutes: their grid steps are
        // evaluated where the windows are.
        let (m, stepwise) = range("max_over_time(rate(x[5m])[2m:1m])", 600_000).await;
        assert_eq!(stepwise, 7 * 2);
        assert_eq!(m.len(), 3);
    }
}
