//! JSON with the exact output of `json.dumps(value, cls=DjangoJSONEncoder)` (django-redis's
//! JSONSerializer) and the results of `json.loads`, without going through Python's json module
//! for the common types. Types JSON has no form for (datetime, Decimal, UUID, lazy strings, ...)
//! go through `DjangoJSONEncoder.default`, so their text is Django's to the letter.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use super::interned::KeyCache;
use super::serialize::python_function;

/// Python's json recurses until its recursion limit: deeper values are handed to it
/// (`serialize::hand_off`), which decides as django-redis's serializer would.
const MAX_DEPTH: usize = 512;

static DJANGO_DEFAULT: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static ASCII_STRING: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

fn django_default<'py>(py: Python<'py>) -> PyResult<&'py Bound<'py, PyAny>> {
    DJANGO_DEFAULT
        .get_or_try_init(py, || {
            let encoder = py
                .import("django.core.serializers.json")?
                .getattr("DjangoJSONEncoder")?;
            Ok::<_, PyErr>(encoder.call0()?.getattr("default")?.unbind())
        })
        .map(|f| f.bind(py))
}

/// A lone surrogate escape has no UTF-8 form: Python's json builds the string.
const LONE_SURROGATE: &str = "a lone surrogate escape";

// ---- encoding ---------------------------------------------------------------------------------

pub fn dumps(value: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    let mut out = Vec::with_capacity(64);
    encode(value, &mut out, 0)?;
    Ok(out)
}

fn encode(value: &Bound<'_, PyAny>, out: &mut Vec<u8>, depth: usize) -> PyResult<()> {
    if depth > MAX_DEPTH {
        return Err(super::serialize::hand_off(
            "nested deeper than the native encoder goes",
        ));
    }
    if let Ok(s) = value.cast::<PyString>() {
        return encode_str(s, out);
    }
    if value.is_none() {
        out.extend_from_slice(b"null");
    } else if let Ok(b) = value.cast::<PyBool>() {
        out.extend_from_slice(if b.is_true() { b"true" } else { b"false" });
    } else if value.is_instance_of::<PyInt>() {
        encode_int(value, out)?;
    } else if let Ok(f) = value.cast::<PyFloat>() {
        encode_float(f, out)?;
    } else if let Ok(list) = value.cast::<PyList>() {
        encode_array(list.iter(), out, depth)?;
    } else if let Ok(tuple) = value.cast::<PyTuple>() {
        encode_array(tuple.iter(), out, depth)?;
    } else if let Ok(dict) = value.cast::<PyDict>() {
        out.push(b'{');
        for (i, (key, item)) in dict.iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(b", ");
            }
            encode_key(&key, out)?;
            out.extend_from_slice(b": ");
            encode(&item, out, depth + 1)?;
        }
        out.push(b'}');
    } else {
        // DjangoJSONEncoder.default: datetime, date, time, timedelta, Decimal, UUID, Promise;
        // anything else raises its TypeError ("Object of type X is not JSON serializable").
        let converted = django_default(value.py())?.call1((value,))?;
        encode(&converted, out, depth + 1)?;
    }
    Ok(())
}

fn encode_array<'py>(
    items: impl Iterator<Item = Bound<'py, PyAny>>,
    out: &mut Vec<u8>,
    depth: usize,
) -> PyResult<()> {
    out.push(b'[');
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        encode(&item, out, depth + 1)?;
    }
    out.push(b']');
    Ok(())
}

fn encode_int(value: &Bound<'_, PyAny>, out: &mut Vec<u8>) -> PyResult<()> {
    match value.extract::<i64>() {
        Ok(n) => out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes()),
        // int.__repr__, not repr(): an IntEnum member is written as its number.
        Err(_) => {
            let text = value
                .py()
                .get_type::<PyInt>()
                .call_method1("__repr__", (value,))?;
            out.extend_from_slice(text.cast::<PyString>()?.to_str()?.as_bytes());
        }
    }
    Ok(())
}

fn encode_float(value: &Bound<'_, PyFloat>, out: &mut Vec<u8>) -> PyResult<()> {
    let f = value.value();
    if f.is_nan() {
        out.extend_from_slice(b"NaN");
    } else if f.is_infinite() {
        out.extend_from_slice(if f > 0.0 { b"Infinity" } else { b"-Infinity" });
    } else {
        // Python's shortest round-trip repr, so the text matches json.dumps exactly.
        let text = PyFloat::new(value.py(), f).repr()?;
        out.extend_from_slice(text.to_str()?.as_bytes());
    }
    Ok(())
}

