/// Found by the `logql` fuzz target's kin in PromQL: a duration too
/// large for `Duration` is not a duration, not a panic.
#[test]
fn huge_durations_are_refused() {
    assert_eq!(super::parse_duration("99999999999999999999999y"), None);
    assert_eq!(super::parse_duration("1e400s"), None);
    assert!(super::parse("rate({a=\"b\"}[99999999999999999999999y])").is_err());
    assert_eq!(
        super::parse_duration("1h30m"),
        Some(std::time::Duration::from_secs(5400))
    );
}

use std::time::Duration;

use super::*;

#[test]
fn parses_log_queries_with_pipelines() {
    let Query::Log(q) = parse(
        r#"{job="odoo", level=~"err.*"} |= "picking" != `debug` | json | status >= 500 and route="/x" | line_format "{{.route}} {{ .status }}""#,
    )
    .unwrap() else {
        panic!()
    };
    assert_eq!(q.matchers.len(), 2);
    assert_eq!(q.pipeline.len(), 5);
    assert!(matches!(q.pipeline[3], Stage::Label(LabelFilter::And(..))));
    let Stage::LineFormat(t) = &q.pipeline[4] else {
        panic!("{:?}", q.pipeline[4])
    };
    let labels: crate::logql::Labels = [
        ("route".to_owned(), "/x".to_owned()),
        ("status".to_owned(), "503".to_owned()),
    ]
    .into();
    let ctx = crate::logql::template::Context {
        labels: &labels,
        line: "",
        timestamp_ns: 0,
    };
    assert_eq!(t.render(&ctx).unwrap(), "/x 503");
}

