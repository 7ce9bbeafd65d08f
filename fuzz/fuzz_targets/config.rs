//! The server's configuration loader: TOML, every section and its validation.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = ftps_server::config::Config::parse(text);
    }
});
