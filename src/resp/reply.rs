//! Turning Redis replies into Python objects. Each command names the shape it expects; cache
//! values in replies go through the codec.

use crate::codec::Codec;
use crate::errors::{Error, ErrorKind};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PySet, PyString, PyTuple};
use redis::Value;

/// The shape of a reply, as the Python layer asks for it (`_native.pyi` lists the numbers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    /// redis-py's plain conversion: bytes, int, list, None; `OK` as True.
    Raw = 0,
    Int = 1,
    Bool = 2,
    /// One cache value (decoded), or None.
    Value = 3,
    /// A list of cache values.
    Values = 4,
    /// A set of cache values.
    ValueSet = 5,
    /// A list of str (keys, hash fields).
    Strings = 6,
    Float = 7,
    /// Sorted-set members with scores: a list of (value, float).
    Scored = 8,
    /// A list of bool (SMISMEMBER).
    Bools = 9,
}

impl Reply {
    /// Exported to Python as `REPLY_<NAME>` constants.
    pub const ALL: [(&'static str, Reply); 10] = [
        ("REPLY_RAW", Reply::Raw),
        ("REPLY_INT", Reply::Int),
        ("REPLY_BOOL", Reply::Bool),
        ("REPLY_VALUE", Reply::Value),
        ("REPLY_VALUES", Reply::Values),
        ("REPLY_VALUE_SET", Reply::ValueSet),
        ("REPLY_STRINGS", Reply::Strings),
        ("REPLY_FLOAT", Reply::Float),
        ("REPLY_SCORED", Reply::Scored),
        ("REPLY_BOOLS", Reply::Bools),
    ];

    pub fn from_code(code: u8) -> PyResult<Self> {
        Self::ALL
            .iter()
            .map(|(_, kind)| *kind)
            .find(|kind| *kind as u8 == code)
            .ok_or_else(|| PyValueError::new_err(format!("unknown reply kind {code}")))
    }
}

fn unexpected(value: &Value, wanted: &str) -> PyErr {
    Error::new(
        ErrorKind::Response,
        format!("expected {wanted} in the reply, got {value:?}"),
    )
    .into()
}

fn items(value: Value) -> Vec<Value> {
    match value {
        Value::Array(items) | Value::Set(items) => items,
        Value::Map(pairs) => pairs.into_iter().flat_map(|(k, v)| [k, v]).collect(),
        Value::Nil => Vec::new(),
        other => vec![other],
    }
}

fn as_text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        Value::VerbatimString { text, .. } => Some(text.clone()),
        Value::Okay => Some("OK".into()),
        Value::Int(n) => Some(n.to_string()),
        _ => None,
    }
}

fn as_float(value: &Value) -> Option<f64> {
    match value {
        Value::Double(f) => Some(*f),
        Value::Int(n) => Some(*n as f64),
        other => as_text(other).and_then(|t| match t.as_str() {
            "inf" | "+inf" => Some(f64::INFINITY),
            "-inf" => Some(f64::NEG_INFINITY),
            t => t.parse().ok(),
        }),
    }
}

/// redis-py's conversion of a reply with no callback.
pub fn raw(py: Python<'_>, value: Value) -> PyResult<Py<PyAny>> {
    Ok(match value {
        Value::Nil => py.None(),
        Value::Int(n) => n.into_pyobject(py)?.into_any().unbind(),
        Value::BulkString(b) => PyBytes::new(py, &b).into_any().unbind(),
        Value::Okay => true.into_pyobject(py)?.to_owned().into_any().unbind(),
        Value::SimpleString(s) => PyString::new(py, &s).into_any().unbind(),
        Value::VerbatimString { text, .. } => PyString::new(py, &text).into_any().unbind(),
        Value::Double(f) => f.into_pyobject(py)?.into_any().unbind(),
        Value::Boolean(b) => b.into_pyobject(py)?.to_owned().into_any().unbind(),
        Value::Array(items) | Value::Set(items) | Value::Push { data: items, .. } => {
            let list = PyList::empty(py);
            for item in items {
                list.append(raw(py, item)?)?;
            }
            list.into_any().unbind()
        }
        Value::Map(pairs) => {
            let dict = PyDict::new(py);
            for (k, v) in pairs {
                dict.set_item(raw(py, k)?, raw(py, v)?)?;
            }
            dict.into_any().unbind()
        }
        Value::Attribute { data, .. } => raw(py, *data)?,
        Value::ServerError(err) => return Err(Error::from_server(&err).into()),
        other => PyString::new(py, &format!("{other:?}")).into_any().unbind(),
    })
}

