//! What a client reads from a server: multi-line replies and the texts inside them (227,
//! 229, 257, HASH). A hostile server must not crash the client.
#![no_main]

use ftps_proto::address;
use ftps_proto::reply::ReplyDecoder;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut decoder = ReplyDecoder::new(100);
    for line in text.split("\r\n") {
        match decoder.feed_line(line) {
            Ok(Some(reply)) => {
                let body = reply.text();
                let _ = address::parse_pasv_reply(&body);
                let _ = address::parse_epsv_reply(&body);
            }
            Ok(None) => {}
            Err(_) => decoder = ReplyDecoder::new(100),
        }
    }
    let _ = address::parse_eprt(&text);
    let _ = address::parse_host_port(&text);
});
