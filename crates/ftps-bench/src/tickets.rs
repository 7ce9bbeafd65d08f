//! What TLS 1.3 session tickets cost ftpsd, measured in one process with ftpsd's own TLS
//! configuration (`ftps_server::tls`) and a rustls client, over in-memory buffers, so that
//! only TLS work is timed: no sockets, no scheduler.
//!
//! - the server's CPU time for a resumed TLS 1.3 data-connection handshake that sends no
//!   ticket (ftpsd's data connections now) and one that sends two (its downloads before);
//! - the server's CPU time and the bytes on the wire for one ticket sent after the
//!   handshake, as ftpsd sends one on the control connection ahead of each data connection.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use ftps_server::config::TlsVersion;
use ftps_server::tls::{self, CertResolver, TlsSetup};
use rustls::{ClientConfig, ClientConnection, HandshakeKind, ServerConfig, ServerConnection};

use crate::client;

/// Measured figures.
pub struct TicketCosts {
    /// Server CPU per resumed data-connection handshake, sending no ticket.
    pub handshake_no_ticket: Duration,
    /// The same, sending two tickets.
    pub handshake_two_tickets: Duration,
    /// Server CPU to make and encrypt one ticket after the handshake.
    pub one_ticket: Duration,
    /// Bytes of one ticket on the wire (one TLS record).
    pub ticket_bytes: usize,
}

/// Moves records between the ends until neither has anything to send; returns the time
/// spent in the server's calls.
fn pump(client: &mut ClientConnection, server: &mut ServerConnection) -> Result<Duration> {
    let mut server_time = Duration::ZERO;
    loop {
        let mut to_server = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut to_server)?;
        }
        let t = Instant::now();
        let mut rd = &to_server[..];
        while !rd.is_empty() {
            server.read_tls(&mut rd)?;
            server.process_new_packets()?;
        }
        let mut to_client = Vec::new();
        while server.wants_write() {
            server.write_tls(&mut to_client)?;
        }
        server_time += t.elapsed();
        let mut rd = &to_client[..];
        while !rd.is_empty() {
            client.read_tls(&mut rd)?;
            client.process_new_packets()?;
        }
        if to_server.is_empty() && to_client.is_empty() {
            return Ok(server_time);
        }
    }
}

fn connect(
    client: &Arc<ClientConfig>,
    server: &Arc<ServerConfig>,
) -> Result<(ClientConnection, ServerConnection, Duration)> {
    let name = rustls::pki_types::ServerName::try_from("localhost")?;
    let mut c = ClientConnection::new(client.clone(), name)?;
    let mut s = ServerConnection::new(server.clone())?;
    let time = pump(&mut c, &mut s)?;
    Ok((c, s, time))
}

/// Runs `rounds` measurements of each figure and keeps the medians.
pub fn measure(
    cert: &std::path::Path,
    key: &std::path::Path,
    rounds: usize,
) -> Result<TicketCosts> {
    let key = tls::load_certified_key(cert, key).context("benchmark certificate")?;
    let resolver: Arc<dyn rustls::server::ResolvesServerCert> = Arc::new(CertResolver::new(key));
    let setup = TlsSetup::new(resolver, tls::provider(), TlsVersion::Tls12, None)?;
    let session = setup.session_config(None)?;
    let data_config = |tickets: usize| {
        let mut config = (*session.config).clone();
        config.send_tls13_tickets = tickets;
        Arc::new(config)
    };
    let (none, two) = (data_config(0), data_config(2));
    let mut client_config = (*client::base_config(client::TlsVersion::V13)).clone();
    client_config.alpn_protocols = vec![tls::ALPN_FTP.to_vec()];
    let client_config = Arc::new(client_config);

    // The control connection: tickets after the handshake, as ftpsd sends them.
    let (mut control_client, mut control, _) = connect(&client_config, &session.config)?;
    let mut one_ticket = Vec::with_capacity(rounds);
    let mut ticket_bytes = 0;
    let mut no_ticket = Vec::with_capacity(rounds);
    let mut two_tickets = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t = Instant::now();
        let sent = control.send_tls13_tickets(1)?;
        let mut wire = Vec::new();
        while control.wants_write() {
            control.write_tls(&mut wire)?;
        }
        one_ticket.push(t.elapsed());
        if sent != 1 {
            return Err(anyhow!("the control connection made {sent} tickets"));
        }
        ticket_bytes = wire.len();
        let mut rd = &wire[..];
        while !rd.is_empty() {
            control_client.read_tls(&mut rd)?;
            control_client.process_new_packets()?;
        }
        // A data connection resumes that ticket; alternate the two configurations.
        for (config, times) in [(&none, &mut no_ticket), (&two, &mut two_tickets)] {
            let (c, _, time) = connect(&client_config, config)?;
            if c.handshake_kind() != Some(HandshakeKind::Resumed) {
                return Err(anyhow!("a data connection did not resume"));
            }
            times.push(time);
            // Keep the client's supply: the connection sending two left two behind; use the
            // ticket sent above for the next round either way.
            control.send_tls13_tickets(1)?;
            let mut wire = Vec::new();
            while control.wants_write() {
                control.write_tls(&mut wire)?;
            }
            let mut rd = &wire[..];
            while !rd.is_empty() {
                control_client.read_tls(&mut rd)?;
                control_client.process_new_packets()?;
            }
        }
    }
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    Ok(TicketCosts {
        handshake_no_ticket: median(no_ticket),
        handshake_two_tickets: median(two_tickets),
        one_ticket: median(one_ticket),
        ticket_bytes,
    })
}
