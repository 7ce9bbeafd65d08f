//! Hooks (docs/operations.md, "Events and hooks"): shell scripts run as hook commands on
//! real uploads, and webhooks POSTed to a real HTTP receiver (tests/py/webhook_receiver.py)
//! that answers as told: signatures, retries, refusals, full queues and shutdown. The
//! counters are scraped from the metrics listener with curl.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use support::client::Control;
use support::{ftpsd, sample, Server};

const TIMEOUT: Duration = Duration::from_secs(120);

/// How long a test waits for what hooks do in the background.
const WAIT: Duration = Duration::from_secs(60);

const RECEIVER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/webhook_receiver.py");

/// A variable of the server's environment that must reach no hook command.
const MARKER: (&str, &str) = ("AWS_SECRET_ACCESS_KEY", "hooks-test-marker-not-for-hooks");

/// Saves the environment the script was started with (as the server set it, not the
/// shell's own additions) to a new file in the directory `$1`.
const RECORD_ENV: &str = r#"#!/bin/sh
set -eu
tr '\0' '\n' < /proc/$$/environ > "$1/.$$"
mv "$1/.$$" "$1/$$"
"#;

/// Starts a child that outlives any timeout, saves both process ids to a new file in the
/// directory `$1`, and waits.
const SLOW: &str = r#"#!/bin/sh
sleep 300 &
echo "$$ $!" > "$1/.$$"
mv "$1/.$$" "$1/$$"
wait
"#;

/// Writes an executable script into `dir`.
fn script(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, text).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// A fresh directory in `dir`.
fn subdir(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    fs::create_dir(&path).unwrap();
    path
}

/// Waits (up to [`WAIT`]) until `done` says yes, and panics with `what` otherwise.
fn wait_until<T>(what: &str, mut done: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(value) = done() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The files a script wrote into `dir` (not the ones still being written), once there are
/// `count`.
fn written_files(dir: &Path, count: usize) -> Vec<String> {
    wait_until(&format!("{count} files in {}", dir.display()), || {
        let texts: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .map(|e| fs::read_to_string(e.path()).unwrap())
            .collect();
        (texts.len() >= count).then_some(texts)
    })
}

/// `NAME=value` lines as a map.
fn environment(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (name, value) = l.split_once('=').expect("NAME=value");
            (name.to_string(), value.to_string())
        })
        .collect()
}

fn scrape(server: &Server) -> BTreeMap<String, f64> {
    support::scrape_metrics(server)
}

fn hook_runs(kind: &str, result: &str) -> String {
    format!("ftpsd_hook_runs_total{{kind=\"{kind}\",result=\"{result}\"}}")
}

/// The metrics once every `(name, value)` of `wanted` has at least its value.
fn metrics_reaching(server: &Server, wanted: &[(&str, f64)]) -> BTreeMap<String, f64> {
    wait_until(&format!("metrics {wanted:?}"), || {
        let samples = scrape(server);
        wanted
            .iter()
            .all(|(name, value)| sample(&samples, name) >= *value)
            .then_some(samples)
    })
}

/// Whether process `pid` still runs (a zombie does not).
fn running(pid: &str) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // "PID (NAME) STATE ...": the state follows the last parenthesis.
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X')),
        Err(_) => false,
    }
}

/// tests/py/webhook_receiver.py, running until dropped.
struct Receiver {
    child: Child,
    port: u16,
    record: PathBuf,
}

