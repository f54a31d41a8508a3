use strata_types::{Labels, Sample};

use super::*;

fn batch(tenant: &str, series: &[&[(&str, &str)]], samples_each: usize) -> WriteBatch {
    let mut b = WriteBatch::new(TenantId::try_new(tenant).unwrap());
    for s in series {
        let labels = Labels::try_from_unsorted(
            s.iter()
                .map(|(n, v)| strata_types::Label::new(*n, *v))
                .collect(),
        )
        .unwrap();
        let samples: Vec<Sample> = (0..samples_each)
            .map(|i| Sample {
                timestamp_ms: i as i64,
                value: 1.0,
            })
            .collect();
        b.push(&labels, &samples);
    }
    b
}

#[test]
fn label_shape_limits_are_400s_naming_the_limit() {
    let l = Limits::new(
        TenantLimits {
            max_labels_per_series: 2,
            max_label_value_length: 5,
            max_label_name_length: 8,
            ..TenantLimits::default()
        },
        None,
    )
    .unwrap();
    let r = l
        .check_ingest(
            &batch("t", &[&[("__name__", "m"), ("a", "1"), ("b", "2")]], 1),
            &SeriesAdmission::Unlimited,
        )
        .unwrap_err();
    assert_eq!(
        (r.kind, r.reason),
        (ErrorKind::BadInput, "max_labels_per_series")
    );
    assert!(r.message.contains("limit of 2"), "{}", r.message);
    let r = l
        .check_ingest(
            &batch("t", &[&[("__name__", "m"), ("a", "too long")]], 1),
            &SeriesAdmission::Unlimited,
        )
        .unwrap_err();
    assert_eq!(r.reason, "max_label_value_length");
    // The series over a limit need not be the batch's first.
    let ok: &[(&str, &str)] = &[("__name__", "m"), ("a", "1")];
    for (second, reason) in [
        (
            &[("__name__", "m"), ("a", "1"), ("b", "2")][..],
            "max_labels_per_series",
        ),
        (
            &[("__name__", "m"), ("a", "long!!")],
            "max_label_value_length",
        ),
        (
            &[("__name__", "m"), ("nine_byte", "1")],
            "max_label_name_length",
        ),
    ] {
        let r = l
            .check_ingest(&batch("t", &[ok, second], 1), &SeriesAdmission::Unlimited)
            .unwrap_err();
        assert_eq!(r.reason, reason);
    }
    assert!(
        l.check_ingest(
            &batch("t", &[&[("__name__", "m"), ("a", "ok")]], 1),
            &SeriesAdmission::Unlimited
        )
        .is_ok()
    );
}

#[test]
fn rate_limits_are_split_across_the_ingesters_heard_from() {
    let limits = Limits::with_defaults(TenantLimits {
        ingest_rate: 30.0,
        log_ingest_rate_bytes: 3000.0,
        ..TenantLimits::default()
    });
    limits.set_ingesters(3);
    let s: &[(&str, &str)] = &[("__name__", "m")];
    let r = limits
        .check_ingest(&batch("a", &[s], 11), &SeriesAdmission::Unlimited)
        .unwrap_err();
    assert_eq!(r.reason, "ingest_rate");
    assert!(
        r.message
            .contains("30 samples/s (burst 30), 10 samples/s (burst 10) on each of 3 ingesters"),
        "{}",
        r.message
    );
    limits
        .check_ingest(&batch("a", &[s], 10), &SeriesAdmission::Unlimited)
        .unwrap();
    // A peer gone: the share grows for tenants not yet limited here.
    limits.set_ingesters(1);
    limits
        .check_ingest(&batch("b", &[s], 30), &SeriesAdmission::Unlimited)
        .unwrap();
    assert_eq!(limits.ingesters(), 1);
}

#[test]
fn an_empty_bucket_refuses_before_decoding() {
    let limits = Limits::with_defaults(TenantLimits {
        ingest_rate: 10.0,
        ingest_burst: 10,
        ..TenantLimits::default()
    });
    let t = TenantId::try_new("a").unwrap();
    // Unknown bucket: full.
    assert!(limits.check_ingest_budget(&t).is_ok());
    let s: &[(&str, &str)] = &[("__name__", "m")];
    limits
        .check_ingest(&batch("a", &[s], 10), &SeriesAdmission::Unlimited)
        .unwrap();
    let r = limits.check_ingest_budget(&t).unwrap_err();
    assert_eq!((r.kind, r.reason), (ErrorKind::Limit, "ingest_rate"));
    assert!(r.message.contains("10 samples/s"), "{}", r.message);
    std::thread::sleep(std::time::Duration::from_millis(150));
    assert!(limits.check_ingest_budget(&t).is_ok(), "refilled");
}

#[test]
fn ingest_rate_is_a_token_bucket_per_tenant() {
    let l = Limits::new(
        TenantLimits {
            ingest_rate: 10.0,
            ingest_burst: 20,
            ..TenantLimits::default()
        },
        None,
    )
    .unwrap();
    let s: &[(&str, &str)] = &[("__name__", "m")];
    assert!(
        l.check_ingest(&batch("a", &[s], 15), &SeriesAdmission::Unlimited)
            .is_ok()
    );
    let r = l
        .check_ingest(&batch("a", &[s], 15), &SeriesAdmission::Unlimited)
        .unwrap_err();
    assert_eq!((r.kind, r.reason), (ErrorKind::Limit, "ingest_rate"));
    // Another tenant has its own bucket.
    assert!(
        l.check_ingest(&batch("b", &[s], 15), &SeriesAdmission::Unlimited)
            .is_ok()
    );
}

