//! Arrow Flight SQL (arrow-flight over tonic/gRPC): ADBC, JDBC/ODBC Flight
//! SQL drivers and Grafana's Flight SQL data source read results as Arrow,
//! without conversion.
//!
//! The tenant comes from the `x-scope-orgid` header, as over HTTP; with
//! auth on, from the bearer token (`authorization: Bearer <token>`, or a
//! handshake with HTTP Basic whose password is the token, which answers
//! with that bearer token). Statements: `CommandStatementQuery` →
//! `FlightInfo` (schema, one endpoint) → `DoGet` streams the batches.
//! Prepared statements are stateless: the handle carries the SQL, and
//! once parameters are bound (`DoPut`) the SQL plus the parameter row as
//! Arrow IPC; each execution plans again over the current data. Metadata:
//! `GetCatalogs`, `GetDbSchemas`, `GetTables` (with schemas),
//! `GetTableTypes`, `GetSqlInfo`. Everything is read-only: updates and
//! ingest are refused.

use std::pin::Pin;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::Schema;
use arrow::ipc::writer::IpcWriteOptions;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::flight_service_server::FlightServiceServer;
use arrow_flight::sql::metadata::{SqlInfoData, SqlInfoDataBuilder};
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest,
    ActionCreatePreparedStatementResult, Any, CommandGetCatalogs, CommandGetDbSchemas,
    CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables, CommandPreparedStatementQuery,
    CommandStatementQuery, DoPutPreparedStatementResult, ProstMessageExt, SqlInfo,
    TicketStatementQuery,
};
use arrow_flight::{
    FlightData, FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest, HandshakeResponse,
    IpcMessage, SchemaAsIpc, Ticket,
};
use bytes::Bytes;
use datafusion::common::ScalarValue;
use futures::{Stream, StreamExt, TryStreamExt, stream};
use prost::Message;
use strata_query::QueryError;
use strata_types::TenantId;
use tonic::{Request, Response, Status, Streaming};
use tracing::info;

use crate::AppState;
use crate::auth::Role;
use crate::error::{ApiError, Shape, grpc_code_for};

/// The catalog every tenant's tables are in.
const CATALOG: &str = "strata";

type DoGetStream = Pin<Box<dyn Stream<Item = Result<FlightData, Status>> + Send + 'static>>;

/// Serves Flight SQL on `listener` until `stop` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    stop: impl std::future::Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let service = FlightServiceServer::new(StrataFlightSql::new(state));
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    tonic::transport::Server::builder()
        .add_service(service)
        .serve_with_incoming_shutdown(incoming, stop)
        .await
}

/// Binds the Flight SQL listener.
pub async fn bind_listener(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    info!(addr = %listener.local_addr()?, "flight sql listening");
    Ok(listener)
}

#[derive(Clone)]
pub struct StrataFlightSql {
    state: Arc<AppState>,
}

impl StrataFlightSql {
    /// The Flight SQL service over `state` (what [`serve`] serves).
    pub fn new(state: Arc<AppState>) -> Self {
        StrataFlightSql { state }
    }
}

fn status(e: &ApiError) -> Status {
    Status::new(grpc_code_for(e.kind), e.message.clone())
}

fn query_status(e: &QueryError) -> Status {
    Status::new(grpc_code_for(e.kind()), e.to_string())
}

fn bad(message: impl Into<String>) -> Status {
    Status::invalid_argument(message)
}

/// A prepared statement's handle: the SQL, and once bound the parameter
/// row as an Arrow IPC stream.
#[derive(Clone, PartialEq, prost::Message)]
struct Handle {
    #[prost(string, tag = "1")]
    sql: String,
    #[prost(bytes = "bytes", tag = "2")]
    params: Bytes,
}

impl Handle {
    fn decode_from(bytes: &[u8]) -> Result<Self, Status> {
        Handle::decode(bytes).map_err(|e| bad(format!("not a prepared statement handle: {e}")))
    }

