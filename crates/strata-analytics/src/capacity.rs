//! Capacity: when does each resource run out?
//!
//! A spec names a usage gauge and its limit:
//!
//! ```toml
//! [[capacity]]
//! name = "postgres-connections"
//! tenant = "acme"
//! business_process = "invoicing"
//! usage = 'sum by (instance) (pg_stat_activity_count)'
//! limit = 'pg_settings_max_connections'   # or a number: limit = 200
//! lookback = "7d"        # history the forecast is fitted on (default 7d)
//! model = "seasonal"     # "linear" (default) or "seasonal"
//! season = "1d"          # the seasonal model's period (default 1d)
//! horizon = "90d"        # how far ahead to look (default 90d)
//! direction = "up"       # "down" for a gauge that falls to its limit (free bytes → 0)
//! ```
//!
//! Each usage series is read over the lookback at a fixed resolution and
//! fitted by least squares: a straight line (`linear`), or a line plus a
//! periodic profile — the mean residual of each phase of the season, so
//! the daily peak is what reaches the limit, not the daily mean
//! (`seasonal`). The forecast carries a 95% prediction band
//! (`±1.96 σ √(1 + 1/n + (t − t̄)²/Sₜₜ)`, σ the residuals' standard
//! deviation); exhaustion is the first instant the forecast reaches the
//! limit, and its band the instants the band's near and far edges do.
//! Forecasts are ranked by urgency: soonest exhaustion first.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use strata_query_lang::promql::{Engine, Labels, Source, Value};

use crate::common::{
    EvalError, Limit, SpecError, check_query, default_tenant, humantime_serde, label_map, step_for,
    window_text,
};

/// The prediction band's half-width in standard deviations (95%).
const Z: f64 = 1.96;
/// The fewest points a forecast is fitted on.
const MIN_POINTS: usize = 10;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Model {
    #[default]
    Linear,
    Seasonal,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Usage grows towards the limit (connections, bytes used).
    #[default]
    Up,
    /// Usage falls towards the limit (free bytes towards 0).
    Down,
}

/// One capacity spec as written in the file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapacitySpec {
    pub name: String,
    #[serde(default = "default_tenant")]
    pub tenant: String,
    #[serde(default)]
    pub business_process: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// PromQL: one series per resource.
    pub usage: String,
    pub limit: Limit,
    #[serde(default = "default_lookback", with = "humantime_serde")]
    pub lookback: Duration,
    #[serde(default)]
    pub model: Model,
    #[serde(default = "default_season", with = "humantime_serde")]
    pub season: Duration,
    #[serde(default = "default_horizon", with = "humantime_serde")]
    pub horizon: Duration,
    #[serde(default)]
    pub direction: Direction,
}

fn default_lookback() -> Duration {
    Duration::from_secs(7 * 86_400)
}

fn default_season() -> Duration {
    Duration::from_secs(86_400)
}

fn default_horizon() -> Duration {
    Duration::from_secs(90 * 86_400)
}

impl CapacitySpec {
    /// An ad-hoc spec (API and SQL callers), checked like a file's.
    pub fn ad_hoc(usage: &str, limit: Limit) -> Self {
        CapacitySpec {
            name: "ad-hoc".into(),
            tenant: default_tenant(),
            business_process: None,
            description: None,
            usage: usage.into(),
            limit,
            lookback: default_lookback(),
            model: Model::Linear,
            season: default_season(),
            horizon: default_horizon(),
            direction: Direction::Up,
        }
    }

