//! The PROXY protocol header (HAProxy's specification, versions 1 and 2): what a load
//! balancer sends first on a connection it forwards, to say who the client really is.
//!
//! [`parse`] looks at the first bytes of a connection and says whether they hold a whole
//! header (and how long it is, so that the caller consumes exactly it and nothing of what
//! follows), need more bytes, or are no valid header. No I/O: the caller peeks at the
//! socket. Version 2's TLVs are skipped; its `LOCAL` command and version 1's `UNKNOWN`
//! (health checks from the balancer itself) carry no addresses.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Version 2's fixed signature.
const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// Version 1's shortest header, `PROXY UNKNOWN\r\n`.
pub const V1_MIN: usize = 15;

/// Version 1's longest header, CRLF included (the specification's 107 bytes).
pub const V1_MAX: usize = 107;

/// The longest version 2 header accepted: 16 bytes, the addresses and TLVs. Balancers
/// send a few dozen bytes of TLVs; a larger length is refused rather than waited for.
pub const V2_MAX: usize = 16 + 1024;

/// What the first bytes of a connection are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A whole header of `len` bytes.
    Header {
        /// The header's length: the connection's own bytes start after it.
        len: usize,
        /// The client's and the balancer's addresses (`None` for `LOCAL` and `UNKNOWN`).
        addresses: Option<ProxiedAddresses>,
    },
    /// A header may start here, but more bytes are needed: at least this many in all.
    Incomplete(usize),
}

/// The addresses a header gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProxiedAddresses {
    /// The client, as the balancer saw it.
    pub source: SocketAddr,
    /// The address the client connected to, on the balancer.
    pub destination: SocketAddr,
}

/// Why the bytes are no valid header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyError {
    /// Neither signature.
    Missing,
    /// A version 1 line that does not follow the format.
    MalformedV1,
    /// A version 2 header with another version, command or family, or a length that does
    /// not fit its addresses.
    MalformedV2,
    /// A version 2 header longer than [`V2_MAX`].
    TooLong,
}

impl std::fmt::Display for ProxyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ProxyError::Missing => "no PROXY protocol header",
            ProxyError::MalformedV1 => "malformed PROXY protocol v1 header",
            ProxyError::MalformedV2 => "malformed PROXY protocol v2 header",
            ProxyError::TooLong => "PROXY protocol v2 header too long",
        })
    }
}

impl std::error::Error for ProxyError {}

/// Parses the header at the start of `bytes` (the first bytes of a connection).
pub fn parse(bytes: &[u8]) -> Result<Parsed, ProxyError> {
    if starts_like(bytes, &V2_SIGNATURE) {
        return parse_v2(bytes);
    }
    if starts_like(bytes, b"PROXY ") {
        return parse_v1(bytes);
    }
    Err(ProxyError::Missing)
}

/// Whether `bytes` is `signature`, or a prefix of it, or starts with it.
fn starts_like(bytes: &[u8], signature: &[u8]) -> bool {
    let n = bytes.len().min(signature.len());
    bytes[..n] == signature[..n] && !bytes.is_empty()
}

fn parse_v1(bytes: &[u8]) -> Result<Parsed, ProxyError> {
    let Some(end) = bytes.windows(2).position(|w| w == b"\r\n") else {
        if bytes.len() >= V1_MAX {
            return Err(ProxyError::MalformedV1);
        }
        // The shortest line, "PROXY UNKNOWN\r\n", has 15 bytes.
        return Ok(Parsed::Incomplete((bytes.len() + 1).max(V1_MIN)));
    };
    let len = end + 2;
    if len > V1_MAX {
        return Err(ProxyError::MalformedV1);
    }
    let line = std::str::from_utf8(&bytes[..end]).map_err(|_| ProxyError::MalformedV1)?;
    let mut fields = line.split(' ');
    if fields.next() != Some("PROXY") {
        return Err(ProxyError::MalformedV1);
    }
    let family = fields.next().ok_or(ProxyError::MalformedV1)?;
    if family == "UNKNOWN" {
        // The rest of the line is to be ignored.
        return Ok(Parsed::Header {
            len,
            addresses: None,
        });
    }
    let rest: Vec<&str> = fields.collect();
    let [src, dst, sport, dport] = rest[..] else {
        return Err(ProxyError::MalformedV1);
    };
    let ip = |text: &str| -> Result<IpAddr, ProxyError> {
        match family {
            "TCP4" => text
                .parse::<Ipv4Addr>()
                .map(IpAddr::V4)
                .map_err(|_| ProxyError::MalformedV1),
            "TCP6" => text
                .parse::<Ipv6Addr>()
                .map(IpAddr::V6)
                .map_err(|_| ProxyError::MalformedV1),
            _ => Err(ProxyError::MalformedV1),
        }
    };
    let port = |text: &str| -> Result<u16, ProxyError> {
        // Decimal without a sign or leading zeros, as the specification writes it.
        if text.is_empty() || (text.len() > 1 && text.starts_with('0')) {
            return Err(ProxyError::MalformedV1);
        }
        if !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ProxyError::MalformedV1);
        }
        text.parse().map_err(|_| ProxyError::MalformedV1)
    };
    Ok(Parsed::Header {
        len,
        addresses: Some(ProxiedAddresses {
            source: SocketAddr::new(ip(src)?, port(sport)?),
            destination: SocketAddr::new(ip(dst)?, port(dport)?),
        }),
    })
}

