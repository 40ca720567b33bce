//! `django_redis_rs._native`: the module registry. Logic lives in the folders below, one per
//! layer; `errors.rs` is the one error type and its conversion to Python.

// The layers, lowest first: a module uses only those listed before it (and `errors`).
pub mod client;
pub mod client_side_cache;
pub mod codec;
pub mod errors;
pub mod process;
pub mod resp;
pub mod settings;
pub mod telemetry;
pub mod topology;
pub mod transport;

use pyo3::prelude::*;

#[pymodule]
mod _native {
    #[pymodule_export]
    use crate::client::Client;
    #[pymodule_export]
    use crate::codec::standalone::{compress, decompress, dumps, loads};
    #[pymodule_export]
    use crate::errors::py::{
        CompressorError, ConfigError, ConnectionInterrupted, SerializerError, UnsafePickleError,
        ValueTooLargeError,
    };
    #[pymodule_export]
    use crate::telemetry::spans::set_observer;

    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        crate::process::fork::install_hook();
        for (name, kind) in crate::resp::reply::Reply::ALL {
            m.add(name, kind as u8)?;
        }
        m.add(
            "KNOWN_OPTIONS",
            crate::settings::options::KNOWN_OPTIONS.to_vec(),
        )?;
        m.add("__version__", env!("CARGO_PKG_VERSION"))
    }

    use pyo3::prelude::*;
}

#[cfg(test)]
mod layers {
    /// The folders in the order of the declarations above.
    const LAYERS: [&str; 10] = [
        "errors",
        "process",
        "settings",
        "codec",
        "resp",
        "transport",
        "topology",
        "telemetry",
        "client_side_cache",
        "client",
    ];

    fn sources(dir: &std::path::Path, found: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                sources(&path, found);
            } else if path.extension().is_some_and(|e| e == "rs") {
                found.push(path);
            }
        }
    }

    #[test]
    fn each_layer_uses_only_the_layers_below_it() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        sources(&root, &mut files);
        let rank = |name: &str| LAYERS.iter().position(|layer| *layer == name);
        let mut wrong = Vec::new();
        for file in files {
            let relative = file.strip_prefix(&root).unwrap();
            let top = relative.iter().next().unwrap().to_string_lossy();
            let Some(own) = rank(top.trim_end_matches(".rs")) else {
                continue; // lib.rs
            };
            let text = std::fs::read_to_string(&file).unwrap();
            for used in text.split("crate::").skip(1) {
                let name: String = used
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                if rank(&name).is_some_and(|theirs| theirs > own) {
                    wrong.push(format!("{} uses {name}", relative.display()));
                }
            }
        }
        assert!(wrong.is_empty(), "{wrong:?}");
    }
}
