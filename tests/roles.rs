//! The scale-out roles as separate processes on one object store (Garage
//! when the suite has it, else a local directory): three ingesters taking
//! writes into their own WALs and flushing into one tenant's shared table,
//! two queriers mirroring the ingesters' heads, two compactors that both
//! own the tenant racing on it. Every acknowledged sample is seen through
//! either querier exactly once, flushed or not, through flushes, merges and
//! an ingester killed with SIGKILL (which loses nothing it acknowledged);
//! writes sent to a querier or compactor are refused with a retryable 503
//! naming the role.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use common::{Server, payload, series};

const TENANT: &str = "logistics";

fn config(dir: &Path) -> std::path::PathBuf {
    let var = |k: &str| std::env::var(k).ok();
    let store = match var("STRATA_TEST_S3_URL") {
        Some(url) => format!(
            r#"[object_store]
url = "{url}/roles-{prefix}"
[object_store.options]
aws_endpoint = "{endpoint}"
aws_region = "{region}"
aws_access_key_id = "{key}"
aws_secret_access_key = "{secret}"
aws_allow_http = "true"
aws_virtual_hosted_style_request = "false"
"#,
            prefix = uuid::Uuid::new_v4(),
            endpoint = var("STRATA_TEST_S3_ENDPOINT").unwrap(),
            region = var("STRATA_TEST_S3_REGION").unwrap(),
            key = var("STRATA_TEST_S3_KEY_ID").unwrap(),
            secret = var("STRATA_TEST_S3_SECRET").unwrap(),
        ),
        None => {
            assert!(
                var("STRATA_E2E_REQUIRE_S3").as_deref() != Some("1"),
                "STRATA_E2E_REQUIRE_S3=1 but STRATA_TEST_S3_URL is not set"
            );
            format!(
                "[object_store]\nurl = \"file://{}\"\n",
                dir.join("objects").display()
            )
        }
    };
    let path = dir.join("strata.toml");
    std::fs::write(
        &path,
        format!(
            r#"{store}
[storage]
flush_interval = "1h"
compaction_interval = "1s"
compaction_delay = "0s"
[node]
refresh_interval = "1s"
mirror_retire_after = "5s"
"#
        ),
    )
    .unwrap();
    path
}

fn start(dir: &Path, config: &Path, role: &str, id: &str) -> Server {
    node(None, dir, config, role, id, &[])
}

/// A node of `role` named `id` (its data under `dir/id`), at `port` when
/// given, with the flags `extra`.
fn node(
    port: Option<u16>,
    dir: &Path,
    config: &Path,
    role: &str,
    id: &str,
    extra: &[&str],
) -> Server {
    let mut args = vec![
        "--config",
        config.to_str().unwrap(),
        "--role",
        role,
        "--node-id",
        id,
    ];
    args.extend_from_slice(extra);
    match port {
        Some(port) => Server::start_at(port, &dir.join(id), &args, &[]),
        None => Server::start(&dir.join(id), &args),
    }
}

/// `n` samples a second apart from `from_s` seconds after `base_ms`, of
/// the series written through ingester `i`.
fn write(server: &Server, i: usize, base_ms: i64, from_s: i64, n: i64) -> u16 {
    let samples: Vec<(i64, f64)> = (from_s..from_s + n)
        .map(|s| (base_ms + s * 1000, s as f64))
        .collect();
    let body = payload(vec![series(
        &[("__name__", "roles_up"), ("ingester", &i.to_string())],
        &samples,
    )]);
    server.write(Some(TENANT), &body).0
}

fn flush(server: &Server) {
    let (status, body) = server.post("/api/v1/admin/flush").unwrap();
    assert_eq!(status, 200, "{body}");
}

/// Per ingester label: (rows, distinct timestamps), as the querier sees them.
fn counts(querier: &Server) -> Vec<(String, i64, i64)> {
    counts_at(&querier.url(""))
}

