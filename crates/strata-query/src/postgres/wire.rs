//! SQL over the Postgres wire protocol (pgwire): psql, psycopg, JDBC and
//! Grafana's PostgreSQL data source.
//!
//! An adapter: logins, admission and planning are the server's front door's
//! ([`Service`]); this module speaks the protocol around them.
//!
//! The database name selects the tenant (`psql -d acme`). With auth on the
//! password is a token (cleartext password exchange: use TLS or a trusted
//! network), which must be for that tenant and allow reading. Simple and
//! extended query protocols: statements are planned by DataFusion, `$n`
//! parameters bound by position, results streamed row by row in text or
//! binary format. Transaction statements (`BEGIN`, `COMMIT`, `ROLLBACK`)
//! and session settings (`SET`, `RESET`, `DISCARD`) are accepted and do
//! nothing — Strata is read-only here and every statement sees the latest
//! data — so drivers that wrap queries in transactions work. `SHOW` answers
//! the few settings drivers ask for. Errors carry a SQLSTATE.

use std::fmt::Debug;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field};
use async_trait::async_trait;
use datafusion::common::ScalarValue;
use futures::{StreamExt, stream};
use pgwire::api::auth::{
    AuthSource, DefaultServerParameterProvider, LoginInfo, Password, StartupHandler,
    cleartext::CleartextPasswordAuthStartupHandler, noop::NoopStartupHandler,
};
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{DataRowEncoder, FieldInfo, QueryResponse, Response, Tag};
use pgwire::api::stmt::QueryParser;
use pgwire::api::{ClientInfo, METADATA_DATABASE, METADATA_USER, PgWireServerHandlers, Type};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use strata_types::{ErrorKind, TenantId};
use tokio::net::TcpListener;
use tracing::{debug, info, warn};

use super::catalog::{SERVER_VERSION, setting};
use super::sqlstate_for;
use crate::{Planned, QueryError};

mod values;
use values::{bind, field_infos, pg_type, rows};

/// What the wire protocol needs from the server's front door.
#[async_trait]
pub trait Service: Send + Sync + 'static {
    /// Whether a login must present a token as its password.
    fn checks_tokens(&self) -> bool;
    /// Checks that `token` may read `tenant`.
    fn authorize(&self, token: &[u8], tenant: &TenantId) -> Result<(), Refusal>;
    /// Admits one query of `tenant`: the returned guard is held until the
    /// query's last row is sent or its client goes away.
    async fn admit(&self, tenant: &TenantId) -> Result<Box<dyn Send + Sync>, Refusal>;
    /// Plans a statement over `tenant`'s data.
    async fn plan(&self, tenant: &TenantId, sql: &str) -> Result<Planned, QueryError>;
}

/// Why the front door refused: its kind picks the SQLSTATE.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub kind: ErrorKind,
    pub message: String,
}

/// Accepts connections until `stop` resolves; each runs on its own task.
pub async fn serve(
    listener: TcpListener,
    service: Arc<dyn Service>,
    stop: impl std::future::Future<Output = ()> + Send,
) {
    let handlers = Arc::new(Handlers::new(service));
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => return,
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    let handlers = Arc::clone(&handlers);
                    // A second handle on the socket, to see the client leave
                    // while a query runs (pgwire reads nothing then).
                    let watch = std::os::fd::AsFd::as_fd(&socket)
                        .try_clone_to_owned()
                        .map(std::net::TcpStream::from);
                    tokio::spawn(async move {
                        let session = pgwire::tokio::process_socket(socket, None, handlers);
                        let result = match watch {
                            Ok(watch) => tokio::select! {
                                r = session => r,
                                () = client_gone(watch) => {
                                    debug!(%peer, "postgres client went away: its query is stopped");
                                    Ok(())
                                }
                            },
                            Err(_) => session.await,
                        };
                        if let Err(error) = result {
                            debug!(%peer, %error, "postgres connection ended with an error");
                        }
                    });
                }
                Err(error) => {
                    warn!(%error, "postgres accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            },
        }
    }
}

/// Resolves once the peer has closed its end of `socket`. Checked a few
/// times a second with a non-blocking peek (the socket is non-blocking:
/// tokio set it so): end of stream means the client is gone, and dropping
/// the connection's future then stops its running query and frees its
/// query slot. Data waiting unread (a pipelined message) is not an end.
async fn client_gone(socket: std::net::TcpStream) {
    let mut byte = [0u8; 1];
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match socket.peek(&mut byte) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// The pgwire handlers: one set shared by every connection.
pub struct Handlers {
    backend: Arc<Backend>,
    startup: Arc<Startup>,
}

impl Handlers {
    pub fn new(service: Arc<dyn Service>) -> Self {
        Self {
            startup: Arc::new(Startup::new(Arc::clone(&service))),
            backend: Arc::new(Backend {
                parser: Arc::new(Parser {
                    service: Arc::clone(&service),
                }),
                service,
            }),
        }
    }
}

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        Arc::clone(&self.backend)
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        Arc::clone(&self.backend)
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        Arc::clone(&self.startup)
    }
}