    /// The bound parameters, `$1` first. The bytes come from the client
    /// (the handle travels through it), and Arrow's IPC decoder panics on
    /// some malformed input: that is caught and answered as the client's
    /// error.
    fn parameters(&self) -> Result<Vec<ScalarValue>, Status> {
        std::panic::catch_unwind(|| self.decode_parameters())
            .unwrap_or_else(|_| Err(bad("parameters: not a valid Arrow IPC stream")))
    }

    fn decode_parameters(&self) -> Result<Vec<ScalarValue>, Status> {
        if self.params.is_empty() {
            return Ok(Vec::new());
        }
        check_ipc_stream(&self.params).map_err(|e| bad(format!("parameters: {e}")))?;
        let reader =
            arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(&self.params[..]), None)
                .map_err(|e| bad(format!("parameters: {e}")))?;
        let mut out = Vec::new();
        for batch in reader {
            let batch = batch.map_err(|e| bad(format!("parameters: {e}")))?;
            if batch.num_rows() != 1 {
                return Err(bad(format!(
                    "bind one row of parameters, not {}",
                    batch.num_rows()
                )));
            }
            for column in batch.columns() {
                out.push(
                    ScalarValue::try_from_array(column, 0)
                        .map_err(|e| bad(format!("parameters: {e}")))?,
                );
            }
        }
        Ok(out)
    }
}

/// Rows a parameter batch (or dictionary) may declare: Arrow's decoder
/// allocates by the declared lengths before it reads the data.
const MAX_PARAMETER_ROWS: i64 = 1 << 16;

/// Checks an IPC message's header against the bytes there are, before
/// Arrow's decoder trusts it: declared body and row counts that would make
/// it allocate without bound (and abort the process) are refused. The
/// message's body length.
fn check_ipc_message(header: &[u8], body_available: usize) -> Result<usize, String> {
    let msg = arrow::ipc::root_as_message(header).map_err(|e| format!("bad IPC message: {e}"))?;
    let body = msg.bodyLength();
    if body < 0 || body as u64 > body_available as u64 {
        return Err(format!(
            "an IPC message declares {body} body bytes, {body_available} follow"
        ));
    }
    let rows = match msg.header_type() {
        arrow::ipc::MessageHeader::RecordBatch => msg.header_as_record_batch().map(|b| b.length()),
        arrow::ipc::MessageHeader::DictionaryBatch => msg
            .header_as_dictionary_batch()
            .and_then(|d| d.data())
            .map(|b| b.length()),
        _ => None,
    };
    if let Some(rows) = rows
        && !(0..=MAX_PARAMETER_ROWS).contains(&rows)
    {
        return Err(format!("an IPC batch declares {rows} rows"));
    }
    // Within `body_available`, so it fits a usize.
    Ok(body as usize)
}

/// Walks an IPC stream's messages, checking each (see
/// [`check_ipc_message`]) before any is decoded.
fn check_ipc_stream(bytes: &[u8]) -> Result<(), String> {
    let word = |at: usize| -> Result<i32, String> {
        bytes
            .get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .map(i32::from_le_bytes)
            .ok_or_else(|| "truncated IPC stream".to_owned())
    };
    let mut at = 0usize;
    while at < bytes.len() {
        let mut len = word(at)?;
        at += 4;
        if len == -1 {
            // Continuation marker, then the length.
            len = word(at)?;
            at += 4;
        }
        if len == 0 {
            return Ok(());
        }
        let len = usize::try_from(len).map_err(|_| "negative IPC message length".to_owned())?;
        let header = bytes
            .get(at..at.saturating_add(len))
            .ok_or_else(|| "truncated IPC message".to_owned())?;
        at += len;
        at += check_ipc_message(header, bytes.len() - at)?;
    }
    Ok(())
}

