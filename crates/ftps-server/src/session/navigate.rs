//! Working directory: `PWD`, `CWD`, `CDUP` and their X-variants (RFC 959 §4.1.1, §4.1.3;
//! RFC 1123 §4.1.3.1).

use ftps_proto::reply::quote_path;
use ftps_proto::ReplyCode;

use super::{Login, Result, Session};
use crate::vfs::EntryKind;

impl Session {
    pub(super) async fn cmd_pwd(&mut self) -> Result {
        let cwd = match self.logged_in() {
            Some(l) => l.cwd.clone(),
            None => return Ok(super::Flow::Continue),
        };
        self.reply(
            ReplyCode::PATH_CREATED,
            format!("{} is the current directory.", quote_path(cwd.as_str())),
        )
        .await
    }

    pub(super) async fn cmd_cwd(&mut self, arg: &str) -> Result {
        let Some((root, path)) = self.resolve(arg) else {
            return Ok(super::Flow::Continue);
        };
        match root.metadata(&path).await {
            Ok(entry) if entry.kind == EntryKind::Dir => {
                if let Login::LoggedIn(l) = &mut self.login {
                    l.cwd = path.clone();
                }
                self.reply(
                    ReplyCode::FILE_ACTION_OK,
                    format!("Directory changed to {}.", quote_path(path.as_str())),
                )
                .await
            }
            Ok(_) => {
                self.reply(ReplyCode::FILE_UNAVAILABLE, "Not a directory.")
                    .await
            }
            Err(e) => self.reply_fs_error("CWD", &path, &e).await,
        }
    }
}
