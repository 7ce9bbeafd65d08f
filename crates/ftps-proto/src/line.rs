//! Splitting the control connection's byte stream into command lines (RFC 959 §4.1.3, RFC 854).
//!
//! The decoder is a bounded state machine: it never holds more than `max_line` bytes of a line,
//! strips Telnet IAC sequences (RFC 854) so they can neither smuggle bytes into a command nor
//! confuse the parser, and reports an over-long line once, discarding it up to its end.

/// Telnet "interpret as command" escape byte.
const IAC: u8 = 255;
/// Telnet option negotiation verbs, each followed by one option byte.
const WILL: u8 = 251;
const DONT: u8 = 254;
/// Telnet sub-negotiation begin/end.
const SB: u8 = 250;
const SE: u8 = 240;

/// One item taken from the decoder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineEvent {
    /// A complete line without its CRLF (or bare LF), Telnet sequences removed.
    Line(Vec<u8>),
    /// A line longer than the limit was received and discarded up to its end of line.
    TooLong,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TelnetState {
    Data,
    /// Saw IAC.
    Iac,
    /// Saw IAC WILL/WONT/DO/DONT; the next byte is the option.
    Option,
    /// Inside IAC SB ... IAC SE.
    Sub,
    /// Saw IAC inside a sub-negotiation.
    SubIac,
}

/// Incremental control-line decoder with a bound on line length.
#[derive(Debug, Clone)]
pub struct LineDecoder {
    max_line: usize,
    current: Vec<u8>,
    /// The current line exceeded `max_line`; drop bytes until its end.
    overflowed: bool,
    telnet: TelnetState,
    /// Raw bytes not yet examined.
    pending: Vec<u8>,
    pending_pos: usize,
}

impl LineDecoder {
    /// A decoder accepting lines of at most `max_line` bytes (after Telnet processing, without
    /// the line ending).
    pub fn new(max_line: usize) -> Self {
        LineDecoder {
            max_line,
            current: Vec::new(),
            overflowed: false,
            telnet: TelnetState::Data,
            pending: Vec::new(),
            pending_pos: 0,
        }
    }

