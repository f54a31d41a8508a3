//! Created-timestamp zero injection, as Prometheus 3 does it
//! (`--enable-feature=created-timestamp-zero-ingestion`): a cumulative
//! series that says when it started (remote write 2.0's
//! `Sample.start_timestamp`, OTLP's `start_time_unix_nano`) gets a 0 sample
//! at that start time, so `rate` and `increase` count what it gained
//! before its first sample and see a reset where it restarted.
//!
//! A sample at `t` with start `st` adds `(st, 0)` before itself when
//! `st < t` and `st` is newer than every sample the series already has
//! (in the head, or earlier in the same request) and than `floor`, the
//! newest time the caller knows to be stored outside the head (a flushed
//! series' samples are not looked up one by one). A start at or before
//! what is stored is not a new start: it is the one a sender repeats with
//! every sample, or an out-of-order one, and is skipped, as Prometheus
//! skips it with `ErrOutOfOrderCT` / out of bounds. Stale markers and
//! starts outside the storable time range add nothing.

use strata_types::{Sample, WriteBatch, is_stale_nan, timestamp_in_range};

/// `batch` with the zero samples its start timestamps call for, and how
/// many were added; `None` when none is (the batch stands as it is).
///
/// `starts` holds a start time (ms, 0: none) for each sample of `batch` in
/// its sample order (shorter: the rest have none). `newest(i)` is
/// the newest sample time the store holds for the batch's `i`-th series
/// (`None`: none known).
pub fn inject(
    batch: &WriteBatch,
    starts: &[i64],
    floor_ms: Option<i64>,
    mut newest: impl FnMut(usize) -> Option<i64>,
) -> Option<(WriteBatch, u64)> {
    if starts.iter().all(|&st| st == 0) {
        return None;
    }
    // Which series gain a zero, and where: found before anything is
    // rebuilt, so a request whose starts are all known (every write after
    // a series' first) costs one pass.
    let mut plan: Vec<(usize, Vec<Sample>)> = Vec::new();
    let mut offset = 0;
    for (i, series) in batch.series().enumerate() {
        let samples = series.samples();
        let own = starts.get(offset..).unwrap_or_default();
        offset += samples.len();
        if own.iter().take(samples.len()).all(|&st| st == 0) {
            continue;
        }
        let mut last = max_opt(newest(i), floor_ms);
        let mut out: Vec<Sample> = Vec::new();
        let mut zeros = false;
        for (k, s) in samples.iter().enumerate() {
            let st = own.get(k).copied().unwrap_or(0);
            if st != 0
                && st < s.timestamp_ms
                && last.is_none_or(|l| st > l)
                && timestamp_in_range(st)
                && !is_stale_nan(s.value)
            {
                if !zeros {
                    out.extend_from_slice(&samples[..k]);
                    zeros = true;
                }
                out.push(Sample {
                    timestamp_ms: st,
                    value: 0.0,
                });
                last = Some(st);
            }
            if zeros {
                out.push(*s);
            }
            last = max_opt(last, Some(s.timestamp_ms));
        }
        if zeros {
            plan.push((i, out));
        }
    }
    if plan.is_empty() {
        return None;
    }
    let widths = batch.label_widths();
    let mut b =
        WriteBatch::with_capacity(batch.tenant.clone(), batch.series_count(), widths.labels);
    let mut added = 0u64;
    let mut next = plan.into_iter().peekable();
    for (i, series) in batch.series().enumerate() {
        match next.next_if(|(j, _)| *j == i) {
            Some((_, samples)) => {
                added += (samples.len() - series.samples().len()) as u64;
                b.push_validated(series.labels(), samples);
            }
            None => b.push_validated(series.labels(), series.samples().iter().copied()),
        }
    }
    Some((b, added))
}

/// Adds a series' start timestamps (`samples` as `(sample, start)`) to a
/// decoder's `starts`, which stays empty until some start is set; then it
/// is filled with zeros for the `stored` samples before it.
pub(crate) fn extend_starts(starts: &mut Vec<i64>, stored: usize, samples: &[(Sample, i64)]) {
    if starts.is_empty() && samples.iter().all(|(_, start)| *start == 0) {
        return;
    }
    starts.resize(stored, 0);
    starts.extend(samples.iter().map(|(_, start)| *start));
}