#[test]
fn parses_metric_queries() {
    let Query::Metric(MetricExpr::Aggregate { op, grouping, .. }) =
        parse(r#"sum by (level) (count_over_time({job="odoo"} | drop __error__ [5m]))"#).unwrap()
    else {
        panic!()
    };
    assert_eq!(op, AggOp::Sum);
    assert_eq!(grouping, Some(Grouping::By(vec!["level".into()])));
    assert!(matches!(
        parse("vector(1)+vector(1)").unwrap(),
        Query::Metric(MetricExpr::Binary { op: BinOp::Add, .. })
    ));
    assert!(parse(r#"topk(3, rate({job="a"}[1m] offset 5m))"#).is_ok());
    assert!(parse(r#"sum(rate({job="a"}[1m])) by (x) / 2"#).is_ok());
}

/// Every query of Loki's query examples page
/// (docs/sources/query/query_examples.md) and its metric-query page.
#[test]
fn parses_lokis_documented_examples() {
    for q in [
        r#"{job_name="myapp"} != ip("192.168.4.5-192.168.4.20")"#,
        r#"{job_name="myapp"} | logfmt | addr = ip("192.168.4.5/16") | addr != ip("192.168.4.2")"#,
        r#"{job="security"} |~ "Invalid user.*" | regexp "(^(?P<user>\\S+ {1,2}){8})" | regexp "(^(?P<ip>\\S+ {1,2}){10})" | line_format "IP = {{.ip}}\tUSER = {{.user}}""#,
        r#"{job="security"} != "grafana_com" |= "session opened" != "sudo: " |regexp "(^(?P<user>\\S+ {1,2}){11})" | line_format "USER = {{.user}}""#,
        "sum by (host) (rate({job=\"mysql\"}\n |= \"error\" != \"timeout\"\n | json\n | duration > 10s [1m]))",
        r#"{cluster="ops-tools1", namespace="loki-dev", job="loki-dev/query-frontend"} |= "metrics.go" != "out of order" | logfmt | duration > 30s or status_code != "200""#,
        r#"{job="loki-ops/query-frontend"} | logfmt | line_format "{{.msg}}" | regexp "(?P<method>\\w+) (?P<path>[\\w|/]+) \\((?P<status>\\d+?)\\) (?P<duration>.*)""#,
        r#"{cluster="ops-tools1", name="querier", namespace="loki-dev"} |= "metrics.go" != "loki-canary" | logfmt | query != "" | label_format query="{{ Replace .query \"\\n\" \"\" -1 }}" | line_format "{{ .ts}}\t{{.duration}}\ttraceID = {{.traceID}}\t{{ printf \"%-100.100s\" .query }} ""#,
        r#"{job="example"} | decolorize"#,
        r#"quantile_over_time(0.99, {cluster="ops-tools1",container="ingress-nginx"} | json | __error__ = "" | unwrap request_time [1m]) by (path)"#,
        r#"sum by (org_id) ( sum_over_time( {cluster="ops-tools1",container="loki-dev"} |= "metrics.go" | logfmt | unwrap bytes_processed [1m]) )"#,
        r#"topk(10,sum(rate({region="us-east1"}[5m])) by (name))"#,
        r#"sum(count_over_time({job="mysql"}[5m])) by (level)"#,
        r#"avg(rate(({job="nginx"} |= "GET" | json | path="/home")[10s])) by (region)"#,
        r#"count_over_time({job="mysql"}[5m] offset 5m)"#,
        r#"sum(count_over_time({namespace="traefik"}[5m])) or vector(0)"#,
        r#"{job="varlogs"} | json | drop level, path, app=~"some-api.*""#,
        r#"{job="varlogs"} | json | keep level, tenant, app=~"some-api.*""#,
        r#"{job="x"} | json first_server="servers[0]", ua="request.headers[\"User-Agent\"]""#,
        r#"{job="x"} | json servers"#,
        r#"{job="x"} | logfmt --keep-empty --strict host"#,
        r#"{job="x"} | logfmt host, fwd_ip="fwd""#,
        r#"{job="x"} | pattern "<_> msg=\"<method> <path> (<status>) <latency>\"""#,
        r#"{job="x"} | unpack"#,
        r#"{job="x"} |> "<_> error <_>" !> "<_> debug <_>""#,
        r#"{job="x"} | duration >= 20ms or size == 20KB method!~"2..""#,
        r#"{job="loki/querier"} | label_format nowEpoch=`{{(unixEpoch now)}}`,createDateEpoch=`{{unixEpoch (toDate "2006-01-02" .createDate)}}` | label_format dateTimeDiff=`{{sub .nowEpoch .createDateEpoch}}` | dateTimeDiff > 86400"#,
        r#"sum by (le) (rate_counter({job="x"} | logfmt | unwrap bytes(b) [1m]))"#,
        r#"absent_over_time({job="x"} | logfmt | unwrap latency [1m])"#,
    ] {
        if let Err(e) = parse(q) {
            panic!("{q}: {e}");
        }
    }
}

#[test]
fn errors_say_where_and_what() {
    for (q, want) in [
        (r#"{job="x""#, "expected , or }"),
        (r#"{job=~".*"}"#, "does not match the empty string"),
        ("{}", "at least one stream matcher"),
        (r#"rate({job="x"})"#, "expected \"[\""),
        (r#"{job="x"} | line_format "{{if .a}}""#, "missing {{end}}"),
        (r#"{job="x"} |~ "(""#, "invalid regex"),
        (r#"nope({job="x"}[1m])"#, "unknown function"),
        (r#"sum_over_time({job="x"}[1m])"#, "without unwrap"),
        (
            r#"count_over_time({job="x"} | unwrap a [1m])"#,
            "with unwrap",
        ),
        (
            r#"sum_over_time({job="x"} | unwrap a [1m]) by (b)"#,
            "grouping not allowed",
        ),
        (r#"{job="x"} | regexp "(a)""#, "named group"),
        (r#"{job="x"} | pattern "<a><b>""#, "separated"),
        (
            r#"{job="x"} | label_format a=b, a="c""#,
            "multiple label name",
        ),
        (r#"{job="x"} | logfmt --loose"#, "unknown logfmt flag"),
        (r#"{job="x"} |= ip("1.2.3.300")"#, "invalid ip pattern"),
        ("vector(1) and bool vector(1)", "bool is only allowed"),
        (
            "vector(1) and on(a) group_left vector(1)",
            "no grouping allowed",
        ),
        (
            r#"{job="x"} | line_format "{{ range .a }}{{ end }}""#,
            "not supported",
        ),
    ] {
        let e = parse(q).unwrap_err();
        assert!(e.to_string().contains(want), "{q}: {e}");
    }
    assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
    assert_eq!(parse_bytes("1KiB"), Some(1024.0));
}
