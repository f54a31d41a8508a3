//! One nesting limit for every query language (PromQL, LogQL, SQL and the
//! analytics specs built on them).
//!
//! Parsers, planners, evaluators, printers and even `Drop` walk a query's
//! tree recursively, so a deep enough query overflows a thread's stack and
//! aborts the whole server: `abs(abs(…))` three thousand deep, five thousand
//! parentheses, or `1+1+1…` (an operator chain is a tree as deep as it is
//! long). This check runs on the text *before* any parser, with a loop and
//! no recursion, and refuses a query whose tree could be deeper than
//! [`MAX_DEPTH`].
//!
//! The estimate is an upper bound of the tree's depth: every open bracket
//! is a level, and every operator at a bracket level may add a level below
//! it (a chain of `n` operators is a tree `n` deep). String literals and
//! comments are skipped. Real queries stay far below the bound: a
//! Grafana-generated `x = 'a' OR x = 'b' …` of a hundred values estimates
//! about 200.

/// Deepest query tree any parser accepts.
pub const MAX_DEPTH: usize = 1000;

/// The syntax of the text being checked: which quotes, comments and
/// operators it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    PromQl,
    LogQl,
    Sql,
}

/// A query nesting deeper than [`MAX_DEPTH`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "query is nested too deeply: its expression tree may reach {depth} levels, more than the limit of {limit} (nested brackets, function calls and chained operators each count a level)"
)]
pub struct TooDeep {
    pub depth: usize,
    pub limit: usize,
}

/// Refuses `text` if its expression tree may be deeper than [`MAX_DEPTH`].
pub fn check(text: &str, syntax: Syntax) -> Result<(), TooDeep> {
    check_with(text, syntax, MAX_DEPTH)
}

/// [`check`] with another limit.
pub fn check_with(text: &str, syntax: Syntax, limit: usize) -> Result<(), TooDeep> {
    let depth = estimate(text, syntax, limit);
    if depth > limit {
        Err(TooDeep { depth, limit })
    } else {
        Ok(())
    }
}

/// The depth estimate, stopping early once it passes `stop`.
fn estimate(text: &str, syntax: Syntax, stop: usize) -> usize {
    let b = text.as_bytes();
    // Operators counted at each open bracket level; the estimate at any
    // point is the sum of (1 + operators) over the open levels.
    let mut levels: Vec<usize> = vec![0];
    let mut current = 1usize;
    let mut max = 1usize;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        // Comments.
        let line_comment = match syntax {
            Syntax::PromQl | Syntax::LogQl => c == b'#',
            Syntax::Sql => c == b'-' && b.get(i + 1) == Some(&b'-'),
        };
        if line_comment {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if syntax == Syntax::Sql && c == b'/' && b.get(i + 1) == Some(&b'*') {
            i += 2;
            while i < b.len() && !(b[i] == b'*' && b.get(i + 1) == Some(&b'/')) {
                i += 1;
            }
            i += 2;
            continue;
        }
        // String literals and quoted identifiers.
        if c == b'"' || c == b'\'' || c == b'`' {
            i = skip_quoted(b, i, syntax);
            continue;
        }
        let mut op = 0usize;
        match c {
            b'(' | b'[' | b'{' => {
                levels.push(0);
                current += 1;
                i += 1;
            }
            b')' | b']' | b'}' => {
                if levels.len() > 1
                    && let Some(ops) = levels.pop()
                {
                    current -= 1 + ops;
                }
                i += 1;
            }
            b'+' | b'-' | b'*' | b'/' | b'%' | b'^' | b'=' | b'<' | b'>' | b'!' | b'|' | b'&'
            | b':' => {
                // A run of operator characters (`!=`, `<=`, `||`, `::`)
                // is one operator.
                while i < b.len()
                    && matches!(
                        b[i],
                        b'+' | b'-'
                            | b'*'
                            | b'/'
                            | b'%'
                            | b'^'
                            | b'='
                            | b'<'
                            | b'>'
                            | b'!'
                            | b'|'
                            | b'&'
                            | b':'
                    )
                {
                    // A unary sign repeats inside a run (`- - 1` or `--1`
                    // in PromQL): each one is a level.
                    if b[i] == b'-' || b[i] == b'+' {
                        op += 1;
                    }
                    i += 1;
                }
                op = op.max(1);
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                let word = &text[start..i];
                let keyword: &[&str] = match syntax {
                    Syntax::PromQl | Syntax::LogQl => &["and", "or", "unless", "atan2"],
                    Syntax::Sql => &["and", "or", "not", "is", "like", "ilike", "between"],
                };
                if keyword.iter().any(|k| word.eq_ignore_ascii_case(k)) {
                    op = 1;
                }
            }
            _ => i += 1,
        }
        if op > 0 {
            if let Some(ops) = levels.last_mut() {
                *ops += op;
            }
            current += op;
        }
        max = max.max(current);
        if max > stop {
            return max;
        }
    }
    max
}

