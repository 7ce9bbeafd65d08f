//! Timeouts during transfers, broken and hostile data connections, and concurrent writers.

mod support;

use std::fs;
use std::time::{Duration, Instant};

use support::client::{Control, Login};
use support::{ftpsd, logged_in};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

#[tokio::test]
async fn a_slow_transfer_is_not_an_idle_session() {
    // The idle timeout counts time without commands; a transfer in progress is not idle.
    let server = ftpsd().start_with_config("[timeouts]\nidle = 1\ntransfer_stall = 30\n");
    let mut c = Control::login_default(&server).await;
    let (first, data) = c.begin("STOR slow").await;
    assert_eq!(first.code.0, 150);
    let mut data = data.expect("data connection");
    for _ in 0..6 {
        data.write(&[7u8; 1000]).await.expect("write");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    data.upload(b"end").await.expect("finish");
    let reply = c.reply().await;
    assert_eq!(reply.code.0, 226, "slow upload: {reply}\n{}", c.transcript);
    assert_eq!(
        fs::metadata(server.data_dir().join("slow")).unwrap().len(),
        6003
    );
}

#[tokio::test]
async fn a_stalled_upload_gets_426() {
    let server = ftpsd().start_with_config("[timeouts]\ntransfer_stall = 2\n");
    let mut c = Control::login_default(&server).await;
    let (first, data) = c.begin("STOR stalled").await;
    assert_eq!(first.code.0, 150);
    let mut data = data.expect("data connection");
    data.write(&[1u8; 5000]).await.unwrap();
    let started = Instant::now();
    let reply = c.reply().await;
    assert_eq!(reply.code.0, 426, "{reply}\n{}", c.transcript);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(
        !server.data_dir().join("stalled").exists(),
        "a stalled upload was kept"
    );
    drop(data);
    c.expect("NOOP", 200).await;
}

#[tokio::test]
async fn a_stalled_download_gets_426() {
    let server = ftpsd().start_with_config("[timeouts]\ntransfer_stall = 2\n");
    fs::write(server.data_dir().join("big"), vec![3u8; 32 << 20]).unwrap();
    let mut c = Control::login_default(&server).await;
    c.expect("TYPE I", 200).await;
    let (first, data) = c.begin("RETR big").await;
    assert_eq!(first.code.0, 150);
    // Never read: the server's writes block until the stall timeout.
    let started = Instant::now();
    let reply = c.reply().await;
    assert_eq!(reply.code.0, 426, "{reply}\n{}", c.transcript);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    drop(data);
    c.expect("NOOP", 200).await;
}

#[tokio::test]
async fn a_data_connection_without_tls_handshake_times_out() {
    let server = ftpsd().start_with_config("[timeouts]\ntls_handshake = 2\n");
    fs::write(server.data_dir().join("f"), b"x").unwrap();
    let mut c = Control::login_default(&server).await;
    let tcp = c.open_passive().await;
    // Connect, but never send a ClientHello.
    c.send_line("RETR f").await;
    let mut reply = c.reply().await;
    if reply.code.is_preliminary() {
        reply = c.reply().await;
    }
    assert_eq!(reply.code.0, 425, "{reply}\n{}", c.transcript);
    drop(tcp);
    assert_eq!(c.retr("f").await, b"x");
}

#[tokio::test]
async fn garbage_on_the_data_connection_fails_the_transfer_not_the_session() {
    let server = ftpsd().start();
    fs::write(server.data_dir().join("f"), b"x").unwrap();
    let mut c = Control::login_default(&server).await;
    let mut tcp = c.open_passive().await;
    tcp.write_all(b"this is not TLS\r\n\r\n").await.unwrap();
    c.send_line("RETR f").await;
    let mut reply = c.reply().await;
    if reply.code.is_preliminary() {
        reply = c.reply().await;
    }
    assert_eq!(reply.code.0, 425, "{reply}\n{}", c.transcript);
    assert_eq!(c.retr("f").await, b"x");
}

#[tokio::test]
async fn control_connection_lost_during_a_transfer() {
    let server = ftpsd().start();
    fs::write(server.data_dir().join("big"), vec![4u8; 16 << 20]).unwrap();
    {
        let mut c = Control::login_default(&server).await;
        let (first, data) = c.begin("RETR big").await;
        assert_eq!(first.code.0, 150);
        let mut data = data.unwrap();
        data.read_some(1000).await.unwrap();
        // Both connections vanish.
    }
    {
        let mut c = Control::login_default(&server).await;
        let (first, data) = c.begin("STOR partial").await;
        assert_eq!(first.code.0, 150);
        data.unwrap().write(&[1u8; 10_000]).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The server is fine, and nothing half-uploaded appears.
    let mut c = Control::login_default(&server).await;
    assert_eq!(c.retr("big").await.len(), 16 << 20);
    assert!(!server.data_dir().join("partial").exists());
}

#[tokio::test]
async fn abor_during_an_upload_discards_it() {
    let server = ftpsd().start();
    fs::write(server.data_dir().join("f"), b"original").unwrap();
    let mut c = Control::login_default(&server).await;
    let (first, data) = c.begin("STOR f").await;
    assert_eq!(first.code.0, 150);
    let mut data = data.unwrap();
    data.write(&[0u8; 50_000]).await.unwrap();
    c.send_line("ABOR").await;
    let a = c.reply().await;
    let codes = if a.code.0 == 426 {
        vec![a.code.0, c.reply().await.code.0]
    } else {
        vec![a.code.0]
    };
    assert!(
        codes == [426, 226] || codes == [226],
        "ABOR during STOR: {codes:?}\n{}",
        c.transcript
    );
    drop(data);
    assert_eq!(fs::read(server.data_dir().join("f")).unwrap(), b"original");
    c.expect("NOOP", 200).await;
}

#[tokio::test]
async fn quit_during_a_transfer_waits_for_it() {
    // RFC 959: QUIT during a transfer closes after the transfer's reply.
    let (server, mut c) = logged_in().await;
    let (first, data) = c.begin("STOR q").await;
    assert_eq!(first.code.0, 150);
    let mut data = data.unwrap();
    data.write(b"before quit ").await.unwrap();
    c.send_line("QUIT").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _ = data.upload(b"and after").await;
    let replies = c.expect_closed().await;
    let codes: Vec<u16> = replies.iter().map(|r| r.code.0).collect();
    assert!(
        codes == [226, 221] || codes == [426, 221] || codes == [221],
        "QUIT during STOR: {codes:?}\n{}",
        c.transcript
    );
    if codes[0] == 226 {
        assert_eq!(
            fs::read(server.data_dir().join("q")).unwrap(),
            b"before quit and after"
        );
    }
}

#[tokio::test]
async fn concurrent_uploads_to_one_name_never_mix() {
    let server = ftpsd().start();
    let mut tasks = Vec::new();
    for i in 0..4u8 {
        let login = Login::default_user(&server);
        tasks.push(tokio::spawn(async move {
            let mut c = login.protected().await;
            c.stor("same", &vec![i; 3 << 20]).await;
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let got = fs::read(server.data_dir().join("same")).unwrap();
    assert_eq!(got.len(), 3 << 20);
    assert!(got.iter().all(|&b| b == got[0]), "uploads were mixed");
}

#[tokio::test]
async fn sessions_per_user_are_limited() {
    let server = ftpsd().start_with_config("[limits]\nmax_sessions_per_user = 2\n");
    let _a = Control::login_default(&server).await;
    let _b = Control::login_default(&server).await;
    let mut c = Control::connect_auth(&server).await;
    c.expect("USER ftps", 331).await;
    let reply = c.cmd(&format!("PASS {}", server.password)).await;
    assert_eq!(reply.code.0, 421, "third session of one user: {reply}");
}

#[tokio::test]
async fn a_reset_control_connection_does_not_hurt_the_server() {
    let server = ftpsd().start();
    for _ in 0..20 {
        let mut tcp = TcpStream::connect(server.explicit).await.unwrap();
        tcp.write_all(b"AUTH TLS\r\n").await.unwrap();
        tcp.write_all(b"\x16\x03\x01\x00\x05hello").await.unwrap();
        drop(tcp);
    }
    let mut c = Control::login_default(&server).await;
    c.expect("NOOP", 200).await;
}

#[tokio::test]
async fn fifty_concurrent_logins() {
    let server = ftpsd().start();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let login = Login::default_user(&server);
        tasks.push(tokio::spawn(async move {
            let mut c = login.logged_in().await;
            c.expect("PWD", 257).await;
            c.expect("QUIT", 221).await;
        }));
    }
    for t in tasks {
        t.await.expect("login task");
    }
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "50 logins took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn passwords_with_spaces_and_non_ascii() {
    let server = ftpsd().start();
    for (user, password) in [("spacey", "with spaces  inside"), ("umlaut", "pässwörd-ß")] {
        server.add_user(user, password, &[]);
        let mut c = Control::connect_auth(&server).await;
        c.user_pass(user, password).await;
    }
}
