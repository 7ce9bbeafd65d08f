//! Directory listings over a data connection: `MLSD` (RFC 3659 §7), `LIST` and `NLST`
//! (RFC 959 §4.1.3), read whole and parsed by the protocol crate.

use std::time::SystemTime;

use ftps_proto::command::ListArgs;
use ftps_proto::listing_parse::{parse_list_line, parse_mlsx_line, parse_nlst, ListEntry};
use ftps_proto::Command;

use crate::error::{Error, Result};
use crate::session::FtpsClient;

/// Largest listing read into memory.
const MAX_LISTING: usize = 256 * 1024 * 1024;

/// The arguments of a listing of `path`; none for the current directory.
fn of_path(path: &str) -> ListArgs {
    ListArgs {
        options: String::new(),
        path: (!path.is_empty()).then(|| path.to_string()),
    }
}

impl FtpsClient {
    /// Lists a directory with `MLSD` where the server has it, else `LIST` (Unix or DOS format).
    /// The entries for the directory itself and its parent are left out.
    pub async fn list_dir(&mut self, path: &str) -> Result<Vec<ListEntry>> {
        let entries = if self.features.mlst {
            self.mlsd(path).await?
        } else {
            self.list(path).await?
        };
        Ok(entries
            .into_iter()
            .filter(|e| !e.is_self_or_parent())
            .collect())
    }

    /// `MLSD` (RFC 3659).
    pub async fn mlsd(&mut self, path: &str) -> Result<Vec<ListEntry>> {
        let path = (!path.is_empty()).then(|| path.to_string());
        let raw = self.read_listing(Command::Mlsd(path)).await?;
        Ok(raw.lines().filter_map(parse_mlsx_line).collect())
    }

    /// `LIST`, parsed (Unix `ls -l` or DOS format; unknown lines are skipped).
    pub async fn list(&mut self, path: &str) -> Result<Vec<ListEntry>> {
        let raw = self.list_raw(path).await?;
        let now = SystemTime::now();
        Ok(raw
            .lines()
            .filter_map(|l| parse_list_line(l, now))
            .collect())
    }

    /// `LIST` as the server sent it.
    pub async fn list_raw(&mut self, path: &str) -> Result<String> {
        self.read_listing(Command::List(of_path(path))).await
    }

    /// `NLST`: bare names.
    pub async fn nlst(&mut self, path: &str) -> Result<Vec<String>> {
        let raw = self.read_listing(Command::Nlst(of_path(path))).await?;
        Ok(parse_nlst(&raw))
    }

    async fn read_listing(&mut self, command: Command) -> Result<String> {
        let mut transfer = self.open_transfer(command, 0, false).await?;
        let mut out = Vec::new();
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            let n = transfer.read_timed(&mut chunk).await?;
            if n == 0 {
                break;
            }
            if out.len() + n > MAX_LISTING {
                return Err(Error::Protocol("directory listing too large".into()));
            }
            out.extend_from_slice(&chunk[..n]);
        }
        transfer.finish().await?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listings_send_the_path_as_given() {
        let line = |args| Command::List(args).to_line().unwrap();
        assert_eq!(line(of_path("")), "LIST\r\n");
        assert_eq!(line(of_path("-dir name")), "LIST -dir name\r\n");
        assert_eq!(line(of_path(" x")), "LIST  x\r\n");
    }
}