/// No password with auth off; a token as cleartext password with it on.
enum Startup {
    Open(OpenStartup),
    Token(Box<CleartextPasswordAuthStartupHandler<TokenSource, DefaultServerParameterProvider>>),
}

impl Startup {
    fn new(service: Arc<dyn Service>) -> Self {
        if service.checks_tokens() {
            Self::Token(Box::new(CleartextPasswordAuthStartupHandler::new(
                TokenSource { service },
                parameters(),
            )))
        } else {
            Self::Open(OpenStartup)
        }
    }
}

fn parameters() -> DefaultServerParameterProvider {
    let mut p = DefaultServerParameterProvider::default();
    p.server_version = SERVER_VERSION.to_owned();
    p
}

struct OpenStartup;

impl NoopStartupHandler for OpenStartup {}

#[async_trait]
impl StartupHandler for Startup {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: pgwire::messages::PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + futures::Sink<pgwire::messages::PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as futures::Sink<pgwire::messages::PgWireBackendMessage>>::Error>,
    {
        match self {
            Self::Open(h) => h.on_startup(client, message).await,
            Self::Token(h) => h.on_startup(client, message).await,
        }
    }
}

/// Checks a login's password as a token for the tenant it names.
struct TokenSource {
    service: Arc<dyn Service>,
}

impl Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSource")
    }
}

#[async_trait]
impl AuthSource for TokenSource {
    async fn get_password(&self, _login: &LoginInfo) -> PgWireResult<Password> {
        // Tokens are stored hashed: there is no password to hand out, only
        // `verify_password` below.
        Err(user_error(
            "28000",
            "this server checks tokens, not stored passwords: use password authentication",
        ))
    }

    async fn verify_password(
        &self,
        login: &LoginInfo,
        presented: &[u8],
    ) -> PgWireResult<Option<()>> {
        let tenant = tenant_named(login.database(), login.user())?;
        self.service
            .authorize(presented, &tenant)
            .map(|()| None)
            .map_err(|e| match e.kind {
                ErrorKind::Unauthenticated => {
                    PgWireError::InvalidPassword(login.user().unwrap_or_default().to_owned())
                }
                kind => user_error(sqlstate_for(kind), &e.message),
            })
    }
}

/// The tenant a connection names: its database, else (as Postgres
/// defaults the database) its user name, else the default tenant.
fn tenant_named(database: Option<&str>, user: Option<&str>) -> PgWireResult<TenantId> {
    match database.or(user).filter(|d| !d.is_empty()) {
        Some(name) => TenantId::try_new(name).map_err(|e| {
            user_error(
                "3D000",
                &format!("database {name:?} is not a valid tenant id: {e}"),
            )
        }),
        None => Ok(TenantId::default_tenant()),
    }
}

fn client_tenant<C: ClientInfo>(client: &C) -> PgWireResult<TenantId> {
    let m = client.metadata();
    tenant_named(
        m.get(METADATA_DATABASE).map(String::as_str),
        m.get(METADATA_USER).map(String::as_str),
    )
}

fn user_error(code: &str, message: &str) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".to_owned(),
        code.to_owned(),
        message.to_owned(),
    )))
}

fn query_error(e: &QueryError) -> PgWireError {
    user_error(e.sqlstate(), &e.to_string())
}

fn refused(e: &Refusal) -> PgWireError {
    user_error(sqlstate_for(e.kind), &e.message)
}

