//! SQL over the Postgres wire protocol (pgwire): psql, psycopg, JDBC and
//! Grafana's PostgreSQL data source.
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

use arrow::array::{
    Array, AsArray, BooleanArray, Float32Array, Float64Array, Int16Array, Int32Array, Int64Array,
    RecordBatch,
};
use arrow::datatypes::{DataType, Field, TimeUnit};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use datafusion::common::ScalarValue;
use futures::{Stream, StreamExt, stream};
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
use pgwire::messages::data::DataRow;
use strata_query::{Planned, QueryError, QueryStream};
use strata_types::{ErrorKind, TenantId};
use tokio::net::TcpListener;
use tracing::{debug, info, warn};

use crate::AppState;
use crate::auth::Role;
use crate::error::{ApiError, Shape, sqlstate_for};

/// What the server reports as its version: what clients parse to pick
/// their features (psql, JDBC), then Strata's own.
const SERVER_VERSION: &str = "15.0";

/// Accepts connections until `stop` resolves; each runs on its own task.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    stop: impl std::future::Future<Output = ()> + Send,
) {
    let handlers = Arc::new(Handlers::new(state));
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => return,
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    let handlers = Arc::clone(&handlers);
                    tokio::spawn(async move {
                        if let Err(error) = pgwire::tokio::process_socket(socket, None, handlers).await {
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

/// The pgwire handlers: one set shared by every connection.
pub struct Handlers {
    backend: Arc<Backend>,
    startup: Arc<Startup>,
}

impl Handlers {
    pub fn new(state: Arc<AppState>) -> Self {
        Self {
            startup: Arc::new(Startup::new(Arc::clone(&state))),
            backend: Arc::new(Backend {
                parser: Arc::new(Parser {
                    state: Arc::clone(&state),
                }),
                state,
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
    fn new(state: Arc<AppState>) -> Self {
        if state.auth.enabled() {
            Self::Token(Box::new(CleartextPasswordAuthStartupHandler::new(
                TokenSource { state },
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
#[derive(Debug)]
struct TokenSource {
    state: Arc<AppState>,
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
        self.state
            .auth
            .authorize_login(presented, &tenant, Role::Read, Shape::PlainText)
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

fn api_error(e: &ApiError) -> PgWireError {
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
            let value = match name.as_str() {
                "server_version" => SERVER_VERSION,
                "server_encoding" | "client_encoding" => "UTF8",
                "standard_conforming_strings" => "on",
                "transaction isolation level" | "transaction_isolation" => "read committed",
                "datestyle" => "ISO, MDY",
                "timezone" | "time zone" => "UTC",
                "search_path" => "public",
                "integer_datetimes" => "on",
                "max_identifier_length" => "63",
                _ => {
                    return Err(user_error(
                        "42704",
                        &format!("unrecognized configuration parameter {rest:?}"),
                    ));
                }
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
#[derive(Debug)]
pub struct Parser {
    state: Arc<AppState>,
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
            .state
            .query
            .plan(tenant, sql, "postgres")
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
    state: Arc<AppState>,
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
        let shape = Shape::PlainText;
        let slot = self
            .state
            .limits
            .start_query(tenant)
            .map_err(|r| api_error(&self.state.refused(tenant, r, shape)))?;
        let permit = self.state.scheduler.acquire(tenant).await;
        let started = std::time::Instant::now();
        let planned = match planned {
            Some(p) => p,
            None => {
                // Planned again: a prepared statement runs over the data as
                // it is when executed, not when it was prepared. Its columns
                // were described to the client then and must not change
                // (a metric table gains a column when its series gain a
                // label): Postgres' own rule and SQLSTATE for this.
                let p = self
                    .state
                    .query
                    .plan(tenant, &stmt.sql, "postgres")
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
        // Held until the last row is sent (or the client goes away).
        let finish = Finish::new(&self.state, tenant, "postgres", started, slot, permit);
        let rows = rows(results, Arc::clone(&fields)).map(move |r| {
            let _ = &finish;
            r
        });
        Ok(Response::Query(QueryResponse::new(fields, rows)))
    }
}

/// A query's concurrency slot and scheduler permit; its usage is recorded
/// when its results are done (shared by the Postgres and Flight SQL front
/// ends, whose results stream after the handler returns).
pub(crate) struct Finish {
    state: Arc<AppState>,
    tenant: TenantId,
    api: &'static str,
    started: std::time::Instant,
    _slot: crate::limits::QuerySlot,
    _permit: crate::scheduler::Permit,
}

impl Finish {
    pub(crate) fn new(
        state: &Arc<AppState>,
        tenant: &TenantId,
        api: &'static str,
        started: std::time::Instant,
        slot: crate::limits::QuerySlot,
        permit: crate::scheduler::Permit,
    ) -> Self {
        Self {
            state: Arc::clone(state),
            tenant: tenant.clone(),
            api,
            started,
            _slot: slot,
            _permit: permit,
        }
    }
}

impl Drop for Finish {
    fn drop(&mut self) {
        self.state.record_query(
            &self.tenant,
            self.api,
            self.started.elapsed().as_secs_f64(),
            0,
        );
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

/// The portal's parameters as DataFusion values of the types the plan
/// expects. Text parameters are parsed as that type; binary ones decoded
/// by the type the client declared (or the plan's).
fn bind(
    portal: &Portal<Statement>,
    expected: &[Option<DataType>],
) -> PgWireResult<Vec<ScalarValue>> {
    let n = portal.parameter_len();
    if n != expected.len() {
        return Err(user_error(
            "08P01",
            &format!(
                "bind message supplies {n} parameters, but the statement has {}",
                expected.len()
            ),
        ));
    }
    let mut out = Vec::with_capacity(n);
    for (i, want) in expected.iter().enumerate() {
        let want = want.clone().unwrap_or(DataType::Utf8);
        let declared = portal
            .statement
            .parameter_types
            .get(i)
            .cloned()
            .flatten()
            .filter(|t| *t != Type::UNKNOWN)
            .unwrap_or_else(|| pg_type(&want));
        let value = if portal.parameter_format.is_binary(i) {
            binary_param(portal, i, &declared)?
        } else {
            match portal.parameter::<String>(i, &Type::TEXT)? {
                None => ScalarValue::Utf8(None),
                Some(text) => ScalarValue::try_from_string(text.clone(), &want).map_err(|e| {
                    user_error(
                        "22P02",
                        &format!("parameter ${}: {text:?} is not a valid {want}: {e}", i + 1),
                    )
                })?,
            }
        };
        let value = value.cast_to(&want).map_err(|e| {
            user_error(
                "22P02",
                &format!("parameter ${}: cannot be read as {want}: {e}", i + 1),
            )
        })?;
        out.push(value);
    }
    Ok(out)
}

fn binary_param(portal: &Portal<Statement>, i: usize, t: &Type) -> PgWireResult<ScalarValue> {
    Ok(match *t {
        Type::BOOL => ScalarValue::Boolean(portal.parameter::<bool>(i, t)?),
        Type::INT2 => ScalarValue::Int16(portal.parameter::<i16>(i, t)?),
        Type::INT4 => ScalarValue::Int32(portal.parameter::<i32>(i, t)?),
        Type::INT8 => ScalarValue::Int64(portal.parameter::<i64>(i, t)?),
        Type::FLOAT4 => ScalarValue::Float32(portal.parameter::<f32>(i, t)?),
        Type::FLOAT8 => ScalarValue::Float64(portal.parameter::<f64>(i, t)?),
        Type::TIMESTAMPTZ => ScalarValue::TimestampMicrosecond(
            portal
                .parameter::<DateTime<chrono::FixedOffset>>(i, t)?
                .map(|d| d.timestamp_micros()),
            Some("UTC".into()),
        ),
        Type::TIMESTAMP => ScalarValue::TimestampMicrosecond(
            portal
                .parameter::<NaiveDateTime>(i, t)?
                .map(|d| d.and_utc().timestamp_micros()),
            None,
        ),
        Type::DATE => ScalarValue::Date32(
            portal
                .parameter::<NaiveDate>(i, t)?
                .map(|d| (d - NaiveDate::default()).num_days() as i32),
        ),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => {
            ScalarValue::Utf8(portal.parameter::<String>(i, t)?)
        }
        _ => {
            return Err(user_error(
                "0A000",
                &format!(
                    "parameter ${}: binary {} parameters are not supported; send it as text",
                    i + 1,
                    t.name()
                ),
            ));
        }
    })
}

/// The Postgres type a column is sent as.
fn pg_type(t: &DataType) -> Type {
    match t {
        DataType::Boolean => Type::BOOL,
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => Type::INT2,
        DataType::Int32 | DataType::UInt16 => Type::INT4,
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => Type::INT8,
        DataType::Float32 => Type::FLOAT4,
        DataType::Float16
        | DataType::Float64
        | DataType::Decimal32(..)
        | DataType::Decimal64(..)
        | DataType::Decimal128(..)
        | DataType::Decimal256(..) => Type::FLOAT8,
        DataType::Timestamp(_, Some(_)) => Type::TIMESTAMPTZ,
        DataType::Timestamp(_, None) => Type::TIMESTAMP,
        DataType::Date32 | DataType::Date64 => Type::DATE,
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => Type::BYTEA,
        DataType::Dictionary(_, v) => pg_type(v),
        _ => Type::TEXT,
    }
}

fn field_infos(columns: &[Field], format: &Format) -> Vec<FieldInfo> {
    columns
        .iter()
        .enumerate()
        .map(|(i, f)| {
            FieldInfo::new(
                f.name().clone(),
                None,
                None,
                pg_type(f.data_type()),
                format.format_for(i),
            )
        })
        .collect()
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

/// Results as data rows, one batch encoded at a time.
fn rows(
    results: QueryStream,
    fields: Arc<Vec<FieldInfo>>,
) -> impl Stream<Item = PgWireResult<DataRow>> + Send {
    results.flat_map(move |batch| {
        let rows = match batch {
            Ok(batch) => encode_batch(&batch, &fields).unwrap_or_else(|e| vec![Err(e)]),
            Err(e) => vec![Err(query_error(&e))],
        };
        stream::iter(rows)
    })
}

fn encode_batch(
    batch: &RecordBatch,
    fields: &Arc<Vec<FieldInfo>>,
) -> PgWireResult<Vec<PgWireResult<DataRow>>> {
    let columns: Vec<Column> = batch
        .columns()
        .iter()
        .zip(fields.iter())
        .map(|(c, f)| Column::new(c.as_ref(), f))
        .collect::<PgWireResult<_>>()?;
    let mut out = Vec::with_capacity(batch.num_rows());
    let text: Vec<bool> = fields
        .iter()
        .map(|f| f.format() == pgwire::api::results::FieldFormat::Text)
        .collect();
    let mut encoder = DataRowEncoder::new(Arc::clone(fields));
    for row in 0..batch.num_rows() {
        for (c, text) in columns.iter().zip(&text) {
            c.encode(row, text, &mut encoder)?;
        }
        out.push(Ok(encoder.take_row()));
    }
    Ok(out)
}

/// A column ready to encode: cast to what its Postgres type is sent from.
enum Column<'a> {
    Bool(BooleanArray),
    I16(Int16Array),
    I32(Int32Array),
    I64(Int64Array),
    F32(Float32Array),
    F64(Float64Array),
    /// Microseconds since the epoch; with a time zone: sent as timestamptz.
    Timestamp(Int64Array, bool),
    Date(arrow::array::Date32Array),
    Bytes(arrow::array::BinaryArray),
    Text(&'a dyn Array, ArrayFormatter<'a>),
}

static TEXT_OPTIONS: std::sync::LazyLock<FormatOptions<'static>> =
    std::sync::LazyLock::new(|| FormatOptions::default().with_null(""));

impl<'a> Column<'a> {
    fn new(array: &'a dyn Array, field: &FieldInfo) -> PgWireResult<Self> {
        let cast = |to: &DataType| {
            arrow::compute::cast(array, to).map_err(|e| PgWireError::ApiError(Box::new(e)))
        };
        Ok(match *field.datatype() {
            Type::BOOL => Self::Bool(cast(&DataType::Boolean)?.as_boolean().clone()),
            Type::INT2 => Self::I16(cast(&DataType::Int16)?.as_primitive().clone()),
            Type::INT4 => Self::I32(cast(&DataType::Int32)?.as_primitive().clone()),
            Type::INT8 => Self::I64(cast(&DataType::Int64)?.as_primitive().clone()),
            Type::FLOAT4 => Self::F32(cast(&DataType::Float32)?.as_primitive().clone()),
            Type::FLOAT8 => Self::F64(cast(&DataType::Float64)?.as_primitive().clone()),
            Type::TIMESTAMPTZ | Type::TIMESTAMP => {
                let us = cast(&DataType::Timestamp(TimeUnit::Microsecond, None))?;
                let us = cast_i64(us.as_ref())?;
                Self::Timestamp(us, *field.datatype() == Type::TIMESTAMPTZ)
            }
            Type::DATE => Self::Date(cast(&DataType::Date32)?.as_primitive().clone()),
            Type::BYTEA => Self::Bytes(cast(&DataType::Binary)?.as_binary().clone()),
            _ => Self::Text(
                array,
                ArrayFormatter::try_new(array, &TEXT_OPTIONS)
                    .map_err(|e| PgWireError::ApiError(Box::new(e)))?,
            ),
        })
    }

    /// `text`: the column goes out in text format.
    fn encode(&self, row: usize, text: &bool, e: &mut DataRowEncoder) -> PgWireResult<()> {
        fn opt<T: Copy>(a: &impl Array, v: T, row: usize) -> Option<T> {
            (!a.is_null(row)).then_some(v)
        }
        match self {
            Self::Bool(a) => e.encode_field(&opt(a, a.value(row), row)),
            Self::I16(a) => e.encode_field(&opt(a, a.value(row), row)),
            Self::I32(a) => e.encode_field(&opt(a, a.value(row), row)),
            Self::I64(a) => e.encode_field(&opt(a, a.value(row), row)),
            Self::F32(a) if *text => {
                e.encode_field(&opt(a, a.value(row), row).map(|v| pg_float(v.into())))
            }
            Self::F64(a) if *text => e.encode_field(&opt(a, a.value(row), row).map(pg_float)),
            Self::F32(a) => e.encode_field(&opt(a, a.value(row), row)),
            Self::F64(a) => e.encode_field(&opt(a, a.value(row), row)),
            Self::Timestamp(a, with_tz) => {
                let t = opt(a, a.value(row), row).and_then(DateTime::<Utc>::from_timestamp_micros);
                if *with_tz {
                    e.encode_field(&t)
                } else {
                    e.encode_field(&t.map(|t| t.naive_utc()))
                }
            }
            Self::Date(a) => {
                let d = opt(a, a.value(row), row).and_then(|days| {
                    NaiveDate::default().checked_add_signed(chrono::Duration::days(days.into()))
                });
                e.encode_field(&d)
            }
            Self::Bytes(a) => {
                let v = (!a.is_null(row)).then(|| a.value(row));
                e.encode_field(&v)
            }
            Self::Text(a, f) => {
                let v = (!a.is_null(row)).then(|| f.value(row).to_string());
                e.encode_field(&v)
            }
        }
    }
}

/// A float as Postgres prints it: the shortest text that reads back the
/// same, in exponent form below 1e-4 and from 1e15 ("1e+20", "1.5e-05"),
/// `NaN`, `Infinity`, `-Infinity`.
fn pg_float(v: f64) -> String {
    if v.is_nan() {
        return "NaN".to_owned();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity" } else { "-Infinity" }.to_owned();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.to_owned();
    }
    let sci = format!("{v:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..15).contains(&exp) {
        format!("{v}")
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    }
}

fn cast_i64(a: &dyn Array) -> PgWireResult<Int64Array> {
    let data = a.to_data().into_builder().data_type(DataType::Int64);
    // Same layout (a timestamp is an i64 array); only the type changes.
    let data = data
        .build()
        .map_err(|e| PgWireError::ApiError(Box::new(e)))?;
    Ok(Int64Array::from(data))
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
    fn floats_print_as_postgres_prints_them() {
        for (v, want) in [
            (45.0, "45"),
            (0.1, "0.1"),
            (-2.5, "-2.5"),
            (1e20, "1e+20"),
            (1.5e-5, "1.5e-05"),
            (123456789012345.0, "123456789012345"),
            (1e15, "1e+15"),
            (0.0001, "0.0001"),
            (f64::NAN, "NaN"),
            (f64::NEG_INFINITY, "-Infinity"),
        ] {
            assert_eq!(pg_float(v), want, "{v}");
        }
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
