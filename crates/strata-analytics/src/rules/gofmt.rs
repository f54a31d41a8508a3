//! Numbers printed as Go prints them, for rule templates: `{{ $value }}`
//! is Go's `%v` of a float64, `humanize` is `%.4g`, `printf` takes Go's
//! verbs. Prometheus users read these strings in alerts; the same value
//! must read the same from Strata as from Prometheus.

/// The decimal digits of `v` (no leading or trailing zeros) and the
/// position of the decimal point (`0.0123` is `("123", -1)`), rounded to
/// `sig` significant digits, or the shortest that reads back as `v`.
/// `v` is finite and not zero.
fn digits(v: f64, sig: Option<usize>) -> (Vec<u8>, i32) {
    let s = match sig {
        Some(p) => format!("{:.*e}", p.max(1) - 1, v.abs()),
        None => format!("{:e}", v.abs()),
    };
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut d: Vec<u8> = mant.bytes().filter(u8::is_ascii_digit).collect();
    while d.len() > 1 && d.last() == Some(&b'0') {
        d.pop();
    }
    (d, exp + 1)
}

/// NaN, the infinities and zero, which have no digits to lay out.
fn special(v: f64) -> Option<String> {
    if v.is_nan() {
        Some("NaN".into())
    } else if v.is_infinite() {
        Some(if v > 0.0 { "+Inf" } else { "-Inf" }.into())
    } else if v == 0.0 {
        Some(if v.is_sign_negative() { "-0" } else { "0" }.into())
    } else {
        None
    }
}

/// `d` with the exponent form of Go: `1.5e+06`, `1e-07`.
fn fmt_e(out: &mut String, d: &[u8], dp: i32, prec: usize) {
    out.push(char::from(d[0]));
    if prec > 0 {
        out.push('.');
        for i in 1..=prec {
            out.push(char::from(d.get(i).copied().unwrap_or(b'0')));
        }
    }
    let exp = dp - 1;
    out.push('e');
    out.push(if exp < 0 { '-' } else { '+' });
    let e = exp.unsigned_abs();
    if e < 10 {
        out.push('0');
    }
    out.push_str(&e.to_string());
}

/// `d` with `frac` digits after the point.
fn fmt_f(out: &mut String, d: &[u8], dp: i32, frac: usize) {
    if dp <= 0 {
        out.push('0');
    } else {
        for i in 0..dp as usize {
            out.push(char::from(d.get(i).copied().unwrap_or(b'0')));
        }
    }
    if frac > 0 {
        out.push('.');
        for i in 0..frac as i64 {
            let at = i64::from(dp) + i;
            let c = if at < 0 {
                b'0'
            } else {
                d.get(at as usize).copied().unwrap_or(b'0')
            };
            out.push(char::from(c));
        }
    }
}

/// Go's `%g` (`prec` None: shortest, as `%v` prints a float64) —
/// `strconv.FormatFloat(v, 'g', prec, 64)`.
pub fn format_g(v: f64, prec: Option<usize>) -> String {
    if let Some(s) = special(v) {
        return s;
    }
    let (d, dp) = digits(v, prec.map(|p| p.max(1)));
    let nd = d.len() as i32;
    let shortest = prec.is_none();
    let mut p = prec.map_or(nd, |p| p.max(1) as i32);
    let mut eprec = p;
    if eprec > nd && nd >= dp {
        eprec = nd;
    }
    if shortest {
        eprec = 6;
    }
    let exp = dp - 1;
    let mut out = String::new();
    if v < 0.0 {
        out.push('-');
    }
    if exp < -4 || exp >= eprec {
        if p > nd {
            p = nd;
        }
        fmt_e(&mut out, &d, dp, (p - 1).max(0) as usize);
    } else {
        if p > dp {
            p = nd;
        }
        fmt_f(&mut out, &d, dp, (p - dp).max(0) as usize);
    }
    out
}

/// Fractional digits past which a float64's exact decimal expansion is
/// all zeros (its smallest subnormal has 1074).
const EXACT_FRACTION_DIGITS: usize = 1100;

