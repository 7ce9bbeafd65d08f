//! Data-connection addresses: `PORT` and the `227` reply (RFC 959 §4.1.2, §4.2), `EPRT` and
//! the `229` reply (RFC 2428).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4};

/// Why an address argument or reply could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AddressError {
    /// The text is not of the form the command requires.
    Syntax,
    /// `EPRT` named a network protocol other than 1 (IPv4) or 2 (IPv6).
    UnsupportedProtocol,
}

impl fmt::Display for AddressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddressError::Syntax => f.write_str("malformed address"),
            AddressError::UnsupportedProtocol => f.write_str("unsupported network protocol"),
        }
    }
}

impl std::error::Error for AddressError {}

/// Parses the six comma-separated numbers `h1,h2,h3,h4,p1,p2` of `PORT` or a 227 reply.
pub fn parse_host_port(text: &str) -> Result<SocketAddrV4, AddressError> {
    let mut numbers = [0u8; 6];
    let mut parts = text.trim().split(',');
    for slot in numbers.iter_mut() {
        let part = parts.next().ok_or(AddressError::Syntax)?.trim();
        if part.is_empty() || part.len() > 3 || !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AddressError::Syntax);
        }
        *slot = part.parse().map_err(|_| AddressError::Syntax)?;
    }
    if parts.next().is_some() {
        return Err(AddressError::Syntax);
    }
    let [a, b, c, d, p1, p2] = numbers;
    Ok(SocketAddrV4::new(
        Ipv4Addr::new(a, b, c, d),
        u16::from_be_bytes([p1, p2]),
    ))
}

/// Formats `h1,h2,h3,h4,p1,p2`.
pub fn format_host_port(addr: SocketAddrV4) -> String {
    let [a, b, c, d] = addr.ip().octets();
    let [p1, p2] = addr.port().to_be_bytes();
    format!("{a},{b},{c},{d},{p1},{p2}")
}

/// The text of a `227` reply.
pub fn format_pasv_reply(addr: SocketAddrV4) -> String {
    format!("Entering Passive Mode ({})", format_host_port(addr))
}

/// Finds the address in a `227` reply's text. Servers differ in the punctuation around the
/// numbers, so this takes the first run of six comma-separated numbers.
pub fn parse_pasv_reply(text: &str) -> Result<SocketAddrV4, AddressError> {
    let start = text
        .find(|c: char| c.is_ascii_digit())
        .ok_or(AddressError::Syntax)?;
    let rest = &text[start..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == ','))
        .unwrap_or(rest.len());
    parse_host_port(&rest[..end])
}

/// Parses an `EPRT` argument `<d><proto><d><addr><d><port><d>` (RFC 2428 §2).
pub fn parse_eprt(text: &str) -> Result<SocketAddr, AddressError> {
    let text = text.trim();
    let delim = text.chars().next().ok_or(AddressError::Syntax)?;
    // RFC 2428: the delimiter is any printable ASCII character (33-126) other than digits.
    if !(('!'..='~').contains(&delim)) || delim.is_ascii_digit() {
        return Err(AddressError::Syntax);
    }
    let fields: Vec<&str> = text[1..].split(delim).collect();
    if fields.len() != 4 || !fields[3].is_empty() {
        return Err(AddressError::Syntax);
    }
    let port = parse_port(fields[2])?;
    let ip: IpAddr = match fields[0] {
        "1" => IpAddr::V4(
            fields[1]
                .parse::<Ipv4Addr>()
                .map_err(|_| AddressError::Syntax)?,
        ),
        "2" => IpAddr::V6(
            fields[1]
                .parse::<Ipv6Addr>()
                .map_err(|_| AddressError::Syntax)?,
        ),
        p if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            return Err(AddressError::UnsupportedProtocol)
        }
        _ => return Err(AddressError::Syntax),
    };
    Ok(SocketAddr::new(ip, port))
}

/// Formats an `EPRT` argument with `|` as delimiter.
pub fn format_eprt(addr: SocketAddr) -> String {
    let proto = if addr.is_ipv4() { 1 } else { 2 };
    format!("|{proto}|{}|{}|", addr.ip(), addr.port())
}

/// The text of a `229` reply.
pub fn format_epsv_reply(port: u16) -> String {
    format!("Entering Extended Passive Mode (|||{port}|)")
}

