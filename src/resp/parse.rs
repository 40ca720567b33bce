//! Reading RESP replies from bytes as they arrive, with bounds: one reply may hold at most
//! `MAX_REPLY_ELEMENTS` values and `MAX_REPLY_BYTES` bytes, nested at most `MAX_DEPTH` deep.
//! A server (or anything posing as one) that announces more is refused at the announcement,
//! before memory is taken for it, and the connection that carried it is dropped.
//!
//! The reader holds no I/O: it is fed what has arrived and says how much it consumed, so the
//! blocking connection (`transport/blocking.rs`) drives it from its socket. On the async path redis-rs
//! parses; `ReplyScanner` holds its stream to the same bounds (`transport/streams.rs`). It keeps its place inside an
//! unfinished reply, so a large reply arriving in many reads is parsed once, not again per read.

use crate::errors::{Error, ErrorKind, Result};
use redis::{Value, VerbatimFormat};

/// Whether replies read before the connection broke hold an error reply: a server that refuses
/// the connection (maxclients) writes why and hangs up, and that refusal is the answer, not the
/// hang-up (both transports' handshakes ask this).
pub fn refused_then_closed(replies: &[Value]) -> bool {
    replies.iter().any(|v| matches!(v, Value::ServerError(_)))
}

/// The most bytes one reply may carry: twice the largest value Redis stores (512 MB).
pub const MAX_REPLY_BYTES: usize = 1 << 30;
/// The most values one reply may hold (`MGET`, `KEYS`, `SCAN` pages ...), nested ones counted.
pub const MAX_REPLY_ELEMENTS: usize = 1 << 23;
/// The deepest nesting of aggregates a reply may have (Redis's own replies use two or three).
pub const MAX_DEPTH: usize = 64;
/// The longest simple line (`+`, `-`, `:`, headers): error messages and numbers are short.
const MAX_LINE: usize = 64 * 1024;

/// An aggregate being filled: its kind, how many values it still expects, and those it holds.
struct Frame {
    kind: Aggregate,
    expected: usize,
    items: Vec<Value>,
}

#[derive(Clone, Copy)]
enum Aggregate {
    Array,
    Set,
    /// Key-value pairs: twice as many values as pairs are read.
    Map,
}

impl Frame {
    fn finish(self) -> Value {
        match self.kind {
            Aggregate::Array => Value::Array(self.items),
            Aggregate::Set => Value::Set(self.items),
            Aggregate::Map => {
                let mut items = self.items.into_iter();
                let mut pairs = Vec::with_capacity(items.len() / 2);
                while let (Some(k), Some(v)) = (items.next(), items.next()) {
                    pairs.push((k, v));
                }
                Value::Map(pairs)
            }
        }
    }
}

/// One reply's parse, resumable where the bytes ran out.
#[derive(Default)]
pub struct ReplyReader {
    stack: Vec<Frame>,
    elements: usize,
    bytes: usize,
}

/// What one step of the parse found.
enum Token {
    Value(Value),
    Open(Aggregate, usize),
}

fn protocol(why: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::Protocol,
        format!("the reply could not be read ({why}); connection dropped"),
    )
}

/// Whether a reply of this many values and bytes (so far) is within the bounds.
fn within_bounds(elements: usize, bytes: usize) -> Result<()> {
    if elements > MAX_REPLY_ELEMENTS {
        return Err(protocol(format!(
            "over {MAX_REPLY_ELEMENTS} values in one reply, the limit"
        )));
    }
    if bytes > MAX_REPLY_BYTES {
        return Err(protocol(format!(
            "over {MAX_REPLY_BYTES} bytes in one reply, the limit"
        )));
    }
    Ok(())
}

fn number(line: &[u8]) -> Result<i64> {
    std::str::from_utf8(line)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            protocol(format!(
                "{:?} is not a number",
                String::from_utf8_lossy(line)
            ))
        })
}