    pub fn check(&self) -> Result<(), SpecError> {
        let bad = |reason: String| SpecError::invalid("capacity", &self.name, reason);
        check_query("capacity", &self.name, &self.usage)?;
        self.limit.check("capacity", &self.name)?;
        if self.lookback < Duration::from_secs(3_600) {
            return Err(bad("lookback must be at least 1h".into()));
        }
        if self.horizon < Duration::from_secs(60) {
            return Err(bad("horizon must be at least 1m".into()));
        }
        if self.model == Model::Seasonal {
            let step = step_for(self.lookback);
            if self.season < step * 2 {
                return Err(bad(format!(
                    "season {} is shorter than two steps of the {} lookback ({} each)",
                    window_text(self.season),
                    window_text(self.lookback),
                    window_text(step)
                )));
            }
            if self.lookback < self.season * 2 {
                return Err(bad(format!(
                    "the seasonal model needs at least two seasons of history: lookback {} < 2 × season {}",
                    window_text(self.lookback),
                    window_text(self.season)
                )));
            }
        }
        Ok(())
    }
}

/// Where a resource stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Already at or past its limit.
    Exhausted,
    /// Forecast to reach its limit within the horizon.
    Forecast,
    /// Not reaching its limit within the horizon.
    BeyondHorizon,
    /// Too few points to fit.
    NotEnoughData,
    /// No limit series matched it.
    NoLimit,
}

/// The forecast of one usage series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Forecast {
    pub name: String,
    pub business_process: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub model: Model,
    pub status: Status,
    /// 1 = most urgent.
    pub rank: usize,
    pub current: f64,
    pub limit: Option<f64>,
    /// `current / limit` (for `down`: `limit / current`).
    pub utilisation: Option<f64>,
    /// The fitted trend, per day.
    pub trend_per_day: Option<f64>,
    /// The forecast's exhaustion instant (Unix ms) and its 95% band.
    pub exhaustion_ms: Option<i64>,
    pub earliest_ms: Option<i64>,
    pub latest_ms: Option<i64>,
    /// Seconds from the evaluation time to `exhaustion_ms`.
    pub seconds_left: Option<f64>,
    /// The residuals' standard deviation, in the usage's unit.
    pub sigma: Option<f64>,
    pub points: usize,
    /// What a chart of it draws (when asked: the API's `detail=true`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chart: Option<Chart>,
}

/// A forecast as a chart draws it: the history fitted, and the fitted
/// line ahead with its 95% band (Unix ms, value, band low, band high),
/// from the evaluation time to where the band's far edge reaches the
/// limit (or the horizon).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Chart {
    pub history: Vec<(i64, f64)>,
    pub forecast: Vec<(i64, f64, f64, f64)>,
}

/// Points of a chart's forecast line.
const CHART_POINTS: usize = 120;

/// A least-squares fit of `y = a + b·t (+ season(t))`, `t` in seconds
/// from the evaluation time.
#[derive(Debug, Clone, PartialEq)]
pub struct Fit {
    pub a: f64,
    pub b: f64,
    pub sigma: f64,
    n: f64,
    t_mean: f64,
    sxx: f64,
    /// Period (s) and the mean residual of each of its phases.
    season: Option<(f64, Vec<f64>)>,
    /// The evaluation time (Unix s), so phases are of wall-clock time.
    origin: f64,
}

fn ols(points: impl Iterator<Item = (f64, f64)> + Clone) -> Option<(f64, f64, f64, f64)> {
    let (mut n, mut st, mut sy) = (0.0, 0.0, 0.0);
    for (t, y) in points.clone() {
        n += 1.0;
        st += t;
        sy += y;
    }
    if n < 2.0 {
        return None;
    }
    let (tm, ym) = (st / n, sy / n);
    let (mut sxx, mut sxy) = (0.0, 0.0);
    for (t, y) in points {
        sxx += (t - tm) * (t - tm);
        sxy += (t - tm) * (y - ym);
    }
    if sxx <= 0.0 {
        return None;
    }
    let b = sxy / sxx;
    Some((ym - b * tm, b, tm, sxx))
}