/// Convert `value` into the shape `kind`; `key` names the value in decode errors.
pub fn convert(
    py: Python<'_>,
    codec: &Codec,
    value: Value,
    kind: Reply,
    key: &[u8],
) -> PyResult<Py<PyAny>> {
    let decode = |v: Value| -> PyResult<Py<PyAny>> {
        match v {
            Value::Nil => Ok(py.None()),
            Value::BulkString(b) => codec.decode(py, &b, key),
            other => raw(py, other),
        }
    };
    Ok(match kind {
        Reply::Raw => raw(py, value)?,
        Reply::Int => match value {
            Value::Nil => py.None(),
            Value::Int(n) => n.into_pyobject(py)?.into_any().unbind(),
            other => {
                let n: i64 = as_text(&other)
                    .and_then(|t| t.parse().ok())
                    .ok_or_else(|| unexpected(&other, "an integer"))?;
                n.into_pyobject(py)?.into_any().unbind()
            }
        },
        Reply::Bool => {
            let truth = match value {
                Value::Nil => false,
                Value::Int(n) => n != 0,
                Value::Boolean(b) => b,
                Value::Okay => true,
                other => as_text(&other).is_some(),
            };
            truth.into_pyobject(py)?.to_owned().into_any().unbind()
        }
        Reply::Float => match value {
            Value::Nil => py.None(),
            other => as_float(&other)
                .ok_or_else(|| unexpected(&other, "a number"))?
                .into_pyobject(py)?
                .into_any()
                .unbind(),
        },
        Reply::Value => decode(value)?,
        Reply::Values => {
            let list = PyList::empty(py);
            for item in items(value) {
                list.append(decode(item)?)?;
            }
            list.into_any().unbind()
        }
        Reply::ValueSet => {
            let set = PySet::empty(py)?;
            for item in items(value) {
                set.add(decode(item)?)?;
            }
            set.into_any().unbind()
        }
        Reply::Strings => {
            let list = PyList::empty(py);
            for item in items(value) {
                let text = as_text(&item).ok_or_else(|| unexpected(&item, "a string"))?;
                list.append(text)?;
            }
            list.into_any().unbind()
        }
        Reply::Bools => {
            let list = PyList::empty(py);
            for item in items(value) {
                list.append(
                    matches!(item, Value::Int(n) if n != 0) || matches!(item, Value::Boolean(true)),
                )?;
            }
            list.into_any().unbind()
        }
        Reply::Scored => {
            // RESP2 gives a flat [member, score, ...]; some commands nest [[member, score], ...].
            let mut flat = Vec::new();
            for item in items(value) {
                match item {
                    Value::Array(pair) => flat.extend(pair),
                    other => flat.push(other),
                }
            }
            let list = PyList::empty(py);
            let mut it = flat.into_iter();
            while let (Some(member), Some(score)) = (it.next(), it.next()) {
                let score = as_float(&score).ok_or_else(|| unexpected(&score, "a score"))?;
                list.append(PyTuple::new(
                    py,
                    [
                        decode(member)?,
                        score.into_pyobject(py)?.into_any().unbind(),
                    ],
                )?)?;
            }
            list.into_any().unbind()
        }
    })
}

#[cfg(test)]
mod fuzz {
    //! Bytes off the wire, valid RESP or not, through redis-rs's parser and every reply shape
    //! with every codec: an answer or a Python exception, never a panic.
    use super::*;
    use crate::codec::compress::Kind;
    use crate::codec::serialize::Serializer;
    use crate::codec::Compressor;
    use proptest::prelude::*;

    /// `pickle.dumps({"a": 1}, protocol=5)`.
    const PICKLED: &[u8] = b"\x80\x05\x95\n\x00\x00\x00\x00\x00\x00\x00}\x94\x8c\x01a\x94K\x01s.";

