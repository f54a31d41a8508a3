//! HA pairs: one replica per cluster stored, the others answered 202.

use std::time::Duration;

use super::*;

fn ha_series(cluster: Option<&str>, replica: &str, t: i64) -> Vec<u8> {
    let mut labels = vec![("__name__", "up"), ("__replica__", replica)];
    if let Some(c) = cluster {
        labels.push(("cluster", c));
    }
    labels.push(("job", "api"));
    payload(vec![series(&labels, &[(t, t as f64)])])
}

async fn stored(app: &Router, tenant: &str) -> Vec<(String, i64)> {
    let (status, json) = sql(
        app,
        Some(tenant),
        "SELECT labels['cluster'] || '/' || coalesce(labels['__replica__'], '-'), value \
         FROM samples ORDER BY timestamp",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    json["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r[0].as_str().unwrap_or("none").to_owned(),
                r[1].as_f64().unwrap_or_else(|| panic!("{r}")) as i64,
            )
        })
        .collect()
}

#[tokio::test]
async fn one_replica_per_cluster_is_stored_without_its_replica_label() {
    let mut config = ServerConfig::default();
    config.limits.tenant_defaults.accept_ha_samples = true;
    config.limits.tenant_defaults.ha_max_clusters = 2;
    config.limits.tenant_defaults.ha_failover_timeout = Duration::from_millis(300);
    config.validate().unwrap();
    let (app, state, _) = app_with(config).await;

    // Replica a writes first and is elected; b's write is a 202 (senders
    // do not retry it) and stores nothing.
    let (s, b) = send(
        &app,
        write_req(Some("acme"), ha_series(Some("eu"), "a", 1_000)),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    let (s, b) = send(
        &app,
        write_req(Some("acme"), ha_series(Some("eu"), "b", 1_001)),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    assert_eq!(
        b,
        "replicas did not match, rejecting sample: replica=b, elected=a"
    );
    let deduped = state
        .metrics
        .ha_deduped
        .get_or_create(&vec![
            ("tenant", "acme".to_owned()),
            ("cluster", "eu".to_owned()),
        ])
        .get();
    assert_eq!(deduped, 1);
    // Stored with the cluster label, without the replica label.
    assert_eq!(stored(&app, "acme").await, vec![("eu/-".to_owned(), 1_000)]);

    // a goes quiet past the failover timeout: b takes over, a is refused.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (s, _) = send(
        &app,
        write_req(Some("acme"), ha_series(Some("eu"), "b", 2_000)),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = send(
        &app,
        write_req(Some("acme"), ha_series(Some("eu"), "a", 2_001)),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    // One series whichever replica wrote it.
    assert_eq!(
        stored(&app, "acme").await,
        vec![("eu/-".to_owned(), 1_000), ("eu/-".to_owned(), 2_000)]
    );

    // Without a cluster label a write is not deduplicated: stored as sent.
    let (s, _) = send(&app, write_req(Some("solo"), ha_series(None, "x", 5))).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, json) = sql(
        &app,
        Some("solo"),
        "SELECT labels['__replica__'] FROM samples",
    )
    .await;
    assert_eq!(json["rows"][0][0], "x");

    // A second cluster fits the bound of 2; a third is a 400 naming it.
    let (s, _) = send(
        &app,
        write_req(Some("acme"), ha_series(Some("us"), "a", 3_000)),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, b) = send(
        &app,
        write_req(Some("acme"), ha_series(Some("ap"), "a", 3_000)),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(b.contains("ha_max_clusters: 2"), "{b}");
    // Another tenant elects on its own.
    let (s, _) = send(
        &app,
        write_req(Some("other"), ha_series(Some("eu"), "b", 1_000)),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
}

#[test]
fn ha_labels_must_be_usable() {
    for (cluster, replica) in [
        ("__name__", "__replica__"),
        ("cluster", "cluster"),
        ("", "r"),
        ("c", "1x"),
    ] {
        let mut config = ServerConfig::default();
        config.limits.tenant_defaults.ha_cluster_label = cluster.to_owned();
        config.limits.tenant_defaults.ha_replica_label = replica.to_owned();
        assert!(config.validate().is_err(), "{cluster} {replica}");
    }
}
