//! `pg_catalog`: the catalog Postgres clients read.
//!
//! psql's `\d` family, DBeaver's navigator and most drivers learn what a
//! database holds from Postgres' own catalog (`pg_class`, `pg_attribute`,
//! `pg_namespace`, …) and a handful of functions over it. This module
//! gives every session those tables, filled from the tenant's schemas
//! (`public`, `metrics`, `system`, `information_schema`, `pg_catalog`
//! itself), and the functions; [`rewrite`] turns the Postgres-only syntax
//! those clients send (`OPERATOR(pg_catalog.~)`, `COLLATE`,
//! `pg_catalog.`-qualified functions, `::regclass` and friends) into what
//! DataFusion plans.
//!
//! Object ids are derived from names (a hash), not allocated, so a client
//! that looks a table's oid up in one statement and its columns in the
//! next gets the same answer even though every statement has its own
//! session. Tables that describe things Strata doesn't have (indexes,
//! constraints, triggers, policies, …) exist and are empty.

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow::array::{ArrayRef, new_null_array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use datafusion::catalog::{MemTable, SchemaProvider, TableProvider};
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result};
use datafusion::prelude::SessionContext;

mod functions;
mod rewrite;
pub use rewrite::rewrite;

/// The Postgres version Strata answers as (`SHOW server_version`,
/// `version()`'s prefix, the startup parameter).
pub const SERVER_VERSION: &str = "15.0";

/// The settings clients ask for, as `SHOW`, `current_setting()` and
/// `pg_settings` report them.
pub const SETTINGS: &[(&str, &str)] = &[
    ("server_version", SERVER_VERSION),
    ("server_version_num", "150000"),
    ("server_encoding", "UTF8"),
    ("client_encoding", "UTF8"),
    ("standard_conforming_strings", "on"),
    ("transaction_isolation", "read committed"),
    ("default_transaction_read_only", "on"),
    ("datestyle", "ISO, MDY"),
    ("intervalstyle", "postgres"),
    ("timezone", "UTC"),
    ("search_path", "public"),
    ("integer_datetimes", "on"),
    ("max_identifier_length", "63"),
    ("lc_collate", "C"),
    ("lc_ctype", "C"),
];

/// A setting by the name `SHOW` takes (case-insensitive; the two-word
/// spellings `transaction isolation level` and `time zone` too).
pub fn setting(name: &str) -> Option<&'static str> {
    let name = name.trim().trim_matches('"').to_ascii_lowercase();
    let name = match name.as_str() {
        "transaction isolation level" => "transaction_isolation",
        "time zone" => "timezone",
        n => n,
    };
    SETTINGS.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

const OWNER_OID: i64 = 10;
const OWNER: &str = "strata";
const PG_CATALOG_OID: i64 = 11;
const PUBLIC_OID: i64 = 2200;
const INFORMATION_SCHEMA_OID: i64 = 13_000;
const DATABASE_OID: i64 = 16_384;

/// A schema's oid: Postgres' own for `pg_catalog` and `public`, else a
/// hash of the name.
pub fn namespace_oid(schema: &str) -> i64 {
    match schema {
        "pg_catalog" => PG_CATALOG_OID,
        "public" => PUBLIC_OID,
        "information_schema" => INFORMATION_SCHEMA_OID,
        _ => name_oid(&[schema]),
    }
}

/// A table's oid: a hash of its schema and name, above Postgres' range
/// for built-in objects (16384) and within its unsigned 32 bits.
pub fn table_oid(schema: &str, table: &str) -> i64 {
    name_oid(&[schema, table])
}

fn name_oid(parts: &[&str]) -> i64 {
    // FNV-1a: stable across builds and platforms, unlike std's hasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h ^= 0;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        for b in p.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    const LOW: u64 = 16_385;
    (LOW + h % (u64::from(u32::MAX) - LOW)) as i64
}

/// A Postgres type: its oid, `typname`, the name `format_type` prints
/// and its length (-1: variable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PgType {
    pub oid: u32,
    pub typname: &'static str,
    pub display: &'static str,
    pub len: i16,
    category: &'static str,
}

const fn ty(
    oid: u32,
    typname: &'static str,
    display: &'static str,
    len: i16,
    category: &'static str,
) -> PgType {
    PgType {
        oid,
        typname,
        display,
        len,
        category,
    }
}

