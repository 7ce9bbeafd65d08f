//! Hooks: programs run (`[[hooks.commands]]`) and URLs called (`[[hooks.webhooks]]`) when
//! events happen. docs/operations.md documents both for operators.
//!
//! Each hook has a bounded queue and a worker task of its own. [`Hooks::dispatch`] only
//! offers the event to the queues of the hooks that subscribe to it and never waits: a
//! full queue drops the event, counted in `ftpsd_events_dropped_total`. A command worker
//! runs up to `max_running` programs at once, each in a process group of its own that is
//! killed at the hook's timeout; a webhook worker delivers one event at a time, in order,
//! retrying with backoff. At shutdown the queues close and the workers get
//! [`SHUTDOWN_GRACE`] to finish with what they hold ([`Running::stop`]).

use std::io;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use reqwest::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use reqwest::StatusCode;
use sha2::Sha256;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::events::{Event, EventKind};
use super::metrics::{HookKind, HookResult, HookRuns, Metrics};
use crate::config::{parse_event_names, CommandHook, HooksConfig, WebhookHook};

/// How long the workers get at shutdown to finish the events they hold; what is left then
/// is dropped and logged.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Bytes of a command's standard output, and of its standard error, kept for the log.
const OUTPUT_KEPT: usize = 2048;

/// The longest wait between two webhook attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// The search path of commands when the server itself has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The hooks of the configuration: their queues, and their workers until [`Hooks::start`].
pub struct Hooks {
    queues: Vec<Queue>,
    idle: Mutex<Vec<Worker>>,
}

impl std::fmt::Debug for Hooks {
    // Names only: a webhook's secret must never reach a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.queues.iter().map(|q| &q.name))
            .finish()
    }
}

/// Where [`Hooks::dispatch`] puts the events of one hook.
struct Queue {
    /// `commands[0]`, `webhooks[1]`: as the configuration errors and the log name it.
    name: Arc<str>,
    kinds: Vec<EventKind>,
    tx: mpsc::Sender<Arc<Event>>,
    /// Events queued or being handled, for the count of those lost at shutdown.
    pending: Arc<AtomicUsize>,
    dropped: AtomicU64,
}

/// A hook's worker before it is started.
struct Worker {
    name: Arc<str>,
    rx: mpsc::Receiver<Arc<Event>>,
    pending: Arc<AtomicUsize>,
    job: Job,
}

enum Job {
    Command(Arc<CommandJob>),
    Webhook(WebhookJob),
}

impl Hooks {
    /// The configured hooks with their queues; webhook secrets are read now. An error names
    /// the hook.
    pub fn new(config: &HooksConfig) -> io::Result<Hooks> {
        let mut queues = Vec::new();
        let mut idle = Vec::new();
        let mut add = |name: String, events: &[String], queue: usize, job: Job| {
            let kinds = parse_event_names(events).map_err(|e| invalid(&name, e))?;
            if queue == 0 {
                return Err(invalid(&name, "queue must be at least 1".into()));
            }
            let (tx, rx) = mpsc::channel(queue);
            let name: Arc<str> = name.into();
            let pending = Arc::new(AtomicUsize::new(0));
            queues.push(Queue {
                name: name.clone(),
                kinds,
                tx,
                pending: pending.clone(),
                dropped: AtomicU64::new(0),
            });
            idle.push(Worker {
                name,
                rx,
                pending,
                job,
            });
            Ok(())
        };
        for (i, hook) in config.commands.iter().enumerate() {
            let name = format!("commands[{i}]");
            let job = CommandJob::new(&name, hook)?;
            add(name, &hook.events, hook.queue, Job::Command(Arc::new(job)))?;
        }
        if !config.webhooks.is_empty() {
            let client = reqwest::Client::builder()
                .user_agent(concat!("ftpsd/", env!("CARGO_PKG_VERSION")))
                // A redirected POST would become a GET, or reach a server nobody configured.
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| io::Error::other(format!("hooks.webhooks: HTTP client: {e}")))?;
            for (i, hook) in config.webhooks.iter().enumerate() {
                let name = format!("webhooks[{i}]");
                let job = WebhookJob::new(&name, hook, client.clone())?;
                add(name, &hook.events, hook.queue, Job::Webhook(job))?;
            }
        }
        Ok(Hooks {
            queues,
            idle: Mutex::new(idle),
        })
    }

    /// Whether some hook subscribes to events of `kind`.
    pub fn wants(&self, kind: EventKind) -> bool {
        self.queues.iter().any(|q| q.kinds.contains(&kind))
    }

    /// Offers `event` to every hook that subscribes to it, without waiting: a full (or, at
    /// shutdown, closed) queue drops it and counts it in `metrics`.
    pub fn dispatch(&self, event: Event, metrics: &Metrics) {
        if !self.queues.iter().any(|q| q.kinds.contains(&event.kind)) {
            return;
        }
        let event = Arc::new(event);
        for queue in self.queues.iter().filter(|q| q.kinds.contains(&event.kind)) {
            // Counted first: the worker may finish with it before try_send returns.
            queue.pending.fetch_add(1, Ordering::Relaxed);
            if queue.tx.try_send(event.clone()).is_err() {
                queue.pending.fetch_sub(1, Ordering::Relaxed);
                metrics.event_dropped();
                let dropped = queue.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                // A full queue under a burst would log a line per event: log the 1st, 2nd,
                // 4th, 8th... drop instead; the metric has the exact count.
                if dropped.is_power_of_two() {
                    warn!(
                        hook = %queue.name,
                        event = event.kind.name(),
                        dropped,
                        "hook queue full; event dropped"
                    );
                }
            }
        }
    }

    /// Starts the workers (once; later calls start nothing) and returns their handle.
    pub fn start(&self, runs: HookRuns) -> Running {
        let workers = std::mem::take(&mut *self.idle.lock().unwrap_or_else(|e| e.into_inner()));
        let stop = CancellationToken::new();
        if !workers.is_empty() {
            info!(hooks = workers.len(), "hooks started");
        }
        let tasks = workers
            .into_iter()
            .map(|worker| {
                let name = worker.name.clone();
                let pending = worker.pending.clone();
                let handle = tokio::spawn(worker.run(runs.clone(), stop.clone()));
                Task {
                    name,
                    pending,
                    handle,
                }
            })
            .collect();
        Running { stop, tasks }
    }
}

