use strata_query_lang::promql::{Engine, EngineConfig, MemorySource};

use super::*;
use crate::rules::file::RuleFile;

/// The real PromQL engine over memory, which rule output is written back
/// into, as the server writes it through the WAL.
pub(crate) struct Db {
    pub(crate) src: tokio::sync::Mutex<MemorySource>,
    /// Points written since the last [`Db::take`].
    log: tokio::sync::Mutex<Vec<Point>>,
    engine: Engine,
}

impl Db {
    pub(super) fn new() -> Self {
        Self::over(MemorySource::new())
    }

    pub(crate) fn over(src: MemorySource) -> Self {
        Db {
            src: tokio::sync::Mutex::new(src),
            log: tokio::sync::Mutex::default(),
            engine: Engine::new(EngineConfig::default()),
        }
    }

    pub(super) fn add(&self, pairs: &[(&str, &str)], t: i64, v: f64) {
        let labels = Labels::new(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        self.src.try_lock().unwrap().add(&labels, t, v);
    }

    /// The points written since the last call.
    pub(super) fn take(&self) -> Vec<Point> {
        std::mem::take(&mut *self.log.try_lock().unwrap())
    }
}

#[async_trait]
impl RuleQuerier for Db {
    async fn query(&self, expr: &Expr, t_ms: i64) -> Result<Value, String> {
        let src = self.src.lock().await;
        self.engine
            .instant_expr(&*src, expr, t_ms)
            .await
            .map(|o| o.value)
            .map_err(|e| e.to_string())
    }

    async fn write(&self, points: Vec<Point>) -> Result<(), String> {
        let mut src = self.src.lock().await;
        for (l, t, v) in &points {
            src.add(l, *t, *v);
        }
        self.log.lock().await.extend(points);
        Ok(())
    }
}

/// promtool, where installed; required with STRATA_E2E_REQUIRE_PROMETHEUS
/// (scripts/test installs it).
pub(crate) fn promtool() -> Option<std::path::PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("promtool"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("STRATA_E2E_REQUIRE_PROMETHEUS").is_none(),
            "promtool is required (STRATA_E2E_REQUIRE_PROMETHEUS) but not installed"
        );
        eprintln!("promtool not installed: the comparison with Prometheus is skipped");
    }
    found
}

fn group(yaml: &str, restore: bool) -> Group {
    let f = RuleFile::parse(yaml).unwrap();
    Group::new(&f.groups[0], 60_000, restore).unwrap()
}

fn names(points: &[Point]) -> Vec<String> {
    let mut v: Vec<String> = points
        .iter()
        .map(|(l, _, v)| {
            if strata_query_lang::promql::is_stale(*v) {
                format!("{l} stale")
            } else {
                format!("{l} {v}")
            }
        })
        .collect();
    v.sort();
    v
}

const MIN: i64 = 60_000;

#[tokio::test]
async fn recording_rules_rename_relabel_and_mark_what_disappears_stale() {
    let db = Db::new();
    for t in 0..=10 {
        db.add(&[("__name__", "up"), ("job", "a")], t * MIN, 1.0);
        if t < 5 {
            db.add(&[("__name__", "up"), ("job", "b")], t * MIN, 0.0);
        }
    }
    let mut g = group(
        "groups:\n- name: g\n  rules:\n  - record: job:up:sum\n    expr: sum by (job) (up)\n    labels: {team: erp}\n",
        false,
    );
    let ctx = RuleContext::default();
    g.evaluate(&db, &ctx, 4 * MIN, MIN).await;
    assert_eq!(
        names(&db.take()),
        [
            r#"job:up:sum{job="a", team="erp"} 1"#,
            r#"job:up:sum{job="b", team="erp"} 0"#,
        ]
    );
    assert_eq!(g.rules[0].health, Health::Ok);
    // Series b's samples end at 4m; at 10m (past the lookback) it is gone.
    g.evaluate(&db, &ctx, 10 * MIN, MIN).await;
    let out = db.take();
    assert_eq!(
        names(&out),
        [
            r#"job:up:sum{job="a", team="erp"} 1"#,
            r#"job:up:sum{job="b", team="erp"} stale"#,
        ]
    );
    assert!(out.iter().all(|(_, t, _)| *t == 10 * MIN));
}

