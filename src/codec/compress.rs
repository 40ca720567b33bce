//! The compressors django-redis offers, in the same formats, so either side reads what the other
//! wrote: zlib streams, gzip members, XZ containers, LZ4 frames and Zstandard frames.
//!
//! Pure Rust; no Python types. Callers release the GIL around large values.

use flate2::write::GzEncoder;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use std::cell::RefCell;
use std::io::{Read, Write};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Zlib,
    Gzip,
    Lzma,
    Lz4,
    Zstd,
}

impl Kind {
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "zlib" => Kind::Zlib,
            "gzip" => Kind::Gzip,
            "lzma" => Kind::Lzma,
            "lz4" => Kind::Lz4,
            "zstd" => Kind::Zstd,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Zlib => "zlib",
            Kind::Gzip => "gzip",
            Kind::Lzma => "lzma",
            Kind::Lz4 => "lz4",
            Kind::Zstd => "zstd",
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum DecompressError {
    /// Not data of this format, or damaged: the caller may read the value as stored.
    Invalid(String),
    /// The value would inflate beyond the bound: refused, never read as stored.
    TooLarge(usize),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NativeCompressor {
    pub kind: Kind,
    pub level: i32,
    /// Values of at most this many bytes are stored uncompressed (django-redis's `min_length`).
    pub min_length: usize,
    pub max_decompressed: usize,
}

impl NativeCompressor {
    /// Check the level against what the format accepts.
    pub fn validate(&self) -> Result<(), String> {
        let (low, high) = match self.kind {
            Kind::Zlib | Kind::Gzip | Kind::Lzma => (0, 9),
            Kind::Lz4 => (0, 0), // lz4_flex has one (fast) level
            Kind::Zstd => (-7, 22),
        };
        if self.level < low || self.level > high {
            return Err(format!(
                "{} level {} is out of range {low}..={high}",
                self.kind.name(),
                self.level
            ));
        }
        Ok(())
    }

    /// Whether `compress` would change a value of `len` bytes.
    pub fn applies_to(&self, len: usize) -> bool {
        len > self.min_length
    }

    pub fn compress(&self, data: &[u8]) -> Vec<u8> {
        if !self.applies_to(data.len()) {
            return data.to_vec();
        }
        let level = self.level.max(0) as u32; // validate() keeps levels in range
        let written = match self.kind {
            Kind::Zlib => deflate(data, level),
            Kind::Gzip => {
                let mut enc = GzEncoder::new(Vec::new(), flate2::Compression::new(level));
                enc.write_all(data).and_then(|_| enc.finish())
            }
            Kind::Lzma => {
                let mut enc = liblzma::write::XzEncoder::new(Vec::new(), level);
                enc.write_all(data).and_then(|_| enc.finish())
            }
            Kind::Lz4 => {
                // python-lz4's defaults: linked blocks, content size in the header, no checksums.
                let info = lz4_flex::frame::FrameInfo::new()
                    .content_size(Some(data.len() as u64))
                    .block_mode(lz4_flex::frame::BlockMode::Linked);
                let mut enc = lz4_flex::frame::FrameEncoder::with_frame_info(info, Vec::new());
                enc.write_all(data)
                    .and_then(|_| enc.finish().map_err(std::io::Error::other))
            }
            Kind::Zstd => ZSTD_COMPRESS.with(|cell| {
                let mut slot = cell.borrow_mut();
                if slot.as_ref().is_none_or(|(level, _)| *level != self.level) {
                    *slot = Some((self.level, zstd::bulk::Compressor::new(self.level)?));
                }
                let (_, compressor) = slot.as_mut().expect("set above");
                compressor.compress(data)
            }),
        };
        // Writing into a Vec cannot fail; an encoder error would be a bug in the codec crate.
        written.unwrap_or_else(|_| data.to_vec())
    }

    /// Whether `data` starts like this format. Checked before decoding: uncompressed values
    /// (short ones, or written before compression was enabled) are told apart at once, and some
    /// decoders read a too-short input as an empty stream rather than an error.
    pub fn recognizes(&self, data: &[u8]) -> bool {
        match self.kind {
            // CMF/FLG: deflate method, and the header checksum (a multiple of 31).
            Kind::Zlib => {
                data.len() >= 2
                    && data[0] & 0x0f == 8
                    && (u16::from(data[0]) << 8 | u16::from(data[1])) % 31 == 0
            }
            Kind::Gzip => data.starts_with(&[0x1f, 0x8b]),
            // What liblzma's auto decoder (Python's lzma.FORMAT_AUTO) takes: XZ, lzip, and a
            // header that its .lzma decoder accepts.
            Kind::Lzma => {
                data.starts_with(b"\xfd7zXZ\x00")
                    || data.starts_with(b"LZIP")
                    || lzma_alone_header(data)
            }
            Kind::Lz4 => data.starts_with(&[0x04, 0x22, 0x4d, 0x18]),
            Kind::Zstd => data.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]),
        }
    }

