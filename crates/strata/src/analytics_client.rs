//! `strata slo`, `strata capacity`, `strata neighbours`: the analytics of a
//! running server, as tables (or the API's JSON with `--json`).

use std::process::ExitCode;

use clap::Args;
use serde_json::Value;

/// Where and as whom to ask.
#[derive(Debug, Args)]
pub struct Conn {
    /// The server's HTTP address.
    #[arg(long, env = "STRATA_URL", default_value = "http://127.0.0.1:9470")]
    url: String,
    /// Tenant (X-Scope-OrgID); the server's default when absent.
    #[arg(long, env = "STRATA_TENANT")]
    tenant: Option<String>,
    /// API token (sent as a bearer token) when the server has auth on.
    #[arg(long, env = "STRATA_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Evaluate at this instant (RFC 3339 or Unix seconds) instead of now.
    #[arg(long)]
    time: Option<String>,
    /// Print the API's JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct SloArgs {
    #[command(flatten)]
    conn: Conn,
    /// Only this SLO.
    name: Option<String>,
}

#[derive(Debug, Args)]
pub struct CapacityArgs {
    #[command(flatten)]
    conn: Conn,
    /// Only this capacity spec.
    name: Option<String>,
    /// Ad hoc: the usage gauge (PromQL), instead of the specs.
    #[arg(long, requires = "limit", conflicts_with = "name")]
    usage: Option<String>,
    /// Ad hoc: its limit, a number or PromQL.
    #[arg(long)]
    limit: Option<String>,
    /// History the forecast is fitted on [default: 7d].
    #[arg(long)]
    lookback: Option<String>,
    /// linear or seasonal [default: linear].
    #[arg(long)]
    model: Option<String>,
    /// The seasonal model's period [default: 1d].
    #[arg(long)]
    season: Option<String>,
    /// How far ahead to look [default: 90d].
    #[arg(long)]
    horizon: Option<String>,
    /// up, or down for a gauge falling to its limit [default: up].
    #[arg(long)]
    direction: Option<String>,
}

#[derive(Debug, Args)]
pub struct NeighboursArgs {
    #[command(flatten)]
    conn: Conn,
    /// Only this neighbours spec.
    name: Option<String>,
    /// Ad hoc: the resource use (PromQL), instead of the specs.
    #[arg(long, requires = "by", conflicts_with_all = ["name", "strata_usage"])]
    resource: Option<String>,
    /// Ad hoc: the tenant/workload label.
    #[arg(long)]
    by: Option<String>,
    /// Rank tenants by their load on this Strata (with auth on, a token of
    /// the usage tenant `_strata`): query_seconds,
    /// queries, query_samples, samples_ingested, bytes_ingested,
    /// log_bytes_ingested, active_series, stored_bytes.
    #[arg(long, value_name = "RESOURCE", conflicts_with = "name")]
    strata_usage: Option<String>,
    /// "Now" [default: 1h].
    #[arg(long)]
    window: Option<String>,
    /// Each workload's normal: the period before the window [default: 7d].
    #[arg(long)]
    baseline: Option<String>,
    /// The shared resource's size, a number or PromQL.
    #[arg(long)]
    capacity: Option<String>,
}

