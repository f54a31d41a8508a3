//! The analytics as SQL table functions, over the session's tenant:
//!
//! - `slo()`: every SLO of the tenant's specs, one row per label set.
//! - `capacity()`: every capacity spec's forecasts, ranked by urgency; or
//!   `capacity('<usage PromQL>', <limit number or '<PromQL>'> [, '<lookback>'
//!   [, 'linear' | 'seasonal']])` for one ad-hoc gauge.
//! - `neighbours()`: every noisy-neighbour spec's workloads, ranked; or
//!   `neighbours('<resource PromQL>', '<label>' [, '<window>' [, '<baseline>'
//!   [, <capacity>]]])`.
//!
//! Arguments are checked when the statement is planned (a bad one is a
//! plan error naming it); the evaluation runs when the table is scanned,
//! through the same PromQL engine and source as the HTTP API.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{
    Array, ArrayRef, BooleanArray, Float64Array, RecordBatch, StringArray,
    TimestampMillisecondArray, UInt64Array,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use async_trait::async_trait;
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{DataFusionError, ScalarValue, plan_err};
use datafusion::datasource::{MemTable, TableType};
use datafusion::error::Result;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;
use strata_analytics::capacity::{self, CapacitySpec, Model};
use strata_analytics::neighbours::{self, NeighbourSpec};
use strata_analytics::slo;
use strata_analytics::spec::{Entry, Limit, SpecFile};
use strata_query::{QueryEngine, SessionExtension};
use strata_query_lang::promql::{Engine, EngineConfig};
use strata_types::TenantId;

/// The analytics table functions in every tenant's SQL session, reading
/// the spec file (and the interval SLO rates are recorded at) if there is
/// one.
#[derive(Debug)]
pub struct AnalyticsTables {
    pub specs: Option<(PathBuf, Duration)>,
}

impl SessionExtension for AnalyticsTables {
    fn register(&self, engine: &QueryEngine, tenant: &TenantId, ctx: &SessionContext) {
        for (name, kind) in Kind::ALL {
            ctx.register_udtf(
                name,
                Arc::new(AnalyticsFunction {
                    engine: engine.clone(),
                    tenant: tenant.clone(),
                    specs: self.specs.clone(),
                    kind,
                }),
            );
        }
    }
}

/// An SLO's SQL, run as its tenant through this engine.
pub struct TenantSql {
    pub engine: QueryEngine,
    pub tenant: TenantId,
}

#[async_trait]
impl slo::SqlSource for TenantSql {
    async fn rows(
        &self,
        sql: &str,
    ) -> std::result::Result<Vec<(std::collections::BTreeMap<String, String>, f64)>, String> {
        let out = self
            .engine
            .sql(&self.tenant, sql)
            .await
            .map_err(|e| e.to_string())?;
        let schema = out.schema;
        let text: Vec<usize> = (0..schema.fields().len())
            .filter(|i| {
                matches!(
                    schema.field(*i).data_type(),
                    DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8
                )
            })
            .collect();
        let Some(value) = (0..schema.fields().len())
            .rev()
            .find(|i| schema.field(*i).data_type().is_numeric())
        else {
            return Err("the query has no numeric column to count".into());
        };
        let mut rows = Vec::new();
        for batch in &out.batches {
            let v = arrow::compute::cast(batch.column(value), &DataType::Float64)
                .map_err(|e| e.to_string())?;
            let v = v
                .as_any()
                .downcast_ref::<Float64Array>()
                .ok_or("the count column is not numeric")?;
            let texts: Vec<ArrayRef> = text
                .iter()
                .map(|i| arrow::compute::cast(batch.column(*i), &DataType::Utf8))
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| e.to_string())?;
            for r in 0..batch.num_rows() {
                if v.is_null(r) {
                    continue;
                }
                let mut labels = std::collections::BTreeMap::new();
                for (i, col) in text.iter().zip(&texts) {
                    if let Some(s) = col.as_any().downcast_ref::<StringArray>()
                        && !s.is_null(r)
                    {
                        labels.insert(schema.field(*i).name().clone(), s.value(r).to_owned());
                    }
                }
                rows.push((labels, v.value(r)));
            }
        }
        Ok(rows)
    }
}

#[derive(Debug, Clone)]
enum Ask {
    Slo,
    Capacity(Option<CapacitySpec>),
    Neighbours(Option<NeighbourSpec>),
}

