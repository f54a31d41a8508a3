//! LogQL evaluated end to end over streams in memory: the examples of
//! Loki's documentation and the semantics Grafana's panels rely on.

use std::collections::HashMap;

use super::ast::{LineFilter, StreamMatcher};
use super::eval::*;
use super::parse;

mod reads;

/// Streams in memory; equality matchers only.
pub(super) struct Memory(pub Vec<SourceStream>);

#[async_trait::async_trait]
impl LogSource for Memory {
    async fn select(
        &self,
        matchers: &[StreamMatcher],
        _line_filters: &[LineFilter],
        start_ns: i64,
        end_ns: i64,
    ) -> Result<Vec<SourceStream>, EvalError> {
        Ok(self
            .0
            .iter()
            .filter(|s| {
                matchers.iter().all(|m| {
                    let v = s
                        .labels
                        .iter()
                        .find(|(k, _)| *k == m.name)
                        .map_or("", |(_, v)| v);
                    v == m.value
                })
            })
            .map(|s| SourceStream {
                labels: s.labels.clone(),
                entries: s
                    .entries
                    .iter()
                    .filter(|e| e.timestamp_ns >= start_ns && e.timestamp_ns < end_ns)
                    .cloned()
                    .collect(),
            })
            .collect())
    }
}

pub(super) const S: i64 = 1_000_000_000;

fn source() -> Memory {
    let stream = |level: &str, times: &[i64]| SourceStream {
        labels: vec![
            ("job".into(), "odoo".into()),
            ("level".into(), level.into()),
        ],
        entries: times
            .iter()
            .map(|t| SourceEntry {
                timestamp_ns: t * S,
                line: format!("{level} at {t}"),
                metadata: Vec::new(),
            })
            .collect(),
    };
    Memory(vec![
        stream("info", &[1, 2, 3, 61, 62]),
        stream("error", &[30, 90]),
    ])
}

pub(super) fn opts() -> Options {
    Options {
        max_entries: 0,
        max_series: 0,
    }
}

async fn metric(q: &str, start: i64, end: i64, step: i64) -> Value {
    let crate::logql::Query::Metric(e) = parse(q).unwrap() else {
        panic!()
    };
    eval_metric(&source(), &e, start * S, end * S, step * S, &opts())
        .await
        .unwrap()
}

#[tokio::test]
async fn counts_per_window_and_aggregates() {
    let Value::Series(s) = metric(
        r#"sum by (level) (count_over_time({job="odoo"}[60s]))"#,
        60,
        120,
        60,
    )
    .await
    else {
        panic!()
    };
    let by: HashMap<String, Vec<(i64, f64)>> = s
        .into_iter()
        .map(|s| (s.labels["level"].clone(), s.points))
        .collect();
    // (0, 60]: info 1,2,3; error 30. (60, 120]: info 61,62; error 90.
    assert_eq!(by["info"], vec![(60 * S, 3.0), (120 * S, 2.0)]);
    assert_eq!(by["error"], vec![(60 * S, 1.0), (120 * S, 1.0)]);
    let Value::Series(s) =
        metric(r#"topk(1, count_over_time({job="odoo"}[60s]))"#, 60, 60, 60).await
    else {
        panic!()
    };
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].labels["level"], "info");
    let Value::Series(s) = metric("vector(1)+vector(1)", 5, 5, 1).await else {
        panic!()
    };
    assert_eq!(s[0].points, vec![(5 * S, 2.0)]);
    let Value::Series(s) = metric(
        r#"rate({job="odoo", level="info"}[60s]) > 0.04"#,
        60,
        120,
        60,
    )
    .await
    else {
        panic!()
    };
    assert_eq!(s[0].points, vec![(60 * S, 0.05)]);
}

#[tokio::test]
async fn log_queries_take_the_newest_first_by_default() {
    let crate::logql::Query::Log(e) = parse(r#"{job="odoo"} |= "at""#).unwrap() else {
        panic!()
    };
    let out = eval_log(&source(), &e, 0, 100 * S, 3, Direction::Backward, &opts())
        .await
        .unwrap();
    let all: Vec<i64> = out
        .iter()
        .flat_map(|s| s.entries.iter().map(|e| e.0 / S))
        .collect();
    assert_eq!(all.len(), 3);
    assert!(all.contains(&90) && all.contains(&62) && all.contains(&61));
    let limited = eval_log(
        &source(),
        &e,
        0,
        100 * S,
        0,
        Direction::Forward,
        &Options {
            max_entries: 3,
            max_series: 0,
        },
    )
    .await;
    assert!(matches!(limited, Err(EvalError::TooManyEntries { .. })));
}

