//! The stored-value contract shared with django-redis: integers (not bool, not Enum) are stored
//! as plain decimal strings so that INCR works on them; everything else is serialized, then
//! compressed. Reading tries the integer form first, then decompresses (a value that does not
//! decompress is taken as stored), then deserializes.

use crate::errors::py::{CompressorError, SerializerError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyBytes, PyInt};

pub enum Serializer {
    /// `pickle.dumps(value, protocol)` / `pickle.loads`, called directly.
    Pickle { protocol: i32 },
    /// Any object with `dumps(value) -> bytes` and `loads(bytes) -> value`.
    Python(Py<PyAny>),
}

pub enum Compressor {
    Identity,
    /// Any object with `compress(bytes) -> bytes` and `decompress(bytes) -> bytes`.
    Python(Py<PyAny>),
}

pub struct Codec {
    pub serializer: Serializer,
    pub compressor: Compressor,
}

/// Bytes ready to send: borrowed from a Python bytes object or owned.
pub enum Encoded<'py> {
    Python(Bound<'py, PyBytes>),
    Owned(Vec<u8>),
}

impl Encoded<'_> {
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Encoded::Python(b) => b.as_bytes(),
            Encoded::Owned(v) => v,
        }
    }
}

static PICKLE_DUMPS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static PICKLE_LOADS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static ENUM_TYPE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

fn cached<'py>(
    py: Python<'py>,
    cell: &'py PyOnceLock<Py<PyAny>>,
    module: &str,
    name: &str,
) -> PyResult<&'py Bound<'py, PyAny>> {
    cell.get_or_try_init(py, || {
        Ok::<_, PyErr>(py.import(module)?.getattr(name)?.unbind())
    })
    .map(|obj| obj.bind(py))
}

/// django-redis stores `int` values as integers unless they are bools or Enum members.
fn stored_as_integer(value: &Bound<'_, PyAny>) -> PyResult<bool> {
    if value.is_exact_instance_of::<PyInt>() {
        return Ok(true);
    }
    if !value.is_instance_of::<PyInt>() || value.is_instance_of::<PyBool>() {
        return Ok(false);
    }
    let enum_type = cached(value.py(), &ENUM_TYPE, "enum", "Enum")?;
    Ok(!value.is_instance(enum_type)?)
}

/// Parse what Python's `int(bytes)` accepts in the common case: optional sign and ASCII digits.
/// Returns None for anything else (the caller then asks Python when it might still be an int).
fn parse_plain_int(data: &[u8]) -> Option<i64> {
    let digits = data
        .strip_prefix(b"-")
        .or_else(|| data.strip_prefix(b"+"))
        .unwrap_or(data);
    if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(data).ok()?.parse().ok()
}

/// Bytes that Python's `int()` might still accept: big integers, whitespace, underscores.
fn maybe_python_int(data: &[u8]) -> bool {
    !data.is_empty()
        && data.len() <= 4300 // CPython's default limit on int string length
        && data.iter().any(u8::is_ascii_digit)
        && data
            .iter()
            .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'_' | b' ' | b'\t' | b'\n' | b'\r' | b'\x0b' | b'\x0c'))
}

fn describe_key(key: &[u8]) -> String {
    let shown = String::from_utf8_lossy(&key[..key.len().min(200)]).into_owned();
    format!("{shown:?}")
}

impl Codec {
    pub fn serializer_name(&self, py: Python<'_>) -> String {
        match &self.serializer {
            Serializer::Pickle { .. } => "PickleSerializer".into(),
            Serializer::Python(obj) => obj
                .bind(py)
                .get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_else(|_| "serializer".into()),
        }
    }

