use std::collections::BTreeSet;

use proptest::prelude::*;
use strata_types::SeriesSamples;

use super::*;
use crate::Head;

fn series(pairs: &[(&str, &str)], samples: &[(i64, f64)]) -> SeriesSamples {
    SeriesSamples::try_from_pairs(pairs, samples).unwrap()
}

fn batch(data: &[SeriesSamples]) -> WriteBatch {
    WriteBatch::from_series(TenantId::try_new("t").unwrap(), data.to_vec())
}

fn head_with(data: &[SeriesSamples]) -> TenantHead {
    let h = TenantHead::new(TenantId::try_new("t").unwrap());
    h.append(&batch(data)).unwrap();
    h
}

fn names(h: &TenantHead, m: &[Matcher]) -> Vec<String> {
    h.query(m, i64::MIN, i64::MAX)
        .into_iter()
        .map(|s| s.label("instance").unwrap_or("-").to_owned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

#[test]
fn matchers_follow_prometheus_semantics() {
    let h = head_with(&[
        series(
            &[("__name__", "up"), ("instance", "a"), ("job", "api")],
            &[(1, 1.0)],
        ),
        series(
            &[("__name__", "up"), ("instance", "b"), ("job", "db")],
            &[(1, 1.0)],
        ),
        series(&[("__name__", "up"), ("instance", "c")], &[(1, 0.0)]),
    ]);
    assert_eq!(names(&h, &[Matcher::equal("job", "api")]), ["a"]);
    assert_eq!(names(&h, &[Matcher::not_equal("job", "api")]), ["b", "c"]);
    // `job=""` selects series without `job`; `job!=""` those with it.
    assert_eq!(names(&h, &[Matcher::equal("job", "")]), ["c"]);
    assert_eq!(names(&h, &[Matcher::not_equal("job", "")]), ["a", "b"]);
    assert_eq!(
        names(&h, &[Matcher::regex("job", "a.*|d.").unwrap()]),
        ["a", "b"]
    );
    // Anchored: "pi" does not match "api".
    assert!(names(&h, &[Matcher::regex("job", "pi").unwrap()]).is_empty());
    assert_eq!(
        names(&h, &[Matcher::regex("job", "api|").unwrap()]),
        ["a", "c"]
    );
    assert_eq!(
        names(&h, &[Matcher::not_regex("job", "a.*").unwrap()]),
        ["b", "c"]
    );
    assert_eq!(
        names(
            &h,
            &[
                Matcher::equal("__name__", "up"),
                Matcher::regex("instance", "[bc]").unwrap()
            ]
        ),
        ["b", "c"]
    );
    assert!(names(&h, &[Matcher::equal("__name__", "nope")]).is_empty());
    assert!(Matcher::regex("x", "(").is_err());
}

#[test]
fn same_labels_same_series_and_time_ranges() {
    let h = head_with(&[series(&[("__name__", "m")], &[(10, 1.0), (20, 2.0)])]);
    let stats = h
        .append(&batch(&[series(
            &[("__name__", "m")],
            &[(15, 1.5), (20, 9.0)],
        )]))
        .unwrap();
    assert_eq!(
        stats,
        AppendStats {
            samples: 2,
            new_series: 0
        }
    );
    assert_eq!(h.series_count(), 1);
    let got = h.query(&[], 12, 20);
    assert_eq!(got.len(), 1);
    let vals: Vec<_> = got[0]
        .samples
        .iter()
        .map(|s| (s.timestamp_ms, s.value))
        .collect();
    assert_eq!(vals, vec![(15, 1.5), (20, 9.0)]);
    assert!(h.query(&[], 21, 30).is_empty());
    assert_eq!(&*h.label_names()[0], "__name__");
    assert_eq!(&*h.label_values("__name__")[0], "m");
}

#[test]
fn tenants_are_separate() {
    let head = Head::new();
    let batch = |t: &str| {
        WriteBatch::from_series(
            TenantId::try_new(t).unwrap(),
            vec![series(&[("__name__", t)], &[(1, 1.0)])],
        )
    };
    head.append(&batch("a")).unwrap();
    head.append(&batch("b")).unwrap();
    let a = head.tenant(&TenantId::try_new("a").unwrap()).unwrap();
    let all = a.query(&[], i64::MIN, i64::MAX);
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].label("__name__"), Some("a"));
    assert!(head.tenant(&TenantId::try_new("c").unwrap()).is_none());
}

