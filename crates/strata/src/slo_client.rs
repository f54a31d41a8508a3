//! `strata slo`: the tenant's SLOs from a running server, as a table (or
//! the API's JSON with `--json`).

use std::process::ExitCode;

use clap::Args;
use serde_json::Value;

#[derive(Debug, Args)]
pub struct SloArgs {
    /// The server's HTTP address.
    #[arg(long, env = "STRATA_URL", default_value = "http://127.0.0.1:9470")]
    url: String,
    /// Tenant (X-Scope-OrgID); the server's default when absent.
    #[arg(long, env = "STRATA_TENANT")]
    tenant: Option<String>,
    /// API token (sent as a bearer token) when the server has auth on.
    #[arg(long, env = "STRATA_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Only this SLO.
    name: Option<String>,
    /// Print the API's JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: SloArgs) -> ExitCode {
    match fetch(&args) {
        Ok(v) if args.json => {
            println!("{v}");
            ExitCode::SUCCESS
        }
        Ok(v) => {
            print!("{}", table(&v));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("strata slo: {e}");
            ExitCode::FAILURE
        }
    }
}

fn fetch(args: &SloArgs) -> Result<Value, String> {
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build(),
    );
    let path = match &args.name {
        Some(n) => format!("/api/v1/slo/{}", url_escape(n)),
        None => "/api/v1/slo".to_owned(),
    };
    let mut req = agent.get(&format!("{}{path}", args.url.trim_end_matches('/')));
    if let Some(t) = &args.tenant {
        req = req.header("X-Scope-OrgID", t);
    }
    if let Some(t) = &args.token {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    let mut resp = req.call().map_err(|e| format!("{}: {e}", args.url))?;
    let status = resp.status().as_u16();
    let text = resp
        .body_mut()
        .read_to_string()
        .map_err(|e| e.to_string())?;
    let v: Value = serde_json::from_str(&text).map_err(|_| format!("HTTP {status}: {text}"))?;
    if status != 200 {
        return Err(format!(
            "HTTP {status}: {}",
            v["error"].as_str().unwrap_or(text.as_str())
        ));
    }
    Ok(v["data"].clone())
}

fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn pct(v: &Value) -> String {
    v.as_f64()
        .map_or_else(|| "-".to_owned(), |f| format!("{:.3}%", f * 100.0))
}

/// One line per SLO and label set: SLI, budget left, 1h and 6h burn
/// rates, firing alerts.
fn table(v: &Value) -> String {
    let mut rows = vec![[
        "SLO".to_owned(),
        "PROCESS".to_owned(),
        "LABELS".to_owned(),
        "OBJECTIVE".to_owned(),
        "SLI".to_owned(),
        "BUDGET LEFT".to_owned(),
        "BURN 1H".to_owned(),
        "BURN 6H".to_owned(),
        "FIRING".to_owned(),
    ]];
    for s in v.as_array().into_iter().flatten() {
        let labels: Vec<String> = s["labels"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
            .collect();
        let burn = |w: &str| {
            s["burn_rates"][w]
                .as_f64()
                .map_or_else(|| "-".to_owned(), |b| format!("{b:.2}"))
        };
        let firing: Vec<String> = s["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| a["firing"] == true)
            .map(|a| {
                format!(
                    "{} {}",
                    a["severity"].as_str().unwrap_or_default(),
                    a["long_window"].as_str().unwrap_or_default()
                )
            })
            .collect();
        rows.push([
            s["name"].as_str().unwrap_or_default().to_owned(),
            s["business_process"].as_str().unwrap_or("-").to_owned(),
            if labels.is_empty() {
                "-".into()
            } else {
                labels.join(",")
            },
            pct(&s["objective"]),
            pct(&s["sli"]),
            pct(&s["error_budget_remaining"]),
            burn("1h"),
            burn("6h"),
            if firing.is_empty() {
                "-".into()
            } else {
                firing.join(", ")
            },
        ]);
    }
    let widths: Vec<usize> = (0..9)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        let cells: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}
