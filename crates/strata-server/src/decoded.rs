//! Decoded bytes in flight: what writes (remote write, OTLP metrics and
//! logs, Loki and NDJSON pushes) being decoded and stored hold in memory,
//! bounded per tenant and in total.
//!
//! A body's decompressed bytes become several times as much while it is
//! parsed, checked, written to the WAL and applied (tiny log entries the
//! most: issue 25 measured a 1.85 GB peak for one push of 127 MiB of
//! 27-byte lines), so concurrent writes multiply a request's memory. Each
//! write reserves its decoded size before it is decoded (an estimate from
//! the body: its length, gzip's size trailer or snappy's
//! header; the whole `limits.max_decoded_size` when none says) and tops it
//! up to what it turned out to be (log batches), and holds the reservation
//! until it is stored. Past a bound, a write waits up to
//! `limits.decoded_wait` for others to finish, then is refused with 429
//! (clients retry).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use strata_types::TenantId;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Permits count KiB: a u32 of them covers 4 TiB.
const UNIT: u64 = 1024;

fn units(bytes: u64) -> u32 {
    u32::try_from(bytes.div_ceil(UNIT))
        .unwrap_or(u32::MAX)
        .max(1)
}

/// The bounds and the reservations against them.
#[derive(Debug)]
pub struct DecodedBytes {
    total: Arc<Semaphore>,
    total_units: u32,
    per_tenant_units: u32,
    wait: Duration,
    tenants: Mutex<HashMap<TenantId, Arc<Semaphore>>>,
}

/// A write's reservation, released when dropped.
#[derive(Debug, Default)]
pub struct Reservation {
    held: Vec<OwnedSemaphorePermit>,
    units: u32,
}

/// Why a reservation was not made in time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Busy {
    pub message: String,
}

impl DecodedBytes {
    pub fn new(total: u64, per_tenant: u64, wait: Duration) -> Self {
        let total_units = units(total);
        Self {
            total: Arc::new(Semaphore::new(total_units as usize)),
            total_units,
            per_tenant_units: units(per_tenant).min(total_units),
            wait,
            tenants: Mutex::new(HashMap::new()),
        }
    }

    fn tenant(&self, tenant: &TenantId) -> Arc<Semaphore> {
        let mut tenants = self.tenants.lock();
        // Tenants with nothing in flight are forgotten now and then, so
        // the map holds the busy ones.
        if tenants.len() > 4096 {
            let full = self.per_tenant_units as usize;
            tenants.retain(|_, s| s.available_permits() < full);
        }
        Arc::clone(
            tenants
                .entry(tenant.clone())
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_tenant_units as usize))),
        )
    }

    /// Grows `r` to `bytes` for `tenant` (a request larger than a bound
    /// takes the whole bound), waiting up to the configured time.
    pub async fn reserve(
        &self,
        tenant: &TenantId,
        r: &mut Reservation,
        bytes: u64,
    ) -> Result<(), Busy> {
        let want = units(bytes).min(self.per_tenant_units);
        if want <= r.units {
            return Ok(());
        }
        let more = want - r.units;
        let tenant_sem = self.tenant(tenant);
        let acquire = async {
            let t = Arc::clone(&tenant_sem).acquire_many_owned(more).await;
            let all = Arc::clone(&self.total).acquire_many_owned(more).await;
            (t, all)
        };
        match tokio::time::timeout(self.wait, acquire).await {
            Ok((Ok(t), Ok(all))) => {
                r.held.push(t);
                r.held.push(all);
                r.units = want;
                Ok(())
            }
            _ => Err(Busy {
                message: format!(
                    "tenant {tenant}: writes being decoded hold {} KiB of the tenant's {} KiB (limits.max_decoded_in_flight_per_tenant) and {} KiB of the server's {} KiB (limits.max_decoded_in_flight); waited {:?}, retry later",
                    self.per_tenant_units as usize - tenant_sem.available_permits(),
                    self.per_tenant_units,
                    self.total_units as usize - self.total.available_permits(),
                    self.total_units,
                    self.wait
                ),
            }),
        }
    }

    /// Bytes reserved now, over all tenants.
    pub fn in_flight(&self) -> u64 {
        (self.total_units as u64 - self.total.available_permits() as u64) * UNIT
    }
}

/// What a body will decompress to at most, as far as it says: its length
/// without an encoding, gzip's size trailer (of a single member; a body
/// lying about it is topped up after decoding), snappy's header; `max`
/// when nothing says.
pub fn decoded_size_hint(body: &[u8], encoding: Option<&str>, snappy: bool, max: u64) -> u64 {
    let len = body.len() as u64;
    let hint = match encoding.map(|e| e.trim().to_ascii_lowercase()).as_deref() {
        None | Some("" | "identity") if !snappy => len,
        None | Some("" | "snappy") if snappy => snap::raw::decompress_len(body)
            .map(|n| n as u64)
            .unwrap_or(len),
        Some("gzip") => body
            .len()
            .checked_sub(4)
            .and_then(|at| body.get(at..))
            .and_then(|b| b.try_into().ok())
            .map(|b: [u8; 4]| u64::from(u32::from_le_bytes(b)))
            .unwrap_or(max)
            .max(len),
        _ => max,
    };
    hint.min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_tenant_waits_for_its_own_bytes_and_then_is_refused() {
        let d = DecodedBytes::new(8 << 20, 2 << 20, Duration::from_millis(50));
        let a = TenantId::try_new("a").unwrap();
        let b = TenantId::try_new("b").unwrap();
        let mut first = Reservation::default();
        d.reserve(&a, &mut first, 2 << 20).await.unwrap();
        let mut second = Reservation::default();
        let busy = d.reserve(&a, &mut second, 1 << 20).await.unwrap_err();
        assert!(
            busy.message.contains("max_decoded_in_flight_per_tenant"),
            "{busy:?}"
        );
        // Another tenant has its own share.
        let mut other = Reservation::default();
        d.reserve(&b, &mut other, 2 << 20).await.unwrap();
        assert_eq!(d.in_flight(), 4 << 20);
        drop(first);
        d.reserve(&a, &mut second, 1 << 20).await.unwrap();
        // Topping up to more than a tenant's bound takes the bound.
        d.reserve(&a, &mut second, 100 << 20).await.unwrap();
        assert_eq!(d.in_flight(), 4 << 20);
    }

    #[test]
    fn size_hints_come_from_the_body() {
        let raw = vec![b'x'; 100_000];
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &raw).unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(
            decoded_size_hint(&gz, Some("gzip"), false, 1 << 30),
            100_000
        );
        let sn = snap::raw::Encoder::new().compress_vec(&raw).unwrap();
        assert_eq!(decoded_size_hint(&sn, None, true, 1 << 30), 100_000);
        assert_eq!(decoded_size_hint(&raw, None, false, 1 << 30), 100_000);
        assert_eq!(
            decoded_size_hint(&raw, Some("deflate"), false, 1 << 20),
            1 << 20
        );
        assert_eq!(decoded_size_hint(&gz, Some("gzip"), false, 50_000), 50_000);
    }
}
