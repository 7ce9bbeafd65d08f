//! PROXY protocol v1 and v2 (`proxy_protocol = true` on a listener, `[proxy_protocol]`):
//! the client's address comes from the header a trusted balancer sends, for the session's
//! status, logs, bans and the data-connection check; a connection from an untrusted
//! address, or without a valid header, is closed. Proven with the raw client writing the
//! headers itself, and with HAProxy (`send-proxy`, `send-proxy-v2`) in front of ftpsd and
//! curl behind it, on a loopback source address of its own: also with the node's passive
//! range forwarded by HAProxy and PASV naming the balancer (`announce_destination`), the
//! layout of docs/deploy/haproxy.cfg, which is checked too.

mod support;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::client::Control;
use support::{ftpsd, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const TIMEOUT: Duration = Duration::from_secs(120);

/// A server whose listeners expect headers from `trusted`, with `extra` configuration.
fn server(trusted: &str, extra: &str) -> Server {
    ftpsd().start_with_listen_and(
        "[{ address = \"127.0.0.1:0\", proxy_protocol = true }]",
        &format!(
            "implicit_listen = [{{ address = \"127.0.0.1:0\", proxy_protocol = true }}]\n\
             [proxy_protocol]\ntrusted = [\"{trusted}\"]\nheader_timeout = 2\n{extra}"
        ),
        support::RUST_LOG,
        |_| {},
    )
}

/// A version 2 header for a TCP connection from `source` to `destination`.
fn v2(source: SocketAddr, destination: SocketAddr) -> Vec<u8> {
    let mut out = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    out.push(0x21);
    match (source, destination) {
        (SocketAddr::V4(s), SocketAddr::V4(d)) => {
            out.push(0x11);
            out.extend_from_slice(&12u16.to_be_bytes());
            out.extend_from_slice(&s.ip().octets());
            out.extend_from_slice(&d.ip().octets());
        }
        (SocketAddr::V6(s), SocketAddr::V6(d)) => {
            out.push(0x21);
            out.extend_from_slice(&36u16.to_be_bytes());
            out.extend_from_slice(&s.ip().octets());
            out.extend_from_slice(&d.ip().octets());
        }
        _ => panic!("mixed families"),
    }
    out.extend_from_slice(&source.port().to_be_bytes());
    out.extend_from_slice(&destination.port().to_be_bytes());
    out
}

/// Sends a version 2 header from `source` to `destination` on `stream`.
async fn send_v2(stream: &mut TcpStream, source: &str, destination: &str) {
    let header = v2(source.parse().unwrap(), destination.parse().unwrap());
    stream.write_all(&header).await.unwrap();
}

/// A connection to the server that first sends `header`; the server's first reply.
async fn through_header(server: &Server, header: &[u8]) -> (Control, ftps_proto::Reply) {
    let mut tcp = TcpStream::connect(server.explicit).await.unwrap();
    tcp.write_all(header).await.unwrap();
    Control::connect_over(tcp, server.explicit, &server.fingerprint).await
}

/// Logged in as `ftps` over a connection that claims `header`.
async fn login_through(server: &Server, header: &[u8]) -> Control {
    let (mut c, greeting) = through_header(server, header).await;
    assert_eq!(greeting.code.0, 220, "{greeting:?}");
    c.auth_tls().await;
    c.user_pass("ftps", &server.password).await;
    c.protect().await;
    c
}

#[tokio::test]
async fn the_headers_source_is_the_client() {
    let server = server("127.0.0.1", "");
    let v1 = b"PROXY TCP4 192.0.2.7 203.0.113.1 50012 21\r\n";
    let mut c = login_through(&server, v1).await;
    let status = c.expect("STAT", 211).await;
    assert!(
        format!("{status:?}").contains("Connected from 192.0.2.7"),
        "{status:?}"
    );
    let six = v2(
        "[2001:db8::7]:50013".parse().unwrap(),
        "[2001:db8::1]:21".parse().unwrap(),
    );
    let mut c6 = login_through(&server, &six).await;
    let status = c6.expect("STAT", 211).await;
    assert!(
        format!("{status:?}").contains("Connected from 2001:db8::7"),
        "{status:?}"
    );
    // A balancer's own health check (LOCAL) is served as the balancer.
    let local = b"\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00";
    let mut own = login_through(&server, local).await;
    let status = own.expect("STAT", 211).await;
    assert!(
        format!("{status:?}").contains("Connected from 127.0.0.1"),
        "{status:?}"
    );
    let log = server.log_text();
    assert!(log.contains("peer=192.0.2.7:50012 via=127.0.0.1:"), "{log}");
}

/// Reads until the server closes; what it sent.
async fn until_closed(tcp: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        match tokio::time::timeout(Duration::from_secs(20), tcp.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return out,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => panic!("the server kept the connection open; got {out:?}"),
        }
    }
}

