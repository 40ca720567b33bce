//! The codecs as plain functions, for the Python serializer and compressor classes (so code that
//! calls `JSONSerializer().dumps(...)` directly gets the same bytes as the cache) and for tests.

use super::compress::DecompressError;
use super::serialize::Serializer;
use super::Compressor;
use crate::errors::py::CompressorError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// Serialize `value` as the serializer `spec` does (no integer rule: that is the cache's).
#[pyfunction]
pub fn dumps<'py>(
    spec: &Bound<'py, PyAny>,
    value: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let serializer = Serializer::from_spec(spec)?;
    Ok(PyBytes::new(
        value.py(),
        serializer.dumps(value)?.as_bytes(),
    ))
}

#[pyfunction]
pub fn loads(py: Python<'_>, spec: &Bound<'_, PyAny>, data: &[u8]) -> PyResult<Py<PyAny>> {
    Serializer::from_spec(spec)?.loads(py, data)
}

fn native(spec: &Bound<'_, PyAny>) -> PyResult<super::compress::NativeCompressor> {
    match Compressor::from_spec(spec)? {
        Compressor::Native(c) => Ok(c),
        _ => Err(pyo3::exceptions::PyValueError::new_err(
            "not a native compressor spec",
        )),
    }
}

/// Compress as the compressor `spec` does (values up to `min_length` come back unchanged).
#[pyfunction]
pub fn compress<'py>(
    py: Python<'py>,
    spec: &Bound<'py, PyAny>,
    data: &[u8],
) -> PyResult<Bound<'py, PyBytes>> {
    let c = native(spec)?;
    let out = py.detach(|| c.compress(data));
    Ok(PyBytes::new(py, &out))
}

/// Decompress, raising CompressorError for data this compressor did not write or that inflates
/// beyond the spec's bound.
#[pyfunction]
pub fn decompress<'py>(
    py: Python<'py>,
    spec: &Bound<'py, PyAny>,
    data: &[u8],
) -> PyResult<Bound<'py, PyBytes>> {
    let c = native(spec)?;
    match py.detach(|| c.decompress(data)) {
        Ok(out) => Ok(PyBytes::new(py, &out)),
        Err(DecompressError::Invalid(why)) => Err(CompressorError::new_err(format!(
            "{}: {why}",
            c.kind.name()
        ))),
        Err(DecompressError::TooLarge(max)) => Err(CompressorError::new_err(format!(
            "{}: the value inflates beyond {max} bytes",
            c.kind.name()
        ))),
    }
}
