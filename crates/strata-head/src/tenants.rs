//! One map of per-tenant parts, shared by the metric head ([`crate::Head`])
//! and the log head ([`crate::LogHead`]): looked up under a read lock,
//! created on a tenant's first write, taken out whole or per tenant when
//! flushed.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;
use strata_types::TenantId;

/// A tenant's part of a head.
pub trait TenantPart: Send + Sync {
    /// An empty part for `tenant`.
    fn new_for(tenant: TenantId) -> Self;
    /// The tenant it belongs to.
    fn tenant_id(&self) -> &TenantId;
}

/// Every tenant's part `T`.
#[derive(Debug)]
pub(crate) struct Tenants<T> {
    map: RwLock<HashMap<TenantId, Arc<T>>>,
}

impl<T> Default for Tenants<T> {
    fn default() -> Self {
        Tenants {
            map: RwLock::new(HashMap::new()),
        }
    }
}

impl<T: TenantPart> Tenants<T> {
    /// `tenant`'s part, if it has one.
    pub fn get(&self, tenant: &TenantId) -> Option<Arc<T>> {
        self.map.read().get(tenant).cloned()
    }

    /// `tenant`'s part, created empty if it has none.
    pub fn get_or_create(&self, tenant: &TenantId) -> Arc<T> {
        if let Some(t) = self.map.read().get(tenant) {
            return Arc::clone(t);
        }
        Arc::clone(
            self.map
                .write()
                .entry(tenant.clone())
                .or_insert_with(|| Arc::new(T::new_for(tenant.clone()))),
        )
    }

    /// Takes every tenant's part out (sorted by tenant), leaving none.
    pub fn take_all(&self) -> Vec<Arc<T>> {
        let mut taken: Vec<_> = std::mem::take(&mut *self.map.write())
            .into_values()
            .collect();
        taken.sort_by(|a, b| a.tenant_id().cmp(b.tenant_id()));
        taken
    }

    /// Takes `tenant`'s part out; the others stay.
    pub fn take(&self, tenant: &TenantId) -> Option<Arc<T>> {
        self.map.write().remove(tenant)
    }

    /// The sum of `f` over every part.
    pub fn sum(&self, f: impl Fn(&T) -> u64) -> u64 {
        self.map.read().values().map(|t| f(t)).sum()
    }

    /// Every tenant with a part, sorted.
    pub fn ids(&self) -> Vec<TenantId> {
        let mut v: Vec<_> = self.map.read().keys().cloned().collect();
        v.sort();
        v
    }
}
