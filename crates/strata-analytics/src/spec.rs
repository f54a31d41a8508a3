//! The analytics spec file: `[[slo]]`, `[[capacity]]` and `[[neighbours]]`
//! entries in one TOML file, checked as a whole (a broken entry refuses the
//! file, never half of it). What the three kinds share is in
//! [`crate::common`].

use serde::Deserialize;

use crate::capacity::CapacitySpec;
pub use crate::common::{EvalError, Limit, SpecError, window_text};
use crate::neighbours::NeighbourSpec;
use crate::slo::SloSpec;

/// The spec file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpecFile {
    #[serde(default)]
    pub slo: Vec<SloSpec>,
    #[serde(default)]
    pub capacity: Vec<CapacitySpec>,
    #[serde(default)]
    pub neighbours: Vec<NeighbourSpec>,
}

impl SpecFile {
    /// Parses and checks a spec file's text.
    pub fn parse(text: &str) -> Result<Self, SpecError> {
        let f: SpecFile = toml::from_str(text).map_err(|e| SpecError::Parse(e.to_string()))?;
        let mut seen = std::collections::HashSet::new();
        let names = f
            .slo
            .iter()
            .map(|s| ("SLO", &s.tenant, &s.name))
            .chain(f.capacity.iter().map(|s| ("capacity", &s.tenant, &s.name)))
            .chain(
                f.neighbours
                    .iter()
                    .map(|s| ("neighbours", &s.tenant, &s.name)),
            );
        for (kind, tenant, name) in names {
            if name.is_empty() {
                return Err(SpecError::invalid(kind, name, "name is empty"));
            }
            if !seen.insert((kind, tenant, name)) {
                return Err(SpecError::invalid(
                    kind,
                    name,
                    format!("defined twice for tenant {tenant}"),
                ));
            }
        }
        for s in &f.slo {
            s.check()?;
        }
        for s in &f.capacity {
            s.check()?;
        }
        for s in &f.neighbours {
            s.check()?;
        }
        Ok(f)
    }

    /// Reads and checks a spec file.
    pub fn load(path: &std::path::Path) -> Result<Self, SpecError> {
        let text = std::fs::read_to_string(path).map_err(|e| SpecError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Self::parse(&text)
    }

    /// The entries of one kind of `tenant`.
    pub fn of<'a, T: Entry>(&'a self, tenant: &'a str) -> impl Iterator<Item = &'a T> + 'a {
        T::all(self).iter().filter(move |s| s.tenant() == tenant)
    }

    /// `tenant`'s entry of one kind named `name`.
    pub fn named<T: Entry>(&self, tenant: &str, name: &str) -> Option<&T> {
        T::all(self)
            .iter()
            .find(|s| s.tenant() == tenant && s.name() == name)
    }
}

/// One kind of entry of the spec file.
pub trait Entry: Clone + Send + Sync + 'static {
    /// How errors and the API name the kind ("SLO", "capacity spec").
    const KIND: &'static str;
    fn all(file: &SpecFile) -> &[Self];
    fn name(&self) -> &str;
    fn tenant(&self) -> &str;
}

macro_rules! entry {
    ($t:ty, $kind:literal, $field:ident) => {
        impl Entry for $t {
            const KIND: &'static str = $kind;
            fn all(file: &SpecFile) -> &[Self] {
                &file.$field
            }
            fn name(&self) -> &str {
                &self.name
            }
            fn tenant(&self) -> &str {
                &self.tenant
            }
        }
    };
}

entry!(SloSpec, "SLO", slo);
entry!(CapacitySpec, "capacity spec", capacity);
entry!(NeighbourSpec, "neighbours spec", neighbours);
