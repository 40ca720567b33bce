//! The async path's sockets: opened here (TCP, unix, or TLS through tokio-rustls with the same
//! `transport/tls.rs` configuration as the blocking path) and handed to redis-rs's multiplexed
//! connection, which parses the replies. Every byte it reads first passes a `ReplyScanner`, so
//! a reply over `resp/parse.rs`'s bounds fails the connection at its header instead of growing the
//! process while it arrives.

use crate::errors::{Error, Result};
use crate::resp::parse::{refused_then_closed, ReplyReader, ReplyScanner};
use crate::settings::location::Address;
use crate::transport::blocking::io_kind;
use redis::Value;
use rustls::ClientConfig;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpStream, UnixStream};

/// Any of the three kinds of stream.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// A stream whose replies are held to the bounds.
pub struct Bounded {
    inner: Box<dyn Io>,
    scanner: ReplyScanner,
}

/// Open a stream to `address` (`tls`: the configuration for `rediss://`).
pub async fn open(address: &Address, tls: Option<&Arc<ClientConfig>>) -> io::Result<Bounded> {
    let inner: Box<dyn Io> = match (address, tls) {
        (Address::Tcp { host, port }, _) => Box::new(tcp(host, *port).await?),
        (Address::Unix { path }, _) => Box::new(UnixStream::connect(path).await?),
        (Address::Tls { host, port }, Some(config)) => {
            let name = crate::transport::tls::server_name(host)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.message))?;
            let connector = tokio_rustls::TlsConnector::from(Arc::clone(config));
            Box::new(connector.connect(name, tcp(host, *port).await?).await?)
        }
        (Address::Tls { .. }, None) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "TLS is not configured",
            ))
        }
    };
    Ok(Bounded {
        inner,
        scanner: ReplyScanner::default(),
    })
}

impl Bounded {
    /// Send `request` (`replies` packed commands) and read their replies, before the stream is
    /// handed to redis-rs: the connection's handshake (`AUTH`, `SELECT`), which the blocking
    /// path runs the same way (`transport/connector.rs`). `describe` names the server in errors.
    pub async fn exchange(
        &mut self,
        request: &[u8],
        replies: usize,
        describe: &str,
    ) -> Result<Vec<Value>> {
        let failed = |e: io::Error| Error::new(io_kind(&e), format!("{describe}: {e}"));
        let mut values = Vec::with_capacity(replies);
        if replies == 0 {
            return Ok(values);
        }
        self.write_all(request).await.map_err(failed)?;
        self.flush().await.map_err(failed)?;
        let (mut reader, mut buf, mut start) = (ReplyReader::default(), Vec::new(), 0);
        while values.len() < replies {
            let (used, value) = reader.advance(&buf[start..])?;
            start += used;
            let read = match value {
                Some(value) => {
                    values.push(value);
                    continue;
                }
                None => self.read_buf(&mut buf).await,
            };
            let hung_up = match read {
                Ok(0) => io::ErrorKind::UnexpectedEof.into(),
                Ok(_) => continue,
                Err(e) => e,
            };
            return match refused_then_closed(&values) {
                true => Ok(values),
                false => Err(failed(hung_up)),
            };
        }
        Ok(values)
    }
}

async fn tcp(host: &str, port: u16) -> io::Result<TcpStream> {
    let stream = TcpStream::connect((host, port)).await?;
    // Small request/reply round trips: Nagle's algorithm would only add latency.
    stream.set_nodelay(true)?;
    Ok(stream)
}

impl AsyncRead for Bounded {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => Poll::Ready(
                this.scanner
                    .scan(&buf.filled()[before..])
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.message)),
            ),
            other => other,
        }
    }
}

impl AsyncWrite for Bounded {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
