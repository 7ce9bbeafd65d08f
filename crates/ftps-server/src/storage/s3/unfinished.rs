//! Multipart uploads that a killed server left unfinished: recorded while they run, aborted
//! at the next start.
//!
//! Before an upload starts, a journal file in the state directory
//! (`s3-uploads/<random>`) names its store and key; the file goes when the upload is
//! completed or aborted. A server killed mid-upload leaves the file, and the multipart
//! upload in the bucket (its parts cost storage, and no listing shows them). At start, for
//! each file left, [`Reaper::abort_unfinished`] lists the unfinished multipart uploads of
//! that key (`ListMultipartUploads`) and aborts them (`AbortMultipartUpload`), then removes
//! the file. opendal has neither request, so they are signed here with the same SigV4
//! signer and credential chain opendal uses (reqsign) and sent through its HTTP transport.
//!
//! Only keys this server was uploading are touched: an upload to the same key by another
//! server sharing the bucket, still running at this start, would be aborted too (its
//! client gets 426 or 451, nothing is published half-made).

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use opendal::HttpTransporter;
use reqsign_aws_v4::{
    Credential, DefaultCredentialProvider, RequestSigner, StaticCredentialProvider,
};
use reqsign_core::{Context, OsEnv, ProvideCredentialChain, Signer};
use reqsign_file_read_tokio::TokioFileRead;
use tracing::{info, warn};

use crate::config::{S3Credentials, S3StoreConfig};

/// The SHA-256 of an empty body, sent with every request (S3 requires the header).
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Where running uploads are recorded.
#[derive(Debug)]
pub(super) struct Journal {
    dir: PathBuf,
}

impl Journal {
    /// The journal in `dir` (created when first needed).
    pub(super) fn new(dir: PathBuf) -> Journal {
        Journal { dir }
    }

    /// Records that an upload of `key` (the bucket's full key) in `store` starts. Not
    /// synced: it is for a killed process, whose writes the kernel still has.
    pub(super) fn record(&self, store: &str, key: &str) -> io::Result<JournalEntry> {
        std::fs::create_dir_all(&self.dir)?;
        let path = self.dir.join(format!("{:016x}", rand::random::<u64>()));
        std::fs::write(&path, format!("{store}\n{key}\n"))?;
        Ok(JournalEntry { path })
    }

    /// The uploads recorded and not ended: (file, store, key).
    pub(super) fn left(&self) -> Vec<(PathBuf, String, String)> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| {
                let text = std::fs::read_to_string(e.path()).ok()?;
                let mut lines = text.lines();
                let store = lines.next()?.to_string();
                let key = lines.next()?.to_string();
                Some((e.path(), store, key))
            })
            .collect()
    }
}

/// One running upload's journal file, removed when dropped.
#[derive(Debug)]
pub(super) struct JournalEntry {
    path: PathBuf,
}