/// Finds the port in a `229` reply's text: `(<d><d><d><port><d>)`.
pub fn parse_epsv_reply(text: &str) -> Result<u16, AddressError> {
    let open = text.find('(').ok_or(AddressError::Syntax)?;
    let close = text[open..].find(')').ok_or(AddressError::Syntax)? + open;
    let inner = &text[open + 1..close];
    let mut chars = inner.chars();
    let delim = chars.next().ok_or(AddressError::Syntax)?;
    let fields: Vec<&str> = inner[delim.len_utf8()..].split(delim).collect();
    if fields.len() != 4 || !fields[0].is_empty() || !fields[1].is_empty() || !fields[3].is_empty()
    {
        return Err(AddressError::Syntax);
    }
    parse_port(fields[2])
}

fn parse_port(text: &str) -> Result<u16, AddressError> {
    if text.is_empty() || text.len() > 5 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AddressError::Syntax);
    }
    match text.parse::<u16>() {
        Ok(0) | Err(_) => Err(AddressError::Syntax),
        Ok(port) => Ok(port),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn port_and_pasv() {
        let a = parse_host_port("127,0,0,1,4,1").unwrap();
        assert_eq!(a, "127.0.0.1:1025".parse().unwrap());
        assert_eq!(format_host_port(a), "127,0,0,1,4,1");
        assert!(parse_host_port("127,0,0,1,4").is_err());
        assert!(parse_host_port("127,0,0,1,4,1,1").is_err());
        assert!(parse_host_port("256,0,0,1,4,1").is_err());
        assert!(parse_host_port("1,2,3,4,-1,5").is_err());
        assert_eq!(
            parse_pasv_reply("Entering Passive Mode (10,0,0,2,195,80).").unwrap(),
            "10.0.0.2:50000".parse().unwrap()
        );
        assert_eq!(
            parse_pasv_reply("=10,0,0,2,195,80").unwrap(),
            "10.0.0.2:50000".parse().unwrap()
        );
    }

    #[test]
    fn eprt_and_epsv() {
        assert_eq!(
            parse_eprt("|1|132.235.1.2|6275|").unwrap(),
            "132.235.1.2:6275".parse().unwrap()
        );
        assert_eq!(
            parse_eprt("|2|1080::8:800:200C:417A|5282|").unwrap(),
            "[1080::8:800:200C:417A]:5282".parse().unwrap()
        );
        assert_eq!(
            parse_eprt("!1!1.2.3.4!80!").unwrap(),
            "1.2.3.4:80".parse().unwrap()
        );
        assert_eq!(
            parse_eprt("|3|x|5|"),
            Err(AddressError::UnsupportedProtocol)
        );
        assert_eq!(parse_eprt("|1|::1|5|"), Err(AddressError::Syntax));
        assert_eq!(parse_eprt("|1|1.2.3.4|0|"), Err(AddressError::Syntax));
        assert_eq!(parse_eprt("|1|1.2.3.4|5"), Err(AddressError::Syntax));
        assert_eq!(parse_eprt("1|1|1.2.3.4|5|"), Err(AddressError::Syntax));
        assert_eq!(
            parse_epsv_reply("Entering Extended Passive Mode (|||6446|)"),
            Ok(6446)
        );
        assert!(parse_epsv_reply("(|||0|)").is_err());
        assert!(parse_epsv_reply("(||1.2.3.4|5|)").is_err());
    }

    proptest! {
        #[test]
        fn host_port_round_trip(ip in any::<u32>(), port in any::<u16>()) {
            let a = SocketAddrV4::new(Ipv4Addr::from(ip), port);
            prop_assert_eq!(parse_host_port(&format_host_port(a)), Ok(a));
            prop_assert_eq!(parse_pasv_reply(&format_pasv_reply(a)), Ok(a));
        }

        #[test]
        fn eprt_round_trip(v6 in any::<bool>(), ip4 in any::<u32>(), ip6 in any::<u128>(), port in 1u16..) {
            let ip = if v6 { IpAddr::V6(Ipv6Addr::from(ip6)) } else { IpAddr::V4(Ipv4Addr::from(ip4)) };
            let a = SocketAddr::new(ip, port);
            prop_assert_eq!(parse_eprt(&format_eprt(a)), Ok(a));
            prop_assert_eq!(parse_epsv_reply(&format_epsv_reply(port)), Ok(port));
        }

        #[test]
        fn parsers_never_panic(s in "\\PC{0,60}") {
            let _ = parse_host_port(&s);
            let _ = parse_pasv_reply(&s);
            let _ = parse_eprt(&s);
            let _ = parse_epsv_reply(&s);
        }
    }
}