pub const BOOL: PgType = ty(16, "bool", "boolean", 1, "B");
pub const BYTEA: PgType = ty(17, "bytea", "bytea", -1, "U");
pub const CHAR: PgType = ty(18, "char", "\"char\"", 1, "Z");
pub const NAME: PgType = ty(19, "name", "name", 64, "S");
pub const INT8: PgType = ty(20, "int8", "bigint", 8, "N");
pub const INT2: PgType = ty(21, "int2", "smallint", 2, "N");
pub const INT4: PgType = ty(23, "int4", "integer", 4, "N");
pub const TEXT: PgType = ty(25, "text", "text", -1, "S");
pub const OID: PgType = ty(26, "oid", "oid", 4, "N");
pub const FLOAT4: PgType = ty(700, "float4", "real", 4, "N");
pub const FLOAT8: PgType = ty(701, "float8", "double precision", 8, "N");
pub const TEXT_ARRAY: PgType = ty(1009, "_text", "text[]", -1, "A");
pub const VARCHAR: PgType = ty(1043, "varchar", "character varying", -1, "S");
pub const DATE: PgType = ty(1082, "date", "date", 4, "D");
pub const TIMESTAMP: PgType = ty(1114, "timestamp", "timestamp without time zone", 8, "D");
pub const TIMESTAMPTZ: PgType = ty(1184, "timestamptz", "timestamp with time zone", 8, "D");

const TYPES: &[PgType] = &[
    BOOL,
    BYTEA,
    CHAR,
    NAME,
    INT8,
    INT2,
    INT4,
    TEXT,
    OID,
    FLOAT4,
    FLOAT8,
    TEXT_ARRAY,
    VARCHAR,
    DATE,
    TIMESTAMP,
    TIMESTAMPTZ,
];

/// The Postgres type a column of `t` is sent as. Anything without a
/// Postgres counterpart (maps, structs, lists but text lists) is text.
pub fn pg_type_of(t: &DataType) -> PgType {
    match t {
        DataType::Boolean => BOOL,
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => INT2,
        DataType::Int32 | DataType::UInt16 => INT4,
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => INT8,
        DataType::Float32 => FLOAT4,
        DataType::Float16
        | DataType::Float64
        | DataType::Decimal32(..)
        | DataType::Decimal64(..)
        | DataType::Decimal128(..)
        | DataType::Decimal256(..) => FLOAT8,
        DataType::Timestamp(_, Some(_)) => TIMESTAMPTZ,
        DataType::Timestamp(_, None) => TIMESTAMP,
        DataType::Date32 | DataType::Date64 => DATE,
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => BYTEA,
        DataType::Dictionary(_, v) => pg_type_of(v),
        _ => TEXT,
    }
}

/// Registers `pg_catalog` and the catalog functions on a session whose
/// schemas are `schemas` (name, provider) in catalog `catalog`.
pub(crate) fn register(
    ctx: &SessionContext,
    catalog: &str,
    tenant: &str,
    schemas: Vec<(String, Arc<dyn SchemaProvider>)>,
) -> Result<()> {
    let visible: BTreeSet<i64> = schemas
        .iter()
        .filter(|(name, _)| name == "public")
        .flat_map(|(name, s)| {
            s.table_names()
                .into_iter()
                .map(move |t| table_oid(name, &t))
        })
        .chain(PG_TABLES.iter().map(|(t, _)| table_oid("pg_catalog", t)))
        .collect();
    let pg = Arc::new(PgCatalog {
        tenant: tenant.to_owned(),
        schemas,
    });
    let cat = ctx
        .catalog(catalog)
        .ok_or_else(|| DataFusionError::Internal(format!("no catalog {catalog}")))?;
    cat.register_schema("pg_catalog", pg)?;
    functions::register_functions(ctx, tenant, visible);
    Ok(())
}

