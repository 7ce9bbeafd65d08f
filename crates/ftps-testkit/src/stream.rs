//! One stream type for connections that may or may not run TLS: control connections before
//! and after `AUTH TLS` (or `CCC`), and data connections under `PROT C` or `PROT P`.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use rustls::HandshakeKind;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// A connection over the transport `T`, in plaintext or inside TLS.
pub enum Stream<T = TcpStream> {
    /// Bytes as they are.
    Plain(T),
    /// A client TLS session over `T` (boxed: it is far larger than a socket).
    Tls(Box<TlsStream<T>>),
}

impl<T> Stream<T> {
    /// Whether the connection runs TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }

    /// How the TLS handshake went (full or resumed); `None` in plaintext.
    pub fn handshake_kind(&self) -> Option<HandshakeKind> {
        match self {
            Stream::Plain(_) => None,
            Stream::Tls(s) => s.get_ref().1.handshake_kind(),
        }
    }

    /// TLS 1.3 session tickets received so far (0 in plaintext).
    pub fn tls13_tickets_received(&self) -> u32 {
        match self {
            Stream::Plain(_) => 0,
            Stream::Tls(s) => s.get_ref().1.tls13_tickets_received(),
        }
    }

    /// The transport, dropping any TLS state without a close_notify.
    pub fn into_transport(self) -> T {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => s.into_inner().0,
        }
    }
}

/// Closes `tcp` with a reset (no FIN), as a client that crashed or lost its network would.
pub fn reset(tcp: TcpStream) {
    // A zero linger never blocks the drop: it sends the reset at once.
    #[allow(deprecated)]
    let _ = tcp.set_linger(Some(std::time::Duration::ZERO));
    drop(tcp);
}

/// Runs `$call` on the plain transport or on the TLS stream, pinned as `$s`.
macro_rules! either {
    ($self:ident, $s:ident => $call:expr) => {
        match $self.get_mut() {
            Stream::Plain(inner) => {
                let $s = Pin::new(inner);
                $call
            }
            Stream::Tls(inner) => {
                let $s = Pin::new(inner.as_mut());
                $call
            }
        }
    };
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for Stream<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        either!(self, s => s.poll_read(cx, buf))
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Stream<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        either!(self, s => s.poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        either!(self, s => s.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        either!(self, s => s.poll_shutdown(cx))
    }
}