fn invalid(hook: &str, what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("hooks.{hook}: {what}"))
}

/// The running workers.
#[derive(Debug)]
pub struct Running {
    stop: CancellationToken,
    tasks: Vec<Task>,
}

#[derive(Debug)]
struct Task {
    name: Arc<str>,
    pending: Arc<AtomicUsize>,
    handle: JoinHandle<()>,
}

impl Running {
    /// Closes the queues, lets the workers handle what they hold for up to `grace`, then
    /// stops them (killing the commands still running) and logs how many events each hook
    /// lost.
    pub async fn stop(self, grace: Duration) {
        self.stop.cancel();
        let deadline = tokio::time::Instant::now() + grace;
        for mut task in self.tasks {
            if tokio::time::timeout_at(deadline, &mut task.handle)
                .await
                .is_err()
            {
                task.handle.abort();
                let _ = task.handle.await;
                warn!(
                    hook = %task.name,
                    events = task.pending.load(Ordering::Relaxed),
                    "hook events not handled at shutdown; dropped"
                );
            }
        }
    }
}

impl Worker {
    async fn run(mut self, runs: HookRuns, stop: CancellationToken) {
        let mut closed = false;
        match self.job {
            Job::Command(job) => {
                let slots = Arc::new(Semaphore::new(job.max_running));
                // Dropped with the worker when it is aborted: that kills what still runs.
                let mut running = JoinSet::new();
                while let Some(event) = next(&mut self.rx, &stop, &mut closed).await {
                    let Ok(slot) = slots.clone().acquire_owned().await else {
                        break;
                    };
                    while running.try_join_next().is_some() {}
                    let (job, runs, name) = (job.clone(), runs.clone(), self.name.clone());
                    let pending = self.pending.clone();
                    running.spawn(async move {
                        let result = job.run(&name, &event).await;
                        runs.record(HookKind::Command, result);
                        pending.fetch_sub(1, Ordering::Relaxed);
                        drop(slot);
                    });
                }
                while running.join_next().await.is_some() {}
            }
            Job::Webhook(job) => {
                while let Some(event) = next(&mut self.rx, &stop, &mut closed).await {
                    let result = job.deliver(&self.name, &event).await;
                    runs.record(HookKind::Webhook, result);
                    self.pending.fetch_sub(1, Ordering::Relaxed);
                }
            }
        }
    }
}

