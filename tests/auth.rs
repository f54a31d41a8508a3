//! Token auth on the real binary: tokens from a file, and rotation without
//! a restart (the file is re-read when it changes).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::time::{Duration, Instant};

use common::{Server, agent, payload, series};

fn entry(token: &str) -> String {
    format!(
        "[[token]]\nname = \"ci\"\nsha256 = \"{}\"\ntenant = \"odoo\"\nroles = [\"read\", \"write\"]\n",
        strata_server::auth::token_digest(token)
    )
}

fn write(server: &Server, auth: Option<&str>) -> u16 {
    let body = payload(vec![series(
        &[("__name__", "m"), ("job", "j")],
        &[(1_000, 1.0)],
    )]);
    let mut req = agent()
        .post(&server.url("/api/v1/write"))
        .header("Content-Type", "application/x-protobuf")
        .header("Content-Encoding", "snappy")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0");
    if let Some(a) = auth {
        req = req.header("Authorization", a);
    }
    req.send(&body[..]).unwrap().status().as_u16()
}

#[test]
fn tokens_rotate_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.toml");
    std::fs::write(&tokens, entry("first-token")).unwrap();
    let config = dir.path().join("strata.toml");
    std::fs::write(
        &config,
        format!(
            "[auth]\nenabled = true\ntokens_file = {:?}\nreload_interval = \"200ms\"\n",
            tokens
        ),
    )
    .unwrap();
    let server = Server::start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    assert_eq!(write(&server, None), 401);
    assert_eq!(write(&server, Some("Bearer first-token")), 204);

    std::fs::write(&tokens, entry("second-token")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while write(&server, Some("Bearer second-token")) != 204 {
        assert!(
            Instant::now() < deadline,
            "rotated token not accepted: {}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(write(&server, Some("Bearer first-token")), 401);

    // A broken edit keeps the tokens in force.
    std::fs::write(&tokens, "[[token]]\nsha256 = 1\n").unwrap();
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(write(&server, Some("Bearer second-token")), 204);
    assert!(server.log().contains("not reloaded"), "{}", server.log());
}

#[test]
fn a_bad_tokens_file_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.toml");
    std::fs::write(
        &tokens,
        "[[token]]\nsha256 = \"short\"\ntenant = \"odoo\"\nroles = [\"read\"]\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["serve", "--data-dir"])
        .arg(dir.path().join("data"))
        .arg("--auth-tokens-file")
        .arg(&tokens)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("sha256 must be 64 hex digits"), "{err}");
}
