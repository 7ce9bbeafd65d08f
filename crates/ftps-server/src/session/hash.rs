//! `HASH` and `OPTS HASH` (draft-bryan-ftpext-hash-02): the digest of a whole file, so a
//! client can check a transfer without downloading the file again. Ranges (`RANG`) are not
//! supported: the digest always covers the whole file, as the reply's `0-size` says.
//!
//! Hashing a large file takes a while, so it runs like a transfer: on a blocking thread,
//! while the session answers `ABOR` (the digest stops, `426` then `226`) and `STAT`, and
//! queues other commands. At most [`MAX_CONCURRENT_HASHES`] run in the whole server; more
//! get `450` at once.
//!
//! [`MAX_CONCURRENT_HASHES`]: crate::context::MAX_CONCURRENT_HASHES

use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use ftps_proto::hash::{self, HashAlgorithm};
use ftps_proto::ReplyCode;
use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256};

use super::control::Busy;
use super::state::LoggedIn;
use super::{Flow, Result, Session};
use crate::storage::EntryKind;

/// Bytes read per step while hashing.
const HASH_CHUNK: usize = 256 * 1024;

impl Session {
    /// `HASH path`: 213 with the selected algorithm's digest of the whole file.
    pub(super) async fn cmd_hash(&mut self, user: &LoggedIn, arg: &str) -> Result {
        let (storage, path) = (user.storage(), user.path(arg));
        match storage.metadata(&path).await {
            Ok(e) if e.kind == EntryKind::File => {}
            Ok(_) => {
                return self
                    .reply(ReplyCode::FILE_UNAVAILABLE, "Not a regular file.")
                    .await
            }
            Err(e) => return self.reply_fs_error("HASH", &path, &e).await,
        }
        let Ok(_permit) = self.shared.hash_permits.clone().try_acquire_owned() else {
            return self
                .reply(
                    ReplyCode::FILE_BUSY,
                    "Too many HASH commands running on this server; try again later.",
                )
                .await;
        };
        let file = match storage.open_read(&path, 0).await {
            Ok(download) => download,
            Err(e) => return self.reply_fs_error("HASH", &path, &e).await,
        };
        let algorithm = self.params.hash_algorithm;
        let progress = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let mut digest = {
            let (progress, stop) = (progress.clone(), stop.clone());
            tokio::task::spawn_blocking(move || digest_file(file, algorithm, &progress, &stop))
        };
        let status = || {
            let done = progress.load(Ordering::Relaxed);
            format!("HASH {path} in progress: {done} bytes read.")
        };
        match self.control.while_busy(&mut digest, status).await? {
            Busy::Done(result) => match result.map_err(io::Error::other)? {
                Ok((size, hex)) => {
                    let text = hash::hash_reply(algorithm, size, &hex, arg);
                    self.reply(ReplyCode::FILE_STATUS, text).await
                }
                Err(e) => self.reply_fs_error("HASH", &path, &e).await,
            },
            Busy::Aborted => {
                stop.store(true, Ordering::Relaxed);
                let _ = digest.await;
                self.reply(ReplyCode::TRANSFER_ABORTED, "HASH aborted.")
                    .await?;
                self.reply(ReplyCode::TRANSFER_COMPLETE, "ABOR successful.")
                    .await
            }
            // The digest thread stops by itself once `stop` is set.
            Busy::ControlLost => {
                stop.store(true, Ordering::Relaxed);
                Ok(Flow::Close)
            }
            Busy::Ended => {
                stop.store(true, Ordering::Relaxed);
                self.end_by_administrator().await;
                Ok(Flow::Close)
            }
        }
    }

    /// `OPTS HASH [algorithm]`: shows or selects the algorithm for `HASH`.
    pub(super) async fn opts_hash(&mut self, value: &str) -> Result {
        if value.is_empty() {
            let name = self.params.hash_algorithm.name();
            return self.reply(ReplyCode::OK, name).await;
        }
        match HashAlgorithm::from_name(value) {
            Some(algorithm) => {
                self.params.hash_algorithm = algorithm;
                self.reply(ReplyCode::OK, algorithm.name()).await
            }
            None => {
                self.reply(
                    ReplyCode::PARAMETER_SYNTAX_ERROR,
                    "Unknown algorithm; see FEAT for the supported ones.",
                )
                .await
            }
        }
    }
}

/// Reads `file` to its end: its length and lowercase hex digest. Counts the bytes read in
/// `progress`; stops with an `Interrupted` error once `stop` is set.
fn digest_file(
    mut file: impl Read,
    algorithm: HashAlgorithm,
    progress: &AtomicU64,
    stop: &AtomicBool,
) -> io::Result<(u64, String)> {
    let mut hasher = Hasher::new(algorithm);
    let mut buf = vec![0u8; HASH_CHUNK];
    let mut size = 0u64;
    loop {
        if stop.load(Ordering::Relaxed) {
            return Err(io::Error::new(io::ErrorKind::Interrupted, "HASH aborted"));
        }
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        size += n as u64;
        progress.store(size, Ordering::Relaxed);
    }
    Ok((size, hasher.finish()))
}

/// One running digest of any supported algorithm.
enum Hasher {
    Sha1(Sha1),
    Sha256(Sha256),
    Md5(Md5),
    Crc32(crc32fast::Hasher),
}

impl Hasher {
    fn new(algorithm: HashAlgorithm) -> Hasher {
        match algorithm {
            HashAlgorithm::Sha1 => Hasher::Sha1(Sha1::new()),
            HashAlgorithm::Sha256 => Hasher::Sha256(Sha256::new()),
            HashAlgorithm::Md5 => Hasher::Md5(Md5::new()),
            HashAlgorithm::Crc32 => Hasher::Crc32(crc32fast::Hasher::new()),
        }
    }

    fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Sha1(h) => h.update(bytes),
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::Md5(h) => h.update(bytes),
            Hasher::Crc32(h) => h.update(bytes),
        }
    }

    fn finish(self) -> String {
        let bytes: Vec<u8> = match self {
            Hasher::Sha1(h) => h.finalize().to_vec(),
            Hasher::Sha256(h) => h.finalize().to_vec(),
            Hasher::Md5(h) => h.finalize().to_vec(),
            Hasher::Crc32(h) => h.finalize().to_be_bytes().to_vec(),
        };
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn known_digests_of_abc() {
        let mut tmp = tempfile::tempfile().expect("temp file");
        tmp.write_all(b"abc").expect("write");
        let expected = [
            (
                HashAlgorithm::Sha1,
                "a9993e364706816aba3e25717850c26c9cd0d89d",
            ),
            (
                HashAlgorithm::Sha256,
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            ),
            (HashAlgorithm::Md5, "900150983cd24fb0d6963f7d28e17f72"),
            (HashAlgorithm::Crc32, "352441c2"),
        ];
        for (algorithm, hex) in expected {
            let file = tmp.try_clone().expect("clone");
            let mut f = file;
            std::io::Seek::rewind(&mut f).expect("rewind");
            let (progress, stop) = (AtomicU64::new(0), AtomicBool::new(false));
            let digest = digest_file(f, algorithm, &progress, &stop).expect("digest");
            assert_eq!(digest, (3, hex.into()));
            assert_eq!(progress.load(Ordering::Relaxed), 3);
        }
    }
}
