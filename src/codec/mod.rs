//! The stored-value contract shared with django-redis: integers (not bool, not Enum) are stored
//! as plain decimal strings so that INCR works on them; everything else is serialized, then
//! compressed. Reading tries the integer form first, then decompresses (a value that does not
//! decompress is taken as stored), then deserializes.

pub mod compress;
mod interned;
pub mod json;
pub mod msgpack;
pub mod serialize;
pub mod signing;
pub mod standalone;
mod unpickle;

use crate::errors::check_bulk_len;
use crate::errors::py::{CompressorError, SerializerError, UnsafePickleError};
use compress::{DecompressError, Kind, NativeCompressor};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyBytes, PyInt, PyTuple};
use serialize::Serializer;
use signing::{Opened, Signing};
use std::borrow::Cow;

/// Values at least this large are (de)compressed with the GIL released.
const DETACH_AT: usize = 32 * 1024;

pub enum Compressor {
    Identity,
    Native(NativeCompressor),
    /// A user's class: any object with `compress(bytes)` and `decompress(bytes)`.
    Python(Py<PyAny>),
}

impl Compressor {
    /// `("identity",)`, `(name, level, min_length, max_decompressed)`, or a compressor object.
    pub fn from_spec(spec: &Bound<'_, PyAny>) -> PyResult<Self> {
        let Ok(tuple) = spec.cast::<PyTuple>() else {
            return Ok(Compressor::Python(spec.clone().unbind()));
        };
        let name: String = tuple.get_item(0)?.extract()?;
        if name == "identity" {
            return Ok(Compressor::Identity);
        }
        let kind = Kind::parse(&name)
            .ok_or_else(|| PyValueError::new_err(format!("unknown compressor {name:?}")))?;
        let compressor = NativeCompressor {
            kind,
            level: tuple.get_item(1)?.extract()?,
            min_length: tuple.get_item(2)?.extract()?,
            max_decompressed: tuple.get_item(3)?.extract()?,
        };
        // A level the format does not have is the setting's fault: SettingError, naming it.
        compressor.validate().map_err(|why| {
            crate::errors::Error::config("COMPRESSOR_LEVEL", format!("COMPRESSOR_LEVEL: {why}"))
        })?;
        Ok(Compressor::Native(compressor))
    }

    fn name(&self, py: Python<'_>) -> String {
        match self {
            Compressor::Identity => "identity".into(),
            Compressor::Native(c) => c.kind.name().into(),
            Compressor::Python(obj) => obj
                .bind(py)
                .get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_else(|_| "compressor".into()),
        }
    }
}

pub struct Codec {
    pub serializer: Serializer,
    pub compressor: Compressor,
    /// SIGNED_VALUES: cache values are signed for their key, and checked before decoding.
    pub signing: Option<Signing>,
}

/// Bytes ready to send: borrowed from a Python bytes object or owned.
pub enum Encoded<'py> {
    Python(Bound<'py, PyBytes>),
    Owned(Vec<u8>),
}

impl AsRef<[u8]> for Encoded<'_> {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl Encoded<'_> {
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Encoded::Python(b) => b.as_bytes(),
            Encoded::Owned(v) => v,
        }
    }
}

/// Run `work` on `len` bytes, releasing the GIL when it is large enough to matter.
fn maybe_detached<T: Send>(py: Python<'_>, len: usize, work: impl FnOnce() -> T + Send) -> T {
    if len >= DETACH_AT {
        py.detach(work)
    } else {
        work()
    }
}

static ENUM_TYPE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// django-redis stores `int` values as integers unless they are bools or Enum members.
fn stored_as_integer(value: &Bound<'_, PyAny>) -> PyResult<bool> {
    if value.is_exact_instance_of::<PyInt>() {
        return Ok(true);
    }
    if !value.is_instance_of::<PyInt>() || value.is_instance_of::<PyBool>() {
        return Ok(false);
    }
    let py = value.py();
    let enum_type = ENUM_TYPE.get_or_try_init(py, || {
        Ok::<_, PyErr>(py.import("enum")?.getattr("Enum")?.unbind())
    })?;
    Ok(!value.is_instance(enum_type.bind(py))?)
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
        && data.iter().all(|b| {
            b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'_' | b' ' | b'\t' | b'\n' | b'\r' | b'\x0b' | b'\x0c')
        })
}

