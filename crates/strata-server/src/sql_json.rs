//! Arrow results as `{"columns":[{"name","type"}],"rows":[[..],..]}`.
//!
//! Numbers stay JSON numbers; non-finite floats become the strings `"NaN"`,
//! `"+Inf"` and `"-Inf"` (JSON has no such numbers; this is Prometheus'
//! spelling); maps become objects, lists arrays, timestamps RFC 3339 strings.

use arrow::array::{
    Array, AsArray, BooleanArray, Float32Array, Float64Array, Int8Array, Int16Array, Int32Array,
    Int64Array, MapArray, UInt8Array, UInt16Array, UInt32Array, UInt64Array,
};
use arrow::datatypes::DataType;
use arrow::error::ArrowError;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use serde_json::{Map, Number, Value};

fn float(v: f64) -> Value {
    if v.is_nan() {
        Value::from("NaN")
    } else if v == f64::INFINITY {
        Value::from("+Inf")
    } else if v == f64::NEG_INFINITY {
        Value::from("-Inf")
    } else {
        Number::from_f64(v).map_or(Value::Null, Value::Number)
    }
}

macro_rules! prim {
    ($arr:expr, $ty:ty, $f:expr) => {{
        let a = $arr.as_any().downcast_ref::<$ty>();
        match a {
            Some(a) => (0..a.len())
                .map(|i| {
                    if a.is_null(i) {
                        Value::Null
                    } else {
                        $f(a.value(i))
                    }
                })
                .collect(),
            None => return Err(ArrowError::CastError("unexpected array type".into())),
        }
    }};
}

/// One JSON value per row of `arr`.
pub(crate) fn values(arr: &dyn Array) -> Result<Vec<Value>, ArrowError> {
    Ok(match arr.data_type() {
        DataType::Null => vec![Value::Null; arr.len()],
        DataType::Boolean => prim!(arr, BooleanArray, Value::from),
        DataType::Int8 => prim!(arr, Int8Array, Value::from),
        DataType::Int16 => prim!(arr, Int16Array, Value::from),
        DataType::Int32 => prim!(arr, Int32Array, Value::from),
        DataType::Int64 => prim!(arr, Int64Array, Value::from),
        DataType::UInt8 => prim!(arr, UInt8Array, Value::from),
        DataType::UInt16 => prim!(arr, UInt16Array, Value::from),
        DataType::UInt32 => prim!(arr, UInt32Array, Value::from),
        DataType::UInt64 => prim!(arr, UInt64Array, Value::from),
        DataType::Float32 => prim!(arr, Float32Array, |v: f32| float(f64::from(v))),
        DataType::Float64 => prim!(arr, Float64Array, float),
        DataType::Map(_, _) => {
            let Some(m) = arr.as_any().downcast_ref::<MapArray>() else {
                return Err(ArrowError::CastError("unexpected map array".into()));
            };
            let keys = strings(m.keys().as_ref())?;
            let vals = values(m.values().as_ref())?;
            let offsets = m.value_offsets();
            (0..m.len())
                .map(|i| {
                    if m.is_null(i) {
                        return Value::Null;
                    }
                    let (lo, hi) = (offsets[i] as usize, offsets[i + 1] as usize);
                    let obj: Map<String, Value> = (lo..hi)
                        .map(|j| (keys[j].clone(), vals[j].clone()))
                        .collect();
                    Value::Object(obj)
                })
                .collect()
        }
        DataType::List(_) | DataType::LargeList(_) => {
            let list = arr.as_list_opt::<i32>();
            match list {
                Some(l) => (0..l.len())
                    .map(|i| {
                        if l.is_null(i) {
                            Ok(Value::Null)
                        } else {
                            values(l.value(i).as_ref()).map(Value::Array)
                        }
                    })
                    .collect::<Result<_, _>>()?,
                None => formatted(arr)?,
            }
        }
        _ => formatted(arr)?,
    })
}

/// Keys of a map as strings (any type, displayed).
fn strings(arr: &dyn Array) -> Result<Vec<String>, ArrowError> {
    let f = ArrayFormatter::try_new(arr, &FormatOptions::default())?;
    Ok((0..arr.len()).map(|i| f.value(i).to_string()).collect())
}

/// Strings, timestamps, dates, decimals…: Arrow's display form.
fn formatted(arr: &dyn Array) -> Result<Vec<Value>, ArrowError> {
    let f = ArrayFormatter::try_new(arr, &FormatOptions::default())?;
    Ok((0..arr.len())
        .map(|i| {
            if arr.is_null(i) {
                Value::Null
            } else {
                Value::from(f.value(i).to_string())
            }
        })
        .collect())
}