/// The line at the start of `buf` (without CRLF) and the bytes it spans; None when incomplete.
fn line(buf: &[u8]) -> Result<Option<(&[u8], usize)>> {
    let window = &buf[..buf.len().min(MAX_LINE)];
    match window.iter().position(|&b| b == b'\n') {
        Some(end) if end > 0 && buf[end - 1] == b'\r' => Ok(Some((&buf[..end - 1], end + 1))),
        Some(_) => Err(protocol("a line that does not end in CRLF")),
        None if buf.len() >= MAX_LINE => Err(protocol("a line without end")),
        None => Ok(None),
    }
}

impl ReplyReader {
    /// Parse from `buf`, the bytes not consumed yet. Returns how many bytes were consumed and,
    /// once a whole reply was read, the reply (the reader is then ready for the next).
    pub fn advance(&mut self, buf: &[u8]) -> Result<(usize, Option<Value>)> {
        let mut at = 0;
        loop {
            let Some((token, used)) = self.token(&buf[at..])? else {
                return Ok((at, None));
            };
            at += used;
            let mut value = match token {
                Token::Open(kind, expected) => {
                    self.count(expected, 0)?;
                    if self.stack.len() >= MAX_DEPTH {
                        return Err(protocol(format!("nested over {MAX_DEPTH} deep")));
                    }
                    self.stack.push(Frame {
                        kind,
                        expected,
                        // Capacity follows what arrives, not what was announced.
                        items: Vec::with_capacity(expected.min(1024)),
                    });
                    continue;
                }
                Token::Value(value) => value,
            };
            // Close every aggregate the value completes.
            loop {
                let Some(top) = self.stack.last_mut() else {
                    *self = Self::default();
                    return Ok((at, Some(value)));
                };
                top.items.push(value);
                if top.items.len() < top.expected {
                    break;
                }
                value = self.stack.pop().map(Frame::finish).unwrap_or_default();
            }
        }
    }

    /// Count an announcement against the reply's bounds.
    fn count(&mut self, elements: usize, bytes: usize) -> Result<()> {
        self.elements = self.elements.saturating_add(elements);
        self.bytes = self.bytes.saturating_add(bytes);
        within_bounds(self.elements, self.bytes)
    }

    /// The next value or aggregate header at the start of `buf`, with the bytes it spans.
    fn token(&mut self, buf: &[u8]) -> Result<Option<(Token, usize)>> {
        let Some((line, used)) = line(buf)? else {
            return Ok(None);
        };
        let Some((&kind, rest)) = line.split_first() else {
            return Err(protocol("an empty line"));
        };
        self.count(0, used)?;
        let value = match kind {
            b'+' if rest == b"OK" => Value::Okay,
            b'+' => Value::SimpleString(utf8(rest)?),
            b'-' => server_error(&buf[..used])?,
            b':' => Value::Int(number(rest)?),
            b'_' => Value::Nil,
            b'#' => match rest {
                b"t" => Value::Boolean(true),
                b"f" => Value::Boolean(false),
                _ => return Err(protocol("a boolean that is neither t nor f")),
            },
            b',' => Value::Double(
                utf8(rest)?
                    .parse()
                    .map_err(|_| protocol("a double that is not a number"))?,
            ),
            b'(' => Value::BigNumber(rest.to_vec()),
            b'$' | b'=' | b'!' => {
                let Ok(len) = usize::try_from(number(rest)?) else {
                    return Ok(Some((Token::Value(Value::Nil), used))); // $-1: nil
                };
                self.count(0, len)?;
                if buf.len() < used + len + 2 {
                    // Not all here yet: nothing is consumed, the header is read again later.
                    self.bytes -= used + len;
                    return Ok(None);
                }
                if &buf[used + len..used + len + 2] != b"\r\n" {
                    return Err(protocol("a string longer than announced"));
                }
                let data = &buf[used..used + len];
                let value = match kind {
                    b'$' => Value::BulkString(data.to_vec()),
                    b'=' => verbatim(data)?,
                    _ => server_error(&[b"-", data, b"\r\n"].concat())?,
                };
                return Ok(Some((Token::Value(value), used + len + 2)));
            }
            b'*' | b'~' | b'%' => {
                let Ok(n) = usize::try_from(number(rest)?) else {
                    return Ok(Some((Token::Value(Value::Nil), used))); // *-1: nil
                };
                let (aggregate, n) = match kind {
                    b'*' => (Aggregate::Array, Some(n)),
                    b'~' => (Aggregate::Set, Some(n)),
                    _ => (Aggregate::Map, n.checked_mul(2)),
                };
                let n = n.ok_or_else(|| protocol("a map too large"))?;
                if n == 0 {
                    let empty = Frame {
                        kind: aggregate,
                        expected: 0,
                        items: Vec::new(),
                    };
                    return Ok(Some((Token::Value(empty.finish()), used)));
                }
                return Ok(Some((Token::Open(aggregate, n), used)));
            }
            other => {
                return Err(protocol(format!(
                    "unexpected reply type {:?}",
                    char::from(other)
                )))
            }
        };
        Ok(Some((Token::Value(value), used)))
    }
}

