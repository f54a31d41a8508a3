//! What a query's filters on `line` require a line to contain
//! ([`LineNeed`]), for the logs files' line indexes: `line LIKE '%a%b%'`
//! needs `a` and `b`, `line ~ 'x(a|b)y'` needs `x`, `a` or `b`, and `y`
//! (the literal parts of the regex), AND and OR of these combine. A
//! filter that requires nothing checkable (`NOT LIKE`, `ILIKE`, a
//! case-insensitive regex) needs nothing: it rules no block out.

use datafusion::common::ScalarValue;
use datafusion::logical_expr::{BinaryExpr, Like, Operator};
use datafusion::prelude::Expr;
use regex_syntax::hir::{Hir, HirKind};
use strata_storage::LineNeed;

/// The column the needs are about.
const LINE: &str = "line";

/// What every one of `filters` needs of a line (`None`: nothing).
pub(crate) fn need_of(filters: &[Expr]) -> Option<LineNeed> {
    all(filters.iter().filter_map(expr_need).collect())
}

fn all(mut needs: Vec<LineNeed>) -> Option<LineNeed> {
    match needs.len() {
        0 => None,
        1 => needs.pop(),
        _ => Some(LineNeed::All(needs)),
    }
}

fn expr_need(e: &Expr) -> Option<LineNeed> {
    match e {
        Expr::Like(Like {
            negated: false,
            expr,
            pattern,
            escape_char,
            case_insensitive: false,
        }) if is_line(expr) => like_need(string_literal(pattern)?, *escape_char),
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => match op {
            Operator::And => all([expr_need(left), expr_need(right)]
                .into_iter()
                .flatten()
                .collect()),
            Operator::Or => Some(LineNeed::Any(vec![expr_need(left)?, expr_need(right)?])),
            Operator::RegexMatch if is_line(left) => regex_need(string_literal(right)?),
            _ => None,
        },
        _ => None,
    }
}

fn is_line(e: &Expr) -> bool {
    matches!(e, Expr::Column(c) if c.name == LINE)
}

fn string_literal(e: &Expr) -> Option<&str> {
    match e {
        Expr::Literal(
            ScalarValue::Utf8(Some(s))
            | ScalarValue::LargeUtf8(Some(s))
            | ScalarValue::Utf8View(Some(s)),
            _,
        ) => Some(s),
        _ => None,
    }
}

/// A LIKE pattern's literal runs (between `%` and `_`), each needed.
/// Arrow's LIKE takes `\` as the escape whether or not one is named; a
/// pattern naming another is left alone.
fn like_need(pattern: &str, escape: Option<char>) -> Option<LineNeed> {
    let escape = match escape {
        None | Some('\\') => Some('\\'),
        Some(_) => return None,
    };
    let mut runs = Vec::new();
    let mut run = String::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if Some(c) == escape {
            // An escape at the end matches nothing: no run needed.
            run.push(chars.next()?);
        } else if c == '%' || c == '_' {
            if !run.is_empty() {
                runs.push(LineNeed::Substring(std::mem::take(&mut run).into_bytes()));
            }
        } else {
            run.push(c);
        }
    }
    if !run.is_empty() {
        runs.push(LineNeed::Substring(run.into_bytes()));
    }
    all(runs)
}

/// The literal parts a match of `pattern` must contain.
pub(crate) fn regex_need(pattern: &str) -> Option<LineNeed> {
    let hir = regex_syntax::ParserBuilder::new()
        .nest_limit(64)
        .build()
        .parse(pattern)
        .ok()?;
    hir_need(&hir)
}

