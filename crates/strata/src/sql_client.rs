//! `strata sql`: a SQL client for a running server, over its HTTP API.
//!
//! One-shot (`-c "SELECT ..."`, `--format table|csv|json|arrow|parquet`,
//! results streamed to stdout) or interactive: line editing and history
//! (`~/.strata_history`), statements spanning lines until `;`, tables
//! rendered for the terminal, and backslash commands (`\d`, `\d name`,
//! `\timing`, `\q`, `\?`).

use std::io::{IsTerminal, Read, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use clap::{Args, ValueEnum};
use strata_query::postgres::wire::split_statements as statements;

#[derive(Debug, Args)]
pub struct SqlArgs {
    /// The server's HTTP address.
    #[arg(long, env = "STRATA_URL", default_value = "http://127.0.0.1:9470")]
    url: String,
    /// Tenant (X-Scope-OrgID); the server's default when absent.
    #[arg(long, env = "STRATA_TENANT")]
    tenant: Option<String>,
    /// API token (sent as a bearer token) when the server has auth on.
    #[arg(long, env = "STRATA_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Run this statement and exit (else: interactive, or statements read
    /// from stdin when it is not a terminal).
    #[arg(short = 'c', long = "command", value_name = "SQL")]
    command: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    format: OutputFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum OutputFormat {
    /// A table for the terminal.
    Table,
    Csv,
    Json,
    /// Arrow IPC stream (binary).
    Arrow,
    /// A Parquet file (binary).
    Parquet,
}

struct Client {
    agent: ureq::Agent,
    url: String,
    tenant: Option<String>,
    token: Option<String>,
}

impl Client {
    fn new(args: &SqlArgs) -> Self {
        let agent = ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_connect(Some(Duration::from_secs(10)))
                .build(),
        );
        Self {
            agent,
            url: format!("{}/api/v1/sql", args.url.trim_end_matches('/')),
            tenant: args.tenant.clone(),
            token: args.token.clone(),
        }
    }

    /// Sends `sql` asking for `format`; the streaming body on success,
    /// the server's error message otherwise.
    fn send(&self, sql: &str, format: &str) -> Result<ureq::Body, String> {
        let mut req = self
            .agent
            .post(&self.url)
            .header("Content-Type", "application/json");
        if let Some(t) = &self.tenant {
            req = req.header("X-Scope-OrgID", t);
        }
        if let Some(t) = &self.token {
            req = req.header("Authorization", &format!("Bearer {t}"));
        }
        let body = serde_json::json!({"query": sql, "format": format}).to_string();
        let resp = req
            .send(body.as_bytes())
            .map_err(|e| format!("{}: {e}", self.url))?;
        let status = resp.status();
        let mut body = resp.into_body();
        if status.is_success() {
            return Ok(body);
        }
        let text = body.read_to_string().unwrap_or_default();
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_owned))
            .unwrap_or(text);
        Err(format!("{} {}", status.as_u16(), message.trim()))
    }

    /// Runs `sql` and writes its result to stdout in `format`; returns the
    /// row count when it is known (table output).
    fn run(&self, sql: &str, format: OutputFormat) -> Result<Option<usize>, String> {
        let mut out = std::io::stdout().lock();
        match format {
            OutputFormat::Table => {
                let body = self.send(sql, "arrow")?;
                let reader = arrow::ipc::reader::StreamReader::try_new(body.into_reader(), None)
                    .map_err(|e| format!("reading results: {e}"))?;
                let schema = reader.schema();
                let batches: Vec<RecordBatch> = reader
                    .collect::<Result<_, _>>()
                    .map_err(|e| format!("reading results: {e}"))?;
                let rows = batches.iter().map(RecordBatch::num_rows).sum();
                let table = if batches.is_empty() {
                    arrow::util::pretty::pretty_format_batches(&[RecordBatch::new_empty(schema)])
                } else {
                    arrow::util::pretty::pretty_format_batches(&batches)
                }
                .map_err(|e| format!("rendering results: {e}"))?;
                writeln!(out, "{table}").map_err(|e| e.to_string())?;
                Ok(Some(rows))
            }
            other => {
                let name = match other {
                    OutputFormat::Csv => "csv",
                    OutputFormat::Json => "json",
                    OutputFormat::Arrow => "arrow",
                    _ => "parquet",
                };
                let body = self.send(sql, name)?;
                std::io::copy(&mut body.into_reader(), &mut out)
                    .map_err(|e| format!("reading results: {e}"))?;
                if other == OutputFormat::Json {
                    writeln!(out).map_err(|e| e.to_string())?;
                }
                out.flush().map_err(|e| e.to_string())?;
                Ok(None)
            }
        }
    }
}

