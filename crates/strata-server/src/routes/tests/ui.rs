//! The web UI's assets and its two status calls: assets answer without a
//! token (they hold no data), the status calls show each token what it
//! may see and no more.

use crate::auth::{Role, TokenEntry, token_digest};

use super::*;

fn token(name: &str, tenant: &str, roles: Vec<Role>) -> TokenEntry {
    TokenEntry {
        name: name.into(),
        sha256: token_digest(name),
        tenant: tenant.into(),
        roles,
    }
}

async fn with_auth(limits: Option<&str>) -> (Router, Arc<AppState>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServerConfig::default();
    config.auth.enabled = true;
    config.auth.tokens = vec![
        token("reader", "acme", vec![Role::Read, Role::Write]),
        token("admin", "acme", vec![Role::Admin]),
        token("ops", "ops", vec![Role::Operator]),
    ];
    if let Some(text) = limits {
        let path = dir.path().join("limits.toml");
        std::fs::write(&path, text).unwrap();
        config.limits.overrides_file = Some(path);
    }
    let (app, state, _) = app_with(config).await;
    (app, state, dir)
}

async fn get_as(app: &Router, path: &str, token: Option<&str>) -> (StatusCode, serde_json::Value) {
    let mut b = Request::get(path);
    if let Some(t) = token {
        b = b.header("Authorization", format!("Bearer {t}"));
    }
    let (status, body) = send(app, b.body(Body::empty()).unwrap()).await;
    (
        status,
        serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body)),
    )
}

#[tokio::test]
async fn assets_answer_without_a_token_and_say_what_they_are() {
    let (app, _, _dir) = with_auth(None).await;
    for (path, kind, needle) in [
        ("/", "text/html", "/ui/app.js"),
        ("/ui/app.js", "text/javascript", "/api/v1/status/session"),
        ("/ui/chart.js", "text/javascript", "data-points"),
        ("/ui/app.css", "text/css", ".chart"),
        ("/ui/icon.svg", "image/svg+xml", "<svg"),
        ("/favicon.ico", "image/svg+xml", "<svg"),
    ] {
        let resp = app
            .clone()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        let ct = resp.headers()[axum::http::header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(ct.starts_with(kind), "{path}: {ct}");
        let body = to_bytes(resp.into_body(), usize::MAX).await.unwrap();
        assert!(String::from_utf8_lossy(&body).contains(needle), "{path}");
    }
    // The page may run only its own scripts and call only this server.
    let resp = app
        .clone()
        .oneshot(Request::get("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let csp = resp.headers()[axum::http::header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("connect-src 'self'"));
    // Anything else under /ui/ is not public.
    let (status, _) = get_as(&app, "/ui/other.js", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = get_as(&app, "/ui/other.js", Some("reader")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_session_names_the_token_and_offers_only_its_tenant() {
    let (app, _, _dir) = with_auth(None).await;
    let (status, _) = get_as(&app, "/api/v1/status/session", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, v) = get_as(&app, "/api/v1/status/session", Some("reader")).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let d = &v["data"];
    assert_eq!(d["auth"], true);
    assert_eq!(d["token"], "reader");
    assert_eq!(d["tenant"], "acme");
    assert_eq!(d["tenants"], serde_json::json!(["acme"]));
    assert_eq!(d["roles"], serde_json::json!(["read", "write"]));

    // Auth off: every tenant holding data, the default one first.
    let (app, _, _) = super::app().await;
    let body = payload(vec![series(&[("__name__", "m")], &[(1_000, 1.0)])]);
    assert_eq!(
        send(&app, write_req(Some("zeta"), body)).await.0,
        StatusCode::NO_CONTENT
    );
    let (_, v) = get_as(&app, "/api/v1/status/session", None).await;
    assert_eq!(v["data"]["auth"], false);
    assert_eq!(v["data"]["tenants"], serde_json::json!(["default", "zeta"]));
}

#[tokio::test]
async fn tenant_status_shows_an_admin_its_tenant_and_an_operator_all() {
    let (app, _, _dir) = with_auth(Some("[tenants.acme]\nmax_series = 2\n")).await;
    let write = |tenant: &str, token: &str, names: &[&str]| {
        let ts = names
            .iter()
            .map(|n| series(&[("__name__", n)], &[(1_000, 1.0)]))
            .collect();
        let mut req = write_req(Some(tenant), payload(ts));
        req.headers_mut()
            .insert("Authorization", format!("Bearer {token}").parse().unwrap());
        req
    };
    assert_eq!(
        send(&app, write("acme", "reader", &["a", "b"])).await.0,
        StatusCode::NO_CONTENT
    );
    // A third series passes max_series: refused, and counted by reason.
    assert_eq!(
        send(&app, write("acme", "reader", &["c"])).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );

    let (status, _) = get_as(&app, "/api/v1/status/tenants", Some("reader")).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a read/write token is no admin"
    );

    let (status, v) = get_as(&app, "/api/v1/status/tenants", Some("admin")).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let tenants = v["data"]["tenants"].as_array().unwrap();
    assert_eq!(tenants.len(), 1, "{v}");
    let acme = &tenants[0];
    assert_eq!(acme["tenant"], "acme");
    assert_eq!(acme["limits"]["max_series"], 2);
    assert_eq!(acme["live_series"], 2);
    assert_eq!(acme["head_series"], 2);
    assert_eq!(acme["samples_ingested"], 2);
    assert_eq!(acme["rejected"], serde_json::json!({"max_series": 1}));
    assert_eq!(acme["retention"]["legal_hold"], false);
    assert!(
        v["data"]["wal"].is_null(),
        "the server's WAL is not a tenant's: {v}"
    );

    let (status, v) = get_as(&app, "/api/v1/status/tenants", Some("ops")).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let names: Vec<&str> = v["data"]["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["tenant"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["acme"], "every tenant holding data");
    assert!(v["data"]["wal"]["segments"].is_number(), "{v}");
}
