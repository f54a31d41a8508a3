//! Prometheus rule files: `groups:` of recording and alerting rules, in
//! YAML, checked as `promtool check rules` checks them (and as Prometheus
//! refuses them at load): unknown fields, repeated group names, a rule
//! that is both or neither kind, an expression that does not parse, an
//! invalid recorded metric name, label or annotation name, fields that do
//! not belong to the rule's kind, templates that do not parse.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::template::Template;

/// Why a rule file was refused; the message names the group and rule.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum RuleFileError {
    #[error("{0}")]
    Yaml(String),
    #[error("group {group:?}: {message}")]
    Group { group: String, message: String },
    #[error("group {group:?}, rule {index} ({name}): {message}")]
    Rule {
        group: String,
        index: usize,
        name: String,
        message: String,
    },
}

/// A Prometheus duration (`30s`, `1m`, `1h30m`) as rule files write it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord)]
pub struct PromDuration(pub i64);

impl PromDuration {
    pub fn ms(self) -> i64 {
        self.0
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }
}

impl std::fmt::Display for PromDuration {
    /// As Prometheus writes durations: `1h30m`, `5m`, `0s`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut ms = self.0;
        if ms == 0 {
            return f.write_str("0s");
        }
        for (unit, size) in [
            ("y", 365 * 86_400_000),
            ("w", 7 * 86_400_000),
            ("d", 86_400_000),
            ("h", 3_600_000),
            ("m", 60_000),
            ("s", 1_000),
            ("ms", 1),
        ] {
            if ms >= size {
                write!(f, "{}{unit}", ms / size)?;
                ms %= size;
            }
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for PromDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Scalar::deserialize(d)?.0;
        if s == "0" || s == "0s" {
            return Ok(PromDuration(0));
        }
        strata_query_lang::promql::parse_duration_ms(&s)
            .map(PromDuration)
            .map_err(|e| serde::de::Error::custom(format!("not a valid duration {s:?}: {e}")))
    }
}

impl Serialize for PromDuration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

/// A YAML scalar read as text, as Go's YAML reads `expr: 1` into a string.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(transparent)]
pub struct Scalar(pub String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// A rule file.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuleFile {
    #[serde(default)]
    pub groups: Vec<RuleGroup>,
}

/// A group: evaluated every `interval` (the server's default when absent),
/// its rules in order at one evaluation time.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuleGroup {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<PromDuration>,
    /// Queries evaluated this long before the evaluation time (so late
    /// samples are in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_offset: Option<PromDuration>,
    /// Most series a recording rule, or alerts an alerting rule, may give;
    /// over it the rule fails (0: no limit).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub limit: usize,
    /// Labels added to every rule's output (Prometheus 3).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub rules: Vec<RuleDef>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// One rule as written: `record` or `alert`, and the fields of its kind.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuleDef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<String>,
    pub expr: Scalar,
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    pub for_: Option<PromDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_firing_for: Option<PromDuration>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, Scalar>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, Scalar>,
}

impl RuleDef {
    /// The recorded metric or the alert's name.
    pub fn name(&self) -> &str {
        self.record
            .as_deref()
            .or(self.alert.as_deref())
            .unwrap_or("")
    }
}

/// Label names a rule may set: any UTF-8 text but `__name__`, as
/// Prometheus 3 checks them (a tenant on the legacy name scheme gets the
/// rule's write refused instead).
fn is_label_name(s: &str) -> bool {
    !s.is_empty() && s != "__name__"
}

impl RuleFile {
    /// Parses and checks a rule file; the first problem refuses it whole.
    pub fn parse(text: &str) -> Result<Self, RuleFileError> {
        let f: RuleFile =
            serde_norway::from_str(text).map_err(|e| RuleFileError::Yaml(e.to_string()))?;
        f.check()?;
        Ok(f)
    }

    /// The checks `promtool check rules` makes.
    pub fn check(&self) -> Result<(), RuleFileError> {
        let mut seen = std::collections::HashSet::new();
        for g in &self.groups {
            g.check()?;
            if !seen.insert(g.name.as_str()) {
                return Err(RuleFileError::Group {
                    group: g.name.clone(),
                    message: "repeated in the same file".into(),
                });
            }
        }
        Ok(())
    }

    /// The file as YAML (as the ruler API answers it).
    pub fn to_yaml(&self) -> String {
        serde_norway::to_string(self).unwrap_or_default()
    }
}

impl RuleGroup {
    /// Checks one group and its rules.
    pub fn check(&self) -> Result<(), RuleFileError> {
        let group_err = |m: &str| RuleFileError::Group {
            group: self.name.clone(),
            message: m.into(),
        };
        if self.name.is_empty() {
            return Err(group_err("group name must not be empty"));
        }
        if self.interval.is_some_and(|d| d.ms() <= 0) {
            return Err(group_err("interval must be greater than 0"));
        }
        for k in self.labels.keys() {
            if !is_label_name(k) {
                return Err(group_err(&format!("invalid label name: {k}")));
            }
        }
        for (i, r) in self.rules.iter().enumerate() {
            r.check().map_err(|message| RuleFileError::Rule {
                group: self.name.clone(),
                index: i + 1,
                name: r.name().to_string(),
                message,
            })?;
        }
        Ok(())
    }
}

