//! Managing the analytics spec file through the API, per tenant:
//!
//! - `GET /api/v1/specs`: the asking tenant's `slo`, `capacity` and
//!   `neighbours` entries as written.
//! - `PUT /api/v1/specs/<kind>/<name>` (kind: `slo`, `capacity`,
//!   `neighbours`) with the entry's fields as a JSON object: creates (201)
//!   or replaces (200) it; the tenant is the caller's.
//! - `DELETE /api/v1/specs/<kind>/<name>`: removes it (404 if absent).
//!
//! Writing takes the admin role. The file is edited in place with its
//! comments and layout kept, checked whole as at start (a bad entry is a
//! 400 naming the problem and changes nothing), and replaced atomically
//! (written beside, synced, renamed), one edit at a time. The evaluation
//! loop and every request read the new file from then on.

use std::path::Path;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value as J, json};
use strata_analytics::spec::SpecFile;
use strata_types::{ErrorKind, TenantId};
use toml_edit::{Array, ArrayOfTables, DocumentMut, InlineTable, Item, Table, Value};

use crate::AppState;
use crate::error::{ApiError, Shape};
use crate::frontend::{Admin, Caller};

const SHAPE: Shape = Shape::Json;
const KINDS: [&str; 3] = ["slo", "capacity", "neighbours"];

/// One edit at a time: read, change, check, replace.
static EDIT: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorKind::BadInput, message, SHAPE)
}

fn file(state: &AppState) -> Result<&Path, ApiError> {
    state.config.slo.file.as_deref().ok_or_else(|| {
        ApiError::new(
            ErrorKind::Unavailable,
            "no analytics spec file is configured (--slo-file)",
            SHAPE,
        )
    })
}

fn read(path: &Path) -> Result<DocumentMut, ApiError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => {
            return Err(ApiError::new(
                ErrorKind::Internal,
                format!("cannot read {}: {e}", path.display()),
                SHAPE,
            ));
        }
    };
    text.parse::<DocumentMut>().map_err(|e| {
        ApiError::new(
            ErrorKind::Unavailable,
            format!("{} does not parse: {e}", path.display()),
            SHAPE,
        )
    })
}

fn tenant_of(t: &Table) -> &str {
    t.get("tenant").and_then(Item::as_str).unwrap_or("default")
}

fn name_of(t: &Table) -> &str {
    t.get("name").and_then(Item::as_str).unwrap_or_default()
}

/// A TOML value from a JSON one (objects become inline tables).
fn value(j: &J, field: &str) -> Result<Value, ApiError> {
    Ok(match j {
        J::String(s) => Value::from(s.as_str()),
        J::Bool(b) => Value::from(*b),
        J::Number(n) => match n.as_i64() {
            Some(i) => Value::from(i),
            None => Value::from(n.as_f64().unwrap_or(f64::NAN)),
        },
        J::Array(a) => {
            let mut out = Array::new();
            for v in a {
                out.push(value(v, field)?);
            }
            Value::Array(out)
        }
        J::Object(o) => {
            let mut out = InlineTable::new();
            for (k, v) in o {
                if !v.is_null() {
                    out.insert(k, value(v, field)?);
                }
            }
            Value::InlineTable(out)
        }
        J::Null => return Err(bad(format!("field {field:?} is null"))),
    })
}

/// A JSON value from a TOML item.
fn json_of(item: &Item) -> J {
    match item {
        Item::Value(v) => json_value(v),
        Item::Table(t) => J::Object(t.iter().map(|(k, v)| (k.to_owned(), json_of(v))).collect()),
        Item::ArrayOfTables(a) => J::Array(
            a.iter()
                .map(|t| J::Object(t.iter().map(|(k, v)| (k.to_owned(), json_of(v))).collect()))
                .collect(),
        ),
        Item::None => J::Null,
    }
}

fn json_value(v: &Value) -> J {
    match v {
        Value::String(s) => J::from(s.value().as_str()),
        Value::Integer(i) => J::from(*i.value()),
        Value::Float(f) => J::from(*f.value()),
        Value::Boolean(b) => J::from(*b.value()),
        Value::Datetime(d) => J::from(d.value().to_string()),
        Value::Array(a) => J::Array(a.iter().map(json_value).collect()),
        Value::InlineTable(t) => J::Object(
            t.iter()
                .map(|(k, v)| (k.to_owned(), json_value(v)))
                .collect(),
        ),
    }
}

