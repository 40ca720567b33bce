//! The blocking connection the pools hold: our own socket (TCP, unix, or TLS through rustls),
//! replies read by `resp/parse.rs`, and a deadline per exchange. `SOCKET_TIMEOUT` bounds an
//! exchange from its request's first byte to its last reply's, however slowly the bytes come
//! (a socket timeout alone bounds each read, and a server sending a byte at a time resets it).
//!
//! The socket's own timeout does the waiting; it is shortened to what is left of the deadline
//! only when a reply takes more than one read, so a one-read exchange costs no extra system
//! call.

use crate::errors::{Error, ErrorKind, Result};
use crate::resp::parse::{refused_then_closed, ReplyReader};
use redis::Value;
use rustls::{ClientConfig, ClientConnection};
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How far the socket's timeout may differ from what is left of the deadline before it is set
/// again.
const SLACK: Duration = Duration::from_millis(1);
/// The read buffer's first size; it grows for larger replies.
const FIRST_BUFFER: usize = 16 * 1024;

enum Socket {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Socket {
    fn set_timeouts(&self, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            Socket::Tcp(s) => s
                .set_read_timeout(timeout)
                .and(s.set_write_timeout(timeout)),
            Socket::Unix(s) => s
                .set_read_timeout(timeout)
                .and(s.set_write_timeout(timeout)),
        }
    }
}

impl Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.read(buf),
            Socket::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Socket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.write(buf),
            Socket::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Where to connect.
