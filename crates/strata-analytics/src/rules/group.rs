//! One rule group evaluated as Prometheus evaluates it (`rules/group.go`,
//! `recording.go`, `alerting.go` of Prometheus 2.x/3.x): its rules in
//! order at one evaluation time, each query `query_offset` before it;
//! recording rules give their series renamed and relabelled; alerting
//! rules keep each alert pending until it has held `for`, then firing,
//! firing on for `keep_firing_for` after it stops matching, inactive and
//! kept 15 minutes for the resolved notification. Series written by a
//! rule's previous evaluation and not by this one get a stale marker.
//! The group is pure state: the caller queries, writes and notifies.

use std::collections::{BTreeMap, HashMap, HashSet};

use async_trait::async_trait;
use promql_parser::parser::Expr;
use strata_query_lang::promql::{Labels, METRIC_NAME, Value};

use super::file::{RuleDef, RuleGroup};
use super::template::{QuerySample, Template, TemplateData};

/// How long a resolved alert is kept (and resent as resolved).
pub const RESOLVED_RETENTION_MS: i64 = 15 * 60_000;

/// What a group reads and writes: the tenant's data.
#[async_trait]
pub trait RuleQuerier: Send + Sync {
    /// The instant query `expr` at `t_ms`.
    async fn query(&self, expr: &Expr, t_ms: i64) -> Result<Value, String>;

    /// Stores one rule's output (its series and stale markers) before the
    /// next rule of the group is evaluated, so a rule reads what the rules
    /// before it recorded at the same evaluation, as in Prometheus.
    async fn write(&self, points: Vec<Point>) -> Result<(), String>;
}

/// What every rule's templates and notifications share.
#[derive(Debug, Clone, Default)]
pub struct RuleContext {
    pub external_labels: BTreeMap<String, String>,
    pub external_url: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertState {
    Inactive,
    Pending,
    Firing,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }
}

/// One alert of an alerting rule (one label set of its query's answer).
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// The alert's labels: the sample's without `__name__`, the rule's
    /// (expanded) and `alertname`.
    pub labels: Labels,
    pub annotations: BTreeMap<String, String>,
    pub state: AlertState,
    pub value: f64,
    pub active_at_ms: i64,
    pub fired_at_ms: Option<i64>,
    pub resolved_at_ms: Option<i64>,
    pub last_sent_ms: Option<i64>,
    pub valid_until_ms: i64,
    pub keep_firing_since_ms: Option<i64>,
}

impl Alert {
    /// Whether the alert is due to be (re)sent at `t_ms` (Prometheus'
    /// `needsSending`): never while pending, at once when resolved since
    /// the last send, else every `resend_delay`.
    fn needs_sending(&self, t_ms: i64, resend_delay_ms: i64) -> bool {
        if self.state == AlertState::Pending {
            return false;
        }
        match self.last_sent_ms {
            None => true,
            Some(s) => self.resolved_at_ms.is_some_and(|r| r > s) || s + resend_delay_ms < t_ms,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Unknown,
    Ok,
    Err,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Ok => "ok",
            Health::Err => "err",
        }
    }
}

#[derive(Debug, Clone)]
pub enum RuleKind {
    Recording {
        record: String,
    },
    Alerting {
        name: String,
        for_ms: i64,
        keep_firing_for_ms: i64,
        labels: Vec<(String, Template)>,
        annotations: Vec<(String, Template)>,
        /// The queries its templates run (literal strings).
        template_queries: Vec<String>,
        /// Alerts by their labels.
        active: HashMap<Labels, Alert>,
        /// Whether pending times were restored after a restart.
        restored: bool,
    },
}

/// A rule with its evaluation state.
#[derive(Debug, Clone)]
pub struct Rule {
    pub def: RuleDef,
    pub expr: Expr,
    pub kind: RuleKind,
    pub health: Health,
    pub last_error: Option<String>,
    pub last_eval_ms: Option<i64>,
    pub eval_seconds: f64,
    /// The series its last good evaluation wrote (for stale markers).
    written: HashSet<Labels>,
}

/// A group with its rules' state.
#[derive(Debug, Clone)]
pub struct Group {
    pub def: RuleGroup,
    pub interval_ms: i64,
    pub rules: Vec<Rule>,
    pub last_eval_ms: Option<i64>,
    pub eval_seconds: f64,
}

