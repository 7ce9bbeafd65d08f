//! `ftps.Client`: one FTPS session driven synchronously. Each client owns a single-threaded
//! tokio runtime and the library's `FtpsClient`; every network operation runs on that runtime
//! with the GIL released, so other Python threads keep running, and Ctrl-C still interrupts
//! it (the main thread's signals are checked while it runs).

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use ftps_client::mirror::{self, Direction, MirrorOptions};
use ftps_client::{Connector, Endpoint, FtpsClient, Pool};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use tokio::runtime::Runtime;

use crate::errors::{self, TransferError};
use crate::types::{Entry, MirrorSummary};

/// How often a running operation looks for Ctrl-C (and other signals) on the main thread.
const SIGNAL_CHECK: Duration = Duration::from_millis(100);

/// A library operation on the session, as a future borrowing it.
type Op<'a, T> = Pin<Box<dyn Future<Output = ftps_client::Result<T>> + Send + 'a>>;

/// Why an operation did not return a value.
enum Failure {
    /// The library's error.
    Ftp(ftps_client::Error),
    /// A signal handler raised (KeyboardInterrupt): the session was dropped.
    Interrupted(PyErr),
    /// The session was closed (by `quit`, or after an interruption).
    Closed(&'static str),
}

impl From<ftps_client::Error> for Failure {
    fn from(e: ftps_client::Error) -> Failure {
        Failure::Ftp(e)
    }
}

/// What a client holds; guarded by a mutex that is only taken with the GIL released.
struct Session {
    runtime: Runtime,
    connector: Connector,
    host: String,
    port: u16,
    client: Option<FtpsClient>,
    /// The user and password of the last successful login, for the extra sessions a
    /// mirror opens.
    credentials: Option<(String, String)>,
    /// Why `client` is gone.
    closed_because: &'static str,
}

impl Drop for Session {
    fn drop(&mut self) {
        // Sockets deregister from the runtime's reactor when dropped: drop them inside it.
        let _guard = self.runtime.enter();
        self.client = None;
    }
}

/// An FTPS session, made by `ftps.connect()`. Use it as a context manager, or call `quit()`.
///
/// Every data connection (transfers and listings) resumes the control connection's TLS
/// session, as strict servers (vsftpd with `require_ssl_reuse`, ProFTPD, ftpsd) require.
/// Methods may be called from any thread; calls on one client run one at a time.
// Frozen: every method takes `&self`; the session is behind its own mutex.
#[pyclass(frozen, module = "ftps")]
pub struct Client {
    session: Mutex<Session>,
}

/// Runs `future` to completion on `runtime`, or until a signal handler raises.
fn block_on<T>(
    runtime: &Runtime,
    watch_signals: bool,
    future: impl Future<Output = Result<T, Failure>>,
) -> Result<T, Failure> {
    runtime.block_on(async {
        if !watch_signals {
            return future.await;
        }
        let signals = async {
            let mut tick = tokio::time::interval(SIGNAL_CHECK);
            loop {
                tick.tick().await;
                if let Err(e) = Python::attach(|py| py.check_signals()) {
                    return e;
                }
            }
        };
        tokio::select! {
            r = future => r,
            e = signals => Err(Failure::Interrupted(e)),
        }
    })
}

/// Whether the calling Python thread is the main thread, the only one that runs signal
/// handlers.
fn on_main_thread(py: Python<'_>) -> PyResult<bool> {
    let threading = py.import("threading")?;
    let current = threading.call_method0("current_thread")?;
    let main = threading.call_method0("main_thread")?;
    Ok(current.is(&main))
}

impl Client {
    /// Connects (TCP, TLS, greeting) with the GIL released.
    pub fn open(py: Python<'_>, connector: Connector, host: String, port: u16) -> PyResult<Client> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| {
                errors::plain(py, format!("cannot start the I/O runtime: {e}"), "other")
            })?;
        let watch = on_main_thread(py)?;
        let connected = py.detach(|| {
            block_on(&runtime, watch, async {
                Ok(connector.connect(&host, port).await?)
            })
        });
        let client = match connected {
            Ok(c) => c,
            Err(f) => {
                return Err(failure_to_py(py, f));
            }
        };
        Ok(Client {
            session: Mutex::new(Session {
                runtime,
                connector,
                host,
                port,
                client: Some(client),
                credentials: None,
                closed_because: "",
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Session> {
        // A panic while holding the lock leaves nothing half-written that matters here.
        self.session.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `work` on the session with the GIL released and maps its failure to Python.
    fn with_session<T: Send>(
        &self,
        py: Python<'_>,
        work: impl FnOnce(&mut Session, bool) -> Result<T, Failure> + Send,
    ) -> PyResult<T> {
        let watch = on_main_thread(py)?;
        py.detach(|| {
            let mut session = self.lock();
            let result = work(&mut session, watch);
            if let Err(Failure::Interrupted(_)) = &result {
                // The control connection may be in the middle of a reply: unusable.
                session.client = None;
                session.closed_because = "the session was closed after an interruption";
            }
            result
        })
        .map_err(|f| failure_to_py(py, f))
    }

    /// Runs one library operation on the logged-in (or connected) session.
    fn run<T, F>(&self, py: Python<'_>, op: F) -> PyResult<T>
    where
        T: Send,
        F: for<'a> FnOnce(&'a mut FtpsClient) -> Op<'a, T> + Send,
    {
        self.with_session(py, |session, watch| {
            let Session {
                runtime,
                client,
                closed_because,
                ..
            } = session;
            let Some(client) = client.as_mut() else {
                return Err(Failure::Closed(closed_because));
            };
            block_on(runtime, watch, async { Ok(op(client).await?) })
        })
    }
}

fn failure_to_py(py: Python<'_>, failure: Failure) -> PyErr {
    match failure {
        Failure::Ftp(e) => errors::to_py(py, e),
        Failure::Interrupted(e) => e,
        Failure::Closed(why) => errors::plain(py, why.to_string(), "connect"),
    }
}

/// `"."` and `""` both mean the current directory: send no argument at all.
fn dir_argument(path: &str) -> String {
    if path == "." {
        String::new()
    } else {
        path.to_string()
    }
}

#[pymethods]
impl Client {
    /// Logs in with `USER`/`PASS`, then protects data connections (`PBSZ 0`, `PROT P`),
    /// selects binary mode and reads the server's features.
    ///
    /// Raises `ReplyError` (code 530 for a wrong password) when the server refuses.
    #[pyo3(signature = (user = "anonymous", password = ""))]
    fn login(&self, py: Python<'_>, user: &str, password: &str) -> PyResult<()> {
        let (u, p) = (user.to_string(), password.to_string());
        self.with_session(py, move |session, watch| {
            let Session {
                runtime,
                client,
                closed_because,
                credentials,
                ..
            } = session;
            let Some(client) = client.as_mut() else {
                return Err(Failure::Closed(closed_because));
            };
            block_on(runtime, watch, async { Ok(client.login(&u, &p).await?) })?;
            *credentials = Some((u, p));
            Ok(())
        })
    }

    /// Uploads the local file `local_path` to `remote_path` and returns the bytes sent.
    ///
    /// With `resume=True`, continues after the remote file's current size (`REST`).
    /// The server's final reply is checked: a return means the server confirmed the upload.
    #[pyo3(signature = (local_path, remote_path, *, resume = false))]
    fn upload(
        &self,
        py: Python<'_>,
        local_path: PathBuf,
        remote_path: String,
        resume: bool,
    ) -> PyResult<u64> {
        self.run(py, move |c| {
            Box::pin(async move {
                let outcome = c
                    .upload_file(&local_path, &remote_path, resume, &mut |_| {})
                    .await?;
                Ok(outcome.bytes)
            })
        })
    }

    /// Downloads `remote_path` to the local file `local_path` and returns the bytes received.
    ///
    /// With `resume=True`, an existing local file is continued from its length (`REST`).
    /// If the download fails, an exception is raised and the local file holds only what
    /// arrived; call again with `resume=True` to continue it.
    #[pyo3(signature = (remote_path, local_path, *, resume = false))]
    fn download(
        &self,
        py: Python<'_>,
        remote_path: String,
        local_path: PathBuf,
        resume: bool,
    ) -> PyResult<u64> {
        let existed = local_path.exists();
        let result = self.run(py, {
            let local_path = local_path.clone();
            move |c| {
                Box::pin(async move {
                    let outcome = c
                        .download_file(&remote_path, &local_path, resume, None, &mut |_| {})
                        .await?;
                    Ok(outcome.bytes)
                })
            }
        });
        if result.is_err() && !existed {
            // A file this call created and nothing arrived in (the remote file is missing,
            // say): remove it rather than leave an empty file behind. One with data stays,
            // for resume=True.
            if std::fs::metadata(&local_path).is_ok_and(|m| m.is_file() && m.len() == 0) {
                let _ = std::fs::remove_file(&local_path);
            }
        }
        result
    }

    /// Lists a directory (`MLSD` where the server has it, else `LIST`), without its `.` and
    /// `..` entries.
    #[pyo3(signature = (path = "."))]
    fn listdir(&self, py: Python<'_>, path: &str) -> PyResult<Vec<Entry>> {
        let path = dir_argument(path);
        let entries = self.run(py, move |c| {
            Box::pin(async move { c.list_dir(&path).await })
        })?;
        entries
            .into_iter()
            .map(|e| Entry::from_listing(py, e))
            .collect()
    }

    /// The names in a directory (`NLST`).
    #[pyo3(signature = (path = "."))]
    fn nlst(&self, py: Python<'_>, path: &str) -> PyResult<Vec<String>> {
        let path = dir_argument(path);
        self.run(py, move |c| Box::pin(async move { c.nlst(&path).await }))
    }

    /// Mirrors a directory tree, copying only what changed (by size and modification time),
    /// over up to `parallel` sessions at once (each its own connection and login).
    ///
    /// `direction="download"`: `source` is a remote directory and `dest` a local one;
    /// `direction="upload"`: the other way round. With `delete=True`, what the source does
    /// not have is deleted at the destination. A relative remote path starts from the
    /// current directory, as for the other methods. Raises `TransferError` (with the summary
    /// in `.summary`) if any file could not be copied or deleted.
    #[pyo3(signature = (source, dest, *, direction = "download", parallel = 4, delete = false))]
    fn mirror(
        &self,
        py: Python<'_>,
        source: PathBuf,
        dest: PathBuf,
        direction: &str,
        parallel: usize,
        delete: bool,
    ) -> PyResult<MirrorSummary> {
        let direction = match direction {
            "download" => Direction::Download,
            "upload" => Direction::Upload,
            other => {
                return Err(PyValueError::new_err(format!(
                    "direction must be \"download\" or \"upload\", not {other:?}"
                )))
            }
        };
        if parallel == 0 {
            return Err(PyValueError::new_err("parallel must be at least 1"));
        }
        let text = |p: PathBuf, what: &str| -> PyResult<String> {
            p.into_os_string().into_string().map_err(|p| {
                PyValueError::new_err(format!("the remote {what} {p:?} is not valid UTF-8"))
            })
        };
        let (remote, local) = match direction {
            Direction::Download => (text(source, "source")?, dest),
            Direction::Upload => (text(dest, "destination")?, source),
        };
        let options = MirrorOptions {
            parallel,
            delete,
            dry_run: false,
        };
        let report = self.with_session(py, move |session, watch| {
            let Some((user, password)) = session.credentials.clone() else {
                return Err(Failure::Closed(
                    "mirror needs a logged-in session: call login() first",
                ));
            };
            let Session {
                runtime,
                client,
                closed_because,
                connector,
                host,
                port,
                ..
            } = session;
            let Some(client) = client.as_mut() else {
                return Err(Failure::Closed(closed_because));
            };
            // The mirror's own sessions start in the login directory: a relative remote
            // path means the same directory as for this client's other methods.
            let remote = if remote.starts_with('/') {
                remote
            } else {
                let cwd = block_on(runtime, watch, async { Ok(client.pwd().await?) })?;
                ftps_client::client::join(&cwd, &remote)
            };
            let pool = Pool::new(
                connector.clone(),
                Endpoint {
                    host: host.clone(),
                    port: *port,
                    user,
                    password,
                },
                parallel,
            );
            block_on(runtime, watch, async {
                let report = match direction {
                    Direction::Download => {
                        mirror::download(&pool, &remote, &local, &options, None).await
                    }
                    Direction::Upload => {
                        mirror::upload(&pool, &local, &remote, &options, None).await
                    }
                };
                pool.close().await;
                Ok(report?)
            })
        })?;
        let summary = MirrorSummary::from(report);
        if summary.failed.is_empty() {
            return Ok(summary);
        }
        let mut message = format!("mirror: {} of the changes failed:", summary.failed.len());
        for (path, why) in summary.failed.iter().take(10) {
            message.push_str(&format!("\n  {path}: {why}"));
        }
        let err = TransferError::new_err(message);
        let value = err.value(py);
        value.setattr("kind", "transfer")?;
        value.setattr("summary", Py::new(py, summary)?)?;
        Err(err)
    }

    /// Creates a directory (`MKD`); with `parents=True` also its missing parents, and an
    /// existing directory is not an error.
    #[pyo3(signature = (path, *, parents = false))]
    fn mkdir(&self, py: Python<'_>, path: String, parents: bool) -> PyResult<()> {
        self.run(py, move |c| {
            Box::pin(async move {
                if parents {
                    c.mkdir_all(&path).await
                } else {
                    c.mkdir(&path).await
                }
            })
        })
    }

    /// Removes an empty directory (`RMD`).
    fn rmdir(&self, py: Python<'_>, path: String) -> PyResult<()> {
        self.run(py, move |c| Box::pin(async move { c.rmdir(&path).await }))
    }

    /// Deletes a file (`DELE`).
    fn delete(&self, py: Python<'_>, path: String) -> PyResult<()> {
        self.run(py, move |c| Box::pin(async move { c.delete(&path).await }))
    }

    /// Renames a file or directory (`RNFR`, `RNTO`).
    fn rename(&self, py: Python<'_>, source: String, dest: String) -> PyResult<()> {
        self.run(py, move |c| {
            Box::pin(async move { c.rename(&source, &dest).await })
        })
    }

    /// A file's size in bytes (`SIZE`).
    fn size(&self, py: Python<'_>, path: String) -> PyResult<u64> {
        self.run(py, move |c| Box::pin(async move { c.size(&path).await }))
    }

    /// The current directory (`PWD`).
    fn pwd(&self, py: Python<'_>) -> PyResult<String> {
        self.run(py, |c| Box::pin(c.pwd()))
    }

    /// Changes the current directory (`CWD`).
    fn cwd(&self, py: Python<'_>, path: String) -> PyResult<()> {
        self.run(py, move |c| Box::pin(async move { c.cwd(&path).await }))
    }

    /// Data connections opened so far and how many of them resumed the control
    /// connection's TLS session, as `(opened, resumed)`.
    #[getter]
    fn data_connections(&self, py: Python<'_>) -> PyResult<(u64, u64)> {
        self.run(py, |c| {
            let stats = c.data_connection_stats();
            Box::pin(async move { Ok(stats) })
        })
    }

    /// The control connection's TLS version (`"TLSv1_3"` or `"TLSv1_2"`).
    #[getter]
    fn tls_version(&self, py: Python<'_>) -> PyResult<Option<String>> {
        self.run(py, |c| {
            let version = c.tls_info().map(|i| i.version);
            Box::pin(async move { Ok(version) })
        })
    }

    /// Whether the session is still open (not quit, not dropped after an interruption).
    #[getter]
    fn connected(&self, py: Python<'_>) -> bool {
        py.detach(|| self.lock().client.is_some())
    }

    /// Ends the session politely (`QUIT`, then TLS close_notify). Calling it again does
    /// nothing.
    fn quit(&self, py: Python<'_>) -> PyResult<()> {
        self.with_session(py, |session, watch| {
            let Some(client) = session.client.take() else {
                return Ok(());
            };
            session.closed_because = "the session was closed by quit()";
            block_on(&session.runtime, watch, async { Ok(client.quit().await?) })
        })
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// Quits the session. When the block raised, the session is closed without waiting
    /// for the server, and the block's exception propagates.
    #[pyo3(signature = (*exc))]
    fn __exit__(&self, py: Python<'_>, exc: &Bound<'_, PyTuple>) -> PyResult<bool> {
        let raised = exc.get_item(0).map(|t| !t.is_none()).unwrap_or(false);
        if raised {
            py.detach(|| {
                let mut session = self.lock();
                let _guard = session.runtime.enter();
                session.client = None;
                session.closed_because = "the session was closed when its with-block raised";
            });
            return Ok(false);
        }
        self.quit(py)?;
        Ok(false)
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        py.detach(|| {
            let session = self.lock();
            let state = if session.client.is_some() {
                "open"
            } else {
                "closed"
            };
            format!("<ftps.Client {}:{} {state}>", session.host, session.port)
        })
    }
}