impl Drop for JournalEntry {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Lists and aborts unfinished multipart uploads with signed requests.
pub(super) struct Reaper {
    /// `YYYY-MM-DDTHH:MM:SS` (UTC) when this process set up its stores: uploads initiated
    /// later are this process's own, never aborted.
    started: String,
    ctx: Context,
    signer: Signer<Credential>,
    /// `https://endpoint/bucket` (path style) or `https://bucket.endpoint`.
    base: String,
    timeout: Duration,
}

impl Reaper {
    /// A reaper for the bucket of `config`, with its credentials.
    pub(super) fn new(config: &S3StoreConfig) -> io::Result<Reaper> {
        let ctx = Context::new()
            .with_file_read(TokioFileRead)
            .with_env(OsEnv)
            .with_http_send(HttpTransporter::default());
        let chain = ProvideCredentialChain::new();
        let chain = match &config.credentials {
            S3Credentials::Environment => chain.push(DefaultCredentialProvider::new()),
            // As opendal's S3 service does for this setting: no keys from the environment
            // or shared files, the rest of the chain (instance metadata, ECS, web identity).
            S3Credentials::Instance => chain.push(
                DefaultCredentialProvider::builder()
                    .no_env()
                    .no_profile()
                    .build(),
            ),
            S3Credentials::File(path) => {
                let keys = super::read_credentials_file(path)?;
                chain.push(StaticCredentialProvider::new(
                    &keys.access_key_id,
                    &keys.secret_access_key,
                ))
            }
        };
        let signer = Signer::new(ctx.clone(), chain, RequestSigner::new("s3", &config.region));
        let endpoint = config.endpoint.trim_end_matches('/');
        let base = if config.path_style {
            format!("{endpoint}/{}", config.bucket)
        } else {
            match endpoint.split_once("://") {
                Some((scheme, host)) => format!("{scheme}://{}.{host}", config.bucket),
                None => format!("https://{}.{endpoint}", config.bucket),
            }
        };
        let started = time::OffsetDateTime::now_utc()
            .format(time::macros::format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second]"
            ))
            .map_err(io::Error::other)?;
        Ok(Reaper {
            started,
            ctx,
            signer,
            base,
            timeout: Duration::from_secs(config.request_timeout_seconds.max(1)),
        })
    }

    /// Aborts the unfinished multipart uploads that `journal` recorded for `store`, and
    /// forgets those it could abort. Returns how many uploads were aborted.
    pub(super) async fn abort_unfinished(&self, store: &str, journal: &Journal) -> usize {
        let mut aborted = 0;
        for (file, recorded_store, key) in journal.left() {
            if recorded_store != store {
                continue;
            }
            match self.abort_key(&key).await {
                Ok(n) => {
                    aborted += n;
                    let _ = std::fs::remove_file(&file);
                }
                // Kept for the next start.
                Err(e) => warn!(store, key, error = %e, "cannot abort an unfinished upload"),
            }
        }
        if aborted > 0 {
            info!(
                store,
                aborted, "aborted the multipart uploads a stopped server left unfinished"
            );
        }
        aborted
    }

    /// Aborts every unfinished multipart upload of exactly `key`.
    async fn abort_key(&self, key: &str) -> io::Result<usize> {
        let query = format!("uploads=&prefix={}", encode(key, false));
        let body = self.send("GET", "", &query).await?;
        let mut aborted = 0;
        for upload in body.split("<Upload>").skip(1) {
            let (Some(k), Some(id)) = (tag(upload, "Key"), tag(upload, "UploadId")) else {
                continue;
            };
            let initiated = tag(upload, "Initiated").unwrap_or_default();
            if k != key
                || initiated
                    .get(..19)
                    .is_some_and(|t| t > self.started.as_str())
            {
                continue;
            }
            let query = format!("uploadId={}", encode(&id, false));
            self.send("DELETE", key, &query).await?;
            aborted += 1;
        }
        Ok(aborted)
    }

    /// Sends a signed request for `key` (empty: the bucket) with `query`; returns the body.
    async fn send(&self, method: &str, key: &str, query: &str) -> io::Result<String> {
        let url = if key.is_empty() {
            format!("{}/?{query}", self.base)
        } else {
            format!("{}/{}?{query}", self.base, encode(key, true))
        };
        let request = http::Request::builder()
            .method(method)
            .uri(&url)
            .header("x-amz-content-sha256", EMPTY_SHA256)
            .body(())
            .map_err(io::Error::other)?;
        let (mut parts, ()) = request.into_parts();
        self.signer
            .sign(&mut parts, None)
            .await
            .map_err(|e| io::Error::other(e.to_string()))?;
        let request = http::Request::from_parts(parts, Bytes::new());
        let response = tokio::time::timeout(self.timeout, self.ctx.http_send(request))
            .await
            .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))?
            .map_err(|e| io::Error::other(e.to_string()))?;
        let status = response.status();
        let body = String::from_utf8_lossy(response.body()).into_owned();
        if !status.is_success() {
            return Err(io::Error::other(format!("{method} answered {status}")));
        }
        Ok(body)
    }
}

/// The unescaped text of the first `<name>...</name>` in `xml`.
fn tag(xml: &str, name: &str) -> Option<String> {
    let start = xml.find(&format!("<{name}>"))? + name.len() + 2;
    let end = start + xml[start..].find(&format!("</{name}>"))?;
    Some(
        xml[start..end]
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

/// Percent-encodes as SigV4 wants: unreserved characters kept, and `/` too in a path.
fn encode(s: &str, path: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        let keep = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~');
        if keep || (path && b == b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The journal directory of a state directory.
pub(crate) fn journal_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("s3-uploads")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_encoded_as_sigv4_signs_them() {
        assert_eq!(encode("data/a b+c.txt", true), "data/a%20b%2Bc.txt");
        assert_eq!(encode("data/a b", false), "data%2Fa%20b");
        assert_eq!(encode("é", true), "%C3%A9");
    }

    #[test]
    fn upload_entries_are_read_from_the_xml() {
        let xml = "<Upload><Key>a&amp;b</Key><UploadId>x1</UploadId></Upload>";
        assert_eq!(tag(xml, "Key").as_deref(), Some("a&b"));
        assert_eq!(tag(xml, "UploadId").as_deref(), Some("x1"));
        assert_eq!(tag(xml, "Missing"), None);
    }

    #[test]
    fn the_journal_keeps_what_was_not_ended() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::new(dir.path().join("s3-uploads"));
        let done = journal.record("a", "data/done.bin").unwrap();
        let left = journal.record("a", "data/left.bin").unwrap();
        drop(done);
        std::mem::forget(left);
        let entries = journal.left();
        assert_eq!(entries.len(), 1);
        assert_eq!(
            (entries[0].1.as_str(), entries[0].2.as_str()),
            ("a", "data/left.bin")
        );
    }
}