/// One of the three table functions, bound to a tenant.
#[derive(Debug, Clone)]
pub(crate) struct AnalyticsFunction {
    pub engine: QueryEngine,
    pub tenant: TenantId,
    /// The spec file and the interval SLO rates are recorded at.
    pub specs: Option<(PathBuf, Duration)>,
    pub kind: Kind,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    Slo,
    Capacity,
    Neighbours,
}

impl Kind {
    pub(crate) const ALL: [(&'static str, Kind); 3] = [
        ("slo", Kind::Slo),
        ("capacity", Kind::Capacity),
        ("neighbours", Kind::Neighbours),
    ];
}

fn text(name: &str, i: usize, e: &Expr) -> Result<String> {
    match e {
        Expr::Literal(
            ScalarValue::Utf8(Some(s))
            | ScalarValue::Utf8View(Some(s))
            | ScalarValue::LargeUtf8(Some(s)),
            _,
        ) => Ok(s.clone()),
        _ => plan_err!("{name}: argument {} must be a string literal", i + 1),
    }
}

fn duration(name: &str, i: usize, e: &Expr) -> Result<Duration> {
    let s = text(name, i, e)?;
    humantime::parse_duration(&s)
        .or_else(|_| {
            strata_query_lang::promql::parse_duration_ms(&s)
                .map(|ms| Duration::from_millis(ms.max(0) as u64))
        })
        .or_else(|e| plan_err!("{name}: argument {} {s:?} is not a duration: {e}", i + 1))
}

fn limit(name: &str, i: usize, e: &Expr) -> Result<Limit> {
    match e {
        Expr::Literal(ScalarValue::Int64(Some(v)), _) => Ok(Limit::Number(*v as f64)),
        Expr::Literal(ScalarValue::Float64(Some(v)), _) => Ok(Limit::Number(*v)),
        Expr::Literal(ScalarValue::Decimal128(Some(v), _, scale), _) => {
            Ok(Limit::Number(*v as f64 / 10f64.powi(i32::from(*scale))))
        }
        _ => text(name, i, e).map(Limit::Query),
    }
}

impl AnalyticsFunction {
    fn ask(&self, args: &[Expr]) -> Result<Ask> {
        let plan = |e: strata_analytics::spec::SpecError| DataFusionError::Plan(e.to_string());
        match self.kind {
            Kind::Slo if args.is_empty() => Ok(Ask::Slo),
            Kind::Slo => plan_err!("slo() takes no arguments"),
            Kind::Capacity if args.is_empty() => Ok(Ask::Capacity(None)),
            Kind::Capacity if (2..=4).contains(&args.len()) => {
                let n = "capacity";
                let mut spec = CapacitySpec::ad_hoc(&text(n, 0, &args[0])?, limit(n, 1, &args[1])?);
                if let Some(e) = args.get(2) {
                    spec.lookback = duration(n, 2, e)?;
                }
                if let Some(e) = args.get(3) {
                    spec.model = match text(n, 3, e)?.as_str() {
                        "linear" => Model::Linear,
                        "seasonal" => Model::Seasonal,
                        m => return plan_err!("capacity: model {m:?} is not linear or seasonal"),
                    };
                }
                spec.check().map_err(plan)?;
                Ok(Ask::Capacity(Some(spec)))
            }
            Kind::Capacity => {
                plan_err!("capacity() takes no arguments, or (usage, limit [, lookback [, model]])")
            }
            Kind::Neighbours if args.is_empty() => Ok(Ask::Neighbours(None)),
            Kind::Neighbours if (2..=5).contains(&args.len()) => {
                let n = "neighbours";
                let mut spec =
                    NeighbourSpec::ad_hoc(&text(n, 0, &args[0])?, &text(n, 1, &args[1])?);
                if let Some(e) = args.get(2) {
                    spec.window = duration(n, 2, e)?;
                }
                if let Some(e) = args.get(3) {
                    spec.baseline = duration(n, 3, e)?;
                }
                if let Some(e) = args.get(4) {
                    spec.capacity = Some(limit(n, 4, e)?);
                }
                spec.check().map_err(plan)?;
                Ok(Ask::Neighbours(Some(spec)))
            }
            Kind::Neighbours => plan_err!(
                "neighbours() takes no arguments, or (resource, by [, window [, baseline [, capacity]]])"
            ),
        }
    }
}

impl TableFunctionImpl for AnalyticsFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let ask = self.ask(args.exprs())?;
        Ok(Arc::new(AnalyticsTable {
            f: self.clone(),
            ask,
        }))
    }
}

