//! Serializers: pickle through cached Python callables, JSON and MessagePack in Rust, or any
//! object with `dumps`/`loads`.

use super::{json, msgpack, unpickle, Encoded};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyTuple};

static PICKLE_DUMPS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static PICKLE_LOADS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static DJANGO_JSON_ENCODER: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static REFERENCE_JSON_LOADS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static REFERENCE_MSGPACK_DUMPS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static REFERENCE_MSGPACK_LOADS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// `module.name`, imported once.
pub(super) fn python_function<'py>(
    py: Python<'py>,
    cell: &'py PyOnceLock<Py<PyAny>>,
    module: &str,
    name: &str,
) -> PyResult<&'py Bound<'py, PyAny>> {
    cell.get_or_try_init(py, || {
        Ok::<_, PyErr>(py.import(module)?.getattr(name)?.unbind())
    })
    .map(|f| f.bind(py))
}

fn pickle<'py>(
    py: Python<'py>,
    cell: &'py PyOnceLock<Py<PyAny>>,
    name: &str,
) -> PyResult<&'py Bound<'py, PyAny>> {
    python_function(py, cell, "pickle", name)
}

pyo3::create_exception!(
    django_redis_rs._native,
    HandOff,
    PyValueError,
    "The native codec declines a value it does not build (nesting deeper than it goes, \
     MessagePack extension types): the reference library decides."
);

/// What the native JSON and MessagePack codecs raise for a hard case, which the reference
/// library (the one django-redis calls) then decides, so that both accept and refuse alike.
pub(super) fn hand_off(why: &str) -> PyErr {
    HandOff::new_err(why.to_owned())
}

/// `native`, or for a value it handed off, what the reference does with it. The reference's
/// own refusal is the answer then (and if its library is not installed, the native refusal).
fn or_reference<'py, T>(
    py: Python<'py>,
    native: PyResult<T>,
    reference: impl FnOnce() -> PyResult<Bound<'py, PyAny>>,
    convert: impl FnOnce(Bound<'py, PyAny>) -> PyResult<T>,
) -> PyResult<T> {
    match native {
        Err(declined) if declined.is_instance_of::<HandOff>(py) => match reference() {
            Err(missing) if missing.is_instance_of::<pyo3::exceptions::PyImportError>(py) => {
                Err(declined)
            }
            other => convert(other?),
        },
        other => other,
    }
}

/// django-redis's JSONSerializer: `json.dumps(value, cls=DjangoJSONEncoder).encode()`.
fn reference_json_dumps<'py>(value: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = value.py();
    let encoder = python_function(
        py,
        &DJANGO_JSON_ENCODER,
        "django.core.serializers.json",
        "DjangoJSONEncoder",
    )?;
    let kwargs = pyo3::types::PyDict::new(py);
    kwargs.set_item("cls", encoder)?;
    py.import("json")?
        .call_method("dumps", (value,), Some(&kwargs))?
        .call_method0("encode")
}

/// Bytes a reference `dumps` returned, to send.
fn owned_bytes(out: Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    Ok(out.cast_into::<PyBytes>()?.as_bytes().to_vec())
}

pub enum Serializer {
    Pickle {
        protocol: i32,
        /// With SAFE_PICKLE: the restricted loader (`serializers/pickle.py`) for pickles the
        /// native decoder does not build, which raises `UnsafePickleError` for a class outside
        /// the allowed ones; writes are checked by reading them back the same way.
        restricted: Option<Py<PyAny>>,
    },
    Json,
    Msgpack,
    /// A user's class: any object with `dumps(value) -> bytes` and `loads(bytes)`.
    Python(Py<PyAny>),
}

impl Serializer {
    /// `("pickle", protocol[, restricted loader])`, `("json",)`, `("msgpack",)`, or a
    /// serializer object.
    pub fn from_spec(spec: &Bound<'_, PyAny>) -> PyResult<Self> {
        let Ok(tuple) = spec.cast::<PyTuple>() else {
            return Ok(Serializer::Python(spec.clone().unbind()));
        };
        let name: String = tuple.get_item(0)?.extract()?;
        Ok(match name.as_str() {
            "pickle" => Serializer::Pickle {
                protocol: tuple.get_item(1)?.extract()?,
                restricted: match tuple.len() {
                    3 => Some(tuple.get_item(2)?.unbind()),
                    _ => None,
                },
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
            Serializer::Pickle {
                protocol,
                restricted,
            } => {
                let out = pickle(py, &PICKLE_DUMPS, "dumps")?
                    .call1((value, *protocol))?
                    .cast_into::<PyBytes>()?;
                // Refused now, not when read: what the native decoder builds is data only.
                if let Some(restricted) = restricted {
                    if unpickle::loads(py, out.as_bytes()).is_none() {
                        restricted.bind(py).call1((&out,))?;
                    }
                }
                Encoded::Python(out)
            }
            Serializer::Json => Encoded::Owned(or_reference(
                py,
                json::dumps(value),
                || reference_json_dumps(value),
                owned_bytes,
            )?),
            Serializer::Msgpack => Encoded::Owned(or_reference(
                py,
                msgpack::dumps(value),
                || {
                    python_function(py, &REFERENCE_MSGPACK_DUMPS, "msgpack", "dumps")?
                        .call1((value,))
                },
                owned_bytes,
            )?),
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
            Serializer::Pickle { restricted, .. } => match unpickle::loads(py, data) {
                Some(value) => Ok(value.unbind()),
                None => {
                    let loads = match restricted {
                        Some(restricted) => restricted.bind(py),
                        None => pickle(py, &PICKLE_LOADS, "loads")?,
                    };
                    Ok(loads.call1((PyBytes::new(py, data),))?.unbind())
                }
            },
            // django-redis's: `json.loads(value.decode())`, `msgpack.loads(value, raw=False)`.
            Serializer::Json => or_reference(
                py,
                json::loads(py, data),
                || {
                    let text = PyBytes::new(py, data).call_method0("decode")?;
                    python_function(py, &REFERENCE_JSON_LOADS, "json", "loads")?.call1((text,))
                },
                |value| Ok(value.unbind()),
            ),
            Serializer::Msgpack => or_reference(
                py,
                msgpack::loads(py, data),
                || {
                    let kwargs = pyo3::types::PyDict::new(py);
                    kwargs.set_item("raw", false)?;
                    python_function(py, &REFERENCE_MSGPACK_LOADS, "msgpack", "loads")?
                        .call((PyBytes::new(py, data),), Some(&kwargs))
                },
                |value| Ok(value.unbind()),
            ),
            Serializer::Python(obj) => Ok(obj
                .bind(py)
                .call_method1("loads", (PyBytes::new(py, data),))?
                .unbind()),
        }
    }
}