/// [`counts`] at a bare address (a thread of its own has no `Server`).
fn counts_at(url: &str) -> Vec<(String, i64, i64)> {
    let mut resp = common::agent()
        .post(&format!("{url}/api/v1/sql"))
        .header("Content-Type", "application/json")
        .header("X-Scope-OrgID", TENANT)
        .send(
            serde_json::json!({"query": "SELECT labels['ingester'] AS i, count(*) AS n, \
                count(DISTINCT timestamp) AS d FROM samples WHERE metric = 'roles_up' \
                GROUP BY 1 ORDER BY 1"})
            .to_string(),
        )
        .unwrap();
    let body: serde_json::Value =
        serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
    body["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r[0].as_str().unwrap().to_owned(),
                r[1].as_i64().unwrap(),
                r[2].as_i64().unwrap(),
            )
        })
        .collect()
}

/// Threads querying each querier until [`Watchers::finish`], asserting
/// that no ingester's count ever exceeds what it acknowledged (nothing
/// twice) nor ever drops (a sample moving from a mirrored head into a
/// file, or a mirror replaced, is never missing in between).
struct Watchers {
    /// What each ingester acknowledged (a write is counted before it is
    /// sent, so the ceiling holds while it is in flight).
    acked: Arc<[AtomicI64; 3]>,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<usize>>,
}

impl Watchers {
    fn start(queriers: &[Server], acked: [i64; 3]) -> Self {
        let acked = Arc::new(acked.map(AtomicI64::new));
        let stop = Arc::new(AtomicBool::new(false));
        let threads = queriers
            .iter()
            .map(|q| {
                let (url, acked, stop) = (q.url(""), Arc::clone(&acked), Arc::clone(&stop));
                std::thread::spawn(move || {
                    let mut last = [0i64; 3];
                    let mut queries = 0;
                    while !stop.load(Ordering::SeqCst) {
                        for (i, n, d) in counts_at(&url) {
                            let i: usize = i.parse().unwrap();
                            assert_eq!(n, d, "ingester {i}: a sample counted twice");
                            let ceiling = acked[i].load(Ordering::SeqCst);
                            assert!(
                                n <= ceiling,
                                "ingester {i}: {n} rows, {ceiling} acknowledged"
                            );
                            assert!(n >= last[i], "ingester {i}: {n} rows after {}", last[i]);
                            last[i] = n;
                        }
                        queries += 1;
                    }
                    queries
                })
            })
            .collect();
        Self {
            acked,
            stop,
            threads,
        }
    }

    fn acked(&self, ingester: usize, samples: i64) {
        self.acked[ingester].fetch_add(samples, Ordering::SeqCst);
    }

    fn finish(self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads {
            assert!(t.join().unwrap() > 0, "the watcher queried");
        }
    }
}

/// The tenant's entry of `server`'s `/api/v1/status/tenants` (null when
/// it has none).
fn tenant_status(server: &Server) -> serde_json::Value {
    let (status, body) = server.get_json(TENANT, "/api/v1/status/tenants");
    assert_eq!(status, 200, "{body}");
    body["data"]["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tenant"] == TENANT)
        .cloned()
        .unwrap_or_default()
}

