//! The control connection's line decoder (CRLF framing, Telnet IAC, the length limit), fed
//! in chunks whose sizes come from the input: events are bounded and never panic.
#![no_main]

use ftps_proto::line::{LineDecoder, LineEvent};
use libfuzzer_sys::fuzz_target;

const MAX_LINE: usize = 512;

fuzz_target!(|data: &[u8]| {
    let Some((&split, bytes)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(split).max(1);
    let mut decoder = LineDecoder::new(MAX_LINE);
    for piece in bytes.chunks(chunk) {
        decoder.push(piece);
        while let Some(event) = decoder.next_event() {
            if let LineEvent::Line(line) = event {
                assert!(line.len() <= MAX_LINE);
            }
        }
    }
});
