//! A zero-copy reader for the remote-write 1.0 protobuf.
//!
//! prost would allocate a `String` per label name and value; a request of
//! 2000 series × 10 labels is 40,000 allocations. This reader borrows label
//! strings from the decompressed body and pushes them straight into the
//! batch's flat tables. It follows proto3 wire rules: fields in any order,
//! unknown fields skipped, a wrong wire type on a known field is an error,
//! strings must be UTF-8. `proto.rs` stays the schema of record: a property
//! test checks this reader against prost on arbitrary requests.

use strata_types::{
    Exemplar, Label, Labels, METRIC_NAME_LABEL, NameScheme, Sample, SeriesExemplars,
    SeriesHistograms, TenantId, WriteBatch, exemplar_labels, timestamp_in_range, validate_sorted,
};

use super::histogram::{Invalid, histogram};
use super::pb::{FIXED64, LEN, Reader, VARINT, err, want_wire};
use crate::IngestError;
use crate::metadata::{MetricMetadata, MetricType, push};
use crate::remote_write::{Decoded, Skipped};

/// Decodes a `WriteRequest` into a validated batch.
pub(crate) fn decode(
    tenant: TenantId,
    raw: &[u8],
    names: NameScheme,
) -> Result<Decoded, IngestError> {
    let mut skipped = Skipped::default();
    let mut metadata = Vec::new();
    let mut r = Reader::new(raw);
    // Label text is a part of the body: the arena never grows.
    let mut batch = WriteBatch::with_text_capacity(tenant, raw.len() / 200 + 1, 10, raw.len());
    let mut labels: Vec<(&str, &str)> = Vec::with_capacity(16);
    let mut samples: Vec<Sample> = Vec::with_capacity(4);
    let mut exemplar_bufs: Vec<&[u8]> = Vec::new();
    let mut exemplars = Vec::new();
    let mut histogram_bufs: Vec<&[u8]> = Vec::new();
    let mut histograms = Vec::new();
    let mut index = 0usize;
    while !r.done() {
        let (field, wire) = r.key()?;
        match field {
            1 => {
                want_wire("WriteRequest.timeseries", wire, LEN)?;
                let ts = r.bytes()?;
                labels.clear();
                samples.clear();
                exemplar_bufs.clear();
                histogram_bufs.clear();
                series(
                    ts,
                    &mut labels,
                    &mut samples,
                    &mut exemplar_bufs,
                    &mut histogram_bufs,
                )?;
                if let Err(source) = validate_sorted(labels.iter().copied())
                    .and_then(|()| names.check(labels.iter().copied()))
                {
                    return Err(IngestError::InvalidSeries {
                        index,
                        labels: super::describe(labels.iter().copied()),
                        source,
                    });
                }
                if !samples.is_empty() {
                    batch.push_validated(labels.iter().copied(), samples.iter().copied());
                }
                if !exemplar_bufs.is_empty() {
                    let kept = exemplar_bufs
                        .iter()
                        .filter_map(|b| keep(exemplar_v1(b), &mut skipped).transpose())
                        .collect::<Result<Vec<_>, _>>()?;
                    push_exemplars(&mut exemplars, &labels, kept);
                }
                push_histograms(&mut histograms, &histogram_bufs, &labels, index)?;
                index += 1;
            }
            3 => {
                want_wire("WriteRequest.metadata", wire, LEN)?;
                push(&mut metadata, metric_metadata(r.bytes()?)?);
            }
            // Skipping these would store nothing and answer 204.
            4 | 5 => {
                return Err(err(format!(
                    "field {field} is remote write 2.0's (symbols, timeseries): send it with \
                     Content-Type application/x-protobuf;proto=io.prometheus.write.v2.Request"
                )));
            }
            _ => r.skip(wire)?,
        }
    }
    Ok(Decoded {
        batch,
        skipped,
        metadata,
        starts: Vec::new(),
        exemplars,
        histograms,
    })
}

/// An exemplar as decoded: its labels (unchecked), value and time.
type RawExemplar = (Vec<(String, String)>, f64, i64);

