//! One error type for the whole crate, classified once, converted to Python in one place.

use std::fmt;

/// What went wrong with a request or the settings, in the terms the Python layer cares about.
/// A value's own faults are not among them: the codec runs with the GIL held and raises
/// `SerializerError` / `CompressorError` itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The server could not be reached, or the connection broke mid-command.
    Connection,
    /// The server did not answer within `SOCKET_TIMEOUT` (or connect within `SOCKET_CONNECT_TIMEOUT`).
    Timeout,
    /// Every connection of the pool is in use and none came back within the pool timeout.
    PoolExhausted,
    /// The server answered with an error (`WRONGTYPE`, `ERR value is not an integer`, ...).
    Response,
    /// A reply could not be read: malformed, not what the protocol allows (an error line that
    /// is not UTF-8), or of an unexpected shape. The connection may still hold the rest of it,
    /// so it is dropped, never reused.
    Protocol,
    /// `LOCATION` or `OPTIONS` are invalid.
    Config,
}

#[derive(Clone, Debug)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
    /// For a server's error reply (`Response`): what it says, read once where the reply was
    /// read, so that no decision matches message text.
    pub refusal: Option<Refusal>,
    /// For a configuration error (`Config`): the setting at fault, given to Python as the
    /// exception's `option`, `kind` and `names`.
    pub setting: Option<Box<Misconfigured>>,
}

/// The setting a configuration error is about, and how it is wrong: what the system checks
/// report (their ids follow `kind`), never read back from the message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Misconfigured {
    /// `LOCATION`, `SOCKET_TIMEOUT`, `CONNECTION_POOL_KWARGS['timeout']`, ...: the label the
    /// message quotes.
    pub option: &'static str,
    pub kind: ConfigKind,
    /// For `Unknown`: the names not known.
    pub names: Vec<String>,
    /// For `Unknown`: the message without its list of what is supported (the check's
    /// headline; the list goes to its hint).
    pub summary: Option<String>,
}

impl Misconfigured {
    /// The top-level setting (`CONNECTION_POOL_KWARGS` for `CONNECTION_POOL_KWARGS['timeout']`).
    pub fn top_level(&self) -> &'static str {
        self.option
            .split_once('[')
            .map_or(self.option, |(top, _)| top)
    }

    /// The key inside it that is at fault (`timeout`), if the label names one.
    pub fn key(&self) -> Option<&'static str> {
        let (_, rest) = self.option.split_once('[')?;
        Some(rest.trim_end_matches(']').trim_matches(['\'', '"']))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigKind {
    /// `LOCATION` is not a list of valid server URLs.
    Location,
    /// Options (or pool arguments) this backend does not know: typos, most often.
    Unknown,
    /// Not a number of seconds in range.
    Timeout,
    /// Any other invalid value.
    Value,
}

impl ConfigKind {
    /// The name Python's `SettingError.kind` uses.
    pub fn name(self) -> &'static str {
        match self {
            Self::Location => "location",
            Self::Unknown => "unknown",
            Self::Timeout => "timeout",
            Self::Value => "value",
        }
    }
}

/// What a server's error reply tells the client to do, from its first word.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// `MOVED slot host:port`: the slot lives on that node now.
    Moved(NodeAddress),
    /// `ASK slot host:port`: this request goes to that node (importing the slot), after `ASKING`.
    Ask(NodeAddress),
    /// `TRYAGAIN`: a multi-key request met a slot whose keys are split by a migration.
    TryAgain,
    /// `CLUSTERDOWN`: the cluster cannot serve the slot now (a failover is under way).
    ClusterDown,
    /// `LOADING`: the node is loading its dataset (just restarted, or a replica resyncing).
    Loading,
    /// `MASTERDOWN`: a replica lost its primary and refuses reads of stale data.
    MasterDown,
    /// `NOSCRIPT`: the script is not in the server's cache (`EVALSHA` before `SCRIPT LOAD`).
    NoScript,
    /// `WRONGTYPE`: the key holds another kind of value.
    WrongType,
    /// `READONLY`: a write reached a replica (the primary it was sent to was demoted).
    ReadOnly,
    /// `OOM`: the server is at `maxmemory` and its policy (`noeviction`) refuses writes.
    OutOfMemory,
    /// `NOPERM`: the ACL user may not run this command or touch this key.
    NoPermission,
    /// `EXECABORT`: a transaction was discarded because one of its commands was refused.
    ExecAbort,
    /// `CROSSSLOT`: a multi-key request's keys hash to different cluster slots.
    CrossSlot,
    /// `NOAUTH`, `WRONGPASS`, and the `ERR` texts of a refused password.
    Authentication,
    /// `ERR wrong number of arguments for 'auth' command`: a server before Redis 6, which knows
    /// no ACL users, refused `AUTH user password` (the handshake then sends `AUTH password`).
    AuthArity,
    /// `ERR max number of clients reached`: the server refused the connection at `maxclients`
    /// (and closes it).
    MaxClients,
    /// Anything else (`ERR ...`): the caller's to see.
    Other,
}

