//! Serializers: pickle through cached Python callables, JSON and MessagePack in Rust, or any
//! object with `dumps`/`loads`.

use super::{json, msgpack, Encoded};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyString, PyTuple};

static PICKLE_DUMPS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static PICKLE_LOADS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

fn pickle<'py>(
    py: Python<'py>,
    cell: &'py PyOnceLock<Py<PyAny>>,
    name: &str,
) -> PyResult<&'py Bound<'py, PyAny>> {
    cell.get_or_try_init(py, || {
        Ok::<_, PyErr>(py.import("pickle")?.getattr(name)?.unbind())
    })
    .map(|f| f.bind(py))
}

pub enum Serializer {
    Pickle {
        protocol: i32,
    },
    Json,
    Msgpack,
    /// A user's class: any object with `dumps(value) -> bytes` and `loads(bytes)`.
    Python(Py<PyAny>),
}

impl Serializer {
    /// `("pickle", protocol)`, `("json",)`, `("msgpack",)`, or a serializer object.
    pub fn from_spec(spec: &Bound<'_, PyAny>) -> PyResult<Self> {
        let Ok(tuple) = spec.cast::<PyTuple>() else {
            return Ok(Serializer::Python(spec.clone().unbind()));
        };
        let name: String = tuple.get_item(0)?.extract()?;
        Ok(match name.as_str() {
            "pickle" => Serializer::Pickle {
                protocol: tuple.get_item(1)?.extract()?,
            },
            "json" => Serializer::Json,
            "msgpack" => Serializer::Msgpack,
            other => {
                return Err(PyValueError::new_err(format!(
                    "unknown serializer {other:?}"
                )))
            }
        })
    }

    pub fn name(&self, py: Python<'_>) -> String {
        match self {
            Serializer::Pickle { .. } => "PickleSerializer".into(),
            Serializer::Json => "JSONSerializer".into(),
            Serializer::Msgpack => "MSGPackSerializer".into(),
            Serializer::Python(obj) => obj
                .bind(py)
                .get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_else(|_| "serializer".into()),
        }
    }

    /// Serialize; a value the format cannot hold raises the format's own exception (pickle's
    /// PicklingError, TypeError for JSON/msgpack), as Django's and django-redis's backends do.
    pub fn dumps<'py>(&self, value: &Bound<'py, PyAny>) -> PyResult<Encoded<'py>> {
        let py = value.py();
        Ok(match self {
            Serializer::Pickle { protocol } => Encoded::Python(
                pickle(py, &PICKLE_DUMPS, "dumps")?
                    .call1((value, *protocol))?
                    .cast_into()?,
            ),
            Serializer::Json => Encoded::Owned(json::dumps(value)?),
            Serializer::Msgpack => Encoded::Owned(msgpack::dumps(value)?),
            Serializer::Python(obj) => {
                let out = obj.bind(py).call_method1("dumps", (value,))?;
                Encoded::Python(out.cast_into().map_err(|_| {
                    PyValueError::new_err(format!("{}.dumps did not return bytes", self.name(py)))
                })?)
            }
        })
    }

    pub fn loads(&self, py: Python<'_>, data: &[u8]) -> PyResult<Py<PyAny>> {
        match self {
            Serializer::Pickle { .. } => match pickled_text(data) {
                Some(text) => Ok(PyString::new(py, text).into_any().unbind()),
                None => Ok(pickle(py, &PICKLE_LOADS, "loads")?
                    .call1((PyBytes::new(py, data),))?
                    .unbind()),
            },
            Serializer::Json => json::loads(py, data),
            Serializer::Msgpack => msgpack::loads(py, data),
            Serializer::Python(obj) => Ok(obj
                .bind(py)
                .call_method1("loads", (PyBytes::new(py, data),))?
                .unbind()),
        }
    }
}

