//! The seeded workload shared by the load generator and the table
//! generator: a Kubernetes/ERP series population and how its values move.
//!
//! Values are what these metrics really carry: counters are whole numbers
//! that only grow (request counts, histogram buckets; CPU seconds in
//! hundredths), gauges are whole numbers that wander (queue depths,
//! connections, goroutines, bytes). Compression figures depend on this, so
//! it is spelled out here rather than left to random floats.

use rand::Rng;
use rand::rngs::StdRng;

pub const ROUTES: [&str; 4] = [
    "/api/receiving",
    "/api/picking",
    "/api/dispatch",
    "/api/invoicing",
];
pub const QUEUES: [&str; 5] = ["receiving", "picking", "packing", "dispatch", "invoicing"];
pub const BUCKETS: [&str; 8] = ["0.005", "0.01", "0.05", "0.1", "0.5", "1", "5", "+Inf"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

/// Every series of one pod: (labels beyond the pod's, kind).
pub fn pod_families() -> Vec<(Vec<(&'static str, String)>, Kind)> {
    let mut v = Vec::new();
    for route in ROUTES {
        for method in ["GET", "POST"] {
            for code in ["200", "404", "500"] {
                v.push((
                    vec![
                        ("__name__", "http_requests_total".into()),
                        ("code", code.into()),
                        ("method", method.into()),
                        ("route", route.into()),
                    ],
                    Kind::Counter,
                ));
            }
        }
        for le in BUCKETS {
            v.push((
                vec![
                    ("__name__", "http_request_duration_seconds_bucket".into()),
                    ("le", le.into()),
                    ("route", route.into()),
                ],
                Kind::Counter,
            ));
        }
    }
    for q in QUEUES {
        v.push((
            vec![("__name__", "odoo_queue_depth".into()), ("queue", q.into())],
            Kind::Gauge,
        ));
    }
    for state in ["active", "idle"] {
        v.push((
            vec![
                ("__name__", "pg_stat_activity_count".into()),
                ("state", state.into()),
            ],
            Kind::Gauge,
        ));
    }
    v.push((
        vec![("__name__", "process_cpu_seconds_total".into())],
        Kind::Counter,
    ));
    v.push((
        vec![("__name__", "process_resident_memory_bytes".into())],
        Kind::Gauge,
    ));
    v.push((vec![("__name__", "go_goroutines".into())], Kind::Gauge));
    v.push((
        vec![("__name__", "redis_memory_used_bytes".into())],
        Kind::Gauge,
    ));
    v
}

/// One series: its tenant index, sorted labels, kind and current value.
#[derive(Debug, Clone)]
pub struct Series {
    pub tenant: usize,
    pub labels: Vec<(&'static str, String)>,
    pub kind: Kind,
    /// Counters in hundredths (CPU seconds) rather than whole units.
    pub centi: bool,
    pub value: f64,
}

impl Series {
    /// Moves the value one scrape forward.
    pub fn step(&mut self, rng: &mut StdRng) {
        let unit = if self.centi { 0.01 } else { 1.0 };
        self.value = match self.kind {
            Kind::Counter => self.value + unit * rng.random_range(0..10) as f64,
            Kind::Gauge => (self.value + rng.random_range(-5i64..=5) as f64).max(0.0),
        };
    }
}

/// `series` series over `tenants` tenants, pods filled family by family.
pub fn population(series: usize, tenants: usize, rng: &mut StdRng) -> Vec<Series> {
    let families = pod_families();
    let mut out = Vec::with_capacity(series);
    let mut pod = 0usize;
    'outer: loop {
        let tenant = pod % tenants.max(1);
        let service = format!("svc-{}", (pod / tenants.max(1)) % 25);
        let pod_name = format!("{service}-{:08x}-{:05x}", rng.random::<u32>(), pod);
        let ip = format!(
            "10.{}.{}.{}:8080",
            (pod >> 16) & 255,
            (pod >> 8) & 255,
            pod & 255
        );
        for (extra, kind) in &families {
            if out.len() == series {
                break 'outer;
            }
            let mut labels: Vec<(&str, String)> = vec![
                ("cluster", "eu-west-1".into()),
                ("instance", ip.clone()),
                ("job", "kubernetes-pods".into()),
                ("namespace", format!("odoo-{tenant}")),
                ("pod", pod_name.clone()),
                ("service", service.clone()),
            ];
            labels.extend(extra.iter().cloned());
            labels.sort_by(|a, b| a.0.cmp(b.0));
            let centi = extra.iter().any(|(_, v)| v == "process_cpu_seconds_total");
            out.push(Series {
                tenant,
                labels,
                kind: *kind,
                centi,
                value: rng.random_range(0..1000) as f64,
            });
        }
        pod += 1;
    }
    out
}
