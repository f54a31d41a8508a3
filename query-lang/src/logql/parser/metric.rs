//! Metric expressions: range aggregations (with `unwrap`), vector
//! aggregations, `label_replace`, `vector`, and binary operators with
//! PromQL's precedence and vector matching.

use std::time::Duration;

use super::super::ast::*;
use super::{ParseError, Parser, Tok, parse_duration};

impl Parser {
    /// Metric expressions by precedence climbing.
    pub(super) fn metric(&mut self, min_prec: u8) -> Result<MetricExpr, ParseError> {
        let mut lhs = self.metric_unary()?;
        while let Some((op, prec, right_assoc)) = self.binop() {
            if prec < min_prec {
                break;
            }
            self.next();
            let bool_modifier = matches!(self.peek(), Tok::Ident(w) if w == "bool");
            if bool_modifier {
                if !op.is_comparison() {
                    return Err(self.error("bool is only allowed on comparisons".into()));
                }
                self.next();
            }
            let matching = self.vector_matching(op)?;
            let rhs = self.metric(if right_assoc { prec } else { prec + 1 })?;
            lhs = MetricExpr::Binary {
                op,
                bool_modifier,
                matching,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
            };
        }
        Ok(lhs)
    }

    /// PromQL's precedence: `or` < `and unless` < comparisons < `+ -` <
    /// `* / %` < `^` (right-associative).
    fn binop(&self) -> Option<(BinOp, u8, bool)> {
        Some(match self.peek() {
            Tok::Ident(w) if w == "or" => (BinOp::Or, 1, false),
            Tok::Ident(w) if w == "and" => (BinOp::And, 2, false),
            Tok::Ident(w) if w == "unless" => (BinOp::Unless, 2, false),
            Tok::Sym("==") => (BinOp::Eq, 3, false),
            Tok::Sym("!=") => (BinOp::Ne, 3, false),
            Tok::Sym(">") => (BinOp::Gt, 3, false),
            Tok::Sym(">=") => (BinOp::Ge, 3, false),
            Tok::Sym("<") => (BinOp::Lt, 3, false),
            Tok::Sym("<=") => (BinOp::Le, 3, false),
            Tok::Sym("+") => (BinOp::Add, 4, false),
            Tok::Sym("-") => (BinOp::Sub, 4, false),
            Tok::Sym("*") => (BinOp::Mul, 5, false),
            Tok::Sym("/") => (BinOp::Div, 5, false),
            Tok::Sym("%") => (BinOp::Mod, 5, false),
            Tok::Sym("^") => (BinOp::Pow, 6, true),
            _ => return None,
        })
    }

    /// `on(…)`/`ignoring(…)` and `group_left(…)`/`group_right(…)`.
    fn vector_matching(&mut self, op: BinOp) -> Result<VectorMatching, ParseError> {
        let mut m = VectorMatching::default();
        match self.peek() {
            Tok::Ident(w) if w == "on" || w == "ignoring" => {
                m.on = w == "on";
                self.next();
                m.labels = self.label_list()?;
            }
            _ => return Ok(m),
        }
        let left = match self.peek() {
            Tok::Ident(w) if w == "group_left" => true,
            Tok::Ident(w) if w == "group_right" => false,
            _ => return Ok(m),
        };
        if op.is_set() {
            return Err(self.error("no grouping allowed for and, or, unless".into()));
        }
        self.next();
        let extra = if self.peek() == &Tok::Sym("(") {
            self.label_list()?
        } else {
            Vec::new()
        };
        if let Some(l) = extra.iter().find(|l| m.on && m.labels.contains(l)) {
            return Err(self.error(format!(
                "label {l:?} must not occur in ON and GROUP clause at once"
            )));
        }
        m.card = if left {
            Cardinality::ManyToOne(extra)
        } else {
            Cardinality::OneToMany(extra)
        };
        Ok(m)
    }

    /// `(a, b, …)`.
    fn label_list(&mut self) -> Result<Vec<String>, ParseError> {
        self.expect("(")?;
        let mut names = Vec::new();
        while self.peek() != &Tok::Sym(")") {
            names.push(self.ident()?);
            if self.peek() == &Tok::Sym(",") {
                self.next();
            } else if self.peek() != &Tok::Sym(")") {
                return Err(self.error(format!("expected , or ), found {}", self.describe())));
            }
        }
        self.expect(")")?;
        Ok(names)
    }

