//! Numbers as Prometheus' JSON writer lays them out: sample values as
//! Go's `strconv.FormatFloat` writes them, timestamps as seconds with up
//! to three decimals. A range query's answer is mostly these (a panel of
//! 10,000 series × 120 steps writes 1.2M of each), so they are written
//! from the shortest digits (`zmij`) without `core::fmt`.

/// A sample's value as Prometheus writes one (`jsonutil.MarshalFloat`):
/// Go's `strconv.FormatFloat(v, 'f', -1, 64)`, with `e` notation for
/// |v| < 1e-6 and |v| ≥ 1e21.
pub(super) fn write_value(b: &mut Vec<u8>, v: f64) {
    write_float(b, v, true);
}

/// A scalar result's value (`promql.Scalar`'s JSON): `'f'` whatever the
/// magnitude.
pub(super) fn write_scalar(b: &mut Vec<u8>, v: f64) {
    write_float(b, v, false);
}

fn write_float(b: &mut Vec<u8>, v: f64, exponents: bool) {
    if v.is_nan() {
        b.extend_from_slice(b"NaN");
        return;
    }
    if v.is_infinite() {
        b.extend_from_slice(if v > 0.0 { b"+Inf" } else { b"-Inf" });
        return;
    }
    if v == 0.0 {
        b.extend_from_slice(if v.is_sign_negative() { b"-0" } else { b"0" });
        return;
    }
    let mut buf = zmij::Buffer::new();
    let s = buf.format_finite(v).as_bytes();
    let (negative, s) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    // The shortest digits `d` (no leading or trailing zero) and `point`:
    // |v| = 0.d × 10^point, whatever layout the formatter chose.
    let (mantissa, exp) = match s.iter().position(|&c| c == b'e' || c == b'E') {
        Some(i) => (&s[..i], parse_exp(&s[i + 1..])),
        None => (s, 0),
    };
    let int_len = mantissa
        .iter()
        .position(|&c| c == b'.')
        .unwrap_or(mantissa.len());
    // On the stack: an answer writes a million of these (at most 17
    // significant digits, and a few zeros around them).
    let mut held = [0u8; 48];
    let mut n = 0;
    for &c in mantissa.iter().filter(|c| c.is_ascii_digit()) {
        if let Some(slot) = held.get_mut(n) {
            *slot = c;
            n += 1;
        }
    }
    let lead = held[..n].iter().take_while(|&&c| c == b'0').count();
    let mut digits = &held[lead..n];
    let point = int_len as i32 + exp - lead as i32;
    while let [rest @ .., b'0'] = digits {
        digits = rest;
    }
    if negative {
        b.push(b'-');
    }
    if !exponents || (1e-6..1e21).contains(&v.abs()) {
        write_fixed(b, digits, point);
    } else {
        write_exponent(b, digits, point - 1);
    }
}

fn parse_exp(s: &[u8]) -> i32 {
    let (negative, s) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, s),
    };
    let n = s
        .iter()
        .fold(0i32, |n, &c| n * 10 + i32::from(c.wrapping_sub(b'0')));
    if negative { -n } else { n }
}

/// `0.d × 10^point` without an exponent: `123.45`, `0.00012`, `1200`.
fn write_fixed(b: &mut Vec<u8>, digits: &[u8], point: i32) {
    if point <= 0 {
        b.extend_from_slice(b"0.");
        b.extend(std::iter::repeat_n(b'0', point.unsigned_abs() as usize));
        b.extend_from_slice(digits);
    } else if point as usize >= digits.len() {
        b.extend_from_slice(digits);
        b.extend(std::iter::repeat_n(b'0', point as usize - digits.len()));
    } else {
        let (int, frac) = digits.split_at(point as usize);
        b.extend_from_slice(int);
        b.push(b'.');
        b.extend_from_slice(frac);
    }
}

/// `d.ddd × 10^exp` as Go writes it: `1.5e-07`, `1e+21` (a sign and at
/// least two exponent digits).
fn write_exponent(b: &mut Vec<u8>, digits: &[u8], exp: i32) {
    if let Some((first, rest)) = digits.split_first() {
        b.push(*first);
        if !rest.is_empty() {
            b.push(b'.');
            b.extend_from_slice(rest);
        }
    }
    b.push(b'e');
    b.push(if exp < 0 { b'-' } else { b'+' });
    let e = exp.unsigned_abs();
    if e < 10 {
        b.push(b'0');
    }
    b.extend_from_slice(itoa::Buffer::new().format(e).as_bytes());
}

/// A scalar or string result's time: seconds as Go's JSON writes a
/// float (`1.5`).
pub(super) fn write_float_seconds(b: &mut Vec<u8>, ms: i64) {
    if ms % 1000 == 0 {
        b.extend_from_slice(itoa::Buffer::new().format(ms / 1000).as_bytes());
    } else {
        let _ = serde_json::to_writer(&mut *b, &(ms as f64 / 1000.0));
    }
}