#[test]
fn overrides_file_merges_over_defaults_and_reloads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("limits.toml");
    std::fs::write(
        &path,
        "[tenants.big]\nmax_series = 1000\nmax_query_lookback = \"30d\"\n",
    )
    .unwrap();
    let l = Limits::new(
        TenantLimits {
            max_series: 10,
            max_query_lookback: std::time::Duration::from_secs(3600),
            ..TenantLimits::default()
        },
        Some(path.clone()),
    )
    .unwrap();
    let big = TenantId::try_new("big").unwrap();
    let small = TenantId::try_new("small").unwrap();
    assert_eq!(l.of(&big).max_series, 1000);
    assert_eq!(
        l.of(&big).max_query_lookback,
        std::time::Duration::from_secs(30 * 86_400)
    );
    assert_eq!(
        l.of(&small).max_query_lookback,
        std::time::Duration::from_secs(3600)
    );
    assert_eq!(l.of(&big).max_labels_per_series, 64);
    assert_eq!(l.of(&small).max_series, 10);
    std::fs::write(&path, "[tenants.big]\nmax_series = 5\n").unwrap();
    let f = std::fs::File::options().append(true).open(&path).unwrap();
    f.set_modified(SystemTime::now() + std::time::Duration::from_secs(1))
        .unwrap();
    assert_eq!(l.reload_if_changed(), Ok(Some(1)));
    assert_eq!(l.of(&big).max_series, 5);
    std::fs::write(&path, "[tenants.big]\nmax_sereis = 5\n").unwrap();
    let f = std::fs::File::options().append(true).open(&path).unwrap();
    f.set_modified(SystemTime::now() + std::time::Duration::from_secs(2))
        .unwrap();
    assert!(l.reload_if_changed().is_err());
    assert_eq!(l.of(&big).max_series, 5);
}

#[test]
fn concurrent_queries_are_counted_per_tenant() {
    let l = Arc::new(
        Limits::new(
            TenantLimits {
                max_concurrent_queries: 1,
                ..TenantLimits::default()
            },
            None,
        )
        .unwrap(),
    );
    let a = TenantId::try_new("a").unwrap();
    let slot = l.start_query(&a, false).unwrap();
    assert_eq!(
        l.start_query(&a, false).err().map(|r| r.reason),
        Some("max_concurrent_queries")
    );
    assert!(
        l.start_query(&TenantId::try_new("b").unwrap(), false)
            .is_ok()
    );
    drop(slot);
    assert!(l.start_query(&a, false).is_ok());
}

/// Rule and analytics evaluations have their own count: a tenant at
/// its query limit still evaluates its rules, up to their limit.
#[test]
fn internal_evaluations_are_counted_apart() {
    let l = Arc::new(
        Limits::new(
            TenantLimits {
                max_concurrent_queries: 1,
                ruler_max_concurrent_queries: 1,
                ..TenantLimits::default()
            },
            None,
        )
        .unwrap(),
    );
    let a = TenantId::try_new("a").unwrap();
    let _dashboard = l.start_query(&a, false).unwrap();
    let rule = l.start_query(&a, true).unwrap();
    assert_eq!(
        l.start_query(&a, true).err().map(|r| r.reason),
        Some("ruler_max_concurrent_queries")
    );
    drop(rule);
    assert!(l.start_query(&a, true).is_ok());
    assert_eq!(
        l.start_query(&a, false).err().map(|r| r.reason),
        Some("max_concurrent_queries")
    );
}

/// An ingester sharing its limits with peers admits no new series before
/// its peers have told theirs (or were found unreachable), for at most
/// [`SETTLE_WAIT`]; writes of live series never wait.
#[tokio::test]
async fn a_sharing_ingester_waits_for_its_peers_before_admitting_new_series() {
    let limits = Arc::new(
        Limits::with_defaults(TenantLimits {
            max_series: 10,
            ..TenantLimits::default()
        })
        .shared(60),
    );
    let s: &[(&str, &str)] = &[("__name__", "m")];
    let b = batch("a", &[s], 1);
    let waiting = {
        let (limits, b) = (Arc::clone(&limits), b.clone());
        tokio::spawn(async move {
            matches!(
                limits.admit_series(&b, 100).await,
                SeriesAdmission::Adds { .. }
            )
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(!waiting.is_finished(), "admitted before the peers told");
    limits.settle();
    let admitted = tokio::time::timeout(std::time::Duration::from_secs(2), waiting)
        .await
        .expect("settling lets it in")
        .unwrap();
    assert!(admitted);
    // Unshared limits never wait.
    let alone = Limits::with_defaults(TenantLimits {
        max_series: 10,
        ..TenantLimits::default()
    });
    let quick = tokio::time::timeout(
        std::time::Duration::from_millis(500),
        alone.admit_series(&b, 100),
    )
    .await;
    assert!(quick.is_ok());
}
