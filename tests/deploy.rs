//! The deployment files (`deploy/`), checked without a container engine or
//! a cluster (none runs on the CI machine): `deploy/check.py` lints the
//! Dockerfile, validates the Compose file against the Compose schema and the
//! rendered Kubernetes overlays against Kubernetes' schemas and production
//! rules; the server then runs on exactly the configuration the Kubernetes
//! ConfigMap mounts and on exactly the environment the Compose file gives
//! it, the latter against a real Garage bootstrapped by the Compose stack's
//! own init script; `strata health`, the image's health check, answers as
//! an orchestrator needs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Server, agent, payload, series};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A YAML file's first document as JSON, through Python's YAML (merge keys
/// resolved).
fn yaml(path: &Path) -> serde_json::Value {
    let json = common::stdout_of(
        Command::new("python3")
            .args([
                "-c",
                "import json, sys, yaml; print(json.dumps(next(yaml.safe_load_all(open(sys.argv[1])))))",
            ])
            .arg(path),
    );
    serde_json::from_str(&json).unwrap()
}

fn health(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_strata"))
        .arg("health")
        .args(args)
        .env_remove("STRATA_HEALTH_URL")
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn remote_write(server: &Server, headers: &[(&str, &str)], metric: &str) -> u16 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let body = payload(vec![series(
        &[("__name__", metric), ("job", "odoo")],
        &[(now - 1000, 1.0), (now, 2.0)],
    )]);
    let mut req = agent()
        .post(&server.url("/api/v1/write"))
        .header("Content-Type", "application/x-protobuf")
        .header("Content-Encoding", "snappy")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send(&body[..]).unwrap().status().as_u16()
}

fn sql_count(server: &Server, headers: &[(&str, &str)], metric: &str) -> (u16, String) {
    let mut req = agent()
        .post(&server.url("/api/v1/sql"))
        .header("Content-Type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let q = serde_json::json!({
        "query": format!("SELECT count(*) AS n FROM samples WHERE metric = '{metric}'")
    });
    let mut resp = req.send(q.to_string().as_bytes()).unwrap();
    (
        resp.status().as_u16(),
        resp.body_mut().read_to_string().unwrap_or_default(),
    )
}

#[test]
fn deployment_files_pass_their_checks() {
    if !common::clients_ready(&["hadolint"], "kubernetes_validate, jsonschema, yaml") {
        return;
    }
    let args = std::env::var("STRATA_DEPLOY_CHECK_ARGS").unwrap_or_default();
    let text = common::stdout_of(
        Command::new("python3")
            .arg(repo().join("deploy/check.py"))
            .args(args.split_whitespace()),
    );
    for part in [
        "deploy/Dockerfile",
        "deploy/compose",
        "deploy/kubernetes/overlays/single",
        "deploy/kubernetes/overlays/scale-out",
    ] {
        assert!(
            text.contains(&format!("ok   {part}")),
            "{part} not checked:\n{text}"
        );
    }
}

#[test]
fn kubernetes_configuration_runs_the_server_with_auth_on() {
    let dir = tempfile::tempdir().unwrap();
    let config = repo().join("deploy/kubernetes/base/strata.toml");
    // The overlay ships a tokens file with no entry: the server starts and
    // refuses everything but the public routes.
    let tokens = dir.path().join("tokens.toml");
    std::fs::copy(
        repo().join("deploy/kubernetes/overlays/single/tokens.toml"),
        &tokens,
    )
    .unwrap();
    // Flags override the file's pod paths and listen addresses (file < env
    // < flags), as a pod's would not need to.
    let args = [
        "--config",
        config.to_str().unwrap(),
        "--auth-tokens-file",
        tokens.to_str().unwrap(),
    ];
    let data = dir.path().join("data");
    let server = Server::start(&data, &args);
    let url = server.url("");
    let (ok, text) = health(&["--url", &url]);
    assert!(ok, "{text}");
    assert_eq!(remote_write(&server, &[], "k8s_up"), 401);
    let (status, _) = server.get("/metrics");
    assert_eq!(status, 200, "scrape annotations point at a public /metrics");
    drop(server);

    // With a token (as `strata token` prints it) writes and reads work.
    let token = "strata_k8s_test_token";
    std::fs::write(
        &tokens,
        format!(
            "[[token]]\nname = \"prometheus\"\nsha256 = \"{}\"\ntenant = \"logistics\"\nroles = [\"read\", \"write\"]\n",
            strata_server::auth::token_digest(token)
        ),
    )
    .unwrap();
    let server = Server::start(&data, &args);
    let bearer = format!("Bearer {token}");
    let auth = [("Authorization", bearer.as_str())];
    assert_eq!(remote_write(&server, &auth, "k8s_up"), 204);
    let (status, body) = sql_count(&server, &auth, "k8s_up");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("[[2]]"), "{body}");
    assert!(
        server.log().contains("\"level\":\"INFO\""),
        "the ConfigMap asks for JSON logs"
    );
    drop(server);

    // The health check fails when nothing answers.
    let (ok, text) = health(&["--url", &url, "--timeout", "2s"]);
    assert!(!ok, "{text}");
}

