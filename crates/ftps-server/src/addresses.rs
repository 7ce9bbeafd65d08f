//! Address rules: which client addresses may connect to the server (`[addresses]`) and
//! which may log in as a user (`[users.NAME.addresses]`).
//!
//! Each table has an `allow` and a `deny` list of IPv4 or IPv6 addresses and CIDR networks.
//! A deny rule that matches always refuses; otherwise a non-empty allow list admits only the
//! addresses it matches, and empty lists admit everyone. An IPv4-mapped IPv6 address
//! (`::ffff:192.0.2.7`, as a dual-stack listener sees IPv4 clients) is matched as the IPv4
//! address it carries, and a mapped network in a rule is read as its IPv4 network.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::{IpNet, Ipv4Net};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Allow and deny lists of client addresses.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddressRules {
    /// When not empty, only addresses matching one of these are admitted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<AddressRule>,
    /// Addresses matching one of these are refused, whatever `allow` says.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<AddressRule>,
}

impl AddressRules {
    /// Whether no rule is set (the users file then leaves the table out).
    pub fn is_empty(&self) -> bool {
        *self == AddressRules::default()
    }

    /// Whether `ip` is admitted; `Err` names the rule that refuses it, for the log.
    pub fn check(&self, ip: IpAddr) -> Result<(), Refused> {
        let ip = canonical(ip);
        if let Some(rule) = self.deny.iter().find(|r| r.matches(ip)) {
            return Err(Refused::Denied(*rule));
        }
        if !self.allow.is_empty() && !self.allow.iter().any(|r| r.matches(ip)) {
            return Err(Refused::NotAllowed);
        }
        Ok(())
    }
}

/// Why [`AddressRules::check`] refused an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// This deny rule matches.
    Denied(AddressRule),
    /// The allow list is not empty and no rule of it matches.
    NotAllowed,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::Denied(rule) => write!(f, "deny {rule}"),
            Refused::NotAllowed => f.write_str("not in the allow list"),
        }
    }
}

/// One address or CIDR network of an allow or deny list: `192.0.2.7`, `192.0.2.0/24`,
/// `2001:db8::/32`, `::1`. Written in the files as a string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddressRule(IpNet);

impl AddressRule {
    /// Whether `ip` (already without IPv4 mapping) is in this network.
    fn matches(&self, ip: IpAddr) -> bool {
        self.0.contains(&ip)
    }

    /// Whether `ip` (an IPv4-mapped address counting as its IPv4 address) is in this
    /// network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.matches(canonical(ip))
    }
}

/// The IPv4 address inside an IPv4-mapped IPv6 address; any other address as it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The IPv4 network an IPv4-mapped IPv6 network (`::ffff:a.b.c.d/96` and longer) stands
/// for; any other network as it is.
fn canonical_net(net: IpNet) -> IpNet {
    if let IpNet::V6(v6) = net {
        if let (Some(v4), Some(len)) = (v6.addr().to_ipv4_mapped(), v6.prefix_len().checked_sub(96))
        {
            if let Ok(v4net) = Ipv4Net::new(v4, len) {
                return IpNet::V4(v4net);
            }
        }
    }
    net
}

/// What an invalid rule was, for the error naming it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// Neither an address nor a network.
    #[error(
        "invalid address rule {0:?}: expected an IP address or a CIDR network such as \
         192.0.2.0/24 or 2001:db8::/32"
    )]
    Invalid(String),
    /// A network whose address has bits set past its prefix (`10.0.0.1/8`): most likely a
    /// typo, and refusing it is safer than guessing.
    #[error(
        "invalid address rule {given:?}: bits are set past the prefix; did you mean {network}?"
    )]
    HostBits {
        /// The rule as written.
        given: String,
        /// The network it would be with those bits cleared.
        network: String,
    },
}

impl FromStr for AddressRule {
    type Err = RuleError;

    fn from_str(text: &str) -> Result<AddressRule, RuleError> {
        let trimmed = text.trim();
        let net = if trimmed.contains('/') {
            let net: IpNet = trimmed
                .parse()
                .map_err(|_| RuleError::Invalid(text.to_string()))?;
            if net.trunc() != net {
                return Err(RuleError::HostBits {
                    given: text.to_string(),
                    network: net.trunc().to_string(),
                });
            }
            net
        } else {
            let ip: IpAddr = trimmed
                .parse()
                .map_err(|_| RuleError::Invalid(text.to_string()))?;
            IpNet::from(ip)
        };
        Ok(AddressRule(canonical_net(net)))
    }
}

impl fmt::Display for AddressRule {
    /// A single address without its prefix length, a network as `address/length`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.prefix_len() == self.0.max_prefix_len() {
            write!(f, "{}", self.0.addr())
        } else {
            write!(f, "{}", self.0)
        }
    }
}