/// How an integer is stored (plain digits, so that INCR works on it); None for other values.
fn integer_digits(value: &Bound<'_, PyAny>) -> PyResult<Option<Vec<u8>>> {
    if !stored_as_integer(value)? {
        return Ok(None);
    }
    if let Ok(n) = value.extract::<i64>() {
        return Ok(Some(itoa::Buffer::new().format(n).as_bytes().to_vec()));
    }
    Ok(Some(value.str()?.to_str()?.as_bytes().to_vec()))
}

/// The integer stored as digits (as `encode` writes integers), if `data` is one.
fn stored_integer(py: Python<'_>, data: &[u8]) -> PyResult<Option<Py<PyAny>>> {
    if let Some(n) = parse_plain_int(data) {
        return Ok(Some(n.into_pyobject(py)?.into_any().unbind()));
    }
    if maybe_python_int(data) {
        if let Ok(n) = py.get_type::<PyInt>().call1((PyBytes::new(py, data),)) {
            return Ok(Some(n.unbind()));
        }
    }
    Ok(None)
}

fn describe_key(key: &[u8]) -> String {
    let shown = String::from_utf8_lossy(&key[..key.len().min(200)]).into_owned();
    format!("{shown:?}")
}

static SIGNING_LOG: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// A refused signed value, in the log (the key and why; never the value).
fn log_refused(py: Python<'_>, key: &[u8], why: &str) {
    let logged = SIGNING_LOG
        .get_or_try_init(py, || {
            let logger = py
                .import("logging")?
                .call_method1("getLogger", ("django_redis_rs.signing",))?;
            Ok::<_, PyErr>(logger.getattr("warning")?.unbind())
        })
        .and_then(|warning| {
            warning.bind(py).call1((
                "SIGNED_VALUES: the value of key %s was read as a miss: %s",
                describe_key(key),
                why,
            ))
        });
    if let Err(e) = logged {
        e.write_unraisable(py, None); // a logging failure must not fail the read
    }
}

/// The payload of `data` as read from `key`, or None when `signing` refuses it (counted, and
/// logged here).
fn checked<'a>(py: Python<'_>, signing: &Signing, key: &[u8], data: &'a [u8]) -> Option<&'a [u8]> {
    match maybe_detached(py, data.len(), || signing.open(key, data)) {
        Opened::Payload(payload) => Some(payload),
        Opened::Refused(why) => {
            log_refused(py, key, why);
            None
        }
    }
}

