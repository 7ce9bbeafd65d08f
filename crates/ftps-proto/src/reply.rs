//! FTP replies: codes, single- and multi-line formatting (RFC 959 §4.2) and decoding.

use std::fmt;

/// A three-digit FTP reply code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReplyCode(pub u16);

#[allow(missing_docs)]
impl ReplyCode {
    pub const RESTART_MARKER: ReplyCode = ReplyCode(110);
    pub const FILE_STATUS_OK: ReplyCode = ReplyCode(150);
    pub const OK: ReplyCode = ReplyCode(200);
    pub const SUPERFLUOUS: ReplyCode = ReplyCode(202);
    pub const SYSTEM_STATUS: ReplyCode = ReplyCode(211);
    pub const DIRECTORY_STATUS: ReplyCode = ReplyCode(212);
    pub const FILE_STATUS: ReplyCode = ReplyCode(213);
    pub const HELP: ReplyCode = ReplyCode(214);
    pub const SYSTEM_TYPE: ReplyCode = ReplyCode(215);
    pub const READY: ReplyCode = ReplyCode(220);
    pub const CLOSING: ReplyCode = ReplyCode(221);
    pub const DATA_CLOSED_IDLE: ReplyCode = ReplyCode(225);
    pub const TRANSFER_COMPLETE: ReplyCode = ReplyCode(226);
    pub const PASSIVE: ReplyCode = ReplyCode(227);
    pub const EXTENDED_PASSIVE: ReplyCode = ReplyCode(229);
    pub const LOGGED_IN: ReplyCode = ReplyCode(230);
    pub const LOGGED_IN_BY_CERT: ReplyCode = ReplyCode(232);
    pub const AUTH_OK: ReplyCode = ReplyCode(234);
    pub const FILE_ACTION_OK: ReplyCode = ReplyCode(250);
    pub const PATH_CREATED: ReplyCode = ReplyCode(257);
    pub const NEED_PASSWORD: ReplyCode = ReplyCode(331);
    pub const PENDING_FURTHER_INFO: ReplyCode = ReplyCode(350);
    pub const SERVICE_NOT_AVAILABLE: ReplyCode = ReplyCode(421);
    pub const CANT_OPEN_DATA: ReplyCode = ReplyCode(425);
    pub const TRANSFER_ABORTED: ReplyCode = ReplyCode(426);
    pub const FILE_BUSY: ReplyCode = ReplyCode(450);
    pub const LOCAL_ERROR: ReplyCode = ReplyCode(451);
    pub const INSUFFICIENT_STORAGE: ReplyCode = ReplyCode(452);
    pub const SYNTAX_ERROR: ReplyCode = ReplyCode(500);
    pub const PARAMETER_SYNTAX_ERROR: ReplyCode = ReplyCode(501);
    pub const NOT_IMPLEMENTED: ReplyCode = ReplyCode(502);
    pub const BAD_SEQUENCE: ReplyCode = ReplyCode(503);
    pub const PARAMETER_NOT_IMPLEMENTED: ReplyCode = ReplyCode(504);
    pub const PROTECTION_REQUIRED: ReplyCode = ReplyCode(521);
    pub const EXTENDED_PORT_FAILURE: ReplyCode = ReplyCode(522);
    pub const NOT_LOGGED_IN: ReplyCode = ReplyCode(530);
    pub const POLICY_REFUSED: ReplyCode = ReplyCode(534);
    pub const PROTECTION_NOT_SUPPORTED: ReplyCode = ReplyCode(536);
    pub const FILE_UNAVAILABLE: ReplyCode = ReplyCode(550);
    pub const PAGE_TYPE_UNKNOWN: ReplyCode = ReplyCode(551);
    pub const EXCEEDED_STORAGE: ReplyCode = ReplyCode(552);
    pub const BAD_FILE_NAME: ReplyCode = ReplyCode(553);
    pub const INVALID_REST: ReplyCode = ReplyCode(554);

    /// 1yz: positive preliminary (another reply follows).
    pub fn is_preliminary(self) -> bool {
        (100..200).contains(&self.0)
    }
    /// 2yz: positive completion.
    pub fn is_completion(self) -> bool {
        (200..300).contains(&self.0)
    }
    /// 3yz: positive intermediate (the command needs a follow-up).
    pub fn is_intermediate(self) -> bool {
        (300..400).contains(&self.0)
    }
    /// 4yz or 5yz.
    pub fn is_failure(self) -> bool {
        (400..600).contains(&self.0)
    }
}