fn encode_key(key: &Bound<'_, PyAny>, out: &mut Vec<u8>) -> PyResult<()> {
    if let Ok(s) = key.cast::<PyString>() {
        return encode_str(s, out);
    }
    // json.dumps turns these keys into strings; anything else is a TypeError.
    let mut text = Vec::new();
    if key.is_none() || key.is_instance_of::<PyBool>() || key.is_instance_of::<PyInt>() {
        encode(key, &mut text, 0)?;
    } else if let Ok(f) = key.cast::<PyFloat>() {
        encode_float(f, &mut text)?;
    } else {
        return Err(PyTypeError::new_err(format!(
            "keys must be str, int, float, bool or None, not {}",
            key.get_type().name()?
        )));
    }
    out.push(b'"');
    out.extend_from_slice(&text);
    out.push(b'"');
    Ok(())
}

/// ensure_ascii=True: everything outside ' '..='~' is escaped, non-ASCII as \uXXXX (UTF-16).
fn encode_str(s: &Bound<'_, PyString>, out: &mut Vec<u8>) -> PyResult<()> {
    let Ok(text) = s.to_str() else {
        // Lone surrogates have no UTF-8 form: let Python's own escaper write them.
        let escaped = python_function(
            s.py(),
            &ASCII_STRING,
            "json.encoder",
            "encode_basestring_ascii",
        )?
        .call1((s,))?;
        out.extend_from_slice(escaped.cast::<PyString>()?.to_str()?.as_bytes());
        return Ok(());
    };
    out.push(b'"');
    let bytes = text.as_bytes();
    let mut run = 0; // start of the pending run of bytes that need no escape
    for (i, c) in text.char_indices() {
        let escape: &[u8] = match c {
            '"' => b"\\\"",
            '\\' => b"\\\\",
            '\n' => b"\\n",
            '\r' => b"\\r",
            '\t' => b"\\t",
            '\u{8}' => b"\\b",
            '\u{c}' => b"\\f",
            ' '..='~' => continue,
            _ => b"",
        };
        out.extend_from_slice(&bytes[run..i]);
        run = i + c.len_utf8();
        if escape.is_empty() {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u");
                out.extend(
                    (0..4)
                        .rev()
                        .map(|nibble| HEX[usize::from(*unit >> (4 * nibble)) & 0xf]),
                );
            }
        } else {
            out.extend_from_slice(escape);
        }
    }
    out.extend_from_slice(&bytes[run..]);
    out.push(b'"');
    Ok(())
}

// ---- decoding ---------------------------------------------------------------------------------

pub fn loads(py: Python<'_>, data: &[u8]) -> PyResult<Py<PyAny>> {
    let mut parser = Parser {
        py,
        data,
        pos: 0,
        keys: KeyCache::new(),
    };
    match parser.document() {
        Ok(value) => Ok(value),
        // A string with a lone surrogate escape has no UTF-8 form, and nesting deeper than
        // the native parser goes: Python's json decides.
        Err(ParseError::HandOff(why)) => Err(super::serialize::hand_off(why)),
        Err(ParseError::Python(e)) => Err(e),
        Err(ParseError::Syntax(msg, pos)) => {
            Err(PyValueError::new_err(format!("{msg} at byte {pos}")))
        }
    }
}

