//! `FEAT` replies (RFC 2389 §3.2), as a client reads them: one feature per line between the
//! reply's first and last lines, each a name and optional parameters.

use crate::reply::Reply;

/// One line of a `FEAT` reply, leading and trailing blanks removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Feature<'a> {
    line: &'a str,
}

impl<'a> Feature<'a> {
    /// A feature line; blanks around it are removed.
    pub fn new(line: &'a str) -> Feature<'a> {
        Feature { line: line.trim() }
    }

    /// The whole line.
    pub fn line(&self) -> &'a str {
        self.line
    }

    /// The feature's name, as the server wrote it (`MLST`, `REST`, `UTF8`).
    pub fn name(&self) -> &'a str {
        self.line.split_whitespace().next().unwrap_or("")
    }

    /// Whether the name is `name`, ignoring case (RFC 2389: names are case-insensitive).
    pub fn is(&self, name: &str) -> bool {
        self.name().eq_ignore_ascii_case(name)
    }

    /// What follows the name (`type*;size*;` for `MLST`, `STREAM` for `REST`).
    pub fn params(&self) -> &'a str {
        self.line[self.name().len()..].trim_start()
    }
}

/// The features of a 211 `FEAT` reply: every line but the first and the last.
pub fn features(reply: &Reply) -> impl Iterator<Item = Feature<'_>> {
    let n = reply.lines.len();
    reply
        .lines
        .iter()
        .take(n.saturating_sub(1))
        .skip(1)
        .map(|line| Feature::new(line))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reply::{ReplyCode, ReplyDecoder};

    #[test]
    fn features_of_a_feat_reply() {
        let mut decoder = ReplyDecoder::new(100);
        let wire = "211-Features:\r\n EPSV\r\n MLST type*;size*;modify*;\r\n rest  STREAM \r\n UTF8\r\n211 End";
        let mut reply = None;
        for line in wire.split("\r\n") {
            reply = decoder.feed_line(line).unwrap();
        }
        let reply = reply.unwrap();
        let found: Vec<(&str, &str)> = features(&reply).map(|f| (f.name(), f.params())).collect();
        assert_eq!(
            found,
            vec![
                ("EPSV", ""),
                ("MLST", "type*;size*;modify*;"),
                ("rest", "STREAM"),
                ("UTF8", ""),
            ]
        );
        let rest = features(&reply).find(|f| f.is("REST")).unwrap();
        assert_eq!(rest.line(), "rest  STREAM");
    }

    #[test]
    fn single_line_replies_have_no_features() {
        let reply = Reply::new(ReplyCode::SYSTEM_STATUS, "No features");
        assert_eq!(features(&reply).count(), 0);
        assert_eq!(Feature::new("   ").name(), "");
        assert_eq!(Feature::new("   ").params(), "");
    }
}
