//! A label set as LogQL evaluates it, and the labels its pipeline marks
//! failures with.

use std::collections::BTreeMap;

/// A label set, sorted by name.
pub type Labels = BTreeMap<String, String>;

pub const ERROR_LABEL: &str = "__error__";
pub const ERROR_DETAILS: &str = "__error_details__";
