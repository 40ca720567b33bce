//! Pickles of builtin values — dict, list, tuple, set, frozenset, str, bytes, int, float, bool,
//! None — as `pickle.dumps` writes them (protocols 2 to 5), decoded without `pickle.loads`.
//! They are most of what Django projects cache, and a get_many of 100 small dicts spends most
//! of its time unpickling.
//!
//! Any other opcode (a class, a reduce, a buffer), anything malformed, or any value pickle
//! would decode differently (text with lone surrogates, an int beyond 64 bits) returns None,
//! and `pickle.loads` decides: what this accepts it decodes as pickle does, and what it
//! declines behaves exactly as before. Nothing here runs Python code: only builtins are made.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyFrozenSet, PyList, PySet, PyTuple};
use pyo3::IntoPyObjectExt;

/// The value `data` pickles, if it is made of builtins only; None: ask `pickle.loads`.
pub fn loads<'py>(py: Python<'py>, data: &[u8]) -> Option<Bound<'py, PyAny>> {
    let mut reader = Reader { data, at: 0 };
    match reader.take(2)? {
        [0x80, 2..=5] => {} // PROTO
        _ => return None,
    }
    let mut stack: Vec<Bound<'py, PyAny>> = Vec::with_capacity(16);
    let mut marks: Vec<usize> = Vec::with_capacity(4);
    let mut memo: Vec<Bound<'py, PyAny>> = Vec::with_capacity(16);
    loop {
        let opcode = reader.take(1)?[0];
        // What lies below the last MARK is out of reach (pickle: "unexpected MARK found").
        let fence = marks.last().copied().unwrap_or(0);
        let made: Bound<'py, PyAny> = match opcode {
            b'.' => {
                // STOP: one value, every MARK closed.
                return (stack.len() == 1 && marks.is_empty()).then(|| stack.pop())?;
            }
            0x95 => {
                // FRAME: the bytes it announces must be there (pickle checks that much).
                let len = usize::try_from(reader.uint(8)?).ok()?;
                reader.data.get(reader.at..)?.get(..len)?;
                continue;
            }
            b'N' => py.None().into_bound(py),
            0x88 => true.into_bound_py_any(py).ok()?,
            0x89 => false.into_bound_py_any(py).ok()?,
            b'K' => reader.uint(1)?.into_bound_py_any(py).ok()?, // BININT1
            b'M' => reader.uint(2)?.into_bound_py_any(py).ok()?, // BININT2
            b'J' => i32::from_le_bytes(reader.array()?)
                .into_bound_py_any(py)
                .ok()?, // BININT
            0x8a => {
                // LONG1: n bytes of two's complement, little-endian; up to 64 bits here.
                let n = reader.uint(1)? as usize;
                let bytes = reader.take(n)?;
                if n > 8 {
                    return None;
                }
                let fill = if bytes.last().is_some_and(|b| b & 0x80 != 0) {
                    0xff
                } else {
                    0
                };
                let mut full = [fill; 8];
                full[..n].copy_from_slice(bytes);
                i64::from_le_bytes(full).into_bound_py_any(py).ok()?
            }
            b'G' => f64::from_be_bytes(reader.array()?)
                .into_bound_py_any(py)
                .ok()?, // BINFLOAT
            0x8c | b'X' | 0x8d => {
                // SHORT_BINUNICODE, BINUNICODE, BINUNICODE8: strict UTF-8 only (pickle
                // passes lone surrogates, which Rust's str cannot hold).
                let len = reader.length(opcode)?;
                text(py, reader.take(len)?)?
            }
            b'C' | b'B' | 0x8e => {
                // SHORT_BINBYTES, BINBYTES, BINBYTES8
                let len = reader.length(opcode)?;
                PyBytes::new(py, reader.take(len)?).into_any()
            }
            b'}' => PyDict::new(py).into_any(),
            b']' => PyList::empty(py).into_any(),
            b')' => PyTuple::empty(py).into_any(),
            0x8f => PySet::empty(py).ok()?.into_any(),
            b'(' => {
                marks.push(stack.len());
                continue;
            }
            b't' | 0x91 | b'e' | b'u' | 0x90 => {
                // Items since the MARK: a tuple, a frozenset, or added to the container below.
                let mark = marks.pop().filter(|&mark| mark <= stack.len())?;
                match opcode {
                    b't' => PyTuple::new(py, stack.drain(mark..)).ok()?.into_any(),
                    0x91 => PyFrozenSet::new(py, stack.drain(mark..)).ok()?.into_any(),
                    _ => {
                        // The container sits just below the mark, above the mark before it.
                        if mark <= marks.last().copied().unwrap_or(0) {
                            return None;
                        }
                        fill(&stack, mark, opcode)?;
                        stack.truncate(mark);
                        continue;
                    }
                }
            }
            0x85..=0x87 => {
                // TUPLE1, TUPLE2, TUPLE3
                let n = usize::from(opcode - 0x84);
                let start = stack.len().checked_sub(n).filter(|&start| start >= fence)?;
                PyTuple::new(py, stack.drain(start..)).ok()?.into_any()
            }
            b'a' | b's' => {
                // APPEND one item; SETITEM one pair.
                let n = if opcode == b'a' { 1 } else { 2 };
                let start = stack.len().checked_sub(n).filter(|&start| start > fence)?;
                fill(&stack, start, opcode)?;
                stack.truncate(start);
                continue;
            }
            0x94 | b'q' | b'r' => {
                // MEMOIZE, BINPUT, LONG_BINPUT: remember the top of the stack.
                let at = match opcode {
                    0x94 => memo.len(),
                    b'q' => reader.uint(1)? as usize,
                    _ => reader.uint(4)? as usize,
                };
                if stack.len() <= fence {
                    return None;
                }
                let top = stack.last()?.clone();
                match at.cmp(&memo.len()) {
                    std::cmp::Ordering::Less => memo[at] = top,
                    std::cmp::Ordering::Equal => memo.push(top),
                    std::cmp::Ordering::Greater => return None,
                }
                continue;
            }
            b'h' => memo.get(reader.uint(1)? as usize)?.clone(), // BINGET
            b'j' => memo.get(reader.uint(4)? as usize)?.clone(), // LONG_BINGET
            _ => return None,
        };
        stack.push(made);
    }
}

