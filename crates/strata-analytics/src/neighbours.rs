//! Noisy neighbours: who is loading a shared resource, against their own
//! normal, and who drives contention when it saturates.
//!
//! ```toml
//! [[neighbours]]
//! name = "cluster-cpu"
//! tenant = "acme"
//! resource = 'rate(container_cpu_usage_seconds_total[5m])'
//! by = "namespace"            # the tenant/workload label
//! window = "1h"               # "now" (default 1h)
//! baseline = "7d"             # each workload's normal: the period before the window (default 7d)
//! capacity = 64               # optional: the shared resource's size (number or PromQL)
//! saturation = 0.9            # share of capacity that counts as saturated (default 0.9)
//! ```
//!
//! The resource is summed by the workload label and read at a fixed
//! resolution over baseline + window. For each workload: its share of the
//! total over the window and over the baseline, its mean over both, the
//! ratio and z-score of the window mean against its baseline (how far
//! from its own normal it is). Contention steps are the window's steps
//! where the total is at or over `saturation × capacity` — or, with no
//! capacity, over the baseline's 95th percentile of the total (busier than
//! the resource ever normally is). A workload's **excess** is its mean
//! over the contention steps (all the window's steps if there are none)
//! minus its baseline mean; its **blame** is its share of the positive
//! excess — who added the load the others now contend with. Workloads are
//! ranked by blame, then by share.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use strata_query_lang::promql::{Engine, Source, Value};

use crate::common::{
    EvalError, Limit, SpecError, check_query, default_tenant, humantime_serde, step_for,
    window_text,
};

/// One noisy-neighbour spec as written in the file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NeighbourSpec {
    pub name: String,
    #[serde(default = "default_tenant")]
    pub tenant: String,
    #[serde(default)]
    pub business_process: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// PromQL: the resource use, by series carrying the `by` label.
    pub resource: String,
    /// The tenant/workload label.
    pub by: String,
    #[serde(default = "default_window", with = "humantime_serde")]
    pub window: Duration,
    #[serde(default = "default_baseline", with = "humantime_serde")]
    pub baseline: Duration,
    #[serde(default)]
    pub capacity: Option<Limit>,
    #[serde(default = "default_saturation")]
    pub saturation: f64,
}

fn default_window() -> Duration {
    Duration::from_secs(3_600)
}

fn default_baseline() -> Duration {
    Duration::from_secs(7 * 86_400)
}

fn default_saturation() -> f64 {
    0.9
}

impl NeighbourSpec {
    /// An ad-hoc spec (API and SQL callers).
    pub fn ad_hoc(resource: &str, by: &str) -> Self {
        NeighbourSpec {
            name: "ad-hoc".into(),
            tenant: default_tenant(),
            business_process: None,
            description: None,
            resource: resource.into(),
            by: by.into(),
            window: default_window(),
            baseline: default_baseline(),
            capacity: None,
            saturation: default_saturation(),
        }
    }

    /// The query read: the resource summed by the workload label.
    pub fn query(&self) -> String {
        format!("sum by ({}) ({})", self.by, self.resource)
    }

    pub fn check(&self) -> Result<(), SpecError> {
        let bad = |reason: String| SpecError::invalid("neighbours", &self.name, reason);
        let mut chars = self.by.chars();
        let legal = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !legal {
            return Err(bad(format!("by = {:?} is not a label name", self.by)));
        }
        check_query("neighbours", &self.name, &self.resource)?;
        check_query("neighbours", &self.name, &self.query())?;
        if let Some(c) = &self.capacity {
            c.check("neighbours", &self.name)?;
        }
        if !(self.saturation > 0.0 && self.saturation <= 1.0) {
            return Err(bad(format!(
                "saturation {} must be a share in (0, 1]",
                self.saturation
            )));
        }
        let step = step_for(self.window + self.baseline);
        if self.window < step * 2 {
            return Err(bad(format!(
                "window {} is shorter than two steps ({} each at this baseline)",
                window_text(self.window),
                window_text(step)
            )));
        }
        if self.baseline < self.window {
            return Err(bad(format!(
                "baseline {} is shorter than the window {}",
                window_text(self.baseline),
                window_text(self.window)
            )));
        }
        Ok(())
    }
}

