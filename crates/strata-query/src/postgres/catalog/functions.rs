//! The functions catalog queries call (`pg_table_is_visible`,
//! `format_type`, `pg_get_userbyid`, `current_setting`, `version()`, the
//! `::regclass` cast, ...).

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int64Array, StringArray, new_null_array,
};
use arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};
use datafusion::prelude::SessionContext;

use super::{OWNER, PG_TABLES, SERVER_VERSION, TYPES, setting, table_oid};

type CatalogFn = dyn Fn(&[ArrayRef], usize) -> Result<ArrayRef> + Send + Sync;

/// A catalog function: `f` maps the argument arrays (all of the batch's
/// length) to the result.
struct PgFunction {
    name: &'static str,
    signature: Signature,
    returns: DataType,
    f: Box<CatalogFn>,
}

impl std::fmt::Debug for PgFunction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgFunction")
            .field("name", &self.name)
            .finish()
    }
}

impl PartialEq for PgFunction {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for PgFunction {}

impl std::hash::Hash for PgFunction {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl ScalarUDFImpl for PgFunction {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(self.returns.clone())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let out = (self.f)(&arrays, rows)?;
        if args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)))
            && out.len() == 1
        {
            return Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?));
        }
        Ok(ColumnarValue::Array(out))
    }
}

fn function(
    name: &'static str,
    returns: DataType,
    f: impl Fn(&[ArrayRef], usize) -> Result<ArrayRef> + Send + Sync + 'static,
) -> ScalarUDF {
    ScalarUDF::new_from_impl(PgFunction {
        name,
        signature: Signature::one_of(
            vec![TypeSignature::Nullary, TypeSignature::VariadicAny],
            Volatility::Stable,
        ),
        returns,
        f: Box::new(f),
    })
}

/// A function answering `value` whatever its arguments.
fn constant(name: &'static str, value: ScalarValue) -> ScalarUDF {
    let returns = value.data_type();
    function(name, returns, move |_, rows| value.to_array_of_size(rows))
}

/// The first argument as oids (NULL where it isn't a number).
fn oids(args: &[ArrayRef]) -> Result<Int64Array> {
    let Some(a) = args.first() else {
        return Ok(Int64Array::from(Vec::<Option<i64>>::new()));
    };
    let cast = arrow::compute::cast(a, &DataType::Int64)?;
    Ok(cast.as_primitive::<arrow::datatypes::Int64Type>().clone())
}

pub(super) fn register_functions(ctx: &SessionContext, tenant: &str, visible: BTreeSet<i64>) {
    let text = |s: &str| ScalarValue::Utf8(Some(s.to_owned()));
    let null_text = ScalarValue::Utf8(None);
    for udf in [
        constant("pg_get_userbyid", text(OWNER)),
        constant("current_user", text(OWNER)),
        constant("session_user", text(OWNER)),
        constant("pg_encoding_to_char", text("UTF8")),
        constant("obj_description", null_text.clone()),
        constant("col_description", null_text.clone()),
        constant("shobj_description", null_text.clone()),
        constant("pg_get_expr", null_text.clone()),
        constant("pg_get_indexdef", null_text.clone()),
        constant("pg_get_constraintdef", null_text.clone()),
        constant("pg_get_viewdef", null_text.clone()),
        constant("pg_get_triggerdef", null_text.clone()),
        constant("pg_get_partkeydef", null_text.clone()),
        constant("pg_get_function_result", null_text.clone()),
        constant("pg_get_function_arguments", null_text.clone()),
        constant("pg_get_function_identity_arguments", null_text.clone()),
        constant("pg_get_ruledef", null_text.clone()),
        constant("pg_get_statisticsobjdef_columns", null_text.clone()),
        constant("pg_tablespace_location", text("")),
        constant("pg_type_is_visible", ScalarValue::Boolean(Some(true))),
        constant("pg_function_is_visible", ScalarValue::Boolean(Some(true))),
        constant("has_table_privilege", ScalarValue::Boolean(Some(true))),
        constant("has_schema_privilege", ScalarValue::Boolean(Some(true))),
        constant("has_database_privilege", ScalarValue::Boolean(Some(true))),
        constant("has_column_privilege", ScalarValue::Boolean(Some(true))),
        constant("pg_is_in_recovery", ScalarValue::Boolean(Some(false))),
        constant("pg_backend_pid", ScalarValue::Int32(Some(1))),
        constant("txid_current", ScalarValue::Int64(Some(1))),
        constant("pg_postmaster_start_time", null_text.clone()),
        constant("current_catalog", text(tenant)),
        constant(
            "version",
            text(&format!(
                "PostgreSQL {SERVER_VERSION} (Strata {})",
                env!("CARGO_PKG_VERSION")
            )),
        ),
        function(
            "pg_table_is_visible",
            DataType::Boolean,
            move |args, rows| {
                let oids = oids(args)?;
                let out: BooleanArray = if oids.is_empty() && rows > 0 {
                    vec![None; rows].into()
                } else {
                    oids.iter()
                        .map(|o| o.map(|o| visible.contains(&o)))
                        .collect()
                };
                Ok(Arc::new(out))
            },
        ),
        function("format_type", DataType::Utf8, |args, _| {
            let out: StringArray = oids(args)?
                .iter()
                .map(|o| {
                    o.map(|o| {
                        TYPES
                            .iter()
                            .find(|t| i64::from(t.oid) == o)
                            .map_or_else(|| "???".to_owned(), |t| t.display.to_owned())
                    })
                })
                .collect();
            Ok(Arc::new(out))
        }),
        function("current_setting", DataType::Utf8, |args, rows| {
            let Some(a) = args.first() else {
                return Ok(new_null_array(&DataType::Utf8, rows));
            };
            let names = arrow::compute::cast(a, &DataType::Utf8)?;
            let out: StringArray = names
                .as_string::<i32>()
                .iter()
                .map(|n| n.and_then(setting))
                .collect();
            Ok(Arc::new(out))
        }),
        // `'name'::regclass`: a table's oid from its (optionally
        // schema-qualified) name; oids pass through.
        function("strata_regclass", DataType::Int64, |args, rows| {
            let Some(a) = args.first() else {
                return Ok(new_null_array(&DataType::Int64, rows));
            };
            if a.data_type().is_integer() {
                return Ok(arrow::compute::cast(a, &DataType::Int64)?);
            }
            let names = arrow::compute::cast(a, &DataType::Utf8)?;
            let out: Int64Array = names
                .as_string::<i32>()
                .iter()
                .map(|n| n.map(regclass))
                .collect();
            Ok(Arc::new(out))
        }),
    ] {
        ctx.register_udf(udf);
    }
}

/// The oid of the table `name` names: `schema.table`, or a bare name in
/// `pg_catalog` (searched first, as Postgres does) or `public`.
pub(super) fn regclass(name: &str) -> i64 {
    let unquote = |s: &str| s.trim().trim_matches('"').to_owned();
    match name.split_once('.') {
        Some((schema, table)) => table_oid(&unquote(schema), &unquote(table)),
        None => {
            let table = unquote(name);
            let schema = if PG_TABLES.iter().any(|(n, _)| *n == table) {
                "pg_catalog"
            } else {
                "public"
            };
            table_oid(schema, &table)
        }
    }
}
