//! Rewriting the Postgres-only syntax that catalog queries (psql's `\d`
//! family, DBeaver, drivers) use into what DataFusion plans.

use std::collections::BTreeSet;

use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{
    self, BinaryOperator, Expr, Ident, ObjectName, ObjectNamePart, VisitMut, VisitorMut,
};

use super::PG_TABLES;

/// Rewrites the Postgres-only syntax catalog queries use into what
/// DataFusion plans: `OPERATOR(pg_catalog.op)` → `op`, `COLLATE x` →
/// nothing (comparisons are by code point), `pg_catalog.f(..)` → `f(..)`,
/// `::regclass` → the table's oid, `::regtype` → the type's name,
/// `::oid`/`::name`/`::"char"`/`pg_catalog.text` → their plain types, and
/// an unqualified `pg_*` catalog table → `pg_catalog.pg_*`.
///
/// With `postgres_names`, an unnamed function call in the outermost
/// select list is named after the function, as Postgres names it
/// (`count`, `current_schema`) when that name is unique among the
/// columns; drivers that read columns by name rely on it.
pub fn rewrite(statement: &mut DfStatement, postgres_names: bool) {
    match statement {
        DfStatement::Statement(s) => {
            if postgres_names && let ast::Statement::Query(q) = s.as_mut() {
                name_like_postgres(&mut q.body);
            }
            let _ = s.visit(&mut PgRewrite);
        }
        DfStatement::Explain(e) => rewrite(&mut e.statement, postgres_names),
        _ => {}
    }
}

fn name_like_postgres(body: &mut ast::SetExpr) {
    let ast::SetExpr::Select(select) = body else {
        return;
    };
    let name_of = |item: &ast::SelectItem| match item {
        ast::SelectItem::UnnamedExpr(Expr::Function(f)) => f
            .name
            .0
            .last()
            .and_then(|p| p.as_ident())
            .map(|i| i.value.to_ascii_lowercase()),
        ast::SelectItem::UnnamedExpr(Expr::Identifier(id)) => Some(id.value.clone()),
        ast::SelectItem::UnnamedExpr(Expr::CompoundIdentifier(ids)) => {
            ids.last().map(|i| i.value.clone())
        }
        ast::SelectItem::ExprWithAlias { alias, .. } => Some(alias.value.clone()),
        _ => None,
    };
    let names: Vec<Option<String>> = select.projection.iter().map(name_of).collect();
    for (i, item) in select.projection.iter_mut().enumerate() {
        if let ast::SelectItem::UnnamedExpr(e @ Expr::Function(_)) = item
            && let Some(name) = &names[i]
            && names.iter().filter(|n| n.as_ref() == Some(name)).count() == 1
        {
            let expr = std::mem::replace(e, Expr::value(ast::Value::Null));
            *item = ast::SelectItem::ExprWithAlias {
                expr,
                alias: Ident::with_quote('"', name.clone()),
            };
        }
    }
}

/// `SELECT t.c, t.*`: Postgres answers `c` twice, DataFusion refuses
/// duplicate names; the explicit one goes (`t.*` still has `c`, and the
/// clients that write this, DBeaver among them, read columns by name).
fn drop_columns_repeated_by_wildcards(select: &mut ast::Select) {
    let wildcards: Vec<String> = select
        .projection
        .iter()
        .filter_map(|item| match item {
            ast::SelectItem::QualifiedWildcard(
                ast::SelectItemQualifiedWildcardKind::ObjectName(q),
                _,
            ) => Some(q.to_string()),
            _ => None,
        })
        .collect();
    if wildcards.is_empty() {
        return;
    }
    select.projection.retain(|item| match item {
        ast::SelectItem::UnnamedExpr(Expr::CompoundIdentifier(ids)) if ids.len() == 2 => {
            !wildcards.contains(&ids[0].to_string())
        }
        _ => true,
    });
}

struct PgRewrite;

