//! Cache keys: Django's key checks and default key function, made in Rust.

use crate::errors::check_bulk_len;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyString};
use std::borrow::Cow;

/// Django warns about keys memcached would refuse, so code stays portable between backends.
const MEMCACHE_MAX_KEY_LENGTH: usize = 250;

static CACHE_KEY_WARNING: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// An argument as bytes: str as UTF-8, ints and floats in decimal (as redis-py sends them).
pub(super) fn arg<'a>(obj: &'a Bound<'_, PyAny>) -> PyResult<Cow<'a, [u8]>> {
    let bytes = if let Ok(s) = obj.cast::<PyString>() {
        s.to_str()?.as_bytes()
    } else if let Ok(b) = obj.cast::<PyBytes>() {
        b.as_bytes()
    } else {
        return number_arg(obj).map(Cow::Owned);
    };
    check_bulk_len(bytes.len(), || "an argument".into())?;
    Ok(Cow::Borrowed(bytes))
}

fn number_arg(obj: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if obj.is_instance_of::<PyBool>() {
        return Err(PyTypeError::new_err(
            "a bool is not a valid Redis argument; convert it to int, str or bytes",
        ));
    }
    if obj.is_instance_of::<PyInt>() || obj.is_instance_of::<PyFloat>() {
        return Ok(obj.str()?.to_str()?.as_bytes().to_vec());
    }
    Err(PyTypeError::new_err(format!(
        "invalid Redis argument of type {}: use str, bytes, int or float",
        obj.get_type().name()?
    )))
}

/// A cache key (already made by the key function), warning as Django does on memcached-unsafe keys.
pub(super) fn cache_key<'a>(key: &'a Bound<'_, PyAny>) -> PyResult<Cow<'a, [u8]>> {
    if let Ok(s) = key.cast::<PyString>() {
        let text = s.to_str()?;
        check_key_text(key.py(), text)?;
        return Ok(Cow::Borrowed(text.as_bytes()));
    }
    arg(key)
}

/// Django's checks on a made key: memcached's length and character limits (warnings only), and
/// Redis's own limit (an error).
fn check_key_text(py: Python<'_>, text: &str) -> PyResult<()> {
    check_bulk_len(text.len(), || "the key".into())?;
    let too_long =
        text.len() > MEMCACHE_MAX_KEY_LENGTH && text.chars().count() > MEMCACHE_MAX_KEY_LENGTH;
    let odd_characters = text.bytes().any(|b| b < 33 || b == 127);
    if too_long || odd_characters {
        let key = PyString::new(py, text).into_any();
        if too_long {
            warn_key(
                &key,
                &format!(
                    "Cache key will cause errors if used with memcached: {} (longer than {MEMCACHE_MAX_KEY_LENGTH})",
                    key.repr()?
                ),
            )?;
        }
        if odd_characters {
            warn_key(
                &key,
                &format!("Cache key contains characters that will cause errors if used with memcached: {}", key.repr()?),
            )?;
        }
    }
    Ok(())
}

/// Django's default key function, `"%s:%s:%s" % (KEY_PREFIX, version, key)`, applied here to
/// many keys at once: a Python call per key would cost more than the rest of `get_many`.
fn format_key(prefix: &str, version: i64, key: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    let shown;
    let text = match key.cast_exact::<PyString>() {
        Ok(s) => s.to_str()?,
        Err(_) => {
            shown = key.str()?;
            shown.to_str()?
        }
    };
    let mut digits = itoa::Buffer::new();
    let version = digits.format(version);
    let mut made = String::with_capacity(prefix.len() + version.len() + text.len() + 2);
    for part in [prefix, ":", version, ":", text] {
        made.push_str(part);
    }
    check_key_text(key.py(), &made)?;
    Ok(made.into_bytes())
}

/// One key of a multi-key call: made here with `version` (see `call_keys`), else already made.
pub(super) fn made_key(
    prefix: Option<&str>,
    key: &Bound<'_, PyAny>,
    version: Option<i64>,
) -> PyResult<Cow<'static, [u8]>> {
    match (prefix, version) {
        (Some(prefix), Some(version)) => Ok(Cow::Owned(format_key(prefix, version, key)?)),
        (None, Some(_)) => Err(PyTypeError::new_err(
            "this client makes keys in Python: pass made keys, not a version",
        )),
        (_, None) => Ok(Cow::Owned(cache_key(key)?.into_owned())),
    }
}

/// A caller's key object and the key made of it.
type CallKey<'py> = (Bound<'py, PyAny>, Cow<'static, [u8]>);

/// The keys of a multi-key call with the caller's key objects (the result maps those back).
/// With `version` they are made here (`format_key`); without, `keys` maps made keys to the
/// caller's keys, or lists made keys.
pub(super) fn call_keys<'py>(
    prefix: Option<&str>,
    keys: &Bound<'py, PyAny>,
    version: Option<i64>,
) -> PyResult<Vec<CallKey<'py>>> {
    match (version, keys.cast::<PyDict>()) {
        (None, Ok(dict)) => dict
            .iter()
            .map(|(made, key)| Ok((key, made_key(prefix, &made, None)?)))
            .collect(),
        _ => keys
            .try_iter()?
            .map(|key| {
                let key = key?;
                let made = made_key(prefix, &key, version)?;
                Ok((key, made))
            })
            .collect(),
    }
}

fn warn_key(key: &Bound<'_, PyAny>, message: &str) -> PyResult<()> {
    let py = key.py();
    let category = CACHE_KEY_WARNING.get_or_try_init(py, || {
        Ok::<_, PyErr>(
            py.import("django.core.cache.backends.base")?
                .getattr("CacheKeyWarning")?
                .unbind(),
        )
    })?;
    let category = category.bind(py).cast::<pyo3::types::PyType>()?;
    PyErr::warn(
        py,
        category,
        &std::ffi::CString::new(message).unwrap_or_default(),
        1,
    )
}
