//! Making the data connection and securing it (RFC 959 §3.2, RFC 4217 §§8-10): accepting
//! on the passive port or connecting to the active target, the `150` that announces the
//! transfer, and the TLS handshake with its checks.
//!
//! Security rules, applied before a single byte of data moves:
//! - a passive port accepts only connections from the control connection's IP; others are
//!   dropped and the listener keeps waiting for the real client;
//! - with `PROT P`, the data connection's TLS handshake must resume this control session's
//!   TLS session unless the policy is `optional` (see `crate::tls`), and carry the control
//!   connection's client certificate if it had one.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ftps_proto::ReplyCode;
use rustls::HandshakeKind;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::TlsAcceptor;
use tracing::{debug, warn};

use super::{DataRefusal, DataSetup};
use crate::ops::metrics::{BindingRefusal, Channel};
use crate::policy::SessionReuse;
use crate::session::state::LoggedIn;
use crate::session::{canonical_ip, Session};
use crate::stream::{DataStream, MaybeTls, DATA_READ_BUFFER};

impl Session {
    /// Makes the data connection announced by PASV/EPSV or PORT/EPRT (consuming it),
    /// announces the transfer with `150 opening`, then protects the connection when
    /// `PROT P` is in effect. `None`: refused, and the refusal replied.
    ///
    /// `upload`: the client will only write (see [`Session::secure_data`]).
    pub(super) async fn connect_data(
        &mut self,
        user: &LoggedIn,
        opening: String,
        upload: bool,
    ) -> io::Result<Option<DataStream>> {
        let tcp = match self.open_data().await {
            Ok(tcp) => tcp,
            Err((code, text)) => {
                self.reply(code, text).await?;
                return Ok(None);
            }
        };
        self.reply(ReplyCode::FILE_STATUS_OK, opening).await?;
        match self.secure_data(user, tcp, upload).await {
            Ok(data) => Ok(Some(data)),
            Err((code, text)) => {
                self.reply(code, text).await?;
                Ok(None)
            }
        }
    }

    /// Makes the TCP data connection announced by PASV/EPSV or PORT/EPRT. Consumes it.
    async fn open_data(&mut self) -> std::result::Result<TcpStream, DataRefusal> {
        let limit = Duration::from_secs(self.shared.config.timeouts.data_connect);
        match std::mem::take(&mut self.params.data) {
            DataSetup::None => Err((
                ReplyCode::CANT_OPEN_DATA,
                "Use PASV or EPSV (or PORT/EPRT) first.".into(),
            )),
            DataSetup::Passive(listener, _, _port) => {
                let expected = canonical_ip(self.peer.ip());
                let proxied = &self.shared.config.proxy_protocol;
                let accept = async {
                    loop {
                        let (mut stream, mut from) = listener.accept().await?;
                        // Through the balancer, the client is who the header says.
                        if proxied.passive {
                            match crate::proxy::client_address(&mut stream, from, proxied).await {
                                Ok(client) => from = client,
                                Err(e) => {
                                    warn!(via = %from, error = %e, "passive data connection closed: PROXY protocol");
                                    continue;
                                }
                            }
                        }
                        if canonical_ip(from.ip()) == expected {
                            return Ok::<_, io::Error>(stream);
                        }
                        // Someone else reached our port: drop them, keep waiting.
                        warn!(from = %from, "data connection from a foreign address dropped");
                        self.shared
                            .ops
                            .metrics
                            .binding_refusal(BindingRefusal::Address);
                    }
                };
                match tokio::time::timeout(limit, accept).await {
                    Ok(Ok(stream)) => {
                        let _ = stream.set_nodelay(true);
                        Ok(stream)
                    }
                    Ok(Err(e)) => Err((
                        ReplyCode::CANT_OPEN_DATA,
                        format!("Cannot accept the data connection: {e}."),
                    )),
                    Err(_) => Err((
                        ReplyCode::CANT_OPEN_DATA,
                        format!("No data connection received within {} s.", limit.as_secs()),
                    )),
                }
            }
            DataSetup::Active(target) => {
                let connect = async {
                    let socket = if target.is_ipv4() {
                        TcpSocket::new_v4()?
                    } else {
                        TcpSocket::new_v6()?
                    };
                    // Connect from the address the client reached us on.
                    let local_ip = self.local.ip();
                    if local_ip.is_ipv4() == target.is_ipv4() {
                        socket.bind(SocketAddr::new(local_ip, 0))?;
                    }
                    socket.connect(target).await
                };
                match tokio::time::timeout(limit, connect).await {
                    Ok(Ok(stream)) => {
                        let _ = stream.set_nodelay(true);
                        Ok(stream)
                    }
                    _ => Err((
                        ReplyCode::CANT_OPEN_DATA,
                        format!("Cannot connect to {target}."),
                    )),
                }
            }
        }
    }