#[tokio::test]
async fn untrusted_missing_and_broken_headers_are_closed_without_a_word() {
    let untrusting = server("10.0.0.0/8", "");
    let mut tcp = TcpStream::connect(untrusting.explicit).await.unwrap();
    tcp.write_all(b"PROXY TCP4 192.0.2.7 203.0.113.1 50012 21\r\n")
        .await
        .unwrap();
    assert_eq!(until_closed(&mut tcp).await, b"");
    let server = server("127.0.0.1", "");
    for first in [
        &b"USER ftps\r\n"[..],
        b"PROXY TCP4 192.0.2.700 203.0.113.1 50012 21\r\n",
        b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x03abc",
        b"\x16\x03\x01\x02\x00",
    ] {
        let mut tcp = TcpStream::connect(server.explicit).await.unwrap();
        tcp.write_all(first).await.unwrap();
        assert_eq!(until_closed(&mut tcp).await, b"", "{first:?}");
    }
    // Nothing at all: closed after the header timeout (2 s here).
    let mut silent = TcpStream::connect(server.implicit).await.unwrap();
    let started = std::time::Instant::now();
    assert_eq!(until_closed(&mut silent).await, b"");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    let log = server.log_text();
    assert!(log.contains("connection closed: PROXY protocol"), "{log}");
}

#[tokio::test]
async fn bans_fall_on_the_client_not_on_the_balancer() {
    let server = server(
        "127.0.0.1",
        "[limits]\nmax_login_failures_per_ip = 2\nlogin_failure_delay_ms = 1\n",
    );
    let mallory = b"PROXY TCP4 192.0.2.66 203.0.113.1 40000 21\r\n";
    for _ in 0..2 {
        let (mut c, _) = through_header(&server, mallory).await;
        c.auth_tls().await;
        c.expect("USER ftps", 331).await;
        let _ = c.cmd("PASS wrong").await;
    }
    let (_, refused) = through_header(&server, mallory).await;
    assert_eq!(refused.code.0, 421, "{refused:?}");
    // Another client through the same balancer is not touched.
    let alice = b"PROXY TCP4 192.0.2.7 203.0.113.1 40001 21\r\n";
    let mut c = login_through(&server, alice).await;
    c.expect("NOOP", 200).await;
}

#[tokio::test]
async fn passive_data_connections_can_carry_a_header_too() {
    let server = server("127.0.0.1", "passive = true\n");
    server.put("f.txt", b"through the balancer");
    let client: SocketAddr = "192.0.2.7:50012".parse().unwrap();
    let mut c = login_through(&server, &v2(client, "203.0.113.1:21".parse().unwrap())).await;
    // The data connection names the same client: accepted.
    let mut tcp = c.open_passive().await;
    send_v2(&mut tcp, "192.0.2.7:50013", "203.0.113.1:50000").await;
    let tls = c.data_tls();
    let t = c.transfer_on(tcp, "RETR f.txt", None, tls.clone()).await;
    assert_eq!(t.data, b"through the balancer", "{t:?}");
    // One naming another client is dropped, and the transfer waits for the right one:
    // both wait in the port's queue, the intruder first, when RETR is sent.
    let mut intruder = c.open_passive().await;
    let port = intruder.peer_addr().unwrap();
    send_v2(&mut intruder, "198.51.100.9:1", "203.0.113.1:50000").await;
    let mut right = TcpStream::connect(port).await.unwrap();
    send_v2(&mut right, "192.0.2.7:50014", "203.0.113.1:50000").await;
    let t = c.transfer_on(right, "RETR f.txt", None, tls).await;
    assert_eq!(t.data, b"through the balancer", "{t:?}");
    assert_eq!(until_closed(&mut intruder).await, b"");
    assert!(server
        .log_text()
        .contains("data connection from a foreign address dropped"));
}