/// One workload's standing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Workload {
    /// The value of the `by` label.
    pub workload: String,
    /// 1 = drives contention most.
    pub rank: usize,
    /// Its share of the total over the window, and over the baseline.
    pub share: f64,
    pub baseline_share: f64,
    /// Its mean over the window and over the baseline.
    pub mean: f64,
    pub baseline_mean: f64,
    /// `mean / baseline_mean` (none for a workload new in the window).
    pub ratio: Option<f64>,
    /// `(mean - baseline_mean) / baseline standard deviation`.
    pub z_score: Option<f64>,
    /// Mean over the contention steps minus its baseline mean.
    pub excess: f64,
    /// Its share of all workloads' positive excess.
    pub blame: f64,
    /// Its share of the total at each step of the window (when asked).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub share_series: Vec<(i64, f64)>,
}

/// A resource's neighbours at one instant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub name: String,
    pub business_process: Option<String>,
    pub by: String,
    pub window: String,
    pub baseline: String,
    /// The total's mean over the window.
    pub total: f64,
    pub capacity: Option<f64>,
    /// The total's mean over the window / capacity.
    pub utilisation: Option<f64>,
    /// Whether any step of the window saturated the resource.
    pub contention: bool,
    pub contention_steps: usize,
    pub window_steps: usize,
    pub workloads: Vec<Workload>,
    /// The window's steps that saturated the resource (Unix ms; when
    /// share series are asked for).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub contention_series: Vec<i64>,
}

/// Step-aligned values: workload → (step index → value).
type Grid = BTreeMap<String, BTreeMap<i64, f64>>;

fn mean_std(v: &[f64]) -> (f64, f64) {
    if v.is_empty() {
        return (0.0, 0.0);
    }
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / n;
    (m, var.sqrt())
}

fn percentile(mut v: Vec<f64>, p: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let i = ((v.len() - 1) as f64 * p).round() as usize;
    v.get(i).copied()
}

/// Analyses step-aligned workload values. `steps` are the grid's instants
/// (Unix ms, ascending); those after `window_start_ms` form the window.
pub fn analyse(
    spec: &NeighbourSpec,
    grid: &Grid,
    steps: &[i64],
    window_start_ms: i64,
    capacity: Option<f64>,
    with_series: bool,
) -> Report {
    let value = |w: &str, t: i64| grid.get(w).and_then(|m| m.get(&t)).copied().unwrap_or(0.0);
    let total: BTreeMap<i64, f64> = steps
        .iter()
        .map(|t| (*t, grid.keys().map(|w| value(w, *t)).sum()))
        .collect();
    let (base_steps, win_steps): (Vec<i64>, Vec<i64>) =
        steps.iter().partition(|t| **t <= window_start_ms);
    let totals = |s: &[i64]| s.iter().map(|t| total[t]).collect::<Vec<f64>>();
    let threshold = match capacity {
        Some(c) => Some(c * spec.saturation),
        None => percentile(totals(&base_steps), 0.95),
    };
    let contention: Vec<i64> = win_steps
        .iter()
        .copied()
        .filter(|t| threshold.is_some_and(|th| total[t] >= th && total[t] > 0.0))
        .collect();
    let focus = if contention.is_empty() {
        &win_steps
    } else {
        &contention
    };
    let sum_over = |s: &[i64]| s.iter().map(|t| total[t]).sum::<f64>();
    let (win_total, base_total) = (sum_over(&win_steps), sum_over(&base_steps));
    let mut workloads: Vec<Workload> = grid
        .keys()
        .map(|w| {
            let vals = |s: &[i64]| s.iter().map(|t| value(w, *t)).collect::<Vec<f64>>();
            let (win, base) = (vals(&win_steps), vals(&base_steps));
            let (mean, _) = mean_std(&win);
            let (baseline_mean, baseline_std) = mean_std(&base);
            let share_of = |v: &[f64], tot: f64| {
                if tot > 0.0 {
                    v.iter().sum::<f64>() / tot
                } else {
                    0.0
                }
            };
            let (focus_mean, _) = mean_std(&vals(focus));
            Workload {
                workload: w.clone(),
                rank: 0,
                share: share_of(&win, win_total),
                baseline_share: share_of(&base, base_total),
                mean,
                baseline_mean,
                ratio: (baseline_mean > 0.0).then(|| mean / baseline_mean),
                z_score: (baseline_std > 0.0).then(|| (mean - baseline_mean) / baseline_std),
                excess: focus_mean - baseline_mean,
                blame: 0.0,
                share_series: if with_series {
                    win_steps
                        .iter()
                        .filter(|t| total[*t] > 0.0)
                        .map(|t| (*t, value(w, *t) / total[t]))
                        .collect()
                } else {
                    Vec::new()
                },
            }
        })
        .collect();
    let positive: f64 = workloads.iter().map(|w| w.excess.max(0.0)).sum();
    if positive > 0.0 {
        for w in &mut workloads {
            w.blame = w.excess.max(0.0) / positive;
        }
    }
    workloads.sort_by(|a, b| {
        b.blame
            .total_cmp(&a.blame)
            .then(b.share.total_cmp(&a.share))
            .then(a.workload.cmp(&b.workload))
    });
    for (i, w) in workloads.iter_mut().enumerate() {
        w.rank = i + 1;
    }
    let total_mean = mean_std(&totals(&win_steps)).0;
    Report {
        name: spec.name.clone(),
        business_process: spec.business_process.clone(),
        by: spec.by.clone(),
        window: window_text(spec.window),
        baseline: window_text(spec.baseline),
        total: total_mean,
        capacity,
        utilisation: capacity.filter(|c| *c > 0.0).map(|c| total_mean / c),
        contention: !contention.is_empty(),
        contention_steps: contention.len(),
        contention_series: if with_series {
            contention.clone()
        } else {
            Vec::new()
        },
        window_steps: win_steps.len(),
        workloads,
    }
}