    fn metric_unary(&mut self) -> Result<MetricExpr, ParseError> {
        match self.peek().clone() {
            Tok::Num(n) => {
                self.next();
                Ok(MetricExpr::Number(n))
            }
            Tok::Sym("-") => {
                self.next();
                let inner = self.metric_unary()?;
                Ok(MetricExpr::Binary {
                    op: BinOp::Mul,
                    bool_modifier: false,
                    matching: VectorMatching::default(),
                    lhs: Box::new(MetricExpr::Number(-1.0)),
                    rhs: Box::new(inner),
                })
            }
            Tok::Sym("(") => {
                self.next();
                let e = self.metric(0)?;
                self.expect(")")?;
                Ok(e)
            }
            Tok::Ident(name) => {
                self.next();
                if let Some(func) = RangeFn::from_name(&name) {
                    return self.range_aggregation(&name, func);
                }
                match name.as_str() {
                    "vector" => {
                        self.expect("(")?;
                        let v = self.number("vector() takes a number")?;
                        self.expect(")")?;
                        Ok(MetricExpr::Vector(v))
                    }
                    "label_replace" => {
                        self.expect("(")?;
                        let inner = self.metric(0)?;
                        let mut args = Vec::new();
                        for _ in 0..4 {
                            self.expect(",")?;
                            args.push(self.string()?);
                        }
                        self.expect(")")?;
                        let regex = regex::Regex::new(&format!("^(?s:{})$", args[3]))
                            .map_err(|e| self.error(format!("invalid regex {:?}: {e}", args[3])))?;
                        let mut args = args.into_iter();
                        let (dst, replacement, src) = (
                            args.next().unwrap_or_default(),
                            args.next().unwrap_or_default(),
                            args.next().unwrap_or_default(),
                        );
                        if !valid_label_name(&dst) {
                            return Err(
                                self.error(format!("invalid destination label name {dst:?}"))
                            );
                        }
                        Ok(MetricExpr::LabelReplace {
                            inner: Box::new(inner),
                            dst,
                            replacement,
                            src,
                            regex,
                        })
                    }
                    "sum" | "avg" | "min" | "max" | "count" | "stddev" | "stdvar" | "topk"
                    | "bottomk" | "sort" | "sort_desc" => self.vector_aggregation(&name),
                    other => Err(ParseError {
                        pos: self.toks[self.at - 1].0,
                        message: format!("unknown function or aggregation {other:?}"),
                    }),
                }
            }
            _ => Err(self.error(format!(
                "expected a metric query (e.g. rate({{job=\"x\"}}[5m])), found {}",
                self.describe()
            ))),
        }
    }

    fn number(&mut self, what: &str) -> Result<f64, ParseError> {
        match self.next() {
            Tok::Num(n) => Ok(n),
            Tok::Sym("-") => match self.next() {
                Tok::Num(n) => Ok(-n),
                _ => Err(self.error(what.to_owned())),
            },
            _ => Err(self.error(what.to_owned())),
        }
    }

    fn vector_aggregation(&mut self, name: &str) -> Result<MetricExpr, ParseError> {
        let op = match name {
            "sum" => AggOp::Sum,
            "avg" => AggOp::Avg,
            "min" => AggOp::Min,
            "max" => AggOp::Max,
            "count" => AggOp::Count,
            "stddev" => AggOp::Stddev,
            "stdvar" => AggOp::Stdvar,
            "topk" => AggOp::Topk,
            "bottomk" => AggOp::Bottomk,
            "sort" => AggOp::Sort,
            _ => AggOp::SortDesc,
        };
        let mut grouping = self.grouping()?;
        self.expect("(")?;
        let param = if matches!(op, AggOp::Topk | AggOp::Bottomk) {
            let k = match self.next() {
                Tok::Num(n) if n >= 1.0 => n,
                _ => return Err(self.error(format!("{name} needs k ≥ 1 first"))),
            };
            self.expect(",")?;
            Some(k)
        } else {
            None
        };
        let inner = self.metric(0)?;
        self.expect(")")?;
        if grouping.is_none() {
            grouping = self.grouping()?;
        }
        if matches!(op, AggOp::Sort | AggOp::SortDesc) && grouping.is_some() {
            return Err(self.error(format!("{name} takes no grouping")));
        }
        Ok(MetricExpr::Aggregate {
            op,
            grouping,
            param,
            inner: Box::new(inner),
        })
    }