fn max_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_types::{Label, Labels, TenantId, stale_nan};

    fn series(name: &str) -> Labels {
        Labels::try_from_sorted(vec![Label::new("__name__", name)]).unwrap()
    }

    fn batch(series_samples: &[(&str, &[(i64, f64)])]) -> WriteBatch {
        let mut b = WriteBatch::new(TenantId::try_new("t").unwrap());
        for (name, samples) in series_samples {
            let samples: Vec<Sample> = samples
                .iter()
                .map(|&(timestamp_ms, value)| Sample {
                    timestamp_ms,
                    value,
                })
                .collect();
            b.push(&series(name), &samples);
        }
        b
    }

    fn points(b: &WriteBatch) -> Vec<Vec<(i64, f64)>> {
        b.series()
            .map(|s| {
                s.samples()
                    .iter()
                    .map(|x| (x.timestamp_ms, x.value))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn a_new_series_gets_a_zero_at_its_start() {
        let b = batch(&[("a_total", &[(1000, 5.0), (2000, 7.0)])]);
        let (out, added) = inject(&b, &[500, 500], None, |_| None).unwrap();
        assert_eq!(added, 1);
        assert_eq!(
            points(&out),
            vec![vec![(500, 0.0), (1000, 5.0), (2000, 7.0)]]
        );
        assert_eq!(out.series().next().unwrap().labels().count(), 1);
    }

    #[test]
    fn a_start_the_store_is_past_adds_nothing() {
        let b = batch(&[("a_total", &[(3000, 9.0)])]);
        // The series' newest stored sample is after its start: the start
        // is the one sent with every sample since.
        assert!(inject(&b, &[500], None, |_| Some(2000)).is_none());
        // Not in the head, but the store holds data past the start.
        assert!(inject(&b, &[500], Some(2500), |_| None).is_none());
        // A start equal to the sample's time, or after it.
        assert!(inject(&b, &[3000], None, |_| None).is_none());
        assert!(inject(&b, &[4000], None, |_| None).is_none());
        // No start at all.
        assert!(inject(&b, &[0], None, |_| None).is_none());
        assert!(inject(&b, &[], None, |_| None).is_none());
    }

    #[test]
    fn a_restart_within_a_request_gets_its_own_zero() {
        // A counter at 40 restarts (start 2500) and counts 3 by t=3000.
        let b = batch(&[("a_total", &[(1000, 30.0), (2000, 40.0), (3000, 3.0)])]);
        let (out, added) = inject(&b, &[100, 100, 2500], Some(50), |_| None).unwrap();
        assert_eq!(added, 2);
        assert_eq!(
            points(&out),
            vec![vec![
                (100, 0.0),
                (1000, 30.0),
                (2000, 40.0),
                (2500, 0.0),
                (3000, 3.0)
            ]]
        );
    }

    #[test]
    fn only_series_with_a_new_start_change_and_order_is_kept() {
        let b = batch(&[
            ("a_total", &[(1000, 1.0)]),
            ("b_total", &[(1000, 2.0)]),
            ("c", &[(1000, 3.0)]),
        ]);
        let newest = |i: usize| (i == 0).then_some(900);
        let (out, added) = inject(&b, &[800, 800, 0], None, newest).unwrap();
        assert_eq!(added, 1);
        assert_eq!(
            points(&out),
            vec![
                vec![(1000, 1.0)],
                vec![(800, 0.0), (1000, 2.0)],
                vec![(1000, 3.0)]
            ]
        );
        let names: Vec<String> = out
            .series()
            .map(|s| s.label("__name__").unwrap().to_owned())
            .collect();
        assert_eq!(names, ["a_total", "b_total", "c"]);
    }

    #[test]
    fn stale_markers_and_unstorable_starts_add_nothing() {
        let b = batch(&[("a_total", &[(1000, stale_nan())])]);
        assert!(inject(&b, &[500], None, |_| None).is_none());
        let b = batch(&[("a_total", &[(1000, 1.0)])]);
        assert!(inject(&b, &[i64::MIN + 1], None, |_| None).is_none());
    }
}
