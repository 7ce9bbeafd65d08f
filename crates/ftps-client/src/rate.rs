//! Bandwidth limits: a token bucket shared by every transfer that holds a clone of the same
//! [`RateLimit`] (so a limit in [`Config`](crate::Config) caps all sessions made from it
//! together: the segments of one download, the parallel transfers of a mirror).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// A limit in bytes per second; clones share one budget.
#[derive(Clone, Debug)]
pub struct RateLimit {
    bytes_per_sec: u64,
    bucket: Arc<Mutex<Bucket>>,
}

#[derive(Debug)]
struct Bucket {
    /// Bytes that may go now; negative when a chunk was larger than what was there.
    tokens: f64,
    last: Instant,
}

/// How much may go in one burst: a quarter second's worth, at least one TLS record.
fn burst(rate: u64) -> f64 {
    (rate as f64 / 4.0).max(16_384.0)
}

impl RateLimit {
    /// A limit of `bytes_per_sec` (at least 1).
    pub fn new(bytes_per_sec: u64) -> RateLimit {
        let rate = bytes_per_sec.max(1);
        RateLimit {
            bytes_per_sec: rate,
            bucket: Arc::new(Mutex::new(Bucket {
                tokens: burst(rate),
                last: Instant::now(),
            })),
        }
    }

    /// Parses a rate: a number of bytes per second with an optional binary suffix, `K`
    /// (1024), `M` (1024²) or `G` (1024³), upper or lower case, optionally followed by `B`
    /// or `/s`: `512K`, `10M`, `1.5M`, `100000`.
    pub fn parse(text: &str) -> Result<RateLimit> {
        parse_size(text).map(RateLimit::new)
    }

    /// The limit in bytes per second.
    pub fn bytes_per_sec(&self) -> u64 {
        self.bytes_per_sec
    }

    /// The largest read or write worth doing at once under this limit.
    pub fn chunk(&self) -> usize {
        burst(self.bytes_per_sec) as usize
    }

    /// Accounts for `n` bytes just moved and waits as long as the budget needs.
    pub async fn consume(&self, n: usize) {
        let wait = self.reserve(n);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// Takes `n` bytes from the budget and returns how long to wait before going on.
    fn reserve(&self, n: usize) -> Duration {
        {
            let mut b = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let rate = self.bytes_per_sec as f64;
            let refill = now.duration_since(b.last).as_secs_f64() * rate;
            b.tokens = (b.tokens + refill).min(burst(self.bytes_per_sec));
            b.last = now;
            b.tokens -= n as f64;
            if b.tokens < 0.0 {
                Duration::from_secs_f64(-b.tokens / rate)
            } else {
                Duration::ZERO
            }
        }
    }
}

/// Parses a byte count with an optional binary suffix (see [`RateLimit::parse`]).
pub fn parse_size(text: &str) -> Result<u64> {
    let bad = || {
        Error::Config(format!(
            "{text:?} is not a rate: write bytes per second, like 512K, 10M or 1.5M"
        ))
    };
    let t = text.trim();
    let t = t.strip_suffix("/s").unwrap_or(t);
    let t = t
        .strip_suffix('B')
        .or_else(|| t.strip_suffix('b'))
        .unwrap_or(t);
    let (number, unit) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&t[..i], c.to_ascii_uppercase()),
        _ => (t, ' '),
    };
    let multiplier: f64 = match unit {
        ' ' => 1.0,
        'K' => 1024.0,
        'M' => 1024.0 * 1024.0,
        'G' => 1024.0 * 1024.0 * 1024.0,
        _ => return Err(bad()),
    };
    if number.is_empty() || !number.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(bad());
    }
    let value: f64 = number.parse().map_err(|_| bad())?;
    let bytes = value * multiplier;
    if !bytes.is_finite() || bytes < 1.0 || bytes > u64::MAX as f64 {
        return Err(bad());
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("100000").unwrap(), 100_000);
        assert_eq!(parse_size("512K").unwrap(), 512 * 1024);
        assert_eq!(parse_size("512k").unwrap(), 512 * 1024);
        assert_eq!(parse_size("10M").unwrap(), 10 * 1024 * 1024);
        assert_eq!(parse_size("10MB").unwrap(), 10 * 1024 * 1024);
        assert_eq!(parse_size("10M/s").unwrap(), 10 * 1024 * 1024);
        assert_eq!(parse_size("1.5M").unwrap(), 1024 * 1024 * 3 / 2);
        assert_eq!(parse_size("2G").unwrap(), 2 << 30);
        for bad in ["", "M", "10X", "-1M", "0", "1e9", "ten", "1..5M", "0.1"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn budget() {
        let limit = RateLimit::new(1024 * 1024);
        // The first burst (a quarter second's worth) goes at once, then 1 MiB more owes 1 s.
        assert_eq!(limit.reserve(256 * 1024), Duration::ZERO);
        let owed = limit.reserve(1024 * 1024);
        assert!(
            owed >= Duration::from_millis(990) && owed <= Duration::from_secs(1),
            "{owed:?}"
        );
        // Clones share the budget.
        assert!(limit.clone().reserve(1) > Duration::ZERO);
    }
}
