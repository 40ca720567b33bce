//! MessagePack with the exact bytes `msgpack.dumps(value)` produces (msgpack-python's defaults:
//! `use_bin_type=True`, float64, the smallest integer encoding) and the results of
//! `msgpack.loads(data, raw=False)` (str for strings, bytes for bin, lists, dicts with str or
//! bytes keys). No Python msgpack package is needed.

use pyo3::exceptions::{PyOverflowError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple,
};
use rmp::encode;
use rmp::Marker;

use super::interned::KeyCache;

/// msgpack-python's default recursion limit for packing.
const MAX_DEPTH: usize = 511;

pub fn dumps(value: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    let mut out = Vec::with_capacity(64);
    pack(value, &mut out, 0)?;
    Ok(out)
}

fn pack(value: &Bound<'_, PyAny>, out: &mut Vec<u8>, depth: usize) -> PyResult<()> {
    if depth > MAX_DEPTH {
        // msgpack-python packs deeper: it decides.
        return Err(super::serialize::hand_off(
            "nested deeper than the native packer goes",
        ));
    }
    // Writing into a Vec<u8> cannot fail, so rmp's io results are ignored.
    if value.is_none() {
        encode::write_nil(out).ok();
    } else if let Ok(b) = value.cast::<PyBool>() {
        encode::write_bool(out, b.is_true()).ok();
    } else if value.is_instance_of::<PyInt>() {
        if let Ok(n) = value.extract::<i64>() {
            if n >= 0 {
                encode::write_uint(out, n as u64).ok();
            } else {
                encode::write_sint(out, n).ok();
            }
        } else if let Ok(n) = value.extract::<u64>() {
            encode::write_uint(out, n).ok();
        } else {
            return Err(PyOverflowError::new_err("Integer value out of range"));
        }
    } else if let Ok(f) = value.cast::<PyFloat>() {
        encode::write_f64(out, f.value()).ok();
    } else if let Ok(s) = value.cast::<PyString>() {
        let text = s.to_str()?; // lone surrogates raise UnicodeEncodeError, as msgpack does
        encode::write_str_len(out, len32(text.len())?).ok();
        out.extend_from_slice(text.as_bytes());
    } else if let Ok(b) = value.cast::<PyBytes>() {
        write_bin(out, b.as_bytes())?;
    } else if let Ok(b) = value.cast::<PyByteArray>() {
        write_bin(out, &b.to_vec())?;
    } else if let Ok(list) = value.cast::<PyList>() {
        encode::write_array_len(out, len32(list.len())?).ok();
        for item in list.iter() {
            pack(&item, out, depth + 1)?;
        }
    } else if let Ok(tuple) = value.cast::<PyTuple>() {
        encode::write_array_len(out, len32(tuple.len())?).ok();
        for item in tuple.iter() {
            pack(&item, out, depth + 1)?;
        }
    } else if let Ok(dict) = value.cast::<PyDict>() {
        encode::write_map_len(out, len32(dict.len())?).ok();
        for (k, v) in dict.iter() {
            pack(&k, out, depth + 1)?;
            pack(&v, out, depth + 1)?;
        }
    } else {
        return Err(PyTypeError::new_err(format!(
            "can not serialize {:?} object",
            value.get_type().name()?.to_string()
        )));
    }
    Ok(())
}

fn len32(len: usize) -> PyResult<u32> {
    u32::try_from(len).map_err(|_| PyValueError::new_err("too large to pack (over 4 GiB)"))
}

fn write_bin(out: &mut Vec<u8>, data: &[u8]) -> PyResult<()> {
    encode::write_bin_len(out, len32(data.len())?).ok();
    out.extend_from_slice(data);
    Ok(())
}

pub fn loads(py: Python<'_>, data: &[u8]) -> PyResult<Py<PyAny>> {
    let mut reader = Reader {
        py,
        data,
        pos: 0,
        keys: KeyCache::new(),
    };
    let value = reader.value(0)?;
    if reader.pos != data.len() {
        return Err(PyValueError::new_err(format!(
            "extra data after the value at byte {}",
            reader.pos
        )));
    }
    Ok(value.unbind())
}

struct Reader<'py, 'a> {
    py: Python<'py>,
    data: &'a [u8],
    pos: usize,
    keys: KeyCache<'py, 'a>,
}

