//! A stream that is either plain or wrapped in TLS, for the control and data channels.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use rustls::ProtocolVersion::TLSv1_3 as TLS13;
use tokio::io::{AsyncRead, AsyncWrite, BufReader, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

/// A data connection: TLS over a read buffer. rustls reads at most one TLS record's worth
/// per call (and shrinks its buffer to 4 KiB whenever it empties), so without the buffer an
/// upload costs several `recv` calls per 16 KiB record.
pub type DataStream = MaybeTls<BufReader<TcpStream>>;

/// Read buffer under TLS on data connections.
pub const DATA_READ_BUFFER: usize = 64 * 1024;

/// A connection that may have been upgraded to TLS.
pub enum MaybeTls<IO = TcpStream> {
    /// Plain TCP.
    Plain(IO),
    /// TLS over TCP.
    Tls(Box<TlsStream<IO>>),
    /// Taken away (while being upgraded to TLS, or after a failed upgrade): reads see end of
    /// stream, writes fail.
    Closed,
}

impl<IO> MaybeTls<IO> {
    /// Takes the plain stream out for a TLS upgrade, leaving `Closed` behind.
    pub fn take_plain(&mut self) -> Option<IO> {
        match std::mem::replace(self, MaybeTls::Closed) {
            MaybeTls::Plain(tcp) => Some(tcp),
            other => {
                *self = other;
                None
            }
        }
    }
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "connection closed")
}

impl<IO> MaybeTls<IO> {
    /// Whether TLS protects this connection.
    pub fn is_tls(&self) -> bool {
        matches!(self, MaybeTls::Tls(_))
    }

    /// The rustls connection state, when TLS is on.
    pub fn tls_state(&self) -> Option<&rustls::ServerConnection> {
        match self {
            MaybeTls::Tls(t) => Some(t.get_ref().1),
            _ => None,
        }
    }

    /// Queues `count` fresh TLS 1.3 session tickets, sent ahead of whatever is written next.
    /// Returns how many were queued: none on a plain or TLS 1.2 connection.
    pub fn queue_tls13_tickets(&mut self, count: usize) -> usize {
        match self {
            MaybeTls::Tls(t) if t.get_ref().1.protocol_version() == Some(TLS13) => {
                t.get_mut().1.send_tls13_tickets(count).unwrap_or(0)
            }
            _ => 0,
        }
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncRead for MaybeTls<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_read(cx, buf),
            MaybeTls::Tls(t) => Pin::new(t.as_mut()).poll_read(cx, buf),
            MaybeTls::Closed => Poll::Ready(Ok(())),
        }
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncWrite for MaybeTls<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_write(cx, buf),
            MaybeTls::Tls(t) => Pin::new(t.as_mut()).poll_write(cx, buf),
            MaybeTls::Closed => Poll::Ready(Err(closed())),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            MaybeTls::Tls(t) => Pin::new(t.as_mut()).poll_write_vectored(cx, bufs),
            MaybeTls::Closed => Poll::Ready(Err(closed())),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            MaybeTls::Plain(s) => s.is_write_vectored(),
            MaybeTls::Tls(t) => t.is_write_vectored(),
            MaybeTls::Closed => false,
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_flush(cx),
            MaybeTls::Tls(t) => Pin::new(t.as_mut()).poll_flush(cx),
            MaybeTls::Closed => Poll::Ready(Ok(())),
        }
    }

    /// For TLS: sends close_notify, then shuts down the TCP write side.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_shutdown(cx),
            MaybeTls::Tls(t) => Pin::new(t.as_mut()).poll_shutdown(cx),
            MaybeTls::Closed => Poll::Ready(Ok(())),
        }
    }
}

/// The control connection's transport: TCP that, while TLS is on, reads no further than the
/// end of the current TLS record.
///
/// rustls pulls as many bytes from the socket as fit its buffer. After `CCC` the client
/// sends close_notify and then plaintext commands, possibly in the same segment; bytes that
/// rustls had already taken would be lost when TLS is removed. Reading record by record
/// leaves everything after the close_notify record in the socket.
pub struct RecordReader<IO> {
    inner: IO,
    /// Whether reads are cut at record boundaries (TLS on) or pass straight through.
    records: bool,
    header: [u8; 5],
    header_have: usize,
    body_left: usize,
}

impl<IO> RecordReader<IO> {
    /// Wraps a transport; record mode starts off.
    pub fn new(inner: IO) -> Self {
        RecordReader {
            inner,
            records: false,
            header: [0; 5],
            header_have: 0,
            body_left: 0,
        }
    }

    /// Turns record-boundary reading on (before a TLS handshake) or off (after TLS ended).
    pub fn set_records(&mut self, on: bool) {
        self.records = on;
        self.header_have = 0;
        self.body_left = 0;
    }

    /// Whether a record was only partly read (TLS ended in the middle of one).
    pub fn mid_record(&self) -> bool {
        self.header_have != 0 || self.body_left != 0
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for RecordReader<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.records {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        // At most the rest of the header, or the rest of the body. Control traffic is small,
        // so a stack buffer (and a copy) keeps this free of unsafe code.
        let limit = if this.body_left > 0 {
            this.body_left
        } else {
            5 - this.header_have
        };
        let mut chunk = [0u8; 2048];
        let want = limit.min(buf.remaining()).min(chunk.len());
        let mut limited = ReadBuf::new(&mut chunk[..want]);
        std::task::ready!(Pin::new(&mut this.inner).poll_read(cx, &mut limited))?;
        let got = limited.filled();
        if this.body_left > 0 {
            this.body_left -= got.len();
        } else {
            let start = this.header_have;
            this.header[start..start + got.len()].copy_from_slice(got);
            this.header_have += got.len();
            if this.header_have == 5 {
                this.header_have = 0;
                this.body_left = usize::from(u16::from_be_bytes([this.header[3], this.header[4]]));
            }
        }
        buf.put_slice(got);
        Poll::Ready(Ok(()))
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for RecordReader<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// The control connection.
pub type ControlStream = MaybeTls<RecordReader<TcpStream>>;

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn record_reader_stops_at_record_boundaries() {
        let (client, server) = tokio::io::duplex(1024);
        let mut reader = RecordReader::new(server);
        reader.set_records(true);
        let mut client = client;
        // Two records (5-byte headers, bodies of 3 and 2 bytes) followed by plaintext.
        client
            .write_all(&[23, 3, 3, 0, 3, b'a', b'b', b'c', 21, 3, 3, 0, 2, 1, 0])
            .await
            .unwrap();
        client.write_all(b"NOOP\r\n").await.unwrap();
        let mut got = [0u8; 15];
        let mut filled = 0;
        while filled < 15 {
            let n = reader.read(&mut got[filled..]).await.unwrap();
            assert!(n > 0);
            filled += n;
        }
        assert_eq!(&got[13..15], &[1, 0]);
        assert!(!reader.mid_record());
        // After the second record, TLS ends: the plaintext is still there, whole.
        reader.set_records(false);
        let mut rest = [0u8; 6];
        reader.read_exact(&mut rest).await.unwrap();
        assert_eq!(&rest, b"NOOP\r\n");
    }
}