/// The text of a pickled `str` (protocol 2 or later), read without calling `pickle.loads`:
/// cached strings — rendered fragments, ids — are the most common values, and this halves
/// their decoding. Anything but exactly `PROTO [FRAME] <str> [memo] STOP`, or text that is not
/// strict UTF-8 (pickle passes lone surrogates through), returns None: `pickle.loads` decides.
fn pickled_text(data: &[u8]) -> Option<&str> {
    let le = |bytes: &[u8]| -> Option<usize> {
        let mut n = [0u8; 8];
        n.get_mut(..bytes.len())?.copy_from_slice(bytes);
        usize::try_from(u64::from_le_bytes(n)).ok()
    };
    let rest = match data {
        [0x80, 2..=5, rest @ ..] => rest,
        _ => return None,
    };
    let rest = match rest {
        [0x95, rest @ ..] => rest.get(8..)?, // FRAME: its length is not needed
        rest => rest,
    };
    let (len, rest) = match rest {
        [0x8c, n, rest @ ..] => (usize::from(*n), rest), // SHORT_BINUNICODE
        [b'X', rest @ ..] => (le(rest.get(..4)?)?, rest.get(4..)?), // BINUNICODE
        [0x8d, rest @ ..] => (le(rest.get(..8)?)?, rest.get(8..)?), // BINUNICODE8
        _ => return None,
    };
    let (text, tail) = (rest.get(..len)?, rest.get(len..)?);
    let ends = match tail {
        [0x94, b'.'] | [b'.'] => true,    // MEMOIZE (protocol 4+)
        [b'q', _, b'.'] => true,          // BINPUT
        [b'r', _, _, _, _, b'.'] => true, // LONG_BINPUT
        _ => false,
    };
    if !ends {
        return None;
    }
    std::str::from_utf8(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pickled(py: Python<'_>, value: &Bound<'_, PyAny>, protocol: i32) -> Vec<u8> {
        let dumps = py.import("pickle").unwrap().getattr("dumps").unwrap();
        let out = dumps.call1((value, protocol)).unwrap();
        out.cast::<PyBytes>().unwrap().as_bytes().to_vec()
    }

    #[test]
    fn reads_pickled_strings_of_every_size_and_protocol() {
        Python::initialize();
        Python::attach(|py| {
            for protocol in 2..=5 {
                for size in [0, 1, 255, 256, 70_000] {
                    let text = "é".repeat(size);
                    let data = pickled(py, &PyString::new(py, &text), protocol);
                    assert_eq!(
                        pickled_text(&data),
                        Some(text.as_str()),
                        "{protocol} {size}"
                    );
                }
                // Not a plain str: left to pickle.
                let other = py.eval(c"['a']", None, None).unwrap();
                assert_eq!(pickled_text(&pickled(py, &other, protocol)), None);
                let surrogate = py.eval(c"'\\ud800'", None, None).unwrap();
                assert_eq!(pickled_text(&pickled(py, &surrogate, protocol)), None);
            }
            assert_eq!(pickled_text(b"\x80\x05\x8c\x05ab"), None); // truncated
            assert_eq!(pickled_text(b""), None);
        });
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Whatever the bytes, the fast path agrees with pickle.loads or stays out of the way.
        #[test]
        fn agrees_with_pickle(text in ".*", protocol in 2..=5i32, cut in any::<prop::sample::Index>(),
                              garbage in proptest::collection::vec(any::<u8>(), 0..40)) {
            Python::initialize();
            Python::attach(|py| {
                let data = pickled(py, &PyString::new(py, &text), protocol);
                prop_assert_eq!(pickled_text(&data), Some(text.as_str()));
                let cut = &data[..cut.index(data.len() + 1)];
                let mut damaged = data.clone();
                damaged.extend(&garbage);
                for bytes in [cut, &garbage, &damaged] {
                    if let Some(fast) = pickled_text(bytes) {
                        let loads = py.import("pickle").unwrap().getattr("loads").unwrap();
                        let slow = loads.call1((PyBytes::new(py, bytes),)).unwrap();
                        prop_assert_eq!(fast, slow.extract::<String>().unwrap());
                    }
                }
                Ok(())
            })?;
        }
    }
}