enum ParseError {
    Syntax(&'static str, usize),
    HandOff(&'static str),
    Python(PyErr),
}

impl From<PyErr> for ParseError {
    fn from(e: PyErr) -> Self {
        ParseError::Python(e)
    }
}

type Parsed<T> = Result<T, ParseError>;

struct Parser<'py, 'a> {
    py: Python<'py>,
    data: &'a [u8],
    pos: usize,
    keys: KeyCache<'py, 'a>,
}

impl<'py, 'a> Parser<'py, 'a> {
    fn document(&mut self) -> Parsed<Py<PyAny>> {
        if std::str::from_utf8(self.data).is_err() {
            return Err(ParseError::Syntax("invalid UTF-8", 0));
        }
        let value = self.value(0)?;
        self.skip_ws();
        if self.pos != self.data.len() {
            return Err(ParseError::Syntax("extra data", self.pos));
        }
        Ok(value.unbind())
    }

    fn fail<T>(&self, msg: &'static str) -> Parsed<T> {
        Err(ParseError::Syntax(msg, self.pos))
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.data.get(self.pos) {
            self.pos += 1;
        }
    }

    fn literal(&mut self, word: &[u8]) -> bool {
        if self.data[self.pos..].starts_with(word) {
            self.pos += word.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> Parsed<Bound<'py, PyAny>> {
        if depth > MAX_DEPTH {
            return Err(ParseError::HandOff(
                "nested deeper than the native parser goes",
            ));
        }
        self.skip_ws();
        let py = self.py;
        let Some(&first) = self.data.get(self.pos) else {
            return self.fail("expecting value");
        };
        Ok(match first {
            b'{' => self.object(depth)?,
            b'[' => self.array(depth)?,
            b'"' => self.string()?.into_any(),
            b't' if self.literal(b"true") => PyBool::new(py, true).to_owned().into_any(),
            b'f' if self.literal(b"false") => PyBool::new(py, false).to_owned().into_any(),
            b'n' if self.literal(b"null") => py.None().into_bound(py),
            b'N' if self.literal(b"NaN") => PyFloat::new(py, f64::NAN).into_any(),
            b'I' if self.literal(b"Infinity") => PyFloat::new(py, f64::INFINITY).into_any(),
            b'-' if self.literal(b"-Infinity") => PyFloat::new(py, f64::NEG_INFINITY).into_any(),
            b'-' | b'0'..=b'9' => self.number()?,
            _ => return self.fail("expecting value"),
        })
    }

    fn object(&mut self, depth: usize) -> Parsed<Bound<'py, PyAny>> {
        let dict = PyDict::new(self.py);
        self.pos += 1;
        self.skip_ws();
        if self.data.get(self.pos) == Some(&b'}') {
            self.pos += 1;
            return Ok(dict.into_any());
        }
        loop {
            self.skip_ws();
            if self.data.get(self.pos) != Some(&b'"') {
                return self.fail("expecting property name enclosed in double quotes");
            }
            let key = self.key()?;
            self.skip_ws();
            if self.data.get(self.pos) != Some(&b':') {
                return self.fail("expecting ':' delimiter");
            }
            self.pos += 1;
            let value = self.value(depth + 1)?;
            dict.set_item(key, value)?;
            self.skip_ws();
            match self.data.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(dict.into_any());
                }
                _ => return self.fail("expecting ',' delimiter"),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Parsed<Bound<'py, PyAny>> {
        let list = PyList::empty(self.py);
        self.pos += 1;
        self.skip_ws();
        if self.data.get(self.pos) == Some(&b']') {
            self.pos += 1;
            return Ok(list.into_any());
        }
        loop {
            list.append(self.value(depth + 1)?)?;
            self.skip_ws();
            match self.data.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(list.into_any());
                }
                _ => return self.fail("expecting ',' delimiter"),
            }
        }
    }

    fn hex4(&mut self) -> Parsed<u32> {
        let digits = self
            .data
            .get(self.pos..self.pos + 4)
            .ok_or(ParseError::Syntax("invalid \\uXXXX escape", self.pos))?;
        let text = std::str::from_utf8(digits)
            .map_err(|_| ParseError::Syntax("invalid \\uXXXX escape", self.pos))?;
        let unit = u32::from_str_radix(text, 16)
            .map_err(|_| ParseError::Syntax("invalid \\uXXXX escape", self.pos))?;
        self.pos += 4;
        Ok(unit)
    }

