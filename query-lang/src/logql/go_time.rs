//! Go's time layouts ("2006-01-02T15:04:05Z07:00") for LogQL templates'
//! `date`, `toDate` and `toDateInZone`; every time is UTC.

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Timelike, Utc};

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// A Go layout element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum El {
    LongMonth,
    Month,
    NumMonth,
    ZeroMonth,
    LongWeekday,
    Weekday,
    Day,
    UnderDay,
    ZeroDay,
    YearDay,
    Hour,
    Hour12,
    ZeroHour12,
    Minute,
    ZeroMinute,
    Second,
    ZeroSecond,
    LongYear,
    Year,
    PmUpper,
    PmLower,
    TzName,
    /// `Z07:00` (true: "Z" for UTC) or `-07:00`.
    Offset(bool, &'static str),
    /// Fractional seconds: digits, and whether trailing zeros go (`.999`).
    Frac(usize, bool),
}

impl El {
    /// Written as words, not digits (what a fraction may not follow).
    fn is_text(self) -> bool {
        matches!(
            self,
            Self::LongMonth
                | Self::Month
                | Self::LongWeekday
                | Self::Weekday
                | Self::PmUpper
                | Self::PmLower
                | Self::TzName
        )
    }
}

/// The next layout element at the start of `s`: (element, its length).
fn element(s: &str, prev_digit: bool) -> Option<(El, usize)> {
    const TABLE: &[(&str, El)] = &[
        ("January", El::LongMonth),
        ("Jan", El::Month),
        ("Monday", El::LongWeekday),
        ("Mon", El::Weekday),
        ("MST", El::TzName),
        ("2006", El::LongYear),
        ("002", El::YearDay),
        ("01", El::ZeroMonth),
        ("02", El::ZeroDay),
        ("03", El::ZeroHour12),
        ("04", El::ZeroMinute),
        ("05", El::ZeroSecond),
        ("06", El::Year),
        ("15", El::Hour),
        ("_2", El::UnderDay),
        ("1", El::NumMonth),
        ("2", El::Day),
        ("3", El::Hour12),
        ("4", El::Minute),
        ("5", El::Second),
        ("PM", El::PmUpper),
        ("pm", El::PmLower),
        ("Z07:00", El::Offset(true, ":")),
        ("Z0700", El::Offset(true, "")),
        ("Z07", El::Offset(true, "h")),
        ("-07:00", El::Offset(false, ":")),
        ("-0700", El::Offset(false, "")),
        ("-07", El::Offset(false, "h")),
    ];
    if let Some(rest) = s.strip_prefix('.').or_else(|| s.strip_prefix(',')) {
        let digit = rest.chars().next()?;
        if prev_digit && (digit == '0' || digit == '9') {
            let n = rest.chars().take_while(|c| *c == digit).count();
            if !rest[n..].starts_with(|c: char| c.is_ascii_digit()) {
                return Some((El::Frac(n, digit == '9'), n + 1));
            }
        }
        return None;
    }
    TABLE
        .iter()
        .find(|(k, _)| s.starts_with(k))
        .map(|(k, e)| (*e, k.len()))
}

