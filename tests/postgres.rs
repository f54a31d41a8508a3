//! SQL over the Postgres wire protocol with real clients: `psql` (simple
//! query protocol) and psycopg 3 (extended protocol, parameters, prepared
//! statements, binary results), tenant selection by database name, and
//! token passwords when auth is on; and `strata sql`, the HTTP client.
//!
//! Needs `psql` and python3 with psycopg (`scripts/test` installs them);
//! skipped without them unless `STRATA_E2E_REQUIRE_PYTHON=1`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::process::Command;

use common::{Server, clients_ready, load_http_requests, payload, series};

/// `psql -At` output of `sql` against `database`, and its exit status.
fn psql(server: &Server, database: &str, password: Option<&str>, sql: &str) -> (bool, String) {
    let mut cmd = Command::new("psql");
    cmd.args([
        "-h",
        "127.0.0.1",
        "-p",
        &server.pg_port.to_string(),
        "-d",
        database,
    ])
    .args([
        "-U",
        "grafana",
        "-X",
        "-At",
        "-v",
        "ON_ERROR_STOP=1",
        "-v",
        "VERBOSITY=verbose",
    ])
    .args(["-c", sql])
    .env_remove("PGPASSWORD")
    .env("PGCONNECT_TIMEOUT", "10");
    match password {
        Some(p) => cmd.env("PGPASSWORD", p),
        None => cmd.arg("-w"),
    };
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn psql_and_psycopg_query_a_tenant_by_database_name() {
    if !clients_ready(&["psql"], "psycopg") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);
    load_http_requests(&server, "acme");
    // Half of it flushed to Parquet: answers span head and files.
    assert_eq!(server.post("/api/v1/admin/flush").unwrap().0, 200);
    load_http_requests(&server, "other");

    let (ok, out) = psql(
        &server,
        "acme",
        None,
        "SELECT job, code, count(*), sum(value) FROM http_requests_total GROUP BY job, code ORDER BY job, code",
    );
    assert!(ok, "{out}");
    assert_eq!(out, "api|200|10|45\napi|500|10|45\ndb|200|10|45\n");

    // The database is the tenant, as clients see it.
    let (ok, out) = psql(
        &server,
        "acme",
        None,
        "SELECT current_database(), current_schema()",
    );
    assert!(ok, "{out}");
    assert_eq!(out, "acme|public\n");

    // Several statements in one simple query, wrapped in a transaction.
    let (ok, out) = psql(
        &server,
        "acme",
        None,
        "BEGIN; SELECT count(*) FROM samples; SHOW server_version; COMMIT",
    );
    assert!(ok, "{out}");
    assert_eq!(out, "BEGIN\n30\n15.0\nCOMMIT\n");

    // Errors carry their SQLSTATE; the session survives them.
    let (ok, out) = psql(&server, "acme", None, "SELECT * FROM no_such_metric");
    assert!(!ok);
    assert!(out.contains("ERROR:  42P01"), "{out}");
    let (ok, out) = psql(&server, "acme", None, "SELEC 1");
    assert!(!ok);
    assert!(out.contains("ERROR:  42601"), "{out}");
    let (ok, out) = psql(&server, "acme", None, "DROP TABLE samples");
    assert!(!ok, "{out}");
    let (ok, out) = psql(&server, "bad/name", None, "SELECT 1");
    assert!(!ok);
    assert!(out.contains("3D000"), "{out}");

    // Each database sees its own tenant only.
    let (ok, out) = psql(
        &server,
        "other",
        None,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'metrics'",
    );
    assert!(ok, "{out}");
    assert_eq!(out, "http_requests_total\n");
    let (_, out) = psql(&server, "nobody", None, "SELECT count(*) FROM samples");
    assert_eq!(out, "0\n");

    let port = server.pg_port.to_string();
    let out = common::interop("pg_client.py", &["127.0.0.1", &port, "acme"], Some(&server));
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        v["by_job"],
        serde_json::json!([["api", 10, 9.0], ["db", 10, 9.0]])
    );
    assert_eq!(v["columns"], serde_json::json!(["job", "n", "top"]));
    assert_eq!(v["prepared"], serde_json::json!([10, 5]));
    assert_eq!(
        v["binary"],
        serde_json::json!(["2026-11-01T00:00:00+00:00", 0.0])
    );
    assert_eq!(v["error"][0], "42P01");
}