pub fn run(args: SqlArgs) -> ExitCode {
    let client = Client::new(&args);
    if let Some(sql) = &args.command {
        return match client.run(sql, args.format) {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("strata sql: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if !std::io::stdin().is_terminal() {
        let mut text = String::new();
        if let Err(e) = std::io::stdin().read_to_string(&mut text) {
            eprintln!("strata sql: reading stdin: {e}");
            return ExitCode::FAILURE;
        }
        for sql in statements(&text) {
            if let Err(e) = client.run(&sql, args.format) {
                eprintln!("strata sql: {e}");
                return ExitCode::FAILURE;
            }
        }
        return ExitCode::SUCCESS;
    }
    interactive(&client, args.format)
}

/// Whether `buffer` holds a complete statement (ends with `;` outside
/// quotes).
fn complete(buffer: &str) -> bool {
    let mut quote: Option<char> = None;
    let mut last = ' ';
    for c in buffer.chars() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            _ => {}
        }
        if !c.is_whitespace() {
            last = c;
        }
    }
    quote.is_none() && last == ';'
}

const HELP: &str = "\
  \\d            list tables (metrics, samples, series, system.*)
  \\d NAME       describe a table's columns
  \\timing       toggle timing of statements
  \\q            quit
Statements end with ';' and may span lines.";

fn interactive(client: &Client, format: OutputFormat) -> ExitCode {
    let mut editor = match rustyline::DefaultEditor::new() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("strata sql: terminal: {e}");
            return ExitCode::FAILURE;
        }
    };
    let history =
        std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".strata_history"));
    if let Some(h) = &history {
        let _ = editor.load_history(h);
    }
    println!("strata sql — {}; \\? for help, \\q to quit", client.url);
    let mut timing = false;
    let mut buffer = String::new();
    loop {
        let prompt = if buffer.is_empty() {
            "strata> "
        } else {
            "   ...> "
        };
        let line = match editor.readline(prompt) {
            Ok(l) => l,
            Err(rustyline::error::ReadlineError::Interrupted) => {
                buffer.clear();
                continue;
            }
            Err(_) => break,
        };
        let trimmed = line.trim();
        if buffer.is_empty() && trimmed.starts_with('\\') {
            let _ = editor.add_history_entry(trimmed);
            let mut words = trimmed.split_whitespace();
            match (words.next(), words.next()) {
                (Some("\\q"), _) => break,
                (Some("\\?"), _) => println!("{HELP}"),
                (Some("\\timing"), _) => {
                    timing = !timing;
                    println!("Timing is {}.", if timing { "on" } else { "off" });
                }
                (Some("\\d"), None) => show(
                    client,
                    "SELECT table_schema, table_name, table_type FROM information_schema.tables \
                     WHERE table_schema NOT IN ('information_schema', 'pg_catalog') ORDER BY 1, 2",
                    timing,
                ),
                (Some("\\d"), Some(name)) => {
                    let (schema, table) = name.split_once('.').unwrap_or(("public", name));
                    show(
                        client,
                        &format!(
                            "SELECT column_name, data_type, is_nullable FROM information_schema.columns \
                             WHERE table_schema = '{}' AND table_name = '{}' ORDER BY ordinal_position",
                            schema.replace('\'', "''"),
                            table.replace('\'', "''")
                        ),
                        timing,
                    );
                }
                _ => println!("unknown command {trimmed}; \\? for help"),
            }
            continue;
        }
        if trimmed.is_empty() && buffer.is_empty() {
            continue;
        }
        buffer.push_str(&line);
        buffer.push('\n');
        if !complete(&buffer) {
            continue;
        }
        let _ = editor.add_history_entry(buffer.trim());
        for sql in statements(&buffer) {
            let started = Instant::now();
            match client.run(&sql, format) {
                Ok(rows) => {
                    if let Some(n) = rows {
                        println!("({n} row{})", if n == 1 { "" } else { "s" });
                    }
                }
                Err(e) => eprintln!("ERROR: {e}"),
            }
            if timing {
                println!("Time: {:.3} ms", started.elapsed().as_secs_f64() * 1000.0);
            }
        }
        buffer.clear();
    }
    if let Some(h) = &history {
        let _ = editor.save_history(h);
    }
    ExitCode::SUCCESS
}

fn show(client: &Client, sql: &str, timing: bool) {
    let started = Instant::now();
    if let Err(e) = client.run(sql, OutputFormat::Table) {
        eprintln!("ERROR: {e}");
    }
    if timing {
        println!("Time: {:.3} ms", started.elapsed().as_secs_f64() * 1000.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_statement_is_complete_at_a_semicolon_outside_quotes() {
        assert!(complete("SELECT 1;"));
        assert!(complete("SELECT\n  1 ;  \n"));
        assert!(!complete("SELECT ';"));
        assert!(!complete("SELECT 1"));
    }
}