#[derive(Debug)]
struct AnalyticsTable {
    f: AnalyticsFunction,
    ask: Ask,
}

fn f64s(v: Vec<Option<f64>>) -> ArrayRef {
    Arc::new(Float64Array::from(v))
}

fn strs(v: Vec<Option<String>>) -> ArrayRef {
    Arc::new(StringArray::from(v))
}

fn times(v: Vec<Option<i64>>) -> ArrayRef {
    Arc::new(TimestampMillisecondArray::from(v).with_timezone("UTC"))
}

/// `{k="v", …}`, Prometheus' spelling of a label set.
fn label_text(labels: &std::collections::BTreeMap<String, String>) -> String {
    let parts: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={:?}", v)).collect();
    format!("{{{}}}", parts.join(", "))
}

impl AnalyticsTable {
    fn specs(&self) -> Result<SpecFile> {
        match &self.f.specs {
            None => Ok(SpecFile::default()),
            Some((p, _)) => {
                SpecFile::load(p).map_err(|e| DataFusionError::Execution(e.to_string()))
            }
        }
    }

    /// The ad hoc spec a call names, else the tenant's specs of that kind.
    fn chosen<T: Entry>(&self, ad_hoc: &Option<T>) -> Result<Vec<T>> {
        Ok(match ad_hoc {
            Some(s) => vec![s.clone()],
            None => self
                .specs()?
                .of::<T>(self.f.tenant.as_str())
                .cloned()
                .collect(),
        })
    }

    async fn batch(&self) -> Result<RecordBatch> {
        let engine = Engine::new(EngineConfig::default());
        let source = self
            .f
            .engine
            .promql_source(&self.f.tenant)
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let now = chrono::Utc::now().timestamp_millis();
        let exec = |e: strata_analytics::spec::EvalError| DataFusionError::Execution(e.to_string());
        let tenant = self.f.tenant.as_str();
        let schema = self.schema();
        let columns: Vec<ArrayRef> = match &self.ask {
            Ask::Slo => {
                let mut rows = Vec::new();
                let recorded = self.f.specs.as_ref().map(|(_, i)| *i);
                let sql = TenantSql {
                    engine: self.f.engine.clone(),
                    tenant: self.f.tenant.clone(),
                };
                for spec in self.specs()?.of::<slo::SloSpec>(tenant) {
                    rows.extend(
                        slo::evaluate(&engine, &source, spec, now, recorded, Some(&sql))
                            .await
                            .map_err(exec)?,
                    );
                }
                let burn =
                    |w: &str| f64s(rows.iter().map(|r| r.burn_rates.get(w).copied()).collect());
                vec![
                    strs(rows.iter().map(|r| Some(r.name.clone())).collect()),
                    strs(rows.iter().map(|r| r.business_process.clone()).collect()),
                    strs(rows.iter().map(|r| Some(label_text(&r.labels))).collect()),
                    f64s(rows.iter().map(|r| Some(r.objective)).collect()),
                    strs(rows.iter().map(|r| Some(r.window.clone())).collect()),
                    f64s(rows.iter().map(|r| r.sli).collect()),
                    f64s(rows.iter().map(|r| r.error_budget_remaining).collect()),
                    burn("1h"),
                    burn("6h"),
                    burn("1d"),
                    burn("3d"),
                    strs(
                        rows.iter()
                            .map(|r| {
                                let firing: Vec<String> = r
                                    .alerts
                                    .iter()
                                    .filter(|a| a.firing)
                                    .map(|a| format!("{}/{}", a.severity, a.long_window))
                                    .collect();
                                (!firing.is_empty()).then(|| firing.join(","))
                            })
                            .collect(),
                    ),
                ]
            }
            Ask::Capacity(ad_hoc) => {
                let specs = self.chosen(ad_hoc)?;
                let mut rows = Vec::new();
                for spec in &specs {
                    rows.extend(
                        capacity::evaluate(&engine, &source, spec, now, false)
                            .await
                            .map_err(exec)?,
                    );
                }
                capacity::rank(&mut rows);
                vec![
                    Arc::new(UInt64Array::from(
                        rows.iter().map(|r| r.rank as u64).collect::<Vec<_>>(),
                    )),
                    strs(rows.iter().map(|r| Some(r.name.clone())).collect()),
                    strs(rows.iter().map(|r| r.business_process.clone()).collect()),
                    strs(rows.iter().map(|r| Some(label_text(&r.labels))).collect()),
                    strs(
                        rows.iter()
                            .map(|r| {
                                serde_json::to_value(r.status)
                                    .ok()
                                    .and_then(|v| v.as_str().map(str::to_owned))
                            })
                            .collect(),
                    ),
                    f64s(rows.iter().map(|r| Some(r.current)).collect()),
                    f64s(rows.iter().map(|r| r.limit).collect()),
                    f64s(rows.iter().map(|r| r.utilisation).collect()),
                    f64s(rows.iter().map(|r| r.trend_per_day).collect()),
                    f64s(
                        rows.iter()
                            .map(|r| r.seconds_left.map(|s| s / 86_400.0))
                            .collect(),
                    ),
                    times(rows.iter().map(|r| r.exhaustion_ms).collect()),
                    times(rows.iter().map(|r| r.earliest_ms).collect()),
                    times(rows.iter().map(|r| r.latest_ms).collect()),
                ]
            }
            Ask::Neighbours(ad_hoc) => {
                let specs = self.chosen(ad_hoc)?;
                let mut rows = Vec::new();
                for spec in &specs {
                    let r = neighbours::evaluate(&engine, &source, spec, now, false)
                        .await
                        .map_err(exec)?;
                    rows.extend(r.workloads.iter().map(|w| (r.clone(), w.clone())));
                }
                vec![
                    strs(rows.iter().map(|(r, _)| Some(r.name.clone())).collect()),
                    strs(
                        rows.iter()
                            .map(|(r, _)| r.business_process.clone())
                            .collect(),
                    ),
                    strs(rows.iter().map(|(r, _)| Some(r.by.clone())).collect()),
                    strs(rows.iter().map(|(_, w)| Some(w.workload.clone())).collect()),
                    Arc::new(UInt64Array::from(
                        rows.iter().map(|(_, w)| w.rank as u64).collect::<Vec<_>>(),
                    )),
                    f64s(rows.iter().map(|(_, w)| Some(w.share)).collect()),
                    f64s(rows.iter().map(|(_, w)| Some(w.baseline_share)).collect()),
                    f64s(rows.iter().map(|(_, w)| Some(w.mean)).collect()),
                    f64s(rows.iter().map(|(_, w)| Some(w.baseline_mean)).collect()),
                    f64s(rows.iter().map(|(_, w)| w.ratio).collect()),
                    f64s(rows.iter().map(|(_, w)| w.z_score).collect()),
                    f64s(rows.iter().map(|(_, w)| Some(w.excess)).collect()),
                    f64s(rows.iter().map(|(_, w)| Some(w.blame)).collect()),
                    Arc::new(BooleanArray::from(
                        rows.iter().map(|(r, _)| r.contention).collect::<Vec<_>>(),
                    )),
                ]
            }
        };
        Ok(RecordBatch::try_new(schema, columns)?)
    }
}

