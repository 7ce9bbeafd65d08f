//! The values the client returns: directory entries and mirror summaries.

use std::time::{SystemTime, UNIX_EPOCH};

use ftps_client::mirror::MirrorReport;
use ftps_client::{FileKind, ListEntry};
use pyo3::prelude::*;

/// One entry of a directory listing.
#[pyclass(frozen, get_all, module = "ftps")]
pub struct Entry {
    /// The file name, without its directory.
    pub name: String,
    /// `"file"`, `"dir"`, `"link"` or `"other"`.
    pub kind: String,
    /// Size in bytes, when the server gave it.
    pub size: Option<u64>,
    /// Last modification time as an aware `datetime` in UTC, when the server gave it.
    pub modified: Option<Py<PyAny>>,
    /// Unix permission bits, when the server gave them.
    pub mode: Option<u32>,
    /// For a symbolic link, its target, when the server gave it.
    pub link_target: Option<String>,
}

#[pymethods]
impl Entry {
    /// Whether this is a directory.
    #[getter]
    fn is_dir(&self) -> bool {
        self.kind == "dir"
    }

    /// Whether this is a regular file.
    #[getter]
    fn is_file(&self) -> bool {
        self.kind == "file"
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let modified = match &self.modified {
            Some(m) => m.bind(py).repr()?.to_string(),
            None => "None".to_string(),
        };
        let size = self.size.map_or("None".to_string(), |s| s.to_string());
        Ok(format!(
            "Entry(name={:?}, kind={:?}, size={size}, modified={modified})",
            self.name, self.kind
        ))
    }
}

fn kind_name(kind: FileKind) -> &'static str {
    match kind {
        FileKind::File => "file",
        FileKind::Dir | FileKind::CurrentDir | FileKind::ParentDir => "dir",
        FileKind::Symlink => "link",
        FileKind::Other => "other",
    }
}

/// `time` as an aware `datetime.datetime` in UTC (the epoch plus a `timedelta`, which
/// keeps microseconds exact and also covers times before 1970).
fn datetime(py: Python<'_>, time: SystemTime) -> PyResult<Py<PyAny>> {
    let module = py.import("datetime")?;
    let utc = module.getattr("timezone")?.getattr("utc")?;
    let epoch = module
        .getattr("datetime")?
        .call1((1970, 1, 1, 0, 0, 0, 0, utc))?;
    let (seconds, micros) = match time.duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64, i64::from(d.subsec_micros())),
        Err(before) => {
            let d = before.duration();
            (-(d.as_secs() as i64), -i64::from(d.subsec_micros()))
        }
    };
    let delta = module.getattr("timedelta")?.call1((0, seconds, micros))?;
    Ok(epoch.add(delta)?.unbind())
}

impl Entry {
    /// The Python entry for a listing entry.
    pub fn from_listing(py: Python<'_>, entry: ListEntry) -> PyResult<Entry> {
        Ok(Entry {
            name: entry.name,
            kind: kind_name(entry.kind).to_string(),
            size: entry.size,
            modified: entry.modified.map(|t| datetime(py, t)).transpose()?,
            mode: entry.mode,
            link_target: entry.link_target,
        })
    }
}

/// What a mirror run did.
#[pyclass(frozen, get_all, module = "ftps")]
pub struct MirrorSummary {
    /// Files copied.
    pub transferred: usize,
    /// Bytes copied.
    pub bytes: u64,
    /// Files that were already up to date.
    pub unchanged: usize,
    /// Files and directories deleted at the destination (with `delete=True`).
    pub deleted: usize,
    /// Directories created at the destination.
    pub created_dirs: usize,
    /// What could not be done: (relative path, message) pairs.
    pub failed: Vec<(String, String)>,
}

#[pymethods]
impl MirrorSummary {
    /// Whether everything was done.
    #[getter]
    fn ok(&self) -> bool {
        self.failed.is_empty()
    }

    fn __repr__(&self) -> String {
        format!(
            "MirrorSummary(transferred={}, bytes={}, unchanged={}, deleted={}, created_dirs={}, \
             failed={:?})",
            self.transferred,
            self.bytes,
            self.unchanged,
            self.deleted,
            self.created_dirs,
            self.failed
        )
    }
}

impl From<MirrorReport> for MirrorSummary {
    fn from(report: MirrorReport) -> MirrorSummary {
        let created_dirs = report
            .actions
            .iter()
            .filter(|a| matches!(a, ftps_client::mirror::Action::Mkdir { .. }))
            .count();
        MirrorSummary {
            transferred: report.transferred,
            bytes: report.bytes,
            unchanged: report.unchanged,
            deleted: report.deleted,
            created_dirs,
            failed: report.failed,
        }
    }
}