fn hir_need(hir: &Hir) -> Option<LineNeed> {
    match hir.kind() {
        HirKind::Literal(l) => Some(LineNeed::Substring(l.0.to_vec())),
        HirKind::Capture(c) => hir_need(&c.sub),
        HirKind::Repetition(r) if r.min > 0 => hir_need(&r.sub),
        HirKind::Concat(subs) => {
            // Adjacent literals are one run; other parts add what they
            // need on their own.
            let mut needs = Vec::new();
            let mut run: Vec<u8> = Vec::new();
            for sub in subs {
                if let HirKind::Literal(l) = sub.kind() {
                    run.extend_from_slice(&l.0);
                    continue;
                }
                if !run.is_empty() {
                    needs.push(LineNeed::Substring(std::mem::take(&mut run)));
                }
                needs.extend(hir_need(sub));
            }
            if !run.is_empty() {
                needs.push(LineNeed::Substring(run));
            }
            all(needs)
        }
        HirKind::Alternation(subs) => Some(LineNeed::Any(
            subs.iter().map(hir_need).collect::<Option<Vec<_>>>()?,
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::{col, lit};

    fn sub(s: &str) -> LineNeed {
        LineNeed::Substring(s.as_bytes().to_vec())
    }

    #[test]
    fn like_patterns_need_their_literal_runs() {
        let like = |p: &str| need_of(&[col("line").like(lit(p))]);
        assert_eq!(
            like("%needle-0123456789abcdef%"),
            Some(sub("needle-0123456789abcdef"))
        );
        assert_eq!(
            like("GET %/api/v1/_hipments%"),
            Some(LineNeed::All(vec![
                sub("GET "),
                sub("/api/v1/"),
                sub("hipments")
            ]))
        );
        // Escaped wildcards are literal (DataFusion's default escape is `\`).
        let escaped = Expr::Like(Like::new(
            false,
            Box::new(col("line")),
            Box::new(lit("%100\\%_done%")),
            Some('\\'),
            false,
        ));
        assert_eq!(
            need_of(&[escaped]),
            Some(LineNeed::All(vec![sub("100%"), sub("done")]))
        );
        // Without an ESCAPE clause `\` still escapes (Arrow's LIKE).
        assert_eq!(like("%50\\%%"), Some(sub("50%")));
        let other = Expr::Like(Like::new(
            false,
            Box::new(col("line")),
            Box::new(lit("%50#%%")),
            Some('#'),
            false,
        ));
        assert_eq!(need_of(&[other]), None);
        assert_eq!(like("%"), None);
        assert_eq!(need_of(&[col("line").not_like(lit("%x%"))]), None);
        assert_eq!(need_of(&[col("line").ilike(lit("%x%"))]), None);
        assert_eq!(need_of(&[col("labels").like(lit("%x%"))]), None);
    }

    #[test]
    fn regexes_need_their_literal_parts() {
        assert_eq!(
            regex_need("trace_id=[0-9a-f]+ ok"),
            Some(LineNeed::All(vec![sub("trace_id="), sub(" ok")]))
        );
        assert_eq!(
            regex_need("(timeout|refused) on (db|cache)"),
            Some(LineNeed::All(vec![
                LineNeed::Any(vec![sub("timeout"), sub("refused")]),
                sub(" on "),
                LineNeed::Any(vec![sub("db"), sub("cache")]),
            ]))
        );
        assert_eq!(regex_need("(?i)error"), None);
        assert_eq!(regex_need("a|.*"), None);
        assert_eq!(regex_need("x?"), None);
        assert_eq!(regex_need("(unclosed"), None);
    }

    #[test]
    fn and_needs_either_side_or_needs_both() {
        let a = col("line").like(lit("%aaaa%"));
        let b = Expr::BinaryExpr(BinaryExpr::new(
            Box::new(col("line")),
            Operator::RegexMatch,
            Box::new(lit("bbbb")),
        ));
        let other = col("stream_id").eq(lit(1i64));
        assert_eq!(need_of(&[a.clone().and(other.clone())]), Some(sub("aaaa")));
        assert_eq!(need_of(&[a.clone().or(other)]), None);
        assert_eq!(
            need_of(&[a.clone().or(b.clone())]),
            Some(LineNeed::Any(vec![sub("aaaa"), sub("bbbb")]))
        );
        assert_eq!(
            need_of(&[a, b]),
            Some(LineNeed::All(vec![sub("aaaa"), sub("bbbb")]))
        );
    }
}