/// Go's `%.Nf` (`%f` is `%.6f`): the exact decimal expansion, as Rust's
/// formatter writes it, which takes at most 65535 digits; past
/// [`EXACT_FRACTION_DIGITS`] only zeros follow, written here.
pub fn format_f(v: f64, prec: usize) -> String {
    if v.is_nan() || v.is_infinite() {
        return special(v).unwrap_or_default();
    }
    if prec <= EXACT_FRACTION_DIGITS {
        return format!("{v:.prec$}");
    }
    let mut out = format!("{v:.EXACT_FRACTION_DIGITS$}");
    out.extend(std::iter::repeat_n('0', prec - EXACT_FRACTION_DIGITS));
    out
}

/// Go's `%.Ne` (`%e` is `%.6e`).
pub fn format_e(v: f64, prec: usize) -> String {
    if v.is_nan() || v.is_infinite() {
        return special(v).unwrap_or_default();
    }
    let mut out = String::new();
    if v.is_sign_negative() {
        out.push('-');
    }
    if v == 0.0 {
        fmt_e(&mut out, b"0", 1, prec);
        return out;
    }
    let (d, dp) = digits(v, Some(prec + 1));
    fmt_e(&mut out, &d, dp, prec);
    out
}

/// Go's `strconv.FormatFloat(v, 'e', -1, 64)`: `1e+00`, `1.5e+03` (how
/// Prometheus' API writes an alert's value).
pub fn format_e_shortest(v: f64) -> String {
    if v.is_nan() || v.is_infinite() {
        return special(v).unwrap_or_default();
    }
    let mut out = String::new();
    if v.is_sign_negative() {
        out.push('-');
    }
    if v == 0.0 {
        out.push_str("0e+00");
        return out;
    }
    let (d, dp) = digits(v, None);
    fmt_e(&mut out, &d, dp, d.len() - 1);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the fuzzer: `{{ printf "%.800004f" $value }}` once
    /// panicked (Rust's formatter takes at most 65535 digits).
    #[test]
    fn huge_precisions_write_every_digit() {
        let wide = format_f(0.1, 70_000);
        assert_eq!(wide.len(), 2 + 70_000);
        // 0.1 is 0.1000000000000000055511151231257827021181583404541015625.
        assert_eq!(&wide[..62], &format_f(0.1, 60)[..]);
        assert!(wide[2 + EXACT_FRACTION_DIGITS..].bytes().all(|b| b == b'0'));
        assert_eq!(
            format_f(5e-324, EXACT_FRACTION_DIGITS + 5),
            format!("{:.1105}", 5e-324)
        );
    }

    #[test]
    fn floats_print_as_go_prints_them() {
        // fmt.Sprint(v) of each, from Go 1.22.
        for (v, want) in [
            (1.0, "1"),
            (0.5, "0.5"),
            (123456.0, "123456"),
            (1e6, "1e+06"),
            (1234567.0, "1.234567e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.5, "-2.5"),
            (0.1 + 0.2, "0.30000000000000004"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (0.0, "0"),
        ] {
            assert_eq!(format_g(v, None), want, "{v}");
        }
        // fmt.Sprintf("%.4g", v).
        for (v, want) in [
            (1.5, "1.5"),
            (100.0, "100"),
            (1234.0, "1234"),
            (12345.0, "1.234e+04"),
            (0.001234, "0.001234"),
            (0.000012345, "1.234e-05"),
            (999.95, "1000"),
            (2.0 / 3.0, "0.6667"),
        ] {
            assert_eq!(format_g(v, Some(4)), want, "{v}");
        }
        assert_eq!(format_f(2.0 / 3.0, 2), "0.67");
        assert_eq!(format_e(1234.5678, 2), "1.23e+03");
        assert_eq!(format_e(0.0, 1), "0.0e+00");
        assert_eq!(format_e_shortest(1.0), "1e+00");
        assert_eq!(format_e_shortest(1234.5), "1.2345e+03");
        assert_eq!(format_e_shortest(0.05), "5e-02");
    }
}