/// The same bounds for bytes that another parser reads (redis-rs's, on the async path): it
/// follows the replies' structure as the bytes pass, without building values, so a reply over
/// the bounds is refused before that parser sees its header.
#[derive(Default)]
pub struct ReplyScanner {
    /// Values still expected by each open aggregate.
    stack: Vec<usize>,
    /// A header line split across reads.
    line: Vec<u8>,
    /// Bytes of a string's body (and its CRLF) still to pass.
    skip: usize,
    elements: usize,
    bytes: usize,
}

impl ReplyScanner {
    /// Follow `data`, the next bytes of the stream.
    pub fn scan(&mut self, mut data: &[u8]) -> Result<()> {
        while !data.is_empty() {
            if self.skip > 0 {
                let passed = self.skip.min(data.len());
                (self.skip, data) = (self.skip - passed, &data[passed..]);
                if self.skip == 0 {
                    self.value_done();
                }
                continue;
            }
            match data.iter().position(|&b| b == b'\n') {
                Some(end) => {
                    let mut line = std::mem::take(&mut self.line);
                    line.extend_from_slice(&data[..=end]);
                    data = &data[end + 1..];
                    self.header(&line)?;
                    line.clear();
                    self.line = line;
                }
                None => {
                    self.line.extend_from_slice(data);
                    if self.line.len() >= MAX_LINE {
                        return Err(protocol("a line without end"));
                    }
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    fn header(&mut self, line: &[u8]) -> Result<()> {
        let Some(body) = line.strip_suffix(b"\r\n") else {
            return Err(protocol("a line that does not end in CRLF"));
        };
        let Some((&kind, rest)) = body.split_first() else {
            return Err(protocol("an empty line"));
        };
        self.bytes = self.bytes.saturating_add(line.len());
        let count = |n: &[u8]| {
            usize::try_from(number(n)?)
                .ok()
                .map_or(Ok(None), |n| Ok(Some(n)))
        };
        match kind {
            b'+' | b'-' | b':' | b'_' | b'#' | b',' | b'(' => self.value_done(),
            b'$' | b'=' | b'!' => match count(rest)? {
                None => self.value_done(),
                Some(len) => {
                    self.bytes = self.bytes.saturating_add(len);
                    self.skip = len + 2;
                }
            },
            b'*' | b'~' | b'%' | b'>' => match count(rest)? {
                None | Some(0) => self.value_done(),
                Some(n) => {
                    let n = if kind == b'%' { n.saturating_mul(2) } else { n };
                    self.elements = self.elements.saturating_add(n);
                    if self.stack.len() >= MAX_DEPTH {
                        return Err(protocol(format!("nested over {MAX_DEPTH} deep")));
                    }
                    self.stack.push(n);
                }
            },
            other => {
                return Err(protocol(format!(
                    "unexpected reply type {:?}",
                    char::from(other)
                )))
            }
        }
        within_bounds(self.elements, self.bytes)
    }

    /// A value ended: close the aggregates it completes; at the end of a reply, start afresh.
    fn value_done(&mut self) {
        while let Some(expected) = self.stack.last_mut() {
            *expected -= 1;
            if *expected > 0 {
                return;
            }
            self.stack.pop();
        }
        (self.elements, self.bytes) = (0, 0);
    }
}

fn utf8(bytes: &[u8]) -> Result<String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| protocol("text that is not UTF-8"))
}

/// An error reply, as redis-rs's own type (its parser reads the one line).
fn server_error(line: &[u8]) -> Result<Value> {
    match redis::parse_redis_value(line) {
        Ok(value @ Value::ServerError(_)) => Ok(value),
        _ => Err(protocol("an error reply that is not UTF-8")),
    }
}

/// RESP3's verbatim string: `txt:` or `mkd:`, then the text.
fn verbatim(data: &[u8]) -> Result<Value> {
    if data.len() < 4 || data[3] != b':' {
        return Err(protocol("a verbatim string without its format"));
    }
    let format = match &data[..3] {
        b"txt" => VerbatimFormat::Text,
        b"mkd" => VerbatimFormat::Markdown,
        other => VerbatimFormat::Unknown(utf8(other)?),
    };
    Ok(Value::VerbatimString {
        format,
        text: utf8(&data[4..])?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Feed `bytes` in pieces of `step` bytes, as reads would deliver them.
    fn read_in_steps(bytes: &[u8], step: usize) -> Result<Vec<Value>> {
        let (mut reader, mut buf, mut values) = (ReplyReader::default(), Vec::new(), Vec::new());
        for chunk in bytes.chunks(step.max(1)) {
            buf.extend_from_slice(chunk);
            loop {
                let (used, value) = reader.advance(&buf)?;
                buf.drain(..used);
                match value {
                    Some(value) => values.push(value),
                    None => break,
                }
            }
        }
        assert!(buf.is_empty(), "bytes left over");
        Ok(values)
    }

    #[test]
    fn reads_resp2_and_resp3() {
        let wire = b"+OK\r\n+PONG\r\n:-12\r\n$3\r\nabc\r\n$-1\r\n*-1\r\n*0\r\n\
            *2\r\n$1\r\na\r\n*1\r\n:1\r\n_\r\n#t\r\n,1.5\r\n%1\r\n+k\r\n:2\r\n~1\r\n:3\r\n\
            =8\r\ntxt:abcd\r\n(123\r\n-WRONGTYPE bad\r\n!5\r\nERR x\r\n";
        let expected = vec![
            Value::Okay,
            Value::SimpleString("PONG".into()),
            Value::Int(-12),
            Value::BulkString(b"abc".to_vec()),
            Value::Nil,
            Value::Nil,
            Value::Array(vec![]),
            Value::Array(vec![
                Value::BulkString(b"a".to_vec()),
                Value::Array(vec![Value::Int(1)]),
            ]),
            Value::Nil,
            Value::Boolean(true),
            Value::Double(1.5),
            Value::Map(vec![(Value::SimpleString("k".into()), Value::Int(2))]),
            Value::Set(vec![Value::Int(3)]),
            Value::VerbatimString {
                format: VerbatimFormat::Text,
                text: "abcd".into(),
            },
            Value::BigNumber(b"123".to_vec()),
        ];
        for step in [1, 2, 3, 7, 1000] {
            let values = read_in_steps(wire, step).unwrap();
            assert_eq!(values[..expected.len()], expected[..], "step {step}");
            let errors: Vec<_> = values[expected.len()..]
                .iter()
                .map(|v| match v {
                    Value::ServerError(e) => crate::errors::Error::from_server(e).message,
                    other => panic!("{other:?}"),
                })
                .collect();
            assert_eq!(errors, ["WRONGTYPE bad", "ERR x"]);
        }
    }

    #[test]
    fn announcements_over_the_limits_are_refused_before_reading_on() {
        let refused = |wire: &[u8]| read_in_steps(wire, 64).unwrap_err();
        // 2^40 nils announced: refused at the header, not after gigabytes of nils.
        let err = refused(b"*1099511627776\r\n_\r\n_\r\n");
        assert_eq!(err.kind, ErrorKind::Protocol);
        assert!(
            err.message.contains("values in one reply"),
            "{}",
            err.message
        );
        let err = refused(b"$2147483648\r\nabc");
        assert!(
            err.message.contains("bytes in one reply"),
            "{}",
            err.message
        );
        // Nested counts add up.
        let mut nested = b"*2\r\n".to_vec();
        nested.extend_from_slice(format!("*{}\r\n", MAX_REPLY_ELEMENTS).as_bytes());
        assert!(refused(&nested).message.contains("values in one reply"));
        assert!(refused(&b"*1\r\n".repeat(MAX_DEPTH + 1))
            .message
            .contains("nested"));
        assert!(refused(&vec![b'+'; MAX_LINE + 10])
            .message
            .contains("without end"));
        assert!(refused(b"+OK\n").message.contains("CRLF"));
        assert!(refused(b"$3\r\nabcdef\r\n")
            .message
            .contains("longer than announced"));
        assert!(refused(b"-ERR \xff\r\n").message.contains("not UTF-8"));
        assert!(refused(b">1\r\n:1\r\n")
            .message
            .contains("unexpected reply type"));
    }

    #[test]
    fn many_small_values_within_the_limits_are_read() {
        let n = 100_000;
        let mut wire = format!("*{n}\r\n").into_bytes();
        wire.extend_from_slice(&b"$1\r\nx\r\n".repeat(n));
        let values = read_in_steps(&wire, 8192).unwrap();
        assert!(matches!(&values[..], [Value::Array(items)] if items.len() == n));
    }

    #[test]
    fn the_scanner_follows_replies_and_enforces_the_same_bounds() {
        let mut wire = b"+OK\r\n*2\r\n$3\r\nabc\r\n%1\r\n:1\r\n*0\r\n$-1\r\n".to_vec();
        wire.extend_from_slice(format!("*{}\r\n", MAX_REPLY_ELEMENTS / 2).as_bytes());
        wire.extend_from_slice(&b"_\r\n".repeat(MAX_REPLY_ELEMENTS / 2));
        // Replies under the bounds pass, however the bytes are split, and leave it at a boundary.
        for step in [1, 5, 4096] {
            let mut scanner = ReplyScanner::default();
            for chunk in wire.chunks(step) {
                scanner.scan(chunk).unwrap();
            }
            assert!(scanner.stack.is_empty() && scanner.skip == 0 && scanner.line.is_empty());
        }
        // Two replies of half the bound each are not one reply over it.
        let mut scanner = ReplyScanner::default();
        scanner.scan(&wire).unwrap();
        scanner.scan(&wire).unwrap();
        let refused = |wire: &[u8]| ReplyScanner::default().scan(wire).unwrap_err().message;
        assert!(refused(b"*1099511627776\r\n").contains("values in one reply"));
        assert!(refused(b"$2147483648\r\n").contains("bytes in one reply"));
        assert!(refused(&b"*1\r\n".repeat(MAX_DEPTH + 1)).contains("nested"));
        assert!(refused(b"?x\r\n").contains("unexpected reply type"));
    }

    proptest! {
        /// Whatever the bytes and however they are split, the reader answers or refuses.
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200), step in 1usize..20) {
            let _ = read_in_steps_lenient(&bytes, step);
            let mut scanner = ReplyScanner::default();
            let _ = bytes.chunks(step).try_for_each(|chunk| scanner.scan(chunk));
        }
    }

    fn read_in_steps_lenient(bytes: &[u8], step: usize) -> Result<()> {
        let (mut reader, mut buf) = (ReplyReader::default(), Vec::new());
        for chunk in bytes.chunks(step) {
            buf.extend_from_slice(chunk);
            loop {
                let (used, value) = reader.advance(&buf)?;
                buf.drain(..used);
                if value.is_none() {
                    break;
                }
            }
        }
        Ok(())
    }
}
