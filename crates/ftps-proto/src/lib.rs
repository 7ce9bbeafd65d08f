//! # ftps-proto
//!
//! The FTP and FTPS protocol as pure data: parsing and formatting commands, formatting and
//! decoding replies, splitting the control stream into lines, the address codecs of `PORT`,
//! `EPRT`, `PASV` and `EPSV`, directory listings, and `TYPE A` line-ending conversion.
//!
//! Nothing here does I/O, so every function can be unit-, property- and fuzz-tested, and the
//! same code serves the server (`ftps-server`) and the client (`ftps-client`). It is
//! symmetric: every command the client sends is formatted here ([`command::format`]) and
//! every reply it acts on is read here: 257 paths ([`reply::unquote_path`]), 227 and 229
//! addresses ([`address`]), SIZE and MDTM ([`status`]), HASH ([`hash::parse_hash_reply`]),
//! MLST facts ([`listing_parse::parse_mlst_reply`]) and FEAT ([`feat`]).
//!
//! References: RFC 959 (FTP), RFC 2228 and RFC 4217 (security extensions, FTP over TLS),
//! RFC 2389 (FEAT/OPTS), RFC 2428 (IPv6, EPRT/EPSV), RFC 2640 (UTF-8), RFC 3659 (MLST,
//! SIZE, MDTM, REST STREAM), RFC 7151 (HOST), draft-bryan-ftpext-hash (HASH).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod address;
pub mod ascii;
pub mod command;
pub mod feat;
pub mod fingerprint;
pub mod hash;
pub mod line;
pub mod listing;
pub mod listing_parse;
pub mod proxy;
pub mod reply;
pub mod status;

pub use command::{Command, ParseError};
pub use reply::{Reply, ReplyCode};