/// The tables and their columns. Column types: `o` oid (bigint), `t`
/// text, `b` boolean, `s` smallint, `i` integer, `f` double, `l` text[].
pub(super) const PG_TABLES: &[(&str, &str)] = &[
    ("pg_namespace", "oid:o nspname:t nspowner:o nspacl:l"),
    (
        "pg_class",
        "oid:o relname:t relnamespace:o reltype:o reloftype:o relowner:o relam:o \
         relfilenode:o reltablespace:o relpages:i reltuples:f relallvisible:i \
         reltoastrelid:o relhasindex:b relisshared:b relpersistence:t relkind:t \
         relnatts:s relchecks:s relhasrules:b relhastriggers:b relhassubclass:b \
         relrowsecurity:b relforcerowsecurity:b relispopulated:b relreplident:t \
         relispartition:b relrewrite:o relfrozenxid:o relminmxid:o relacl:l \
         reloptions:l relpartbound:t",
    ),
    (
        "pg_attribute",
        "attrelid:o attname:t atttypid:o attstattarget:i attlen:s attnum:s \
         attndims:i attcacheoff:i atttypmod:i attbyval:b attalign:t attstorage:t \
         attcompression:t attnotnull:b atthasdef:b atthasmissing:b attidentity:t \
         attgenerated:t attisdropped:b attislocal:b attinhcount:i attcollation:o \
         attacl:l attoptions:l attfdwoptions:l attmissingval:t",
    ),
    (
        "pg_type",
        "oid:o typname:t typnamespace:o typowner:o typlen:s typbyval:b typtype:t \
         typcategory:t typispreferred:b typisdefined:b typdelim:t typrelid:o \
         typsubscript:t typelem:o typarray:o typinput:t typoutput:t typreceive:t \
         typsend:t typmodin:t typmodout:t typanalyze:t typalign:t typstorage:t \
         typnotnull:b typbasetype:o typtypmod:i typndims:i typcollation:o \
         typdefaultbin:t typdefault:t typacl:l",
    ),
    (
        "pg_database",
        "oid:o datname:t datdba:o encoding:i datlocprovider:t datistemplate:b \
         datallowconn:b datconnlimit:i datfrozenxid:o datminmxid:o dattablespace:o \
         datcollate:t datctype:t daticulocale:t datcollversion:t datacl:l",
    ),
    (
        "pg_tables",
        "schemaname:t tablename:t tableowner:t tablespace:t hasindexes:b hasrules:b \
         hastriggers:b rowsecurity:b",
    ),
    (
        "pg_views",
        "schemaname:t viewname:t viewowner:t definition:t",
    ),
    (
        "pg_roles",
        "rolname:t rolsuper:b rolinherit:b rolcreaterole:b rolcreatedb:b \
         rolcanlogin:b rolreplication:b rolconnlimit:i rolpassword:t \
         rolvaliduntil:t rolbypassrls:b rolconfig:l oid:o",
    ),
    (
        "pg_user",
        "usename:t usesysid:o usecreatedb:b usesuper:b userepl:b usebypassrls:b \
         passwd:t valuntil:t useconfig:l",
    ),
    (
        "pg_settings",
        "name:t setting:t unit:t category:t short_desc:t extra_desc:t context:t \
         vartype:t source:t min_val:t max_val:t enumvals:l boot_val:t reset_val:t \
         sourcefile:t sourceline:i pending_restart:b",
    ),
    (
        "pg_tablespace",
        "oid:o spcname:t spcowner:o spcacl:l spcoptions:l",
    ),
    ("pg_am", "oid:o amname:t amhandler:t amtype:t"),
    (
        "pg_description",
        "objoid:o classoid:o objsubid:i description:t",
    ),
    ("pg_shdescription", "objoid:o classoid:o description:t"),
    ("pg_attrdef", "oid:o adrelid:o adnum:s adbin:t"),
    (
        "pg_index",
        "indexrelid:o indrelid:o indnatts:s indnkeyatts:s indisunique:b \
         indnullsnotdistinct:b indisprimary:b indisexclusion:b indimmediate:b \
         indisclustered:b indisvalid:b indcheckxmin:b indisready:b indislive:b \
         indisreplident:b indkey:t indcollation:t indclass:t indoption:t \
         indexprs:t indpred:t",
    ),
    (
        "pg_constraint",
        "oid:o conname:t connamespace:o contype:t condeferrable:b condeferred:b \
         convalidated:b conrelid:o contypid:o conindid:o conparentid:o confrelid:o \
         confupdtype:t confdeltype:t confmatchtype:t conislocal:b coninhcount:i \
         connoinherit:b conkey:l confkey:l conbin:t",
    ),
    (
        "pg_inherits",
        "inhrelid:o inhparent:o inhseqno:i inhdetachpending:b",
    ),
    (
        "pg_trigger",
        "oid:o tgrelid:o tgparentid:o tgname:t tgfoid:o tgtype:s tgenabled:t \
         tgisinternal:b tgconstrrelid:o tgconstrindid:o tgconstraint:o",
    ),
    (
        "pg_rewrite",
        "oid:o rulename:t ev_class:o ev_type:t ev_enabled:t is_instead:b ev_qual:t ev_action:t",
    ),
    (
        "pg_policy",
        "oid:o polname:t polrelid:o polcmd:t polpermissive:b polroles:l polqual:t \
         polwithcheck:t",
    ),
    (
        "pg_statistic_ext",
        "oid:o stxrelid:o stxname:t stxnamespace:o stxowner:o stxstattarget:i \
         stxkeys:t stxkind:l stxexprs:t",
    ),
    (
        "pg_publication",
        "oid:o pubname:t pubowner:o puballtables:b pubinsert:b pubupdate:b \
         pubdelete:b pubtruncate:b pubviaroot:b",
    ),
    (
        "pg_publication_rel",
        "oid:o prpubid:o prrelid:o prqual:t prattrs:t",
    ),
    ("pg_publication_namespace", "oid:o pnpubid:o pnnspid:o"),
    (
        "pg_depend",
        "classid:o objid:o objsubid:i refclassid:o refobjid:o refobjsubid:i deptype:t",
    ),
    (
        "pg_collation",
        "oid:o collname:t collnamespace:o collowner:o collprovider:t \
         collisdeterministic:b collencoding:i collcollate:t collctype:t",
    ),
    (
        "pg_proc",
        "oid:o proname:t pronamespace:o proowner:o prolang:o procost:f prorows:f \
         provariadic:o prosupport:t prokind:t prosecdef:b proleakproof:b \
         proisstrict:b proretset:b provolatile:t proparallel:t pronargs:s \
         pronargdefaults:s prorettype:o proargtypes:t proallargtypes:l \
         proargmodes:l proargnames:l proargdefaults:t protrftypes:l prosrc:t \
         probin:t prosqlbody:t proconfig:l proacl:l",
    ),
    (
        "pg_extension",
        "oid:o extname:t extowner:o extnamespace:o extrelocatable:b extversion:t \
         extconfig:l extcondition:l",
    ),
    ("pg_foreign_table", "ftrelid:o ftserver:o ftoptions:l"),
    (
        "pg_partitioned_table",
        "partrelid:o partstrat:t partnatts:s partdefid:o partattrs:t partclass:t \
         partcollation:t partexprs:t",
    ),
    (
        "pg_event_trigger",
        "oid:o evtname:t evtevent:t evtowner:o evtfoid:o evtenabled:t evttags:l",
    ),
    ("pg_enum", "oid:o enumtypid:o enumsortorder:f enumlabel:t"),
    (
        "pg_range",
        "rngtypid:o rngsubtype:o rngmultitypid:o rngcollation:o rngsubopc:o rngcanonical:t rngsubdiff:t",
    ),
    (
        "pg_sequence",
        "seqrelid:o seqtypid:o seqstart:o seqincrement:o seqmax:o seqmin:o seqcache:o seqcycle:b",
    ),
    (
        "pg_matviews",
        "schemaname:t matviewname:t matviewowner:t tablespace:t hasindexes:b ispopulated:b definition:t",
    ),
];