impl fmt::Display for ReplyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:03}", self.0)
    }
}

/// One reply: a code and one or more lines of text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The reply code.
    pub code: ReplyCode,
    /// The text lines; never empty.
    pub lines: Vec<String>,
}

impl Reply {
    /// A single-line reply.
    pub fn new(code: ReplyCode, text: impl Into<String>) -> Reply {
        Reply {
            code,
            lines: vec![text.into()],
        }
    }

    /// A multi-line reply. The first and last lines carry the code; the middle ones are sent
    /// as given (callers indent them with a space, as FEAT and STAT do).
    pub fn multi(code: ReplyCode, lines: Vec<String>) -> Reply {
        let lines = if lines.is_empty() {
            vec![String::new()]
        } else {
            lines
        };
        Reply { code, lines }
    }

    /// The text of all lines joined with newlines.
    pub fn text(&self) -> String {
        self.lines.join("\n")
    }

    /// Appends the wire form of this reply to `out`.
    ///
    /// Control characters in the text (a CR or LF taken from a file name, say) are replaced,
    /// so text can never end a reply early or forge another one. A middle line that starts
    /// with a digit is indented, so it cannot be mistaken for the closing line (RFC 959 §4.2).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let last = self.lines.len() - 1;
        for (i, line) in self.lines.iter().enumerate() {
            if i == last {
                out.extend_from_slice(format!("{} ", self.code).as_bytes());
            } else if i == 0 {
                out.extend_from_slice(format!("{}-", self.code).as_bytes());
            } else if line.starts_with(|c: char| c.is_ascii_digit()) {
                out.push(b' ');
            }
            push_sanitized(out, line);
            out.extend_from_slice(b"\r\n");
        }
    }

    /// The wire form of this reply.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.lines.join(" / "))
    }
}

fn push_sanitized(out: &mut Vec<u8>, text: &str) {
    for ch in text.chars() {
        if ch.is_control() {
            out.push(b'?');
        } else {
            let mut buf = [0u8; 4];
            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
        }
    }
}

/// Quotes a path for a 257 reply: enclosed in double quotes, inner quotes doubled
/// (RFC 959 Appendix II).
pub fn quote_path(path: &str) -> String {
    format!("\"{}\"", path.replace('"', "\"\""))
}

/// Reads the path out of a 257 reply's text (`"/a ""quoted"" dir" created`): the text
/// between the first double quote and the next one that is not doubled, with doubled
/// quotes made single (RFC 959 Appendix II). The inverse of [`quote_path`].
pub fn unquote_path(text: &str) -> Option<String> {
    let start = text.find('"')? + 1;
    let mut out = String::new();
    let mut chars = text[start..].chars().peekable();
    while let Some(c) = chars.next() {
        if c == '"' {
            if chars.peek() == Some(&'"') {
                chars.next();
                out.push('"');
            } else {
                return Some(out);
            }
        } else {
            out.push(c);
        }
    }
    None
}

/// Why a reply could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplyDecodeError {
    /// A line did not start with a three-digit code.
    Malformed(String),
    /// A multi-line reply was longer than the decoder accepts.
    TooLong,
}

impl fmt::Display for ReplyDecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplyDecodeError::Malformed(line) => write!(f, "malformed reply line: {line:?}"),
            ReplyDecodeError::TooLong => write!(f, "reply too long"),
        }
    }
}

impl std::error::Error for ReplyDecodeError {}

/// Assembles replies from lines received on the control connection (the client side).
#[derive(Debug, Default, Clone)]
pub struct ReplyDecoder {
    open: Option<(ReplyCode, Vec<String>)>,
    max_lines: usize,
}

impl ReplyDecoder {
    /// A decoder that accepts multi-line replies of up to `max_lines` lines.
    pub fn new(max_lines: usize) -> Self {
        ReplyDecoder {
            open: None,
            max_lines,
        }
    }

    /// Feeds one line (without its CRLF); returns a reply once it is complete.
    pub fn feed_line(&mut self, line: &str) -> Result<Option<Reply>, ReplyDecodeError> {
        if let Some((code, lines)) = &mut self.open {
            // The closing line repeats the code followed by a space (or nothing).
            if let Some((c, sep, text)) = split_code(line) {
                if c == *code && sep != Some('-') {
                    lines.push(text.to_string());
                    let (code, lines) = self.open.take().unwrap_or((c, Vec::new()));
                    return Ok(Some(Reply { code, lines }));
                }
            }
            if lines.len() >= self.max_lines {
                self.open = None;
                return Err(ReplyDecodeError::TooLong);
            }
            lines.push(line.to_string());
            return Ok(None);
        }
        match split_code(line) {
            Some((code, Some('-'), text)) => {
                self.open = Some((code, vec![text.to_string()]));
                Ok(None)
            }
            Some((code, _, text)) => Ok(Some(Reply::new(code, text))),
            None => Err(ReplyDecodeError::Malformed(line.to_string())),
        }
    }
}