/// The next event of the queue. Once `stop` is cancelled the queue is closed to new
/// events, and those it holds are still returned; then `None`.
async fn next(
    rx: &mut mpsc::Receiver<Arc<Event>>,
    stop: &CancellationToken,
    closed: &mut bool,
) -> Option<Arc<Event>> {
    if !*closed {
        tokio::select! {
            biased;
            event = rx.recv() => return event,
            () = stop.cancelled() => {
                rx.close();
                *closed = true;
            }
        }
    }
    rx.recv().await
}

/// A program run for events.
struct CommandJob {
    argv: Vec<String>,
    timeout: Duration,
    max_running: usize,
    /// The server's `PATH`, the only variable of its environment a command gets.
    path: std::ffi::OsString,
}

impl CommandJob {
    fn new(name: &str, hook: &CommandHook) -> io::Result<CommandJob> {
        match hook.command.first() {
            None => return Err(invalid(name, "command is empty".into())),
            Some(program) if !Path::new(program).is_absolute() => {
                return Err(invalid(
                    name,
                    format!("command {program:?} must be an absolute path"),
                ))
            }
            Some(_) => {}
        }
        if hook.timeout == 0 || hook.max_running == 0 {
            return Err(invalid(
                name,
                "timeout and max_running must be at least 1".into(),
            ));
        }
        Ok(CommandJob {
            argv: hook.command.clone(),
            timeout: Duration::from_secs(hook.timeout),
            max_running: hook.max_running,
            path: std::env::var_os("PATH").unwrap_or_else(|| DEFAULT_PATH.into()),
        })
    }

    /// Runs the program for `event` and logs how it ended.
    async fn run(&self, hook: &str, event: &Event) -> HookResult {
        let mut command = tokio::process::Command::new(&self.argv[0]);
        command
            .args(&self.argv[1..])
            // The server's environment may hold credentials (S3 keys): none of it passes.
            .env_clear()
            .env("PATH", &self.path)
            .envs(variables(event))
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // A group of its own, so that the timeout kills what the program started too.
            .process_group(0)
            .kill_on_drop(true);
        let kind = event.kind.name();
        let path = event.path.as_deref();
        let started = Instant::now();
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(e) => {
                warn!(hook = %hook, event = kind, session = event.session, path, error = %e,
                    "hook command could not start");
                return HookResult::Failed;
            }
        };
        let mut group = ProcessGroup(
            child
                .id()
                .and_then(|id| i32::try_from(id).ok())
                .and_then(rustix::process::Pid::from_raw),
        );
        let stdout = Arc::new(Mutex::new(Captured::default()));
        let stderr = Arc::new(Mutex::new(Captured::default()));
        let mut readers = Vec::new();
        if let Some(pipe) = child.stdout.take() {
            readers.push(tokio::spawn(capture(pipe, stdout.clone())));
        }
        if let Some(pipe) = child.stderr.take() {
            readers.push(tokio::spawn(capture(pipe, stderr.clone())));
        }
        let finished = tokio::time::timeout(self.timeout, async {
            let status = child.wait().await;
            // The pipes close once every process that holds them is done.
            for reader in &mut readers {
                let _ = reader.await;
            }
            status
        })
        .await;
        let secs = format!("{:.3}", started.elapsed().as_secs_f64());
        let (out, err) = (shown(&stdout), shown(&stderr));
        match finished {
            Ok(Ok(status)) if status.success() => {
                group.0 = None;
                info!(hook = %hook, event = kind, session = event.session, path, secs,
                    stdout = ?out, stderr = ?err, "hook command succeeded");
                HookResult::Ok
            }
            Ok(Ok(status)) => {
                group.0 = None;
                warn!(hook = %hook, event = kind, session = event.session, path, secs, status = %status,
                    stdout = ?out, stderr = ?err, "hook command failed");
                HookResult::Failed
            }
            Ok(Err(e)) => {
                warn!(hook = %hook, event = kind, session = event.session, path, error = %e,
                    "hook command failed: cannot wait for it");
                HookResult::Failed
            }
            Err(_) => {
                group.kill();
                let _ = child.wait().await;
                warn!(hook = %hook, event = kind, session = event.session, path,
                    timeout = self.timeout.as_secs(), stdout = ?out, stderr = ?err,
                    "hook command timed out; its process group was killed");
                HookResult::Timeout
            }
        }
    }
}

/// The event as environment variables: each field of its JSON as `FTPSD_<FIELD>`
/// (`FTPSD_EVENT`, `FTPSD_USER`, ...); a field the event lacks is not set.
fn variables(event: &Event) -> Vec<(String, String)> {
    let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(event) else {
        return Vec::new();
    };
    fields
        .into_iter()
        .map(|(field, value)| {
            let text = match value {
                serde_json::Value::String(text) => text,
                other => other.to_string(),
            };
            (format!("FTPSD_{}", field.to_ascii_uppercase()), text)
        })
        .collect()
}

