//! Garage, a real S3 server, on loopback for the S3-backed users of the tests and the bench:
//! a single node in its own temporary directory, with one bucket and one access key.
//!
//! The test command installs `garage` when it is missing (scripts/test.sh); the binary is
//! found on `PATH`, or named by `GARAGE_BIN`.

use std::fs;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::files::tempdir;

/// The environment variable that names the garage binary.
pub const GARAGE_BIN: &str = "GARAGE_BIN";

/// How long Garage may take to come up and accept its layout.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// The signing region Garage is configured with.
pub const REGION: &str = "garage";

/// A running single-node Garage with one bucket; killed on drop.
pub struct Garage {
    child: Option<Child>,
    /// For [`Garage::shared`]: the pipe whose end (when this process ends) stops Garage.
    lifeline: Option<ChildStdin>,
    dir: tempfile::TempDir,
    config: PathBuf,
    /// `http://127.0.0.1:PORT`, the S3 API.
    pub endpoint: String,
    /// The bucket the key may read and write.
    pub bucket: String,
    /// The access key id.
    pub key_id: String,
    /// The secret access key (a throw-away key of this instance only).
    pub secret: String,
}

impl Garage {
    /// The garage binary: `GARAGE_BIN`, or `garage` on `PATH` (or in `~/.cargo/bin`).
    pub fn binary() -> PathBuf {
        if let Some(path) = std::env::var_os(GARAGE_BIN) {
            return PathBuf::from(path);
        }
        let on_path = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .chain(std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo/bin")))
            .map(|dir| dir.join("garage"))
            .find(|p| p.is_file());
        on_path.unwrap_or_else(|| {
            panic!(
                "garage is not installed: run the test command (scripts/test.sh installs it), \
                 or `cargo install garage --locked --no-default-features --features \
                 bundled-libs,lmdb,sqlite`, or name the binary in {GARAGE_BIN}"
            )
        })
    }

    /// Starts a node, gives it a layout, and makes the bucket `ftps` and a key for it.
    pub fn start() -> Garage {
        Self::start_node(false)
    }

    /// One Garage for the whole test process, started on first use. A static is never
    /// dropped, so this node is stopped (and its directory removed) by a shell that waits
    /// on a pipe from this process: the pipe closes when the process ends, however it ends.
    pub fn shared() -> &'static Garage {
        static SHARED: OnceLock<Garage> = OnceLock::new();
        SHARED.get_or_init(|| Self::start_node(true))
    }

    fn start_node(tied_to_this_process: bool) -> Garage {
        let dir = tempdir();
        let (rpc, s3, admin) = (free_port(), free_port(), free_port());
        let config = dir.path().join("garage.toml");
        let secret: String = (0..32)
            .map(|_| format!("{:02x}", rand::random::<u8>()))
            .collect();
        let text = format!(
            r#"metadata_dir = "{meta}"
data_dir = "{data}"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:{rpc}"
rpc_public_addr = "127.0.0.1:{rpc}"
rpc_secret = "{secret}"

[s3_api]
s3_region = "{REGION}"
api_bind_addr = "127.0.0.1:{s3}"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:{admin}"
"#,
            meta = dir.path().join("meta").display(),
            data = dir.path().join("data").display(),
        );
        fs::write(&config, text).expect("write garage.toml");
        let log = fs::File::create(dir.path().join("garage.log")).expect("garage log");
        let mut command = if tied_to_this_process {
            // `read` returns at end of file on the pipe, that is when this process is gone.
            let mut sh = Command::new("sh");
            sh.arg("-c")
                .arg(
                    "\"$0\" -c \"$1\" server </dev/null & pid=$!; \
                     read -r _ || true; kill \"$pid\"; wait \"$pid\"; rm -rf \"$2\"",
                )
                .arg(Self::binary())
                .arg(&config)
                .arg(dir.path())
                .stdin(Stdio::piped());
            sh
        } else {
            let mut garage = Command::new(Self::binary());
            garage
                .arg("-c")
                .arg(&config)
                .arg("server")
                .stdin(Stdio::null());
            garage
        };
        let mut child = command
            .env("RUST_LOG", "garage=warn")
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start garage");
        let lifeline = child.stdin.take();
        let mut garage = Garage {
            child: Some(child),
            lifeline,
            dir,
            config,
            endpoint: format!("http://127.0.0.1:{s3}"),
            bucket: "ftps".into(),
            key_id: String::new(),
            secret: String::new(),
        };
        garage.wait_for(SocketAddr::from(([127, 0, 0, 1], s3)));
        let node = garage.node_id();
        garage.cli(&["layout", "assign", "-z", "dc1", "-c", "1G", &node]);
        garage.cli(&["layout", "apply", "--version", "1"]);
        garage.cli(&["bucket", "create", "ftps"]);
        let key = garage.cli(&["key", "create", "ftps-tests"]);
        let text = String::from_utf8_lossy(&key.stdout).into_owned();
        garage.key_id = field(&text, "Key ID").expect("key id in `garage key create`");
        garage.secret = field(&text, "Secret key").expect("secret in `garage key create`");
        garage.cli(&[
            "bucket",
            "allow",
            "--read",
            "--write",
            "--owner",
            "ftps",
            "--key",
            "ftps-tests",
        ]);
        garage
    }