/// Evaluates `spec` at `now_ms`.
pub async fn evaluate(
    engine: &Engine,
    source: &dyn Source,
    spec: &NeighbourSpec,
    now_ms: i64,
    with_series: bool,
) -> Result<Report, EvalError> {
    let err = |e: String| EvalError::new("neighbours", &spec.name, e);
    let step = step_for(spec.window + spec.baseline).as_millis() as i64;
    // Steps aligned to the step, ending at the last whole step.
    let end = now_ms - now_ms.rem_euclid(step);
    let start = end - (spec.window + spec.baseline).as_millis() as i64;
    let window_start = end - spec.window.as_millis() as i64;
    let out = engine
        .range(source, &spec.query(), start, end, step)
        .await
        .map_err(|e| err(format!("resource: {e}")))?;
    let Value::Matrix(series) = out.value else {
        return Err(err("resource must be an instant vector query".into()));
    };
    let mut grid = Grid::new();
    for s in series {
        let w = s.labels.value(&spec.by).to_owned();
        let row = grid.entry(w).or_default();
        for (t, v) in s.points {
            if v.is_finite() {
                *row.entry(t).or_default() += v;
            }
        }
    }
    let steps: Vec<i64> = (0..)
        .map(|i| start + i * step)
        .take_while(|t| *t <= end)
        .collect();
    let capacity = match &spec.capacity {
        None => None,
        Some(Limit::Number(v)) => Some(*v),
        Some(Limit::Query(q)) => {
            match engine
                .instant(source, q, now_ms)
                .await
                .map_err(|e| err(format!("capacity: {e}")))?
                .value
            {
                Value::Scalar { v, .. } => Some(v),
                Value::Vector(v) if !v.is_empty() => Some(v.iter().map(|s| s.v).sum()),
                Value::Vector(_) => None,
                _ => return Err(err("capacity must be a number or a query".into())),
            }
        }
    };
    Ok(analyse(
        spec,
        &grid,
        &steps,
        window_start,
        capacity,
        with_series,
    ))
}

#[cfg(test)]
mod tests {
    use strata_query_lang::promql::{EngineConfig, Labels, MemorySource};

    use super::*;
    use crate::spec::SpecFile;
    use crate::testing::noise;

    const MIN: i64 = 60_000;
    const NOW: i64 = 1_800_057_600_000;

    /// CPU seconds counters of four namespaces over two days, one sample a
    /// minute: each uses `normal` cores; `noisy` uses `burst` cores over
    /// the last `burst_min` minutes.
    fn cluster(normal: [f64; 4], burst: f64, burst_min: i64) -> MemorySource {
        let mut src = MemorySource::new();
        let names = ["odoo", "postgres", "redis", "reports"];
        for (k, ns) in names.iter().enumerate() {
            let labels = Labels::new(vec![
                (
                    "__name__".into(),
                    "container_cpu_usage_seconds_total".into(),
                ),
                ("namespace".into(), (*ns).into()),
                ("pod".into(), format!("{ns}-0")),
            ]);
            let mut c = 0.0;
            let mut t = NOW - 2 * 1_440 * MIN;
            let mut i = 0;
            while t <= NOW {
                let cores = if *ns == "reports" && t > NOW - burst_min * MIN {
                    burst
                } else {
                    normal[k] * (1.0 + 0.1 * noise(i * 4 + k as i64))
                };
                c += cores * 60.0;
                src.add(&labels, t, c);
                t += MIN;
                i += 1;
            }
        }
        src
    }