    /// Encode a cache value, applying the integer rule.
    pub fn encode<'py>(&self, value: &Bound<'py, PyAny>) -> PyResult<Encoded<'py>> {
        if stored_as_integer(value)? {
            if let Ok(n) = value.extract::<i64>() {
                let mut digits = itoa::Buffer::new();
                return Ok(Encoded::Owned(digits.format(n).as_bytes().to_vec()));
            }
            return Ok(Encoded::Owned(value.str()?.to_str()?.as_bytes().to_vec()));
        }
        self.encode_serialized(value)
    }

    /// Encode without the integer rule (sorted-set members, as django-redis does).
    pub fn encode_serialized<'py>(&self, value: &Bound<'py, PyAny>) -> PyResult<Encoded<'py>> {
        let py = value.py();
        // A value that cannot be serialized raises the serializer's own exception (pickle's
        // PicklingError, ...), as Django's and django-redis's backends do.
        let serialized = match &self.serializer {
            Serializer::Pickle { protocol } => {
                cached(py, &PICKLE_DUMPS, "pickle", "dumps")?.call1((value, *protocol))
            }
            Serializer::Python(obj) => obj.bind(py).call_method1("dumps", (value,)),
        }?;
        let serialized = serialized.cast_into::<PyBytes>().map_err(|_| {
            SerializerError::new_err(format!(
                "{}.dumps did not return bytes",
                self.serializer_name(py)
            ))
        })?;
        match &self.compressor {
            Compressor::Identity => Ok(Encoded::Python(serialized)),
            Compressor::Python(obj) => {
                let compressed = obj
                    .bind(py)
                    .call_method1("compress", (serialized,))
                    .map_err(|e| {
                        let err =
                            CompressorError::new_err(format!("could not compress a value: {e}"));
                        err.set_cause(py, Some(e));
                        err
                    })?;
                Ok(Encoded::Python(compressed.cast_into::<PyBytes>().map_err(
                    |_| CompressorError::new_err("compressor.compress did not return bytes"),
                )?))
            }
        }
    }

    /// Decode a stored value read from `key` (the key only names the value in error messages).
    pub fn decode(&self, py: Python<'_>, data: &[u8], key: &[u8]) -> PyResult<Py<PyAny>> {
        if let Some(n) = parse_plain_int(data) {
            return Ok(n.into_pyobject(py)?.into_any().unbind());
        }
        if maybe_python_int(data) {
            if let Ok(n) = py.get_type::<PyInt>().call1((PyBytes::new(py, data),)) {
                return Ok(n.unbind());
            }
        }
        let stored = PyBytes::new(py, data);
        let payload = match &self.compressor {
            Compressor::Identity => stored,
            // A value that does not decompress is read as stored: values written before
            // compression was enabled stay readable.
            Compressor::Python(obj) => match obj.bind(py).call_method1("decompress", (&stored,)) {
                Ok(out) => out.cast_into::<PyBytes>().unwrap_or(stored),
                Err(_) => stored,
            },
        };
        let loaded = match &self.serializer {
            Serializer::Pickle { .. } => {
                cached(py, &PICKLE_LOADS, "pickle", "loads")?.call1((payload,))
            }
            Serializer::Python(obj) => obj.bind(py).call_method1("loads", (payload,)),
        };
        loaded.map(Bound::unbind).map_err(|e| {
            let err = SerializerError::new_err(format!(
                "{} could not decode the value of key {}: {e}",
                self.serializer_name(py),
                describe_key(key)
            ));
            err.set_cause(py, Some(e));
            err
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_ints() {
        assert_eq!(parse_plain_int(b"12"), Some(12));
        assert_eq!(parse_plain_int(b"-7"), Some(-7));
        assert_eq!(parse_plain_int(b"+7"), Some(7));
        assert_eq!(parse_plain_int(b""), None);
        assert_eq!(parse_plain_int(b"-"), None);
        assert_eq!(parse_plain_int(b"1.5"), None);
        assert_eq!(parse_plain_int(b"\x80\x04K\x01."), None);
        assert_eq!(parse_plain_int(b"99999999999999999999"), None);
    }

    #[test]
    fn python_int_candidates() {
        assert!(maybe_python_int(b"99999999999999999999"));
        assert!(maybe_python_int(b" 1_000 "));
        assert!(!maybe_python_int(b"abc"));
        assert!(!maybe_python_int(b"\x80\x05\x95"));
        assert!(!maybe_python_int(b"--"));
    }
}