    pub fn decompress(&self, data: &[u8]) -> Result<Vec<u8>, DecompressError> {
        if !self.recognizes(data) {
            return Err(DecompressError::Invalid(format!(
                "not {} data",
                self.kind.name()
            )));
        }
        match self.kind {
            Kind::Zlib => inflate(data, self.max_decompressed),
            Kind::Gzip => gunzip(data, self.max_decompressed),
            Kind::Lzma => unlzma(data, self.max_decompressed),
            Kind::Lz4 => unlz4(data, self.max_decompressed),
            Kind::Zstd => unzstd(data, self.max_decompressed),
        }
    }
}

// Compression contexts are costly to set up (tables of tens of KB): each thread keeps one per
// format and reuses it, so a small value costs what compressing it costs.
thread_local! {
    static ZLIB_COMPRESS: RefCell<Option<(u32, Compress)>> = const { RefCell::new(None) };
    static ZLIB_DECOMPRESS: RefCell<Option<Decompress>> = const { RefCell::new(None) };
    static ZSTD_COMPRESS: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> = const { RefCell::new(None) };
    static ZSTD_DECOMPRESS: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

fn deflate(data: &[u8], level: u32) -> std::io::Result<Vec<u8>> {
    ZLIB_COMPRESS.with(|cell| {
        let mut slot = cell.borrow_mut();
        match slot.as_mut() {
            Some((current, c)) if *current == level => c.reset(),
            _ => *slot = Some((level, Compress::new(Compression::new(level), true))),
        }
        let (_, c) = slot.as_mut().expect("set above");
        let mut out = Vec::with_capacity(data.len() / 2 + 64);
        loop {
            let consumed = c.total_in() as usize;
            match c.compress_vec(&data[consumed..], &mut out, FlushCompress::Finish) {
                Ok(Status::StreamEnd) => return Ok(out),
                Ok(_) => out.reserve(out.capacity().max(64)),
                Err(e) => return Err(std::io::Error::other(e)),
            }
        }
    })
}

/// Inflate a zlib stream into a buffer that grows until the stream ends or passes `max`. As
/// Python's `zlib.decompress`, anything after the stream's end is ignored.
fn inflate(data: &[u8], max: usize) -> Result<Vec<u8>, DecompressError> {
    ZLIB_DECOMPRESS.with(|cell| {
        let mut slot = cell.borrow_mut();
        let d = slot.get_or_insert_with(|| Decompress::new(true));
        d.reset(true);
        // A guess, never past the limit (`clamp` would panic when the limit is under 64).
        let mut out = Vec::with_capacity(
            data.len()
                .saturating_mul(4)
                .max(64)
                .min(max.saturating_add(1)),
        );
        inflate_into(d, data, &mut out, max)?;
        Ok(out)
    })
}

/// Inflate the one deflate stream (`d` freshly reset: zlib-wrapped or raw) at the start of
/// `data` onto `out`, up to `max` bytes in all; returns how much input the stream took.
fn inflate_into(
    d: &mut Decompress,
    data: &[u8],
    out: &mut Vec<u8>,
    max: usize,
) -> Result<usize, DecompressError> {
    loop {
        let consumed = d.total_in() as usize;
        let produced = out.len();
        let status = d
            .decompress_vec(&data[consumed..], out, FlushDecompress::Finish)
            .map_err(|e| DecompressError::Invalid(e.to_string()))?;
        if out.len() > max {
            return Err(DecompressError::TooLarge(max));
        }
        match status {
            Status::StreamEnd => return Ok(d.total_in() as usize),
            _ if out.len() == out.capacity() => {
                out.reserve(out.len().min(max + 1 - out.len()).max(64))
            }
            _ if out.len() == produced && d.total_in() as usize == consumed => {
                return Err(DecompressError::Invalid("truncated deflate stream".into()))
            }
            _ => {}
        }
    }
}

/// Zstandard frames that state their size (pyzstd's and ours do) decode in one call into an
/// exact buffer with a reused context; others stream.
fn unzstd(data: &[u8], max: usize) -> Result<Vec<u8>, DecompressError> {
    if let Ok(Some(size)) = zstd::zstd_safe::get_frame_content_size(data) {
        if size > max as u64 {
            return Err(DecompressError::TooLarge(max));
        }
        let single = ZSTD_DECOMPRESS.with(|cell| {
            let mut slot = cell.borrow_mut();
            if slot.is_none() {
                *slot = Some(zstd::bulk::Decompressor::new().ok()?);
            }
            slot.as_mut()?.decompress(data, size as usize).ok()
        });
        if let Some(out) = single.filter(|out| out.len() as u64 == size) {
            return Ok(out);
        }
    }
    match zstd::stream::read::Decoder::with_buffer(data) {
        Ok(decoder) => bounded(decoder, max, guess(data, max)),
        Err(e) => Err(DecompressError::Invalid(e.to_string())),
    }
}

/// The content size an LZ4 frame header states (python-lz4 and we write it), if any.
fn lz4_content_size(data: &[u8]) -> Option<usize> {
    let flags = *data.get(4)?;
    if flags & 0b1000 == 0 {
        return None;
    }
    let size = u64::from_le_bytes(data.get(6..14)?.try_into().ok()?);
    usize::try_from(size).ok()
}

/// Decode the LZ4 frame at the start of `data` into a buffer sized from its header. As
/// `lz4.frame.decompress`: the frame must be whole (up to its end mark and checksum), and
/// anything after it is ignored.
fn unlz4(data: &[u8], max: usize) -> Result<Vec<u8>, DecompressError> {
    let expected = lz4_content_size(data);
    if expected.is_some_and(|size| size > max) {
        return Err(DecompressError::TooLarge(max));
    }
    let frame = lz4_frame_len(data)
        .ok_or_else(|| DecompressError::Invalid("LZ4 frame incomplete".into()))?;
    bounded(
        lz4_flex::frame::FrameDecoder::new(&data[..frame]),
        max,
        expected.unwrap_or(0),
    )
}

/// The length of the LZ4 frame at the start of `data`, walked from its header and block sizes;
/// None when it is cut before its end mark (or checksum).
fn lz4_frame_len(data: &[u8]) -> Option<usize> {
    let flags = *data.get(4)?;
    let mut at = 7; // magic, FLG, BD, then the header checksum
    if flags & 0b1000 != 0 {
        at += 8; // content size
    }
    if flags & 0b1 != 0 {
        at += 4; // dictionary id
    }
    let block_checksums = flags & 0b1_0000 != 0;
    loop {
        let size = u32::from_le_bytes(data.get(at..at + 4)?.try_into().ok()?);
        at += 4;
        if size == 0 {
            break; // the end mark
        }
        at += (size & 0x7fff_ffff) as usize + if block_checksums { 4 } else { 0 };
    }
    if flags & 0b100 != 0 {
        at += 4; // content checksum
    }
    (at <= data.len()).then_some(at)
}

/// Python's `gzip.decompress`: members one after another, each checked against its CRC-32 and
/// length, NUL padding skipped after each; anything else after a member fails the value.
fn gunzip(data: &[u8], max: usize) -> Result<Vec<u8>, DecompressError> {
    let invalid = |why: &str| DecompressError::Invalid(format!("gzip: {why}"));
    let mut out = Vec::with_capacity(guess(data, max).max(64));
    let mut d = Decompress::new(false);
    let mut rest = data;
    while !rest.is_empty() {
        let body = gzip_header_len(rest).ok_or_else(|| invalid("not a gzip member"))?;
        d.reset(false);
        let start = out.len();
        let used = body + inflate_into(&mut d, &rest[body..], &mut out, max)?;
        let trailer = rest
            .get(used..used + 8)
            .ok_or_else(|| invalid("member cut before its trailer"))?;
        let mut crc = flate2::Crc::new();
        crc.update(&out[start..]);
        let word = |at: usize| u32::from_le_bytes(trailer[at..at + 4].try_into().expect("4"));
        if word(0) != crc.sum() {
            return Err(invalid("CRC check failed"));
        }
        if word(4) != (out.len() - start) as u32 {
            return Err(invalid("incorrect length of data produced"));
        }
        rest = &rest[used + 8..];
        rest = &rest[rest.iter().take_while(|&&b| b == 0).count()..];
    }
    Ok(out)
}

/// The length of the gzip member header at the start of `data`, read as Python's gzip reads
/// it: magic, deflate method, then the optional extra field, name, comment and header CRC
/// (skipped, not checked; reserved flag bits ignored). None when it is not one, or cut short.
fn gzip_header_len(data: &[u8]) -> Option<usize> {
    const FHCRC: u8 = 2;
    const FEXTRA: u8 = 4;
    const FNAME: u8 = 8;
    const FCOMMENT: u8 = 16;
    if data.get(..3)? != [0x1f, 0x8b, 8] {
        return None;
    }
    let flags = *data.get(3)?;
    let mut at = 10;
    if flags & FEXTRA != 0 {
        let len = u16::from_le_bytes(data.get(at..at + 2)?.try_into().ok()?);
        at += 2 + usize::from(len);
    }
    for field in [FNAME, FCOMMENT] {
        if flags & field != 0 {
            at += data.get(at..)?.iter().position(|&b| b == 0)? + 1;
        }
    }
    if flags & FHCRC != 0 {
        at += 2;
    }
    (at <= data.len()).then_some(at)
}

/// Whether `data` starts with a header liblzma's .lzma decoder accepts (it is picky: the
/// properties byte in range, a dictionary size of 2^n or 2^n + 2^(n-1), a known or plausible
/// uncompressed size), so that values stored uncompressed are told apart without a decoder.
fn lzma_alone_header(data: &[u8]) -> bool {
    let Some(header) = data.get(..13) else {
        return false;
    };
    let props = header[0];
    let (lc, lp) = (props % 9, (props / 9) % 5);
    let dict = u32::from_le_bytes(header[1..5].try_into().expect("4 bytes"));
    let size = u64::from_le_bytes(header[5..13].try_into().expect("8 bytes"));
    let dict_ok = dict == u32::MAX || {
        let mut d = dict.wrapping_sub(1);
        for shift in [2, 3, 4, 8, 16] {
            d |= d >> shift;
        }
        d.wrapping_add(1) == dict
    };
    props <= 224 && lc + lp <= 4 && dict_ok && (size == u64::MAX || size < 1 << 38)
}

/// How one stream of `unlzma`'s ended.
enum LzmaStream {
    /// Whole, after this many bytes of input.
    Ended(usize),
    /// The input ran out first.
    Cut,
    /// liblzma refused it.
    Refused(String),
}

/// Python's `lzma.decompress` (FORMAT_AUTO, which django-redis calls): streams one after
/// another; after the first, data that liblzma refuses is ignored, but data that ends inside
/// a stream fails the value.
fn unlzma(data: &[u8], max: usize) -> Result<Vec<u8>, DecompressError> {
    let mut out = Vec::with_capacity(guess(data, max));
    let mut rest = data;
    let mut first = true;
    while first || !rest.is_empty() {
        let kept = out.len();
        match lzma_stream(rest, &mut out, max)? {
            LzmaStream::Ended(used) => rest = &rest[used..],
            LzmaStream::Refused(_) if !first => {
                out.truncate(kept);
                break;
            }
            LzmaStream::Refused(why) => return Err(DecompressError::Invalid(why)),
            LzmaStream::Cut => {
                return Err(DecompressError::Invalid(
                    "LZMA data ended before the end-of-stream marker".into(),
                ))
            }
        }
        first = false;
    }
    Ok(out)
}

/// Decode one stream from the start of `data`, appending to `out` up to `max` bytes in all.
fn lzma_stream(data: &[u8], out: &mut Vec<u8>, max: usize) -> Result<LzmaStream, DecompressError> {
    use liblzma::stream::{Action, Status, Stream};
    let mut stream = match Stream::new_auto_decoder(u64::MAX, 0) {
        Ok(stream) => stream,
        Err(e) => return Ok(LzmaStream::Refused(e.to_string())),
    };
    loop {
        if out.len() == out.capacity() {
            out.reserve(out.len().min(max + 1 - out.len()).max(64));
        }
        let (read, written) = (stream.total_in(), out.len());
        let status = stream.process_vec(&data[read as usize..], out, Action::Run);
        if out.len() > max {
            return Err(DecompressError::TooLarge(max));
        }
        match status {
            Ok(Status::StreamEnd) => return Ok(LzmaStream::Ended(stream.total_in() as usize)),
            Ok(_) if stream.total_in() == read && out.len() == written => {
                return Ok(LzmaStream::Cut)
            }
            Ok(_) => {}
            Err(e) => return Ok(LzmaStream::Refused(e.to_string())),
        }
    }
}

/// A first buffer size for formats that do not state their content size.
fn guess(data: &[u8], max: usize) -> usize {
    data.len().saturating_mul(4).min(max)
}

/// Read a decoder to the end, refusing output beyond `max` bytes.
fn bounded(decoder: impl Read, max: usize, capacity: usize) -> Result<Vec<u8>, DecompressError> {
    let mut out = Vec::with_capacity(capacity);
    let limit = (max as u64).saturating_add(1);
    decoder
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| DecompressError::Invalid(e.to_string()))?;
    if out.len() > max {
        return Err(DecompressError::TooLarge(max));
    }
    Ok(out)
}

