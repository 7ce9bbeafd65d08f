//! PROXY protocol (v1 and v2) on connections from load balancers: the header is read before
//! anything else, from a trusted balancer only, and its source address is the client's for
//! everything after it (limits, bans, address rules, logs, the data-connection checks).
//! The header's format is `ftps_proto::proxy`; this reads exactly the header's bytes, so
//! what follows (an implicit-FTPS ClientHello) is left for the session.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use ftps_proto::proxy::{parse, Parsed};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::config::ProxyProtocolConfig;

/// Why a connection that should start with a header does not.
#[derive(Debug, thiserror::Error)]
pub enum ProxyRefusal {
    /// The connection does not come from a trusted balancer.
    #[error("PROXY protocol header expected from a trusted balancer; {0} is not one")]
    Untrusted(SocketAddr),
    /// The header is missing or malformed.
    #[error("{0}")]
    Header(#[from] ftps_proto::proxy::ProxyError),
    /// The header did not arrive in time, or the connection failed.
    #[error("reading the PROXY protocol header: {0}")]
    Io(#[from] io::Error),
}

/// The client behind `peer` (the connection's own address): the source of the header that
/// `stream` starts with, if `peer` is a trusted balancer. A header without addresses
/// (`LOCAL`, `UNKNOWN`: the balancer's own health checks) leaves `peer` as it is.
pub async fn client_address<R: AsyncRead + Unpin>(
    stream: &mut R,
    peer: SocketAddr,
    config: &ProxyProtocolConfig,
) -> Result<SocketAddr, ProxyRefusal> {
    Ok(proxied(stream, peer, config).await?.client)
}

/// Who a proxied connection is from, and what it was made to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Proxied {
    /// The client (the balancer itself for a header without addresses).
    pub client: SocketAddr,
    /// The address the client connected to, on the balancer, if the header says.
    pub destination: Option<SocketAddr>,
}

/// [`client_address`], with the address the client connected to.
pub async fn proxied<R: AsyncRead + Unpin>(
    stream: &mut R,
    peer: SocketAddr,
    config: &ProxyProtocolConfig,
) -> Result<Proxied, ProxyRefusal> {
    if !config.trusted.iter().any(|net| net.contains(peer.ip())) {
        return Err(ProxyRefusal::Untrusted(peer));
    }
    let limit = Duration::from_secs(config.header_timeout.max(1));
    let addresses = tokio::time::timeout(limit, read_header(stream))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "timed out"))??;
    Ok(Proxied {
        client: addresses.map_or(peer, |a| a.source),
        destination: addresses.map(|a| a.destination),
    })
}

/// Reads the header at the start of `stream`, byte count by byte count as the parser asks,
/// so that nothing after it is consumed.
async fn read_header<R: AsyncRead + Unpin>(
    stream: &mut R,
) -> Result<Option<ftps_proto::proxy::ProxiedAddresses>, ProxyRefusal> {
    let mut bytes = Vec::with_capacity(64);
    let mut wanted = 1;
    loop {
        let have = bytes.len();
        bytes.resize(wanted, 0);
        stream.read_exact(&mut bytes[have..]).await?;
        match parse(&bytes)? {
            Parsed::Header { addresses, .. } => return Ok(addresses),
            Parsed::Incomplete(needed) => wanted = needed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusting(net: &str) -> ProxyProtocolConfig {
        ProxyProtocolConfig {
            trusted: vec![net.parse().unwrap()],
            ..ProxyProtocolConfig::default()
        }
    }

    #[tokio::test]
    async fn the_header_is_read_exactly_and_its_source_returned() {
        let balancer: SocketAddr = "10.0.0.5:40000".parse().unwrap();
        let mut input: &[u8] = b"PROXY TCP4 192.0.2.7 10.0.0.1 50012 21\r\n\x16\x03\x01";
        let client = client_address(&mut input, balancer, &trusting("10.0.0.0/8"))
            .await
            .unwrap();
        assert_eq!(client, "192.0.2.7:50012".parse().unwrap());
        assert_eq!(input, b"\x16\x03\x01", "what follows the header is left");
        let mut health: &[u8] = b"PROXY UNKNOWN\r\n";
        let own = client_address(&mut health, balancer, &trusting("10.0.0.0/8"))
            .await
            .unwrap();
        assert_eq!(own, balancer);
    }

    #[tokio::test]
    async fn untrusted_missing_and_short_headers_are_refused() {
        let config = trusting("10.0.0.0/8");
        let mut input: &[u8] = b"PROXY TCP4 192.0.2.7 10.0.0.1 50012 21\r\n";
        let stranger: SocketAddr = "192.0.2.99:1".parse().unwrap();
        assert!(matches!(
            client_address(&mut input, stranger, &config).await,
            Err(ProxyRefusal::Untrusted(_))
        ));
        let balancer: SocketAddr = "10.0.0.5:40000".parse().unwrap();
        let mut plain: &[u8] = b"USER alice\r\n";
        assert!(matches!(
            client_address(&mut plain, balancer, &config).await,
            Err(ProxyRefusal::Header(_))
        ));
        let mut cut: &[u8] = b"PROXY TCP4 192.0.2.7";
        assert!(matches!(
            client_address(&mut cut, balancer, &config).await,
            Err(ProxyRefusal::Io(_))
        ));
    }
}