impl VisitorMut for PgRewrite {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut ast::Query) -> std::ops::ControlFlow<()> {
        blank_empty_selects(&mut query.body);
        if let ast::SetExpr::Select(select) = query.body.as_mut() {
            drop_columns_repeated_by_wildcards(select);
        }
        std::ops::ControlFlow::Continue(())
    }

    fn pre_visit_relation(&mut self, relation: &mut ObjectName) -> std::ops::ControlFlow<()> {
        if let [ObjectNamePart::Identifier(id)] = relation.0.as_slice()
            && id.quote_style.is_none()
            && PG_TABLES.iter().any(|(n, _)| *n == id.value)
        {
            relation
                .0
                .insert(0, ObjectNamePart::Identifier(Ident::new("pg_catalog")));
        }
        std::ops::ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, expr: &mut Expr) -> std::ops::ControlFlow<()> {
        match expr {
            Expr::BinaryOp { op, .. } => {
                if let BinaryOperator::PGCustomBinaryOperator(parts) = op
                    && let Some(standard) = parts.last().and_then(|o| standard_operator(o))
                {
                    *op = standard;
                }
            }
            Expr::Collate { expr: inner, .. } => {
                let inner = std::mem::replace(inner.as_mut(), Expr::value(ast::Value::Null));
                *expr = inner;
            }
            Expr::Function(f) => {
                if f.name.0.len() == 2
                    && matches!(&f.name.0[0], ObjectNamePart::Identifier(id) if id.value.eq_ignore_ascii_case("pg_catalog"))
                {
                    f.name.0.remove(0);
                }
                // `ARRAY(SELECT ..)` over the catalog: psql's `\d+` asks
                // for a toast table's options, which Strata never has.
                if let ast::FunctionArguments::Subquery(q) = &f.args
                    && f.name.to_string().eq_ignore_ascii_case("array")
                    && reads_only_catalog(q)
                {
                    *expr = Expr::Cast {
                        kind: ast::CastKind::DoubleColon,
                        expr: Box::new(Expr::value(ast::Value::Null)),
                        data_type: ast::DataType::Array(ast::ArrayElemTypeDef::SquareBracket(
                            Box::new(ast::DataType::Text),
                            None,
                        )),
                        array: false,
                        format: None,
                    };
                }
            }
            // A scalar subquery over the catalog that the client knows
            // yields at most one row (psql's column default and
            // collation lookups): DataFusion wants that said with an
            // aggregate, and `max` of at most one row is that row.
            Expr::Subquery(q) if reads_only_catalog(q) => {
                if let ast::SetExpr::Select(select) = q.body.as_mut()
                    && !yields_nothing(select)
                    && select.group_by == ast::GroupByExpr::Expressions(Vec::new(), Vec::new())
                    && let [
                        ast::SelectItem::UnnamedExpr(e)
                        | ast::SelectItem::ExprWithAlias { expr: e, .. },
                    ] = select.projection.as_mut_slice()
                {
                    let inner = std::mem::replace(e, Expr::value(ast::Value::Null));
                    *e = call("max", inner);
                }
            }
            Expr::Cast {
                expr: inner,
                data_type,
                ..
            } => {
                let name = match data_type {
                    ast::DataType::Regclass => Some("regclass".to_owned()),
                    ast::DataType::Custom(name, _) => name
                        .0
                        .last()
                        .and_then(|p| p.as_ident())
                        .map(|i| i.value.to_ascii_lowercase()),
                    ast::DataType::Text => None,
                    _ => None,
                };
                match name.as_deref() {
                    Some("regclass") => {
                        let inner =
                            std::mem::replace(inner.as_mut(), Expr::value(ast::Value::Null));
                        *expr = call("strata_regclass", inner);
                    }
                    Some("regtype") => {
                        let inner =
                            std::mem::replace(inner.as_mut(), Expr::value(ast::Value::Null));
                        *expr = call("format_type", inner);
                    }
                    Some(
                        "oid" | "regproc" | "regprocedure" | "regoper" | "regnamespace" | "regrole",
                    ) => *data_type = ast::DataType::BigInt(None),
                    Some("text" | "name" | "char" | "varchar" | "bpchar") => {
                        *data_type = ast::DataType::Text;
                    }
                    Some("int2") => *data_type = ast::DataType::SmallInt(None),
                    Some("int4") => *data_type = ast::DataType::Int(None),
                    Some("int8") => *data_type = ast::DataType::BigInt(None),
                    Some("bool") => *data_type = ast::DataType::Boolean,
                    Some("float8") => *data_type = ast::DataType::DoublePrecision,
                    _ => {}
                }
            }
            _ => {}
        }
        std::ops::ControlFlow::Continue(())
    }
}

/// The catalog tables that have rows; the others describe what Strata
/// doesn't have (defaults, indexes, constraints, ..) and are empty.
const POPULATED: &[&str] = &[
    "pg_namespace",
    "pg_class",
    "pg_attribute",
    "pg_type",
    "pg_database",
    "pg_tables",
    "pg_roles",
    "pg_user",
    "pg_settings",
    "pg_tablespace",
    "pg_am",
];