    /// Payloads a cache may meet: each codec's real output, integers, and garbage.
    fn payload() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..64),
            Just(PICKLED.to_vec()),
            Just(b"{\"a\": [1, 2.5, null, \"x\"]}".to_vec()),
            Just(b"\x82\xa1a\x01\xa1b\x93\x01\x02\xc0".to_vec()),
            Just(crate::codec::compress::compressor(Kind::Zstd).compress(&[b'x'; 100])),
            any::<i64>().prop_map(|n| n.to_string().into_bytes()),
            Just(b"3.25".to_vec()),
        ]
    }

    fn bulk(data: &[u8]) -> Vec<u8> {
        let mut out = format!("${}\r\n", data.len()).into_bytes();
        out.extend_from_slice(data);
        out.extend_from_slice(b"\r\n");
        out
    }

    /// RESP2 and RESP3 frames nested up to three deep, then possibly damaged.
    fn frame() -> impl Strategy<Value = Vec<u8>> {
        let leaf = prop_oneof![
            payload().prop_map(|p| bulk(&p)),
            any::<i64>().prop_map(|n| format!(":{n}\r\n").into_bytes()),
            Just(b"$-1\r\n".to_vec()),
            Just(b"+OK\r\n".to_vec()),
            Just(b"-WRONGTYPE Operation against a key\r\n".to_vec()),
            Just(b"_\r\n".to_vec()),
            Just(b"#t\r\n".to_vec()),
            Just(b",1.5\r\n".to_vec()),
            Just(b",nan\r\n".to_vec()),
        ];
        let tree = leaf.prop_recursive(3, 32, 6, |inner| {
            (
                prop_oneof![Just('*'), Just('~'), Just('%')],
                proptest::collection::vec(inner, 0..6),
            )
                .prop_map(|(kind, items)| {
                    let count = if kind == '%' {
                        items.len() / 2
                    } else {
                        items.len()
                    };
                    let mut out = format!("{kind}{count}\r\n").into_bytes();
                    for item in items
                        .iter()
                        .take(if kind == '%' { count * 2 } else { count })
                    {
                        out.extend_from_slice(item);
                    }
                    out
                })
        });
        (tree, any::<u16>(), any::<u8>(), any::<bool>()).prop_map(
            |(mut bytes, at, byte, damage)| {
                if damage && !bytes.is_empty() {
                    let at = usize::from(at) % bytes.len();
                    bytes[at] ^= byte | 1;
                    bytes.truncate(at + 1 + usize::from(byte) % 8);
                }
                bytes
            },
        )
    }

    fn codecs() -> Vec<Codec> {
        let serializers = || {
            [
                Serializer::Pickle {
                    protocol: -1,
                    restricted: None,
                },
                Serializer::Json,
                Serializer::Msgpack,
            ]
        };
        let mut all = Vec::new();
        for serializer in serializers() {
            all.push(Codec {
                serializer,
                compressor: Compressor::Identity,
                signing: None,
            });
        }
        for serializer in serializers() {
            all.push(Codec {
                serializer,
                compressor: Compressor::Native(crate::codec::compress::compressor(Kind::Zstd)),
                signing: None,
            });
        }
        all
    }

    /// The fuzzing is not vacuous: the embedded interpreter decodes what the codecs wrote.
    #[test]
    fn real_payloads_decode() {
        Python::initialize();
        Python::attach(|py| {
            let wire = bulk(PICKLED);
            let value = redis::parse_redis_value(&wire).unwrap();
            let decoded = convert(py, &codecs().remove(0), value, Reply::Value, b"k").unwrap();
            assert_eq!(decoded.bind(py).repr().unwrap().to_string(), "{'a': 1}");
            let garbage = redis::parse_redis_value(&bulk(b"\x80\x05garbage")).unwrap();
            let err = convert(py, &codecs().remove(0), garbage, Reply::Value, b"k").unwrap_err();
            assert!(err.to_string().contains("SerializerError"), "{err}");
        });
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn wire_bytes_never_panic(bytes in frame()) {
            Python::initialize();
            Python::attach(|py| {
                let Ok(value) = redis::parse_redis_value(&bytes) else { return };
                for codec in codecs() {
                    for (_, kind) in Reply::ALL {
                        let _ = convert(py, &codec, value.clone(), kind, b"key");
                    }
                }
            });
        }
    }
}