    fn spec(extra: &str) -> NeighbourSpec {
        SpecFile::parse(&format!(
            "[[neighbours]]\nname = \"cpu\"\nresource = 'rate(container_cpu_usage_seconds_total[5m])'\nby = \"namespace\"\nbaseline = \"1d\"\n{extra}"
        ))
        .unwrap()
        .neighbours
        .remove(0)
    }

    #[tokio::test]
    async fn the_tenant_that_bursts_is_blamed_for_the_saturation() {
        // A 16-core node: 3 + 4 + 1 + 2 = 10 cores normally; `reports`
        // jumps to 8 for the last 40 minutes → 16 cores, saturated.
        let src = cluster([3.0, 4.0, 1.0, 2.0], 8.0, 40);
        let s = spec("capacity = 16");
        let r = evaluate(&Engine::new(EngineConfig::default()), &src, &s, NOW, true)
            .await
            .unwrap();
        assert!(r.contention, "{r:?}");
        // The burst saturates ~36 of the window's 60 minutes, once the 5m
        // rate has caught up.
        let saturated = r.contention_steps as f64 / r.window_steps as f64;
        assert!((0.5..0.68).contains(&saturated), "{saturated}: {r:?}");
        // The saturated steps, for a chart to shade: the window's last.
        assert_eq!(r.contention_series.len(), r.contention_steps);
        assert!(r.contention_series.windows(2).all(|w| w[0] < w[1]));
        assert!(*r.contention_series.last().unwrap() > NOW - 60_000 * 5);
        let top = &r.workloads[0];
        assert_eq!((top.workload.as_str(), top.rank), ("reports", 1));
        assert!(top.blame > 0.9, "{top:?}");
        assert!((top.excess - 6.0).abs() < 0.5, "{top:?}");
        assert!((top.baseline_share - 0.2).abs() < 0.02, "{top:?}");
        assert!(top.ratio.unwrap() > 2.5, "{top:?}");
        assert!(top.z_score.unwrap() > 10.0, "{top:?}");
        assert!(!top.share_series.is_empty());
        let last = top.share_series.last().unwrap().1;
        assert!((last - 0.5).abs() < 0.03, "8 of 16 cores: {last}");
        for w in &r.workloads[1..] {
            assert!(w.blame < 0.05 && w.ratio.unwrap() < 1.1, "{w:?}");
        }
    }

    #[tokio::test]
    async fn without_a_capacity_the_baseline_peak_marks_contention() {
        let src = cluster([3.0, 4.0, 1.0, 2.0], 8.0, 40);
        let r = evaluate(
            &Engine::new(EngineConfig::default()),
            &src,
            &spec(""),
            NOW,
            false,
        )
        .await
        .unwrap();
        assert!(r.contention && r.capacity.is_none(), "{r:?}");
        assert_eq!(r.workloads[0].workload, "reports");
        // A quiet day: nothing over the baseline's 95th percentile for
        // long, no one stands out.
        let quiet = cluster([3.0, 4.0, 1.0, 2.0], 2.0, 0);
        let r = evaluate(
            &Engine::new(EngineConfig::default()),
            &quiet,
            &spec(""),
            NOW,
            false,
        )
        .await
        .unwrap();
        assert!(
            (r.contention_steps as f64) < 0.25 * r.window_steps as f64,
            "{r:?}"
        );
        assert!(r.workloads.iter().all(|w| w.ratio.unwrap() < 1.1), "{r:?}");
    }

    #[test]
    fn specs_are_checked() {
        for (extra, want) in [
            ("saturation = 1.5", "saturation"),
            ("window = \"30s\"", "two steps"),
            ("window = \"2d\"", "shorter than the window"),
        ] {
            let text = format!(
                "[[neighbours]]\nname = \"n\"\nresource = 'x'\nby = \"ns\"\nbaseline = \"1d\"\n{extra}"
            );
            let e = SpecFile::parse(&text).unwrap_err().to_string();
            assert!(e.contains(want), "{extra}: {e}");
        }
        let e = SpecFile::parse("[[neighbours]]\nname = \"n\"\nresource = 'x'\nby = \"a-b\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a label name"), "{e}");
    }
}