fn column_type(code: &str) -> DataType {
    match code {
        "o" => DataType::Int64,
        "b" => DataType::Boolean,
        "s" => DataType::Int16,
        "i" => DataType::Int32,
        "f" => DataType::Float64,
        "l" => DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
        _ => DataType::Utf8,
    }
}

fn table_schema(columns: &str) -> SchemaRef {
    Arc::new(Schema::new(
        columns
            .split_whitespace()
            .map(|c| {
                let (name, code) = c.split_once(':').unwrap_or((c, "t"));
                Field::new(name, column_type(code), true)
            })
            .collect::<Vec<_>>(),
    ))
}

/// One cell. Columns left out of a row are NULL.
#[derive(Debug, Clone)]
enum V {
    O(i64),
    T(String),
    B(bool),
    I(i32),
}

fn t(s: impl Into<String>) -> V {
    V::T(s.into())
}

/// A table of `columns` from rows of (column, value) pairs.
fn build(columns: &str, rows: Vec<Vec<(&str, V)>>) -> Result<Arc<dyn TableProvider>> {
    let schema = table_schema(columns);
    let arrays: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|f| {
            let cells = rows.iter().map(|row| {
                row.iter()
                    .find(|(name, _)| *name == f.name())
                    .map(|(_, v)| v.clone())
            });
            let scalars: Vec<ScalarValue> = cells
                .map(|v| scalar(v, f.data_type()))
                .collect::<Result<_>>()?;
            if scalars.is_empty() {
                Ok(new_null_array(f.data_type(), 0))
            } else {
                ScalarValue::iter_to_array(scalars)
            }
        })
        .collect::<Result<_>>()?;
    let batch = RecordBatch::try_new(Arc::clone(&schema), arrays)?;
    Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
}