/// One statement as the protocol sees it.
#[derive(Debug, Clone)]
pub struct Statement {
    sql: String,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    /// Planned by DataFusion: parameter and result types.
    Query {
        params: Vec<Option<DataType>>,
        columns: Vec<Field>,
    },
    /// Accepted and ignored; the command tag to answer.
    Transaction(&'static str, Transaction),
    Setting(&'static str),
    /// `SHOW name`: one text row.
    Show {
        name: String,
        value: String,
    },
}

#[derive(Debug, Clone, Copy)]
enum Transaction {
    Start,
    End,
}

/// Sorts a statement by its first words; everything that is not a
/// transaction, setting or `SHOW` goes to DataFusion.
fn classify(sql: &str) -> Result<Option<Kind>, PgWireError> {
    let words: Vec<String> = sql
        .split_whitespace()
        .take(3)
        .map(|w| w.trim_end_matches(';').to_ascii_uppercase())
        .collect();
    let first = words.first().map(String::as_str).unwrap_or_default();
    Ok(Some(match first {
        "BEGIN" | "START" => Kind::Transaction("BEGIN", Transaction::Start),
        "COMMIT" | "END" => Kind::Transaction("COMMIT", Transaction::End),
        "ROLLBACK" | "ABORT" => Kind::Transaction("ROLLBACK", Transaction::End),
        "SET" => Kind::Setting("SET"),
        "RESET" => Kind::Setting("RESET"),
        "DISCARD" => Kind::Setting("DISCARD ALL"),
        "DEALLOCATE" => Kind::Setting("DEALLOCATE"),
        "SHOW" => {
            let rest = sql
                .trim()
                .trim_end_matches(';')
                .get(4..)
                .unwrap_or_default()
                .trim();
            let name = rest.trim_matches('"').to_ascii_lowercase();
            let Some(value) = setting(&name) else {
                return Err(user_error(
                    "42704",
                    &format!("unrecognized configuration parameter {rest:?}"),
                ));
            };
            Kind::Show {
                name,
                value: value.to_owned(),
            }
        }
        _ => return Ok(None),
    }))
}

/// Plans statements for a connection's tenant.
pub struct Parser {
    service: Arc<dyn Service>,
}

impl Debug for Parser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Parser")
    }
}

impl Parser {
    /// The statement, and its plan when it is a query.
    async fn statement(
        &self,
        tenant: &TenantId,
        sql: &str,
    ) -> PgWireResult<(Statement, Option<Planned>)> {
        if let Some(kind) = classify(sql)? {
            return Ok((
                Statement {
                    sql: sql.to_owned(),
                    kind,
                },
                None,
            ));
        }
        let planned = self
            .service
            .plan(tenant, sql)
            .await
            .map_err(|e| query_error(&e))?;
        let params = planned.parameter_types().map_err(|e| query_error(&e))?;
        let columns = planned
            .schema()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        Ok((
            Statement {
                sql: sql.to_owned(),
                kind: Kind::Query { params, columns },
            },
            Some(planned),
        ))
    }
}

#[async_trait]
impl QueryParser for Parser {
    type Statement = Statement;

    async fn parse_sql<C>(
        &self,
        client: &C,
        sql: &str,
        _types: &[Option<Type>],
    ) -> PgWireResult<Option<Statement>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let tenant = client_tenant(client)?;
        self.statement(&tenant, sql).await.map(|(s, _)| Some(s))
    }

    fn get_parameter_types(&self, stmt: &Statement) -> PgWireResult<Vec<Type>> {
        Ok(match &stmt.kind {
            Kind::Query { params, .. } => params
                .iter()
                .map(|t| t.as_ref().map_or(Type::TEXT, pg_type))
                .collect(),
            _ => Vec::new(),
        })
    }

    fn get_result_schema(
        &self,
        stmt: &Statement,
        format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        let text = Format::UnifiedText;
        Ok(fields(&stmt.kind, format.unwrap_or(&text)))
    }
}

/// Runs statements: one per simple query part, one per portal.
pub struct Backend {
    service: Arc<dyn Service>,
    parser: Arc<Parser>,
}

impl Backend {
    async fn run(
        &self,
        tenant: &TenantId,
        stmt: &Statement,
        planned: Option<Planned>,
        params: Vec<ScalarValue>,
        format: &Format,
    ) -> PgWireResult<Response> {
        let columns = match &stmt.kind {
            Kind::Transaction(tag, Transaction::Start) => {
                return Ok(Response::TransactionStart(Tag::new(tag)));
            }
            Kind::Transaction(tag, Transaction::End) => {
                return Ok(Response::TransactionEnd(Tag::new(tag)));
            }
            Kind::Setting(tag) => return Ok(Response::Execution(Tag::new(tag))),
            Kind::Show { value, .. } => {
                let fields = Arc::new(fields(&stmt.kind, format));
                let mut encoder = DataRowEncoder::new(Arc::clone(&fields));
                encoder.encode_field(&value.as_str())?;
                let row = encoder.take_row();
                return Ok(Response::Query(QueryResponse::new(
                    fields,
                    stream::iter([Ok(row)]),
                )));
            }
            Kind::Query { columns, .. } => columns,
        };
        // Held until the last row is sent (or the client goes away).
        let admitted = self.service.admit(tenant).await.map_err(|e| refused(&e))?;
        let planned = match planned {
            Some(p) => p,
            None => {
                // Planned again: a prepared statement runs over the data as
                // it is when executed, not when it was prepared. Its columns
                // were described to the client then and must not change
                // (a metric table gains a column when its series gain a
                // label): Postgres' own rule and SQLSTATE for this.
                let p = self
                    .service
                    .plan(tenant, &stmt.sql)
                    .await
                    .map_err(|e| query_error(&e))?;
                let same = p.schema().fields().len() == columns.len()
                    && p.schema()
                        .fields()
                        .iter()
                        .zip(columns)
                        .all(|(a, b)| a.name() == b.name() && a.data_type() == b.data_type());
                if !same {
                    return Err(user_error(
                        "0A000",
                        "cached plan must not change result type: the statement's columns changed since it was prepared; prepare it again",
                    ));
                }
                p
            }
        };
        let results = planned.execute(params).await.map_err(|e| query_error(&e))?;
        let fields = Arc::new(field_infos(columns, format));
        let rows = rows(results, Arc::clone(&fields)).map(move |r| {
            let _ = &admitted;
            r
        });
        Ok(Response::Query(QueryResponse::new(fields, rows)))
    }
}