/// Decodes a client's parameter batches; malformed input that makes
/// Arrow's decoder panic is the client's error, not a dropped request.
fn parameter_batches(data: &[FlightData]) -> Result<Vec<RecordBatch>, Status> {
    for d in data.iter().filter(|d| !d.data_header.is_empty()) {
        check_ipc_message(&d.data_header, d.data_body.len())
            .map_err(|e| bad(format!("parameters: {e}")))?;
    }
    std::panic::catch_unwind(|| arrow_flight::utils::flight_data_to_batches(data))
        .unwrap_or_else(|_| {
            Err(arrow::error::ArrowError::IpcError(
                "not a valid Arrow IPC stream".into(),
            ))
        })
        .map_err(|e| bad(format!("parameters: {e}")))
}

/// `schema` with every column nullable: what `FlightInfo` announces and
/// the data carries. The planned schema and the executed one can differ
/// in nullability only (a constant folded to a non-null literal, e.g.
/// `current_database()`), and clients such as ADBC refuse a stream whose
/// schema is not the announced one.
fn nullable(schema: &Schema) -> Arc<Schema> {
    Arc::new(Schema::new_with_metadata(
        schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect::<Vec<_>>(),
        schema.metadata().clone(),
    ))
}

fn schema_bytes(schema: &Schema) -> Result<Bytes, Status> {
    let IpcMessage(bytes) = SchemaAsIpc::new(schema, &IpcWriteOptions::default())
        .try_into()
        .map_err(|e: arrow::error::ArrowError| Status::internal(e.to_string()))?;
    Ok(bytes)
}

/// A metadata command answered by one batch.
fn one_batch(
    schema: Arc<Schema>,
    batch: Result<RecordBatch, arrow_flight::error::FlightError>,
) -> DoGetStream {
    Box::pin(
        FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .build(stream::once(async move { batch }))
            .map_err(Status::from),
    )
}

/// A `FlightInfo` whose one endpoint's ticket is `cmd` itself.
fn info_for(
    cmd: &impl ProstMessageExt,
    schema: &Schema,
    descriptor: FlightDescriptor,
) -> Result<FlightInfo, Status> {
    let ticket = Ticket::new(cmd.as_any().encode_to_vec());
    FlightInfo::new()
        .try_with_schema(schema)
        .map_err(|e| Status::internal(e.to_string()))
        .map(|i| {
            i.with_endpoint(FlightEndpoint::new().with_ticket(ticket))
                .with_descriptor(descriptor)
        })
}

static SQL_INFO: std::sync::LazyLock<Option<SqlInfoData>> = std::sync::LazyLock::new(|| {
    let mut b = SqlInfoDataBuilder::new();
    b.append(SqlInfo::FlightSqlServerName, "Strata");
    b.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
    b.append(SqlInfo::FlightSqlServerArrowVersion, "1.3");
    b.append(SqlInfo::FlightSqlServerReadOnly, true);
    b.append(SqlInfo::FlightSqlServerSql, true);
    b.append(SqlInfo::FlightSqlServerSubstrait, false);
    b.append(SqlInfo::FlightSqlServerTransaction, 0_i32);
    b.append(SqlInfo::FlightSqlServerCancel, false);
    b.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
    b.build().ok()
});

fn sql_info() -> Result<&'static SqlInfoData, Status> {
    SQL_INFO
        .as_ref()
        .ok_or_else(|| Status::internal("server info did not build"))
}

impl StrataFlightSql {
    fn tenant<T>(&self, request: &Request<T>) -> Result<TenantId, Status> {
        let headers = request.metadata().clone().into_headers();
        self.state
            .tenant_for(&headers, Role::Read, Shape::Json)
            .map_err(|e| status(&e))
    }

