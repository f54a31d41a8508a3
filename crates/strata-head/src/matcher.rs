//! Label matchers with Prometheus semantics.

use regex::Regex;

use crate::HeadError;

/// How a matcher compares a label's value.
#[derive(Debug, Clone)]
pub enum MatchOp {
    Equal(String),
    NotEqual(String),
    /// Fully anchored, as in PromQL.
    Regex(Regex),
    NotRegex(Regex),
}

/// `name op value`. A series without the label is treated as having the
/// empty value, so `foo=""` selects series that lack `foo`.
#[derive(Debug, Clone)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
}

impl Matcher {
    pub fn equal(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            op: MatchOp::Equal(value.into()),
        }
    }

    pub fn not_equal(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            op: MatchOp::NotEqual(value.into()),
        }
    }

    /// A regex matcher; `pattern` is anchored at both ends.
    pub fn regex(name: impl Into<String>, pattern: &str) -> Result<Self, HeadError> {
        Ok(Self {
            name: name.into(),
            op: MatchOp::Regex(anchored(pattern)?),
        })
    }

    pub fn not_regex(name: impl Into<String>, pattern: &str) -> Result<Self, HeadError> {
        Ok(Self {
            name: name.into(),
            op: MatchOp::NotRegex(anchored(pattern)?),
        })
    }

    /// Whether `value` (empty for an absent label) satisfies the matcher.
    pub fn matches(&self, value: &str) -> bool {
        match &self.op {
            MatchOp::Equal(v) => value == v,
            MatchOp::NotEqual(v) => value != v,
            MatchOp::Regex(r) => r.is_match(value),
            MatchOp::NotRegex(r) => !r.is_match(value),
        }
    }
}

fn anchored(pattern: &str) -> Result<Regex, HeadError> {
    Regex::new(&format!("^(?s:{pattern})$")).map_err(|e| HeadError::InvalidRegex {
        pattern: pattern.to_owned(),
        reason: e.to_string(),
    })
}