/// An API's access log: logfmt lines, two paths, two levels.
fn api() -> Memory {
    let stream = |path: &str, level: &str, lines: &[(i64, &str)]| SourceStream {
        labels: vec![
            ("job".into(), "api".into()),
            ("level".into(), level.into()),
            ("path".into(), path.into()),
        ],
        entries: lines
            .iter()
            .map(|(t, l)| SourceEntry {
                timestamp_ns: t * S,
                line: (*l).to_owned(),
                metadata: Vec::new(),
            })
            .collect(),
    };
    Memory(vec![
        stream(
            "/a",
            "info",
            &[
                (10, "latency=1 took=1.5s size=1KiB n=1"),
                (20, "latency=2 took=250ms size=2KiB n=2"),
                (30, "latency=3 took=1m size=1KB n=3"),
                (40, "latency=4 took=2s size=3B n=4"),
            ],
        ),
        stream(
            "/b",
            "info",
            &[(15, "latency=10 took=1s"), (25, "latency=20")],
        ),
        stream("/a", "error", &[(35, "latency=100 took=1h")]),
    ])
}

async fn eval_on(
    src: &Memory,
    q: &str,
    start: i64,
    end: i64,
    step: i64,
) -> Result<Value, EvalError> {
    let super::Query::Metric(e) = parse(q).unwrap_or_else(|e| panic!("{q}: {e}")) else {
        panic!("{q} is not a metric query")
    };
    eval_metric(src, &e, start * S, end * S, step * S, &opts()).await
}

/// The single value of each series at one step, by a label's value.
async fn instant(q: &str, by: &str) -> HashMap<String, f64> {
    let Value::Series(s) = eval_on(&api(), q, 60, 60, 60)
        .await
        .unwrap_or_else(|e| panic!("{q}: {e}"))
    else {
        panic!("{q} gave a scalar")
    };
    s.into_iter()
        .map(|s| {
            assert_eq!(s.points.len(), 1, "{q}: {s:?}");
            (s.labels.get(by).cloned().unwrap_or_default(), s.points[0].1)
        })
        .collect()
}

#[tokio::test]
async fn unwrapped_range_aggregations() {
    let one = |q: &'static str| async move {
        let m = instant(q, "path").await;
        assert_eq!(m.len(), 1, "{q}: {m:?}");
        m["/a"]
    };
    // Every parsed label is part of the series: extract only the unwrapped one.
    let sel = r#"{job="api", level="info", path="/a"} | logfmt latency, took, size"#;
    for (f, want) in [
        ("sum_over_time", 10.0),
        ("avg_over_time", 2.5),
        ("min_over_time", 1.0),
        ("max_over_time", 4.0),
        ("stdvar_over_time", 1.25),
        ("stddev_over_time", 1.25f64.sqrt()),
        ("first_over_time", 1.0),
        ("last_over_time", 4.0),
        ("rate", 10.0 / 60.0),
        // Loki's extrapolation: 3 × (30 s + 10 s to the counter's zero) / 30 s, per 60 s.
        ("rate_counter", 4.0 / 60.0),
    ] {
        let q = format!("{f}({sel} | keep path, latency | unwrap latency [1m])");
        let got = one(Box::leak(q.clone().into_boxed_str())).await;
        assert!((got - want).abs() < 1e-12, "{q}: {got} != {want}");
    }
    let q = format!("quantile_over_time(0.5, {sel} | drop took, size | unwrap latency [1m])");
    assert_eq!(one(Box::leak(q.into_boxed_str())).await, 2.5);
    // Conversions: Go durations and humanized sizes.
    let q = format!("sum_over_time({sel} | drop latency, size | unwrap duration(took) [1m])");
    assert_eq!(
        one(Box::leak(q.into_boxed_str())).await,
        1.5 + 0.25 + 60.0 + 2.0
    );
    let q = format!("sum_over_time({sel} | drop latency, took | unwrap bytes(size) [1m])");
    assert_eq!(
        one(Box::leak(q.into_boxed_str())).await,
        1024.0 + 2048.0 + 1000.0 + 3.0
    );
    // Grouping merges streams before the function; the unwrapped label
    // leaves the series either way.
    let by = instant(
        r#"max_over_time({job="api"} | logfmt | unwrap latency [1m]) by (level)"#,
        "level",
    )
    .await;
    assert_eq!(
        by,
        HashMap::from([("info".into(), 20.0), ("error".into(), 100.0)])
    );
    let Value::Series(s) = eval_on(
        &api(),
        r#"max_over_time({job="api", path="/b"} | logfmt | drop took | unwrap latency [1m])"#,
        60,
        60,
        60,
    )
    .await
    .unwrap() else {
        panic!()
    };
    assert!(!s[0].labels.contains_key("latency"));
    assert_eq!(s[0].labels["path"], "/b");
}