    /// Runs `sql` for the request's tenant and streams the results; the
    /// tenant's query slot is held until the stream ends.
    async fn execute(
        &self,
        tenant: &TenantId,
        sql: &str,
        params: Vec<ScalarValue>,
    ) -> Result<Response<DoGetStream>, Status> {
        // Held until the stream ends or the client goes away.
        let admitted = self
            .state
            .admit(tenant, "flight", Shape::Json)
            .await
            .map_err(|e| status(&e))?;
        let results = self
            .state
            .query
            .plan(tenant, sql, "flight")
            .await
            .map_err(|e| query_status(&e))?
            .execute(params)
            .await
            .map_err(|e| query_status(&e))?;
        let schema = nullable(&results.schema());
        let announced = Arc::clone(&schema);
        let batches = results.map(move |r| {
            let _ = &admitted;
            let b = r.map_err(|e| arrow_flight::error::FlightError::ExternalError(Box::new(e)))?;
            Ok(RecordBatch::try_new(
                Arc::clone(&announced),
                b.columns().to_vec(),
            )?)
        });
        let stream = FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .build(batches)
            .map_err(Status::from);
        Ok(Response::new(Box::pin(stream)))
    }

    /// A metadata command's `FlightInfo`, for a request whose tenant checks
    /// out: `schema`, one endpoint whose ticket is the command itself.
    fn metadata_info(
        &self,
        cmd: &impl ProstMessageExt,
        schema: &Schema,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.tenant(&request)?;
        Ok(Response::new(info_for(cmd, schema, request.into_inner())?))
    }

    /// A session of the request's tenant, for listing its schemas and tables.
    async fn session<T>(
        &self,
        request: &Request<T>,
    ) -> Result<datafusion::prelude::SessionContext, Status> {
        let tenant = self.tenant(request)?;
        self.state
            .query
            .session(&tenant)
            .await
            .map_err(|e| query_status(&e))
    }

    /// Plans `sql` to learn its result schema and parameters.
    async fn describe(
        &self,
        tenant: &TenantId,
        sql: &str,
    ) -> Result<(Arc<Schema>, Vec<Option<arrow::datatypes::DataType>>), Status> {
        let planned = self
            .state
            .query
            .plan(tenant, sql, "flight")
            .await
            .map_err(|e| query_status(&e))?;
        let params = planned.parameter_types().map_err(|e| query_status(&e))?;
        Ok((nullable(&planned.schema()), params))
    }
}

#[tonic::async_trait]
impl FlightSqlService for StrataFlightSql {
    type FlightService = StrataFlightSql;

    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<
        Response<Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>>,
        Status,
    > {
        let header = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        // Basic user:token becomes Bearer token; the check is the same as
        // for any request.
        let token = match header.split_once(' ') {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("basic") => {
                crate::auth::basic_password(rest).unwrap_or_default()
            }
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim().to_owned(),
            _ => String::new(),
        };
        let mut headers = request.metadata().clone().into_headers();
        if self.state.auth.enabled() {
            let value = format!("Bearer {token}");
            let value = axum::http::HeaderValue::from_str(&value)
                .map_err(|_| Status::unauthenticated("invalid token"))?;
            headers.insert(axum::http::header::AUTHORIZATION, value);
        }
        self.state
            .tenant_for(&headers, Role::Read, Shape::Json)
            .map_err(|e| status(&e))?;
        let output = stream::iter([Ok(HandshakeResponse {
            protocol_version: 0,
            payload: token.clone().into(),
        })]);
        let mut response: Response<Pin<Box<dyn Stream<Item = _> + Send>>> =
            Response::new(Box::pin(output));
        if !token.is_empty()
            && let Ok(v) = format!("Bearer {token}").parse()
        {
            response.metadata_mut().insert("authorization", v);
        }
        Ok(response)
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let tenant = self.tenant(&request)?;
        let (schema, _) = self.describe(&tenant, &query.query).await?;
        let ticket = TicketStatementQuery {
            statement_handle: Handle {
                sql: query.query,
                params: Bytes::new(),
            }
            .encode_to_vec()
            .into(),
        };
        Ok(Response::new(info_for(
            &ticket,
            &schema,
            request.into_inner(),
        )?))
    }