fn scalar(v: Option<V>, t: &DataType) -> Result<ScalarValue> {
    let v = match v {
        None => return ScalarValue::try_from(t),
        Some(v) => v,
    };
    let s = match v {
        V::O(n) => ScalarValue::Int64(Some(n)),
        V::T(s) => ScalarValue::Utf8(Some(s)),
        V::B(b) => ScalarValue::Boolean(Some(b)),
        V::I(n) => ScalarValue::Int32(Some(n)),
    };
    s.cast_to(t)
}

/// A table as `pg_class` and `pg_attribute` describe it.
struct Relation {
    schema: String,
    name: String,
    kind: &'static str,
    columns: Option<SchemaRef>,
}

#[derive(Debug)]
struct PgCatalog {
    tenant: String,
    schemas: Vec<(String, Arc<dyn SchemaProvider>)>,
}

impl PgCatalog {
    /// Every table of every schema, with its columns when `columns`.
    async fn relations(&self, columns: bool) -> Result<Vec<Relation>> {
        let mut out = Vec::new();
        for (schema, provider) in &self.schemas {
            let kind = if schema == "information_schema" {
                "v"
            } else {
                "r"
            };
            let mut names = provider.table_names();
            names.sort();
            for name in names {
                let cols = if columns {
                    provider.table(&name).await?.map(|t| t.schema())
                } else {
                    None
                };
                out.push(Relation {
                    schema: schema.clone(),
                    name,
                    kind,
                    columns: cols,
                });
            }
        }
        for (name, cols) in PG_TABLES {
            out.push(Relation {
                schema: "pg_catalog".into(),
                name: (*name).into(),
                kind: "r",
                columns: columns.then(|| table_schema(cols)),
            });
        }
        Ok(out)
    }

    fn namespaces(&self) -> Vec<String> {
        let mut names: Vec<String> = self.schemas.iter().map(|(n, _)| n.clone()).collect();
        names.push("pg_catalog".into());
        names
    }

