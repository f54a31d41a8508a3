use strata_query_lang::promql::{Engine, EngineConfig, Value};

use super::*;
use crate::rules::group::tests::{Db, promtool};
use crate::rules::group::{AlertState, Group, RuleContext, RuleQuerier};
use crate::slo::tests::{NOW, source, spec};

#[tokio::test]
async fn the_exported_rules_compute_strata_s_burn_rates_and_alerts() {
    let spec = spec();
    let file = rules(&spec, Duration::from_secs(60)).unwrap();
    // What is exported reads back as a rule file.
    assert_eq!(RuleFile::parse(&file.to_yaml()).unwrap(), file);
    // /pick fails 0.5%, then 20% over the last 90 minutes.
    let db = Db::over(source(0.005, 0.2, 90));
    let statuses = {
        let src = db.src.lock().await;
        let engine = Engine::new(EngineConfig::default());
        crate::slo::evaluate(&engine, &*src, &spec, NOW, None, None)
            .await
            .unwrap()
    };
    let mut groups: Vec<Group> = file
        .groups
        .iter()
        .map(|g| Group::new(g, 60_000, false).unwrap())
        .collect();
    for g in &mut groups {
        g.evaluate(&db, &RuleContext::default(), NOW, 60_000).await;
        for r in &g.rules {
            assert_eq!(r.last_error, None, "{}", r.name());
        }
    }
    let mut compared = 0;
    for status in &statuses {
        let route = &status.labels["route"];
        for (w, want) in &status.burn_rates {
            if *w == "28d" {
                continue;
            }
            let q = format!(
                "slo:sli_error:ratio_rate{w}{{slo=\"availability\", route={route:?}}} / (1 - 0.99)"
            );
            let expr = strata_query_lang::promql::parse_expr(&q).unwrap();
            let Value::Vector(v) = db.query(&expr, NOW).await.unwrap() else {
                panic!("{q}");
            };
            assert_eq!(v.len(), 1, "{q}");
            assert_eq!(v[0].v, *want, "{q}");
            assert_eq!(v[0].labels.get("business_process"), Some("picking"));
            compared += 1;
        }
        // The same alerts fire, with the built-in alerts' identity.
        let fired: Vec<(String, String)> = groups[1]
            .rules
            .iter()
            .flat_map(|r| r.alerts())
            .filter(|a| a.state == AlertState::Firing && a.labels.get("route") == Some(route))
            .map(|a| {
                (
                    a.labels.value("severity").to_string(),
                    a.labels.value("long_window").to_string(),
                )
            })
            .collect();
        let want: Vec<(String, String)> = status
            .alerts
            .iter()
            .filter(|a| a.firing)
            .map(|a| (a.severity.to_string(), a.long_window.clone()))
            .collect();
        assert_eq!(fired, want, "{route}");
    }
    assert_eq!(compared, 14, "two routes, seven windows");
    // The burst pages on /pick (1h and 6h) and nothing fires on /invoice.
    let pick = statuses
        .iter()
        .find(|s| s.labels["route"] == "/pick")
        .unwrap();
    assert!(pick.alerts.iter().any(|a| a.firing && a.severity == "page"));
    let alerts = groups[1]
        .rules
        .iter()
        .flat_map(|r| r.alerts())
        .collect::<Vec<_>>();
    let summary = &alerts[0].annotations["summary"];
    assert!(
        summary.starts_with("SLO availability is burning its error budget "),
        "{summary}"
    );
}

#[tokio::test]
async fn promtool_accepts_the_exported_rules() {
    let Some(promtool) = promtool() else {
        return;
    };
    let mut latency = spec();
    latency.good = None;
    latency.total = None;
    latency.latency = Some(crate::slo::Latency {
        histogram: "http_request_duration_seconds".into(),
        selector: r#"{route="/pick"}"#.into(),
        threshold: 0.3,
        by: vec!["route".into()],
    });
    for s in [spec(), latency] {
        let yaml = rules(&s, Duration::from_secs(30)).unwrap().to_yaml();
        let path = std::env::temp_dir().join(format!(
            "strata-slo-rules-{}-{}.yaml",
            std::process::id(),
            s.latency.is_some()
        ));
        std::fs::write(&path, &yaml).unwrap();
        let out = std::process::Command::new(&promtool)
            .args(["check", "rules", path.to_str().unwrap()])
            .output()
            .unwrap();
        let _ = std::fs::remove_file(&path);
        assert!(
            out.status.success(),
            "{yaml}\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut sql = spec();
    sql.good_sql = Some("SELECT 1 WHERE $start < $end".into());
    assert!(rules(&sql, Duration::from_secs(60)).is_err());
}