/// A series point a group's evaluation writes.
pub type Point = (Labels, i64, f64);

/// A template query's answer as the template sees it.
fn template_samples(v: Value) -> Result<Vec<QuerySample>, String> {
    let map = |l: &Labels| {
        l.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    match v {
        Value::Vector(v) => Ok(v
            .iter()
            .map(|s| QuerySample {
                labels: map(&s.labels),
                value: s.v,
            })
            .collect()),
        Value::Scalar { v, .. } => Ok(vec![QuerySample {
            labels: BTreeMap::new(),
            value: v,
        }]),
        Value::Matrix(_) | Value::String { .. } => {
            Err("query result is not a vector or scalar".into())
        }
    }
}

fn stale() -> f64 {
    f64::from_bits(strata_query_lang::promql::STALE_NAN_BITS)
}

impl Rule {
    fn new(
        def: &RuleDef,
        group_labels: &BTreeMap<String, String>,
        restored: bool,
    ) -> Result<Self, String> {
        let expr = strata_query_lang::promql::parse_expr(&def.expr.0)?;
        let mut def = def.clone();
        // Group labels are the rule's unless the rule sets its own.
        for (k, v) in group_labels {
            def.labels
                .entry(k.clone())
                .or_insert_with(|| super::file::Scalar(v.clone()));
        }
        let kind = match (&def.record, &def.alert) {
            (Some(r), _) => RuleKind::Recording { record: r.clone() },
            (None, Some(a)) => {
                let compile = |m: &BTreeMap<String, super::file::Scalar>| {
                    m.iter()
                        .map(|(k, v)| {
                            Template::parse(&v.0)
                                .map(|t| (k.clone(), t))
                                .map_err(|e| e.to_string())
                        })
                        .collect::<Result<Vec<_>, _>>()
                };
                let labels = compile(&def.labels)?;
                let annotations = compile(&def.annotations)?;
                let mut template_queries: Vec<String> = labels
                    .iter()
                    .chain(&annotations)
                    .flat_map(|(_, t)| t.queries())
                    .collect();
                template_queries.sort();
                template_queries.dedup();
                RuleKind::Alerting {
                    name: a.clone(),
                    for_ms: def.for_.map_or(0, |d| d.ms()),
                    keep_firing_for_ms: def.keep_firing_for.map_or(0, |d| d.ms()),
                    labels,
                    annotations,
                    template_queries,
                    active: HashMap::new(),
                    restored,
                }
            }
            (None, None) => return Err("one of 'record' or 'alert' must be set".into()),
        };
        Ok(Rule {
            def,
            expr,
            kind,
            health: Health::Unknown,
            last_error: None,
            last_eval_ms: None,
            eval_seconds: 0.0,
            written: HashSet::new(),
        })
    }

    pub fn name(&self) -> &str {
        self.def.name()
    }

    /// Alerts of this rule, pending, firing or resolved within the
    /// retention (empty for a recording rule).
    pub fn alerts(&self) -> Vec<&Alert> {
        let mut out: Vec<&Alert> = match &self.kind {
            RuleKind::Alerting { active, .. } => active.values().collect(),
            RuleKind::Recording { .. } => Vec::new(),
        };
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        out
    }

    /// The rule's state for the API: its most severe alert's.
    pub fn state(&self) -> AlertState {
        let mut s = AlertState::Inactive;
        for a in self.alerts() {
            match a.state {
                AlertState::Firing => return AlertState::Firing,
                AlertState::Pending => s = AlertState::Pending,
                AlertState::Inactive => {}
            }
        }
        s
    }

    /// The rule's output at `t_ms`, or why there is none.
    async fn eval(
        &mut self,
        q: &dyn RuleQuerier,
        ctx: &RuleContext,
        t_ms: i64,
        query_t_ms: i64,
        limit: usize,
    ) -> Result<Vec<Point>, String> {
        let samples = match q.query(&self.expr, query_t_ms).await? {
            Value::Vector(v) => v.into_iter().map(|s| (s.labels, s.v)).collect::<Vec<_>>(),
            Value::Scalar { v, .. } => vec![(Labels::empty(), v)],
            Value::Matrix(_) | Value::String { .. } => {
                return Err("rule result is not a vector or scalar".into());
            }
        };
        // The queries the alert's templates run, once for all its alerts.
        let mut answers = BTreeMap::new();
        if let RuleKind::Alerting {
            template_queries, ..
        } = &self.kind
            && !samples.is_empty()
        {
            for text in template_queries {
                let answer = match strata_query_lang::promql::parse_expr(text) {
                    Ok(e) => q.query(&e, query_t_ms).await.and_then(template_samples),
                    Err(e) => Err(e),
                };
                answers.insert(text.clone(), answer);
            }
        }
        let answers = std::sync::Arc::new(answers);
        match &mut self.kind {
            RuleKind::Recording { record } => {
                let mut out = Vec::with_capacity(samples.len());
                let mut seen = HashSet::with_capacity(samples.len());
                for (mut labels, v) in samples {
                    labels.set(METRIC_NAME, record);
                    for (k, val) in &self.def.labels {
                        labels.set(k, &val.0);
                    }
                    if !seen.insert(labels.clone()) {
                        return Err(
                            "vector contains metrics with the same labelset after applying rule labels"
                                .into(),
                        );
                    }
                    out.push((labels, query_t_ms, v));
                }
                if limit > 0 && out.len() > limit {
                    return Err(format!(
                        "exceeded limit of {limit} with {} series",
                        out.len()
                    ));
                }
                Ok(out)
            }
            RuleKind::Alerting {
                name,
                for_ms,
                keep_firing_for_ms,
                labels: label_tmpl,
                annotations: ann_tmpl,
                active,
                restored,
                ..
            } => {
                let mut now: HashMap<Labels, (f64, BTreeMap<String, String>)> = HashMap::new();
                for (sample_labels, v) in samples {
                    let data = TemplateData {
                        labels: sample_labels
                            .iter()
                            .map(|(k, v)| (k.to_string(), v.to_string()))
                            .collect(),
                        external_labels: ctx.external_labels.clone(),
                        external_url: ctx.external_url.clone(),
                        value: v,
                        queries: std::sync::Arc::clone(&answers),
                    };
                    let expand = |t: &Template| {
                        t.expand(&data)
                            .unwrap_or_else(|e| format!("<error expanding template: {e}>"))
                    };
                    let mut labels = sample_labels.without_name();
                    for (k, t) in label_tmpl.iter() {
                        labels.set(k, &expand(t));
                    }
                    labels.set("alertname", name);
                    let annotations = ann_tmpl
                        .iter()
                        .map(|(k, t)| (k.clone(), expand(t)))
                        .collect();
                    if now.insert(labels, (v, annotations)).is_some() {
                        return Err(
                            "vector contains metrics with the same labelset after applying alert labels"
                                .into(),
                        );
                    }
                }
                for (labels, (v, annotations)) in &now {
                    match active.get_mut(labels) {
                        Some(a) if a.state != AlertState::Inactive => {
                            a.value = *v;
                            a.annotations = annotations.clone();
                        }
                        _ => {
                            active.insert(
                                labels.clone(),
                                Alert {
                                    labels: labels.clone(),
                                    annotations: annotations.clone(),
                                    state: AlertState::Pending,
                                    value: *v,
                                    active_at_ms: t_ms,
                                    fired_at_ms: None,
                                    resolved_at_ms: None,
                                    last_sent_ms: None,
                                    valid_until_ms: 0,
                                    keep_firing_since_ms: None,
                                },
                            );
                        }
                    }
                }
                let mut pending_or_firing = 0usize;
                active.retain(|labels, a| {
                    if !now.contains_key(labels) {
                        if *keep_firing_for_ms > 0 && a.state == AlertState::Firing {
                            let since = *a.keep_firing_since_ms.get_or_insert(t_ms);
                            if t_ms - since < *keep_firing_for_ms {
                                pending_or_firing += 1;
                                return true;
                            }
                        }
                        if a.state == AlertState::Pending
                            || a.resolved_at_ms
                                .is_some_and(|r| t_ms - r > RESOLVED_RETENTION_MS)
                        {
                            return false;
                        }
                        if a.state != AlertState::Inactive {
                            a.state = AlertState::Inactive;
                            a.resolved_at_ms = Some(t_ms);
                        }
                        return true;
                    }
                    a.keep_firing_since_ms = None;
                    if a.state == AlertState::Pending && t_ms - a.active_at_ms >= *for_ms {
                        a.state = AlertState::Firing;
                        a.fired_at_ms = Some(t_ms);
                    }
                    if a.state != AlertState::Inactive {
                        pending_or_firing += 1;
                    }
                    true
                });
                if limit > 0 && pending_or_firing > limit {
                    active.clear();
                    return Err(format!(
                        "exceeded limit of {limit} with {pending_or_firing} alerts"
                    ));
                }
                // Until the pending times are restored after a restart, the
                // state series are not written (they would overwrite the
                // ones the restore reads).
                let mut out = Vec::with_capacity(2 * pending_or_firing);
                for a in active.values() {
                    if a.state == AlertState::Inactive || !*restored {
                        continue;
                    }
                    let mut l = a.labels.clone();
                    l.set(METRIC_NAME, "ALERTS");
                    l.set("alertstate", a.state.as_str());
                    out.push((l, query_t_ms, 1.0));
                    let mut l = a.labels.clone();
                    l.set(METRIC_NAME, "ALERTS_FOR_STATE");
                    out.push((l, query_t_ms, (a.active_at_ms / 1000) as f64));
                }
                Ok(out)
            }
        }
    }

    /// Alerts due to be sent at `t_ms`, marked sent (Prometheus'
    /// `sendAlerts`); each valid for four intervals or resend delays.
    fn due(&mut self, t_ms: i64, resend_delay_ms: i64, interval_ms: i64) -> Vec<Alert> {
        let RuleKind::Alerting { active, .. } = &mut self.kind else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for a in active.values_mut() {
            if a.needs_sending(t_ms, resend_delay_ms) {
                a.last_sent_ms = Some(t_ms);
                a.valid_until_ms = t_ms + 4 * resend_delay_ms.max(interval_ms);
                out.push(a.clone());
            }
        }
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        out
    }
}

/// What one evaluation of a group gives the caller.
#[derive(Debug, Default)]
pub struct GroupOutput {
    /// Points written (the rules' series and stale markers).
    pub points: usize,
    /// Rules whose output could not be written.
    pub write_errors: usize,
    /// Alerts to send to the Alertmanagers.
    pub alerts: Vec<Alert>,
}

impl Group {
    /// A group ready to evaluate; `default_interval_ms` when it sets none.
    /// `restore`: the server just started, so alerts' pending times are
    /// to be restored ([`Group::restore`]) after the first evaluation.
    pub fn new(def: &RuleGroup, default_interval_ms: i64, restore: bool) -> Result<Self, String> {
        let rules = def
            .rules
            .iter()
            .map(|r| Rule::new(r, &def.labels, !restore))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Group {
            def: def.clone(),
            interval_ms: def.interval.map_or(default_interval_ms, |d| d.ms()).max(1),
            rules,
            last_eval_ms: None,
            eval_seconds: 0.0,
        })
    }

    /// Takes the state of `old`'s rules that are the same rule here (as
    /// Prometheus' `CopyState` on reload): alerts, pending times and the
    /// series written, so a reload neither restarts `for` nor leaves
    /// series without stale markers.
    pub fn copy_state(&mut self, old: &Group) {
        self.last_eval_ms = old.last_eval_ms;
        self.eval_seconds = old.eval_seconds;
        let mut used = vec![false; old.rules.len()];
        for r in &mut self.rules {
            let Some(i) = old
                .rules
                .iter()
                .enumerate()
                .position(|(i, o)| !used[i] && o.def == r.def)
            else {
                continue;
            };
            used[i] = true;
            let o = &old.rules[i];
            r.health = o.health;
            r.last_error.clone_from(&o.last_error);
            r.last_eval_ms = o.last_eval_ms;
            r.eval_seconds = o.eval_seconds;
            r.written.clone_from(&o.written);
            if let (
                RuleKind::Alerting {
                    active, restored, ..
                },
                RuleKind::Alerting {
                    active: oa,
                    restored: or,
                    ..
                },
            ) = (&mut r.kind, &o.kind)
            {
                active.clone_from(oa);
                *restored = *or;
            }
        }
    }

    /// Stale markers at `t_ms` for every series the group's rules last
    /// wrote (the group was removed or replaced).
    pub fn stale_all(&self, t_ms: i64) -> Vec<Point> {
        self.rules
            .iter()
            .flat_map(|r| r.written.iter().map(move |l| (l.clone(), t_ms, stale())))
            .collect()
    }

    /// Whether any alerting rule still awaits its restore.
    pub fn needs_restore(&self) -> bool {
        self.rules
            .iter()
            .any(|r| matches!(&r.kind, RuleKind::Alerting { restored, .. } if !*restored))
    }

    /// Evaluates every rule at `t_ms` (queries at `t_ms - query_offset`);
    /// `resend_delay_ms`: how often a firing alert is resent.
    pub async fn evaluate(
        &mut self,
        q: &dyn RuleQuerier,
        ctx: &RuleContext,
        t_ms: i64,
        resend_delay_ms: i64,
    ) -> GroupOutput {
        let started = std::time::Instant::now();
        let offset = self.def.query_offset.map_or(0, |d| d.ms());
        let query_t = t_ms - offset;
        let limit = self.def.limit;
        let mut out = GroupOutput::default();
        for r in &mut self.rules {
            let rs = std::time::Instant::now();
            match r.eval(q, ctx, t_ms, query_t, limit).await {
                Ok(mut points) => {
                    r.health = Health::Ok;
                    r.last_error = None;
                    let now: HashSet<Labels> = points.iter().map(|(l, _, _)| l.clone()).collect();
                    for gone in r.written.difference(&now) {
                        points.push((gone.clone(), query_t, stale()));
                    }
                    r.written = now;
                    out.points += points.len();
                    if !points.is_empty()
                        && let Err(e) = q.write(points).await
                    {
                        out.write_errors += 1;
                        r.health = Health::Err;
                        r.last_error = Some(format!("writing the rule's output: {e}"));
                    }
                }
                Err(e) => {
                    r.health = Health::Err;
                    r.last_error = Some(e);
                }
            }
            // As Prometheus: a rule that failed sends nothing this time.
            if r.health == Health::Ok {
                out.alerts
                    .extend(r.due(t_ms, resend_delay_ms, self.interval_ms));
            }
            r.last_eval_ms = Some(t_ms);
            r.eval_seconds = rs.elapsed().as_secs_f64();
        }
        self.last_eval_ms = Some(t_ms);
        self.eval_seconds = started.elapsed().as_secs_f64();
        out
    }

    /// After a restart, the pending time of each alert of a rule with
    /// `for` from its `ALERTS_FOR_STATE` series (Prometheus'
    /// `RestoreForState`): an alert that was pending before the outage
    /// keeps the time it had spent pending, provided its last state is
    /// within `outage_tolerance_ms`; one that would fire within
    /// `grace_ms` of the restart fires `grace_ms` after it instead.
    pub async fn restore(
        &mut self,
        q: &dyn RuleQuerier,
        t_ms: i64,
        outage_tolerance_ms: i64,
        grace_ms: i64,
    ) -> Result<(), String> {
        for r in &mut self.rules {
            let RuleKind::Alerting {
                name,
                for_ms,
                active,
                restored,
                ..
            } = &mut r.kind
            else {
                continue;
            };
            if *restored {
                continue;
            }
            *restored = true;
            if *for_ms <= 0 || *for_ms < grace_ms || active.is_empty() {
                continue;
            }
            let text = format!(
                "ALERTS_FOR_STATE{{alertname=\"{}\"}}[{}ms]",
                name.replace('\\', "\\\\").replace('"', "\\\""),
                outage_tolerance_ms
            );
            let expr = strata_query_lang::promql::parse_expr(&text)?;
            let Value::Matrix(series) = q.query(&expr, t_ms).await? else {
                return Err("restoring alert state: not a range vector".into());
            };
            for s in series {
                let labels = s.labels.without_name();
                let (Some(a), Some(&(down_ms, v))) = (active.get_mut(&labels), s.points.last())
                else {
                    continue;
                };
                if !v.is_finite() {
                    // A stale marker: the alert was not active.
                    continue;
                }
                let restored_at = (v as i64) * 1000;
                let down = down_ms.div_euclid(1000) * 1000;
                let remaining = *for_ms - (down - restored_at);
                a.active_at_ms = if remaining <= 0 {
                    // It was firing: it fires again at the next evaluation.
                    restored_at
                } else if remaining < grace_ms {
                    t_ms + grace_ms - *for_ms
                } else {
                    // The time it was down does not count as pending.
                    restored_at + (t_ms - down)
                };
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod against_promtool;
#[cfg(test)]
pub(crate) mod tests;
