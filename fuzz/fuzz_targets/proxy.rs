//! The PROXY protocol header parser (v1 and v2): never panics, and what it says about the
//! input's length holds: a header is no longer than the input nor the bounds, and a request
//! for more bytes asks for more than there are, within the bounds.
#![no_main]

use ftps_proto::proxy::{parse, Parsed, V1_MAX, V2_MAX};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match parse(data) {
        Ok(Parsed::Header { len, .. }) => {
            assert!(len <= data.len());
            assert!(len <= V1_MAX.max(V2_MAX));
        }
        Ok(Parsed::Incomplete(needed)) => {
            assert!(needed > data.len());
            assert!(needed <= V1_MAX.max(V2_MAX));
        }
        Err(_) => {}
    }
});