#[async_trait]
impl TableProvider for AnalyticsTable {
    fn schema(&self) -> SchemaRef {
        let f = |name: &str| Field::new(name, DataType::Float64, true);
        let s = |name: &str, null: bool| Field::new(name, DataType::Utf8, null);
        let t = |name: &str| {
            Field::new(
                name,
                DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
                true,
            )
        };
        let u = |name: &str| Field::new(name, DataType::UInt64, false);
        Arc::new(Schema::new(match self.ask {
            Ask::Slo => vec![
                s("name", false),
                s("business_process", true),
                s("labels", false),
                f("objective"),
                s("window", false),
                f("sli"),
                f("error_budget_remaining"),
                f("burn_rate_1h"),
                f("burn_rate_6h"),
                f("burn_rate_1d"),
                f("burn_rate_3d"),
                s("firing", true),
            ],
            Ask::Capacity(_) => vec![
                u("rank"),
                s("name", false),
                s("business_process", true),
                s("labels", false),
                s("status", true),
                f("current"),
                f("limit"),
                f("utilisation"),
                f("trend_per_day"),
                f("days_left"),
                t("exhaustion"),
                t("earliest"),
                t("latest"),
            ],
            Ask::Neighbours(_) => vec![
                s("name", false),
                s("business_process", true),
                s("by", false),
                s("workload", false),
                u("rank"),
                f("share"),
                f("baseline_share"),
                f("mean"),
                f("baseline_mean"),
                f("ratio"),
                f("z_score"),
                f("excess"),
                f("blame"),
                Field::new("contention", DataType::Boolean, false),
            ],
        }))
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let batch = self.batch().await?;
        MemTable::try_new(batch.schema(), vec![vec![batch]])?
            .scan(state, projection, filters, limit)
            .await
    }
}