impl Serialize for AddressRule {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for AddressRule {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(allow: &[&str], deny: &[&str]) -> AddressRules {
        let parse = |list: &[&str]| list.iter().map(|r| r.parse().unwrap()).collect();
        AddressRules {
            allow: parse(allow),
            deny: parse(deny),
        }
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn empty_lists_admit_everyone() {
        let open = AddressRules::default();
        assert!(open.is_empty());
        for a in ["127.0.0.1", "192.0.2.7", "::1", "2001:db8::5"] {
            assert_eq!(open.check(ip(a)), Ok(()), "{a}");
        }
    }

    #[test]
    fn deny_wins_over_allow() {
        let r = rules(&["10.0.0.0/8"], &["10.1.0.0/16", "10.2.3.4"]);
        assert_eq!(r.check(ip("10.0.0.1")), Ok(()));
        assert_eq!(
            r.check(ip("10.1.200.3")),
            Err(Refused::Denied("10.1.0.0/16".parse().unwrap()))
        );
        assert!(r.check(ip("10.2.3.4")).is_err());
        assert_eq!(r.check(ip("10.2.3.5")), Ok(()));
        // Outside the allow list.
        assert_eq!(r.check(ip("192.0.2.1")), Err(Refused::NotAllowed));
        assert_eq!(r.check(ip("::1")), Err(Refused::NotAllowed));
    }

    #[test]
    fn a_deny_list_alone_admits_the_rest() {
        let r = rules(&[], &["192.0.2.0/24", "2001:db8::/32"]);
        assert!(r.check(ip("192.0.2.200")).is_err());
        assert!(r.check(ip("2001:db8:ffff::1")).is_err());
        assert_eq!(r.check(ip("192.0.3.1")), Ok(()));
        assert_eq!(r.check(ip("2001:db9::1")), Ok(()));
    }

    #[test]
    fn ipv4_mapped_peers_and_rules_match_as_ipv4() {
        let r = rules(&["127.0.0.1"], &[]);
        assert_eq!(r.check(ip("::ffff:127.0.0.1")), Ok(()));
        assert_eq!(r.check(ip("::ffff:127.0.0.2")), Err(Refused::NotAllowed));
        let mapped: AddressRule = "::ffff:192.0.2.0/120".parse().unwrap();
        assert_eq!(mapped, "192.0.2.0/24".parse().unwrap());
        let r = rules(&[], &["::ffff:192.0.2.0/120"]);
        assert!(r.check(ip("192.0.2.9")).is_err());
        assert!(r.check(ip("::ffff:192.0.2.9")).is_err());
        // The IPv6 loopback is not 127.0.0.1.
        let r = rules(&["127.0.0.0/8"], &[]);
        assert_eq!(r.check(ip("::1")), Err(Refused::NotAllowed));
    }

    #[test]
    fn rules_parse_and_print_as_written() {
        for (text, shown) in [
            ("192.0.2.7", "192.0.2.7"),
            ("192.0.2.7/32", "192.0.2.7"),
            (" 10.0.0.0/8 ", "10.0.0.0/8"),
            ("0.0.0.0/0", "0.0.0.0/0"),
            ("::1", "::1"),
            ("2001:db8::/32", "2001:db8::/32"),
            ("::/0", "::/0"),
        ] {
            let rule: AddressRule = text.parse().unwrap();
            assert_eq!(rule.to_string(), shown, "{text}");
        }
        for bad in [
            "",
            "localhost",
            "10.0.0.0/33",
            "10.0.0/8",
            "2001:db8::/129",
            "1.2.3.4.5",
            "10.0.0.0/",
        ] {
            let e = bad.parse::<AddressRule>().unwrap_err();
            assert!(e.to_string().contains(&format!("{bad:?}")), "{e}");
        }
        let e = "10.0.0.1/8".parse::<AddressRule>().unwrap_err();
        assert!(e.to_string().contains("did you mean 10.0.0.0/8"), "{e}");
    }

    #[test]
    fn tables_round_trip_and_name_a_bad_entry() {
        let text = "allow = [\"192.0.2.0/24\", \"::1\"]\ndeny = [\"192.0.2.66\"]\n";
        let r: AddressRules = toml::from_str(text).unwrap();
        assert_eq!(r, rules(&["192.0.2.0/24", "::1"], &["192.0.2.66"]));
        assert_eq!(toml::to_string(&r).unwrap(), text);
        let e = toml::from_str::<AddressRules>("allow = [\"192.0.2.0/24\", \"nope\"]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"nope\""), "{e}");
        let e = toml::from_str::<AddressRules>("permit = []\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("permit"), "{e}");
    }
}