/// Formats `t` with a Go layout ("2006-01-02T15:04:05Z07:00").
pub(super) fn go_format(t: &DateTime<Utc>, layout: &str) -> String {
    let mut out = String::new();
    let mut rest = layout;
    let mut prev_digit = false;
    while let Some(c) = rest.chars().next() {
        let Some((el, len)) = element(rest, prev_digit) else {
            out.push(c);
            prev_digit = c.is_ascii_digit();
            rest = &rest[c.len_utf8()..];
            continue;
        };
        let h12 = match t.hour() % 12 {
            0 => 12,
            h => h,
        };
        match el {
            El::LongMonth => out.push_str(MONTHS[t.month0() as usize]),
            El::Month => out.push_str(&MONTHS[t.month0() as usize][..3]),
            El::NumMonth => out.push_str(&t.month().to_string()),
            El::ZeroMonth => out.push_str(&format!("{:02}", t.month())),
            El::LongWeekday => out.push_str(DAYS[t.weekday().num_days_from_monday() as usize]),
            El::Weekday => out.push_str(&DAYS[t.weekday().num_days_from_monday() as usize][..3]),
            El::Day => out.push_str(&t.day().to_string()),
            El::UnderDay => out.push_str(&format!("{:>2}", t.day())),
            El::ZeroDay => out.push_str(&format!("{:02}", t.day())),
            El::YearDay => out.push_str(&format!("{:03}", t.ordinal())),
            El::Hour => out.push_str(&format!("{:02}", t.hour())),
            El::Hour12 => out.push_str(&h12.to_string()),
            El::ZeroHour12 => out.push_str(&format!("{h12:02}")),
            El::Minute => out.push_str(&t.minute().to_string()),
            El::ZeroMinute => out.push_str(&format!("{:02}", t.minute())),
            El::Second => out.push_str(&t.second().to_string()),
            El::ZeroSecond => out.push_str(&format!("{:02}", t.second())),
            El::LongYear => out.push_str(&format!("{:04}", t.year())),
            El::Year => out.push_str(&format!("{:02}", t.year().rem_euclid(100))),
            El::PmUpper => out.push_str(if t.hour() >= 12 { "PM" } else { "AM" }),
            El::PmLower => out.push_str(if t.hour() >= 12 { "pm" } else { "am" }),
            El::TzName => out.push_str("UTC"),
            El::Offset(z, sep) => out.push_str(if z {
                "Z"
            } else {
                match sep {
                    ":" => "+00:00",
                    "h" => "+00",
                    _ => "+0000",
                }
            }),
            El::Frac(n, trim) => {
                let digits = format!("{:09}", t.nanosecond() % 1_000_000_000);
                let mut d = digits[..n.min(9)].to_owned();
                if trim {
                    while d.ends_with('0') {
                        d.pop();
                    }
                    if !d.is_empty() {
                        out.push('.');
                        out.push_str(&d);
                    }
                } else {
                    out.push(rest.as_bytes()[0] as char);
                    out.push_str(&d);
                }
            }
        }
        prev_digit = !el.is_text();
        rest = &rest[len..];
    }
    out
}

