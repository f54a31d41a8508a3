//! `date_trunc` with the UTC fast path for every spelling of UTC.
//!
//! Strata's timestamps are `Timestamp(µs, "UTC")`. DataFusion's
//! `date_trunc` truncates by arithmetic only for timestamps without a
//! zone; with one — even UTC — it converts every value through chrono-tz
//! (and builds a `Result` per row): the 7-day SQL aggregate of
//! `benches/sql_vs_duckdb.sh` spent a third of its cycles there. In UTC an
//! hour and a day are uniform, so this wrapper truncates `second` to `day`
//! by arithmetic when the zone is UTC, and hands everything else (weeks,
//! months, other zones, scalars) to DataFusion's own function.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, PrimitiveArray};
use arrow::datatypes::{
    ArrowTimestampType, DataType, FieldRef, TimeUnit, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::sort_properties::{ExprProperties, SortProperties};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature,
};

/// DataFusion's `date_trunc`, with UTC truncated by arithmetic.
#[derive(Debug, PartialEq, Eq, Hash)]
struct UtcDateTrunc {
    inner: ScalarUDF,
}

/// The function to register in place of DataFusion's `date_trunc`.
pub(crate) fn udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(UtcDateTrunc {
        inner: datafusion::functions::datetime::date_trunc()
            .as_ref()
            .clone(),
    })
}

/// Whether `tz` names UTC, as Arrow spells it (a zone name Arrow does not
/// parse is left to the inner function's error).
fn is_utc(tz: &str) -> bool {
    matches!(tz, "UTC" | "+00:00" | "Etc/UTC" | "GMT" | "Etc/GMT")
}

/// How many of `unit` one `granularity` holds, when it is uniform in UTC.
fn step(granularity: &str, unit: TimeUnit) -> Option<i64> {
    let nanos: i64 = match granularity.to_ascii_lowercase().as_str() {
        "microsecond" => 1_000,
        "millisecond" => 1_000_000,
        "second" => 1_000_000_000,
        "minute" => 60_000_000_000,
        "hour" => 3_600_000_000_000,
        "day" => 86_400_000_000_000,
        _ => return None,
    };
    let per_unit: i64 = match unit {
        TimeUnit::Second => 1_000_000_000,
        TimeUnit::Millisecond => 1_000_000,
        TimeUnit::Microsecond => 1_000,
        TimeUnit::Nanosecond => 1,
    };
    // A granularity finer than the unit leaves values as they are: the
    // inner function's answer; only whole multiples are done here.
    (nanos % per_unit == 0).then_some(nanos / per_unit)
}

fn truncate<T: ArrowTimestampType>(a: &ArrayRef, step: i64, tz: &Arc<str>) -> ArrayRef {
    let a: &PrimitiveArray<T> = a.as_primitive();
    let out: PrimitiveArray<T> = a.unary(|v| v - v.rem_euclid(step));
    Arc::new(out.with_timezone(Arc::clone(tz)))
}

impl ScalarUDFImpl for UtcDateTrunc {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.inner.return_field_from_args(args)
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn output_ordering(&self, input: &[ExprProperties]) -> Result<SortProperties> {
        self.inner.output_ordering(input)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if let [ColumnarValue::Scalar(g), ColumnarValue::Array(a)] = args.args.as_slice()
            && let ScalarValue::Utf8(Some(g))
            | ScalarValue::LargeUtf8(Some(g))
            | ScalarValue::Utf8View(Some(g)) = g
            && let DataType::Timestamp(unit, Some(tz)) = a.data_type()
            && is_utc(tz)
            && let Some(step) = step(g, *unit)
        {
            let out = match unit {
                TimeUnit::Second => truncate::<TimestampSecondType>(a, step, tz),
                TimeUnit::Millisecond => truncate::<TimestampMillisecondType>(a, step, tz),
                TimeUnit::Microsecond => truncate::<TimestampMicrosecondType>(a, step, tz),
                TimeUnit::Nanosecond => truncate::<TimestampNanosecondType>(a, step, tz),
            };
            return Ok(ColumnarValue::Array(out));
        }
        self.inner.invoke_with_args(args)
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::TimestampMicrosecondArray;
    use arrow::datatypes::Field;
    use datafusion::config::ConfigOptions;

    use super::*;

    fn call(f: &ScalarUDF, granularity: &str, a: ArrayRef) -> ArrayRef {
        let n = a.len();
        let arg_fields = vec![
            Arc::new(Field::new("g", DataType::Utf8, false)),
            Arc::new(Field::new("t", a.data_type().clone(), true)),
        ];
        let return_field = f
            .return_field_from_args(ReturnFieldArgs {
                arg_fields: &arg_fields,
                scalar_arguments: &[None, None],
            })
            .unwrap();
        let out = f
            .invoke_with_args(ScalarFunctionArgs {
                args: vec![
                    ColumnarValue::Scalar(ScalarValue::Utf8(Some(granularity.into()))),
                    ColumnarValue::Array(a),
                ],
                arg_fields,
                number_rows: n,
                return_field,
                config_options: Arc::new(ConfigOptions::default()),
            })
            .unwrap();
        out.into_array(n).unwrap()
    }

    /// The fast path answers what DataFusion's own function answers, for
    /// every granularity, UTC spelling and time unit, before and after
    /// 1970 and with nulls.
    #[test]
    fn agrees_with_datafusion() {
        let ours = udf();
        let theirs = datafusion::functions::datetime::date_trunc();
        let values = [
            Some(0),
            Some(1_764_720_123_456_789),
            Some(-1),
            Some(-86_400_000_001),
            None,
            Some(1_700_000_000_999_999),
            // 1900-01-01.
            Some(-2_208_988_800_000_000),
        ];
        for tz in ["UTC", "+00:00", "Etc/UTC", "Europe/Paris"] {
            let a: ArrayRef =
                Arc::new(TimestampMicrosecondArray::from(values.to_vec()).with_timezone(tz));
            for g in [
                "microsecond",
                "millisecond",
                "second",
                "minute",
                "HOUR",
                "day",
                "week",
                "month",
                "year",
            ] {
                assert_eq!(
                    call(&ours, g, Arc::clone(&a)).as_ref(),
                    call(&theirs, g, Arc::clone(&a)).as_ref(),
                    "{g} in {tz}"
                );
            }
            let s: ArrayRef = Arc::new(
                arrow::array::TimestampSecondArray::from(vec![Some(86_399), Some(-1), None])
                    .with_timezone(tz),
            );
            for g in ["millisecond", "second", "minute", "day"] {
                assert_eq!(
                    call(&ours, g, Arc::clone(&s)).as_ref(),
                    call(&theirs, g, Arc::clone(&s)).as_ref(),
                    "{g} in {tz} (seconds)"
                );
            }
        }
    }
}