/// Files of the tenant's metrics table by level, as `server` sees them.
fn levels(server: &Server) -> serde_json::Value {
    tenant_status(server)["metrics"]["levels"].clone()
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn ingesters_querier_and_racing_compactors_share_one_table() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    // Three hours ago, on the hour: a closed hour the compactors merge.
    let now_ms = chrono::Utc::now().timestamp_millis();
    let base_ms = (now_ms - 3 * 3_600_000) / 3_600_000 * 3_600_000;
    let per = |n: [i64; 3]| -> Vec<(String, i64, i64)> {
        (0..3).map(|i| (i.to_string(), n[i], n[i])).collect()
    };

    let mut ingesters: Vec<Server> = (0..3)
        .map(|i| {
            start(
                dir.path(),
                &config,
                "ingester",
                &format!("strata-ingester-{i}"),
            )
        })
        .collect();
    // Two queriers, each mirroring every ingester's head.
    let urls: Vec<String> = ingesters.iter().map(|i| i.url("")).collect();
    let urls = urls.join(",");
    let queriers: Vec<Server> = (0..2)
        .map(|q| {
            let id = format!("strata-querier-{q}");
            node(
                None,
                dir.path(),
                &config,
                "querier",
                &id,
                &["--ingesters", &urls],
            )
        })
        .collect();
    let (querier, mirroring) = (&queriers[0], &queriers[1]);

    // Unflushed writes: either querier sees them (from the heads).
    for (i, ingester) in ingesters.iter().enumerate() {
        assert_eq!(write(ingester, i, base_ms, 1000, 10), 204);
    }
    for q in &queriers {
        wait_for("a querier to see unflushed writes", || {
            counts(q) == per([10, 10, 10])
        });
    }

    // Two rounds of writes to every ingester, each flushed: six flush
    // files from three writers in one table; a watcher queries the
    // mirroring querier all along.
    let watchers = Watchers::start(&queriers, [10, 10, 10]);
    for round in 0..2 {
        for (i, ingester) in ingesters.iter().enumerate() {
            watchers.acked(i, 100);
            assert_eq!(write(ingester, i, base_ms, round * 100, 100), 204);
        }
        for ingester in &ingesters {
            flush(ingester);
        }
    }
    // Through the flushes neither querier ever counts a sample twice nor
    // misses one (the watchers), and both end exact.
    for q in &queriers {
        wait_for("every flush", || counts(q) == per([210, 210, 210]));
    }
    watchers.finish();

    // Neither a querier nor a compactor takes writes: 503, retried by
    // senders, naming the role.
    let (status, body) = querier.write(
        Some(TENANT),
        &payload(vec![series(&[("__name__", "x")], &[(now_ms, 1.0)])]),
    );
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("querier"), "{body}");

    // An ingester acknowledges more, then dies without flushing: its WAL
    // has them, and after a restart they are flushed once. Meanwhile the
    // mirror keeps them visible.
    assert_eq!(write(&ingesters[1], 1, base_ms, 200, 50), 204);
    wait_for("the mirror to hold the unflushed write", || {
        counts(mirroring) == per([210, 260, 210])
    });
    let id = "strata-ingester-1";
    let port: u16 = ingesters[1]
        .url("")
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    ingesters.remove(1).kill();
    assert_eq!(counts(mirroring), per([210, 260, 210]));
    // Back at the same address, as a StatefulSet pod comes back.
    let restarted = node(Some(port), dir.path(), &config, "ingester", id, &[]);
    flush(&restarted);
    ingesters.insert(1, restarted);
    for _ in 0..20 {
        for q in &queriers {
            assert_eq!(counts(q), per([210, 260, 210]));
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    // Two compactors that both own the tenant race on its table while an
    // ingester flushes more; the table ends merged, every sample once.
    let c0 = start(dir.path(), &config, "compactor", "strata-compactor-0");
    let c1 = start(dir.path(), &config, "compactor", "strata-compactor-0b0");
    let (status, body) = c0.write(
        Some(TENANT),
        &payload(vec![series(&[("__name__", "x")], &[(now_ms, 1.0)])]),
    );
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("compactor"), "{body}");
    let watchers = Watchers::start(&queriers, [210, 260, 310]);
    assert_eq!(write(&ingesters[2], 2, base_ms, 200, 100), 204);
    flush(&ingesters[2]);
    // The hour is closed; its day too when the test runs before 03:00
    // UTC, and then the merge goes straight to a day file.
    wait_for("the compactors to merge every flush file", || {
        let l = levels(querier);
        l.get("flush").is_none() && (l.get("hour").is_some() || l.get("day").is_some())
    });
    for q in &queriers {
        wait_for("a querier after the merges", || {
            counts(q) == per([210, 260, 310])
        });
    }
    watchers.finish();

    // A write acknowledged a moment ago is in the mirroring querier's
    // answers.
    assert_eq!(write(&ingesters[0], 0, base_ms, 2000, 1), 204);
    wait_for("a fresh write", || {
        counts(mirroring) == per([211, 260, 310])
    });

    // An ingester flushes and leaves for good (scaled down): once the
    // queriers give up on it, what it flushed stays visible throughout.
    flush(&ingesters[0]);
    for q in &queriers {
        wait_for("the last flush", || counts(q) == per([211, 260, 310]));
    }
    let watchers = Watchers::start(&queriers, [211, 260, 310]);
    ingesters.remove(0).terminate();
    std::thread::sleep(Duration::from_secs(8));
    watchers.finish();
    for q in &queriers {
        assert_eq!(counts(q), per([211, 260, 310]));
        assert!(
            q.log().contains("its mirrored head is dropped"),
            "{}",
            q.log()
        );
    }

    // PromQL through the other querier agrees.
    let at = (base_ms + 3_600_000) / 1000;
    let (status, body) = querier.get_json(
        TENANT,
        &format!("/api/v1/query?query=sum(count_over_time(roles_up[2h]))&time={at}"),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["result"][0]["value"][1], "781", "{body}");
    drop((c0, c1));
}