/// The catalog table `name` names (`pg_catalog.x`, or a bare `x`, which
/// Postgres looks up in `pg_catalog` first).
fn catalog_table(name: &ObjectName) -> Option<&str> {
    let table = match name.0.as_slice() {
        [ObjectNamePart::Identifier(s), ObjectNamePart::Identifier(t)]
            if s.value.eq_ignore_ascii_case("pg_catalog") =>
        {
            t
        }
        [ObjectNamePart::Identifier(t)] if t.quote_style.is_none() => t,
        _ => return None,
    };
    PG_TABLES
        .iter()
        .find(|(n, _)| *n == table.value)
        .map(|(n, _)| *n)
}

/// Whether `select` inner-joins an always-empty catalog table, so it has
/// no rows whatever the rest of it says.
fn yields_nothing(select: &ast::Select) -> bool {
    let empty = |f: &ast::TableFactor| match f {
        ast::TableFactor::Table {
            name, args: None, ..
        } => catalog_table(name).is_some_and(|t| !POPULATED.contains(&t)),
        _ => false,
    };
    select.from.iter().any(|from| {
        empty(&from.relation)
            || from.joins.iter().any(|j| {
                matches!(
                    j.join_operator,
                    ast::JoinOperator::Join(_)
                        | ast::JoinOperator::Inner(_)
                        | ast::JoinOperator::CrossJoin(_)
                ) && empty(&j.relation)
            })
    })
}

/// A select known to have no rows becomes `SELECT NULL AS c, .. WHERE
/// false`: the same (empty) answer with the same column names, without
/// the expressions DataFusion can't plan (array comparisons, `ANY` over
/// catalog arrays, correlated subqueries).
fn blank_empty_selects(body: &mut ast::SetExpr) {
    match body {
        ast::SetExpr::Select(select) if yields_nothing(select) => {
            let names: Vec<String> = select
                .projection
                .iter()
                .map(|item| match item {
                    ast::SelectItem::ExprWithAlias { alias, .. } => alias.value.clone(),
                    ast::SelectItem::UnnamedExpr(Expr::Identifier(id)) => id.value.clone(),
                    ast::SelectItem::UnnamedExpr(Expr::CompoundIdentifier(ids)) => ids
                        .last()
                        .map_or_else(|| "?column?".to_owned(), |i| i.value.clone()),
                    ast::SelectItem::UnnamedExpr(Expr::Function(f)) => f
                        .name
                        .0
                        .last()
                        .and_then(|p| p.as_ident())
                        .map_or_else(|| "?column?".to_owned(), |i| i.value.clone()),
                    _ => "?column?".to_owned(),
                })
                .collect();
            let mut seen = BTreeSet::new();
            select.projection = names
                .into_iter()
                .enumerate()
                .map(|(i, name)| {
                    // Names must be unique to DataFusion.
                    let name = if seen.insert(name.clone()) {
                        name
                    } else {
                        format!("{name}_{i}")
                    };
                    ast::SelectItem::ExprWithAlias {
                        expr: Expr::value(ast::Value::Null),
                        alias: Ident::with_quote('"', name),
                    }
                })
                .collect();
            select.selection = Some(Expr::value(ast::Value::Boolean(false)));
            select.group_by = ast::GroupByExpr::Expressions(Vec::new(), Vec::new());
            select.having = None;
        }
        ast::SetExpr::SetOperation { left, right, .. } => {
            blank_empty_selects(left);
            blank_empty_selects(right);
        }
        ast::SetExpr::Query(q) => blank_empty_selects(&mut q.body),
        _ => {}
    }
}

