//! `ip("…")` in line and label filters: one address, a range `a-b` or a
//! CIDR block `a/n`, IPv4 or IPv6 (Loki's matching IP addresses).

use std::net::IpAddr;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IpPattern {
    Single(IpAddr),
    Range(IpAddr, IpAddr),
    Cidr(IpAddr, u8),
}

impl IpPattern {
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || format!("invalid ip pattern {s:?} (an address, a range a-b, or a CIDR a/n)");
        let s = s.trim();
        if let Some((a, b)) = s.split_once('-') {
            let (a, b): (IpAddr, IpAddr) = (
                a.trim().parse().map_err(|_| bad())?,
                b.trim().parse().map_err(|_| bad())?,
            );
            if a.is_ipv4() != b.is_ipv4() || bits(a) > bits(b) {
                return Err(bad());
            }
            return Ok(Self::Range(a, b));
        }
        if let Some((a, n)) = s.split_once('/') {
            let a: IpAddr = a.trim().parse().map_err(|_| bad())?;
            let n: u8 = n.trim().parse().map_err(|_| bad())?;
            if n > if a.is_ipv4() { 32 } else { 128 } {
                return Err(bad());
            }
            return Ok(Self::Cidr(a, n));
        }
        s.parse().map(Self::Single).map_err(|_| bad())
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match *self {
            Self::Single(a) => a == ip,
            Self::Range(a, b) => {
                a.is_ipv4() == ip.is_ipv4() && (bits(a)..=bits(b)).contains(&bits(ip))
            }
            Self::Cidr(a, n) => {
                let width = if a.is_ipv4() { 32 } else { 128 };
                if a.is_ipv4() != ip.is_ipv4() {
                    return false;
                }
                let shift = width - u32::from(n);
                let mask = if shift >= 128 { 0 } else { u128::MAX << shift };
                bits(a) & mask == bits(ip) & mask
            }
        }
    }

    /// Whether any address written in `line` is in the pattern.
    pub fn matches_line(&self, line: &str) -> bool {
        line.split(|c: char| !(c.is_ascii_hexdigit() || c == '.' || c == ':'))
            .filter(|t| t.len() >= 2)
            .any(|t| {
                let t = t.trim_matches('.');
                t.parse::<IpAddr>().is_ok_and(|ip| self.contains(ip))
            })
    }
}

fn bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v) => u128::from(u32::from(v)),
        IpAddr::V6(v) => u128::from(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Loki's documented examples (docs/sources/query/ip.md).
    #[test]
    fn addresses_ranges_and_blocks() {
        let p = IpPattern::parse("192.168.4.5-192.168.4.20").unwrap();
        assert!(p.matches_line("from 192.168.4.7 at 10:00"));
        assert!(!p.matches_line("from 192.168.4.21"));
        let p = IpPattern::parse("192.168.4.5/16").unwrap();
        assert!(p.contains("192.168.200.1".parse().unwrap()));
        assert!(!p.contains("192.169.0.1".parse().unwrap()));
        let p = IpPattern::parse("::1").unwrap();
        assert!(p.matches_line("GET / from ::1 ok"));
        let p = IpPattern::parse("2001:db8::/32").unwrap();
        assert!(p.contains("2001:db8:1::1".parse().unwrap()));
        for bad in ["300.1.1.1", "1.1.1.1/40", "1.1.1.9-1.1.1.1", "x"] {
            assert!(IpPattern::parse(bad).is_err(), "{bad}");
        }
    }
}
