//! Working directory: `PWD`, `CWD`, `CDUP` and their X-variants (RFC 959 §4.1.1, §4.1.3;
//! RFC 1123 §4.1.3.1).

use ftps_proto::reply::quote_path;
use ftps_proto::ReplyCode;

use super::state::LoggedIn;
use super::{Result, Session};
use crate::storage::EntryKind;

impl Session {
    pub(super) async fn cmd_pwd(&mut self, user: &LoggedIn) -> Result {
        self.reply(
            ReplyCode::PATH_CREATED,
            format!(
                "{} is the current directory.",
                quote_path(user.cwd().as_str())
            ),
        )
        .await
    }

    pub(super) async fn cmd_cwd(&mut self, user: &mut LoggedIn, arg: &str) -> Result {
        let path = user.path(arg);
        match user.storage().metadata(&path).await {
            Ok(entry) if entry.kind == EntryKind::Dir => {
                let text = format!("Directory changed to {}.", quote_path(path.as_str()));
                user.set_cwd(path);
                self.reply(ReplyCode::FILE_ACTION_OK, text).await
            }
            Ok(_) => {
                self.reply(ReplyCode::FILE_UNAVAILABLE, "Not a directory.")
                    .await
            }
            Err(e) => self.reply_fs_error("CWD", &path, &e).await,
        }
    }
}
