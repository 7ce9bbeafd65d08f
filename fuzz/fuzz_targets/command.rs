//! The server's command parser (RFC 959 and extensions): any line, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|line: &[u8]| {
    if let Ok(command) = ftps_proto::command::parse(line) {
        // Every parsed command has a verb.
        assert!(!command.verb().is_empty());
    }
});