/// A compressor at its format's fastest level, with django-redis's usual minimum length
/// and Redis's largest value as the bound (the Python classes hold the real defaults).
#[cfg(test)]
pub(crate) fn compressor(kind: Kind) -> NativeCompressor {
    NativeCompressor {
        kind,
        level: if kind == Kind::Lz4 { 0 } else { 1 },
        min_length: 15,
        max_decompressed: 512 * 1024 * 1024,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Kind; 5] = [Kind::Zlib, Kind::Gzip, Kind::Lzma, Kind::Lz4, Kind::Zstd];

    fn sample(n: usize) -> Vec<u8> {
        (0..n)
            .map(|i| b"abcdefgh"[i % 8] ^ (i / 97) as u8)
            .collect()
    }

    #[test]
    fn round_trips_and_shrinks() {
        for kind in ALL {
            let c = compressor(kind);
            let data = sample(100_000);
            let packed = c.compress(&data);
            assert!(packed.len() < data.len() / 2, "{kind:?}");
            assert_eq!(c.decompress(&packed).unwrap(), data, "{kind:?}");
        }
    }

    #[test]
    fn formats_have_their_magic_numbers() {
        let data = sample(1000);
        let magic = |kind| compressor(kind).compress(&data);
        assert_eq!(magic(Kind::Zlib)[0], 0x78);
        assert_eq!(&magic(Kind::Gzip)[..2], &[0x1f, 0x8b]);
        assert_eq!(&magic(Kind::Lzma)[..6], b"\xfd7zXZ\x00");
        assert_eq!(&magic(Kind::Lz4)[..4], &[0x04, 0x22, 0x4d, 0x18]);
        assert_eq!(&magic(Kind::Zstd)[..4], &[0x28, 0xb5, 0x2f, 0xfd]);
    }

    #[test]
    fn short_values_are_left_alone() {
        for kind in ALL {
            let c = compressor(kind);
            let short = sample(c.min_length);
            assert_eq!(c.compress(&short), short);
        }
    }

    #[test]
    fn foreign_and_truncated_bytes_are_invalid_not_panics() {
        for kind in ALL {
            let c = compressor(kind);
            let packed = c.compress(&sample(5000));
            for bad in [
                &b"\x80\x04plain pickle"[..],
                &packed[..packed.len() / 2],
                &packed[..3],
            ] {
                assert!(
                    matches!(c.decompress(bad), Err(DecompressError::Invalid(_))),
                    "{kind:?} accepted {bad:?}"
                );
            }
        }
    }

    #[test]
    fn inflating_past_the_bound_is_refused() {
        for kind in ALL {
            let mut c = compressor(kind);
            let packed = c.compress(&vec![0u8; 1 << 20]);
            c.max_decompressed = 1000;
            assert_eq!(
                c.decompress(&packed),
                Err(DecompressError::TooLarge(1000)),
                "{kind:?}"
            );
        }
    }

    /// zstd and LZ4 frames that state a content size over the limit are refused from their
    /// header, before any byte is inflated (or any buffer of that size allocated).
    #[test]
    fn a_declared_size_over_the_limit_is_refused_from_the_header() {
        let huge = (1u64 << 40).to_le_bytes();
        // zstd: magic, single-segment frame with an 8-byte content size, one empty raw block.
        let mut zstd = vec![0x28, 0xB5, 0x2F, 0xFD, 0xE0];
        zstd.extend_from_slice(&huge);
        zstd.extend_from_slice(&[0x01, 0x00, 0x00]);
        // LZ4: magic, FLG (version 1, independent blocks, content size), BD, the size.
        let mut lz4 = vec![0x04, 0x22, 0x4D, 0x18, 0x68, 0x70];
        lz4.extend_from_slice(&huge);
        lz4.extend_from_slice(&[0x00; 8]);
        for (kind, frame) in [(Kind::Zstd, zstd), (Kind::Lz4, lz4)] {
            let mut c = compressor(kind);
            c.max_decompressed = 1 << 20;
            assert_eq!(
                c.decompress(&frame),
                Err(DecompressError::TooLarge(1 << 20)),
                "{kind:?}"
            );
        }
    }

    /// A limit under the first buffer's guess (64 bytes) once made `clamp` panic.
    #[test]
    fn tiny_limits_refuse_without_panicking() {
        for kind in ALL {
            for max in [0, 1, 10, 63] {
                let mut c = compressor(kind);
                let packed = c.compress(&[7u8; 100]);
                c.max_decompressed = max;
                assert!(c.decompress(&packed).is_err(), "{kind:?} {max}");
            }
        }
    }

    #[test]
    fn levels_are_checked() {
        let mut c = compressor(Kind::Zlib);
        c.level = 10;
        assert!(c.validate().is_err());
        c.kind = Kind::Zstd;
        assert!(c.validate().is_ok());
    }

    mod fuzz {
        use super::*;
        use proptest::prelude::*;

        /// A valid stream of `kind`, then damaged: truncated, a byte flipped, bytes appended.
        fn damaged(kind: Kind) -> impl Strategy<Value = Vec<u8>> {
            let packed = compressor(kind).compress(&sample(3000));
            let len = packed.len();
            (
                0..len,
                0..len,
                any::<u8>(),
                proptest::collection::vec(any::<u8>(), 0..16),
            )
                .prop_map(move |(cut, at, byte, tail)| {
                    let mut bad = packed.clone();
                    bad[at] ^= byte | 1;
                    bad.truncate(cut.max(at + 1));
                    bad.extend(tail);
                    bad
                })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            /// Whatever the bytes, every decoder answers (data or a clear error) within its bound.
            #[test]
            fn foreign_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..4096)) {
                for kind in ALL {
                    let mut c = compressor(kind);
                    c.max_decompressed = 1 << 16;
                    if let Ok(out) = c.decompress(&data) {
                        prop_assert!(out.len() <= 1 << 16);
                    }
                }
            }

            #[test]
            fn damaged_streams_never_panic(
                zlib in damaged(Kind::Zlib),
                gzip in damaged(Kind::Gzip),
                lzma in damaged(Kind::Lzma),
                lz4 in damaged(Kind::Lz4),
                zstd in damaged(Kind::Zstd),
            ) {
                for (kind, data) in [(Kind::Zlib, zlib), (Kind::Gzip, gzip), (Kind::Lzma, lzma),
                                     (Kind::Lz4, lz4), (Kind::Zstd, zstd)] {
                    let mut c = compressor(kind);
                    c.max_decompressed = 1 << 16;
                    if let Ok(out) = c.decompress(&data) {
                        prop_assert!(out.len() <= 1 << 16);
                    }
                }
            }
        }
    }

    /// What Python's decompressors (django-redis's) accept around a stream, and refuse: the
    /// differential test (tests/differential.py) found each of these.
    #[test]
    fn trailing_bytes_are_read_as_pythons_decompressors_read_them() {
        let text = b"a value long enough to be compressed".to_vec();
        let ok = |kind: Kind, stored: &[u8], want: &[u8]| {
            assert_eq!(
                compressor(kind).decompress(stored).as_deref(),
                Ok(want),
                "{kind:?}"
            )
        };
        let refused = |kind: Kind, stored: &[u8]| {
            let got = compressor(kind).decompress(stored);
            assert!(
                matches!(got, Err(DecompressError::Invalid(_))),
                "{kind:?}: {got:?}"
            )
        };
        let with = |a: &[u8], b: &[u8]| [a, b].concat();
        let twice = [text.clone(), text.clone()].concat();

        let zlib = compressor(Kind::Zlib).compress(&text);
        ok(Kind::Zlib, &with(&zlib, b"garbage"), &text); // the rest is ignored
        refused(Kind::Zlib, &zlib[..zlib.len() - 1]);

        let gzip = compressor(Kind::Gzip).compress(&text);
        ok(Kind::Gzip, &with(&gzip, &[0; 5]), &text); // NUL padding
        ok(Kind::Gzip, &with(&gzip, &with(&[0, 0], &gzip)), &twice); // members joined
        refused(Kind::Gzip, &with(&gzip, b"xy")); // anything else after a member
        refused(Kind::Gzip, &gzip[..gzip.len() - 1]);
        let mut reserved = gzip.clone();
        reserved[3] |= 0x20; // a reserved flag bit: Python ignores it
        ok(Kind::Gzip, &reserved, &text);
        let mut bad_crc = gzip.clone();
        let at = bad_crc.len() - 8;
        bad_crc[at] ^= 1;
        refused(Kind::Gzip, &bad_crc);

        let xz = compressor(Kind::Lzma).compress(&text);
        ok(Kind::Lzma, &with(&xz, b"garbage"), &text); // a second stream refused: ignored
        ok(Kind::Lzma, &with(&xz, &xz), &twice);
        refused(Kind::Lzma, &with(&xz, &[0; 4])); // the input ends inside a "stream"
        refused(Kind::Lzma, &xz[..xz.len() - 1]);

        let lz4 = compressor(Kind::Lz4).compress(&text);
        ok(Kind::Lz4, &with(&lz4, b"garbage"), &text); // the first frame only
        ok(Kind::Lz4, &with(&lz4, &lz4), &text);
        refused(Kind::Lz4, &lz4[..lz4.len() - 4]); // cut before its end mark
    }
}