/// A sample's time as Prometheus writes one (`jsonutil.MarshalTimestamp`):
/// the whole seconds, then a fraction of exactly three digits when there
/// is one (`1.5` s is `1.500`).
pub(super) fn write_ts(b: &mut Vec<u8>, ms: i64) {
    if ms < 0 {
        b.push(b'-');
    }
    let ms = ms.unsigned_abs();
    b.extend_from_slice(itoa::Buffer::new().format(ms / 1000).as_bytes());
    let fraction = ms % 1000;
    if fraction != 0 {
        b.push(b'.');
        if fraction < 100 {
            b.push(b'0');
        }
        if fraction < 10 {
            b.push(b'0');
        }
        b.extend_from_slice(itoa::Buffer::new().format(fraction).as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layout written with `core::fmt` before: Rust's shortest
    /// round-trip digits, Go's exponent form.
    fn reference(v: f64) -> String {
        if v.is_nan() {
            return "NaN".into();
        }
        if v.is_infinite() {
            return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
        }
        if v != 0.0 && !(1e-6..1e21).contains(&v.abs()) {
            let s = format!("{v:e}");
            let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
            let (sign, digits) = match e.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', e),
            };
            return format!("{m}e{sign}{digits:0>2}");
        }
        format!("{v}")
    }

    fn value(v: f64) -> String {
        let mut b = Vec::new();
        write_value(&mut b, v);
        String::from_utf8(b).unwrap_or_default()
    }

    /// Values are written digit for digit as Go writes them: edges of the
    /// fixed range, extremes, integers, fractions, a tie, and a million
    /// values from random bits against `core::fmt` (the writer before).
    #[test]
    fn values_are_written_as_go_writes_them() {
        let cases = [
            ("1", 1.0),
            ("-2.5", -2.5),
            ("1.5e+21", 1.5e21),
            ("123456789012", 123456789012.0),
            ("0.1", 0.1),
            ("100", 100.0),
            ("1234567.125", 1234567.125),
            ("0.000001", 1e-6),
            ("9.99999e-07", 9.99999e-7),
            ("1e-07", 1e-7),
            ("1e+21", 1e21),
            ("999999999999999900000", 9.999999999999999e20),
            ("1.5e+22", 1.5e22),
            ("1.7976931348623157e+308", f64::MAX),
            ("5e-324", 5e-324),
            ("0", 0.0),
            ("-0", -0.0),
            ("NaN", f64::NAN),
            ("+Inf", f64::INFINITY),
            ("-Inf", f64::NEG_INFINITY),
            ("123456789012345680000", 123456789012345680000.0),
            ("0.30000000000000004", 0.1 + 0.2),
            // Halfway between two 17-digit candidates: Go (Prometheus
            // 2.42 answers `1690060720831323.2`) rounds to even, where
            // Rust's `core::fmt` writes `…323.3`.
            ("1690060720831323.2", f64::from_bits(0x4318_0467_b3a7_ed6d)),
        ];
        for (want, v) in cases {
            assert_eq!(value(v), want, "{v:?}");
        }
        let scalar = |v: f64| {
            let mut b = Vec::new();
            write_scalar(&mut b, v);
            String::from_utf8(b).unwrap_or_default()
        };
        assert_eq!(scalar(1e21), "1000000000000000000000");
        assert_eq!(scalar(1e-7), "0.0000001");
        assert_eq!(scalar(-2.5), "-2.5");
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for i in 0..1_000_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Random bits, and values a gauge or counter holds.
            let v = if i % 2 == 0 {
                f64::from_bits(x)
            } else {
                (x % 100_000_000) as f64 / 10f64.powi((x >> 60) as i32)
            };
            let (ours, theirs) = (value(v), reference(v));
            if ours != theirs {
                // Only a tie between two shortest candidates may differ:
                // both read back as `v`, ours ends in the even digit.
                let last = |s: &str| {
                    s.split(['e', 'E'])
                        .next()
                        .and_then(|m| m.bytes().last())
                        .unwrap_or(b'0')
                };
                assert_eq!(ours.len(), theirs.len(), "{v:?}: {ours} / {theirs}");
                assert_eq!(ours.parse::<f64>().ok(), Some(v), "{ours}");
                assert_eq!(theirs.parse::<f64>().ok(), Some(v), "{theirs}");
                assert_eq!(last(&ours) % 2, 0, "{v:?}: {ours} / {theirs}");
            }
        }
    }

    #[test]
    fn timestamps_are_seconds_with_three_decimals_or_none() {
        let ts = |ms: i64| {
            let mut b = Vec::new();
            write_ts(&mut b, ms);
            String::from_utf8(b).unwrap_or_default()
        };
        assert_eq!(ts(1_796_456_325_000), "1796456325");
        assert_eq!(ts(1_796_456_325_011), "1796456325.011");
        assert_eq!(ts(1_500), "1.500");
        assert_eq!(ts(1_050), "1.050");
        assert_eq!(ts(5), "0.005");
        assert_eq!(ts(0), "0");
        assert_eq!(ts(-1_500), "-1.500");
        assert_eq!(ts(-3_000), "-3");
    }
}
