//! Incremental decoder for `Transfer-Encoding: chunked` request bodies (RFC 9112 §7.1).
//!
//! Bytes may arrive split anywhere; the decoder keeps its state between calls and appends the
//! decoded data to a caller-owned buffer. Everything that could be abused is bounded: the size
//! (at most 16 hex digits, and the body limit), the length of a chunk line with its extensions,
//! the trailer section, line endings must be CRLF, and the framing as a whole may not outgrow
//! the data it carries (beyond [`FRAMING_ALLOWANCE`]), so the bytes read for a body, and the
//! work spent on them, stay within a small multiple of the body limit.

use super::limits::{MAX_CHUNK_LINE, MAX_TRAILER_BYTES};

/// Framing bytes (size lines, extensions, CRLFs) a body may carry beyond one per data byte:
/// enough for thousands of small chunks, not for a stream of 1-byte chunks at the body limit.
pub const FRAMING_ALLOWANCE: usize = 64 * 1024;
use super::percent::hex_value;

/// Why a chunked body was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChunkedError {
    /// Not valid chunked framing (400).
    #[error("invalid chunked body: {0}")]
    Invalid(&'static str),
    /// The decoded body grew past the limit (413).
    #[error("chunked body larger than the limit")]
    TooLarge,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Reading hex digits of a chunk size.
    Size { digits: u8 },
    /// After the size, before CR: optional whitespace, then `;` extensions.
    SizeWs,
    /// Inside chunk extensions, up to CR.
    Extension,
    /// Expecting LF after the chunk line's CR.
    SizeLf,
    /// Copying chunk data; this many bytes left.
    Data { left: u64 },
    /// Expecting CR after chunk data.
    DataCr,
    /// Expecting LF after chunk data.
    DataLf,
    /// At the start of a trailer line (or the final blank line).
    TrailerStart,
    /// Inside a trailer field line, up to CR.
    Trailer,
    /// Expecting LF after a trailer line's CR.
    TrailerLf,
    /// Expecting LF after the final blank line's CR.
    EndLf,
    /// The whole body was read.
    Done,
}

/// Decoder state for one chunked body.
#[derive(Clone, Debug)]
pub struct ChunkedDecoder {
    state: State,
    size: u64,
    line_len: usize,
    trailer_len: usize,
    max_body: usize,
    /// Data bytes decoded so far.
    decoded: usize,
    /// Framing bytes read so far.
    framing: usize,
}

impl ChunkedDecoder {
    /// A decoder that refuses bodies larger than `max_body` decoded bytes.
    pub fn new(max_body: usize) -> Self {
        ChunkedDecoder {
            state: State::Size { digits: 0 },
            size: 0,
            line_len: 0,
            trailer_len: 0,
            max_body,
            decoded: 0,
            framing: 0,
        }
    }

