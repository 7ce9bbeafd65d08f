//! `TYPE A` line-ending conversion (RFC 959 §3.1.1.1): files are stored with the server's
//! native LF endings and sent as CRLF; received CRLF is stored as LF.

/// Converts LF to CRLF for sending in ASCII mode. Stateless: an existing CR before an LF is
/// left as it is, so CRLF files are not doubled.
#[derive(Debug, Default, Clone)]
pub struct ToNetwork {
    last_was_cr: bool,
}

impl ToNetwork {
    /// Appends the converted form of `input` to `out`.
    pub fn convert(&mut self, input: &[u8], out: &mut Vec<u8>) {
        out.reserve(input.len() + input.len() / 16);
        for &b in input {
            if b == b'\n' && !self.last_was_cr {
                out.push(b'\r');
            }
            out.push(b);
            self.last_was_cr = b == b'\r';
        }
    }
}

/// Converts CRLF to LF for storing data received in ASCII mode. A lone CR is kept.
#[derive(Debug, Default, Clone)]
pub struct FromNetwork {
    pending_cr: bool,
}

impl FromNetwork {
    /// Appends the converted form of `input` to `out`.
    pub fn convert(&mut self, input: &[u8], out: &mut Vec<u8>) {
        out.reserve(input.len() + 1);
        for &b in input {
            if self.pending_cr {
                self.pending_cr = false;
                if b != b'\n' {
                    out.push(b'\r');
                }
            }
            if b == b'\r' {
                self.pending_cr = true;
            } else {
                out.push(b);
            }
        }
    }

    /// Flushes a CR held back at the end of the stream.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if std::mem::take(&mut self.pending_cr) {
            out.push(b'\r');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn converts_both_ways() {
        let mut out = Vec::new();
        ToNetwork::default().convert(b"a\nb\r\nc\n", &mut out);
        assert_eq!(out, b"a\r\nb\r\nc\r\n");
        let mut back = Vec::new();
        let mut from = FromNetwork::default();
        from.convert(b"a\r", &mut back);
        from.convert(b"\nb\rc\r", &mut back);
        from.finish(&mut back);
        assert_eq!(back, b"a\nb\rc\r");
    }

    proptest! {
        #[test]
        fn lf_text_round_trips_in_any_chunking(text in "[a-z\n]{0,200}", cut in 0usize..200) {
            let bytes = text.as_bytes();
            let cut = cut.min(bytes.len());
            let mut wire = Vec::new();
            let mut to = ToNetwork::default();
            to.convert(&bytes[..cut], &mut wire);
            to.convert(&bytes[cut..], &mut wire);
            let mut back = Vec::new();
            let mut from = FromNetwork::default();
            let cut2 = cut.min(wire.len());
            from.convert(&wire[..cut2], &mut back);
            from.convert(&wire[cut2..], &mut back);
            from.finish(&mut back);
            prop_assert_eq!(back, bytes);
        }
    }
}
