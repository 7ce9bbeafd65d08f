//! Events: what happened in a session that other programs may want to act on (a file
//! arrived, a user logged in), as [`Operations::event`](super::Operations::event) receives
//! them from the sessions. Hooks (commands and webhooks) consume them.

use std::net::IpAddr;
use std::time::SystemTime;

use serde::Serialize;

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// A user logged in.
    Login,
    /// A logged-in session ended (`QUIT`, `REIN`, a closed connection, a timeout).
    Logout,
    /// An upload completed (`STOR`, `STOU`, `APPE`): the file is in place.
    Upload,
    /// A download completed (`RETR`).
    Download,
    /// A file was deleted (`DELE`).
    Delete,
    /// A file or directory was renamed (`RNFR`/`RNTO`).
    Rename,
    /// A directory was made (`MKD`).
    Mkdir,
    /// A directory was removed (`RMD`).
    Rmdir,
}

impl EventKind {
    /// Every kind, in the order the configuration lists them.
    pub const ALL: [EventKind; 8] = [
        EventKind::Login,
        EventKind::Logout,
        EventKind::Upload,
        EventKind::Download,
        EventKind::Delete,
        EventKind::Rename,
        EventKind::Mkdir,
        EventKind::Rmdir,
    ];

    /// The name in the configuration, the environment and the JSON.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Login => "login",
            EventKind::Logout => "logout",
            EventKind::Upload => "upload",
            EventKind::Download => "download",
            EventKind::Delete => "delete",
            EventKind::Rename => "rename",
            EventKind::Mkdir => "mkdir",
            EventKind::Rmdir => "rmdir",
        }
    }
}

/// One event and its facts.
#[derive(Clone, Debug, Serialize)]
pub struct Event {
    /// What happened.
    #[serde(rename = "event")]
    pub kind: EventKind,
    /// When, as seconds since the Unix epoch with a fraction.
    #[serde(serialize_with = "unix_seconds")]
    pub time: SystemTime,
    /// The session's number, as the server log shows it.
    pub session: u64,
    /// The user (`anonymous` for anonymous logins).
    pub user: String,
    /// The virtual host, if one was chosen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The client's address.
    pub client: IpAddr,
    /// The path as the user sees it (the source of a rename).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The new path of a rename.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Bytes moved by an upload or download.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
}

fn unix_seconds<S: serde::Serializer>(time: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    let secs = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    s.serialize_f64((secs * 1000.0).round() / 1000.0)
}
