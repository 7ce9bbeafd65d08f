//! The client's listing parsers: MLSD/MLST facts and Unix and DOS `LIST` lines.
#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use ftps_proto::listing_parse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // A fixed "now", so that runs are reproducible.
    let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    for line in text.lines() {
        let _ = listing_parse::parse_mlsx_line(line);
        let _ = listing_parse::parse_list_line(line, now);
    }
});