impl Codec {
    /// Encode the cache value stored at `key`: signed for that key with SIGNED_VALUES, except
    /// integers (stored as digits, so that INCR works on them).
    pub fn encode_value<'py>(
        &self,
        value: &Bound<'py, PyAny>,
        key: &[u8],
    ) -> PyResult<Encoded<'py>> {
        let Some(signing) = &self.signing else {
            return self.encode(value);
        };
        if let Some(digits) = integer_digits(value)? {
            return Ok(Encoded::Owned(digits));
        }
        let payload = self.encode_serialized(value)?;
        let payload = payload.as_bytes();
        let signed = maybe_detached(value.py(), payload.len(), || signing.sign(key, payload));
        check_bulk_len(signed.len(), || "the signed value".into())?;
        Ok(Encoded::Owned(signed))
    }

    /// Decode the cache value read from `key`. None: SIGNED_VALUES refused it (counted and
    /// logged), so it is a miss; it was not decompressed or decoded. Integers are unsigned.
    pub fn decode_value(
        &self,
        py: Python<'_>,
        data: &[u8],
        key: &[u8],
    ) -> PyResult<Option<Py<PyAny>>> {
        let Some(signing) = &self.signing else {
            return self.decode(py, signing::unchecked(data), key).map(Some);
        };
        if let Some(n) = stored_integer(py, data)? {
            return Ok(Some(n));
        }
        match checked(py, signing, key, data) {
            Some(payload) => self.decode(py, payload, key).map(Some),
            None => Ok(None),
        }
    }

    /// Signed for `key` (SIGNED_VALUES), or as it is: for bytes stored outside the codec (the
    /// session engine's).
    pub fn seal(&self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match &self.signing {
            Some(signing) => signing.sign(key, data),
            None => data.to_vec(),
        }
    }

    /// `seal`'s bytes back, or None (counted and logged) when SIGNED_VALUES refuses them.
    pub fn unseal<'a>(&self, py: Python<'_>, key: &[u8], data: &'a [u8]) -> Option<&'a [u8]> {
        match &self.signing {
            Some(signing) => checked(py, signing, key, data),
            None => Some(signing::unchecked(data)),
        }
    }

    /// Values SIGNED_VALUES refused since start or `reset_signature_failures`.
    pub fn signature_failures(&self) -> u64 {
        self.signing.as_ref().map_or(0, Signing::failures)
    }

    pub fn reset_signature_failures(&self) {
        if let Some(signing) = &self.signing {
            signing.reset();
        }
    }

    /// Encode a value, applying the integer rule; never signed (members of sets, hashes,
    /// lists and sorted sets, and django-redis's `client.encode`).
    pub fn encode<'py>(&self, value: &Bound<'py, PyAny>) -> PyResult<Encoded<'py>> {
        match integer_digits(value)? {
            Some(digits) => Ok(Encoded::Owned(digits)),
            None => self.encode_serialized(value),
        }
    }

    /// Encode without the integer rule (sorted-set members, as django-redis does).
    pub fn encode_serialized<'py>(&self, value: &Bound<'py, PyAny>) -> PyResult<Encoded<'py>> {
        let encoded = self.serialize_and_compress(value)?;
        check_bulk_len(encoded.as_bytes().len(), || "the encoded value".into())?;
        Ok(encoded)
    }

    fn serialize_and_compress<'py>(&self, value: &Bound<'py, PyAny>) -> PyResult<Encoded<'py>> {
        let py = value.py();
        let serialized = self.serializer.dumps(value)?;
        match &self.compressor {
            Compressor::Identity => Ok(serialized),
            Compressor::Native(c) => {
                let data = serialized.as_bytes();
                if !c.applies_to(data.len()) {
                    return Ok(serialized);
                }
                Ok(Encoded::Owned(maybe_detached(py, data.len(), || {
                    c.compress(data)
                })))
            }
            Compressor::Python(obj) => {
                let input = PyBytes::new(py, serialized.as_bytes());
                let compressed = obj
                    .bind(py)
                    .call_method1("compress", (input,))
                    .map_err(|e| {
                        let err = CompressorError::new_err(format!(
                            "{} could not compress a value: {e}",
                            self.compressor.name(py)
                        ));
                        err.set_cause(py, Some(e));
                        err
                    })?;
                Ok(Encoded::Python(compressed.cast_into::<PyBytes>().map_err(
                    |_| {
                        CompressorError::new_err(format!(
                            "{}.compress did not return bytes",
                            self.compressor.name(py)
                        ))
                    },
                )?))
            }
        }
    }

    /// Decode a stored value read from `key` (the key only names the value in error messages),
    /// unsigned: a member, or a cache value once `decode_value` has checked it.
    pub fn decode(&self, py: Python<'_>, data: &[u8], key: &[u8]) -> PyResult<Py<PyAny>> {
        if let Some(n) = stored_integer(py, data)? {
            return Ok(n);
        }
        // A value that does not decompress is read as stored: values written before compression
        // was enabled stay readable. Why it did not decompress goes into any later error.
        let (payload, not_compressed): (Cow<'_, [u8]>, Option<String>) = match &self.compressor {
            Compressor::Identity => (Cow::Borrowed(data), None),
            Compressor::Native(c) => match maybe_detached(py, data.len(), || c.decompress(data)) {
                Ok(out) => (Cow::Owned(out), None),
                Err(DecompressError::Invalid(why)) => (Cow::Borrowed(data), Some(why)),
                Err(DecompressError::TooLarge(max)) => {
                    return Err(CompressorError::new_err(format!(
                        "{} refused the value of key {}: it inflates beyond {max} bytes \
                         (COMPRESSOR_MAX_DECOMPRESSED_SIZE)",
                        c.kind.name(),
                        describe_key(key)
                    )))
                }
            },
            Compressor::Python(obj) => match obj
                .bind(py)
                .call_method1("decompress", (PyBytes::new(py, data),))
            {
                Ok(out) => match out.cast::<PyBytes>() {
                    Ok(bytes) => (Cow::Owned(bytes.as_bytes().to_vec()), None),
                    Err(_) => (
                        Cow::Borrowed(data),
                        Some("decompress did not return bytes".into()),
                    ),
                },
                Err(e) => (Cow::Borrowed(data), Some(e.to_string())),
            },
        };
        self.serializer.loads(py, &payload).map_err(|e| {
            if e.is_instance_of::<UnsafePickleError>(py) {
                return e; // it names what it refused, and nothing else went wrong
            }
            let also = not_compressed
                .filter(|_| !matches!(self.compressor, Compressor::Identity))
                .map(|why| {
                    format!(
                        " ({} could not decompress it either: {why})",
                        self.compressor.name(py)
                    )
                })
                .unwrap_or_default();
            let err = SerializerError::new_err(format!(
                "{} could not decode the value of key {}: {e}{also}",
                self.serializer.name(py),
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