impl Fit {
    /// Fits `points` (`t` in seconds from `origin`, Unix s).
    pub fn new(points: &[(f64, f64)], origin: f64, season: Option<(f64, usize)>) -> Option<Fit> {
        let (mut a, mut b, t_mean, sxx) = ols(points.iter().copied())?;
        let mut profile: Option<(f64, Vec<f64>)> = None;
        if let Some((period, buckets)) = season {
            let phase = |t: f64| phase(origin + t, period, buckets);
            // Alternate: the profile of the trend's residuals, then the
            // trend of what the profile leaves.
            for _ in 0..3 {
                let mut sum = vec![0.0; buckets];
                let mut count = vec![0usize; buckets];
                for (t, y) in points {
                    let k = phase(*t);
                    sum[k] += y - (a + b * t);
                    count[k] += 1;
                }
                let filled = count.iter().filter(|c| **c > 0).count().max(1) as f64;
                let mut prof: Vec<f64> = sum
                    .iter()
                    .zip(&count)
                    .map(|(s, c)| if *c > 0 { s / *c as f64 } else { 0.0 })
                    .collect();
                let mean = prof.iter().sum::<f64>() / filled;
                for (p, c) in prof.iter_mut().zip(&count) {
                    if *c > 0 {
                        *p -= mean;
                    }
                }
                let (a2, b2, ..) = ols(points.iter().map(|(t, y)| (*t, y - prof[phase(*t)])))?;
                a = a2;
                b = b2;
                profile = Some((period, prof));
            }
        }
        let mut fit = Fit {
            a,
            b,
            sigma: 0.0,
            n: points.len() as f64,
            t_mean,
            sxx,
            season: profile,
            origin,
        };
        let dof = points.len().saturating_sub(
            2 + fit
                .season
                .as_ref()
                .map_or(0, |(_, p)| p.iter().filter(|v| **v != 0.0).count()),
        );
        let sse: f64 = points.iter().map(|(t, y)| (y - fit.at(*t)).powi(2)).sum();
        fit.sigma = (sse / dof.max(1) as f64).sqrt();
        Some(fit)
    }

    /// The fitted value at `t`.
    pub fn at(&self, t: f64) -> f64 {
        let s = self.season.as_ref().map_or(0.0, |(period, prof)| {
            prof[phase(self.origin + t, *period, prof.len())]
        });
        self.a + self.b * t + s
    }

    /// Half the 95% prediction band's width at `t`.
    pub fn half_width(&self, t: f64) -> f64 {
        Z * self.sigma * (1.0 + 1.0 / self.n + (t - self.t_mean).powi(2) / self.sxx).sqrt()
    }

    /// The first `t` in `(0, horizon]` (scanned every `step`) where
    /// `f(t)` reaches `limit`.
    fn first(&self, limit: f64, horizon: f64, step: f64, f: impl Fn(f64) -> f64) -> Option<f64> {
        let mut t = 0.0;
        while t <= horizon {
            if f(t) >= limit {
                return Some(t);
            }
            t += step;
        }
        None
    }
}

/// The phase bucket of Unix time `t` in a `period` cut into `buckets`.
fn phase(t: f64, period: f64, buckets: usize) -> usize {
    let p = t.rem_euclid(period) / period;
    ((p * buckets as f64) as usize).min(buckets.saturating_sub(1))
}