pub enum Endpoint<'a> {
    Tcp(&'a str, u16),
    Unix(&'a Path),
    Tls(&'a str, u16, &'a Arc<ClientConfig>),
}

pub struct Conn {
    socket: Socket,
    /// TLS state; its records travel through `socket`, one read or write at a time, so that
    /// every wait is bounded by the deadline.
    tls: Option<Box<ClientConnection>>,
    /// Bytes read and not yet parsed: `buf[start..end]`.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    reader: ReplyReader,
    /// `SOCKET_TIMEOUT`: each exchange's budget (None: wait forever).
    timeout: Option<Duration>,
    /// The socket's timeout now.
    armed: Option<Duration>,
    /// When the exchange under way must end.
    deadline: Option<Instant>,
    /// What the connection is to, for messages (never with credentials).
    describe: String,
    open: bool,
}

fn tcp(host: &str, port: u16, timeout: Option<Duration>) -> io::Result<TcpStream> {
    let mut failure = None;
    for addr in (host, port).to_socket_addrs()? {
        let connected = match timeout {
            Some(timeout) => TcpStream::connect_timeout(&addr, timeout),
            None => TcpStream::connect(addr),
        };
        match connected {
            Ok(stream) => return Ok(stream),
            Err(e) => failure = Some(e),
        }
    }
    Err(failure.unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address found")))
}

impl Conn {
    /// Connect, finish the TLS handshake and run `setup` (`AUTH`, `SELECT`: `setup_commands`
    /// of them), all within `connect_timeout`; returns the setup's replies. Exchanges then
    /// have `socket_timeout` each.
    pub fn open(
        endpoint: Endpoint<'_>,
        connect_timeout: Option<Duration>,
        socket_timeout: Option<Duration>,
        setup: (&[u8], usize),
        describe: String,
    ) -> Result<(Self, Vec<Value>)> {
        let failed = |e: io::Error| Error::new(io_kind(&e), format!("{describe}: {e}"));
        let (socket, tls) = match endpoint {
            Endpoint::Tcp(host, port) => {
                let stream = tcp(host, port, connect_timeout).map_err(failed)?;
                // Small request/reply round trips: Nagle's algorithm would only add latency.
                stream.set_nodelay(true).map_err(failed)?;
                (Socket::Tcp(stream), None)
            }
            Endpoint::Unix(path) => (
                Socket::Unix(UnixStream::connect(path).map_err(failed)?),
                None,
            ),
            Endpoint::Tls(host, port, config) => {
                let stream = tcp(host, port, connect_timeout).map_err(failed)?;
                stream.set_nodelay(true).map_err(failed)?;
                let name = crate::transport::tls::server_name(host)?;
                let tls = ClientConnection::new(Arc::clone(config), name)
                    .map_err(|e| Error::new(ErrorKind::Connection, format!("{describe}: {e}")))?;
                (Socket::Tcp(stream), Some(Box::new(tls)))
            }
        };
        let mut conn = Self {
            socket,
            tls,
            buf: vec![0; FIRST_BUFFER],
            start: 0,
            end: 0,
            reader: ReplyReader::default(),
            timeout: socket_timeout,
            armed: None,
            deadline: None,
            describe,
            open: true,
        };
        conn.deadline = connect_timeout.map(|t| Instant::now() + t);
        if conn.tls.is_some() {
            conn.guard(Self::handshake)?;
        }
        let (request, commands) = setup;
        let replies = match commands {
            0 => Vec::new(),
            _ => {
                conn.guard(|conn| conn.write_all(request))?;
                conn.receive_setup(commands)?
            }
        };
        conn.deadline = None;
        conn.arm()?;
        Ok((conn, replies))
    }

    /// Send `request` (packed commands) and read `replies` replies, within `SOCKET_TIMEOUT`.
    /// Error replies are among the replies; any other failure closes the connection.
    pub fn exchange(&mut self, request: &[u8], replies: usize) -> Result<Vec<Value>> {
        self.send(request)?;
        self.receive(replies)
    }

    /// Send `request`; the exchange's deadline starts now (`receive` reads its replies).
    pub fn send(&mut self, request: &[u8]) -> Result<()> {
        self.deadline = self.timeout.map(|t| Instant::now() + t);
        self.guard(|conn| conn.write_all(request))
    }

    /// Read `replies` replies to what was sent, by the deadline `send` set.
    pub fn receive(&mut self, replies: usize) -> Result<Vec<Value>> {
        let mut values = Vec::with_capacity(replies);
        self.guard(|conn| conn.read_into(replies, &mut values))?;
        Ok(values)
    }

    /// The handshake's replies. A server that refuses the connection (maxclients) writes why
    /// and hangs up: the replies read until then, ending with that refusal, are returned then,
    /// so that the refusal is judged rather than the hang-up.
    fn receive_setup(&mut self, replies: usize) -> Result<Vec<Value>> {
        let mut values = Vec::with_capacity(replies);
        match self.guard(|conn| conn.read_into(replies, &mut values)) {
            Err(_) if refused_then_closed(&values) => Ok(values),
            read => read.map(|()| values),
        }
    }

    fn read_into(&mut self, replies: usize, values: &mut Vec<Value>) -> Result<()> {
        while values.len() < replies {
            let (used, value) = self.reader.advance(&self.buf[self.start..self.end])?;
            self.start += used;
            match value {
                Some(value) => values.push(value),
                None => self.fill()?,
            }
        }
        Ok(())
    }

    /// Wait up to `wait` for one message the server sends unasked (pub/sub): None when none
    /// began to arrive, and the connection stays usable.
    pub fn listen(&mut self, wait: Duration) -> Result<Option<Value>> {
        self.deadline = Some(Instant::now() + wait);
        let idle = self.start == self.end;
        match self.receive(1) {
            Ok(mut messages) => Ok(messages.pop()),
            Err(err) if err.kind == ErrorKind::Timeout && idle && self.start == self.end => {
                self.open = true;
                Ok(None)
            }
            Err(err) => Err(err),
        }
    }

    /// Whether the connection may be used again (no failure met, nothing unread).
    pub fn is_open(&self) -> bool {
        self.open && self.start == self.end
    }

    /// Any failure leaves the connection in an unknown state: it is not used again.
    fn guard<T>(&mut self, work: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        if !self.open {
            return Err(Error::new(
                ErrorKind::Connection,
                format!("{}: the connection was closed", self.describe),
            ));
        }
        let result = work(self);
        if let Err(err) = &result {
            self.open = false;
            if err.kind == ErrorKind::Protocol {
                return Err(Error::new(
                    ErrorKind::Protocol,
                    format!("{}: {}", self.describe, err.message),
                ));
            }
        }
        result
    }

    fn io_failed(&self, e: &io::Error) -> Error {
        match io_kind(e) {
            ErrorKind::Timeout => self.timed_out(),
            kind => Error::new(kind, format!("{}: {e}", self.describe)),
        }
    }

    fn timed_out(&self) -> Error {
        Error::new(
            ErrorKind::Timeout,
            format!(
                "{}: timed out: no reply within the time allowed",
                self.describe
            ),
        )
    }

    fn closed(&self) -> Error {
        Error::new(
            ErrorKind::Connection,
            format!("{}: the server closed the connection", self.describe),
        )
    }

    /// Set the socket's timeout to what is left of the deadline (or to `SOCKET_TIMEOUT`
    /// between exchanges), unless it is that already, give or take `SLACK`.
    fn arm(&mut self) -> Result<()> {
        let wanted = match self.deadline {
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(self.timed_out());
                }
                Some(left)
            }
            None => self.timeout,
        };
        let close_enough = match (self.armed, wanted) {
            (Some(armed), Some(wanted)) => armed.abs_diff(wanted) <= SLACK,
            (armed, wanted) => armed == wanted,
        };
        if !close_enough {
            self.socket
                .set_timeouts(wanted)
                .map_err(|e| self.io_failed(&e))?;
            self.armed = wanted;
        }
        Ok(())
    }

    fn write_all(&mut self, mut bytes: &[u8]) -> Result<()> {
        if self.tls.is_none() {
            return self.write_socket(bytes);
        }
        // rustls takes as much plaintext as its buffer holds; send that, then the rest.
        while !bytes.is_empty() {
            let taken = match self.tls.as_mut().map(|tls| tls.writer().write(bytes)) {
                Some(Ok(n)) => n,
                Some(Err(e)) => return Err(self.io_failed(&e)),
                None => 0,
            };
            bytes = &bytes[taken..];
            self.flush_tls()?;
        }
        Ok(())
    }

    fn write_socket(&mut self, mut bytes: &[u8]) -> Result<()> {
        while !bytes.is_empty() {
            self.arm()?;
            match self.socket.write(bytes) {
                Ok(0) => return Err(self.closed()),
                Ok(n) => bytes = &bytes[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io_failed(&e)),
            }
        }
        Ok(())
    }

    /// Send the TLS records waiting to go out.
    fn flush_tls(&mut self) -> Result<()> {
        while self.tls.as_ref().is_some_and(|tls| tls.wants_write()) {
            self.arm()?;
            let Some(tls) = self.tls.as_mut() else { break };
            match tls.write_tls(&mut self.socket) {
                Ok(0) => return Err(self.closed()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io_failed(&e)),
            }
        }
        Ok(())
    }

    /// Read TLS records from the socket once, and decrypt them.
    fn read_tls(&mut self) -> Result<()> {
        self.arm()?;
        let Some(tls) = self.tls.as_mut() else {
            return Ok(());
        };
        match tls.read_tls(&mut self.socket) {
            Ok(0) => return Err(self.closed()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(self.io_failed(&e)),
        }
        if let Err(e) = tls.process_new_packets() {
            // Tell the server why (an alert), then give up on the connection.
            let _ = self.flush_tls();
            return Err(Error::new(
                ErrorKind::Connection,
                format!("{}: TLS: {e}", self.describe),
            ));
        }
        self.flush_tls()
    }

    fn handshake(&mut self) -> Result<()> {
        while self.tls.as_ref().is_some_and(|tls| tls.is_handshaking()) {
            if self.tls.as_ref().is_some_and(|tls| tls.wants_write()) {
                self.flush_tls()?;
            } else {
                self.read_tls()?;
            }
        }
        self.flush_tls()
    }

    /// Read more bytes into the buffer (at least one), by the deadline.
    fn fill(&mut self) -> Result<()> {
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
        } else if self.end == self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            (self.start, self.end) = (0, self.end - self.start);
        }
        if self.end == self.buf.len() {
            // Still full: one reply is larger than the buffer. Grow it (resp/parse.rs bounds it).
            self.buf.resize(self.buf.len() * 2, 0);
        }
        loop {
            let read = match self.tls.as_mut() {
                Some(tls) => match tls.reader().read(&mut self.buf[self.end..]) {
                    Ok(0) => return Err(self.closed()),
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        self.read_tls()?;
                        continue;
                    }
                    Err(e) => return Err(self.io_failed(&e)),
                },
                None => {
                    self.arm()?;
                    match self.socket.read(&mut self.buf[self.end..]) {
                        Ok(0) => return Err(self.closed()),
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(self.io_failed(&e)),
                    }
                }
            };
            self.end += read;
            return Ok(());
        }
    }
}

/// A socket error's kind: its timeout expired, or anything else (a broken connection).
pub fn io_kind(e: &io::Error) -> ErrorKind {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => ErrorKind::Timeout,
        _ => ErrorKind::Connection,
    }
}