#[tokio::test]
async fn a_rule_over_its_limit_or_with_clashing_labels_fails_and_writes_nothing() {
    let db = Db::new();
    for j in ["a", "b", "c"] {
        db.add(&[("__name__", "up"), ("job", j), ("i", j)], 0, 1.0);
    }
    let mut g = group(
        "groups:\n- name: g\n  limit: 2\n  rules:\n  - record: r\n    expr: up\n",
        false,
    );
    g.evaluate(&db, &RuleContext::default(), MIN, MIN).await;
    assert!(db.take().is_empty());
    assert_eq!(g.rules[0].health, Health::Err);
    assert_eq!(
        g.rules[0].last_error.as_deref(),
        Some("exceeded limit of 2 with 3 series")
    );
    let mut g = group(
        "groups:\n- name: g\n  rules:\n  - record: r\n    expr: up\n    labels: {job: x, i: x}\n",
        false,
    );
    g.evaluate(&db, &RuleContext::default(), MIN, MIN).await;
    assert!(db.take().is_empty());
    assert!(
        g.rules[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("same labelset")
    );
}

const ALERT: &str = r#"
groups:
- name: g
  rules:
  - alert: PickingDown
    expr: picking_up == 0
    for: 3m
    keep_firing_for: 2m
    labels:
      severity: page
      process: "{{ $labels.process }}"
    annotations:
      summary: "{{ $labels.instance }} down, value {{ $value }}"
"#;

#[tokio::test]
async fn an_alert_is_pending_for_its_for_then_fires_keeps_firing_then_resolves() {
    let db = Db::new();
    // Down from 2m to 8m, up again after.
    for t in 0..=20 {
        let v = if (2..=8).contains(&t) { 0.0 } else { 1.0 };
        db.add(
            &[
                ("__name__", "picking_up"),
                ("instance", "wms-1"),
                ("process", "picking"),
            ],
            t * MIN,
            v,
        );
    }
    let mut g = group(ALERT, false);
    let ctx = RuleContext::default();
    let mut seen = Vec::new();
    let mut sent = Vec::new();
    for t in 1..=20 {
        let out = g.evaluate(&db, &ctx, t * MIN, MIN).await;
        let state = g.rules[0]
            .alerts()
            .first()
            .map_or("none", |a| a.state.as_str());
        seen.push(format!("{t}:{state}"));
        for a in out.alerts {
            sent.push(format!(
                "{t}:{}:{:?}",
                a.state.as_str(),
                a.resolved_at_ms.map(|r| r / MIN)
            ));
        }
    }
    assert_eq!(
        seen,
        [
            "1:none",
            "2:pending",
            "3:pending",
            "4:pending",
            "5:firing",
            "6:firing",
            "7:firing",
            "8:firing",
            // No longer matching at 9m: kept firing for 2m, then resolved.
            "9:firing",
            "10:firing",
            "11:inactive",
            "12:inactive",
            "13:inactive",
            "14:inactive",
            "15:inactive",
            "16:inactive",
            "17:inactive",
            "18:inactive",
            "19:inactive",
            "20:inactive",
        ]
    );
    // Sent when it fires, resent once more than the resend delay (1m) has
    // passed (every other evaluation), sent resolved at once and resent
    // resolved until it is forgotten.
    assert_eq!(
        sent,
        [
            "5:firing:None",
            "7:firing:None",
            "9:firing:None",
            "11:inactive:Some(11)",
            "13:inactive:Some(11)",
            "15:inactive:Some(11)",
            "17:inactive:Some(11)",
            "19:inactive:Some(11)",
        ]
    );
    let a = &g.rules[0].alerts()[0];
    assert_eq!(
        a.labels.to_string(),
        r#"{alertname="PickingDown", instance="wms-1", process="picking", severity="page"}"#
    );
    assert_eq!(a.annotations["summary"], "wms-1 down, value 0");
    assert_eq!(a.active_at_ms, 2 * MIN);
    assert_eq!(a.fired_at_ms, Some(5 * MIN));
    // The state series as Prometheus writes them, pending then firing, each
    // with a stale marker when it ends.
    let q = |e: &str, t: i64| {
        let e = strata_query_lang::promql::parse_expr(e).unwrap();
        let db = &db;
        async move {
            match db.query(&e, t).await.unwrap() {
                Value::Vector(v) => v
                    .into_iter()
                    .map(|s| format!("{} {}", s.labels, s.v))
                    .collect::<Vec<_>>(),
                _ => unreachable!(),
            }
        }
    };
    assert_eq!(
        q("ALERTS", 3 * MIN).await,
        [
            r#"ALERTS{alertname="PickingDown", alertstate="pending", instance="wms-1", process="picking", severity="page"} 1"#
        ]
    );
    assert_eq!(
        q("ALERTS_FOR_STATE", 6 * MIN).await,
        [
            r#"ALERTS_FOR_STATE{alertname="PickingDown", instance="wms-1", process="picking", severity="page"} 120"#
        ]
    );
    assert_eq!(q("ALERTS{alertstate=\"pending\"}", 6 * MIN).await.len(), 0);
    assert_eq!(q("ALERTS", 12 * MIN).await.len(), 0);
    // Resolved alerts are forgotten after 15 minutes.
    g.evaluate(&db, &ctx, 27 * MIN, MIN).await;
    assert!(g.rules[0].alerts().is_empty());
}

#[tokio::test]
async fn a_restart_in_the_middle_of_for_keeps_the_time_already_pending() {
    let db = Db::new();
    for t in 0..=60 {
        db.add(
            &[("__name__", "picking_up"), ("instance", "wms-1")],
            t * MIN,
            0.0,
        );
    }
    let long_for = ALERT.replace("for: 3m", "for: 30m");
    let mut g = group(&long_for, false);
    let ctx = RuleContext::default();
    for t in 0..=10 {
        g.evaluate(&db, &ctx, t * MIN, MIN).await;
    }
    assert_eq!(g.rules[0].alerts()[0].active_at_ms, 0);
    // Down from 10m to 15m; a fresh group restores after its first round.
    let mut g = group(&long_for, true);
    db.take();
    let out = g.evaluate(&db, &ctx, 15 * MIN, MIN).await;
    assert_eq!(out.points, 0, "no state series before the restore");
    assert!(db.take().is_empty());
    assert!(g.needs_restore());
    g.restore(&db, 15 * MIN, 60 * MIN, 10 * MIN).await.unwrap();
    assert!(!g.needs_restore());
    // Pending 10 of its 30 minutes before the outage; the 5 minutes down
    // do not count: it fires at 35m.
    assert_eq!(g.rules[0].alerts()[0].active_at_ms, 5 * MIN);
    for t in 16..=35 {
        g.evaluate(&db, &ctx, t * MIN, MIN).await;
        let want = if t < 35 {
            AlertState::Pending
        } else {
            AlertState::Firing
        };
        assert_eq!(g.rules[0].alerts()[0].state, want, "at {t}m");
    }
    // A fresh server without the history starts counting again.
    let empty = Db::new();
    for t in 0..=60 {
        empty.add(
            &[("__name__", "picking_up"), ("instance", "wms-1")],
            t * MIN,
            0.0,
        );
    }
    let mut g = group(&long_for, true);
    g.evaluate(&empty, &ctx, 15 * MIN, MIN).await;
    g.restore(&empty, 15 * MIN, 60 * MIN, 10 * MIN)
        .await
        .unwrap();
    assert_eq!(g.rules[0].alerts()[0].active_at_ms, 15 * MIN);
}

#[tokio::test]
async fn a_reloaded_group_keeps_the_state_of_unchanged_rules() {
    let db = Db::new();
    for t in 0..=10 {
        db.add(
            &[("__name__", "picking_up"), ("instance", "wms-1")],
            t * MIN,
            0.0,
        );
    }
    let mut old = group(ALERT, false);
    old.evaluate(&db, &RuleContext::default(), 2 * MIN, MIN)
        .await;
    let mut same = group(ALERT, false);
    same.copy_state(&old);
    assert_eq!(same.rules[0].alerts()[0].active_at_ms, 2 * MIN);
    let mut changed = group(&ALERT.replace("for: 3m", "for: 4m"), false);
    changed.copy_state(&old);
    assert!(changed.rules[0].alerts().is_empty());
    // What the old group wrote gets stale markers when it goes away.
    let stale = old.stale_all(3 * MIN);
    assert_eq!(stale.len(), 2);
}