impl RuleDef {
    fn check(&self) -> Result<(), String> {
        match (&self.record, &self.alert) {
            (Some(_), Some(_)) => return Err("only one of 'record' and 'alert' must be set".into()),
            (None, None) => return Err("one of 'record' or 'alert' must be set".into()),
            (Some(r), None) if r.is_empty() => return Err("field 'record' must be set".into()),
            (None, Some(a)) if a.is_empty() => return Err("field 'alert' must be set".into()),
            _ => {}
        }
        if self.expr.0.trim().is_empty() {
            return Err("field 'expr' must be set in rule".into());
        }
        strata_query_lang::promql::parse_expr(&self.expr.0)
            .map_err(|e| format!("could not parse expression: {e}"))?;
        if let Some(r) = &self.record {
            if !self.annotations.is_empty() {
                return Err("invalid field 'annotations' in recording rule".into());
            }
            if self.for_.is_some_and(|d| !d.is_zero()) {
                return Err("invalid field 'for' in recording rule".into());
            }
            if self.keep_firing_for.is_some_and(|d| !d.is_zero()) {
                return Err("invalid field 'keep_firing_for' in recording rule".into());
            }
            if r.is_empty() {
                return Err(format!("invalid recording rule name: {r}"));
            }
            // Any UTF-8 text is a name; braces are an expression put in
            // the wrong field (Prometheus 3's check).
            if r.contains(['{', '}']) {
                return Err(format!(
                    "braces present in the recording rule name; should it be in expr?: {r}"
                ));
            }
        }
        for k in self.labels.keys() {
            if !is_label_name(k) {
                return Err(format!("invalid label name: {k}"));
            }
        }
        for k in self.annotations.keys() {
            if k.is_empty() {
                return Err(format!("invalid annotation name: {k}"));
            }
        }
        if self.alert.is_some() {
            for (k, v) in self.labels.iter().chain(&self.annotations) {
                Template::parse(&v.0).map_err(|e| format!("{k}: {e}"))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
groups:
  - name: odoo
    interval: 30s
    rules:
      - record: job:http_requests:rate5m
        expr: sum by (job) (rate(http_requests_total[5m]))
        labels:
          team: erp
      - alert: PickingErrorsHigh
        expr: job:http_requests:rate5m{job="picking"} > 10
        for: 5m
        keep_firing_for: 1m
        labels:
          severity: page
        annotations:
          summary: "{{ $labels.job }} at {{ $value | humanize }} req/s"
      - record: one
        expr: 1
  - name: other
    limit: 10
    query_offset: 1m
    rules: []
"#;

    #[test]
    fn a_prometheus_rule_file_parses_with_every_field() {
        let f = RuleFile::parse(GOOD).unwrap();
        assert_eq!(f.groups.len(), 2);
        let g = &f.groups[0];
        assert_eq!(g.interval, Some(PromDuration(30_000)));
        assert_eq!(g.rules[1].for_, Some(PromDuration(300_000)));
        assert_eq!(g.rules[1].keep_firing_for, Some(PromDuration(60_000)));
        assert_eq!(g.rules[2].expr.0, "1");
        assert_eq!(f.groups[1].limit, 10);
        assert_eq!(f.groups[1].query_offset, Some(PromDuration(60_000)));
        // What the API writes back reads the same.
        assert_eq!(RuleFile::parse(&f.to_yaml()).unwrap(), f);
        assert_eq!(PromDuration(5_400_000).to_string(), "1h30m");
    }

    /// Names are UTF-8 text, as Prometheus 3 reads rule files.
    #[test]
    fn utf8_names_are_rule_names_and_labels() {
        let f = RuleFile::parse(
            "groups:\n  - name: g\n    labels: {'team.name': ops}\n    rules:\n      - record: 'http.server:rate5m'\n        expr: up\n        labels: {'service.name': api}\n",
        )
        .unwrap();
        let r = &f.groups[0].rules[0];
        assert_eq!(r.record.as_deref(), Some("http.server:rate5m"));
        assert!(r.labels.contains_key("service.name"));
    }

    #[test]
    fn what_promtool_refuses_is_refused_with_its_reason() {
        let one = |rule: &str| format!("groups:\n  - name: g\n    rules:\n      - {rule}\n");
        for (text, why) in [
            (
                "groups:\n  - name: g\n    bogus: 1\n".to_string(),
                "unknown field `bogus`",
            ),
            (
                "groups:\n  - name: g\n    rules: []\n  - name: g\n    rules: []\n".into(),
                "repeated in the same file",
            ),
            (
                "groups:\n  - name: ''\n".into(),
                "group name must not be empty",
            ),
            (one("{record: a, alert: b, expr: up}"), "only one of"),
            (one("{expr: up}"), "one of 'record' or 'alert' must be set"),
            (one("{record: a, expr: ''}"), "field 'expr' must be set"),
            (
                one("{record: a, expr: 'sum(('}"),
                "could not parse expression",
            ),
            (
                one("{record: 'a{b=\"c\"}', expr: up}"),
                "braces present in the recording rule name",
            ),
            (one("{record: a, expr: up, for: 1m}"), "invalid field 'for'"),
            (
                one("{record: a, expr: up, annotations: {x: y}}"),
                "invalid field 'annotations'",
            ),
            (
                one("{alert: A, expr: up, labels: {'': x}}"),
                "invalid label name",
            ),
            (
                one("{alert: A, expr: up, labels: {__name__: x}}"),
                "invalid label name",
            ),
            (
                one("{alert: A, expr: up, annotations: {s: '{{ $labels.x '}}"),
                "unclosed action",
            ),
            (one("{alert: A, expr: up, for: 5x}"), "not a valid duration"),
        ] {
            let e = RuleFile::parse(&text).expect_err(&text).to_string();
            assert!(e.contains(why), "{text}: {e}");
        }
    }
}