/// HAProxy in TCP mode on a free port in front of `backend`, sending `send_proxy`
/// (`send-proxy` or `send-proxy-v2`); killed on drop.
struct Haproxy {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn haproxy(backend: SocketAddr, send_proxy: &str) -> Haproxy {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    start_haproxy(
        &format!(
            "frontend ftps\n  bind 127.0.0.1:{port}\n  default_backend nodes\n\n\
             backend nodes\n  server node1 {backend} {send_proxy}\n"
        ),
        ("127.0.0.1", port),
    )
}

/// HAProxy with `proxies` (frontends and backends) after TCP-mode defaults, once it
/// accepts connections on `ready`.
fn start_haproxy(proxies: &str, ready: (&str, u16)) -> Haproxy {
    let dir = support::tempdir();
    let config = dir.path().join("haproxy.cfg");
    std::fs::write(
        &config,
        format!(
            "global\n  maxconn 100\n\ndefaults\n  mode tcp\n  timeout connect 5s\n  \
             timeout client 60s\n  timeout server 60s\n\n{proxies}"
        ),
    )
    .unwrap();
    let child = Command::new("haproxy")
        .arg("-db")
        .arg("-f")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("haproxy is installed by scripts/test.sh");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(ready).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "haproxy did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Haproxy {
        child,
        port: ready.1,
        _dir: dir,
    }
}

/// curl from the loopback address 127.0.0.2, through `proxy`, as `ftps`.
fn curl(server: &Server, url: String, args: &[&str]) -> support::Run {
    support::run_client(
        Command::new("curl")
            .args(["--silent", "--show-error", "--verbose", "--max-time", "60"])
            .args(["--interface", "127.0.0.2"])
            .arg("--cacert")
            .arg(server.state_dir.join("cert.pem"))
            .arg("--user")
            .arg(format!("ftps:{}", server.password))
            .args(args)
            .arg(url),
        TIMEOUT,
    )
}

#[tokio::test]
async fn curl_through_haproxy_is_seen_as_itself() {
    let server = server("127.0.0.1", "");
    let explicit = haproxy(server.explicit, "send-proxy-v2");
    let implicit = haproxy(server.implicit, "send-proxy");
    let upload = support::local_file(&server, "up.bin", &[3u8; 200_000]);
    // Explicit FTPS through HAProxy (v2); the data connections go to the node directly,
    // from the client's own address, which the header gave.
    curl(
        &server,
        format!("ftp://127.0.0.1:{}/up.bin", explicit.port),
        &["--ssl-reqd", "-T", &upload],
    )
    .assert_ok("upload through haproxy");
    assert_eq!(server.files().read("up.bin"), vec![3u8; 200_000]);
    // Implicit FTPS through HAProxy (v1): the ClientHello after the header is intact.
    let down = curl(
        &server,
        format!("ftps://127.0.0.1:{}/up.bin", implicit.port),
        &["-o", "/dev/null", "--write-out", "%{size_download}"],
    );
    down.assert_ok("download through haproxy");
    assert!(down.stdout.ends_with("200000"), "{down}");
    let log = server.log_text();
    let proxied = log
        .lines()
        .filter(|l| l.contains("peer=127.0.0.2:") && l.contains("login ok"))
        .count();
    assert_eq!(proxied, 2, "{log}");
    // The PROXY listener refuses what does not come through the balancer.
    let direct = TcpSocket::new_v4().unwrap();
    direct.set_reuseaddr(true).unwrap();
    direct.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let mut tcp = direct.connect(server.explicit).await.unwrap();
    tcp.write_all(b"PROXY TCP4 192.0.2.7 203.0.113.1 50012 21\r\n")
        .await
        .unwrap();
    assert_eq!(until_closed(&mut tcp).await, b"");
}