/// `server`'s live series of the tenant, as its series limit counts them.
fn live_series(server: &Server) -> Option<i64> {
    tenant_status(server)["live_series"].as_i64()
}

/// The ingesters whose heads the querier `server` mirrors.
fn mirrored(server: &Server) -> Option<i64> {
    let (_, metrics) = server.get("/metrics");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("strata_mirrored_ingesters "))
        .and_then(|v| v.trim().parse().ok())
}

/// The gauge of ingesters `server` splits its rate limits across.
fn limit_ingesters(server: &Server) -> Option<i64> {
    let (_, metrics) = server.get("/metrics");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("strata_limit_ingesters "))
        .and_then(|v| v.trim().parse().ok())
}

/// `n` new series `g0`…, one sample each at `at_ms`, written through
/// `server`.
fn write_series(server: &Server, group: &str, n: usize, at_ms: i64) -> (u16, String) {
    let body = payload(
        (0..n)
            .map(|i| {
                series(
                    &[("__name__", "limited"), ("s", &format!("{group}{i}"))],
                    &[(at_ms, 1.0)],
                )
            })
            .collect(),
    );
    server.write(Some(TENANT), &body)
}

#[test]
fn ingesters_hold_a_tenants_limits_together() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let mut text = std::fs::read_to_string(&config).unwrap();
    // 300 samples/s over three ingesters: 100 on each.
    text.push_str(
        "[limits.tenant_defaults]\nmax_series = 30\ningest_rate = 300.0\ningest_burst = 300\n",
    );
    std::fs::write(&config, text).unwrap();
    let ports = common::free_ports::<3>();
    let urls: Vec<String> = ports
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}"))
        .collect();
    let urls = urls.join(",");
    let start_ingester = |i: usize| {
        let id = format!("strata-ingester-{i}");
        // Its own address among them, as in a StatefulSet.
        let peers = ["--ingesters", urls.as_str()];
        node(Some(ports[i]), dir.path(), &config, "ingester", &id, &peers)
    };
    let mut ingesters: Vec<Server> = (0..3).map(start_ingester).collect();
    for ingester in &ingesters {
        wait_for("every ingester to hear its two peers", || {
            limit_ingesters(ingester) == Some(3)
        });
    }
    // A querier mirroring the three heads, subscribed before the writes
    // (a subscription flushes the ingester's head: what it held would be
    // in files, not in the heads the cardinality API counts). Ready does
    // not wait for the subscriptions: a loaded machine takes seconds.
    let querier = node(
        None,
        dir.path(),
        &config,
        "querier",
        "strata-querier-0",
        &["--ingesters", &urls],
    );
    wait_for("the querier to mirror the three ingesters", || {
        mirrored(&querier) == Some(3)
    });
    let now_ms = chrono::Utc::now().timestamp_millis();

    // Ten new series through each: thirty, the limit, counted by each.
    for (i, ingester) in ingesters.iter().enumerate() {
        let (status, body) = write_series(ingester, &format!("g{i}-"), 10, now_ms);
        assert_eq!(status, 204, "{body}");
    }
    for ingester in &ingesters {
        wait_for("every ingester to count the tenant's thirty series", || {
            live_series(ingester) == Some(30)
        });
    }
    // One more, through any of them, passes the tenant's limit.
    for ingester in &ingesters {
        let (status, body) = write_series(ingester, "new-", 1, now_ms + 1000);
        assert_eq!(status, 429, "{body}");
        assert!(
            body.contains("30 live series") && body.contains("max_series"),
            "{body}"
        );
    }
    // A series is one series wherever it is written.
    let (status, body) = write_series(&ingesters[2], "g0-", 10, now_ms + 1000);
    assert_eq!(status, 204, "{body}");
    // The cardinality API through the querier counts the series of the
    // three mirrored heads, ten of them in two heads, once each.
    wait_for("the querier's cardinality over the mirrored heads", || {
        let (_, v) = querier.get_json(TENANT, "/api/v1/cardinality/label_values?label_names[]=s");
        v["series_count_total"] == 30 && v["labels"][0]["label_values_count"] == 30
    });
    let (_, v) = querier.get_json(TENANT, "/api/v1/cardinality/label_names");
    let s = v["cardinality"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["label_name"] == "s")
        .cloned();
    assert_eq!(
        s,
        Some(serde_json::json!({"label_name": "s", "label_values_count": 30, "series_count": 30})),
        "{v}"
    );
    let t = tenant_status(&querier);
    assert_eq!(t["head_series"], 30, "{t}");
    // An ingester's own head: the twenty written through it.
    let (_, v) = ingesters[2].get_json(TENANT, "/api/v1/cardinality/label_values?label_names[]=s");
    assert_eq!(v["series_count_total"], 20, "{v}");

    // The rate is split: 150 samples pass the tenant's 300/s but not one
    // ingester's 100.
    let samples: Vec<(i64, f64)> = (0..150).map(|s| (now_ms + 2000 + s, 1.0)).collect();
    let burst = payload(vec![series(
        &[("__name__", "limited"), ("s", "g1-0")],
        &samples,
    )]);
    let (status, body) = ingesters[1].write(Some(TENANT), &burst);
    assert_eq!(status, 429, "{body}");
    assert!(
        body.contains("100 samples/s (burst 100) on each of 3 ingesters"),
        "{body}"
    );

    // An ingester killed: its peers split the rate between the two left;
    // back (its WAL replayed, its peers' series told again), it still
    // counts the tenant's thirty and refuses a thirty-first.
    ingesters.remove(2).kill();
    for ingester in &ingesters {
        wait_for("the two left to split the rate", || {
            limit_ingesters(ingester) == Some(2)
        });
    }
    let back = start_ingester(2);
    wait_for("the restarted ingester to hear its peers", || {
        limit_ingesters(&back) == Some(3)
    });
    // It took no new series before both peers had told theirs.
    wait_for("the restarted ingester to hear what its peers hold", || {
        back.log().contains("series limits settled")
    });
    // A write of live series builds its set (WAL, files, peers).
    let (status, body) = write_series(&back, "g2-", 10, now_ms + 3000);
    assert_eq!(status, 204, "{body}");
    wait_for("the restarted ingester to count thirty", || {
        live_series(&back) == Some(30)
    });
    let (status, body) = write_series(&back, "new-", 1, now_ms + 3000);
    assert_eq!(status, 429, "{body}");
}

