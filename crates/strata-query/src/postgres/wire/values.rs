//! Values between Arrow and the Postgres wire protocol: the Postgres type
//! of each column, `$n` parameters bound to the plan's types, and result
//! batches encoded as data rows (text or binary, per column).

use std::sync::Arc;

use crate::QueryStream;
use arrow::array::{
    Array, AsArray, BooleanArray, Float32Array, Float64Array, Int16Array, Int32Array, Int64Array,
    RecordBatch,
};
use arrow::datatypes::{DataType, Field, TimeUnit};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use datafusion::common::ScalarValue;
use futures::{Stream, StreamExt, stream};
use pgwire::api::Type;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::results::{DataRowEncoder, FieldInfo};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::data::DataRow;

use super::{Statement, query_error, user_error};

/// The portal's parameters as DataFusion values of the types the plan
/// expects. Text parameters are parsed as that type; binary ones decoded
/// by the type the client declared (or the plan's).
pub(super) fn bind(
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

/// The Postgres type a column is sent as (the one `pg_catalog` reports
/// for it).
pub(super) fn pg_type(t: &DataType) -> Type {
    Type::from_oid(crate::postgres::catalog::pg_type_of(t).oid).unwrap_or(Type::TEXT)
}

pub(super) fn field_infos(columns: &[Field], format: &Format) -> Vec<FieldInfo> {
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

/// Results as data rows, one batch encoded at a time.
pub(super) fn rows(
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
