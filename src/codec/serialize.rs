//! Serializers: pickle through cached Python callables, JSON and MessagePack in Rust, or any
//! object with `dumps`/`loads`.

use super::{json, msgpack, unpickle, Encoded};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyTuple};

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
            Serializer::Pickle { .. } => match unpickle::loads(py, data) {
                Some(value) => Ok(value.unbind()),
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