impl<'py, 'a> Reader<'py, 'a> {
    fn take(&mut self, n: usize) -> PyResult<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.data.len())
            .ok_or_else(|| {
                PyValueError::new_err(format!(
                    "truncated data: {n} bytes wanted at byte {}",
                    self.pos
                ))
            })?;
        let bytes = &self.data[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn uint(&mut self, n: usize) -> PyResult<u64> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }

    fn int(&mut self, n: usize) -> PyResult<i64> {
        let raw = self.uint(n)?;
        let shift = 64 - 8 * n as u32;
        Ok(((raw << shift) as i64) >> shift)
    }

    fn value(&mut self, depth: usize) -> PyResult<Bound<'py, PyAny>> {
        if depth > MAX_DEPTH {
            // msgpack-python reads deeper: it decides.
            return Err(super::serialize::hand_off(
                "nested deeper than the native reader goes",
            ));
        }
        let py = self.py;
        let marker = Marker::from_u8(self.take(1)?[0]);
        Ok(match marker {
            Marker::Null => py.None().into_bound(py),
            Marker::True => PyBool::new(py, true).to_owned().into_any(),
            Marker::False => PyBool::new(py, false).to_owned().into_any(),
            Marker::FixPos(n) => n.into_pyobject(py)?.into_any(),
            Marker::FixNeg(n) => n.into_pyobject(py)?.into_any(),
            Marker::U8 => self.uint(1)?.into_pyobject(py)?.into_any(),
            Marker::U16 => self.uint(2)?.into_pyobject(py)?.into_any(),
            Marker::U32 => self.uint(4)?.into_pyobject(py)?.into_any(),
            Marker::U64 => self.uint(8)?.into_pyobject(py)?.into_any(),
            Marker::I8 => self.int(1)?.into_pyobject(py)?.into_any(),
            Marker::I16 => self.int(2)?.into_pyobject(py)?.into_any(),
            Marker::I32 => self.int(4)?.into_pyobject(py)?.into_any(),
            Marker::I64 => self.int(8)?.into_pyobject(py)?.into_any(),
            Marker::F32 => f64::from(f32::from_bits(self.uint(4)? as u32))
                .into_pyobject(py)?
                .into_any(),
            Marker::F64 => f64::from_bits(self.uint(8)?).into_pyobject(py)?.into_any(),
            Marker::FixStr(n) => self.str(n as usize)?,
            Marker::Str8 => {
                let n = self.uint(1)? as usize;
                self.str(n)?
            }
            Marker::Str16 => {
                let n = self.uint(2)? as usize;
                self.str(n)?
            }
            Marker::Str32 => {
                let n = self.uint(4)? as usize;
                self.str(n)?
            }
            Marker::Bin8 | Marker::Bin16 | Marker::Bin32 => {
                let width = match marker {
                    Marker::Bin8 => 1,
                    Marker::Bin16 => 2,
                    _ => 4,
                };
                let n = self.uint(width)? as usize;
                let bytes = self.take(n)?;
                PyBytes::new(py, bytes).into_any()
            }
            Marker::FixArray(n) => self.array(n as usize, depth)?,
            Marker::Array16 => {
                let n = self.uint(2)? as usize;
                self.array(n, depth)?
            }
            Marker::Array32 => {
                let n = self.uint(4)? as usize;
                self.array(n, depth)?
            }
            Marker::FixMap(n) => self.map(n as usize, depth)?,
            Marker::Map16 => {
                let n = self.uint(2)? as usize;
                self.map(n, depth)?
            }
            Marker::Map32 => {
                let n = self.uint(4)? as usize;
                self.map(n, depth)?
            }
            Marker::Reserved => {
                return Err(PyValueError::new_err("reserved MessagePack marker 0xc1"))
            }
            // Extension types (Timestamp, ExtType): msgpack-python builds them.
            _ => return Err(super::serialize::hand_off("a MessagePack extension type")),
        })
    }

    fn str(&mut self, n: usize) -> PyResult<Bound<'py, PyAny>> {
        let (py, at) = (self.py, self.pos);
        let bytes = self.take(n)?;
        let text = std::str::from_utf8(bytes).map_err(|e| {
            PyValueError::new_err(format!("invalid UTF-8 in a string at byte {at}: {e}"))
        })?;
        Ok(PyString::new(py, text).into_any())
    }

    fn array(&mut self, n: usize, depth: usize) -> PyResult<Bound<'py, PyAny>> {
        // Each element takes at least one byte: a length beyond the data is a corrupt header.
        if n > self.data.len() - self.pos {
            return Err(PyValueError::new_err("array length beyond the data"));
        }
        let list = PyList::empty(self.py);
        for _ in 0..n {
            list.append(self.value(depth + 1)?)?;
        }
        Ok(list.into_any())
    }

    fn map(&mut self, n: usize, depth: usize) -> PyResult<Bound<'py, PyAny>> {
        if n.saturating_mul(2) > self.data.len() - self.pos {
            return Err(PyValueError::new_err("map length beyond the data"));
        }
        let dict = PyDict::new(self.py);
        for _ in 0..n {
            let key = match Marker::from_u8(*self.data.get(self.pos).unwrap_or(&0xc1)) {
                Marker::FixStr(len) => {
                    self.pos += 1;
                    let raw = self.take(len as usize)?;
                    let text = std::str::from_utf8(raw).map_err(|e| {
                        PyValueError::new_err(format!("invalid UTF-8 in a map key: {e}"))
                    })?;
                    self.keys.get(self.py, raw, text).into_any()
                }
                _ => self.value(depth + 1)?,
            };
            // msgpack.loads's strict_map_key=True default.
            if !key.is_instance_of::<PyString>() && !key.is_instance_of::<PyBytes>() {
                return Err(PyValueError::new_err(format!(
                    "{} is not allowed for map key when strict_map_key=True",
                    key.get_type().name()?
                )));
            }
            let value = self.value(depth + 1)?;
            dict.set_item(key, value)?;
        }
        Ok(dict.into_any())
    }
}