#[async_trait]
impl SimpleQueryHandler for Backend {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let tenant = client_tenant(client)?;
        let mut out = Vec::new();
        for sql in split_statements(query) {
            let (stmt, planned) = self.parser.statement(&tenant, &sql).await?;
            out.push(
                self.run(&tenant, &stmt, planned, Vec::new(), &Format::UnifiedText)
                    .await?,
            );
        }
        if out.is_empty() {
            out.push(Response::EmptyQuery);
        }
        Ok(out)
    }
}

#[async_trait]
impl ExtendedQueryHandler for Backend {
    type Statement = Statement;
    type QueryParser = Parser;

    fn query_parser(&self) -> Arc<Parser> {
        Arc::clone(&self.parser)
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Statement>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let tenant = client_tenant(client)?;
        let stmt = &portal.statement.statement;
        let params = match &stmt.kind {
            Kind::Query { params, .. } => bind(portal, params)?,
            _ => Vec::new(),
        };
        self.run(&tenant, stmt, None, params, &portal.result_column_format)
            .await
    }
}

/// Splits a script or simple query into statements at semicolons outside
/// quotes and comments; empty statements are dropped.
pub fn split_statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                current.push(c);
                for d in chars.by_ref() {
                    current.push(d);
                    if d == c {
                        break;
                    }
                }
            }
            '-' if chars.peek() == Some(&'-') => {
                for d in chars.by_ref() {
                    if d == '\n' {
                        current.push('\n');
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut previous = ' ';
                for d in chars.by_ref() {
                    if previous == '*' && d == '/' {
                        break;
                    }
                    previous = d;
                }
                current.push(' ');
            }
            ';' => {
                if !current.trim().is_empty() {
                    out.push(current.trim().to_owned());
                }
                current.clear();
            }
            c => current.push(c),
        }
    }
    if !current.trim().is_empty() {
        out.push(current.trim().to_owned());
    }
    out
}

fn fields(kind: &Kind, format: &Format) -> Vec<FieldInfo> {
    match kind {
        Kind::Query { columns, .. } => field_infos(columns, format),
        Kind::Show { name, .. } => vec![FieldInfo::new(
            name.clone(),
            None,
            None,
            Type::TEXT,
            format.format_for(0),
        )],
        Kind::Transaction(..) | Kind::Setting(_) => Vec::new(),
    }
}

/// Binds the Postgres listener (before the HTTP one starts serving, so a
/// port conflict stops start-up with a clear error).
pub async fn bind_listener(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let listener = TcpListener::bind(addr).await?;
    info!(addr = %listener.local_addr()?, "postgres wire protocol listening");
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_split_at_semicolons_outside_quotes_and_comments() {
        assert_eq!(
            split_statements("SELECT 'a;b'; SELECT \"x;\" FROM t -- c;\n; /* ; */ SELECT 3;;"),
            ["SELECT 'a;b'", "SELECT \"x;\" FROM t", "SELECT 3"]
        );
        assert!(split_statements(" ; ;").is_empty());
    }

    #[test]
    fn transaction_and_setting_statements_are_recognised() {
        assert!(matches!(
            classify("begin").unwrap(),
            Some(Kind::Transaction("BEGIN", Transaction::Start))
        ));
        assert!(matches!(
            classify("SET extra_float_digits = 3").unwrap(),
            Some(Kind::Setting("SET"))
        ));
        assert!(matches!(
            classify("SHOW transaction isolation level").unwrap(),
            Some(Kind::Show { .. })
        ));
        assert!(classify("SHOW nonsense").is_err());
        assert!(classify("SELECT 1").unwrap().is_none());
    }
}