/// `query` through `server` for `tenant` at now: each series' labels and
/// value.
fn instant(server: &Server, tenant: &str, query: &str) -> Vec<(serde_json::Value, f64)> {
    let path = format!("/api/v1/query?query={}", common::escape(query));
    let (status, v) = server.get_json(tenant, &path);
    assert_eq!(status, 200, "{v}");
    v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let value = r["value"][1].as_str().unwrap().parse().unwrap();
            (r["metric"].clone(), value)
        })
        .collect()
}

const RULES: &str = r#"groups:
  - name: roles
    interval: 1s
    rules:
      - record: job:roles_up:sum
        expr: sum(roles_up)
      - alert: RolesUp
        expr: job:roles_up:sum > 10
        labels:
          severity: page
"#;

/// Rules and SLOs in the split roles: the compactor owning the tenant
/// evaluates them over its mirrors of every ingester's head and writes the
/// results through an ingester, so the queriers see them like any write;
/// the other compactor leaves the tenant alone; a querier answers
/// `/api/v1/rules` and `/api/v1/alerts` from the compactors.
#[test]
fn the_owning_compactor_evaluates_a_tenants_rules_and_slos() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(rules.join(TENANT)).unwrap();
    std::fs::write(rules.join(TENANT).join("roles.yaml"), RULES).unwrap();
    let slo = dir.path().join("slo.toml");
    std::fs::write(
        &slo,
        format!(
            "[[slo]]\ntenant = \"{TENANT}\"\nname = \"up\"\nobjective = 0.99\nwindow = \"1h\"\ngood = 'sum(count_over_time(roles_up[$window]))'\ntotal = 'sum(count_over_time(roles_up[$window]))'\n"
        ),
    )
    .unwrap();
    let mut text = std::fs::read_to_string(&config).unwrap();
    text = text.replace("[node]\n", "[node]\ncompactor_replicas = 2\n");
    text.push_str(&format!(
        // The store is read at start and when told: a group posted
        // later reaches the compactor only by the querier telling it.
        "[rules]\ndirectory = {:?}\npoll_interval = \"200ms\"\nstore_poll_interval = \"1h\"\n[slo]\nfile = {:?}\nevaluation_interval = \"1s\"\n",
        rules.display(),
        slo.display()
    ));
    std::fs::write(&config, text).unwrap();

    let ports = common::free_ports::<4>();
    let url = |p: u16| format!("http://127.0.0.1:{p}");
    let ingester_urls = format!("{},{}", url(ports[0]), url(ports[1]));
    let compactor_urls = format!("{},{}", url(ports[2]), url(ports[3]));
    let at = |port: u16, role: &str, id: &str, extra: &[&str]| {
        node(Some(port), dir.path(), &config, role, id, extra)
    };
    let ingesters: Vec<Server> = (0..2)
        .map(|i| at(ports[i], "ingester", &format!("strata-ingester-{i}"), &[]))
        .collect();
    let mut compactors: Vec<Server> = (0..2)
        .map(|i| {
            at(
                ports[2 + i],
                "compactor",
                &format!("strata-compactor-{i}"),
                &["--ingesters", &ingester_urls],
            )
        })
        .collect();
    let querier = node(
        None,
        dir.path(),
        &config,
        "querier",
        "strata-querier-0",
        &[
            "--ingesters",
            &ingester_urls,
            "--compactors",
            &compactor_urls,
        ],
    );

    // One series through each ingester, never flushed: only the heads
    // hold them.
    let now_ms = chrono::Utc::now().timestamp_millis();
    for (i, ingester) in ingesters.iter().enumerate() {
        let body = payload(vec![series(
            &[("__name__", "roles_up"), ("ingester", &i.to_string())],
            &[(now_ms, 5.0 + 2.0 * i as f64)],
        )]);
        let (status, body) = ingester.write(Some(TENANT), &body);
        assert_eq!(status, 204, "{body}");
    }
    // The recorded sum covers both heads, and comes back through an
    // ingester to the querier's mirrors.
    wait_for("the recorded sum of both heads through the querier", || {
        instant(&querier, TENANT, "job:roles_up:sum")
            .iter()
            .any(|(_, v)| *v == 12.0)
    });
    wait_for("the alert in ALERTS through the querier", || {
        instant(
            &querier,
            TENANT,
            "ALERTS{alertname=\"RolesUp\",alertstate=\"firing\"}",
        )
        .len()
            == 1
    });
    wait_for("the SLO's series through the querier", || {
        instant(&querier, TENANT, "strata_slo_sli{slo=\"up\"}")
            .iter()
            .any(|(_, v)| *v == 1.0)
    });
    let objective = instant(&querier, TENANT, "strata_slo_objective{slo=\"up\"}");
    assert_eq!(objective.len(), 1, "{objective:?}");
    assert_eq!(objective[0].1, 0.99);

    // One compactor evaluates the tenant; the other has no group of it.
    let groups = |server: &Server| {
        let (_, v) = server.get_json(TENANT, "/api/v1/rules");
        v["data"]["groups"].as_array().unwrap().len()
    };
    let owned: Vec<usize> = compactors.iter().map(groups).collect();
    assert_eq!(owned.iter().sum::<usize>(), 1, "{owned:?}");
    let evaluator = owned.iter().position(|n| *n == 1).unwrap();
    // Its writes went through the ingesters.
    let log = compactors[evaluator].log();
    assert!(
        !log.contains("not written") && !log.contains("not recorded"),
        "{log}"
    );

    // The querier answers the rules API from the compactors, once each.
    let (status, v) = querier.get_json(TENANT, "/api/v1/rules");
    assert_eq!(status, 200, "{v}");
    assert!(v.get("warnings").is_none(), "{v}");
    let g = &v["data"]["groups"];
    assert_eq!(g.as_array().unwrap().len(), 1, "{v}");
    assert_eq!(g[0]["name"], "roles");
    assert_eq!(g[0]["rules"][0]["health"], "ok", "{v}");
    assert_eq!(g[0]["rules"][1]["state"], "firing", "{v}");
    let (_, v) = querier.get_json(TENANT, "/api/v1/rules?type=record");
    assert_eq!(
        v["data"]["groups"][0]["rules"].as_array().unwrap().len(),
        1,
        "{v}"
    );
    let (_, v) = querier.get_json(TENANT, "/api/v1/alerts");
    let alerts = v["data"]["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 1, "{v}");
    assert_eq!(alerts[0]["labels"]["alertname"], "RolesUp");
    assert_eq!(alerts[0]["labels"]["severity"], "page");
    // Another tenant has none.
    let (_, v) = querier.get_json("other", "/api/v1/rules");
    assert_eq!(v["data"]["groups"], serde_json::json!([]), "{v}");

    // A group posted through the querier's ruler API (as Grafana's rule
    // editor posts it) is evaluated by the compactor at once.
    let group =
        "name: more\ninterval: 1s\nrules:\n  - record: job:roles_up:max\n    expr: max(roles_up)\n";
    let (status, body) = querier.post_body(
        TENANT,
        "/prometheus/config/v1/rules/api",
        "application/yaml",
        group.as_bytes(),
    );
    assert_eq!(status, 202, "{body}");
    wait_for("the posted group's series through the querier", || {
        instant(&querier, TENANT, "job:roles_up:max")
            .iter()
            .any(|(_, v)| *v == 7.0)
    });
    let (_, v) = querier.get_json(TENANT, "/api/v1/rules");
    assert_eq!(v["data"]["groups"].as_array().unwrap().len(), 2, "{v}");

    // A compactor that is down leaves a warning, not an error.
    compactors.remove(1 - evaluator).kill();
    let (status, v) = querier.get_json(TENANT, "/api/v1/rules");
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"]["groups"].as_array().unwrap().len(), 2, "{v}");
    let warnings = v["warnings"].to_string();
    assert!(warnings.contains("not reached"), "{v}");
}

