//! The protobuf wire reader remote write's decoders share: zero-copy,
//! proto3 rules (fields in any order, unknown fields skipped, a wrong wire
//! type on a known field is an error, strings must be UTF-8).

use crate::IngestError;

pub(crate) const VARINT: u8 = 0;
pub(crate) const FIXED64: u8 = 1;
pub(crate) const LEN: u8 = 2;
const FIXED32: u8 = 5;

pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pub(crate) pos: usize,
    /// `buf` as text when it is valid UTF-8 as a whole (checked once by
    /// the caller): strings are sliced from it instead of checked one by
    /// one.
    text: Option<&'a str>,
}

pub(crate) fn err(reason: impl Into<String>) -> IngestError {
    IngestError::Protobuf {
        reason: reason.into(),
    }
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self {
            buf,
            pos: 0,
            text: None,
        }
    }

    /// A reader of `buf` whose strings come from `text`, the same bytes
    /// already known to be UTF-8.
    pub(crate) fn with_text(buf: &'a [u8], text: Option<&'a str>) -> Self {
        Self {
            buf,
            pos: 0,
            text: text.filter(|t| t.len() == buf.len()),
        }
    }

    pub(crate) fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// A varint; tags and lengths under 128 (nearly all of a request's)
    /// are one byte and read inline.
    #[inline]
    pub(crate) fn varint(&mut self) -> Result<u64, IngestError> {
        match self.buf.get(self.pos) {
            Some(&b) if b < 0x80 => {
                self.pos += 1;
                Ok(u64::from(b))
            }
            _ => self.long_varint(),
        }
    }

    #[inline(never)]
    fn long_varint(&mut self) -> Result<u64, IngestError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self
                .buf
                .get(self.pos)
                .ok_or_else(|| err("truncated varint"))?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(err("varint longer than 10 bytes"))
    }

    /// (field number, wire type)
    pub(crate) fn key(&mut self) -> Result<(u64, u8), IngestError> {
        let k = self.varint()?;
        let field = k >> 3;
        if field == 0 {
            return Err(err("field number 0"));
        }
        Ok((field, (k & 7) as u8))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], IngestError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.buf.len())
            .ok_or_else(|| err("length exceeds the message"))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], IngestError> {
        let n = self.varint()?;
        let n = usize::try_from(n).map_err(|_| err("length overflows"))?;
        self.take(n)
    }

    pub(crate) fn string(&mut self, what: &str) -> Result<&'a str, IngestError> {
        let bytes = self.bytes()?;
        // A slice of checked text, when its ends are character bounds
        // (they are wherever the bytes around them are tags and lengths).
        if let Some(s) = self
            .text
            .and_then(|t| t.get(self.pos - bytes.len()..self.pos))
        {
            return Ok(s);
        }
        std::str::from_utf8(bytes).map_err(|_| err(format!("{what} is not valid UTF-8")))
    }

    /// Where the leading run of `field`'s length-delimited entries ends.
    pub(crate) fn run_end(mut self, field: u64) -> usize {
        let mut end = 0;
        while let Ok((f, LEN)) = self.key() {
            if f != field || self.bytes().is_err() {
                break;
            }
            end = self.pos;
        }
        end
    }

    pub(crate) fn fixed64(&mut self) -> Result<u64, IngestError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    pub(crate) fn skip(&mut self, wire: u8) -> Result<(), IngestError> {
        match wire {
            VARINT => self.varint().map(drop),
            FIXED64 => self.take(8).map(drop),
            LEN => self.bytes().map(drop),
            FIXED32 => self.take(4).map(drop),
            other => Err(err(format!("unsupported wire type {other}"))),
        }
    }
}

pub(crate) fn want_wire(field: &str, wire: u8, want: u8) -> Result<(), IngestError> {
    if wire == want {
        Ok(())
    } else {
        Err(err(format!(
            "{field} has wire type {wire}, expected {want}"
        )))
    }
}