/// Splits "123-text" / "123 text" / "123" into code, separator and text.
fn split_code(line: &str) -> Option<(ReplyCode, Option<char>, &str)> {
    let bytes = line.as_bytes();
    if bytes.len() < 3 || !bytes[..3].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let code = ReplyCode(line[..3].parse().ok()?);
    let sep = line[3..].chars().next();
    match sep {
        None => Some((code, None, "")),
        Some(c @ (' ' | '-')) => Some((code, Some(c), &line[4..])),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn single_and_multi_line_encoding() {
        assert_eq!(
            Reply::new(ReplyCode::READY, "ftpsd ready").to_bytes(),
            b"220 ftpsd ready\r\n"
        );
        let feat = Reply::multi(
            ReplyCode::SYSTEM_STATUS,
            vec![
                "Features:".into(),
                " UTF8".into(),
                "123 tricky".into(),
                "End".into(),
            ],
        );
        assert_eq!(
            String::from_utf8(feat.to_bytes()).unwrap(),
            "211-Features:\r\n UTF8\r\n 123 tricky\r\n211 End\r\n"
        );
    }

    #[test]
    fn control_characters_cannot_forge_replies() {
        let r = Reply::new(ReplyCode::FILE_UNAVAILABLE, "x\r\n230 fake");
        assert_eq!(r.to_bytes(), b"550 x??230 fake\r\n");
    }

    #[test]
    fn quotes_paths() {
        assert_eq!(quote_path("/a\"b"), "\"/a\"\"b\"");
    }

    #[test]
    fn unquotes_257_paths() {
        assert_eq!(
            unquote_path("\"/a \"\"b\"\" c\" is current").as_deref(),
            Some("/a \"b\" c")
        );
        assert_eq!(
            unquote_path("MKD command successful: \"/new\"").as_deref(),
            Some("/new")
        );
        assert_eq!(unquote_path("\"\"").as_deref(), Some(""));
        assert_eq!(unquote_path("no quotes"), None);
        assert_eq!(unquote_path("\"unterminated"), None);
        assert_eq!(unquote_path("\"ends in a doubled quote\"\""), None);
    }

    #[test]
    fn decodes_multi_line() {
        let mut d = ReplyDecoder::new(100);
        assert_eq!(d.feed_line("211-Features:").unwrap(), None);
        assert_eq!(d.feed_line(" MLST").unwrap(), None);
        assert_eq!(d.feed_line("211-not the end").unwrap(), None);
        let r = d.feed_line("211 End").unwrap().unwrap();
        assert_eq!(r.code, ReplyCode(211));
        assert_eq!(
            r.lines,
            vec!["Features:", " MLST", "211-not the end", "End"]
        );
        assert!(d.feed_line("hello").is_err());
        assert_eq!(d.feed_line("200").unwrap().unwrap().code, ReplyCode::OK);
    }

    proptest! {
        #[test]
        fn unquote_inverts_quote(path in "\\PC{0,40}", rest in "[ -~]{0,20}") {
            let text = format!("{} {rest}", quote_path(&path));
            prop_assert_eq!(unquote_path(&text), Some(path));
        }

        #[test]
        fn unquote_never_panics(text in "\\PC{0,60}") {
            let _ = unquote_path(&text);
        }

        #[test]
        fn encode_then_decode_round_trips(code in 100u16..600, lines in proptest::collection::vec("[ -~]{0,40}", 1..6)) {
            let reply = Reply::multi(ReplyCode(code), lines);
            let wire = String::from_utf8(reply.to_bytes()).unwrap();
            let mut d = ReplyDecoder::new(100);
            let mut got = None;
            for line in wire.split("\r\n").filter(|l| !l.is_empty() || got.is_none()) {
                if let Some(r) = d.feed_line(line).unwrap() { got = Some(r); break; }
            }
            let got = got.unwrap();
            prop_assert_eq!(got.code, reply.code);
            prop_assert_eq!(got.lines.len(), reply.lines.len());
        }
    }
}
