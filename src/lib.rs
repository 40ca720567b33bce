//! `django_redis_rs._native`: the module registry. Logic lives in the sibling modules.

pub mod aio;
pub mod breaker;
pub mod client;
pub mod client_config;
pub mod client_side_cache;
pub mod cluster;
pub mod codec;
pub mod config;
pub mod connection;
pub mod errors;
pub mod fork;
pub mod metrics;
pub mod options;
pub mod parse;
pub mod pool;
pub mod reply;
pub mod resend;
pub mod resp;
pub mod ring;
pub mod runtime;
pub mod sentinel;
pub mod telemetry;
pub mod tls;
pub mod topology;
pub mod wire;

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
    use crate::telemetry::set_observer;

    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        crate::fork::install_hook();
        for (name, kind) in crate::reply::Reply::ALL {
            m.add(name, kind as u8)?;
        }
        m.add("KNOWN_OPTIONS", crate::options::KNOWN_OPTIONS.to_vec())?;
        m.add("__version__", env!("CARGO_PKG_VERSION"))
    }

    use pyo3::prelude::*;
}
