//! Decoding rows of dicts creates the same few keys thousands of times. One Python str per
//! distinct short key, reused, saves the allocations and lets dict inserts reuse its cached hash.

use pyo3::prelude::*;
use pyo3::types::PyString;
use std::collections::HashMap;

const MAX_KEY_LEN: usize = 32;
const MAX_KEYS: usize = 512;

pub struct KeyCache<'py, 'a> {
    keys: HashMap<&'a [u8], Bound<'py, PyString>>,
}

impl<'py, 'a> KeyCache<'py, 'a> {
    pub fn new() -> Self {
        Self {
            keys: HashMap::new(),
        }
    }

    /// The str for these UTF-8 bytes (already validated by the caller).
    pub fn get(&mut self, py: Python<'py>, raw: &'a [u8], text: &str) -> Bound<'py, PyString> {
        if raw.len() > MAX_KEY_LEN {
            return PyString::new(py, text);
        }
        if let Some(key) = self.keys.get(raw) {
            return key.clone();
        }
        let key = PyString::new(py, text);
        if self.keys.len() < MAX_KEYS {
            self.keys.insert(raw, key.clone());
        }
        key
    }
}