    async fn get_flight_info_prepared_statement(
        &self,
        cmd: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let tenant = self.tenant(&request)?;
        let handle = Handle::decode_from(&cmd.prepared_statement_handle)?;
        let (schema, _) = self.describe(&tenant, &handle.sql).await?;
        Ok(Response::new(info_for(
            &cmd,
            &schema,
            request.into_inner(),
        )?))
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let tenant = self.tenant(&request)?;
        let handle = Handle::decode_from(&ticket.statement_handle)?;
        self.execute(&tenant, &handle.sql, handle.parameters()?)
            .await
    }

    async fn do_get_prepared_statement(
        &self,
        cmd: CommandPreparedStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let tenant = self.tenant(&request)?;
        let handle = Handle::decode_from(&cmd.prepared_statement_handle)?;
        self.execute(&tenant, &handle.sql, handle.parameters()?)
            .await
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<arrow_flight::Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let tenant = self.tenant(&request)?;
        let (schema, params) = self.describe(&tenant, &query.query).await?;
        let param_schema = Schema::new(
            params
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    arrow::datatypes::Field::new(
                        format!("${}", i + 1),
                        t.clone().unwrap_or(arrow::datatypes::DataType::Utf8),
                        true,
                    )
                })
                .collect::<Vec<_>>(),
        );
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: Handle {
                sql: query.query,
                params: Bytes::new(),
            }
            .encode_to_vec()
            .into(),
            dataset_schema: schema_bytes(&schema)?,
            parameter_schema: schema_bytes(&param_schema)?,
        })
    }

    async fn do_put_prepared_statement_query(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        self.tenant(&request)?;
        let mut handle = Handle::decode_from(&query.prepared_statement_handle)?;
        let data: Vec<FlightData> = request
            .into_inner()
            .try_collect()
            .await
            .map_err(|e| bad(format!("parameters: {e}")))?;
        let batches = parameter_batches(&data)?;
        let mut ipc = Vec::new();
        if let Some(first) = batches.first() {
            let mut w = arrow::ipc::writer::StreamWriter::try_new(&mut ipc, &first.schema())
                .map_err(|e| bad(format!("parameters: {e}")))?;
            for b in &batches {
                w.write(b).map_err(|e| bad(format!("parameters: {e}")))?;
            }
            w.finish().map_err(|e| bad(format!("parameters: {e}")))?;
        }
        handle.params = ipc.into();
        // Checked now, so a bad binding fails at bind time.
        handle.parameters()?;
        Ok(DoPutPreparedStatementResult {
            prepared_statement_handle: Some(handle.encode_to_vec().into()),
        })
    }

    async fn do_action_close_prepared_statement(
        &self,
        _query: ActionClosePreparedStatementRequest,
        _request: Request<arrow_flight::Action>,
    ) -> Result<(), Status> {
        // Stateless handles: nothing to free.
        Ok(())
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        self.metadata_info(&query, &schema, request)
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        self.tenant(&request)?;
        let mut builder = query.into_builder();
        builder.append(CATALOG);
        let schema = builder.schema();
        Ok(Response::new(one_batch(schema, builder.build())))
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        self.metadata_info(&query, &schema, request)
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let ctx = self.session(&request).await?;
        let mut builder = query.into_builder();
        if let Some(catalog) = ctx.catalog(CATALOG) {
            for name in catalog.schema_names() {
                builder.append(CATALOG, name);
            }
        }
        let schema = builder.schema();
        Ok(Response::new(one_batch(schema, builder.build())))
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        self.metadata_info(&query, &schema, request)
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let ctx = self.session(&request).await?;
        let include_schema = query.include_schema;
        let mut builder = query.into_builder();
        if let Some(catalog) = ctx.catalog(CATALOG) {
            for schema_name in catalog.schema_names() {
                let Some(schema) = catalog.schema(&schema_name) else {
                    continue;
                };
                for table_name in schema.table_names() {
                    let Ok(Some(table)) = schema.table(&table_name).await else {
                        continue;
                    };
                    let kind = match table.table_type() {
                        datafusion::datasource::TableType::View => "VIEW",
                        _ => "TABLE",
                    };
                    let table_schema = if include_schema {
                        table.schema()
                    } else {
                        Arc::new(Schema::empty())
                    };
                    builder
                        .append(CATALOG, &schema_name, &table_name, kind, &table_schema)
                        .map_err(|e| Status::internal(e.to_string()))?;
                }
            }
        }
        let schema = builder.schema();
        Ok(Response::new(one_batch(schema, builder.build())))
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.metadata_info(&query, &table_types_batch()?.schema(), request)
    }

    async fn do_get_table_types(
        &self,
        _query: CommandGetTableTypes,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        self.tenant(&request)?;
        let batch = table_types_batch()?;
        Ok(Response::new(one_batch(batch.schema(), Ok(batch))))
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder(sql_info()?).schema();
        self.metadata_info(&query, &schema, request)
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        _request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let builder = query.into_builder(sql_info()?);
        let schema = builder.schema();
        Ok(Response::new(one_batch(schema, builder.build())))
    }

    async fn do_get_fallback(
        &self,
        _request: Request<Ticket>,
        message: Any,
    ) -> Result<Response<DoGetStream>, Status> {
        Err(Status::unimplemented(format!(
            "{} is not supported",
            message.type_url
        )))
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}