    /// Wraps a data connection in TLS when `PROT P` is in effect, enforcing session reuse.
    ///
    /// `upload`: the client will only write. Data connections carry no TLS 1.3 tickets while
    /// the control connection can (see [`crate::tls`]); after `CCC`, downloads and listings
    /// bring `DATA_TICKETS` each, read with the data, and uploads still none: a client that
    /// never reads would close its socket with them unread, the kernel would turn the close
    /// into a reset, and the reset would destroy the upload's last bytes.
    async fn secure_data(
        &mut self,
        user: &LoggedIn,
        tcp: TcpStream,
        upload: bool,
    ) -> std::result::Result<DataStream, DataRefusal> {
        let tcp = tokio::io::BufReader::with_capacity(DATA_READ_BUFFER, tcp);
        let Some(tls) = self.security.data_tls() else {
            return Ok(MaybeTls::Plain(tcp));
        };
        // Same session store and ticket key: the resumption domain is unchanged; only the
        // number of tickets differs.
        let mut data_config = (*tls.config).clone();
        data_config.send_tls13_tickets = if upload || self.security.is_tls() {
            0
        } else {
            crate::tls::DATA_TICKETS
        };
        let config = Arc::new(data_config);
        let limit = Duration::from_secs(self.shared.config.timeouts.tls_handshake);
        let mut stream =
            match tokio::time::timeout(limit, TlsAcceptor::from(config).accept(tcp)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    debug!(error = %e, "data connection TLS handshake failed");
                    self.shared.ops.metrics.tls_failure(Channel::Data);
                    return Err((
                        ReplyCode::CANT_OPEN_DATA,
                        format!("TLS handshake on the data connection failed: {e}."),
                    ));
                }
                Err(_) => {
                    self.shared.ops.metrics.tls_failure(Channel::Data);
                    return Err((
                        ReplyCode::CANT_OPEN_DATA,
                        "TLS handshake on the data connection timed out.".into(),
                    ));
                }
            };
        let resumed = stream.get_ref().1.handshake_kind() == Some(HandshakeKind::Resumed);
        if !resumed && self.session_reuse(user) == SessionReuse::Required {
            warn!("data connection did not resume the control TLS session; refused");
            self.shared
                .ops
                .metrics
                .binding_refusal(BindingRefusal::TlsSession);
            close_refused(&mut stream).await;
            return Err((
                ReplyCode::EXTENDED_PORT_FAILURE,
                "Data connection refused: it did not resume this connection's TLS session, \
                 which this server requires so that nobody else can take over a transfer. \
                 Make your client reuse the control connection's TLS session on data \
                 connections (Python ftplib: wrap the data socket with \
                 session=self.sock.session, see the ftpsd README), or ask the administrator \
                 for data_session_reuse = \"optional\" on your account."
                    .into(),
            ));
        }
        // With client certificates, the data connection must carry the same one.
        let control_cert = self.security.client_cert();
        let data_cert = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first());
        if control_cert.is_some() && control_cert != data_cert {
            warn!("data connection presented a different client certificate; refused");
            self.shared
                .ops
                .metrics
                .binding_refusal(BindingRefusal::Certificate);
            return Err((
                ReplyCode::CANT_OPEN_DATA,
                "Data connection refused: it must present the control connection's client \
                 certificate."
                    .into(),
            ));
        }
        Ok(MaybeTls::Tls(Box::new(stream)))
    }

    /// The session-reuse policy for this user.
    fn session_reuse(&self, user: &LoggedIn) -> SessionReuse {
        user.data_session_reuse()
            .unwrap_or(self.listener.data_session_reuse)
    }
}

/// How long a refused data connection is given to take its close_notify and close.
const REFUSAL_CLOSE: Duration = Duration::from_secs(5);

/// Closes a refused data connection the way a finished one closes, so that the client sees
/// an orderly end and reads the refusal on the control connection instead of reporting a TLS
/// error: close_notify and FIN, then whatever the client still sends (an upload already under
/// way) is read and discarded until it closes too, for at most [`REFUSAL_CLOSE`]. A
/// connection closed with unread data would be reset, and the client would see that instead.
async fn close_refused<IO: AsyncRead + AsyncWrite + Unpin>(stream: &mut IO) {
    let close = async {
        stream.shutdown().await?;
        let mut discard = vec![0u8; 16 * 1024];
        while stream.read(&mut discard).await? > 0 {}
        Ok::<_, io::Error>(())
    };
    let _ = tokio::time::timeout(REFUSAL_CLOSE, close).await;
}