/// Parses `value` with a Go layout, in UTC.
pub(super) fn go_parse(layout: &str, value: &str) -> Result<DateTime<Utc>, String> {
    let bad = || format!("parsing time {value:?} as {layout:?}: cannot parse");
    let (mut year, mut month, mut day, mut hour, mut min, mut sec, mut nanos) =
        (0i32, 1u32, 1u32, 0u32, 0u32, 0u32, 0u32);
    let mut pm: Option<bool> = None;
    let mut offset_secs = 0i64;
    let mut rest = layout;
    let mut v = value;
    let mut prev_digit = false;
    let num = |v: &mut &str, min_len: usize, max_len: usize| -> Result<u32, String> {
        let n = v
            .chars()
            .take(max_len)
            .take_while(char::is_ascii_digit)
            .count();
        if n < min_len {
            return Err(bad());
        }
        let out = v[..n].parse().map_err(|_| bad())?;
        *v = &v[n..];
        Ok(out)
    };
    let word = |v: &mut &str, names: &[&str], short: bool| -> Result<u32, String> {
        for (i, name) in names.iter().enumerate() {
            let name = if short { &name[..3] } else { name };
            if v.len() >= name.len() && v[..name.len()].eq_ignore_ascii_case(name) {
                *v = &v[name.len()..];
                return Ok(i as u32);
            }
        }
        Err(bad())
    };
    while let Some(c) = rest.chars().next() {
        let Some((el, len)) = element(rest, prev_digit) else {
            v = v.strip_prefix(c).ok_or_else(bad)?;
            prev_digit = c.is_ascii_digit();
            rest = &rest[c.len_utf8()..];
            continue;
        };
        match el {
            El::LongMonth => month = word(&mut v, &MONTHS, false)? + 1,
            El::Month => month = word(&mut v, &MONTHS, true)? + 1,
            El::LongWeekday => {
                word(&mut v, &DAYS, false)?;
            }
            El::Weekday => {
                word(&mut v, &DAYS, true)?;
            }
            El::NumMonth => month = num(&mut v, 1, 2)?,
            El::ZeroMonth => month = num(&mut v, 2, 2)?,
            El::Day => day = num(&mut v, 1, 2)?,
            El::UnderDay => {
                v = v.trim_start_matches(' ');
                day = num(&mut v, 1, 2)?;
            }
            El::ZeroDay => day = num(&mut v, 2, 2)?,
            El::YearDay => {
                num(&mut v, 3, 3)?;
            }
            El::Hour => hour = num(&mut v, 2, 2)?,
            El::Hour12 => hour = num(&mut v, 1, 2)?,
            El::ZeroHour12 => hour = num(&mut v, 2, 2)?,
            El::Minute => min = num(&mut v, 1, 2)?,
            El::ZeroMinute => min = num(&mut v, 2, 2)?,
            El::Second => sec = num(&mut v, 1, 2)?,
            El::ZeroSecond => sec = num(&mut v, 2, 2)?,
            El::LongYear => year = num(&mut v, 4, 4)? as i32,
            El::Year => year = 2000 + num(&mut v, 2, 2)? as i32,
            El::PmUpper | El::PmLower => {
                let w = v.get(..2).ok_or_else(bad)?.to_ascii_uppercase();
                pm = Some(match w.as_str() {
                    "PM" => true,
                    "AM" => false,
                    _ => return Err(bad()),
                });
                v = &v[2..];
            }
            El::TzName => {
                let n = v.chars().take_while(char::is_ascii_alphabetic).count();
                v = &v[n..];
            }
            El::Offset(z, _) => {
                if z && v.starts_with('Z') {
                    v = &v[1..];
                } else {
                    let sign = match v.chars().next() {
                        Some('+') => 1,
                        Some('-') => -1,
                        _ => return Err(bad()),
                    };
                    v = &v[1..];
                    let h = i64::from(num(&mut v, 2, 2)?);
                    v = v.strip_prefix(':').unwrap_or(v);
                    let m = if v.starts_with(|c: char| c.is_ascii_digit()) {
                        i64::from(num(&mut v, 2, 2)?)
                    } else {
                        0
                    };
                    offset_secs = sign * (h * 3600 + m * 60);
                }
            }
            El::Frac(_, _) => {
                if let Some(r) = v.strip_prefix('.').or_else(|| v.strip_prefix(',')) {
                    let n = r.chars().take_while(char::is_ascii_digit).count();
                    let digits = &r[..n.min(9)];
                    nanos = format!("{digits:0<9}").parse().map_err(|_| bad())?;
                    v = &r[n..];
                }
            }
        }
        prev_digit = !el.is_text();
        rest = &rest[len..];
    }
    // Go also accepts fractional seconds after a seconds field.
    if let Some(r) = v.strip_prefix('.') {
        let n = r.chars().take_while(char::is_ascii_digit).count();
        if n > 0 && n == r.len() {
            nanos = format!("{:0<9}", &r[..n.min(9)])
                .parse()
                .map_err(|_| bad())?;
            v = "";
        }
    }
    if !v.is_empty() {
        return Err(format!("parsing time {value:?}: extra text {v:?}"));
    }
    match pm {
        Some(true) if hour < 12 => hour += 12,
        Some(false) if hour == 12 => hour = 0,
        _ => {}
    }
    let naive = NaiveDate::from_ymd_opt(year, month, day)
        .and_then(|d| d.and_hms_nano_opt(hour, min, sec, nanos))
        .ok_or_else(|| format!("parsing time {value:?}: value out of range"))?;
    Ok(Utc.from_utc_datetime(&naive) - chrono::Duration::seconds(offset_secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logql::template_fns::V;

    #[test]
    fn go_layouts_round_trip() {
        let t = go_parse(
            "2006-01-02T15:04:05.999999999Z07:00",
            "2021-06-10T09:14:29.5+02:00",
        )
        .unwrap();
        assert_eq!(t.to_rfc3339(), "2021-06-10T07:14:29.500+00:00");
        assert_eq!(
            go_format(&t, "Mon Jan _2 15:04:05 2006"),
            "Thu Jun 10 07:14:29 2021"
        );
        assert_eq!(
            go_format(&t, "02/01/06 03:04PM .000"),
            "10/06/21 07:14AM .000"
        );
        assert_eq!(go_format(&t, "15:04:05.000"), "07:14:29.500");
        assert_eq!(V::Time(t).render(), "2021-06-10 07:14:29.5 +0000 UTC");
        assert!(go_parse("2006-01-02", "2021-13-02").is_err());
        assert!(go_parse("2006-01-02", "2021-11-02x").is_err());
    }
}