/// Forecasts one series (`points`: Unix ms, value) against `limit`;
/// `with_chart` adds what a chart of it draws.
pub fn forecast_series(
    spec: &CapacitySpec,
    labels: BTreeMap<String, String>,
    points: &[(i64, f64)],
    limit: Option<f64>,
    now_ms: i64,
    step: Duration,
    with_chart: bool,
) -> Forecast {
    let sign = match spec.direction {
        Direction::Up => 1.0,
        Direction::Down => -1.0,
    };
    let current = points.last().map_or(f64::NAN, |p| p.1);
    let mut out = Forecast {
        name: spec.name.clone(),
        business_process: spec.business_process.clone(),
        labels,
        model: spec.model,
        status: Status::NoLimit,
        rank: 0,
        current,
        limit,
        utilisation: limit.and_then(|l| {
            let u = match spec.direction {
                Direction::Up => current / l,
                Direction::Down => l / current,
            };
            u.is_finite().then_some(u)
        }),
        trend_per_day: None,
        exhaustion_ms: None,
        earliest_ms: None,
        latest_ms: None,
        seconds_left: None,
        sigma: None,
        points: points.len(),
        chart: with_chart.then(|| Chart {
            history: points.to_vec(),
            forecast: Vec::new(),
        }),
    };
    let Some(limit) = limit else {
        return out;
    };
    if points.len() < MIN_POINTS {
        out.status = Status::NotEnoughData;
        return out;
    }
    let origin = now_ms as f64 / 1_000.0;
    let xy: Vec<(f64, f64)> = points
        .iter()
        .map(|(t, v)| ((*t - now_ms) as f64 / 1_000.0, sign * v))
        .collect();
    let season = (spec.model == Model::Seasonal).then(|| {
        let period = spec.season.as_secs_f64();
        let buckets = (period / step.as_secs_f64()).round().clamp(2.0, 1_440.0) as usize;
        (period, buckets)
    });
    let Some(fit) = Fit::new(&xy, origin, season) else {
        out.status = Status::NotEnoughData;
        return out;
    };
    out.trend_per_day = Some(sign * fit.b * 86_400.0);
    out.sigma = Some(fit.sigma);
    let limit = sign * limit;
    let at_ms = |t: f64| now_ms + (t * 1_000.0) as i64;
    if sign * current >= limit {
        out.status = Status::Exhausted;
        out.exhaustion_ms = Some(now_ms);
        out.earliest_ms = Some(now_ms);
        out.latest_ms = Some(now_ms);
        out.seconds_left = Some(0.0);
        return out;
    }
    let horizon = spec.horizon.as_secs_f64();
    // Fine enough to see each phase of a season and to place a date
    // within a few minutes; bounded work per series.
    let scan = step
        .as_secs_f64()
        .min(horizon / 20_000.0)
        .max(horizon / 200_000.0);
    let estimate = fit.first(limit, horizon, scan, |t| fit.at(t));
    out.earliest_ms = fit
        .first(limit, horizon, scan, |t| fit.at(t) + fit.half_width(t))
        .map(at_ms);
    out.latest_ms = fit
        .first(limit, horizon, scan, |t| fit.at(t) - fit.half_width(t))
        .map(at_ms);
    match estimate {
        Some(t) => {
            out.status = Status::Forecast;
            out.exhaustion_ms = Some(at_ms(t));
            out.seconds_left = Some(t);
        }
        None => out.status = Status::BeyondHorizon,
    }
    let end = out
        .latest_ms
        .map_or(horizon, |ms| ((ms - now_ms) as f64 / 1_000.0).min(horizon));
    if let Some(chart) = &mut out.chart {
        chart.forecast = (0..=CHART_POINTS)
            .map(|i| {
                let t = end * i as f64 / CHART_POINTS as f64;
                let (y, w) = (fit.at(t), fit.half_width(t));
                let (lo, hi) = if sign > 0.0 {
                    (y - w, y + w)
                } else {
                    (-(y + w), -(y - w))
                };
                (at_ms(t), sign * y, lo, hi)
            })
            .collect();
    }
    out
}

/// Which limit series applies to a usage series: the one agreeing on
/// every label both carry, sharing the most; a single limit series
/// applies to all.
fn limit_for(
    usage: &BTreeMap<String, String>,
    limits: &[(BTreeMap<String, String>, f64)],
) -> Option<f64> {
    if let [(_, v)] = limits {
        return Some(*v);
    }
    limits
        .iter()
        .filter(|(l, _)| l.iter().all(|(k, v)| usage.get(k).is_none_or(|u| u == v)))
        .max_by_key(|(l, _)| l.keys().filter(|k| usage.contains_key(*k)).count())
        .map(|(_, v)| *v)
}

