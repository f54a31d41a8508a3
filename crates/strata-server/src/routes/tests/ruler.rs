//! The Mimir/Cortex ruler configuration API: groups posted, read back,
//! replaced and deleted per tenant, checked like `promtool check rules`,
//! bounded by the tenant's limits, stored under the tenant's prefix, and
//! evaluated by the ruler.

use super::*;

fn req(method: &str, tenant: &str, path: &str, body: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(path)
        .header("X-Scope-OrgID", tenant)
        .header("Content-Type", "application/yaml")
        .body(Body::from(body.to_string()))
        .unwrap()
}

const PICKING: &str = "name: picking\ninterval: 30s\nrules:\n  - record: job:picked:rate5m\n    expr: sum(rate(picked_total[5m]))\n  - alert: PickingStalled\n    expr: job:picked:rate5m == 0\n    for: 10m\n    labels:\n      severity: page\n    annotations:\n      summary: 'picking stalled at {{ $value }}'\n";

#[tokio::test]
async fn groups_are_posted_read_replaced_and_deleted_per_tenant() {
    let (app, state, _) = app().await;
    for prefix in ["/prometheus/config/v1/rules", "/config/v1/rules"] {
        let (status, text) = send(&app, req("GET", "acme", prefix, "")).await;
        assert_eq!(
            (status, text.trim()),
            (StatusCode::NOT_FOUND, "no rule groups found")
        );
    }
    let (status, text) = send(
        &app,
        req("POST", "acme", "/prometheus/config/v1/rules/odoo", PICKING),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{text}");
    assert!(text.contains(r#""status":"success""#), "{text}");
    let second = PICKING.replace("name: picking", "name: invoicing");
    let (status, _) = send(&app, req("POST", "acme", "/config/v1/rules/odoo", &second)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, _) = send(
        &app,
        req("POST", "acme", "/config/v1/rules/kube%20rules", &second),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);

    // Read back as YAML, namespace → groups, in the shape posted.
    let (status, text) = send(&app, req("GET", "acme", "/prometheus/config/v1/rules", "")).await;
    assert_eq!(status, StatusCode::OK);
    let all: std::collections::BTreeMap<String, Vec<strata_analytics::rules::RuleGroup>> =
        serde_norway::from_str(&text).unwrap();
    assert_eq!(all.keys().collect::<Vec<_>>(), ["kube rules", "odoo"]);
    assert_eq!(all["odoo"].len(), 2);
    let picking: strata_analytics::rules::RuleGroup = serde_norway::from_str(PICKING).unwrap();
    assert!(all["odoo"].contains(&picking));
    let (_, text) = send(
        &app,
        req(
            "GET",
            "acme",
            "/prometheus/config/v1/rules/odoo/picking",
            "",
        ),
    )
    .await;
    assert_eq!(
        serde_norway::from_str::<strata_analytics::rules::RuleGroup>(&text).unwrap(),
        picking
    );
    let (_, text) = send(&app, req("GET", "acme", "/config/v1/rules/odoo", "")).await;
    assert!(text.starts_with("odoo:"), "{text}");

    // Stored under the tenant's prefix.
    let keys: Vec<String> = {
        use futures::TryStreamExt;
        let store = state.storage.store();
        store
            .store()
            .list(Some(&store.path("tenants/acme/rules")))
            .map_ok(|m| m.location.to_string())
            .try_collect()
            .await
            .unwrap()
    };
    assert_eq!(keys.len(), 3, "{keys:?}");
    assert!(
        keys.iter()
            .any(|k| k.ends_with("tenants/acme/rules/odoo/picking.yaml")),
        "{keys:?}"
    );

    // Replaced in place.
    let changed = PICKING.replace("for: 10m", "for: 15m");
    let (status, _) = send(&app, req("POST", "acme", "/config/v1/rules/odoo", &changed)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (_, text) = send(
        &app,
        req("GET", "acme", "/config/v1/rules/odoo/picking", ""),
    )
    .await;
    assert!(text.contains("for: 15m"), "{text}");

    // Another tenant sees none of it.
    let (status, _) = send(&app, req("GET", "other", "/config/v1/rules", "")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = send(
        &app,
        req("GET", "other", "/config/v1/rules/odoo/picking", ""),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = send(
        &app,
        req("DELETE", "other", "/config/v1/rules/odoo/picking", ""),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The ruler evaluates what was posted; /api/v1/rules shows it.
    crate::ruler::evaluate_once(&state, 60_000).await;
    let (_, text) = send(&app, req("GET", "acme", "/api/v1/rules", "")).await;
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let names: Vec<&str> = v["data"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["invoicing", "invoicing", "picking"], "{v}");
    assert_eq!(v["data"]["groups"][2]["rules"][1]["duration"], 900, "{v}");

    // Deleted: a group, then a namespace.
    let (status, _) = send(
        &app,
        req("DELETE", "acme", "/config/v1/rules/odoo/picking", ""),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, text) = send(
        &app,
        req("DELETE", "acme", "/config/v1/rules/odoo/picking", ""),
    )
    .await;
    assert_eq!(
        (status, text.trim()),
        (StatusCode::NOT_FOUND, "group does not exist")
    );
    let (status, _) = send(
        &app,
        req(
            "DELETE",
            "acme",
            "/prometheus/config/v1/rules/kube%20rules",
            "",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, _) = send(
        &app,
        req(
            "DELETE",
            "acme",
            "/prometheus/config/v1/rules/kube%20rules",
            "",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, text) = send(&app, req("GET", "acme", "/config/v1/rules", "")).await;
    assert!(
        text.starts_with("odoo:") && text.contains("name: invoicing") && !text.contains("kube"),
        "{text}"
    );
}

#[tokio::test]
async fn what_promtool_or_the_limits_refuse_is_a_400_that_stores_nothing() {
    let mut config = ServerConfig::default();
    config.limits.tenant_defaults.ruler_max_rule_groups = 2;
    config.limits.tenant_defaults.ruler_max_rules_per_group = 2;
    let (app, _, _) = app_with(config).await;
    for (body, why) in [
        (
            "name: g\nrules:\n  - record: 'up{job=\"a\"}'\n    expr: up\n",
            "braces present in the recording rule name",
        ),
        (
            "name: g\nrules:\n  - alert: A\n    expr: 'sum(('\n",
            "could not parse expression",
        ),
        ("name: g\nbogus: 1\nrules: []\n", "unknown field `bogus`"),
        (
            "name: g\nrules:\n  - alert: A\n    expr: up\n    annotations: {s: '{{ $labels.x '}\n",
            "unclosed action",
        ),
        (
            "name: g\nrules:\n  - record: a\n    expr: up\n  - record: b\n    expr: up\n  - record: c\n    expr: up\n",
            "rules per rule group limit (limit: 2)",
        ),
        ("{{{", "invalid type"),
    ] {
        let (status, text) = send(&app, req("POST", "acme", "/config/v1/rules/ns", body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {text}");
        assert!(text.contains(why), "{body}: {text}");
    }
    let (status, _) = send(&app, req("GET", "acme", "/config/v1/rules", "")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for g in ["a", "b"] {
        let body = format!("name: {g}\nrules:\n  - record: r\n    expr: up\n");
        let (status, _) = send(&app, req("POST", "acme", "/config/v1/rules/ns", &body)).await;
        assert_eq!(status, StatusCode::ACCEPTED);
    }
    // A third group passes the limit; replacing one does not.
    let (status, text) = send(
        &app,
        req(
            "POST",
            "acme",
            "/config/v1/rules/other",
            "name: c\nrules: []\n",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        text.contains("rule groups limit (limit: 2) exceeded"),
        "{text}"
    );
    let (status, _) = send(
        &app,
        req(
            "POST",
            "acme",
            "/config/v1/rules/ns",
            "name: a\nrules: []\n",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn with_auth_on_writing_rules_takes_the_admin_role() {
    use crate::auth::{Role, TokenEntry, token_digest};
    let mut config = ServerConfig::default();
    config.auth.enabled = true;
    config.auth.tokens = vec![
        TokenEntry {
            name: "reader".into(),
            sha256: token_digest("reader"),
            tenant: "acme".into(),
            roles: vec![Role::Read, Role::Write],
        },
        TokenEntry {
            name: "admin".into(),
            sha256: token_digest("admin"),
            tenant: "acme".into(),
            roles: vec![Role::Read, Role::Admin],
        },
    ];
    let (app, _, _) = app_with(config).await;
    let with = |token: &str, method: &str, body: &str| {
        let mut r = req(method, "acme", "/config/v1/rules/ns", body);
        r.headers_mut()
            .insert("Authorization", format!("Bearer {token}").parse().unwrap());
        r
    };
    let (status, _) = send(&app, with("reader", "POST", PICKING)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = send(&app, with("admin", "POST", PICKING)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, _) = send(&app, with("reader", "GET", "")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = send(&app, with("reader", "DELETE", "")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn an_slo_exports_as_rules_the_ruler_api_takes() {
    let dir = tempfile::tempdir().unwrap();
    let specs = dir.path().join("specs.toml");
    std::fs::write(
        &specs,
        "[[slo]]\nname = \"picking\"\ntenant = \"acme\"\nbusiness_process = \"picking\"\nobjective = 0.995\nwindow = \"28d\"\n\
         good = 'sum(rate(http_requests_total{code!~\"5..\"}[$window]))'\ntotal = 'sum(rate(http_requests_total[$window]))'\n",
    )
    .unwrap();
    let mut config = ServerConfig::default();
    config.slo.file = Some(specs);
    let (app, _, _) = app_with(config).await;
    let (status, text) = send(
        &app,
        req("GET", "acme", "/api/v1/slo/picking/rules?interval=30s", ""),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let file = strata_analytics::rules::RuleFile::parse(&text).unwrap();
    let names: Vec<&str> = file.groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names, ["slo:picking:recording", "slo:picking:alerts"]);
    assert_eq!(file.groups[0].interval.map(|d| d.ms()), Some(30_000));
    assert_eq!(file.groups[1].rules.len(), 4);
    for g in &file.groups {
        let body = serde_norway::to_string(g).unwrap();
        let (status, text) = send(&app, req("POST", "acme", "/config/v1/rules/slo", &body)).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{text}");
    }
    let (status, _) = send(&app, req("GET", "other", "/api/v1/slo/picking/rules", "")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// A tenant whose dashboards hold every query slot still evaluates its
/// rules: rule and analytics queries take internal slots, up to their own
/// limit.
#[tokio::test]
async fn rule_queries_do_not_wait_for_dashboard_slots() {
    use crate::error::Shape;
    use crate::frontend::query::{INTERNAL_ANALYTICS, INTERNAL_RULES};
    let mut config = ServerConfig::default();
    config.limits.tenant_defaults.max_concurrent_queries = 1;
    config.limits.tenant_defaults.ruler_max_concurrent_queries = 1;
    // Scheduler slots to spare (a tenant may hold all but one): the
    // concurrency limits are what is tested.
    config.promql.query_slots = Some(4);
    let (_, state, _) = app_with(config).await;
    let t = strata_types::TenantId::try_new("acme").unwrap();
    let _dashboard = state.admit(&t, "promql", Shape::Json).await.unwrap();
    assert_eq!(
        state
            .admit(&t, "promql", Shape::Json)
            .await
            .err()
            .map(|e| e.kind),
        Some(strata_types::ErrorKind::Limit)
    );
    let rule = state.admit(&t, INTERNAL_RULES, Shape::Json).await.unwrap();
    let refused = state
        .admit(&t, INTERNAL_ANALYTICS, Shape::Json)
        .await
        .err()
        .unwrap();
    assert!(
        refused.message.contains("ruler_max_concurrent_queries"),
        "{}",
        refused.message
    );
    drop(rule);
    assert!(
        state
            .admit(&t, INTERNAL_ANALYTICS, Shape::Json)
            .await
            .is_ok()
    );
}

/// A tenant on the legacy name scheme gets no series a rule records under
/// a UTF-8 name (the write path's decoders never see rule output); its
/// other rules' output is stored.
#[tokio::test]
async fn rule_output_follows_the_tenant_name_scheme() {
    let mut config = ServerConfig::default();
    config.limits.tenant_defaults.name_validation_scheme = strata_types::NameScheme::Legacy;
    let (app, state, _) = app_with(config).await;
    let group = "name: g\nrules:\n  - record: plain_metric\n    expr: vector(1)\n  - record: 'dotted.metric'\n    expr: vector(2)\n";
    let (status, text) = send(&app, req("POST", "acme", "/config/v1/rules/ns", group)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{text}");
    crate::ruler::evaluate_once(&state, 60_000).await;
    let count = |query: &str| {
        let app = app.clone();
        let query = url::form_urlencoded::byte_serialize(query.as_bytes()).collect::<String>();
        async move {
            let (status, text) = send(
                &app,
                req(
                    "GET",
                    "acme",
                    &format!("/api/v1/query?query={query}&time=60"),
                    "",
                ),
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{text}");
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            v["data"]["result"].as_array().unwrap().len()
        }
    };
    assert_eq!(count("plain_metric").await, 1);
    assert_eq!(count(r#"{"dotted.metric"}"#).await, 0);
}