fn parse_v2(bytes: &[u8]) -> Result<Parsed, ProxyError> {
    if bytes.len() < 16 {
        return Ok(Parsed::Incomplete(16));
    }
    let version_command = bytes[12];
    let family = bytes[13];
    let length = usize::from(u16::from_be_bytes([bytes[14], bytes[15]]));
    let len = 16 + length;
    if version_command >> 4 != 2 {
        return Err(ProxyError::MalformedV2);
    }
    if len > V2_MAX {
        return Err(ProxyError::TooLong);
    }
    let local = match version_command & 0x0f {
        0 => true,
        1 => false,
        _ => return Err(ProxyError::MalformedV2),
    };
    if bytes.len() < len {
        return Ok(Parsed::Incomplete(len));
    }
    let body = &bytes[16..len];
    if local {
        return Ok(Parsed::Header {
            len,
            addresses: None,
        });
    }
    let addresses = match family {
        // TCP over IPv4, and UDP, which a TCP listener never gets: refused as malformed.
        0x11 => {
            if body.len() < 12 {
                return Err(ProxyError::MalformedV2);
            }
            let ip = |at: usize| {
                IpAddr::V4(Ipv4Addr::new(
                    body[at],
                    body[at + 1],
                    body[at + 2],
                    body[at + 3],
                ))
            };
            let port = |at: usize| u16::from_be_bytes([body[at], body[at + 1]]);
            Some(ProxiedAddresses {
                source: SocketAddr::new(ip(0), port(8)),
                destination: SocketAddr::new(ip(4), port(10)),
            })
        }
        0x21 => {
            if body.len() < 36 {
                return Err(ProxyError::MalformedV2);
            }
            let ip = |at: usize| {
                let mut octets = [0u8; 16];
                octets.copy_from_slice(&body[at..at + 16]);
                IpAddr::V6(Ipv6Addr::from(octets))
            };
            let port = |at: usize| u16::from_be_bytes([body[at], body[at + 1]]);
            Some(ProxiedAddresses {
                source: SocketAddr::new(ip(0), port(32)),
                destination: SocketAddr::new(ip(16), port(34)),
            })
        }
        // UNSPEC with PROXY: the balancer does not know; treated as no addresses.
        0x00 => None,
        _ => return Err(ProxyError::MalformedV2),
    };
    Ok(Parsed::Header { len, addresses })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2(command: u8, family: u8, body: &[u8]) -> Vec<u8> {
        let mut out = V2_SIGNATURE.to_vec();
        out.push(0x20 | command);
        out.push(family);
        out.extend_from_slice(&(body.len() as u16).to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn version_1_lines_give_their_addresses_and_length() {
        let line = b"PROXY TCP4 192.0.2.7 198.51.100.1 50012 21\r\nAUTH TLS\r\n";
        assert_eq!(
            parse(line),
            Ok(Parsed::Header {
                len: 44,
                addresses: Some(ProxiedAddresses {
                    source: "192.0.2.7:50012".parse().unwrap(),
                    destination: "198.51.100.1:21".parse().unwrap(),
                }),
            })
        );
        let six = b"PROXY TCP6 2001:db8::7 2001:db8::1 50012 990\r\n";
        match parse(six) {
            Ok(Parsed::Header {
                len,
                addresses: Some(a),
            }) => {
                assert_eq!(len, six.len());
                assert_eq!(a.source, "[2001:db8::7]:50012".parse().unwrap());
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            parse(b"PROXY UNKNOWN whatever\r\n"),
            Ok(Parsed::Header {
                len: 24,
                addresses: None
            })
        );
        assert_eq!(parse(b"PROXY TCP4 1.2"), Ok(Parsed::Incomplete(15)));
        assert_eq!(parse(b"PRO"), Ok(Parsed::Incomplete(V1_MIN)));
        assert_eq!(
            parse(b"PROXY TCP4 192.0.2.7 198.51.10"),
            Ok(Parsed::Incomplete(31))
        );
    }

    #[test]
    fn bad_version_1_lines_are_refused() {
        for bad in [
            &b"PROXY TCP4 192.0.2.7 198.51.100.1 50012\r\n"[..],
            b"PROXY TCP4 192.0.2.700 198.51.100.1 1 2\r\n",
            b"PROXY TCP4 2001:db8::1 198.51.100.1 1 2\r\n",
            b"PROXY TCP5 192.0.2.7 198.51.100.1 1 2\r\n",
            b"PROXY TCP4 192.0.2.7 198.51.100.1 01 2\r\n",
            b"PROXY TCP4 192.0.2.7 198.51.100.1 +1 2\r\n",
            b"PROXY TCP4 192.0.2.7 198.51.100.1 65536 2\r\n",
            b"PROXY TCP4  192.0.2.7 198.51.100.1 1 2\r\n",
        ] {
            assert_eq!(
                parse(bad),
                Err(ProxyError::MalformedV1),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let endless = [b"PROXY TCP4 ".as_slice(), &[b'1'; 120]].concat();
        assert_eq!(parse(&endless), Err(ProxyError::MalformedV1));
        assert_eq!(parse(b"USER alice\r\n"), Err(ProxyError::Missing));
        assert_eq!(parse(b"\x16\x03\x01"), Err(ProxyError::Missing));
    }

    #[test]
    fn version_2_headers_give_their_addresses_and_skip_tlvs() {
        let mut body = vec![192, 0, 2, 7, 198, 51, 100, 1];
        body.extend_from_slice(&50012u16.to_be_bytes());
        body.extend_from_slice(&21u16.to_be_bytes());
        body.extend_from_slice(&[0x04, 0x00, 0x01, 0xff]); // a NOOP TLV
        let mut header = v2(1, 0x11, &body);
        let len = header.len();
        header.extend_from_slice(b"\x16\x03\x01 the ClientHello");
        assert_eq!(
            parse(&header),
            Ok(Parsed::Header {
                len,
                addresses: Some(ProxiedAddresses {
                    source: "192.0.2.7:50012".parse().unwrap(),
                    destination: "198.51.100.1:21".parse().unwrap(),
                }),
            })
        );
        let mut six = vec![0u8; 36];
        six[0] = 0x20;
        six[1] = 0x01;
        six[15] = 7;
        six[32..34].copy_from_slice(&443u16.to_be_bytes());
        match parse(&v2(1, 0x21, &six)) {
            Ok(Parsed::Header {
                addresses: Some(a), ..
            }) => assert_eq!(a.source, "[2001::7]:443".parse().unwrap()),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            parse(&v2(0, 0x00, &[])),
            Ok(Parsed::Header {
                len: 16,
                addresses: None
            })
        );
        assert_eq!(parse(&header[..10]), Ok(Parsed::Incomplete(16)));
        assert_eq!(parse(&header[..20]), Ok(Parsed::Incomplete(len)));
    }

    #[test]
    fn bad_version_2_headers_are_refused() {
        assert_eq!(
            parse(&v2(1, 0x11, &[1, 2, 3])),
            Err(ProxyError::MalformedV2)
        );
        assert_eq!(parse(&v2(1, 0x21, &[0; 12])), Err(ProxyError::MalformedV2));
        assert_eq!(parse(&v2(1, 0x31, &[0; 216])), Err(ProxyError::MalformedV2));
        assert_eq!(parse(&v2(2, 0x11, &[0; 12])), Err(ProxyError::MalformedV2));
        let mut wrong_version = v2(1, 0x11, &[0; 12]);
        wrong_version[12] = 0x11;
        assert_eq!(parse(&wrong_version), Err(ProxyError::MalformedV2));
        let mut huge = V2_SIGNATURE.to_vec();
        huge.extend_from_slice(&[0x21, 0x11, 0xff, 0xff]);
        assert_eq!(parse(&huge), Err(ProxyError::TooLong));
    }

    #[test]
    fn no_input_panics() {
        // Every prefix of every kind of header, and random bytes after the signatures.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 64) as usize;
            let mut bytes: Vec<u8> = if seed & 1 == 0 {
                V2_SIGNATURE.to_vec()
            } else {
                b"PROXY ".to_vec()
            };
            let mut x = seed;
            for _ in 0..len {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                bytes.push((x >> 56) as u8);
            }
            let _ = parse(&bytes);
        }
    }
}