impl Receiver {
    /// Starts the receiver recording to `dir/NAME.jsonl`, with `args`.
    fn start(dir: &Path, name: &str, args: &[&str]) -> Receiver {
        let record = dir.join(format!("{name}.jsonl"));
        let mut child = Command::new("python3")
            .arg(RECEIVER)
            .arg(&record)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start python3 (bash scripts/test.sh installs it)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("listening ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("the receiver printed {line:?}"));
        Receiver {
            child,
            port,
            record,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The requests received so far, once there are at least `count`.
    fn requests(&self, count: usize) -> Vec<Value> {
        wait_until(&format!("{count} requests at {}", self.port), || {
            let text = fs::read_to_string(&self.record).unwrap_or_default();
            let requests: Vec<Value> = text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            (requests.len() >= count).then_some(requests)
        })
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn command_hooks_get_each_event_in_variables_and_nothing_of_the_servers_environment() {
    let dir = support::tempdir();
    let record = script(dir.path(), "record-env.sh", RECORD_ENV);
    let uploads = subdir(dir.path(), "uploads");
    let all = subdir(dir.path(), "all");
    let server = ftpsd().env(MARKER.0, MARKER.1).start_with_config(&format!(
        "[metrics]\nlisten = \"127.0.0.1:0\"\n\n\
         [[hooks.commands]]\nevents = [\"upload\"]\ncommand = [\"{}\", \"{}\"]\n\
         timeout = 30\nmax_running = 2\nqueue = 10\n\n\
         [[hooks.commands]]\nevents = [\"*\"]\ncommand = [\"{}\", \"{}\"]\n",
        record.display(),
        uploads.display(),
        record.display(),
        all.display()
    ));
    let started = SystemTime::now();
    let mut c = Control::login_default(&server).await;
    c.stor("plain.txt", &[b'p'; 1000]).await;
    c.stor("with space.txt", &[b's'; 2345]).await;
    c.expect("RNFR plain.txt", 350).await;
    c.expect("RNTO renamed.txt", 250).await;
    c.expect("QUIT", 221).await;

    // The upload hook: both uploads, with the facts of each, in a clean environment.
    let mut seen: Vec<BTreeMap<String, String>> = written_files(&uploads, 2)
        .iter()
        .map(|t| environment(t))
        .collect();
    assert_eq!(seen.len(), 2, "{seen:?}");
    seen.sort_by(|a, b| a["FTPSD_PATH"].cmp(&b["FTPSD_PATH"]));
    let expected_names: BTreeSet<&str> = [
        "PATH",
        "FTPSD_EVENT",
        "FTPSD_TIME",
        "FTPSD_SESSION",
        "FTPSD_USER",
        "FTPSD_CLIENT",
        "FTPSD_PATH",
        "FTPSD_BYTES",
    ]
    .into();
    for (vars, (path, bytes)) in seen
        .iter()
        .zip([("/plain.txt", "1000"), ("/with space.txt", "2345")])
    {
        let names: BTreeSet<&str> = vars.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, expected_names, "{vars:?}");
        assert_eq!(vars["FTPSD_EVENT"], "upload");
        assert_eq!(vars["FTPSD_USER"], "ftps");
        assert_eq!(vars["FTPSD_PATH"], path);
        assert_eq!(vars["FTPSD_BYTES"], bytes);
        assert_eq!(vars["FTPSD_CLIENT"], "127.0.0.1");
        let time: f64 = vars["FTPSD_TIME"].parse().expect("seconds");
        let since = started.duration_since(SystemTime::UNIX_EPOCH).unwrap();
        assert!(
            (since.as_secs_f64() - 1.0..since.as_secs_f64() + 120.0).contains(&time),
            "{time}"
        );
        assert!(!vars.values().any(|v| v.contains(MARKER.1)), "{vars:?}");
    }
    assert_eq!(seen[0]["FTPSD_SESSION"], seen[1]["FTPSD_SESSION"]);

    // The hook on every event: login, two uploads, the rename (with its target, without
    // bytes), the logout.
    let files = written_files(&all, 5);
    assert_eq!(files.len(), 5, "{files:?}");
    let events: BTreeMap<String, BTreeMap<String, String>> = files
        .iter()
        .map(|t| environment(t))
        .map(|vars| {
            let path = vars
                .get("FTPSD_PATH")
                .map_or("-", |p| p.as_str())
                .to_string();
            (format!("{} {path}", vars["FTPSD_EVENT"]), vars)
        })
        .collect();
    let kinds: Vec<&str> = events.keys().map(|k| k.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "login -",
            "logout -",
            "rename /plain.txt",
            "upload /plain.txt",
            "upload /with space.txt"
        ],
        "{events:?}"
    );
    let rename = &events["rename /plain.txt"];
    assert_eq!(rename["FTPSD_TARGET"], "/renamed.txt");
    assert!(!rename.contains_key("FTPSD_BYTES"), "{rename:?}");
    for vars in events.values() {
        assert_eq!(vars["FTPSD_SESSION"], seen[0]["FTPSD_SESSION"], "{vars:?}");
        assert_eq!(vars["FTPSD_USER"], "ftps", "{vars:?}");
        assert!(!vars.contains_key(MARKER.0), "{vars:?}");
    }

    let metrics = metrics_reaching(&server, &[(&hook_runs("command", "ok"), 7.0)]);
    assert_eq!(
        sample(&metrics, &hook_runs("command", "ok")),
        7.0,
        "{metrics:?}"
    );
    assert_eq!(sample(&metrics, &hook_runs("command", "failed")), 0.0);
}

#[tokio::test]
async fn a_slow_command_is_killed_at_its_timeout_and_never_holds_a_transfer() {
    let dir = support::tempdir();
    let slow = script(dir.path(), "slow.sh", SLOW);
    let pids = subdir(dir.path(), "pids");
    let server = ftpsd().start_with_config(&format!(
        "[metrics]\nlisten = \"127.0.0.1:0\"\n\n\
         [[hooks.commands]]\nevents = [\"upload\"]\ncommand = [\"{}\", \"{}\"]\n\
         timeout = 10\nmax_running = 2\n",
        slow.display(),
        pids.display()
    ));
    let mut c = Control::login_default(&server).await;
    c.stor("first.bin", b"first").await;
    let first = written_files(&pids, 1);
    let first: Vec<&str> = first[0].split_whitespace().collect();
    assert_eq!(first.len(), 2, "{first:?}");
    // The second upload completes while the first one's hook runs.
    c.stor("second.bin", b"second").await;
    assert!(
        first.iter().all(|pid| running(pid)),
        "the hook ended before the next upload's 226:\n{}",
        server.log_text()
    );

    // Both runs are killed at the timeout, with the children they started.
    let metrics = metrics_reaching(&server, &[(&hook_runs("command", "timeout"), 2.0)]);
    assert_eq!(sample(&metrics, &hook_runs("command", "timeout")), 2.0);
    assert_eq!(sample(&metrics, &hook_runs("command", "ok")), 0.0);
    let both = written_files(&pids, 2);
    assert_eq!(both.len(), 2, "{both:?}");
    for pid in both.iter().flat_map(|t| t.split_whitespace()) {
        assert!(!running(pid), "process {pid} survived the timeout");
    }
    let log = server.log_all();
    let killed = log
        .lines()
        .filter(|l| l.contains("hook command timed out") && l.contains("hook=commands[0]"))
        .filter(|l| l.contains("event=\"upload\""))
        .count();
    assert_eq!(killed, 2, "{log}");
}

/// The JSON object of a recorded request's body.
fn body(request: &Value) -> serde_json::Map<String, Value> {
    let text = request["body"].as_str().expect("a body");
    match serde_json::from_str(text) {
        Ok(Value::Object(fields)) => fields,
        other => panic!("not a JSON object: {text} ({other:?})"),
    }
}

#[tokio::test]
async fn webhooks_post_signed_json_retry_5xx_and_429_and_not_4xx() {
    let dir = support::tempdir();
    let secret = dir.path().join("webhook.secret");
    fs::write(&secret, "k3y-only-for-tests\n").unwrap();
    let secret_arg = secret.display().to_string();
    let receiver = Receiver::start(
        dir.path(),
        "signed",
        &[
            "--secret-file",
            &secret_arg,
            "--statuses",
            "500,429,200,400",
        ],
    );
    let failing = Receiver::start(dir.path(), "failing", &["--statuses", "503,503,503,503"]);
    let server = ftpsd().start_with_config(&format!(
        "[metrics]\nlisten = \"127.0.0.1:0\"\n\n\
         [[hooks.webhooks]]\nevents = [\"upload\", \"delete\"]\nurl = \"{}\"\n\
         secret_file = \"{secret_arg}\"\ntimeout = 10\nretries = 5\nqueue = 10\n\n\
         [[hooks.webhooks]]\nevents = [\"mkdir\"]\nurl = \"{}\"\nretries = 1\n",
        receiver.url("/ftp-events"),
        failing.url("/"),
    ));
    let started = SystemTime::now();
    let mut c = Control::login_default(&server).await;
    c.stor("a.txt", &[b'a'; 100]).await;
    c.expect("DELE a.txt", 250).await;
    c.stor("c.txt", b"seven!!").await;
    c.expect("MKD d", 257).await;

    let metrics = metrics_reaching(
        &server,
        &[
            (&hook_runs("webhook", "ok"), 2.0),
            (&hook_runs("webhook", "failed"), 2.0),
        ],
    );
    assert_eq!(
        sample(&metrics, &hook_runs("webhook", "ok")),
        2.0,
        "{metrics:?}"
    );
    assert_eq!(sample(&metrics, &hook_runs("webhook", "failed")), 2.0);

    // The upload after a 500 and a 429, the delete refused with 400 (not retried), the
    // second upload: in the order of the events.
    let requests = receiver.requests(5);
    let statuses: Vec<u64> = requests
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [500, 429, 200, 400, 200], "{requests:?}");
    assert_eq!(requests[0]["body"], requests[1]["body"]);
    assert_eq!(requests[0]["body"], requests[2]["body"]);
    let since = started
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let mut sessions = BTreeSet::new();
    for (request, (kind, path, bytes)) in requests[2..].iter().zip([
        ("upload", "/a.txt", Some(100)),
        ("delete", "/a.txt", None),
        ("upload", "/c.txt", Some(7)),
    ]) {
        assert_eq!(request["path"], "/ftp-events");
        let headers = &request["headers"];
        assert_eq!(headers["content-type"], "application/json", "{request}");
        assert_eq!(headers["x-ftpsd-event"], kind, "{request}");
        // The signature, checked here and by the receiver the way the docs show.
        let raw = request["body"].as_str().unwrap();
        let mut mac = Hmac::<Sha256>::new_from_slice(b"k3y-only-for-tests").unwrap();
        mac.update(raw.as_bytes());
        let expected = format!("sha256={}", support::hex(&mac.finalize().into_bytes()));
        assert_eq!(headers["x-ftpsd-signature"], expected.as_str(), "{request}");
        assert_eq!(request["signature_ok"], true, "{request}");

        let fields = body(request);
        let mut names: Vec<&str> = fields.keys().map(|k| k.as_str()).collect();
        names.sort();
        let mut expected_names = vec!["client", "event", "path", "session", "time", "user"];
        if bytes.is_some() {
            expected_names.push("bytes");
        }
        expected_names.sort();
        assert_eq!(names, expected_names, "{raw}");
        assert_eq!(fields["event"], kind);
        assert_eq!(fields["user"], "ftps");
        assert_eq!(fields["client"], "127.0.0.1");
        assert_eq!(fields["path"], path);
        if let Some(bytes) = bytes {
            assert_eq!(fields["bytes"], bytes, "{raw}");
        }
        let time = fields["time"].as_f64().expect("time in seconds");
        assert!((since - 1.0..since + 120.0).contains(&time), "{raw}");
        sessions.insert(fields["session"].as_u64().expect("a session number"));
    }
    assert_eq!(sessions.len(), 1, "one session: {sessions:?}");

    // retries = 1: the first attempt and one more, unsigned without a secret.
    let refused = failing.requests(2);
    assert_eq!(refused.len(), 2, "{refused:?}");
    for request in &refused {
        assert_eq!(body(request)["event"], "mkdir");
        assert_eq!(body(request)["path"], "/d");
        assert!(
            request["headers"].get("x-ftpsd-signature").is_none(),
            "{request}"
        );
    }
    assert!(!server.log_all().contains("k3y-only-for-tests"));
}

#[tokio::test]
async fn a_full_queue_drops_events_and_shutdown_waits_a_bounded_time_for_the_rest() {
    let dir = support::tempdir();
    let release = dir.path().join("release");
    let never = dir.path().join("never");
    let held = Receiver::start(
        dir.path(),
        "held",
        &["--hold-until", &release.display().to_string()],
    );
    let stuck = Receiver::start(
        dir.path(),
        "stuck",
        &["--hold-until", &never.display().to_string()],
    );
    let hook = |url: String| {
        format!(
            "[[hooks.webhooks]]\nevents = [\"mkdir\"]\nurl = \"{url}\"\ntimeout = 60\n\
             retries = 0\nqueue = 1\n\n"
        )
    };
    let mut server = ftpsd().start_with_config(&format!(
        "[metrics]\nlisten = \"127.0.0.1:0\"\n\n{}{}",
        hook(held.url("/")),
        hook(stuck.url("/"))
    ));
    let mut c = Control::login_default(&server).await;
    c.expect("MKD a", 257).await;
    // Both workers wait for an answer to the first event...
    held.requests(1);
    stuck.requests(1);
    // ...so each queue takes one more, and the three after it are dropped: the sessions
    // never wait.
    for name in ["b", "c", "d", "e"] {
        c.expect(&format!("MKD {name}"), 257).await;
    }
    let metrics = scrape(&server);
    assert_eq!(
        sample(&metrics, "ftpsd_events_dropped_total"),
        6.0,
        "{metrics:?}"
    );

    // At shutdown the first receiver answers, and gets the event its queue held; the
    // second never answers, and its two events are dropped after a few seconds.
    server.signal("TERM");
    fs::write(&release, "").unwrap();
    assert!(
        server.terminate_within(Duration::from_secs(40)),
        "the server did not stop while a webhook hung:\n{}",
        server.log_text()
    );
    let delivered: Vec<String> = held
        .requests(2)
        .iter()
        .map(|r| body(r)["path"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(delivered, ["/a", "/b"]);
    assert_eq!(stuck.requests(1).len(), 1);
    let log = server.log_all();
    let lost: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("hook events not handled at shutdown"))
        .collect();
    assert_eq!(lost.len(), 1, "{log}");
    assert!(
        lost[0].contains("hook=webhooks[1]") && lost[0].contains("events=2"),
        "{}",
        lost[0]
    );
}

#[test]
fn bad_hooks_are_refused_at_start_naming_the_hook() {
    let valid_command = "[[hooks.commands]]\nevents = [\"*\"]\ncommand = [\"/bin/true\"]\n\n";
    let cases: &[(String, &[&str])] = &[
        (
            "[[hooks.commands]]\nevents = [\"uplod\"]\ncommand = [\"/bin/true\"]\n".into(),
            &["hooks.commands[0]", "unknown event \"uplod\""],
        ),
        (
            "[[hooks.commands]]\nevents = [\"upload\"]\ncommand = []\n".into(),
            &["hooks.commands[0]", "command is empty"],
        ),
        (
            format!(
                "{valid_command}[[hooks.commands]]\nevents = [\"upload\"]\n\
                 command = [\"scan-upload\", \"--quiet\"]\n"
            ),
            &[
                "hooks.commands[1]",
                "\"scan-upload\" must be an absolute path",
            ],
        ),
        (
            "[[hooks.webhooks]]\nevents = [\"upload\"]\nurl = \"ftp://example.com/events\"\n"
                .into(),
            &["hooks.webhooks[0]", "must start with http:// or https://"],
        ),
        (
            "[[hooks.webhooks]]\nevents = [\"upload\"]\nurl = \"https://example.com/e\"\n\
             secret_file = \"missing.secret\"\n"
                .into(),
            &[
                "hooks.webhooks[0]",
                "cannot read secret_file",
                "missing.secret",
            ],
        ),
        (
            "[[hooks.webhooks]]\nevents = [\"upload\"]\nurl = \"https://example.com/e\"\n\
             queue = 0\n"
                .into(),
            &["hooks.webhooks[0]", "queue must be at least 1"],
        ),
        (
            format!(
                "{valid_command}[[hooks.webhooks]]\nevents = []\nurl = \"https://example.com/e\"\n"
            ),
            &["hooks.webhooks[0]", "events is empty"],
        ),
    ];
    for (hooks, messages) in cases {
        let dir = support::tempdir();
        let config = dir.path().join("ftpsd.toml");
        fs::write(
            &config,
            format!(
                "state_dir = \"state\"\nlisten = [\"127.0.0.1:0\"]\n\
                 implicit_listen = [\"127.0.0.1:0\"]\n\n{hooks}"
            ),
        )
        .unwrap();
        let run = support::run_client(
            Command::new(support::FTPSD).arg("--config").arg(&config),
            TIMEOUT,
        );
        assert!(!run.status.success(), "{hooks}: started:\n{run}");
        for message in *messages {
            assert!(
                run.stderr.contains(message),
                "{hooks}: no {message:?} in:\n{run}"
            );
        }
        assert!(
            !run.stdout.contains("listening explicit"),
            "{hooks}:\n{run}"
        );
    }
}