    /// An object key: plain (escape-free) short keys come from the key cache.
    fn key(&mut self) -> Parsed<Bound<'py, PyString>> {
        let start = self.pos + 1;
        let end = self.data[start..]
            .iter()
            .position(|b| matches!(b, b'"' | b'\\' | 0..=0x1f))
            .map(|n| start + n);
        match end {
            Some(end) if self.data[end] == b'"' => {
                let raw = &self.data[start..end];
                let text = std::str::from_utf8(raw)
                    .map_err(|_| ParseError::Syntax("invalid UTF-8", start))?;
                self.pos = end + 1;
                Ok(self.keys.get(self.py, raw, text))
            }
            _ => self.string(),
        }
    }

    fn string(&mut self) -> Parsed<Bound<'py, PyString>> {
        self.pos += 1; // opening quote
        let start = self.pos;
        // Fast path: no escapes.
        while let Some(&b) = self.data.get(self.pos) {
            match b {
                b'"' => {
                    let text = std::str::from_utf8(&self.data[start..self.pos])
                        .map_err(|_| ParseError::Syntax("invalid UTF-8", start))?;
                    self.pos += 1;
                    return Ok(PyString::new(self.py, text));
                }
                b'\\' => break,
                0..=0x1f => return self.fail("invalid control character in string"),
                _ => self.pos += 1,
            }
        }
        let mut text = String::from_utf8(self.data[start..self.pos].to_vec())
            .map_err(|_| ParseError::Syntax("invalid UTF-8", start))?;
        loop {
            let Some(&b) = self.data.get(self.pos) else {
                return self.fail("unterminated string");
            };
            self.pos += 1;
            match b {
                b'"' => return Ok(PyString::new(self.py, &text)),
                b'\\' => {
                    let Some(&esc) = self.data.get(self.pos) else {
                        return self.fail("unterminated string");
                    };
                    self.pos += 1;
                    match esc {
                        b'"' => text.push('"'),
                        b'\\' => text.push('\\'),
                        b'/' => text.push('/'),
                        b'b' => text.push('\u{8}'),
                        b'f' => text.push('\u{c}'),
                        b'n' => text.push('\n'),
                        b'r' => text.push('\r'),
                        b't' => text.push('\t'),
                        b'u' => {
                            let unit = self.hex4()?;
                            let code = if (0xd800..0xdc00).contains(&unit)
                                && self.data[self.pos..].starts_with(b"\\u")
                            {
                                self.pos += 2;
                                let low = self.hex4()?;
                                if !(0xdc00..0xe000).contains(&low) {
                                    return Err(ParseError::HandOff(LONE_SURROGATE));
                                }
                                0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00)
                            } else {
                                unit
                            };
                            text.push(
                                char::from_u32(code).ok_or(ParseError::HandOff(LONE_SURROGATE))?,
                            );
                        }
                        _ => return self.fail("invalid \\escape"),
                    }
                }
                0..=0x1f => return self.fail("invalid control character in string"),
                _ => {
                    // Copy one UTF-8 sequence (already validated as a whole).
                    let len = match b {
                        0xf0.. => 4,
                        0xe0.. => 3,
                        0xc0.. => 2,
                        _ => 1,
                    };
                    let end = (self.pos - 1 + len).min(self.data.len());
                    text.push_str(
                        std::str::from_utf8(&self.data[self.pos - 1..end])
                            .map_err(|_| ParseError::Syntax("invalid UTF-8", self.pos))?,
                    );
                    self.pos = end;
                }
            }
        }
    }

    fn number(&mut self) -> Parsed<Bound<'py, PyAny>> {
        let start = self.pos;
        let digits = |p: &mut Self| {
            let from = p.pos;
            while p.data.get(p.pos).is_some_and(u8::is_ascii_digit) {
                p.pos += 1;
            }
            p.pos - from
        };
        if self.data[self.pos] == b'-' {
            self.pos += 1;
        }
        let int_digits = digits(self);
        if int_digits == 0 {
            return self.fail("expecting value");
        }
        if int_digits > 1 && self.data[self.pos - int_digits] == b'0' {
            // json.loads reads "01" as 0 followed by extra data.
            return self.fail("extra data");
        }
        let mut is_float = false;
        if self.data.get(self.pos) == Some(&b'.')
            && self.data.get(self.pos + 1).is_some_and(u8::is_ascii_digit)
        {
            self.pos += 1;
            digits(self);
            is_float = true;
        }
        if let Some(b'e' | b'E') = self.data.get(self.pos) {
            let mark = self.pos;
            self.pos += 1;
            if let Some(b'+' | b'-') = self.data.get(self.pos) {
                self.pos += 1;
            }
            if digits(self) == 0 {
                self.pos = mark; // not an exponent: json.loads stops before it
            } else {
                is_float = true;
            }
        }
        let text = std::str::from_utf8(&self.data[start..self.pos]).expect("ASCII digits");
        if is_float {
            let f: f64 = text
                .parse()
                .map_err(|_| ParseError::Syntax("invalid number", start))?;
            return Ok(PyFloat::new(self.py, f).into_any());
        }
        if let Ok(n) = text.parse::<i64>() {
            return Ok(PyInt::new(self.py, n).into_any());
        }
        Ok(self.py.get_type::<PyInt>().call1((text,))?)
    }
}