#[tokio::test]
async fn pipeline_errors_fail_metric_queries_unless_filtered() {
    // `/b`'s second line has no `took`: SampleExtractionErr.
    let q = r#"sum_over_time({job="api", path="/b"} | logfmt | unwrap duration(took) [1m])"#;
    let e = eval_on(&api(), q, 60, 60, 60).await.unwrap_err();
    assert!(
        matches!(&e, EvalError::Pipeline { error, .. } if error == "SampleExtractionErr"),
        "{e}"
    );
    assert!(e.to_string().contains("__error__=\"\""), "{e}");
    let q = r#"sum_over_time({job="api", path="/b"} | logfmt | unwrap duration(took) | __error__="" [1m])"#;
    assert_eq!(instant(q, "path").await["/b"], 1.0);
    // A parser's error too (logfmt lines are not JSON).
    let q = r#"count_over_time({job="api"} | json [1m])"#;
    assert!(matches!(
        eval_on(&api(), q, 60, 60, 60).await,
        Err(EvalError::Pipeline { .. })
    ));
    let q = r#"sum(count_over_time({job="api"} | json | drop __error__, __error_details__ [1m]))"#;
    assert_eq!(instant(q, "").await[""], 7.0);
}

#[tokio::test]
async fn absent_over_time_answers_where_nothing_is() {
    let Value::Series(s) = eval_on(
        &api(),
        r#"absent_over_time({job="api", path="/c", level=~"e.*"}[10s])"#,
        20,
        40,
        10,
    )
    .await
    .unwrap() else {
        panic!()
    };
    assert_eq!(s.len(), 1);
    assert_eq!(
        s[0].labels.iter().collect::<Vec<_>>(),
        vec![
            (&"job".to_owned(), &"api".to_owned()),
            (&"path".to_owned(), &"/c".to_owned())
        ]
    );
    assert_eq!(
        s[0].points,
        vec![(20 * S, 1.0), (30 * S, 1.0), (40 * S, 1.0)]
    );
    // `/a` error has one entry, at 35: absent at 20, 30 and 50, not 40.
    let Value::Series(s) = eval_on(
        &api(),
        r#"absent_over_time({job="api", level="error"}[10s])"#,
        20,
        50,
        10,
    )
    .await
    .unwrap() else {
        panic!()
    };
    let steps: Vec<i64> = s[0].points.iter().map(|p| p.0 / S).collect();
    assert_eq!(steps, vec![20, 30, 50]);
}

#[tokio::test]
async fn vector_matching_and_set_operators() {
    let count = r#"count_over_time({job="api"}[1m])"#;
    // Each level's share of its path's lines: many-to-one.
    let q = format!("{count} / on(path) group_left sum by (path) ({count})");
    let Value::Series(s) = eval_on(&api(), &q, 60, 60, 60).await.unwrap() else {
        panic!()
    };
    let share: HashMap<(String, String), f64> = s
        .iter()
        .map(|s| {
            (
                (s.labels["path"].clone(), s.labels["level"].clone()),
                s.points[0].1,
            )
        })
        .collect();
    assert_eq!(share[&("/a".into(), "info".into())], 0.8);
    assert_eq!(share[&("/a".into(), "error".into())], 0.2);
    assert_eq!(share[&("/b".into(), "info".into())], 1.0);
    // The extra label a group_left copies from the one side.
    let q = format!(
        r#"sum by (path) ({count}) * on(path) group_left(level) count_over_time({{job="api", level="error"}}[1m])"#
    );
    let Value::Series(s) = eval_on(&api(), &q, 60, 60, 60).await.unwrap() else {
        panic!()
    };
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].labels["level"], "error");
    assert_eq!(s[0].points[0].1, 5.0);
    // A bound on the series a query answers.
    let super::Query::Metric(e) = parse(count).unwrap() else {
        panic!()
    };
    let limited = Options {
        max_entries: 0,
        max_series: 2,
    };
    let r = eval_metric(&api(), &e, 60 * S, 60 * S, S, &limited).await;
    assert!(
        matches!(r, Err(EvalError::TooManySeries { limit: 2 })),
        "{r:?}"
    );
    // Matching on `path` alone is many-to-many: refused.
    let q = format!("{count} / on(path) {count}");
    let e = eval_on(&api(), &q, 60, 60, 60).await.unwrap_err();
    assert!(e.to_string().contains("many-to-many"), "{e}");
    // and / unless / or.
    let errors = r#"count_over_time({job="api", level="error"}[1m])"#;
    let paths = |q: String| async move {
        let Value::Series(s) = eval_on(&api(), &q, 60, 60, 60).await.unwrap() else {
            panic!()
        };
        let mut v: Vec<String> = s
            .iter()
            .map(|s| format!("{}:{}", s.labels["path"], s.labels["level"]))
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        paths(format!("{count} and on(path) {errors}")).await,
        ["/a:error", "/a:info"]
    );
    assert_eq!(
        paths(format!("{count} unless on(path) {errors}")).await,
        ["/b:info"]
    );
    assert_eq!(
        paths(format!(
            r#"count_over_time({{job="api", path="/b"}}[1m]) or {errors}"#
        ))
        .await,
        ["/a:error", "/b:info"]
    );
    assert!(
        eval_on(&api(), &format!("{count} and 1"), 60, 60, 60)
            .await
            .is_err()
    );
    // `or vector(0)`, the documented way to always answer.
    let q = r#"sum(count_over_time({job="api", path="/c"}[1m])) or vector(0)"#;
    assert_eq!(instant(q, "").await[""], 0.0);
}