/// A range of `n` ports free on both 127.0.0.1 and 127.0.0.3 (for the node and the
/// balancer), picked at random in 40000-59999.
fn free_range(n: u16) -> u16 {
    'search: for _ in 0..200 {
        let base = 40_000 + rand::random::<u16>() % 20_000;
        for port in base..base + n {
            for ip in ["127.0.0.1", "127.0.0.3"] {
                if std::net::TcpListener::bind((ip, port)).is_err() {
                    continue 'search;
                }
            }
        }
        return base;
    }
    panic!("no free port range");
}

#[tokio::test]
async fn passive_ports_through_haproxy_announce_the_balancers_address() {
    // The node's passive range is forwarded by the balancer (127.0.0.3) to the node
    // (127.0.0.1), with a header on each data connection; PASV announces the balancer.
    let base = free_range(10);
    let server = server(
        "127.0.0.1",
        &format!(
            "passive = true\nannounce_destination = true\n\n[passive]\nports = \"{base}-{}\"\n",
            base + 9
        ),
    );
    let control_port = free_range(1);
    let balancer = start_haproxy(
        &format!(
            "frontend control\n  bind 127.0.0.3:{control_port}\n  default_backend control\n\
             backend control\n  server node1 {} send-proxy-v2\n\n\
             frontend passive\n  bind 127.0.0.3:{base}-{}\n  default_backend passive\n\
             backend passive\n  server node1 127.0.0.1 send-proxy-v2\n",
            server.explicit,
            base + 9
        ),
        ("127.0.0.3", control_port),
    );
    let upload = support::local_file(&server, "up.bin", &[9u8; 300_000]);
    // The certificate names localhost: curl reaches the balancer under that name.
    let url = |path: &str| format!("ftp://localhost:{control_port}{path}");
    let via = format!("localhost:{control_port}:127.0.0.3:{control_port}");
    let up = curl(
        &server,
        url("/up.bin"),
        &[
            "--connect-to",
            &via,
            "--ssl-reqd",
            "--disable-epsv",
            "-T",
            &upload,
        ],
    );
    let down = curl(
        &server,
        url("/up.bin"),
        &[
            "--connect-to",
            &via,
            "--ssl-reqd",
            "--disable-epsv",
            "-o",
            "/dev/null",
            "--write-out",
            "%{size_download}",
        ],
    );
    drop(balancer);
    up.assert_ok("upload through the balancer");
    down.assert_ok("download through the balancer");
    assert!(down.stdout.ends_with("300000"), "{down}");
    // The 227 named the balancer, and the data connection came through it.
    let pasv = (base..base + 10).map(|p| format!("127,0,0,3,{},{}", p >> 8, p & 0xff));
    assert!(
        pasv.clone().any(|a| down.stderr.contains(&a)),
        "no PASV reply naming 127.0.0.3 in:\n{down}"
    );
    assert_eq!(server.files().read("up.bin"), vec![9u8; 300_000]);
}

#[test]
fn the_documented_haproxy_configuration_is_valid_and_so_is_its_node_configuration() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/deploy/haproxy.cfg");
    let run = support::run_client(Command::new("haproxy").args(["-c", "-f", path]), TIMEOUT);
    run.assert_ok("haproxy -c docs/deploy/haproxy.cfg");
    // The node's ftpsd.toml in its comments: the indented comment lines after the marker.
    let text = std::fs::read_to_string(path).unwrap();
    let node: String = text
        .lines()
        .skip_while(|l| !l.contains("Each node's ftpsd.toml"))
        .skip(1)
        .take_while(|l| l.starts_with("#   ") || *l == "#")
        .filter_map(|l| l.strip_prefix("#   "))
        .map(|l| format!("{}\n", l.split("  #").next().unwrap_or(l).trim_end()))
        .collect();
    let config = ftps_server::Config::parse(&node)
        .unwrap_or_else(|e| panic!("the node configuration does not load: {e}\n{node}"));
    assert!(config.listen[0].proxy_protocol);
    assert!(config.proxy_protocol.passive && config.proxy_protocol.announce_destination);
    assert_eq!(config.passive.ports, Some(50000..=50999));
}