/// The ruler API's group limit holds across queriers: two of them take
/// posts of new groups for one tenant at the same time, and the groups
/// kept are at most the limit, each one that was answered 202 and none
/// that was refused.
#[test]
fn queriers_posting_rule_groups_together_keep_the_group_limit() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("[limits.tenant_defaults]\nruler_max_rule_groups = 3\n");
    std::fs::write(&config, text).unwrap();
    let queriers: Vec<Server> = (0..2)
        .map(|q| {
            start(
                dir.path(),
                &config,
                "querier",
                &format!("strata-querier-{q}"),
            )
        })
        .collect();
    let posted: Vec<(String, u16)> = std::thread::scope(|s| {
        let tasks: Vec<_> = queriers
            .iter()
            .enumerate()
            .map(|(q, querier)| {
                s.spawn(move || {
                    (0..6)
                        .map(|i| {
                            let ns = format!("ns-{q}-{i}");
                            let group = format!(
                                "name: g\nrules:\n  - record: r:{q}_{i}\n    expr: vector(1)\n"
                            );
                            let (status, body) = querier.post_body(
                                TENANT,
                                &format!("/prometheus/config/v1/rules/{ns}"),
                                "application/yaml",
                                group.as_bytes(),
                            );
                            assert!(
                                status == 202 || (status == 400 && body.contains("limit: 3")),
                                "{status} {body}"
                            );
                            (ns, status)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        tasks.into_iter().flat_map(|t| t.join().unwrap()).collect()
    });
    let stored = |ns: &str| {
        let (status, _) =
            queriers[0].get_json(TENANT, &format!("/prometheus/config/v1/rules/{ns}"));
        status == 200
    };
    let accepted: Vec<&String> = posted
        .iter()
        .filter(|(_, s)| *s == 202)
        .map(|(n, _)| n)
        .collect();
    assert!(!accepted.is_empty() && accepted.len() <= 3, "{posted:?}");
    for (ns, status) in &posted {
        assert_eq!(stored(ns), *status == 202, "{ns}: answered {status}");
    }
}

/// The exemplars a querier answers for a query of `req_total`: their
/// trace ids, in time order.
fn exemplar_traces(server: &Server) -> Vec<String> {
    let (status, json) = server.get_json(
        TENANT,
        "/api/v1/query_exemplars?query=req_total&start=0&end=9999999999",
    );
    assert_eq!(status, 200, "{json}");
    json["data"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["exemplars"].as_array().cloned().unwrap_or_default())
        .map(|e| e["labels"]["trace_id"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// One ingester and a querier mirroring it (in a directory of their own).
fn ingester_and_querier() -> (tempfile::TempDir, std::path::PathBuf, Server, Server) {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let ingester = start(dir.path(), &config, "ingester", "strata-ingester-0");
    let querier = node(
        None,
        dir.path(),
        &config,
        "querier",
        "strata-querier-0",
        &["--ingesters", &ingester.url("")],
    );
    (dir, config, ingester, querier)
}

/// Exemplars written to an ingester are answered by a querier mirroring
/// it, and by one that subscribes later (the subscription's flush writes
/// the ingester's exemplars to its stream again).
#[test]
fn queriers_answer_the_exemplars_ingesters_hold() {
    let (dir, config, ingester, querier) = ingester_and_querier();
    let urls = ingester.url("");
    let now_ms = chrono::Utc::now().timestamp_millis();
    let with = |ts: i64, trace: &str| {
        let mut s = series(&[("__name__", "req_total"), ("job", "api")], &[(ts, 1.0)]);
        s.exemplars.push(common::exemplar(trace, 1.0, ts));
        payload(vec![s])
    };
    assert_eq!(
        ingester.write(Some(TENANT), &with(now_ms - 60_000, "t1")).0,
        204
    );
    wait_for("the querier to answer the mirrored exemplar", || {
        exemplar_traces(&querier) == ["t1"]
    });
    flush(&ingester);
    assert_eq!(
        ingester.write(Some(TENANT), &with(now_ms - 30_000, "t2")).0,
        204
    );
    let late = node(
        None,
        dir.path(),
        &config,
        "querier",
        "strata-querier-1",
        &["--ingesters", &urls],
    );
    for q in [&querier, &late] {
        wait_for("both queriers to answer both exemplars", || {
            exemplar_traces(q) == ["t1", "t2"]
        });
    }
}

/// `histogram_count(pick_seconds)` as `server` answers it now.
fn histogram_count(server: &Server) -> Option<String> {
    let (status, json) =
        server.get_json(TENANT, "/api/v1/query?query=histogram_count(pick_seconds)");
    assert_eq!(status, 200, "{json}");
    json["data"]["result"][0]["value"][1]
        .as_str()
        .map(str::to_owned)
}

/// Native histograms written to an ingester are answered by a querier
/// from the mirrored head before any flush, and after the flush from the
/// table (by a querier that subscribes later too), each once.
#[test]
fn queriers_answer_the_native_histograms_ingesters_hold() {
    let (dir, config, ingester, querier) = ingester_and_querier();
    let urls = ingester.url("");
    wait_for("the querier to mirror the ingester", || {
        mirrored(&querier) == Some(1)
    });
    let now_ms = chrono::Utc::now().timestamp_millis();
    let with = |ts: i64, count: u64| {
        let labels = [("__name__", "pick_seconds"), ("job", "wms")];
        payload(vec![common::histogram_series(&labels, ts, count)])
    };
    assert_eq!(
        ingester.write(Some(TENANT), &with(now_ms - 60_000, 3)).0,
        204
    );
    wait_for("the querier to answer the mirrored histogram", || {
        histogram_count(&querier).as_deref() == Some("3")
    });
    flush(&ingester);
    assert_eq!(
        ingester.write(Some(TENANT), &with(now_ms - 30_000, 5)).0,
        204
    );
    let late = node(
        None,
        dir.path(),
        &config,
        "querier",
        "strata-querier-1",
        &["--ingesters", &urls],
    );
    for q in [&querier, &late] {
        wait_for("both queriers to answer the newest histogram", || {
            histogram_count(q).as_deref() == Some("5")
        });
        let (_, json) = q.get_json(
            TENANT,
            "/api/v1/query?query=count_over_time(pick_seconds%5B5m%5D)",
        );
        assert_eq!(
            json["data"]["result"][0]["value"][1], "2",
            "each once: {json}"
        );
    }
}
