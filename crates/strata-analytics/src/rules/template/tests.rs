use super::*;

fn data() -> TemplateData {
    TemplateData {
        labels: BTreeMap::from([
            ("instance".into(), "db-1.example.com:9187".into()),
            ("job".into(), "postgres".into()),
            ("process".into(), "picking".into()),
        ]),
        external_labels: BTreeMap::from([("cluster".into(), "eu-1".into())]),
        external_url: "http://strata:9470".into(),
        value: 0.123456,
        queries: Default::default(),
    }
}

fn expand(src: &str) -> String {
    Template::parse(src)
        .unwrap_or_else(|e| panic!("{src}: {e}"))
        .expand(&data())
        .unwrap_or_else(|e| panic!("{src}: {e}"))
}

#[test]
fn the_templates_rule_files_use_expand_as_prometheus_expands_them() {
    // Each answer is what Prometheus 2.42's template expander gives.
    for (src, want) in [
        ("plain text", "plain text"),
        (
            "{{ $labels.instance }} is down",
            "db-1.example.com:9187 is down",
        ),
        ("{{ .Labels.job }}/{{ $labels.missing }}.", "postgres/."),
        ("{{ $value }}", "0.123456"),
        ("{{ .Value }}", "0.123456"),
        ("{{ $value | humanizePercentage }}", "12.35%"),
        ("{{ $value | humanize }}", "123.5m"),
        ("{{ humanize 1234567 }}", "1.235M"),
        ("{{ humanize1024 1048576 }}", "1Mi"),
        ("{{ humanizeDuration 3725 }}", "1h 2m 5s"),
        ("{{ humanizeDuration 90061 }}", "1d 1h 1m 1s"),
        ("{{ humanizeDuration 0.25 }}", "250ms"),
        ("{{ humanizeDuration 5.5 }}", "5.5s"),
        (
            "{{ humanizeTimestamp 1435065584.128 }}",
            "2015-06-23 13:19:44.128 +0000 UTC",
        ),
        (r#"{{ printf "%.2f" $value }}"#, "0.12"),
        (r#"{{ printf "%.1f%%" 12.345 }}"#, "12.3%"),
        (r#"{{ printf "%s=%v" "a" 2.5 }}"#, "a=2.5"),
        (r#"{{ printf "%5.1f|%-4s|" 3.14159 "ab" }}"#, "  3.1|ab  |"),
        (r#"{{ printf "%d" 3.0 }}"#, "%!d(float64=3)"),
        ("{{ $labels.job | toUpper }}", "POSTGRES"),
        ("{{ title \"hello world\" }}", "Hello World"),
        ("{{ $labels.instance | stripPort }}", "db-1.example.com"),
        ("{{ $labels.instance | stripDomain }}", "db-1:9187"),
        (
            r#"{{ reReplaceAll "(.*):.*" "$1" $labels.instance }}"#,
            "db-1.example.com",
        ),
        (
            "{{ $externalLabels.cluster }} {{ $externalURL }}",
            "eu-1 http://strata:9470",
        ),
        ("{{ if gt $value 0.1 }}high{{ else }}low{{ end }}", "high"),
        (
            "{{ if lt $value 0.01 }}a{{ else if lt $value 0.5 }}b{{ else }}c{{ end }}!",
            "b!",
        ),
        (
            r#"{{ if eq $labels.job "redis" "postgres" }}db{{ end }}"#,
            "db",
        ),
        (
            "{{ with $labels.process }}process {{ . }}{{ end }}",
            "process picking",
        ),
        ("{{ with $labels.nope }}x{{ else }}none{{ end }}", "none"),
        (
            "{{ range $k, $v := $labels }}{{ $k }}={{ $v }};{{ end }}",
            "instance=db-1.example.com:9187;job=postgres;process=picking;",
        ),
        ("a {{- \" b \" -}} c", "a b c"),
        ("{{/* a comment */}}x", "x"),
        ("{{ $x := humanize 2048 }}{{ $x }}", "2.048k"),
        ("{{ len $labels }}", "3"),
        (r#"{{ index $labels "job" }}"#, "postgres"),
        (r#"{{ match "^db-" $labels.instance }}"#, "true"),
        ("{{ not (eq $labels.job \"x\") }}", "true"),
        ("{{ and 1 0 }} {{ or 0 \"y\" }}", "0 y"),
        ("{{ (parseDuration \"1h30m\") }}", "5400"),
    ] {
        assert_eq!(expand(src), want, "{src}");
    }
}

#[test]
fn what_prometheus_would_refuse_or_strata_cannot_expand_is_refused_at_load() {
    for (src, why) in [
        ("{{ $labels.x ", "unclosed action"),
        ("{{ if true }}x", "unexpected EOF"),
        ("{{ end }}", "unexpected {{end}}"),
        ("{{ nosuchfunc 1 }}", "not defined"),
        (r#"{{ tmpl "x" . }}"#, "not supported"),
        ("{{ template \"x\" }}", "not supported"),
        ("{{ \"unterminated }}", "unclosed action"),
    ] {
        let e = Template::parse(src).expect_err(src);
        assert!(e.to_string().contains(why), "{src}: {e}");
    }
}

#[test]
fn expansion_errors_name_the_problem() {
    let t = Template::parse("{{ $nope }}").unwrap();
    assert!(
        t.expand(&data())
            .unwrap_err()
            .0
            .contains("undefined variable")
    );
    let t = Template::parse("{{ humanize \"abc\" }}").unwrap();
    assert!(t.expand(&data()).unwrap_err().0.contains("cannot convert"));
}

#[test]
fn deep_nesting_is_refused_not_a_stack_overflow() {
    let parens = format!("{{{{ {}1{} }}}}", "(".repeat(150), ")".repeat(150));
    let blocks = format!("{}x{}", "{{ if 1 }}".repeat(150), "{{ end }}".repeat(150));
    let chain = format!(
        "{{{{ if 0 }}}}{}{{{{ end }}}}",
        "{{ else if 0 }}".repeat(150)
    );
    for src in [parens, blocks, chain] {
        let e = Template::parse(&src).expect_err(&src);
        assert!(e.0.contains("nested more than 100 deep"), "{e}");
    }
    // Within the bound they work.
    let ok = format!("{}x{}", "{{ if 1 }}".repeat(50), "{{ end }}".repeat(50));
    assert_eq!(Template::parse(&ok).unwrap().expand(&data()).unwrap(), "x");
    assert_eq!(
        expand(r#"{{ printf "%99999999d" 1 }}"#),
        "%!(NOVERB)%!(EXTRA float64=1)"
    );
}

#[test]
fn queries_named_by_a_template_are_read_from_their_answers() {
    let t = Template::parse(
        r#"{{ with query "sum(up)" }}{{ . | first | value }}{{ end }}|{{ range query "up" | sortByLabel "instance" }}{{ .Labels.instance }}={{ .Value }};{{ end }}|{{ "up" | query | first | label "instance" }}|{{ with query "absent(x)" }}{{ . | first | value }}{{ else }}none{{ end }}"#,
    )
    .unwrap();
    assert_eq!(t.queries(), ["absent(x)", "sum(up)", "up"]);
    let sample = |i: &str, v: f64| QuerySample {
        labels: BTreeMap::from([
            ("__name__".into(), "up".into()),
            ("instance".into(), i.into()),
        ]),
        value: v,
    };
    let mut d = data();
    d.queries = std::sync::Arc::new(BTreeMap::from([
        (
            "sum(up)".to_string(),
            Ok(vec![QuerySample {
                labels: BTreeMap::new(),
                value: 2.0,
            }]),
        ),
        (
            "up".to_string(),
            Ok(vec![sample("b", 0.0), sample("a", 1.0)]),
        ),
        ("absent(x)".to_string(), Ok(vec![])),
    ]));
    assert_eq!(t.expand(&d).unwrap(), "2|a=1;b=0;|b|none");
    // A query built while expanding is not run.
    let t = Template::parse(r#"{{ query (printf "up{i=%q}" $labels.job) }}"#).unwrap();
    assert!(t.queries().is_empty());
    assert!(
        t.expand(&d).unwrap_err().0.contains("literal strings"),
        "dynamic"
    );
    let t = Template::parse(r#"{{ query "nope" | first }}"#).unwrap();
    let mut e = data();
    e.queries = std::sync::Arc::new(BTreeMap::from([("nope".to_string(), Ok(vec![]))]));
    assert!(t.expand(&e).unwrap_err().0.contains("no elements"));
}
