//! A log stream's line text: chunks of up to 64 KiB, the full ones packed
//! with LZ4 ([`Text`]); the 3-byte substrings of a packed chunk
//! ([`Grams`]), recorded when a filtered read first unpacks it; and the
//! [`Cursor`] readers unpack chunks through, once while they read through
//! one.

use std::sync::OnceLock;

use super::ChunkNeeds;

/// Bytes of line text per chunk of a stream, at most: lines are copied
/// into chunks that start at [`FIRST_CHUNK`] bytes and double up to this
/// (a longer line gets a chunk of its own), so a stream's text costs its
/// bytes and the unused end of its last chunk, not an allocation per
/// line — and a stream of a few lines (a short-lived pod's) a few hundred
/// bytes, not a whole chunk.
pub(super) const TEXT_CHUNK: usize = 64 * 1024;
pub(super) const FIRST_CHUNK: usize = 512;

/// A full chunk at least this long is packed (LZ4) when the next is
/// started: log lines pack 3–5× (the logs benchmark's: 4.1×), so the head
/// holds a fraction of the text it serves. Smaller ones stay as they are.
const PACK_MIN: usize = 4 * 1024;

/// One stream's line text: full chunks packed, the last one open.
#[derive(Debug)]
pub(super) enum Text {
    Plain(String),
    /// An LZ4 block of `len` bytes of text, and the set of its 3-byte
    /// substrings once a filtered read has unpacked it ([`Grams`]).
    Packed {
        bytes: Box<[u8]>,
        len: u32,
        grams: OnceLock<Box<Grams>>,
    },
}

/// The 3-byte substrings of a packed chunk's text, hashed into 16,384
/// bits (2 KiB beside a chunk of about 16 KiB packed): built by the first
/// filtered read that unpacks the chunk, so later reads skip, without
/// unpacking, a chunk that lacks one of a needle's substrings. On log
/// text about half the bits are set: a needle of 20 bytes passes a chunk
/// without it about once in a million.
#[derive(Debug)]
pub(super) struct Grams([u64; 256]);

impl Grams {
    fn hash(w: u32) -> usize {
        (w.wrapping_mul(0x9E37_79B1) >> 18) as usize
    }

    fn of(text: &[u8]) -> Box<Grams> {
        let mut g = Box::new(Grams([0; 256]));
        let mut w = 0u32;
        for (i, &b) in text.iter().enumerate() {
            w = ((w << 8) | u32::from(b)) & 0xFF_FFFF;
            if i >= 2 {
                let h = Self::hash(w);
                g.0[h >> 6] |= 1 << (h & 63);
            }
        }
        g
    }

    /// Whether the text may contain `needle` (always, for one shorter
    /// than 3 bytes).
    fn may_hold(&self, needle: &[u8]) -> bool {
        needle.windows(3).all(|t| {
            let h = Self::hash(u32::from_be_bytes([0, t[0], t[1], t[2]]));
            self.0[h >> 6] & (1 << (h & 63)) != 0
        })
    }
}

impl Text {
    /// The text, packed when that saves at least an eighth.
    pub(super) fn seal(self) -> Text {
        match self {
            Text::Plain(s) if s.len() >= PACK_MIN => {
                let packed = lz4_flex::block::compress(s.as_bytes());
                if packed.len() < s.len() - s.len() / 8 {
                    Text::Packed {
                        bytes: packed.into_boxed_slice(),
                        len: s.len() as u32,
                        grams: OnceLock::new(),
                    }
                } else {
                    Text::Plain(s)
                }
            }
            other => other,
        }
    }

    /// Bytes held for it.
    pub(super) fn held(&self) -> usize {
        match self {
            Text::Plain(s) => s.capacity(),
            // The substrings a read adds later are not counted.
            Text::Packed { bytes, .. } => bytes.len(),
        }
    }
}

/// Reads a stream's lines chunk by chunk, unpacking a packed chunk once
/// while consecutive reads stay in it (entries are read in arrival order,
/// which is chunk order, almost always).
/// A cursor serves one stream under one hold of the head's lock: it
/// [forgets](Cursor::forget) its chunk before the next.
#[derive(Default)]
pub(super) struct Cursor {
    /// The stream (its address, compared, never followed) and chunk
    /// `text` holds, if any.
    at: Option<(usize, u32)>,
    text: String,
}

impl Cursor {
    /// Ready for another stream (or the same one under a new hold of the
    /// lock), keeping its buffer.
    pub(super) fn forget(&mut self) {
        self.at = None;
    }

    /// Unpacks chunk `c` of the stream `stream` into `text` unless it is
    /// there.
    fn load(&mut self, stream: usize, c: u32, bytes: &[u8], len: u32) {
        let key = (stream, c);
        if self.at != Some(key) {
            self.at = Some(key);
            self.text = unpack(bytes, len as usize);
        }
    }

    /// The line at `(c, from, to)` of the stream `stream` (its address,
    /// told apart from other streams', never followed) whose text is
    /// `chunks`.
    pub(super) fn line<'a>(
        &'a mut self,
        stream: usize,
        chunks: &'a [Text],
        (c, from, to): (u32, u32, u32),
    ) -> &'a str {
        let (from, to) = (from as usize, to as usize);
        match &chunks[c as usize] {
            Text::Plain(s) => &s[from..to],
            Text::Packed { bytes, len, .. } => {
                self.load(stream, c, bytes, *len);
                self.text.get(from..to).unwrap_or("")
            }
        }
    }

    /// Whether a line of chunk `c` of the stream `stream` may pass
    /// `needs`: an open or small chunk may (its lines are read as they
    /// are); a packed one is asked through its substrings, built on its
    /// first unpacking here.
    pub(super) fn may_pass(
        &mut self,
        stream: usize,
        chunks: &[Text],
        c: u32,
        needs: &ChunkNeeds,
    ) -> bool {
        match &chunks[c as usize] {
            Text::Plain(_) => true,
            Text::Packed { bytes, len, grams } => {
                let g = grams.get_or_init(|| {
                    self.load(stream, c, bytes, *len);
                    Grams::of(self.text.as_bytes())
                });
                needs(&|s| g.may_hold(s))
            }
        }
    }
}

/// A packed chunk's text. The head packed it from a `String` it held, so
/// neither step can fail short of memory corruption; if one does, the
/// chunk reads as empty and it is logged.
fn unpack(bytes: &[u8], len: usize) -> String {
    let text = lz4_flex::block::decompress(bytes, len)
        .map_err(|e| e.to_string())
        .and_then(|v| String::from_utf8(v).map_err(|e| e.to_string()));
    text.unwrap_or_else(|error| {
        tracing::error!(%error, "a packed log head chunk did not unpack; its lines read as empty");
        String::new()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunks_substrings_never_rule_out_what_it_holds() {
        let text =
            "2026-12-07 10:00:00 INFO picking WH/OUT/00042 validated; trace 4bf92f3577b34da6";
        let g = Grams::of(text.as_bytes());
        for from in 0..text.len() {
            for to in from..=text.len() {
                assert!(g.may_hold(&text.as_bytes()[from..to]), "{from}..{to}");
            }
        }
        assert!(!g.may_hold(b"needle-0123456789abcdef"));
        assert!(g.may_hold(b"xy"), "too short to rule out");
    }
}