/// The process group of a command, killed on drop unless emptied (the command ended by
/// itself): an aborted worker leaves nothing running.
struct ProcessGroup(Option<rustix::process::Pid>);

impl ProcessGroup {
    fn kill(&mut self) {
        if let Some(group) = self.0.take() {
            // An error means the group is gone already.
            let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        }
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The start of a command's output, and its length.
#[derive(Default)]
struct Captured {
    kept: Vec<u8>,
    total: u64,
}

/// Reads `pipe` to its end, keeping the first [`OUTPUT_KEPT`] bytes: a program that
/// writes more must not block on a full pipe, nor fill the server's memory.
async fn capture(mut pipe: impl AsyncRead + Unpin, into: Arc<Mutex<Captured>>) {
    let mut buffer = [0u8; 4096];
    while let Ok(n @ 1..) = pipe.read(&mut buffer).await {
        let mut captured = into.lock().unwrap_or_else(|e| e.into_inner());
        let room = OUTPUT_KEPT.saturating_sub(captured.kept.len());
        captured.kept.extend_from_slice(&buffer[..n.min(room)]);
        captured.total += n as u64;
    }
}

/// Captured output for the log: text, trimmed, with the length when cut. Logged quoted and
/// escaped (`?`), so that a program's output cannot forge lines of the server log.
fn shown(captured: &Mutex<Captured>) -> String {
    let captured = captured.lock().unwrap_or_else(|e| e.into_inner());
    let mut text = String::from_utf8_lossy(&captured.kept)
        .trim_end()
        .to_string();
    if captured.total > captured.kept.len() as u64 {
        text.push_str(&format!(" [cut: {} bytes in all]", captured.total));
    }
    text
}

/// A URL events are POSTed to.
struct WebhookJob {
    client: reqwest::Client,
    url: reqwest::Url,
    secret: Option<Secret>,
    timeout: Duration,
    retries: u32,
}

/// A webhook's HMAC key; never printed.
struct Secret(Vec<u8>);

impl Secret {
    /// Reads the key from `path`, without trailing whitespace (a newline from `echo`).
    fn read(name: &str, path: &Path) -> io::Result<Secret> {
        let mut key = std::fs::read(path).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "hooks.{name}: cannot read secret_file {}: {e}",
                    path.display()
                ),
            )
        })?;
        while key.last().is_some_and(u8::is_ascii_whitespace) {
            key.pop();
        }
        if key.is_empty() {
            return Err(invalid(
                name,
                format!("secret_file {} is empty", path.display()),
            ));
        }
        Ok(Secret(key))
    }

    /// `sha256=<hex HMAC-SHA256 of body>`.
    fn sign(&self, body: &[u8]) -> Option<HeaderValue> {
        // HMAC takes keys of any length; this cannot fail.
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).ok()?;
        mac.update(body);
        let hex = hex::encode(mac.finalize().into_bytes());
        HeaderValue::from_str(&format!("sha256={hex}")).ok()
    }
}

/// Why an attempt failed, and whether another may succeed.
struct Failure {
    reason: String,
    retry: bool,
    timed_out: bool,
    /// The receiver's `Retry-After`, in seconds.
    retry_after: Option<u64>,
}

impl WebhookJob {
    fn new(name: &str, hook: &WebhookHook, client: reqwest::Client) -> io::Result<WebhookJob> {
        let url = reqwest::Url::parse(&hook.url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| invalid(name, format!("url {:?} must be http or https", hook.url)))?;
        if hook.timeout == 0 {
            return Err(invalid(name, "timeout must be at least 1 second".into()));
        }
        let secret = match &hook.secret_file {
            Some(path) => Some(Secret::read(name, path)?),
            None => None,
        };
        Ok(WebhookJob {
            client,
            url,
            secret,
            timeout: Duration::from_secs(hook.timeout),
            retries: hook.retries,
        })
    }