/// A str from strict UTF-8, decoded once by Python (None for anything else, such as the lone
/// surrogates pickle lets through: pickle decides those).
fn text<'py>(py: Python<'py>, bytes: &[u8]) -> Option<Bound<'py, PyAny>> {
    let len = pyo3::ffi::Py_ssize_t::try_from(bytes.len()).ok()?;
    // SAFETY: the pointer and length describe `bytes`, alive for the call; a null errors
    // argument means "strict"; the result is a new reference or null with an exception set.
    let made = unsafe {
        let ptr = pyo3::ffi::PyUnicode_DecodeUTF8(bytes.as_ptr().cast(), len, std::ptr::null());
        Bound::from_owned_ptr_or_err(py, ptr)
    };
    made.ok()
}

/// Add the items from `start` on to the list (APPENDS, APPEND), dict (SETITEMS, SETITEM) or
/// set (ADDITEMS) just below them; None when it is not that kind of container.
fn fill(stack: &[Bound<'_, PyAny>], start: usize, opcode: u8) -> Option<()> {
    let (target, items) = (stack.get(start.checked_sub(1)?)?, stack.get(start..)?);
    match opcode {
        b'e' | b'a' => {
            let list = target.cast::<PyList>().ok()?;
            items.iter().try_for_each(|item| list.append(item)).ok()
        }
        b'u' | b's' => {
            let dict = target.cast::<PyDict>().ok()?;
            if items.len() % 2 != 0 {
                return None;
            }
            let mut pairs = items.chunks_exact(2);
            pairs
                .try_for_each(|pair| dict.set_item(&pair[0], &pair[1]))
                .ok()
        }
        _ => {
            let set = target.cast::<PySet>().ok()?;
            items.iter().try_for_each(|item| set.add(item)).ok()
        }
    }
}

struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let bytes = self.data.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(bytes)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    /// An unsigned little-endian integer of `n` bytes (n ≤ 8).
    fn uint(&mut self, n: usize) -> Option<u64> {
        let mut full = [0u8; 8];
        full[..n].copy_from_slice(self.take(n)?);
        Some(u64::from_le_bytes(full))
    }

    /// The length before a str's or bytes' data: 1, 4 or 8 bytes, by opcode.
    fn length(&mut self, opcode: u8) -> Option<usize> {
        let width = match opcode {
            0x8c | b'C' => 1,
            b'X' | b'B' => 4,
            _ => 8,
        };
        usize::try_from(self.uint(width)?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn call<'py>(py: Python<'py>, name: &str, arg: &Bound<'py, PyAny>) -> Bound<'py, PyAny> {
        let function = py.import("pickle").unwrap().getattr(name).unwrap();
        function.call1((arg,)).unwrap()
    }

    fn pickled(py: Python<'_>, value: &Bound<'_, PyAny>, protocol: i32) -> Vec<u8> {
        let dumps = py.import("pickle").unwrap().getattr("dumps").unwrap();
        dumps
            .call1((value, protocol))
            .unwrap()
            .cast::<PyBytes>()
            .unwrap()
            .as_bytes()
            .to_vec()
    }

    /// The same value: equal, of the same types all the way down, sharing the same objects
    /// (recursive ones too) — which is what pickling both again to the same bytes shows.
    fn same(a: &Bound<'_, PyAny>, b: &Bound<'_, PyAny>) -> bool {
        let py = a.py();
        pickled(py, a, 4) == pickled(py, b, 4)
    }

    #[test]
    fn decodes_builtins_as_pickle_does_and_declines_the_rest() {
        Python::initialize();
        Python::attach(|py| {
            let values = [
                "{'user': 42, 'name': 'alice', 'roles': ['a', 'b'], 'ok': True}",
                "[{'id': i, 'name': 'x' * i, 'score': i / 3} for i in range(30)]",
                "('é' * 300, b'\\x00' * 70000, -2**63, 2**63 - 1, -1, 255, 65536, 1.5e300, None, False)",
                "[(), (1,), (1, 2), (1, 2, 3), {1, 'a'}, frozenset({2, 'b'}), set(), {}, [[]] * 3]",
                "(lambda x: [x, x, {'k': x}])([1, 2])",
                "'x' * 2000",
                "''",
            ];
            for protocol in 2..=5 {
                for source in values {
                    // Bytes need protocol 3 and sets protocol 4: before, pickle writes them as a
                    // call (reduce), which is pickle's to decode.
                    if protocol == 2 && source.contains("b'")
                        || protocol < 4 && source.contains("set")
                    {
                        continue;
                    }
                    let value = py
                        .eval(&std::ffi::CString::new(source).unwrap(), None, None)
                        .unwrap();
                    let data = pickled(py, &value, protocol);
                    let ours = loads(py, &data).unwrap_or_else(|| panic!("declined {source}"));
                    assert!(
                        same(&ours, &call(py, "loads", PyBytes::new(py, &data).as_any())),
                        "{source}"
                    );
                }
                // Shared references stay shared.
                let shared = py.eval(c"(lambda x: [x, x])([1])", None, None).unwrap();
                let ours = loads(py, &pickled(py, &shared, protocol)).unwrap();
                assert!(ours.get_item(0).unwrap().is(ours.get_item(1).unwrap()));
                // Not builtins, or not what Rust holds: pickle decides.
                for source in [
                    "'\\ud800'",
                    "2**64",
                    "__import__('decimal').Decimal(1)",
                    "bytearray(b'a')",
                ] {
                    let value = py
                        .eval(&std::ffi::CString::new(source).unwrap(), None, None)
                        .unwrap();
                    assert!(
                        loads(py, &pickled(py, &value, protocol)).is_none(),
                        "{source}"
                    );
                }
            }
            assert!(loads(py, b"\x80\x05\x8c\x05ab").is_none()); // truncated
            assert!(loads(py, b"").is_none());
            assert!(loads(py, b"(K\x01.").is_none()); // protocol 0/1: pickle's
        });
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        /// Whatever the bytes — a value's pickle cut short, or with bytes flipped or added —
        /// a decoded value is the one pickle.loads gives.
        #[test]
        fn agrees_with_pickle(pick in 0..4usize, protocol in 2..=5i32, cut in any::<prop::sample::Index>(),
                              flip in any::<prop::sample::Index>(), byte in any::<u8>(),
                              garbage in proptest::collection::vec(any::<u8>(), 0..40)) {
            Python::initialize();
            Python::attach(|py| {
                let sources = [
                    c"{'user': 42, 'name': 'alice', 'roles': ['a', 'b'], 'ok': True, 'f': 0.5}",
                    c"[(1, 2), {3}, frozenset({4}), b'xy', -300, 70000, None]",
                    c"(lambda x: {'a': x, 'b': [x, (x,)]})(['s'])",
                    c"'text ' * 10",
                ];
                let value = py.eval(sources[pick], None, None).unwrap();
                let data = pickled(py, &value, protocol);
                let mut flipped = data.clone();
                flipped[flip.index(data.len())] = byte;
                let mut extended = data.clone();
                extended.extend(&garbage);
                let cut = data[..cut.index(data.len() + 1)].to_vec();
                for bytes in [cut, flipped, extended, garbage.clone()] {
                    if let Some(ours) = loads(py, &bytes) {
                        let loads = py.import("pickle").unwrap().getattr("loads").unwrap();
                        let theirs = loads.call1((PyBytes::new(py, &bytes),));
                        prop_assert!(theirs.is_ok(), "pickle refuses what we decoded: {:?}", bytes);
                        prop_assert!(same(&ours, &theirs.unwrap()), "{:?}", bytes);
                    }
                }
                Ok(())
            })?;
        }
    }
}