/// Writes `text` beside `path`, syncs it and renames it over `path`.
fn replace(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Checks and writes `doc`; nothing changes if it is refused.
fn commit(path: &Path, doc: &DocumentMut) -> Result<(), ApiError> {
    let text = doc.to_string();
    SpecFile::parse(&text).map_err(|e| bad(e.to_string()))?;
    replace(path, &text).map_err(|e| {
        ApiError::new(
            ErrorKind::Internal,
            format!("cannot write {}: {e}", path.display()),
            SHAPE,
        )
    })
}

fn kind(k: &str) -> Result<&'static str, ApiError> {
    KINDS.iter().copied().find(|x| *x == k).ok_or_else(|| {
        ApiError::new(
            ErrorKind::NotFound,
            format!("no spec kind {k:?}: one of slo, capacity, neighbours"),
            SHAPE,
        )
    })
}

/// Removes `tenant`'s entry `name` from `doc[kind]`; whether there was one.
fn remove(doc: &mut DocumentMut, kind: &str, tenant: &TenantId, name: &str) -> bool {
    let Some(list) = doc.get_mut(kind).and_then(Item::as_array_of_tables_mut) else {
        return false;
    };
    let before = list.len();
    list.retain(|t| !(tenant_of(t) == tenant.as_str() && name_of(t) == name));
    before != list.len()
}

pub(super) async fn list(
    State(state): State<Arc<AppState>>,
    Caller { tenant, .. }: Caller,
) -> Response {
    async {
        let doc = match &state.config.slo.file {
            None => DocumentMut::new(),
            Some(p) => read(p)?,
        };
        let mut out = serde_json::Map::new();
        for k in KINDS {
            let mine: Vec<J> = doc
                .get(k)
                .and_then(Item::as_array_of_tables)
                .into_iter()
                .flat_map(ArrayOfTables::iter)
                .filter(|t| tenant_of(t) == tenant.as_str())
                .map(|t| json_of(&Item::Table(t.clone())))
                .collect();
            out.insert(k.to_owned(), J::Array(mine));
        }
        Ok::<_, ApiError>(Json(json!({"status": "success", "data": out})).into_response())
    }
    .await
    .unwrap_or_else(IntoResponse::into_response)
}

pub(super) async fn put(
    State(state): State<Arc<AppState>>,
    Caller { tenant, .. }: Caller<Admin>,
    UrlPath((k, name)): UrlPath<(String, String)>,
    body: Bytes,
) -> Response {
    async {
        let kind = kind(&k)?;
        let path = file(&state)?;
        let fields: J = serde_json::from_slice(&body)
            .map_err(|e| bad(format!("body is not JSON: {e}")))?;
        let J::Object(fields) = fields else {
            return Err(bad("body must be a JSON object of the entry's fields"));
        };
        let mut entry = Table::new();
        entry.insert("name", Item::Value(Value::from(name.as_str())));
        entry.insert("tenant", Item::Value(Value::from(tenant.as_str())));
        for (f, v) in &fields {
            match (f.as_str(), v) {
                ("name", J::String(n)) if *n == name => {}
                ("tenant", J::String(t)) if t == tenant.as_str() => {}
                ("name" | "tenant", _) => {
                    return Err(bad(format!(
                        "field {f:?} must match the path and the caller ({name}, tenant {tenant})"
                    )));
                }
                (_, J::Null) => {}
                _ => {
                    entry.insert(f, Item::Value(value(v, f)?));
                }
            }
        }
        let _one = EDIT.lock().await;
        let mut doc = read(path)?;
        let existed = remove(&mut doc, kind, &tenant, &name);
        let list = doc
            .entry(kind)
            .or_insert_with(|| Item::ArrayOfTables(ArrayOfTables::new()));
        let Some(list) = list.as_array_of_tables_mut() else {
            return Err(bad(format!("{kind} in the spec file is not a [[{kind}]] list")));
        };
        list.push(entry);
        commit(path, &doc)?;
        tracing::info!(%tenant, kind, name, replaced = existed, "analytics spec written");
        let code = if existed {
            StatusCode::OK
        } else {
            StatusCode::CREATED
        };
        Ok((
            code,
            Json(json!({"status": "success", "data": {"kind": kind, "name": name, "replaced": existed}})),
        )
            .into_response())
    }
    .await
    .unwrap_or_else(IntoResponse::into_response)
}

pub(super) async fn delete(
    State(state): State<Arc<AppState>>,
    Caller { tenant, .. }: Caller<Admin>,
    UrlPath((k, name)): UrlPath<(String, String)>,
) -> Response {
    async {
        let kind = kind(&k)?;
        let path = file(&state)?;
        let _one = EDIT.lock().await;
        let mut doc = read(path)?;
        if !remove(&mut doc, kind, &tenant, &name) {
            return Err(ApiError::new(
                ErrorKind::NotFound,
                format!("tenant {tenant} has no {kind} spec named {name:?}"),
                SHAPE,
            ));
        }
        commit(path, &doc)?;
        tracing::info!(%tenant, kind, name, "analytics spec deleted");
        Ok(
            Json(json!({"status": "success", "data": {"kind": kind, "name": name}}))
                .into_response(),
        )
    }
    .await
    .unwrap_or_else(IntoResponse::into_response)
}