/// Whether every table `q` reads is a `pg_catalog` table.
fn reads_only_catalog(q: &ast::Query) -> bool {
    let mut tables = 0;
    let mut others = 0;
    let _ = ast::visit_relations(q, |r: &ObjectName| {
        let unnest = matches!(r.0.as_slice(),
            [ObjectNamePart::Identifier(s), ObjectNamePart::Identifier(t)]
                if s.value == "pg_catalog" && t.value == "unnest");
        let catalog = unnest || catalog_table(r).is_some();
        if catalog {
            tables += 1;
        } else {
            others += 1;
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
    tables > 0 && others == 0
}

fn standard_operator(op: &str) -> Option<BinaryOperator> {
    Some(match op {
        "~" => BinaryOperator::PGRegexMatch,
        "~*" => BinaryOperator::PGRegexIMatch,
        "!~" => BinaryOperator::PGRegexNotMatch,
        "!~*" => BinaryOperator::PGRegexNotIMatch,
        "~~" => BinaryOperator::PGLikeMatch,
        "!~~" => BinaryOperator::PGNotLikeMatch,
        "=" => BinaryOperator::Eq,
        "<>" => BinaryOperator::NotEq,
        "<" => BinaryOperator::Lt,
        "<=" => BinaryOperator::LtEq,
        ">" => BinaryOperator::Gt,
        ">=" => BinaryOperator::GtEq,
        _ => return None,
    })
}

fn call(name: &str, arg: Expr) -> Expr {
    Expr::Function(ast::Function {
        name: ObjectName::from(vec![Ident::new(name)]),
        uses_odbc_syntax: false,
        parameters: ast::FunctionArguments::None,
        args: ast::FunctionArguments::List(ast::FunctionArgumentList {
            duplicate_treatment: None,
            args: vec![ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(arg))],
            clauses: Vec::new(),
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(sql: &str, postgres_names: bool) -> String {
        let mut statements = datafusion::sql::parser::DFParser::parse_sql(sql).unwrap();
        let mut statement = statements.pop_front().unwrap();
        rewrite(&mut statement, postgres_names);
        statement.to_string()
    }

    #[test]
    fn catalog_syntax_becomes_what_datafusion_plans() {
        assert_eq!(
            rewritten(
                "SELECT c.oid FROM pg_class c WHERE c.relname OPERATOR(pg_catalog.~) '^(up)$' \
                 COLLATE pg_catalog.default AND pg_catalog.pg_table_is_visible(c.oid)",
                false
            ),
            "SELECT c.oid FROM pg_catalog.pg_class c WHERE c.relname ~ '^(up)$' \
             AND pg_table_is_visible(c.oid)"
        );
        assert_eq!(
            rewritten(
                "SELECT 'pg_class'::regclass, t::pg_catalog.regtype::pg_catalog.text, x::oid",
                false
            ),
            "SELECT strata_regclass('pg_class'), format_type(t)::TEXT, x::BIGINT"
        );
        // A subquery over a catalog table that is always empty has no
        // row: its select becomes one of NULLs that filters everything.
        assert_eq!(
            rewritten(
                "SELECT (SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d \
                 WHERE d.adrelid = a.attrelid AND a.atthasdef) FROM pg_attribute a",
                false
            ),
            "SELECT (SELECT NULL AS \"pg_get_expr\" FROM pg_catalog.pg_attrdef d WHERE false) \
             FROM pg_catalog.pg_attribute a"
        );
        // One over populated tables gets the aggregate DataFusion wants.
        assert_eq!(
            rewritten(
                "SELECT (SELECT t.typname FROM pg_type t WHERE t.oid = a.atttypid) FROM pg_attribute a",
                false
            ),
            "SELECT (SELECT max(t.typname) FROM pg_catalog.pg_type t WHERE t.oid = a.atttypid) \
             FROM pg_catalog.pg_attribute a"
        );
        // `t.c, t.*`: the wildcard keeps `c`.
        assert_eq!(
            rewritten("SELECT n.oid, n.*, d.x FROM pg_namespace n, y d", false),
            "SELECT n.*, d.x FROM pg_catalog.pg_namespace n, y d"
        );
        // Tables of the user's own are left alone, even named like ours
        // when quoted.
        assert_eq!(
            rewritten("SELECT * FROM \"pg_class\", up", false),
            "SELECT * FROM \"pg_class\", up"
        );
    }

    #[test]
    fn postgres_names_unaliased_function_columns_after_the_function() {
        assert_eq!(
            rewritten(
                "SELECT count(*), sum(v) AS s, current_schema() FROM t",
                true
            ),
            "SELECT count(*) AS \"count\", sum(v) AS s, current_schema() AS \"current_schema\" FROM t"
        );
        // Not when two would share a name (DataFusion refuses that).
        assert_eq!(
            rewritten("SELECT max(a), max(b) FROM t", true),
            "SELECT max(a), max(b) FROM t"
        );
        assert_eq!(
            rewritten("SELECT count(*) FROM t", false),
            "SELECT count(*) FROM t"
        );
    }
}