    async fn rows(&self, table: &str) -> Result<Vec<Vec<(&'static str, V)>>> {
        Ok(match table {
            "pg_namespace" => self
                .namespaces()
                .into_iter()
                .map(|n| {
                    vec![
                        ("oid", V::O(namespace_oid(&n))),
                        ("nspname", t(n)),
                        ("nspowner", V::O(OWNER_OID)),
                    ]
                })
                .collect(),
            "pg_class" => self
                .relations(true)
                .await?
                .into_iter()
                .map(|r| {
                    let natts = r.columns.as_ref().map_or(0, |c| c.fields().len());
                    vec![
                        ("oid", V::O(table_oid(&r.schema, &r.name))),
                        ("relnamespace", V::O(namespace_oid(&r.schema))),
                        ("relname", t(r.name)),
                        ("reltype", V::O(0)),
                        ("reloftype", V::O(0)),
                        ("relowner", V::O(OWNER_OID)),
                        ("relam", V::O(0)),
                        ("relfilenode", V::O(0)),
                        ("reltablespace", V::O(0)),
                        ("relpages", V::I(0)),
                        ("reltuples", V::I(-1)),
                        ("relallvisible", V::I(0)),
                        ("reltoastrelid", V::O(0)),
                        ("relhasindex", V::B(false)),
                        ("relisshared", V::B(false)),
                        ("relpersistence", t("p")),
                        ("relkind", t(r.kind)),
                        ("relnatts", V::I(i32::try_from(natts).unwrap_or(i32::MAX))),
                        ("relchecks", V::I(0)),
                        ("relhasrules", V::B(false)),
                        ("relhastriggers", V::B(false)),
                        ("relhassubclass", V::B(false)),
                        ("relrowsecurity", V::B(false)),
                        ("relforcerowsecurity", V::B(false)),
                        ("relispopulated", V::B(true)),
                        ("relreplident", t("d")),
                        ("relispartition", V::B(false)),
                        ("relrewrite", V::O(0)),
                        ("relfrozenxid", V::O(0)),
                        ("relminmxid", V::O(0)),
                    ]
                })
                .collect(),
            "pg_attribute" => {
                let mut rows = Vec::new();
                for r in self.relations(true).await? {
                    let oid = table_oid(&r.schema, &r.name);
                    for (i, f) in r.columns.iter().flat_map(|c| c.fields().iter()).enumerate() {
                        let ty = pg_type_of(f.data_type());
                        rows.push(vec![
                            ("attrelid", V::O(oid)),
                            ("attname", t(f.name().as_str())),
                            ("atttypid", V::O(i64::from(ty.oid))),
                            ("attstattarget", V::I(-1)),
                            ("attlen", V::I(i32::from(ty.len))),
                            ("attnum", V::I(i32::try_from(i + 1).unwrap_or(i32::MAX))),
                            ("attndims", V::I(0)),
                            ("attcacheoff", V::I(-1)),
                            ("atttypmod", V::I(-1)),
                            ("attbyval", V::B(ty.len > 0 && ty.len <= 8)),
                            ("attalign", t(if ty.len == 8 { "d" } else { "i" })),
                            ("attstorage", t(if ty.len < 0 { "x" } else { "p" })),
                            ("attcompression", t("")),
                            ("attnotnull", V::B(!f.is_nullable())),
                            ("atthasdef", V::B(false)),
                            ("atthasmissing", V::B(false)),
                            ("attidentity", t("")),
                            ("attgenerated", t("")),
                            ("attisdropped", V::B(false)),
                            ("attislocal", V::B(true)),
                            ("attinhcount", V::I(0)),
                            (
                                "attcollation",
                                V::O(if ty.category == "S" { 100 } else { 0 }),
                            ),
                        ]);
                    }
                }
                rows
            }
            "pg_type" => TYPES
                .iter()
                .map(|ty| {
                    let array = TYPES
                        .iter()
                        .find(|a| a.typname == format!("_{}", ty.typname))
                        .map_or(0, |a| a.oid);
                    vec![
                        ("oid", V::O(i64::from(ty.oid))),
                        ("typname", t(ty.typname)),
                        ("typnamespace", V::O(PG_CATALOG_OID)),
                        ("typowner", V::O(OWNER_OID)),
                        ("typlen", V::I(i32::from(ty.len))),
                        ("typbyval", V::B(ty.len > 0 && ty.len <= 8)),
                        ("typtype", t("b")),
                        ("typcategory", t(ty.category)),
                        ("typispreferred", V::B(false)),
                        ("typisdefined", V::B(true)),
                        ("typdelim", t(",")),
                        ("typrelid", V::O(0)),
                        (
                            "typelem",
                            V::O(if ty.oid == TEXT_ARRAY.oid { 25 } else { 0 }),
                        ),
                        ("typarray", V::O(i64::from(array))),
                        ("typinput", t(format!("{}in", ty.typname))),
                        ("typoutput", t(format!("{}out", ty.typname))),
                        ("typalign", t(if ty.len == 8 { "d" } else { "i" })),
                        ("typstorage", t(if ty.len < 0 { "x" } else { "p" })),
                        ("typnotnull", V::B(false)),
                        ("typbasetype", V::O(0)),
                        ("typtypmod", V::I(-1)),
                        ("typndims", V::I(0)),
                        (
                            "typcollation",
                            V::O(if ty.category == "S" { 100 } else { 0 }),
                        ),
                    ]
                })
                .collect(),
            "pg_database" => vec![vec![
                ("oid", V::O(DATABASE_OID)),
                ("datname", t(self.tenant.as_str())),
                ("datdba", V::O(OWNER_OID)),
                ("encoding", V::I(6)),
                ("datlocprovider", t("c")),
                ("datistemplate", V::B(false)),
                ("datallowconn", V::B(true)),
                ("datconnlimit", V::I(-1)),
                ("dattablespace", V::O(1663)),
                ("datcollate", t("C")),
                ("datctype", t("C")),
            ]],
            "pg_tables" => self
                .relations(false)
                .await?
                .into_iter()
                .filter(|r| r.kind == "r")
                .map(|r| {
                    vec![
                        ("schemaname", t(r.schema)),
                        ("tablename", t(r.name)),
                        ("tableowner", t(OWNER)),
                        ("hasindexes", V::B(false)),
                        ("hasrules", V::B(false)),
                        ("hastriggers", V::B(false)),
                        ("rowsecurity", V::B(false)),
                    ]
                })
                .collect(),
            "pg_roles" => vec![vec![
                ("rolname", t(OWNER)),
                ("rolsuper", V::B(false)),
                ("rolinherit", V::B(true)),
                ("rolcreaterole", V::B(false)),
                ("rolcreatedb", V::B(false)),
                ("rolcanlogin", V::B(true)),
                ("rolreplication", V::B(false)),
                ("rolconnlimit", V::I(-1)),
                ("rolpassword", t("********")),
                ("rolbypassrls", V::B(false)),
                ("oid", V::O(OWNER_OID)),
            ]],
            "pg_user" => vec![vec![
                ("usename", t(OWNER)),
                ("usesysid", V::O(OWNER_OID)),
                ("usecreatedb", V::B(false)),
                ("usesuper", V::B(false)),
                ("userepl", V::B(false)),
                ("usebypassrls", V::B(false)),
                ("passwd", t("********")),
            ]],
            "pg_settings" => SETTINGS
                .iter()
                .map(|(name, value)| {
                    vec![
                        ("name", t(*name)),
                        ("setting", t(*value)),
                        ("context", t("internal")),
                        ("vartype", t("string")),
                        ("source", t("default")),
                        ("boot_val", t(*value)),
                        ("reset_val", t(*value)),
                        ("pending_restart", V::B(false)),
                    ]
                })
                .collect(),
            "pg_tablespace" => [(1663, "pg_default"), (1664, "pg_global")]
                .into_iter()
                .map(|(oid, name)| {
                    vec![
                        ("oid", V::O(oid)),
                        ("spcname", t(name)),
                        ("spcowner", V::O(OWNER_OID)),
                    ]
                })
                .collect(),
            "pg_am" => vec![vec![
                ("oid", V::O(2)),
                ("amname", t("heap")),
                ("amhandler", t("heap_tableam_handler")),
                ("amtype", t("t")),
            ]],
            _ => Vec::new(),
        })
    }
}