/// A node named by a redirect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeAddress {
    pub host: String,
    pub port: u16,
}

impl Refusal {
    /// Read an error reply's words: its code, then for a redirect the slot and the node. A
    /// redirect that names no valid node (a port out of range) is `Other`: never followed.
    /// This is the one place that reads a reply's text, and it reads what redis-py's parser
    /// reads (`_parsers/base.py`, `EXCEPTION_CLASSES`): the first word, and for `ERR` only
    /// the exact texts that redis-py gives a class of its own.
    fn parse(message: &str) -> Self {
        let mut words = message.split_whitespace();
        let code = words.next().unwrap_or_default();
        let node = |mut words: std::str::SplitWhitespace<'_>| {
            let _slot = words.next()?;
            let (host, port) = words.next()?.rsplit_once(':')?;
            Some(NodeAddress {
                host: host.trim_matches(['[', ']']).to_owned(),
                port: port.parse().ok()?,
            })
        };
        match code {
            "MOVED" => node(words).map_or(Self::Other, Self::Moved),
            "ASK" => node(words).map_or(Self::Other, Self::Ask),
            "TRYAGAIN" => Self::TryAgain,
            "CLUSTERDOWN" => Self::ClusterDown,
            "LOADING" => Self::Loading,
            "MASTERDOWN" => Self::MasterDown,
            "NOSCRIPT" => Self::NoScript,
            "WRONGTYPE" => Self::WrongType,
            "READONLY" => Self::ReadOnly,
            "OOM" => Self::OutOfMemory,
            "NOPERM" => Self::NoPermission,
            "EXECABORT" => Self::ExecAbort,
            "CROSSSLOT" => Self::CrossSlot,
            "NOAUTH" | "WRONGPASS" => Self::Authentication,
            "ERR" => match message.split_once(' ').map_or("", |(_, rest)| rest) {
                "max number of clients reached" => Self::MaxClients,
                "wrong number of arguments for 'auth' command"
                | "wrong number of arguments for 'AUTH' command" => Self::AuthArity,
                "invalid password"
                | "Client sent AUTH, but no password is set"
                | "AUTH <password> called without any password configured for the default user. \
                   Are you sure your configuration is correct?" => Self::Authentication,
                _ => Self::Other,
            },
            _ => Self::Other,
        }
    }

    /// The error's kind: a refusal that means the connection is unusable (`maxclients`, which
    /// the server closes; a missing or refused password) is a connection failure, as redis-py
    /// classes it (its `ConnectionError` and `AuthenticationError`); the others are replies.
    fn kind(&self) -> ErrorKind {
        match self {
            Self::MaxClients | Self::Authentication => ErrorKind::Connection,
            _ => ErrorKind::Response,
        }
    }

    /// The redis-py class this refusal is raised as (`django_redis_rs.exceptions` has a
    /// subclass of each, of the same name).
    pub fn python_class(&self) -> &'static str {
        match self {
            Self::Moved(_) | Self::Ask(_) | Self::WrongType | Self::Other => "ResponseError",
            Self::TryAgain => "TryAgainError",
            Self::ClusterDown => "ClusterDownError",
            Self::Loading => "BusyLoadingError",
            Self::MasterDown => "MasterDownError",
            Self::NoScript => "NoScriptError",
            Self::ReadOnly => "ReadOnlyError",
            Self::OutOfMemory => "OutOfMemoryError",
            Self::NoPermission => "NoPermissionError",
            Self::ExecAbort => "ExecAbortError",
            Self::CrossSlot => "ClusterCrossSlotError",
            Self::Authentication => "AuthenticationError",
            Self::AuthArity => "AuthenticationWrongNumberOfArgsError",
            Self::MaxClients => "ConnectionError",
        }
    }

    /// Whether redis-py's class for it is a `ConnectionError`.
    fn is_connection_class(&self) -> bool {
        matches!(
            self,
            Self::Loading | Self::Authentication | Self::MaxClients
        )
    }
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            refusal: None,
            setting: None,
        }
    }

    /// A server's error reply, worded as the server worded it.
    fn refused(message: String) -> Self {
        let refusal = Refusal::parse(&message);
        Self {
            kind: refusal.kind(),
            refusal: Some(refusal),
            setting: None,
            message,
        }
    }

    /// This error, met while a new connection was being set up (`AUTH`, `SELECT`): a refusal
    /// there makes the connection unusable, like a refused socket, whatever the server said
    /// (redis-py raises `ConnectionError`, or `AuthenticationError` for a password). `server`
    /// names the node.
    pub fn in_handshake(self, server: &str) -> Self {
        match self.refusal {
            Some(_) => Self {
                kind: ErrorKind::Connection,
                message: format!("{server}: {}", self.message),
                ..self
            },
            None => self,
        }
    }

    /// The name of the redis-py class this error is raised as, for the failures that reach
    /// Python as `ConnectionInterrupted` (its `__cause__` is of this class).
    pub fn python_class(&self) -> &'static str {
        match (self.kind, &self.refusal) {
            (ErrorKind::Timeout, _) => "TimeoutError",
            (ErrorKind::Response, Some(refusal)) => refusal.python_class(),
            (ErrorKind::Response, None) => "ResponseError",
            (_, Some(refusal)) if refusal.is_connection_class() => refusal.python_class(),
            _ => "ConnectionError",
        }
    }

    /// A configuration error about `option` (of kind `Location` for LOCATION, else `Value`).
    pub fn config(option: &'static str, message: impl Into<String>) -> Self {
        let kind = match option {
            "LOCATION" => ConfigKind::Location,
            _ => ConfigKind::Value,
        };
        Self::misconfigured(option, kind, Vec::new(), message)
    }

    pub fn misconfigured(
        option: &'static str,
        kind: ConfigKind,
        names: Vec<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            setting: Some(Box::new(Misconfigured {
                option,
                kind,
                names,
                summary: None,
            })),
            ..Self::new(ErrorKind::Config, message)
        }
    }

    /// This configuration error with `summary`, its message without the details.
    pub fn summarised(mut self, summary: String) -> Self {
        if let Some(setting) = self.setting.as_mut() {
            setting.summary = Some(summary);
        }
        self
    }

    /// Classify a redis-rs error; `server` names the node (never with credentials). Only a
    /// server's error reply is a `Response`: anything else that went wrong while sending,
    /// reading or parsing leaves the connection in an unknown state.
    pub fn from_redis(err: &redis::RedisError, server: &str) -> Self {
        if err.kind() == redis::ErrorKind::AuthenticationFailed {
            // redis-rs's handshake keeps only that the password was refused.
            return Self {
                refusal: Some(Refusal::Authentication),
                ..Self::new(ErrorKind::Connection, "the server refused the credentials")
            };
        }
        let kind = if err.is_timeout() {
            ErrorKind::Timeout
        } else if err.is_io_error() || err.is_connection_refusal() || err.is_connection_dropped() {
            ErrorKind::Connection
        } else if matches!(
            err.kind(),
            redis::ErrorKind::Server(_) | redis::ErrorKind::Extension
        ) {
            ErrorKind::Response
        } else {
            ErrorKind::Protocol
        };
        let message = match kind {
            ErrorKind::Response => match (err.code(), err.detail()) {
                (Some(code), Some(detail)) => format!("{code} {detail}"),
                _ => err.to_string(),
            },
            ErrorKind::Protocol => {
                format!("{server}: the reply could not be read ({err}); connection dropped")
            }
            _ => format!("{server}: {err}"),
        };
        match kind {
            ErrorKind::Response => Self::refused(message),
            _ => Self::new(kind, message),
        }
    }

    /// A server's error reply (`WRONGTYPE ...`, `ERR ...`), as the server worded it.
    pub fn from_server(err: &redis::ServerError) -> Self {
        let message = format!("{} {}", err.code(), err.details().unwrap_or_default());
        Self::refused(message.trim_end().to_owned())
    }

    /// Errors after which the connection may hold a half-read reply or be dead.
    pub fn breaks_connection(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::Connection | ErrorKind::Timeout | ErrorKind::Protocol
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// The largest string Redis accepts (`proto-max-bulk-len`'s default): a longer key or value would
/// only be refused by the server after being sent whole, and would cost the connection.
pub const MAX_BULK_LEN: usize = 512 * 1024 * 1024;

/// Refuse, before sending, an argument Redis would refuse.
pub fn check_bulk_len(len: usize, what: impl FnOnce() -> String) -> pyo3::PyResult<()> {
    if len > MAX_BULK_LEN {
        return Err(py::ValueTooLargeError::new_err(format!(
            "{} is {len} bytes, over Redis's limit of {MAX_BULK_LEN} bytes (512 MB); not sent",
            what()
        )));
    }
    Ok(())
}

/// The Python side of the errors: exception classes and the single conversion.
///
/// The classes that django-redis code catches as redis-py's (`except
/// redis.exceptions.ResponseError`, `ConnectionError`, `TimeoutError`) are subclasses of
/// redis-py's, defined in `django_redis_rs.exceptions`, which imports redis-py only when one is
/// first needed; the others are made here.
pub mod py {
    use super::{ConfigKind, Error, ErrorKind, Misconfigured};
    use pyo3::exceptions::{PyConnectionError, PyException, PyTimeoutError, PyValueError};
    use pyo3::prelude::*;
    use pyo3::sync::PyOnceLock;
    use pyo3::types::PyType;
    use pyo3::PyTypeInfo;

    pyo3::create_exception!(
        django_redis_rs.exceptions,
        ConnectionInterrupted,
        PyException,
        "The Redis server could not be reached or stopped answering; `__cause__` says which server and why."
    );
    pyo3::create_exception!(
        django_redis_rs.exceptions,
        SerializerError,
        PyException,
        "A value could not be serialized or deserialized."
    );
    pyo3::create_exception!(
        django_redis_rs.exceptions,
        UnsafePickleError,
        SerializerError,
        "With SAFE_PICKLE: a stored pickle would load a class outside the allowed ones (it names \
         it; nothing was run), or a value to store would."
    );
    pyo3::create_exception!(
        django_redis_rs.exceptions,
        CompressorError,
        PyException,
        "A value could not be compressed or decompressed."
    );
    pyo3::create_exception!(
        django_redis_rs.exceptions,
        ValueTooLargeError,
        PyValueError,
        "A key or value is larger than Redis accepts (512 MB); nothing was sent."
    );
    pyo3::create_exception!(
        django_redis_rs.exceptions,
        ConfigError,
        PyValueError,
        "LOCATION or OPTIONS are invalid (the cache turns this into ImproperlyConfigured)."
    );

    impl From<Error> for PyErr {
        /// Every failure of the server or the connection, refusals included, is a
        /// `ConnectionInterrupted` whose `__cause__` is the redis-py class redis-py would raise
        /// (`Error::python_class`): django-redis turns redis-py's `ConnectionError`,
        /// `TimeoutError` and `ResponseError` into `ConnectionInterrupted` the same way, so
        /// `IGNORE_EXCEPTIONS` swallows them all and without it the cause is raised.
        fn from(err: Error) -> PyErr {
            Python::attach(|py| match err.kind {
                ErrorKind::Connection
                | ErrorKind::PoolExhausted
                | ErrorKind::Timeout
                | ErrorKind::Protocol
                | ErrorKind::Response => {
                    let fallback = match err.kind {
                        ErrorKind::Timeout => PyTimeoutError::type_object,
                        ErrorKind::Response => PyException::type_object,
                        _ => PyConnectionError::type_object,
                    };
                    let class = redis_py_class(py, err.python_class(), fallback);
                    let cause = PyErr::from_type(class, err.message.clone());
                    let outer = ConnectionInterrupted::new_err(err.message);
                    outer.set_cause(py, Some(cause));
                    outer
                }
                ErrorKind::Config => setting_error(py, err),
            })
        }
    }

    /// `django_redis_rs.exceptions.SettingError` (an `ImproperlyConfigured`) with the fields the
    /// system checks report; `ConfigError` where the package cannot be imported (Rust's tests).
    fn setting_error(py: Python<'_>, err: Error) -> PyErr {
        let setting = err.setting.unwrap_or_else(|| {
            Box::new(Misconfigured {
                option: "OPTIONS",
                kind: ConfigKind::Value,
                names: Vec::new(),
                summary: None,
            })
        });
        let class = redis_py_class(py, "SettingError", ConfigError::type_object);
        let args = (
            setting.top_level(),
            err.message.as_str(),
            setting.kind.name(),
            setting.names.clone(),
            setting.key(),
            setting.summary.as_deref(),
        );
        match class.call1(args) {
            Ok(refused) => PyErr::from_value(refused),
            Err(_) => ConfigError::new_err(err.message),
        }
    }

    /// `django_redis_rs.exceptions.<name>`, a subclass of redis-py's class of that name; the
    /// builtin `fallback` where the package or redis-py cannot be imported (Rust's own tests
    /// run an embedded interpreter without them).
    pub fn redis_py_class<'py>(
        py: Python<'py>,
        name: &str,
        fallback: fn(Python<'py>) -> Bound<'py, PyType>,
    ) -> Bound<'py, PyType> {
        static MODULE: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
        MODULE
            .get_or_try_init(py, || {
                py.import("django_redis_rs.exceptions").map(Bound::unbind)
            })
            .and_then(|module| Ok(module.bind(py).getattr(name)?.cast_into::<PyType>()?))
            .unwrap_or_else(|_| fallback(py))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_replies_are_classified_once() {
        let node = |host: &str, port| NodeAddress {
            host: host.into(),
            port,
        };
        let cases = [
            (
                "MOVED 3999 127.0.0.1:6381",
                Refusal::Moved(node("127.0.0.1", 6381)),
            ),
            ("ASK 3999 [::1]:7000", Refusal::Ask(node("::1", 7000))),
            (
                "TRYAGAIN Multiple keys request during rehashing",
                Refusal::TryAgain,
            ),
            ("CLUSTERDOWN The cluster is down", Refusal::ClusterDown),
            (
                "READONLY You can't write against a read only replica.",
                Refusal::ReadOnly,
            ),
            ("WRONGTYPE Operation against a key", Refusal::WrongType),
            (
                "LOADING Redis is loading the dataset in memory",
                Refusal::Loading,
            ),
            ("MASTERDOWN Link with MASTER is down", Refusal::MasterDown),
            ("NOSCRIPT No matching script.", Refusal::NoScript),
            (
                "OOM command not allowed when used memory > 'maxmemory'.",
                Refusal::OutOfMemory,
            ),
            ("NOPERM User u has no permissions", Refusal::NoPermission),
            ("EXECABORT Transaction discarded", Refusal::ExecAbort),
            ("CROSSSLOT Keys in request don't hash", Refusal::CrossSlot),
            ("NOAUTH Authentication required.", Refusal::Authentication),
            (
                "WRONGPASS invalid username-password pair",
                Refusal::Authentication,
            ),
            ("ERR invalid password", Refusal::Authentication),
            (
                "ERR AUTH <password> called without any password configured for the default \
                 user. Are you sure your configuration is correct?",
                Refusal::Authentication,
            ),
            ("ERR max number of clients reached", Refusal::MaxClients),
            (
                "ERR wrong number of arguments for 'auth' command",
                Refusal::AuthArity,
            ),
            // redis-py matches ERR texts exactly: anything more is an ordinary refusal.
            ("ERR max number of clients reached!", Refusal::Other),
            (
                "ERR wrong number of arguments for 'get' command",
                Refusal::Other,
            ),
            ("ERR unknown command 'X'", Refusal::Other),
            // A redirect to a port out of range is never followed (70000 as u16 is 4464).
            ("MOVED 1 10.0.0.1:70000", Refusal::Other),
            ("ASK 1", Refusal::Other),
        ];
        for (message, refusal) in cases {
            assert_eq!(Refusal::parse(message), refusal, "{message}");
        }
    }

    #[test]
    fn refusals_take_redis_pys_classes_and_kinds() {
        let maxclients = Error::refused("ERR max number of clients reached".into());
        assert_eq!(maxclients.kind, ErrorKind::Connection);
        assert_eq!(maxclients.python_class(), "ConnectionError");
        let oom = Error::refused("OOM command not allowed".into());
        assert_eq!(oom.kind, ErrorKind::Response);
        assert_eq!(oom.python_class(), "OutOfMemoryError");
        let loading = Error::refused("LOADING Redis is loading".into());
        assert_eq!(loading.python_class(), "BusyLoadingError");
        // In the handshake, any refusal makes the connection unusable: a ConnectionError,
        // or redis-py's AuthenticationError for a password.
        let select = Error::refused("ERR DB index is out of range".into()).in_handshake("s");
        assert_eq!(select.kind, ErrorKind::Connection);
        assert_eq!(select.python_class(), "ConnectionError");
        let auth = Error::refused("WRONGPASS invalid username-password pair".into());
        assert_eq!(auth.in_handshake("s").python_class(), "AuthenticationError");
        assert_eq!(
            Error::new(ErrorKind::Timeout, "t").python_class(),
            "TimeoutError"
        );
    }
}
