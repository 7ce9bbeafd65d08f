//! The users file: TOML, user names, argon2id PHC strings, certificate matches.
#![no_main]

use std::path::Path;

use ftps_server::users::UserDb;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = UserDb::parse(Path::new("/nonexistent/users.toml"), text);
    }
});