    /// Runs `garage -c CONFIG ARGS...`, which must succeed.
    pub fn cli(&self, args: &[&str]) -> Output {
        let out = Command::new(Self::binary())
            .arg("-c")
            .arg(&self.config)
            .args(args)
            .output()
            .expect("run garage");
        assert!(
            out.status.success(),
            "garage {args:?} failed: {}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log_text()
        );
        out
    }

    /// The node's id, once its RPC answers.
    fn node_id(&self) -> String {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            let out = Command::new(Self::binary())
                .arg("-c")
                .arg(&self.config)
                .args(["node", "id", "-q"])
                .output()
                .expect("run garage node id");
            if out.status.success() {
                let text = String::from_utf8_lossy(&out.stdout);
                let id = text.trim().split('@').next().unwrap_or("").to_string();
                if !id.is_empty() {
                    return id;
                }
            }
            assert!(
                Instant::now() < deadline,
                "garage node id: {}{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn wait_for(&mut self, addr: SocketAddr) {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("garage exited ({status}):\n{}", self.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "garage did not listen on {addr}:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A credentials file for the key, as an ftpsd `credentials = { file = ... }` reads it.
    pub fn write_credentials_file(&self, path: &Path) {
        let text = format!(
            "[default]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            self.key_id, self.secret
        );
        fs::write(path, text).expect("write credentials file");
    }

    /// A `[storage.s3.NAME]` table of an ftpsd configuration for this bucket, reading the
    /// key from the file `credentials`, with `extra` lines (e.g. `part_size = ...`).
    pub fn store_table(&self, name: &str, credentials: &Path, extra: &str) -> String {
        format!(
            "[storage.s3.{name}]\nendpoint = \"{}\"\nregion = \"{REGION}\"\nbucket = \"{}\"\n\
             credentials = {{ file = \"{}\" }}\n{extra}\n",
            self.endpoint,
            self.bucket,
            credentials.display()
        )
    }

    /// An opendal operator on the bucket under `root` (a key prefix, or `/`), signed with
    /// the key: the S3 client the tests and the bench use to look at the bucket directly.
    pub fn operator(&self, root: &str) -> opendal::Operator {
        opendal::install_default();
        let builder = opendal::services::S3::default()
            .bucket(&self.bucket)
            .endpoint(&self.endpoint)
            .region(REGION)
            .root(root)
            .disable_config_load()
            .disable_ec2_metadata()
            .access_key_id(&self.key_id)
            .secret_access_key(&self.secret);
        // Retries as ftpsd's own operator does, so that a test never fails on one dropped
        // request of a loaded machine.
        opendal::Operator::new(builder)
            .expect("an S3 operator for Garage")
            .layer(opendal::layers::RetryLayer::new().with_max_times(3))
    }

    /// curl with SigV4 signing for this Garage and its key: an S3 client as it comes.
    pub fn signed_curl(&self) -> Command {
        let mut cmd = Command::new("curl");
        cmd.args(["--silent", "--show-error"])
            .arg("--aws-sigv4")
            .arg(format!("aws:amz:{REGION}:s3"))
            .arg("--user")
            .arg(format!("{}:{}", self.key_id, self.secret));
        cmd
    }

    /// A signed S3 `GET` of `path_and_query` (e.g. `/ftps?uploads=`) straight to Garage,
    /// by curl's SigV4 signing: what the bucket holds, bypassing ftpsd.
    pub fn s3_get(&self, path_and_query: &str) -> String {
        let out = self
            .signed_curl()
            .arg("--fail-with-body")
            // The SHA-256 of an empty body, which Garage requires to be sent.
            .arg("-H")
            .arg("x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
            .arg(format!("{}{path_and_query}", self.endpoint))
            .output()
            .expect("run curl");
        let body = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "S3 GET {path_and_query}: {body}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        body
    }

    /// The keys of the bucket's objects under `prefix`, straight from Garage.
    pub fn object_keys(&self, prefix: &str) -> Vec<String> {
        // SigV4 signs the query with `/` encoded.
        let prefix = prefix.replace('/', "%2F");
        let body = self.s3_get(&format!("/{}?list-type=2&prefix={prefix}", self.bucket));
        xml_values(&body, "Key")
    }

    /// The keys of the multipart uploads not completed nor aborted, straight from Garage.
    pub fn unfinished_uploads(&self) -> Vec<String> {
        let body = self.s3_get(&format!("/{}?uploads=", self.bucket));
        xml_values(&body, "Key")
    }

    /// Garage's own log, for failure messages.
    pub fn log_text(&self) -> String {
        fs::read_to_string(self.dir.path().join("garage.log")).unwrap_or_default()
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        // Closing the pipe stops a shared node's shell, which stops the node.
        drop(self.lifeline.take());
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The text of every `<tag>...</tag>` in an S3 XML answer.
fn xml_values(body: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    body.split(&open)
        .skip(1)
        .filter_map(|rest| rest.split_once(&close).map(|(v, _)| v.to_string()))
        .collect()
}

/// `Name: value` from a CLI output.
fn field(text: &str, name: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key.trim() == name).then(|| value.trim().to_string())
    })
}

/// A port nobody listens on right now.
/// A TCP port free on 127.0.0.1 now (the OS picks it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}
