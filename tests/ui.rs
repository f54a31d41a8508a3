//! The web UI in a real browser: Debian's Chromium, driven by Selenium
//! through Debian's ChromeDriver (`tests/ui/drive.py`), against the real
//! binary holding metrics, logs, an SLO, a capacity and a neighbours spec
//! with known answers (the SLO and analytics tests' data). Each page is
//! checked against the API's own answer, auth on refuses without a token
//! and works with one, no page logs a console error, and every page is
//! written as a screenshot into the test's output folder
//! (`STRATA_UI_SCREENSHOTS`, else a temporary one).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::path::Path;

use common::{Server, agent};

const TOKEN: &str = "acme-ui-token";

/// Three hours of `wms` log lines, one a minute, every tenth a warning.
fn push_logs(server: &Server, tenant: &str) {
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    let mut info = Vec::new();
    let mut warn = Vec::new();
    for m in (0..180).rev() {
        let t = now_ns - m * 60_000_000_000;
        let line = format!("picking order SO{m:05} validated in {} ms", 20 + m % 17);
        if m % 10 == 0 {
            warn.push(serde_json::json!([t.to_string(), format!("slow {line}")]));
        } else {
            info.push(serde_json::json!([t.to_string(), line]));
        }
    }
    let body = serde_json::json!({"streams": [
        {"stream": {"job": "wms", "level": "info"}, "values": info},
        {"stream": {"job": "wms", "level": "warn"}, "values": warn},
    ]});
    let status = agent()
        .post(&server.url("/loki/api/v1/push"))
        .header("Content-Type", "application/json")
        .header("X-Scope-OrgID", tenant)
        .send(body.to_string().as_bytes())
        .unwrap()
        .status()
        .as_u16();
    assert_eq!(status, 204);
}

fn drive(args: &[&str], server: &Server) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/ui/drive.py");
    let out = std::process::Command::new("python3")
        .arg(&script)
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "drive.py {args:?}:\n{stdout}\n{}\n--- server log ---\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
    stdout
}

#[test]
fn every_page_draws_what_the_api_answers_in_a_real_browser() {
    if !common::clients_ready(&["chromium", "chromedriver"], "selenium") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let shots = std::env::var("STRATA_UI_SCREENSHOTS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| dir.path().join("screenshots"));
    std::fs::create_dir_all(&shots).unwrap();
    let spec = dir.path().join("specs.toml");
    std::fs::write(
        &spec,
        format!(
            "{}\n{}",
            crate::slo::SPEC.replace("\n[[slo]]", "\n[[slo]]\ntenant = \"acme\""),
            crate::analytics::SPEC
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let spec_arg = spec.to_str().unwrap().to_owned();
    let serve = ["--slo-file", &spec_arg, "--slo-evaluation-interval", "1s"];

    // Auth off: the data goes in, and the page offers every tenant.
    let server = Server::start(&data, &serve);
    crate::slo::write_counters(&server, "acme");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    crate::analytics::write_history(&server, "acme", now / 60_000 * 60_000);
    push_logs(&server, "acme");
    let base = format!("http://{}", server.addr);
    let said = drive(&["open", &base, shots.to_str().unwrap()], &server);
    assert!(said.contains("\"acme\""), "{said}");
    assert_eq!(server.terminate().code(), Some(0));

    // Auth on (the same data, after a restart): a token for acme.
    let tokens = dir.path().join("tokens.toml");
    std::fs::write(
        &tokens,
        format!(
            "[[token]]\nname = \"ui\"\nsha256 = \"{}\"\ntenant = \"acme\"\nroles = [\"read\", \"admin\"]\n",
            strata_server::auth::token_digest(TOKEN)
        ),
    )
    .unwrap();
    // Limits that count: the tenants page shows where acme stands.
    let limits = dir.path().join("limits.toml");
    std::fs::write(
        &limits,
        "[tenants.acme]\nmax_series = 100000\nmax_streams = 3\n",
    )
    .unwrap();
    let tokens_arg = tokens.to_str().unwrap().to_owned();
    let limits_arg = limits.to_str().unwrap().to_owned();
    let mut args = serve.to_vec();
    args.extend([
        "--auth-tokens-file",
        &tokens_arg,
        "--limits-overrides-file",
        &limits_arg,
    ]);
    let server = Server::start(&data, &args);
    let base = format!("http://{}", server.addr);
    let said = drive(&["auth", &base, shots.to_str().unwrap(), TOKEN], &server);
    println!("{said}");
    for page in [
        "login",
        "explore-promql",
        "explore-sql",
        "explore-logql",
        "processes",
        "process",
        "capacity",
        "neighbours",
        "tenants",
    ] {
        let png = shots.join(format!("{page}.png"));
        let size = std::fs::metadata(&png).map_or(0, |m| m.len());
        assert!(size > 5_000, "{}: {size} bytes", png.display());
    }
}