#[test]
fn psql_describes_the_tenant_with_its_backslash_commands() {
    if !clients_ready(&["psql"], "") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);
    load_http_requests(&server, "acme");
    assert_eq!(server.post("/api/v1/admin/flush").unwrap().0, 200);
    let other = payload(vec![series(
        &[("__name__", "odoo_queue_depth"), ("queue", "picking")],
        &[(1_793_491_200_000, 3.0)],
    )]);
    assert_eq!(server.write(Some("other"), &other).0, 204);

    // \dt lists the metrics of this tenant only, as tables of `public`.
    let (ok, out) = psql(&server, "acme", None, "\\dt");
    assert!(ok, "{out}");
    assert_eq!(
        out,
        "public|histograms|table|strata\n\
         public|http_requests_total|table|strata\n\
         public|logs|table|strata\n\
         public|samples|table|strata\n\
         public|series|table|strata\n"
    );
    let (ok, out) = psql(&server, "other", None, "\\dt odoo*");
    assert!(ok, "{out}");
    assert_eq!(out, "public|odoo_queue_depth|table|strata\n");

    // \d shows a metric's columns: its labels, then timestamp and value.
    let (ok, out) = psql(&server, "acme", None, "\\d http_requests_total");
    assert!(ok, "{out}");
    assert_eq!(
        out,
        "code|text|||\n\
         job|text|||\n\
         timestamp|timestamp with time zone||not null|\n\
         value|double precision||not null|\n"
    );
    let (ok, out) = psql(&server, "acme", None, "\\d+ system.wal");
    assert!(ok, "{out}");
    assert!(
        out.starts_with("tenant|text||not null||extended|||\n"),
        "{out}"
    );

    // Schemas, and the one database this login sees: its tenant.
    let (ok, out) = psql(&server, "acme", None, "\\dn");
    assert!(ok, "{out}");
    assert_eq!(out, "metrics|strata\npublic|strata\nsystem|strata\n");
    let (ok, out) = psql(&server, "acme", None, "\\l");
    assert!(ok, "{out}");
    assert_eq!(out, "acme|strata|UTF8|C|C||libc|\n");

    // What browsing tools (DBeaver) ask: catalog joins, ::regclass,
    // `t.oid, t.*`, version().
    let (ok, out) = psql(
        &server,
        "acme",
        None,
        "SELECT c.oid, c.*, d.description FROM pg_catalog.pg_class c \
         LEFT JOIN pg_catalog.pg_description d ON d.objoid = c.oid AND d.classoid = 'pg_class'::regclass \
         WHERE c.oid = 'http_requests_total'::regclass",
    );
    assert!(ok, "{out}");
    assert!(out.contains("|http_requests_total|2200|"), "{out}");
    let (ok, out) = psql(&server, "acme", None, "SELECT version()");
    assert!(ok, "{out}");
    assert!(out.starts_with("PostgreSQL 15.0 (Strata "), "{out}");
}

#[test]
fn tokens_are_postgres_passwords_for_their_tenant() {
    if !clients_ready(&["psql"], "psycopg") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.toml");
    let entry = |token: &str, tenant: &str, roles: &str| {
        format!(
            "[[token]]\nname = \"{tenant}-{roles}\"\nsha256 = \"{}\"\ntenant = \"{tenant}\"\nroles = [\"{roles}\"]\n",
            strata_server::auth::token_digest(token)
        )
    };
    std::fs::write(
        &tokens,
        entry("acme-reader", "acme", "read") + &entry("acme-writer", "acme", "write"),
    )
    .unwrap();
    let server = Server::start(
        &dir.path().join("data"),
        &["--auth-tokens-file", tokens.to_str().unwrap()],
    );
    let (ok, out) = psql(&server, "acme", Some("acme-reader"), "SELECT 41 + 1");
    assert!(ok, "{out}");
    assert_eq!(out, "42\n");
    let (ok, out) = psql(&server, "acme", Some("wrong"), "SELECT 1");
    assert!(!ok);
    assert!(out.contains("Password authentication failed"), "{out}");
    let (ok, out) = psql(&server, "acme", None, "SELECT 1");
    assert!(!ok, "{out}");
    // A valid token for another tenant, or without the read role.
    let (ok, out) = psql(&server, "other", Some("acme-reader"), "SELECT 1");
    assert!(!ok);
    assert!(out.contains("is for tenant acme, not other"), "{out}");
    let (ok, out) = psql(&server, "acme", Some("acme-writer"), "SELECT 1");
    assert!(!ok);
    assert!(out.contains("may not read"), "{out}");
}

/// A psql that goes away mid-query (killed, socket closed) stops its query
/// and gives back its slot: with two slots a tenant holds at most one, so
/// the tenant's next query gets an answer at once instead of waiting out
/// the abandoned one (before: until the query timeout).
#[test]
fn a_postgres_client_that_leaves_stops_its_query() {
    if !clients_ready(&["psql"], "") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("strata.toml");
    std::fs::write(&config, "[promql]\nquery_slots = 2\n").unwrap();
    let server = Server::start(
        &dir.path().join("data"),
        &[
            "--config",
            config.to_str().unwrap(),
            "--log-level",
            "strata_query::postgres=debug,info",
        ],
    );
    let mut client = Command::new("psql")
        .args(["-h", "127.0.0.1", "-p", &server.pg_port.to_string()])
        .args(["-d", "acme", "-U", "grafana", "-X", "-At"])
        .args([
            "-c",
            "SELECT count(*) FROM generate_series(1, 1000000000000)",
        ])
        .env_remove("PGPASSWORD")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Running by now, holding the tenant's one slot.
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert!(client.try_wait().unwrap().is_none(), "psql ended early");
    client.kill().unwrap();
    client.wait().unwrap();
    let asked = std::time::Instant::now();
    assert_eq!(server.rows(Some("acme"), "SELECT 1 AS one").len(), 1);
    assert!(
        asked.elapsed() < std::time::Duration::from_secs(10),
        "the tenant's next query waited {:?} for the abandoned one's slot",
        asked.elapsed()
    );
    assert!(server.log().contains("postgres client went away"));
}
