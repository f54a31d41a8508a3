//! `strata health`: asks a running server whether it is ready (or live)
//! and exits 0 or 1, so a container's health check needs no shell, curl or
//! wget in the image (`deploy/Dockerfile`'s `HEALTHCHECK`).

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

#[derive(Debug, Args)]
pub struct HealthArgs {
    /// The server's HTTP address (plain HTTP: with TLS on, probe over HTTPS
    /// from the orchestrator instead).
    #[arg(
        long,
        env = "STRATA_HEALTH_URL",
        default_value = "http://127.0.0.1:9470"
    )]
    url: String,
    /// Ask `/-/healthy` (the process answers) instead of `/-/ready` (WAL
    /// replayed, accepting writes and queries).
    #[arg(long)]
    live: bool,
    /// Give up after this long, e.g. 3s.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

pub fn run(args: HealthArgs) -> ExitCode {
    let path = if args.live { "/-/healthy" } else { "/-/ready" };
    let target = format!("{}{path}", args.url.trim_end_matches('/'));
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(args.timeout))
            .build(),
    );
    match agent.get(&target).call() {
        Ok(mut resp) => {
            let status = resp.status().as_u16();
            let body = resp
                .body_mut()
                .read_to_string()
                .unwrap_or_default()
                .trim()
                .to_string();
            if status == 200 {
                println!("{target}: {body}");
                ExitCode::SUCCESS
            } else {
                eprintln!("{target}: HTTP {status}: {body}");
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("{target}: {e}");
            ExitCode::FAILURE
        }
    }
}
