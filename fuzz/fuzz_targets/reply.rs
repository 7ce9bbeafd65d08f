//! What a client reads from a server: multi-line replies and the texts inside them (227,
//! 229, 257, 213 SIZE/MDTM/HASH, 211 FEAT, 250 MLST). A hostile server must not crash the
//! client.
#![no_main]

use ftps_proto::reply::{self, ReplyDecoder};
use ftps_proto::{address, feat, hash, listing_parse, status};
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
                let _ = reply::unquote_path(&body);
                let _ = status::parse_size_reply(&body);
                let _ = status::parse_mdtm_reply(&body);
                let _ = hash::parse_hash_reply(&body);
                for feature in feat::features(&reply) {
                    let _ = hash::parse_feat_params(feature.params());
                }
                let _ = listing_parse::parse_mlst_reply(&reply);
            }
            Ok(None) => {}
            Err(_) => decoder = ReplyDecoder::new(100),
        }
    }
    let _ = address::parse_eprt(&text);
    let _ = address::parse_host_port(&text);
    let _ = listing_parse::parse_nlst(&text);
});