/// An exemplar that decoded: kept when its labels pass
/// [`exemplar_labels`], counted as skipped when not (Prometheus drops such
/// an exemplar and stores the rest of the request). Bad protobuf stays an
/// error.
fn keep(
    decoded: Result<RawExemplar, IngestError>,
    skipped: &mut Skipped,
) -> Result<Option<Exemplar>, IngestError> {
    let (labels, value, timestamp_ms) = decoded?;
    match exemplar_labels(labels) {
        Ok(labels) if timestamp_in_range(timestamp_ms) => Ok(Some(Exemplar {
            labels,
            value,
            timestamp_ms,
        })),
        _ => {
            skipped.exemplars += 1;
            Ok(None)
        }
    }
}

/// Adds a series' kept exemplars to the request's.
fn push_exemplars(out: &mut Vec<SeriesExemplars>, labels: &[(&str, &str)], kept: Vec<Exemplar>) {
    if kept.is_empty() {
        return;
    }
    out.push(SeriesExemplars {
        labels: Labels::from_validated(labels.iter().map(|(n, v)| Label::new(*n, *v)).collect()),
        exemplars: kept,
    });
}

/// Adds a series' histograms to the request's; one that does not decode
/// or validate refuses the request (Prometheus answers 400 for it).
fn push_histograms(
    out: &mut Vec<SeriesHistograms>,
    bufs: &[&[u8]],
    labels: &[(&str, &str)],
    index: usize,
) -> Result<(), IngestError> {
    if bufs.is_empty() {
        return Ok(());
    }
    let samples = bufs
        .iter()
        .map(|b| {
            histogram(b).map_err(|e| match e {
                Invalid::Protobuf(e) => e,
                Invalid::Histogram(timestamp_ms, reason) => IngestError::InvalidHistogram {
                    index,
                    labels: super::describe(labels.iter().copied()),
                    timestamp_ms,
                    reason,
                },
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    out.push(SeriesHistograms {
        labels: Labels::from_validated(labels.iter().map(|(n, v)| Label::new(*n, *v)).collect()),
        samples,
    });
    Ok(())
}

/// An `Exemplar` message of either version: its value and timestamp,
/// field 1 (labels or label references) handed to `labels`.
fn exemplar_fields<'a>(
    buf: &'a [u8],
    mut labels: impl FnMut(&mut Reader<'a>, u8) -> Result<(), IngestError>,
) -> Result<(f64, i64), IngestError> {
    let mut r = Reader::new(buf);
    let (mut value, mut ts) = (0.0, 0);
    while !r.done() {
        let (field, wire) = r.key()?;
        match field {
            1 => labels(&mut r, wire)?,
            2 => {
                want_wire("Exemplar.value", wire, FIXED64)?;
                value = f64::from_bits(r.fixed64()?);
            }
            3 => {
                want_wire("Exemplar.timestamp", wire, VARINT)?;
                ts = r.varint()? as i64;
            }
            _ => r.skip(wire)?,
        }
    }
    Ok((value, ts))
}

/// A 1.0 `Exemplar`: labels, value, timestamp.
fn exemplar_v1(buf: &[u8]) -> Result<RawExemplar, IngestError> {
    let mut labels = Vec::new();
    let (value, ts) = exemplar_fields(buf, |r, wire| {
        want_wire("Exemplar.labels", wire, LEN)?;
        let (n, v) = label(r.bytes()?, None)?;
        labels.push((n.to_owned(), v.to_owned()));
        Ok(())
    })?;
    Ok((labels, value, ts))
}

/// A 2.0 `Exemplar`, its label references resolved against `symbols`.
fn exemplar_v2(buf: &[u8], symbols: &[&str], index: usize) -> Result<RawExemplar, IngestError> {
    let mut refs = Vec::new();
    let (value, ts) = exemplar_fields(buf, |r, wire| {
        label_refs(r, wire, "Exemplar.labels_refs", &mut refs)
    })?;
    if !refs.len().is_multiple_of(2) {
        return Err(err(format!(
            "timeseries {index}: an exemplar's labels_refs has an odd number of entries ({})",
            refs.len()
        )));
    }
    let symbol = |i: u32| {
        symbols.get(i as usize).copied().ok_or_else(|| {
            err(format!(
                "timeseries {index}: exemplar labels_refs entry {i} is outside the {} symbols",
                symbols.len()
            ))
        })
    };
    let labels = refs
        .chunks_exact(2)
        .map(|p| Ok((symbol(p[0])?.to_owned(), symbol(p[1])?.to_owned())))
        .collect::<Result<Vec<_>, IngestError>>()?;
    Ok((labels, value, ts))
}

/// A 1.0 `MetricMetadata` message.
fn metric_metadata(buf: &[u8]) -> Result<MetricMetadata, IngestError> {
    let mut r = Reader::new(buf);
    let mut m = MetricMetadata {
        metric: String::new(),
        kind: MetricType::Unknown,
        help: String::new(),
        unit: String::new(),
    };
    while !r.done() {
        let (field, wire) = r.key()?;
        match field {
            1 => {
                want_wire("MetricMetadata.type", wire, VARINT)?;
                m.kind = MetricType::from_wire(r.varint()?);
            }
            2 => {
                want_wire("MetricMetadata.metric_family_name", wire, LEN)?;
                r.string("metric family name")?.clone_into(&mut m.metric);
            }
            4 => {
                want_wire("MetricMetadata.help", wire, LEN)?;
                r.string("metadata help")?.clone_into(&mut m.help);
            }
            5 => {
                want_wire("MetricMetadata.unit", wire, LEN)?;
                r.string("metadata unit")?.clone_into(&mut m.unit);
            }
            _ => r.skip(wire)?,
        }
    }
    Ok(m)
}

fn series<'a>(
    buf: &'a [u8],
    labels: &mut Vec<(&'a str, &'a str)>,
    samples: &mut Vec<Sample>,
    exemplars: &mut Vec<&'a [u8]>,
    histograms: &mut Vec<&'a [u8]>,
) -> Result<(), IngestError> {
    // Clients write a series' labels first: their messages, tags and
    // lengths included, are checked as UTF-8 once (one pass over a few
    // hundred bytes, not one call per name and value). A run that is not
    // (a length of 128 or more, an invalid string) is checked string by
    // string, as any other label.
    let labels_end = Reader::new(buf).run_end(1);
    let text = buf
        .get(..labels_end)
        .and_then(|b| std::str::from_utf8(b).ok());
    let mut r = Reader::new(buf);
    while !r.done() {
        let (field, wire) = r.key()?;
        match field {
            1 => {
                want_wire("TimeSeries.labels", wire, LEN)?;
                let bytes = r.bytes()?;
                let sub = text.and_then(|t| t.get(r.pos - bytes.len()..r.pos));
                labels.push(label(bytes, sub)?);
            }
            2 => {
                want_wire("TimeSeries.samples", wire, LEN)?;
                samples.push(sample(r.bytes()?)?.0);
            }
            3 => {
                want_wire("TimeSeries.exemplars", wire, LEN)?;
                exemplars.push(r.bytes()?);
            }
            4 => {
                want_wire("TimeSeries.histograms", wire, LEN)?;
                histograms.push(r.bytes()?);
            }
            _ => r.skip(wire)?,
        }
    }
    Ok(())
}

/// A `Label` message; `text`: the same bytes when known to be UTF-8.
fn label<'a>(buf: &'a [u8], text: Option<&'a str>) -> Result<(&'a str, &'a str), IngestError> {
    let mut r = Reader::with_text(buf, text);
    let (mut name, mut value) = ("", "");
    while !r.done() {
        let (field, wire) = r.key()?;
        match field {
            1 => {
                want_wire("Label.name", wire, LEN)?;
                name = r.string("label name")?;
            }
            2 => {
                want_wire("Label.value", wire, LEN)?;
                value = r.string("label value")?;
            }
            _ => r.skip(wire)?,
        }
    }
    Ok((name, value))
}

/// A `Sample` and its start timestamp (2.0's field 3; 0: unset, and
/// always 0 in 1.0, which has no such field).
fn sample(buf: &[u8]) -> Result<(Sample, i64), IngestError> {
    let mut r = Reader::new(buf);
    let mut s = Sample {
        timestamp_ms: 0,
        value: 0.0,
    };
    let mut start = 0;
    while !r.done() {
        let (field, wire) = r.key()?;
        match field {
            1 => {
                want_wire("Sample.value", wire, FIXED64)?;
                s.value = f64::from_bits(r.fixed64()?);
            }
            2 => {
                want_wire("Sample.timestamp", wire, VARINT)?;
                s.timestamp_ms = r.varint()? as i64;
            }
            3 => {
                want_wire("Sample.start_timestamp", wire, VARINT)?;
                start = r.varint()? as i64;
            }
            _ => r.skip(wire)?,
        }
    }
    Ok((s, start))
}

/// Decodes a remote-write 2.0 `Request` into a validated batch. Fields may
/// come in any order, so the symbol table is gathered first and the series
/// read after.
pub(crate) fn decode_v2(
    tenant: TenantId,
    raw: &[u8],
    names: NameScheme,
) -> Result<Decoded, IngestError> {
    let mut skipped = Skipped::default();
    let mut r = Reader::new(raw);
    let mut symbols: Vec<&str> = Vec::new();
    let mut series_bufs: Vec<&[u8]> = Vec::new();
    while !r.done() {
        let (field, wire) = r.key()?;
        match field {
            4 => {
                want_wire("Request.symbols", wire, LEN)?;
                symbols.push(r.string("symbol")?);
            }
            5 => {
                want_wire("Request.timeseries", wire, LEN)?;
                series_bufs.push(r.bytes()?);
            }
            // Reserved in 2.0: a 1.0 WriteRequest sent as 2.0, which
            // skipping would store as nothing.
            1..=3 => {
                return Err(err(format!(
                    "field {field} is reserved in remote write 2.0 (a 1.0 WriteRequest? send it \
                     with Content-Type application/x-protobuf)"
                )));
            }
            _ => r.skip(wire)?,
        }
    }
    if symbols.first().is_some_and(|s| !s.is_empty()) {
        return Err(err("symbols[0] must be the empty string"));
    }
    let mut batch = WriteBatch::with_capacity(tenant, series_bufs.len(), 10);
    let mut refs: Vec<u32> = Vec::with_capacity(32);
    let mut labels: Vec<(&str, &str)> = Vec::with_capacity(16);
    let mut samples: Vec<(Sample, i64)> = Vec::with_capacity(4);
    let mut exemplar_bufs: Vec<&[u8]> = Vec::new();
    let mut exemplars = Vec::new();
    let mut histogram_bufs: Vec<&[u8]> = Vec::new();
    let mut histograms = Vec::new();
    let mut metadata = Vec::new();
    // Each stored sample's start timestamp, once one is set.
    let mut starts: Vec<i64> = Vec::new();
    for (index, buf) in series_bufs.into_iter().enumerate() {
        refs.clear();
        labels.clear();
        samples.clear();
        exemplar_bufs.clear();
        histogram_bufs.clear();
        let meta = series_v2(
            buf,
            &mut refs,
            &mut samples,
            &mut exemplar_bufs,
            &mut histogram_bufs,
        )?;
        if !refs.len().is_multiple_of(2) {
            return Err(err(format!(
                "timeseries {index}: labels_refs has an odd number of entries ({})",
                refs.len()
            )));
        }
        for pair in refs.chunks_exact(2) {
            let symbol = |i: u32| {
                symbols.get(i as usize).copied().ok_or_else(|| {
                    err(format!(
                        "timeseries {index}: labels_refs entry {i} is outside the {} symbols",
                        symbols.len()
                    ))
                })
            };
            labels.push((symbol(pair[0])?, symbol(pair[1])?));
        }
        if let Err(source) = validate_sorted(labels.iter().copied())
            .and_then(|()| names.check(labels.iter().copied()))
        {
            return Err(IngestError::InvalidSeries {
                index,
                labels: super::describe(labels.iter().copied()),
                source,
            });
        }
        if let Some((kind, help_ref, unit_ref)) = meta {
            let text = |i: u32, what: &str| {
                symbols.get(i as usize).copied().ok_or_else(|| {
                    err(format!(
                        "timeseries {index}: metadata {what}_ref {i} is outside the {} symbols",
                        symbols.len()
                    ))
                })
            };
            let metric = labels
                .iter()
                .find(|(n, _)| *n == METRIC_NAME_LABEL)
                .map_or("", |(_, v)| *v);
            push(
                &mut metadata,
                MetricMetadata {
                    metric: metric.to_owned(),
                    kind,
                    help: text(help_ref, "help")?.to_owned(),
                    unit: text(unit_ref, "unit")?.to_owned(),
                },
            );
        }
        if !samples.is_empty() {
            crate::start_zeros::extend_starts(&mut starts, batch.sample_count(), &samples);
            batch.push_validated(labels.iter().copied(), samples.iter().map(|(s, _)| *s));
        }
        if !exemplar_bufs.is_empty() {
            let kept = exemplar_bufs
                .iter()
                .filter_map(|b| keep(exemplar_v2(b, &symbols, index), &mut skipped).transpose())
                .collect::<Result<Vec<_>, _>>()?;
            push_exemplars(&mut exemplars, &labels, kept);
        }
        push_histograms(&mut histograms, &histogram_bufs, &labels, index)?;
    }
    Ok(Decoded {
        batch,
        skipped,
        metadata,
        starts,
        exemplars,
        histograms,
    })
}

/// A 2.0 `Metadata` message: its type and the symbols of its help and
/// unit.
fn metadata_v2(buf: &[u8]) -> Result<(MetricType, u32, u32), IngestError> {
    let mut r = Reader::new(buf);
    let (mut kind, mut help, mut unit) = (MetricType::Unknown, 0, 0);
    while !r.done() {
        let (field, wire) = r.key()?;
        match field {
            1 => {
                want_wire("Metadata.type", wire, VARINT)?;
                kind = MetricType::from_wire(r.varint()?);
            }
            3 => {
                want_wire("Metadata.help_ref", wire, VARINT)?;
                help = symbol_ref(r.varint()?)?;
            }
            4 => {
                want_wire("Metadata.unit_ref", wire, VARINT)?;
                unit = symbol_ref(r.varint()?)?;
            }
            _ => r.skip(wire)?,
        }
    }
    Ok((kind, help, unit))
}

/// A 2.0 series' label references and samples; its metadata, if it
/// carries any.
fn series_v2<'a>(
    buf: &'a [u8],
    refs: &mut Vec<u32>,
    samples: &mut Vec<(Sample, i64)>,
    exemplars: &mut Vec<&'a [u8]>,
    histograms: &mut Vec<&'a [u8]>,
) -> Result<Option<(MetricType, u32, u32)>, IngestError> {
    let mut meta = None;
    let mut r = Reader::new(buf);
    while !r.done() {
        let (field, wire) = r.key()?;
        match field {
            1 => label_refs(&mut r, wire, "TimeSeries.labels_refs", refs)?,
            2 => {
                want_wire("TimeSeries.samples", wire, LEN)?;
                samples.push(sample(r.bytes()?)?);
            }
            3 => {
                want_wire("TimeSeries.histograms", wire, LEN)?;
                histograms.push(r.bytes()?);
            }
            4 => {
                want_wire("TimeSeries.exemplars", wire, LEN)?;
                exemplars.push(r.bytes()?);
            }
            5 => {
                want_wire("TimeSeries.metadata", wire, LEN)?;
                meta = Some(metadata_v2(r.bytes()?)?);
            }
            _ => r.skip(wire)?,
        }
    }
    Ok(meta)
}

/// A `labels_refs` field (`what`) into `refs`: packed, as proto3
/// encoders write it, or one by one, which is legal too.
fn label_refs(
    r: &mut Reader<'_>,
    wire: u8,
    what: &str,
    refs: &mut Vec<u32>,
) -> Result<(), IngestError> {
    match wire {
        LEN => {
            let mut packed = Reader::new(r.bytes()?);
            while !packed.done() {
                refs.push(symbol_ref(packed.varint()?)?);
            }
        }
        VARINT => refs.push(symbol_ref(r.varint()?)?),
        other => {
            return Err(err(format!("{what} has wire type {other}, expected {LEN}")));
        }
    }
    Ok(())
}

fn symbol_ref(v: u64) -> Result<u32, IngestError> {
    u32::try_from(v).map_err(|_| err(format!("symbol reference {v} overflows uint32")))
}