    /// Adds raw bytes read from the connection.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.pending_pos == self.pending.len() {
            self.pending.clear();
            self.pending_pos = 0;
        }
        self.pending.extend_from_slice(bytes);
    }

    /// Whether any received bytes have not yet been returned as part of a line: a partial
    /// line, or unexamined input. After `AUTH TLS` or `CCC` this must be false, otherwise the
    /// client pipelined bytes across a security boundary.
    pub fn has_buffered(&self) -> bool {
        self.pending_pos < self.pending.len() || !self.current.is_empty() || self.overflowed
    }

    /// Drops everything buffered.
    pub fn clear(&mut self) {
        self.pending.clear();
        self.pending_pos = 0;
        self.current.clear();
        self.overflowed = false;
        self.telnet = TelnetState::Data;
    }

    /// Releases buffer memory while the connection is idle.
    pub fn shrink(&mut self) {
        if !self.has_buffered() {
            self.pending = Vec::new();
            self.pending_pos = 0;
            self.current = Vec::new();
        }
    }

    /// Returns the next complete line, if the buffered input holds one.
    pub fn next_event(&mut self) -> Option<LineEvent> {
        while self.pending_pos < self.pending.len() {
            let byte = self.pending[self.pending_pos];
            self.pending_pos += 1;
            if let Some(data) = self.telnet_filter(byte) {
                if data == b'\n' {
                    return Some(self.finish_line());
                }
                if self.overflowed {
                    continue;
                }
                // One byte of slack for the CR of the line ending.
                if self.current.len() > self.max_line {
                    self.overflowed = true;
                    self.current = Vec::new();
                    continue;
                }
                self.current.push(data);
            }
        }
        None
    }

    fn finish_line(&mut self) -> LineEvent {
        if self.overflowed {
            self.overflowed = false;
            return LineEvent::TooLong;
        }
        let mut line = std::mem::take(&mut self.current);
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if line.len() > self.max_line {
            return LineEvent::TooLong;
        }
        LineEvent::Line(line)
    }

    /// Feeds one byte through the Telnet state machine; returns it if it is data.
    fn telnet_filter(&mut self, byte: u8) -> Option<u8> {
        match self.telnet {
            TelnetState::Data if byte == IAC => {
                self.telnet = TelnetState::Iac;
                None
            }
            TelnetState::Data => Some(byte),
            TelnetState::Iac => match byte {
                IAC => {
                    self.telnet = TelnetState::Data;
                    Some(IAC)
                }
                WILL..=DONT => {
                    self.telnet = TelnetState::Option;
                    None
                }
                SB => {
                    self.telnet = TelnetState::Sub;
                    None
                }
                // IP, DM, AO, AYT, NOP, ...: a two-byte command with no data.
                _ => {
                    self.telnet = TelnetState::Data;
                    None
                }
            },
            TelnetState::Option => {
                self.telnet = TelnetState::Data;
                None
            }
            TelnetState::Sub => {
                if byte == IAC {
                    self.telnet = TelnetState::SubIac;
                }
                None
            }
            TelnetState::SubIac => {
                self.telnet = if byte == SE {
                    TelnetState::Data
                } else {
                    TelnetState::Sub
                };
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lines(dec: &mut LineDecoder) -> Vec<LineEvent> {
        std::iter::from_fn(|| dec.next_event()).collect()
    }

    #[test]
    fn splits_crlf_and_bare_lf() {
        let mut d = LineDecoder::new(100);
        d.push(b"USER a\r\nPASS b\nNO");
        assert_eq!(
            lines(&mut d),
            vec![
                LineEvent::Line(b"USER a".to_vec()),
                LineEvent::Line(b"PASS b".to_vec())
            ]
        );
        assert!(d.has_buffered());
        d.push(b"OP\r\n");
        assert_eq!(lines(&mut d), vec![LineEvent::Line(b"NOOP".to_vec())]);
        assert!(!d.has_buffered());
    }

    #[test]
    fn strips_telnet_sequences() {
        let mut d = LineDecoder::new(100);
        // IAC IP IAC DM before ABOR (RFC 959 §4.1.3), an option negotiation, an escaped 0xFF.
        d.push(&[
            255, 244, 255, 242, b'A', b'B', 255, 253, 1, b'O', b'R', 255, 255, b'\r', b'\n',
        ]);
        assert_eq!(
            lines(&mut d),
            vec![LineEvent::Line(vec![b'A', b'B', b'O', b'R', 255])]
        );
        d.push(&[255, 250, 1, 2, 255, 1, 255, 240, b'X', b'\n']);
        assert_eq!(lines(&mut d), vec![LineEvent::Line(b"X".to_vec())]);
    }

    #[test]
    fn overlong_line_is_reported_once_and_skipped() {
        let mut d = LineDecoder::new(8);
        d.push(b"123456789");
        assert_eq!(lines(&mut d), vec![]);
        d.push(b"0123456789abcdef\r\nNOOP\r\n");
        assert_eq!(
            lines(&mut d),
            vec![LineEvent::TooLong, LineEvent::Line(b"NOOP".to_vec())]
        );
        // Exactly at the limit is fine.
        d.push(b"12345678\r\n");
        assert_eq!(lines(&mut d), vec![LineEvent::Line(b"12345678".to_vec())]);
    }

    proptest! {
        #[test]
        fn never_exceeds_limit_and_never_panics(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..16)) {
            let mut d = LineDecoder::new(16);
            for chunk in &chunks {
                d.push(chunk);
                while let Some(ev) = d.next_event() {
                    if let LineEvent::Line(l) = ev {
                        prop_assert!(l.len() <= 16);
                        prop_assert!(!l.contains(&b'\n'));
                    }
                }
            }
        }

        #[test]
        fn chunking_does_not_change_result(data in proptest::collection::vec(any::<u8>(), 0..256), split in 0usize..256) {
            let mut whole = LineDecoder::new(32);
            whole.push(&data);
            let a = lines(&mut whole);
            let mut parts = LineDecoder::new(32);
            let split = split.min(data.len());
            parts.push(&data[..split]);
            let mut b = lines(&mut parts);
            parts.push(&data[split..]);
            b.extend(lines(&mut parts));
            prop_assert_eq!(a, b);
        }
    }
}
