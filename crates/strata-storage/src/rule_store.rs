//! The rule groups tenants manage through the ruler API, one object per
//! group under the tenant's prefix ([`RuleGroupPath`]). A group is
//! configuration, replaced in place when edited (unlike data files, which
//! are written once); the server checks a group before it is stored.

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use strata_types::TenantId;

use crate::paths::RuleGroupPath;
use crate::{ObjectStoreHandle, StorageError};

/// Stores (or replaces) one group's YAML.
pub async fn put(
    store: &ObjectStoreHandle,
    path: &RuleGroupPath,
    yaml: Bytes,
) -> Result<(), StorageError> {
    store
        .store()
        .put(&store.path(&path.relative()), PutPayload::from(yaml))
        .await?;
    Ok(())
}

/// Deletes one group; whether it was there.
pub async fn delete(store: &ObjectStoreHandle, path: &RuleGroupPath) -> Result<bool, StorageError> {
    // Stores answer a delete of nothing with success: ask first.
    let key = store.path(&path.relative());
    match store.store().head(&key).await {
        Ok(_) => {}
        Err(object_store::Error::NotFound { .. }) => return Ok(false),
        Err(e) => return Err(e.into()),
    }
    store.store().delete(&key).await?;
    Ok(true)
}

/// What identifies one stored version of a group: size, time, ETag.
pub type Version = (u64, chrono::DateTime<chrono::Utc>, Option<String>);

/// Every group `tenant` stored and its version, without reading them.
pub async fn versions(
    store: &ObjectStoreHandle,
    tenant: &TenantId,
) -> Result<Vec<(RuleGroupPath, Version)>, StorageError> {
    let prefix = store.path(&RuleGroupPath::prefix(tenant));
    let metas: Vec<object_store::ObjectMeta> =
        store.store().list(Some(&prefix)).try_collect().await?;
    let base = store.base().as_ref();
    let mut out: Vec<(RuleGroupPath, Version)> = metas
        .into_iter()
        .filter_map(|m| {
            let key = m.location.as_ref();
            let relative = key
                .strip_prefix(base)
                .unwrap_or(key)
                .trim_start_matches('/');
            let path = RuleGroupPath::parse(relative)?;
            Some((path, (m.size, m.last_modified, m.e_tag)))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// One group's YAML; `None` when it is not there.
pub async fn get(
    store: &ObjectStoreHandle,
    path: &RuleGroupPath,
) -> Result<Option<Bytes>, StorageError> {
    match store.store().get(&store.path(&path.relative())).await {
        Ok(got) => Ok(Some(got.bytes().await?)),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Every group `tenant` stored, with its YAML, by namespace and group.
pub async fn list(
    store: &ObjectStoreHandle,
    tenant: &TenantId,
) -> Result<Vec<(RuleGroupPath, Bytes)>, StorageError> {
    let mut out = Vec::new();
    for (path, _) in versions(store, tenant).await? {
        // (Deleted between the listing and the read: left out.)
        if let Some(bytes) = get(store, &path).await? {
            out.push((path, bytes));
        }
    }
    Ok(out)
}

/// Every tenant with a directory in the store (those with stored groups
/// among them).
pub async fn tenants(store: &ObjectStoreHandle) -> Result<Vec<TenantId>, StorageError> {
    crate::storage::list_tenants(store).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn groups_are_stored_listed_replaced_and_deleted_per_tenant() {
        let store = ObjectStoreHandle::in_memory().unwrap();
        let acme = TenantId::try_new("acme").unwrap();
        let other = TenantId::try_new("other").unwrap();
        let path = |t: &TenantId, ns: &str, g: &str| RuleGroupPath {
            tenant: t.clone(),
            namespace: ns.into(),
            group: g.into(),
        };
        put(&store, &path(&acme, "odoo", "b"), Bytes::from("name: b\n"))
            .await
            .unwrap();
        put(&store, &path(&acme, "odoo", "a"), Bytes::from("name: a\n"))
            .await
            .unwrap();
        put(
            &store,
            &path(&acme, "kube rules", "a"),
            Bytes::from("name: a\n"),
        )
        .await
        .unwrap();
        put(&store, &path(&other, "odoo", "a"), Bytes::from("name: x\n"))
            .await
            .unwrap();
        put(&store, &path(&acme, "odoo", "a"), Bytes::from("name: a2\n"))
            .await
            .unwrap();
        let got = list(&store, &acme).await.unwrap();
        let names: Vec<(String, String, Bytes)> = got
            .into_iter()
            .map(|(p, b)| (p.namespace, p.group, b))
            .collect();
        assert_eq!(
            names,
            [
                ("kube rules".into(), "a".into(), Bytes::from("name: a\n")),
                ("odoo".into(), "a".into(), Bytes::from("name: a2\n")),
                ("odoo".into(), "b".into(), Bytes::from("name: b\n")),
            ]
        );
        assert!(delete(&store, &path(&acme, "odoo", "b")).await.unwrap());
        assert!(!delete(&store, &path(&acme, "odoo", "b")).await.unwrap());
        assert_eq!(list(&store, &acme).await.unwrap().len(), 2);
        assert_eq!(list(&store, &other).await.unwrap().len(), 1);
        let v = versions(&store, &acme).await.unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].1.0, "name: a\n".len() as u64);
        assert_eq!(tenants(&store).await.unwrap(), [acme, other]);
    }
}