    /// True once the final chunk and trailers were read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decodes as much of `input` as possible, appending data to `out`. Returns how many input
    /// bytes were consumed: all of them unless the body ended, in which case the rest belongs
    /// to the next request on the connection.
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, ChunkedError> {
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            match self.state {
                State::Done => return Ok(i),
                State::Data { left } => {
                    let take = (left.min((input.len() - i) as u64)) as usize;
                    if out.len() + take > self.max_body {
                        return Err(ChunkedError::TooLarge);
                    }
                    out.extend_from_slice(&input[i..i + take]);
                    self.decoded += take;
                    i += take;
                    let left = left - take as u64;
                    self.state = if left == 0 {
                        State::DataCr
                    } else {
                        State::Data { left }
                    };
                    continue;
                }
                State::Size { digits } => {
                    self.line_len += 1;
                    if let Some(v) = hex_value(b) {
                        if digits >= 16 {
                            return Err(ChunkedError::Invalid("chunk size too long"));
                        }
                        self.size = (self.size << 4) | u64::from(v);
                        self.state = State::Size { digits: digits + 1 };
                    } else if digits == 0 {
                        return Err(ChunkedError::Invalid("missing chunk size"));
                    } else {
                        self.after_size_byte(b)?;
                    }
                }
                State::SizeWs => {
                    self.line_len += 1;
                    self.after_size_byte(b)?;
                }
                State::Extension => {
                    self.line_len += 1;
                    if self.line_len > MAX_CHUNK_LINE {
                        return Err(ChunkedError::Invalid("chunk extension too long"));
                    }
                    match b {
                        b'\r' => self.state = State::SizeLf,
                        b'\t' | b' '..=b'~' | 0x80..=0xff => {}
                        _ => return Err(ChunkedError::Invalid("control byte in chunk extension")),
                    }
                }
                State::SizeLf => {
                    if b != b'\n' {
                        return Err(ChunkedError::Invalid("chunk line not ended by CRLF"));
                    }
                    self.line_len = 0;
                    if self.size == 0 {
                        self.state = State::TrailerStart;
                    } else {
                        if out.len() as u64 + self.size > self.max_body as u64 {
                            return Err(ChunkedError::TooLarge);
                        }
                        self.state = State::Data { left: self.size };
                        self.size = 0;
                    }
                }
                State::DataCr => {
                    if b != b'\r' {
                        return Err(ChunkedError::Invalid("chunk data not followed by CRLF"));
                    }
                    self.state = State::DataLf;
                }
                State::DataLf => {
                    if b != b'\n' {
                        return Err(ChunkedError::Invalid("chunk data not followed by CRLF"));
                    }
                    self.state = State::Size { digits: 0 };
                }
                State::TrailerStart => {
                    self.state = if b == b'\r' {
                        State::EndLf
                    } else {
                        self.trailer_byte(b)?;
                        State::Trailer
                    };
                }
                State::Trailer => {
                    if b == b'\r' {
                        self.state = State::TrailerLf;
                    } else {
                        self.trailer_byte(b)?;
                    }
                }
                State::TrailerLf => {
                    if b != b'\n' {
                        return Err(ChunkedError::Invalid("trailer line not ended by CRLF"));
                    }
                    self.state = State::TrailerStart;
                }
                State::EndLf => {
                    if b != b'\n' {
                        return Err(ChunkedError::Invalid("chunked body not ended by CRLF"));
                    }
                    self.state = State::Done;
                    return Ok(i + 1);
                }
            }
            // Every byte that is not chunk data is framing.
            self.framing += 1;
            if self.framing > FRAMING_ALLOWANCE + self.decoded {
                return Err(ChunkedError::Invalid("chunk framing larger than its data"));
            }
            i += 1;
        }
        Ok(i)
    }

    /// A byte after at least one size digit: whitespace, the start of extensions, or CR.
    fn after_size_byte(&mut self, b: u8) -> Result<(), ChunkedError> {
        if self.line_len > MAX_CHUNK_LINE {
            return Err(ChunkedError::Invalid("chunk line too long"));
        }
        self.state = match b {
            b' ' | b'\t' => State::SizeWs,
            b';' => State::Extension,
            b'\r' => State::SizeLf,
            _ => return Err(ChunkedError::Invalid("invalid byte after chunk size")),
        };
        Ok(())
    }

    fn trailer_byte(&mut self, b: u8) -> Result<(), ChunkedError> {
        self.trailer_len += 1;
        if self.trailer_len > MAX_TRAILER_BYTES {
            return Err(ChunkedError::Invalid("trailer section too large"));
        }
        match b {
            b'\t' | b' '..=b'~' | 0x80..=0xff => Ok(()),
            _ => Err(ChunkedError::Invalid("control byte in trailer")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `input` fed in pieces of `step` bytes; returns (body, consumed) or the error.
    fn decode_split(
        input: &[u8],
        step: usize,
        max: usize,
    ) -> Result<(Vec<u8>, usize), ChunkedError> {
        let mut d = ChunkedDecoder::new(max);
        let mut out = Vec::new();
        let mut pos = 0;
        while pos < input.len() && !d.is_done() {
            let end = (pos + step).min(input.len());
            pos += d.decode(&input[pos..end], &mut out)?;
        }
        assert!(d.is_done(), "body incomplete");
        Ok((out, pos))
    }

    #[test]
    fn decodes_in_every_split() {
        let raw = b"4\r\nWiki\r\n5;name=val\r\npedia\r\nE \r\n in\r\n\r\nchunks.\r\n0\r\nX-T: 1\r\n\r\nNEXT";
        for step in 1..raw.len() {
            let (body, used) = decode_split(raw, step, 1000).expect("valid");
            assert_eq!(body, b"Wikipedia in\r\n\r\nchunks.");
            assert_eq!(&raw[used..], b"NEXT", "step {step}");
        }
    }

    #[test]
    fn refuses_bad_framing() {
        let bad: &[&[u8]] = &[
            b"x\r\n",
            b"\r\n",
            b"4\nWiki\r\n0\r\n\r\n",
            b"4\r\nWikiX\r\n0\r\n\r\n",
            b"4\r\nWiki\r\n0\r\n\n",
            b"10000000000000000\r\n",
            b"-1\r\n",
            b"4 x\r\n",
            b"4;a\x00\r\n",
            b"0\r\nX: a\x01\r\n\r\n",
        ];
        for raw in bad {
            let mut d = ChunkedDecoder::new(1000);
            let got = d.decode(raw, &mut Vec::new());
            assert!(
                matches!(got, Err(ChunkedError::Invalid(_))),
                "{:?} gave {got:?}",
                String::from_utf8_lossy(raw)
            );
        }
        let mut long_ext = b"1;".to_vec();
        long_ext.resize(MAX_CHUNK_LINE + 10, b'a');
        assert!(ChunkedDecoder::new(1000)
            .decode(&long_ext, &mut Vec::new())
            .is_err());
    }

    #[test]
    fn framing_may_not_outgrow_its_data() {
        // 1-byte chunks: five framing bytes per data byte.
        let tiny: Vec<u8> = b"1\r\nx\r\n".repeat(FRAMING_ALLOWANCE);
        let got = ChunkedDecoder::new(usize::MAX).decode(&tiny, &mut Vec::new());
        assert_eq!(
            got,
            Err(ChunkedError::Invalid("chunk framing larger than its data"))
        );
        // 64-byte chunks with a 1 KiB extension each: also refused, once past the allowance.
        let mut ext = b"40;".to_vec();
        ext.resize(1024, b'e');
        ext.extend_from_slice(b"\r\n");
        ext.extend_from_slice(&[b'd'; 64]);
        ext.extend_from_slice(b"\r\n");
        let got = ChunkedDecoder::new(usize::MAX).decode(&ext.repeat(200), &mut Vec::new());
        assert!(got.is_err(), "{got:?}");
        // 16-byte chunks carry less framing than data: any number of them is fine.
        let mut ok = b"10\r\n0123456789abcdef\r\n".repeat(100_000);
        ok.extend_from_slice(b"0\r\n\r\n");
        let mut out = Vec::new();
        assert_eq!(
            ChunkedDecoder::new(usize::MAX).decode(&ok, &mut out),
            Ok(ok.len())
        );
        assert_eq!(out.len(), 1_600_000);
    }

    #[test]
    fn enforces_the_body_limit_before_copying() {
        let mut d = ChunkedDecoder::new(8);
        assert_eq!(
            d.decode(b"9\r\n", &mut Vec::new()),
            Err(ChunkedError::TooLarge)
        );
        let mut d = ChunkedDecoder::new(8);
        let mut out = Vec::new();
        assert_eq!(d.decode(b"5\r\nhello\r\n", &mut out), Ok(10));
        assert_eq!(d.decode(b"5\r\n", &mut out), Err(ChunkedError::TooLarge));
    }
}