/// Orders forecasts by urgency and numbers them: exhausted first, then by
/// exhaustion time (the band's near edge breaking ties), then those
/// beyond the horizon by utilisation.
pub fn rank(forecasts: &mut [Forecast]) {
    let key = |f: &Forecast| {
        let class = match f.status {
            Status::Exhausted => 0,
            Status::Forecast => 1,
            Status::BeyondHorizon => 2,
            Status::NotEnoughData => 3,
            Status::NoLimit => 4,
        };
        (
            class,
            f.exhaustion_ms.unwrap_or(i64::MAX),
            f.earliest_ms.unwrap_or(i64::MAX),
            -(f.utilisation.unwrap_or(0.0) * 1e6) as i64,
        )
    };
    forecasts.sort_by_key(key);
    for (i, f) in forecasts.iter_mut().enumerate() {
        f.rank = i + 1;
    }
}

/// Evaluates `spec` at `now_ms`: one forecast per usage series, ranked;
/// `with_chart` adds each one's chart.
pub async fn evaluate(
    engine: &Engine,
    source: &dyn Source,
    spec: &CapacitySpec,
    now_ms: i64,
    with_chart: bool,
) -> Result<Vec<Forecast>, EvalError> {
    let err = |e: String| EvalError::new("capacity", &spec.name, e);
    let step = step_for(spec.lookback);
    let start = now_ms - spec.lookback.as_millis() as i64;
    let usage = engine
        .range(source, &spec.usage, start, now_ms, step.as_millis() as i64)
        .await
        .map_err(|e| err(format!("usage: {e}")))?;
    let series: Vec<(Labels, Vec<(i64, f64)>)> = match usage.value {
        Value::Matrix(m) => m.into_iter().map(|s| (s.labels, s.points)).collect(),
        _ => return Err(err("usage must be an instant vector query".into())),
    };
    let limits: Vec<(BTreeMap<String, String>, f64)> = match &spec.limit {
        Limit::Number(v) => vec![(BTreeMap::new(), *v)],
        Limit::Query(q) => match engine
            .instant(source, q, now_ms)
            .await
            .map_err(|e| err(format!("limit: {e}")))?
            .value
        {
            Value::Vector(v) => v.into_iter().map(|s| (label_map(&s.labels), s.v)).collect(),
            Value::Scalar { v, .. } => vec![(BTreeMap::new(), v)],
            _ => {
                return Err(err(
                    "limit must be a number or an instant vector query".into()
                ));
            }
        },
    };
    let mut out: Vec<Forecast> = series
        .into_iter()
        .map(|(labels, points)| {
            let labels = label_map(&labels);
            let limit = limit_for(&labels, &limits);
            forecast_series(spec, labels, &points, limit, now_ms, step, with_chart)
        })
        .collect();
    rank(&mut out);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use strata_query_lang::promql::{EngineConfig, MemorySource};

    use super::*;
    use crate::spec::SpecFile;
    use crate::testing::noise;

    const MIN: i64 = 60_000;
    const DAY: i64 = 1_440 * MIN;
    /// A Thursday at midnight UTC.
    const NOW: i64 = 1_800_057_600_000;

    fn spec(text: &str) -> CapacitySpec {
        SpecFile::parse(text).unwrap().capacity.remove(0)
    }

    fn gauge(src: &mut MemorySource, name: &str, labels: &[(&str, &str)], f: impl Fn(i64) -> f64) {
        let mut l = vec![("__name__".to_owned(), name.to_owned())];
        l.extend(
            labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let labels = Labels::new(l);
        let start = NOW - 14 * DAY;
        let mut t = start;
        while t <= NOW {
            src.add(&labels, t, f(t));
            t += MIN;
        }
    }

    #[tokio::test]
    async fn a_linear_growth_runs_out_on_the_day_it_was_set_to() {
        // Connections grow 2 a day from 100 at NOW; the limit of 200 is
        // reached in exactly 50 days. A second instance stays flat.
        let mut src = MemorySource::new();
        gauge(&mut src, "pg_connections", &[("instance", "a")], |t| {
            100.0 + 2.0 * (t - NOW) as f64 / DAY as f64 + 3.0 * noise(t / MIN)
        });
        gauge(&mut src, "pg_connections", &[("instance", "b")], |t| {
            40.0 + noise(t / MIN + 7)
        });
        gauge(&mut src, "pg_max_connections", &[("instance", "a")], |_| {
            200.0
        });
        gauge(&mut src, "pg_max_connections", &[("instance", "b")], |_| {
            100.0
        });
        let s = spec(
            "[[capacity]]\nname = \"pg\"\nusage = 'pg_connections'\nlimit = 'pg_max_connections'",
        );
        let out = evaluate(&Engine::new(EngineConfig::default()), &src, &s, NOW, true)
            .await
            .unwrap();
        assert_eq!(out.len(), 2);
        let a = &out[0];
        assert_eq!(a.labels["instance"], "a");
        assert_eq!((a.rank, a.status), (1, Status::Forecast));
        assert_eq!(a.limit, Some(200.0));
        let days = a.seconds_left.unwrap() / 86_400.0;
        assert!((days - 50.0).abs() < 1.0, "{days} days: {a:?}");
        assert!((a.trend_per_day.unwrap() - 2.0).abs() < 0.05, "{a:?}");
        let (early, late) = (a.earliest_ms.unwrap(), a.latest_ms.unwrap());
        assert!(
            early < a.exhaustion_ms.unwrap() && a.exhaustion_ms.unwrap() < late,
            "{a:?}"
        );
        // Noise of ±3 (σ ≈ 1.7) against 2 a day: a band of a few days.
        assert!((late - early) as f64 / DAY as f64 > 1.0, "{a:?}");
        assert!(((late - early) as f64 / DAY as f64) < 8.0, "{a:?}");
        // The chart: the history fitted, then the line from now to where
        // the band's far edge meets the limit, inside its band.
        let chart = a.chart.as_ref().unwrap();
        assert_eq!(chart.history.len(), a.points);
        assert_eq!(chart.history.last().map(|p| p.1), Some(a.current));
        let (first, last) = (chart.forecast[0], *chart.forecast.last().unwrap());
        assert_eq!((first.0, last.0), (NOW, late), "{chart:?}");
        assert!(
            first.2 < 100.0 && 100.0 < first.3,
            "now's true 100 in the band: {first:?}"
        );
        // (The far edge of the band is its low one: it meets the limit last.)
        assert!(
            (200.0..200.5).contains(&last.2),
            "the far edge at the limit: {last:?}"
        );
        assert!(chart.forecast.iter().all(|(_, y, lo, hi)| lo < y && y < hi));
        let b = &out[1];
        assert_eq!((b.rank, b.status), (2, Status::BeyondHorizon));
        assert!((b.utilisation.unwrap() - 0.4).abs() < 0.02);
    }

    #[tokio::test]
    async fn a_daily_peak_reaches_the_limit_before_the_trend_does() {
        // Redis memory: trend 1 GB/day from 50 GB, ±20 GB daily swing
        // peaking at 12:00 UTC; limit 100 GB. The trend alone crosses in
        // 50 days; the peak (trend + 20) in 30 days, at noon.
        let gb = 1e9;
        let swing = |t: i64| {
            20.0 * gb
                * (2.0 * std::f64::consts::PI * ((t - DAY / 4).rem_euclid(DAY)) as f64 / DAY as f64)
                    .sin()
        };
        let mut src = MemorySource::new();
        gauge(&mut src, "redis_memory_used_bytes", &[], |t| {
            50.0 * gb + gb * (t - NOW) as f64 / DAY as f64 + swing(t) + 0.2 * gb * noise(t / MIN)
        });
        let linear = spec(
            "[[capacity]]\nname = \"redis\"\nusage = 'redis_memory_used_bytes'\nlimit = 100e9\nlookback = \"14d\"",
        );
        let engine = Engine::new(EngineConfig::default());
        let l = evaluate(&engine, &src, &linear, NOW, false)
            .await
            .unwrap()
            .remove(0);
        let mut seasonal = linear.clone();
        seasonal.model = Model::Seasonal;
        let s = evaluate(&engine, &src, &seasonal, NOW, false)
            .await
            .unwrap()
            .remove(0);
        let days = |f: &Forecast| f.seconds_left.unwrap() / 86_400.0;
        // The straight line sees the mean: ~50 days, with a band as wide
        // as the swing it cannot explain.
        assert!((days(&l) - 50.0).abs() < 2.0, "{l:?}");
        // The seasonal model finds the first peak that touches 100:
        // 50 + d + 20·sin(…) ≥ 100 first holds ~11:10 on day 30
        // (d ≈ 30.47; the noon before, 99.5 GB, falls short).
        assert!((days(&s) - 30.47).abs() < 0.3, "{s:?}");
        let hour = (s.exhaustion_ms.unwrap().rem_euclid(DAY)) as f64 / 3_600_000.0;
        assert!((hour - 12.0).abs() < 3.0, "exhausts at {hour}h: {s:?}");
        // And explains the swing: its band is far narrower.
        assert!(s.sigma.unwrap() < l.sigma.unwrap() / 5.0, "{s:?} {l:?}");
    }

    #[tokio::test]
    async fn free_space_falling_to_zero_and_an_exhausted_resource() {
        // Free disk falls 10 GB a day from 200 GB: 20 days left. Queue
        // depth is already over its limit.
        let mut src = MemorySource::new();
        gauge(&mut src, "disk_free_bytes", &[], |t| {
            200e9 - 10e9 * (t - NOW) as f64 / DAY as f64
        });
        gauge(&mut src, "queue_depth", &[], |t| {
            1_000.0 + (t - NOW + 14 * DAY) as f64 / MIN as f64
        });
        let disk = spec(
            "[[capacity]]\nname = \"disk\"\nusage = 'disk_free_bytes'\nlimit = 0\ndirection = \"down\"",
        );
        let engine = Engine::new(EngineConfig::default());
        let d = evaluate(&engine, &src, &disk, NOW, false)
            .await
            .unwrap()
            .remove(0);
        assert!(d.chart.is_none(), "a chart only when asked");
        assert_eq!(d.status, Status::Forecast);
        assert!(
            (d.seconds_left.unwrap() / 86_400.0 - 20.0).abs() < 0.1,
            "{d:?}"
        );
        assert!((d.trend_per_day.unwrap() + 10e9).abs() < 1e8, "{d:?}");
        let queue = spec("[[capacity]]\nname = \"q\"\nusage = 'queue_depth'\nlimit = 5000");
        let q = evaluate(&engine, &src, &queue, NOW, false)
            .await
            .unwrap()
            .remove(0);
        assert_eq!((q.status, q.seconds_left), (Status::Exhausted, Some(0.0)));
    }

    #[test]
    fn specs_are_checked() {
        for (toml, want) in [
            (
                "[[capacity]]\nname = \"a\"\nusage = 'x{'\nlimit = 1",
                "does not parse",
            ),
            (
                "[[capacity]]\nname = \"a\"\nusage = 'x'\nlimit = 'max('",
                "does not parse",
            ),
            (
                "[[capacity]]\nname = \"a\"\nusage = 'x'\nlimit = 1\nlookback = \"5m\"",
                "at least 1h",
            ),
            (
                "[[capacity]]\nname = \"a\"\nusage = 'x'\nlimit = 1\nlookback = \"1d\"\nmodel = \"seasonal\"",
                "two seasons",
            ),
            (
                "[[capacity]]\nname = \"a\"\nusage = 'x'\nlimit = 1\nmodel = \"arima\"",
                "unknown variant",
            ),
        ] {
            let e = SpecFile::parse(toml).unwrap_err().to_string();
            assert!(e.contains(want), "{toml}: {e}");
        }
    }
}