#[test]
fn scale_out_roles_start_with_the_manifests_arguments() {
    if !common::clients_ready(&[], "yaml") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = repo().join("deploy/kubernetes/base/strata.toml");
    let tokens = dir.path().join("tokens.toml");
    std::fs::write(&tokens, "").unwrap();
    let overlay = repo().join("deploy/kubernetes/overlays/scale-out");
    for (file, role) in [
        ("ingester.yaml", "ingester"),
        ("querier.yaml", "querier"),
        ("compactor.yaml", "compactor"),
    ] {
        // The workload is the file's first document.
        let workload = yaml(&overlay.join(file));
        let args: Vec<String> = workload["spec"]["template"]["spec"]["containers"][0]["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(args[0], "serve");
        let at = args.iter().position(|a| a == "--role").unwrap();
        assert_eq!(args[at + 1], role);
        // The pod's config path is the test's; the rest as the manifest
        // has it, the node named as its first pod would be.
        let mut extra: Vec<String> = vec![
            "--config".into(),
            config.to_str().unwrap().into(),
            "--auth-tokens-file".into(),
            tokens.to_str().unwrap().into(),
            "--node-id".into(),
            format!("strata-{role}-0"),
        ];
        extra.extend(args[3..].iter().cloned());
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let server = Server::start(&dir.path().join(role), &extra);
        assert!(
            server.log().contains(&format!("\"role\":\"{role}\"")),
            "{}",
            server.log()
        );
    }
}

#[test]
fn compose_environment_stores_in_garage_bootstrapped_by_its_init_script() {
    let var = |k: &str| std::env::var(k).ok();
    let Some(admin_url) = var("STRATA_TEST_GARAGE_ADMIN_URL") else {
        assert!(
            var("STRATA_E2E_REQUIRE_S3").as_deref() != Some("1"),
            "STRATA_E2E_REQUIRE_S3=1 but STRATA_TEST_GARAGE_ADMIN_URL is not set"
        );
        eprintln!("skipping: STRATA_TEST_GARAGE_ADMIN_URL not set");
        return;
    };
    if !common::clients_ready(&[], "yaml") {
        return;
    }
    let compose = yaml(&repo().join("deploy/compose/compose.yaml"));
    let services = &compose["services"];
    let env_of = |service: &str| -> Vec<(String, String)> {
        services[service]["environment"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
            .collect()
    };

    // The init script, with the stack's key and bucket, against the test
    // Garage's admin API (its own address and token); twice: a restarted
    // stack runs it again.
    let init = |expect: &str| {
        let text = common::stdout_of(
            Command::new("python3")
                .arg(repo().join("deploy/compose/garage-init.py"))
                .envs(env_of("garage-init"))
                .env("GARAGE_ADMIN_URL", &admin_url)
                .env(
                    "GARAGE_ADMIN_TOKEN",
                    var("STRATA_TEST_GARAGE_ADMIN_TOKEN").unwrap(),
                )
                .env("GARAGE_WAIT_S", "30"),
        );
        assert!(text.contains(expect), "{text}");
        assert!(text.contains("may read and write"), "{text}");
    };
    init("garage-init: ");
    init("already present");

    // Strata with the Compose file's environment, Garage's address being
    // the test one's and the tables under a prefix of their own.
    let dir = tempfile::tempdir().unwrap();
    let mut env = env_of("strata");
    for (k, v) in env.iter_mut() {
        match k.as_str() {
            "AWS_ENDPOINT" => *v = var("STRATA_TEST_S3_ENDPOINT").unwrap(),
            "STRATA_OBJECT_STORE_URL" => *v = format!("{v}/{}", uuid::Uuid::new_v4()),
            _ => {}
        }
    }
    assert!(
        env.iter()
            .any(|(k, v)| k == "AWS_ALLOW_HTTP" && v == "true")
    );
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let tenant = [("X-Scope-OrgID", "demo")];
    let server = Server::start_with_env(&dir.path().join("a"), &[], &env);
    assert_eq!(remote_write(&server, &tenant, "compose_up"), 204);
    let (status, body) = server.post("/api/v1/admin/flush").unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"files\":1"), "{body}");
    drop(server);

    // A second server with an empty data directory (no WAL, no local
    // files) reads the flushed samples back from Garage.
    let server = Server::start_with_env(&dir.path().join("b"), &[], &env);
    let (status, body) = sql_count(&server, &tenant, "compose_up");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("[[2]]"), "{body}");
    assert!(!dir.path().join("b/objects").exists());
}