#[tokio::test]
async fn aggregations_label_replace_and_range_placement() {
    let q = r#"stddev(count_over_time({job="api"}[1m]))"#;
    let v = instant(q, "").await[""];
    // 4, 2, 1 lines: mean 7/3.
    let mean = 7.0 / 3.0;
    let want = (((4.0 - mean) * (4.0f64 - mean)
        + (2.0 - mean) * (2.0 - mean)
        + (1.0 - mean) * (1.0 - mean))
        / 3.0)
        .sqrt();
    assert!((v - want).abs() < 1e-12);
    let Value::Series(s) = eval_on(
        &api(),
        r#"sort_desc(count_over_time({job="api"}[1m]))"#,
        60,
        60,
        60,
    )
    .await
    .unwrap() else {
        panic!()
    };
    let order: Vec<f64> = s.iter().map(|s| s.points[0].1).collect();
    assert_eq!(order, vec![4.0, 2.0, 1.0]);
    let by = instant(
        r#"label_replace(count_over_time({job="api", level="info"}[1m]), "route", "r-$1", "path", "/(.*)")"#,
        "route",
    )
    .await;
    assert_eq!(
        by,
        HashMap::from([("r-a".into(), 4.0), ("r-b".into(), 2.0)])
    );
    // The range may follow the selector, before the pipeline.
    let a = instant(
        r#"sum by (path) (count_over_time({job="api"}[1m] |= "took" | logfmt | took > 1s))"#,
        "path",
    )
    .await;
    let b = instant(
        r#"sum by (path) (count_over_time({job="api"} |= "took" | logfmt | took > 1s [1m]))"#,
        "path",
    )
    .await;
    assert_eq!(a, b);
    assert_eq!(a["/a"], 4.0); // 1.5s, 1m, 2s and the error line's 1h
}

#[tokio::test]
async fn log_pipelines_format_and_filter() {
    let run = |q: &'static str| async move {
        let super::Query::Log(e) = parse(q).unwrap_or_else(|e| panic!("{q}: {e}")) else {
            panic!()
        };
        eval_log(&api(), &e, 0, 100 * S, 0, Direction::Forward, &opts())
            .await
            .unwrap()
    };
    let out = run(
        r#"{job="api", path="/a"} | logfmt | label_format who=level, ms=`{{ mulf (.took | duration) 1000 }}` | line_format `{{ .who | upper }} {{ .path | trimPrefix "/" }} {{ printf "%.0f" (float64 .ms) }}ms`"#,
    )
    .await;
    let lines: Vec<&str> = out
        .iter()
        .flat_map(|s| s.entries.iter().map(|e| e.1.as_str()))
        .collect();
    assert!(lines.contains(&"INFO a 1500ms"), "{lines:?}");
    assert!(lines.contains(&"ERROR a 3600000ms"), "{lines:?}");
    assert!(
        out.iter()
            .all(|s| !s.labels.contains_key("level") && s.labels.contains_key("who"))
    );
    // drop with a matcher drops only matching values; keep keeps __error__.
    let out = run(r#"{job="api"} | drop level="info""#).await;
    assert!(
        out.iter()
            .any(|s| s.labels.get("level").map(String::as_str) == Some("error"))
    );
    assert!(
        out.iter()
            .all(|s| s.labels.get("level").map(String::as_str) != Some("info"))
    );
    let out = run(r#"{job="api", path="/b"} | json | keep path"#).await;
    assert!(
        out.iter()
            .all(|s| s.labels.len() == 3 && s.labels["__error__"] == "JSONParserErr")
    );
    // pattern and regexp extract labels usable by filters.
    let out = run(r#"{job="api"} | pattern "latency=<lat> <_>" | lat > 3"#).await;
    let n: usize = out.iter().map(|s| s.entries.len()).sum();
    // 4, 10, 100, and 20: a capture whose literal is missing takes the rest.
    assert_eq!(n, 4);
    let out = run(r#"{job="api"} | regexp "took=(?P<t>[0-9.]+)(?P<unit>[a-z]+)" | unit="s""#).await;
    let n: usize = out.iter().map(|s| s.entries.len()).sum();
    assert_eq!(n, 3);
}