#[async_trait]
impl SchemaProvider for PgCatalog {
    fn table_names(&self) -> Vec<String> {
        PG_TABLES.iter().map(|(n, _)| (*n).to_owned()).collect()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let Some((_, columns)) = PG_TABLES.iter().find(|(n, _)| *n == name) else {
            return Ok(None);
        };
        let rows = self.rows(name).await?;
        build(columns, rows).map(Some)
    }

    fn table_exist(&self, name: &str) -> bool {
        PG_TABLES.iter().any(|(n, _)| *n == name)
    }
}

#[cfg(test)]
mod tests {
    use super::functions::regclass;
    use super::*;

    #[test]
    fn oids_are_stable_and_outside_postgres_builtin_range() {
        let a = table_oid("public", "up");
        assert_eq!(a, table_oid("public", "up"));
        assert_ne!(a, table_oid("metrics", "up"));
        assert_ne!(table_oid("a", "bc"), table_oid("ab", "c"));
        assert!((16_385..i64::from(u32::MAX)).contains(&a));
        assert_eq!(regclass("up"), a);
        assert_eq!(regclass("public.\"up\""), a);
        assert_eq!(regclass("pg_class"), table_oid("pg_catalog", "pg_class"));
    }

    #[test]
    fn settings_answer_by_either_spelling() {
        assert_eq!(setting("Server_Version"), Some(SERVER_VERSION));
        assert_eq!(
            setting("transaction isolation level"),
            Some("read committed")
        );
        assert_eq!(setting("nonsense"), None);
    }
}