proptest! {
    /// Model check: the head agrees with a BTreeMap of (labels, ts) → value
    /// with last-write-wins, for any order of writes.
    #[test]
    fn agrees_with_a_model(
        writes in prop::collection::vec((0u8..4, 0u8..3, -5i64..20, -100i32..100), 1..80),
        lo in -5i64..20, span in 0i64..25,
    ) {
        let h = TenantHead::new(TenantId::try_new("t").unwrap());
        let mut model = std::collections::BTreeMap::new();
        for (inst, job, t, v) in writes {
            let inst = format!("i{inst}");
            let job = format!("j{job}");
            h.append(&batch(&[series(&[("__name__", "m"), ("instance", &inst), ("job", &job)], &[(t, f64::from(v))])])).unwrap();
            model.insert((inst, job, t), f64::from(v));
        }
        let hi = lo + span;
        let matchers = [Matcher::regex("job", "j0|j1").unwrap()];
        let mut got = Vec::new();
        for s in h.query(&matchers, lo, hi) {
            for smp in &s.samples {
                got.push((s.label("instance").unwrap().to_owned(), s.label("job").unwrap().to_owned(), smp.timestamp_ms, smp.value));
            }
        }
        got.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let want: Vec<_> = model.into_iter()
            .filter(|((_, j, t), _)| (j == "j0" || j == "j1") && *t >= lo && *t <= hi)
            .map(|((i, j, t), v)| (i, j, t, v))
            .collect();
        prop_assert_eq!(&got, &want);
        prop_assert_eq!(points(&h, &matchers, lo, hi), want);
    }

    /// The same model check over long series (chunk marks every 120
    /// samples) with late writes patched in: `query_points` reads a range
    /// from the mark before it and merges the patches.
    #[test]
    fn points_of_long_series_agree_with_a_model(
        writes in prop::collection::vec((0u8..2, 0i64..1000, any::<bool>()), 1..900),
        lo in 0i64..1000, span in 0i64..1000,
    ) {
        let h = TenantHead::new(TenantId::try_new("t").unwrap());
        let mut model = std::collections::BTreeMap::new();
        // Mostly in order (into the chunk), some late (patches).
        let mut next = [0i64; 2];
        for (k, (inst, t, late)) in writes.into_iter().enumerate() {
            let i = usize::from(inst);
            let t = if late { t } else { next[i] += 1 + t % 3; next[i] };
            let inst = format!("i{inst}");
            let v = k as f64;
            h.append(&batch(&[series(&[("__name__", "m"), ("instance", &inst), ("job", "j0")], &[(t, v)])])).unwrap();
            model.insert((inst, "j0".to_owned(), t), v);
        }
        let hi = lo + span;
        let want: Vec<_> = model.into_iter()
            .filter(|((_, _, t), _)| *t >= lo && *t <= hi)
            .map(|((i, j, t), v)| (i, j, t, v))
            .collect();
        prop_assert_eq!(points(&h, &[], lo, hi), want);
    }
}

/// `query_points` flattened to sorted (instance, job, t, v).
fn points(h: &TenantHead, m: &[Matcher], lo: i64, hi: i64) -> Vec<(String, String, i64, f64)> {
    let label = |l: &[(std::sync::Arc<str>, std::sync::Arc<str>)], n: &str| {
        l.iter()
            .find(|(k, _)| &**k == n)
            .map(|(_, v)| v.to_string())
            .unwrap()
    };
    let mut got = Vec::new();
    for s in h.query_points(m, lo, hi) {
        for &(t, v) in &s.points {
            got.push((label(&s.labels, "instance"), label(&s.labels, "job"), t, v));
        }
    }
    got.sort_by(|a, b| a.partial_cmp(b).unwrap());
    got
}

#[test]
fn series_id_collisions_are_refused_not_merged() {
    // Force a collision: index one label set under the id of another.
    let mut index = Index::default();
    let a = batch(&[series(&[("__name__", "a")], &[(1, 1.0)])]);
    let b = batch(&[series(&[("__name__", "b")], &[(1, 1.0)])]);
    let a = a.series().next().unwrap();
    let b = b.series().next().unwrap();
    let id = a.series_id();
    index.create(id, &a);
    assert_eq!(index.lookup(id, &a).unwrap(), Some(0));
    let err = index.lookup(id, &b).unwrap_err();
    assert!(matches!(err, HeadError::SeriesIdCollision { .. }), "{err}");
    assert!(
        err.to_string().contains("\"a\"") && err.to_string().contains("\"b\""),
        "{err}"
    );
}

#[test]
fn metric_catalog_counts_series_and_label_names() {
    let h = head_with(&[
        series(&[("__name__", "up"), ("job", "api")], &[(1, 1.0)]),
        series(&[("__name__", "up"), ("zone", "eu")], &[(1, 1.0)]),
        series(&[("__name__", "errors"), ("code", "500")], &[(1, 1.0)]),
    ]);
    // The same series again adds nothing.
    h.append(&batch(&[series(
        &[("__name__", "up"), ("job", "api")],
        &[(2, 1.0)],
    )]))
    .unwrap();
    let mut got: Vec<(String, u64, Vec<String>)> = h
        .metric_catalog()
        .into_iter()
        .map(|m| {
            let mut labels: Vec<String> = m.labels.iter().map(|l| l.to_string()).collect();
            labels.sort();
            (m.metric.to_string(), m.series, labels)
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("errors".to_owned(), 1, vec!["code".to_owned()]),
            (
                "up".to_owned(),
                2,
                vec!["job".to_owned(), "zone".to_owned()]
            ),
        ]
    );
}

/// Selections past `PARALLEL_SERIES` are read on several threads: the
/// answer is the same as a serial read's, every series once.
#[test]
fn many_series_read_in_parallel_agree_with_a_serial_read() {
    let h = TenantHead::new(TenantId::try_new("t").unwrap());
    let data: Vec<SeriesSamples> = (0..5000)
        .map(|i| {
            let inst = format!("i{i}");
            series(
                &[("__name__", "m"), ("instance", &inst), ("job", "j0")],
                &[(i64::from(i % 7), f64::from(i)), (10, 1.0), (20, 2.0)],
            )
        })
        .collect();
    h.append(&batch(&data)).unwrap();
    let mut want = Vec::new();
    for s in h.query(&[], 5, 15) {
        for smp in &s.samples {
            want.push((
                s.label("instance").unwrap().to_owned(),
                s.label("job").unwrap().to_owned(),
                smp.timestamp_ms,
                smp.value,
            ));
        }
    }
    want.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let got = points(&h, &[], 5, 15);
    assert_eq!(
        got.len(),
        5000 + 5000 * 2 / 7,
        "series at t 5 and 6, and all at 10"
    );
    assert_eq!(got, want);
}