    /// `f([φ,] {sel} [range] | pipeline | unwrap x [offset d]) [by (…)]`;
    /// the range may also follow the selector directly.
    fn range_aggregation(&mut self, name: &str, func: RangeFn) -> Result<MetricExpr, ParseError> {
        self.expect("(")?;
        let param = if func == RangeFn::QuantileOverTime {
            let q =
                self.number("quantile_over_time takes φ first, e.g. quantile_over_time(0.99, …)")?;
            self.expect(",")?;
            Some(q)
        } else {
            None
        };
        // `({sel} | pipeline)[range]`, `{sel}[range] | pipeline` or
        // `{sel} | pipeline [range]`.
        let parenthesized = self.peek() == &Tok::Sym("(");
        if parenthesized {
            self.next();
        }
        let matchers = self.selector()?;
        let mut range = None;
        if !parenthesized && self.peek() == &Tok::Sym("[") {
            range = Some(self.range_and_offset()?);
        }
        let pipeline = self.pipeline()?;
        let mut unwrap = self.unwrap()?;
        if parenthesized {
            self.expect(")")?;
            range = Some(self.range_and_offset()?);
            if unwrap.is_none() {
                unwrap = self.unwrap()?;
            }
        }
        let (range, offset) = match range {
            Some(r) => r,
            None => self.range_and_offset()?,
        };
        self.expect(")")?;
        let grouping = self.grouping()?;
        if func.needs_unwrap() && unwrap.is_none() {
            return Err(self.error(format!(
                "invalid aggregation {name} without unwrap (e.g. {name}({{job=\"x\"}} | logfmt | unwrap duration [5m]))"
            )));
        }
        if func.refuses_unwrap() && unwrap.is_some() {
            return Err(self.error(format!("invalid aggregation {name} with unwrap")));
        }
        if grouping.is_some() && !func.takes_grouping() {
            return Err(self.error(format!("grouping not allowed for {name} aggregation")));
        }
        Ok(MetricExpr::Range {
            func,
            log: LogExpr { matchers, pipeline },
            range,
            offset,
            unwrap,
            param,
            grouping,
        })
    }

    /// `[5m]` and an optional `offset 1h`.
    fn range_and_offset(&mut self) -> Result<(Duration, Duration), ParseError> {
        self.expect("[")?;
        let range = match self.next() {
            Tok::Unit(u) => {
                parse_duration(&u).ok_or_else(|| self.error(format!("bad range {u:?}")))?
            }
            _ => return Err(self.error("expected a range like [5m]".into())),
        };
        self.expect("]")?;
        if range.is_zero() {
            return Err(self.error("the range must be positive".into()));
        }
        let mut offset = Duration::ZERO;
        if matches!(self.peek(), Tok::Ident(w) if w == "offset") {
            self.next();
            offset = match self.next() {
                Tok::Unit(u) => {
                    parse_duration(&u).ok_or_else(|| self.error(format!("bad offset {u:?}")))?
                }
                _ => return Err(self.error("expected an offset like 1h".into())),
            };
        }
        Ok((range, offset))
    }

    /// `| unwrap [duration|duration_seconds|bytes(]label[)]` and the label
    /// filters after it.
    fn unwrap(&mut self) -> Result<Option<Unwrap>, ParseError> {
        if !(self.peek() == &Tok::Sym("|")
            && matches!(self.peek_at(1), Tok::Ident(w) if w == "unwrap"))
        {
            return Ok(None);
        }
        self.next();
        self.next();
        let first = self.ident()?;
        let (label, conversion) = if self.peek() == &Tok::Sym("(") {
            let conversion = match first.as_str() {
                "duration" | "duration_seconds" => Conversion::Duration,
                "bytes" => Conversion::Bytes,
                other => {
                    return Err(self.error(format!(
                        "unknown unwrap conversion {other:?} (duration, duration_seconds, bytes)"
                    )));
                }
            };
            self.next();
            let label = self.ident()?;
            self.expect(")")?;
            (label, conversion)
        } else {
            (first, Conversion::Float)
        };
        let mut post_filters = Vec::new();
        while self.peek() == &Tok::Sym("|") {
            self.next();
            post_filters.push(self.label_or()?);
        }
        Ok(Some(Unwrap {
            label,
            conversion,
            post_filters,
        }))
    }

    pub(super) fn grouping(&mut self) -> Result<Option<Grouping>, ParseError> {
        let by = match self.peek() {
            Tok::Ident(w) if w == "by" => true,
            Tok::Ident(w) if w == "without" => false,
            _ => return Ok(None),
        };
        self.next();
        let names = self.label_list()?;
        Ok(Some(if by {
            Grouping::By(names)
        } else {
            Grouping::Without(names)
        }))
    }
}

fn valid_label_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}