fn report(
    what: &str,
    json: bool,
    got: Result<Value, String>,
    table: fn(&Value) -> String,
) -> ExitCode {
    match got {
        Ok(v) if json => {
            println!("{v}");
            ExitCode::SUCCESS
        }
        Ok(v) => {
            print!("{}", table(&v));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("strata {what}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn path(base: &str, name: &Option<String>) -> String {
    match name {
        Some(n) => format!("{base}/{}", url_escape(n)),
        None => base.to_owned(),
    }
}

pub fn slo(args: SloArgs) -> ExitCode {
    let got = fetch(&args.conn, &path("/api/v1/slo", &args.name), &[]);
    report("slo", args.conn.json, got, slo_table)
}

pub fn capacity(args: CapacityArgs) -> ExitCode {
    let params = [
        ("usage", &args.usage),
        ("limit", &args.limit),
        ("lookback", &args.lookback),
        ("model", &args.model),
        ("season", &args.season),
        ("horizon", &args.horizon),
        ("direction", &args.direction),
    ];
    let got = fetch(&args.conn, &path("/api/v1/capacity", &args.name), &params);
    report("capacity", args.conn.json, got, capacity_table)
}

pub fn neighbours(args: NeighboursArgs) -> ExitCode {
    let base = if args.strata_usage.is_some() {
        "/api/v1/neighbours/usage".to_owned()
    } else {
        path("/api/v1/neighbours", &args.name)
    };
    let params = [
        (
            "resource",
            args.strata_usage
                .as_ref()
                .or(args.resource.as_ref())
                .cloned(),
        ),
        ("by", args.by.clone()),
        ("window", args.window.clone()),
        ("baseline", args.baseline.clone()),
        ("capacity", args.capacity.clone()),
    ];
    let params: Vec<(&str, &Option<String>)> = params.iter().map(|(k, v)| (*k, v)).collect();
    let got = fetch(&args.conn, &base, &params);
    report("neighbours", args.conn.json, got, neighbours_table)
}

fn fetch(conn: &Conn, path: &str, params: &[(&str, &Option<String>)]) -> Result<Value, String> {
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build(),
    );
    let query: Vec<String> = params
        .iter()
        .copied()
        .chain([("time", &conn.time)])
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", url_escape(v))))
        .collect();
    let mut target = format!("{}{path}", conn.url.trim_end_matches('/'));
    if !query.is_empty() {
        target = format!("{target}?{}", query.join("&"));
    }
    let mut req = agent.get(&target);
    if let Some(t) = &conn.tenant {
        req = req.header("X-Scope-OrgID", t);
    }
    if let Some(t) = &conn.token {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    let mut resp = req.call().map_err(|e| format!("{}: {e}", conn.url))?;
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

fn labels(v: &Value) -> String {
    let labels: Vec<String> = v
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    if labels.is_empty() {
        "-".into()
    } else {
        labels.join(",")
    }
}

fn num(v: &Value, digits: usize) -> String {
    v.as_f64()
        .map_or_else(|| "-".to_owned(), |f| format!("{f:.digits$}"))
}

/// An RFC 3339 minute from Unix ms.
fn when(v: &Value) -> String {
    v.as_i64()
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map_or_else(
            || "-".to_owned(),
            |t| t.format("%Y-%m-%d %H:%M").to_string(),
        )
}

/// One line per SLO and label set: SLI, budget left, 1h and 6h burn
/// rates, firing alerts.
fn slo_table(v: &Value) -> String {
    let mut rows = vec![
        [
            "SLO",
            "PROCESS",
            "LABELS",
            "OBJECTIVE",
            "SLI",
            "BUDGET LEFT",
            "BURN 1H",
            "BURN 6H",
            "FIRING",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for s in v.as_array().into_iter().flatten() {
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
        rows.push(vec![
            s["name"].as_str().unwrap_or_default().to_owned(),
            s["business_process"].as_str().unwrap_or("-").to_owned(),
            labels(&s["labels"]),
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
    layout(rows)
}

/// One line per resource, most urgent first.
fn capacity_table(v: &Value) -> String {
    let mut rows = vec![
        [
            "RANK",
            "CAPACITY",
            "LABELS",
            "STATUS",
            "CURRENT",
            "LIMIT",
            "USED",
            "TREND/DAY",
            "EXHAUSTED AT",
            "95% BAND",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for f in v.as_array().into_iter().flatten() {
        let band = match (when(&f["earliest_ms"]), when(&f["latest_ms"])) {
            (e, l) if e == "-" && l == "-" => "-".to_owned(),
            (e, l) => format!("{e} .. {l}"),
        };
        rows.push(vec![
            num(&f["rank"], 0),
            f["name"].as_str().unwrap_or_default().to_owned(),
            labels(&f["labels"]),
            f["status"].as_str().unwrap_or_default().replace('_', " "),
            num(&f["current"], 2),
            num(&f["limit"], 2),
            f["utilisation"]
                .as_f64()
                .map_or_else(|| "-".to_owned(), |u| format!("{:.1}%", u * 100.0)),
            num(&f["trend_per_day"], 3),
            when(&f["exhaustion_ms"]),
            band,
        ]);
    }
    layout(rows)
}

/// One block per resource: whether it saturated, then its workloads by
/// blame.
fn neighbours_table(v: &Value) -> String {
    let mut out = String::new();
    for r in v.as_array().into_iter().flatten() {
        out.push_str(&format!(
            "{} (by {}, window {}, baseline {}): total {}{}, {}\n",
            r["name"].as_str().unwrap_or_default(),
            r["by"].as_str().unwrap_or_default(),
            r["window"].as_str().unwrap_or_default(),
            r["baseline"].as_str().unwrap_or_default(),
            num(&r["total"], 3),
            r["capacity"]
                .as_f64()
                .map_or(String::new(), |c| format!(" of {c}")),
            if r["contention"] == true {
                format!(
                    "contention in {} of {} steps",
                    r["contention_steps"], r["window_steps"]
                )
            } else {
                "no contention".to_owned()
            },
        ));
        let mut rows = vec![
            [
                "RANK",
                "WORKLOAD",
                "SHARE",
                "BASELINE SHARE",
                "MEAN",
                "VS BASELINE",
                "Z",
                "BLAME",
            ]
            .map(String::from)
            .to_vec(),
        ];
        let pct = |v: &Value| {
            v.as_f64()
                .map_or_else(|| "-".to_owned(), |f| format!("{:.1}%", f * 100.0))
        };
        for w in r["workloads"].as_array().into_iter().flatten() {
            rows.push(vec![
                num(&w["rank"], 0),
                w["workload"].as_str().unwrap_or_default().to_owned(),
                pct(&w["share"]),
                pct(&w["baseline_share"]),
                num(&w["mean"], 3),
                w["ratio"]
                    .as_f64()
                    .map_or_else(|| "new".to_owned(), |x| format!("{x:.2}×")),
                num(&w["z_score"], 1),
                pct(&w["blame"]),
            ]);
        }
        out.push_str(&layout(rows));
        out.push('\n');
    }
    out
}

/// Columns padded to their widest cell.
fn layout(rows: Vec<Vec<String>>) -> String {
    let cols = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..cols)
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