fn table_types_batch() -> Result<RecordBatch, Status> {
    let schema = Arc::new(Schema::new(vec![arrow::datatypes::Field::new(
        "table_type",
        arrow::datatypes::DataType::Utf8,
        false,
    )]));
    RecordBatch::try_new(
        schema,
        vec![Arc::new(arrow::array::StringArray::from(vec![
            "TABLE", "VIEW",
        ]))],
    )
    .map_err(|e| Status::internal(e.to_string()))
}

impl std::fmt::Debug for StrataFlightSql {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StrataFlightSql").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_string_row() -> Vec<u8> {
        let schema = Arc::new(Schema::new(vec![arrow::datatypes::Field::new(
            "a",
            arrow::datatypes::DataType::Utf8,
            true,
        )]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![Arc::new(arrow::array::StringArray::from(vec![Some("db")]))],
        )
        .unwrap();
        let mut ipc = Vec::new();
        let mut w = arrow::ipc::writer::StreamWriter::try_new(&mut ipc, &schema).unwrap();
        w.write(&batch).unwrap();
        w.finish().unwrap();
        drop(w);
        ipc
    }

    /// Finding 13: parameter bytes that make Arrow's IPC decoder panic
    /// are an INVALID_ARGUMENT, whatever byte is broken.
    #[test]
    fn malformed_parameters_are_invalid_arguments() {
        let ipc = one_string_row();
        let good = Handle {
            sql: String::new(),
            params: ipc.clone().into(),
        };
        assert_eq!(
            good.parameters().unwrap(),
            vec![ScalarValue::Utf8(Some("db".into()))]
        );
        let mut refused = 0;
        for i in 0..ipc.len() {
            for v in [0u8, 0xff, 0x7f, 0x80, 1, 8] {
                let mut m = ipc.clone();
                m[i] = v;
                let h = Handle {
                    sql: String::new(),
                    params: m.into(),
                };
                if let Err(e) = h.parameters() {
                    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e}");
                    refused += 1;
                }
            }
        }
        assert!(refused > 0);
        // The same bytes as FlightData from a DoPut.
        let mut m = ipc;
        m[28] = 0;
        let data = FlightData {
            data_header: m.into(),
            ..FlightData::default()
        };
        let e = parameter_batches(&[data]).unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e}");
    }
}