    /// POSTs `event`, retrying connection errors, timeouts, 5xx and 429 with backoff; logs
    /// how it ended.
    async fn deliver(&self, hook: &str, event: &Event) -> HookResult {
        let kind = event.kind.name();
        let body = match serde_json::to_vec(event) {
            Ok(body) => body,
            Err(e) => {
                warn!(hook = %hook, event = kind, error = %e, "webhook: cannot encode the event");
                return HookResult::Failed;
            }
        };
        let signature = self.secret.as_ref().and_then(|s| s.sign(&body));
        let mut attempt: u32 = 0;
        loop {
            let mut request = self
                .client
                .post(self.url.clone())
                .timeout(self.timeout)
                .header(CONTENT_TYPE, "application/json")
                .header("X-Ftpsd-Event", kind)
                .body(body.clone());
            if let Some(signature) = &signature {
                request = request.header("X-Ftpsd-Signature", signature.clone());
            }
            let failure = match request.send().await {
                Ok(response) if response.status().is_success() => {
                    info!(hook = %hook, event = kind, session = event.session,
                        status = response.status().as_u16(), attempts = attempt + 1,
                        "webhook delivered");
                    return HookResult::Ok;
                }
                Ok(response) => {
                    let status = response.status();
                    Failure {
                        reason: format!("answered {status}"),
                        retry: status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS,
                        timed_out: false,
                        retry_after: response
                            .headers()
                            .get(RETRY_AFTER)
                            .and_then(|v| v.to_str().ok()?.trim().parse().ok()),
                    }
                }
                Err(e) => Failure {
                    timed_out: e.is_timeout(),
                    retry: !e.is_builder(),
                    // Without the URL, which may hold a token.
                    reason: error_chain(&e.without_url()),
                    retry_after: None,
                },
            };
            if !failure.retry || attempt >= self.retries {
                warn!(hook = %hook, event = kind, session = event.session, attempts = attempt + 1,
                    reason = %failure.reason, "webhook delivery failed; event dropped");
                return match failure.timed_out {
                    true => HookResult::Timeout,
                    false => HookResult::Failed,
                };
            }
            let wait = failure
                .retry_after
                .map(|s| Duration::from_secs(s).min(MAX_BACKOFF))
                .unwrap_or_default()
                .max(backoff(attempt));
            info!(hook = %hook, event = kind, session = event.session, attempt = attempt + 1,
                reason = %failure.reason, retry_in = format!("{:.1}", wait.as_secs_f64()),
                "webhook delivery failed; retrying");
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }
}

/// The wait before retry `attempt + 1`: 1 s, 2 s, 4 s ... up to [`MAX_BACKOFF`], each
/// ±25 % at random so that many servers do not retry in step.
fn backoff(attempt: u32) -> Duration {
    let base = 2f64.powi(attempt.min(10) as i32);
    let jitter = 0.75 + 0.5 * rand::random::<f64>();
    Duration::from_secs_f64((base * jitter).min(MAX_BACKOFF.as_secs_f64()))
}

/// An error and its causes, on one line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: EventKind) -> Event {
        Event {
            kind,
            time: std::time::SystemTime::UNIX_EPOCH + Duration::from_millis(1_796_479_385_123),
            session: 7,
            user: "alice".into(),
            host: None,
            client: "192.0.2.7".parse().unwrap(),
            path: Some("/in/a b.csv".into()),
            target: None,
            bytes: Some(42),
        }
    }

    #[test]
    fn variables_are_the_json_fields_and_absent_ones_are_unset() {
        let mut vars = variables(&event(EventKind::Upload));
        vars.sort();
        let expected = [
            ("FTPSD_BYTES", "42"),
            ("FTPSD_CLIENT", "192.0.2.7"),
            ("FTPSD_EVENT", "upload"),
            ("FTPSD_PATH", "/in/a b.csv"),
            ("FTPSD_SESSION", "7"),
            ("FTPSD_TIME", "1796479385.123"),
            ("FTPSD_USER", "alice"),
        ];
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (&**k, &**v)).collect();
        assert_eq!(vars, expected);
    }

    #[test]
    fn backoff_doubles_with_jitter_and_a_cap() {
        for attempt in 0..4 {
            let nominal = f64::from(1u32 << attempt);
            let wait = backoff(attempt).as_secs_f64();
            assert!(
                (nominal * 0.75..=nominal * 1.25).contains(&wait),
                "{attempt}: {wait}"
            );
        }
        assert!(backoff(30) <= MAX_BACKOFF);
    }

    #[test]
    fn the_signature_is_the_hex_hmac_of_the_body() {
        // RFC 4231, test case 2.
        let secret = Secret(b"Jefe".to_vec());
        let signature = secret.sign(b"what do ya want for nothing?").unwrap();
        assert_eq!(
            signature,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