/// The index just past the quoted text starting at `start`.
fn skip_quoted(b: &[u8], start: usize, syntax: Syntax) -> usize {
    let quote = b[start];
    let mut i = start + 1;
    while i < b.len() {
        let c = b[i];
        if c == quote {
            // SQL doubles a quote to escape it.
            if syntax == Syntax::Sql && b.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        if c == b'\\' && quote != b'`' && syntax != Syntax::Sql {
            i += 2;
            continue;
        }
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nest(open: &str, inner: &str, close: &str, n: usize) -> String {
        format!("{}{inner}{}", open.repeat(n), close.repeat(n))
    }

    #[test]
    fn deep_brackets_calls_and_chains_are_refused() {
        for (text, syntax) in [
            (nest("abs(", "up", ")", 3000), Syntax::PromQl),
            (nest("(", "1", ")", 5000), Syntax::PromQl),
            (nest("(", "vector(1)", ")", 2000), Syntax::LogQl),
            (
                format!("vector(1){}", "+vector(1)".repeat(5000)),
                Syntax::LogQl,
            ),
            (format!("SELECT 1{}", "+1".repeat(2000)), Syntax::Sql),
            (
                format!("SELECT 1 WHERE {}", "NOT ".repeat(2000)),
                Syntax::Sql,
            ),
            (format!("{}1", "-".repeat(3000)), Syntax::PromQl),
            (format!("{}1", "- ".repeat(3000)), Syntax::PromQl),
        ] {
            let e = check(&text, syntax).unwrap_err();
            assert!(e.depth > MAX_DEPTH, "{syntax:?}");
            assert!(e.to_string().contains("nested too deeply"));
        }
    }

    #[test]
    fn real_queries_pass_with_room() {
        let promql = r#"sum by (tenant, service) (rate(http_requests_total{status=~"5..", job!="x"}[5m])) / sum by (tenant, service) (rate(http_requests_total[5m])) > 0.01 and on (tenant) up == 1"#;
        assert!(estimate(promql, Syntax::PromQl, usize::MAX) < 20);
        let values: Vec<String> = (0..100).map(|i| format!("x = 'v{i}'")).collect();
        let sql = format!(
            "SELECT labels['job'], count(*) FROM samples WHERE {} GROUP BY 1 ORDER BY 2 DESC",
            values.join(" OR ")
        );
        assert!(estimate(&sql, Syntax::Sql, usize::MAX) < 400);
        check(&sql, Syntax::Sql).unwrap();
        let logql = r#"sum by (job) (count_over_time({job="odoo"} |= "error" != "debug" | json | level="error" [5m]))"#;
        assert!(estimate(logql, Syntax::LogQl, usize::MAX) < 20);
    }

    #[test]
    fn brackets_and_operators_in_strings_and_comments_do_not_count() {
        let deep = "(".repeat(3000);
        check(&format!("up{{job=\"{deep}\"}}"), Syntax::PromQl).unwrap();
        check(&format!("up # {deep}\n"), Syntax::PromQl).unwrap();
        check(&format!("{{job=`{deep}`}}"), Syntax::LogQl).unwrap();
        check(&format!("SELECT '{deep}' -- {deep}\n"), Syntax::Sql).unwrap();
        check(&format!("SELECT /* {deep} */ 1"), Syntax::Sql).unwrap();
        check(&format!("SELECT 'it''s {deep}'"), Syntax::Sql).unwrap();
        check(&format!("up{{job=\"a\\\"{deep}\"}}"), Syntax::PromQl).unwrap();
    }

    #[test]
    fn siblings_do_not_add_up_but_the_limit_is_exact() {
        // A thousand sibling calls: each closes before the next opens.
        let siblings = vec!["abs(up)"; 1000].join(", ");
        check(&format!("vector({siblings})"), Syntax::PromQl).unwrap();
        let at = nest("(", "1", ")", MAX_DEPTH - 1);
        check(&at, Syntax::PromQl).unwrap();
        let past = nest("(", "1", ")", MAX_DEPTH);
        assert!(check(&past, Syntax::PromQl).is_err());
    }
}
