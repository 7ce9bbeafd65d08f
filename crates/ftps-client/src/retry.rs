//! Retrying what failed for a passing reason: a lost connection, a timeout, a 4xx reply
//! (RFC 959 §4.2: "transient negative completion"), with exponential backoff and jitter.
//! 5xx replies, refused certificates, bad logins and local errors are never retried.

use std::future::Future;
use std::time::Duration;

use rand::Rng;

use crate::error::{Error, ErrorKind, Result};

/// How often and how patiently to retry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0: no retry).
    pub retries: u32,
    /// The wait before the first retry; it doubles with each retry.
    pub initial_delay: Duration,
    /// The longest wait between two attempts.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// No retries.
    fn default() -> Self {
        RetryPolicy {
            retries: 0,
            initial_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// Up to `retries` retries, from 1 s doubling to at most 30 s.
    pub fn with_retries(retries: u32) -> RetryPolicy {
        RetryPolicy {
            retries,
            ..RetryPolicy::default()
        }
    }

    /// The wait before retry number `retry` (1 for the first): `initial_delay * 2^(retry-1)`,
    /// capped at `max_delay`, then a random amount between half of it and all of it, so that
    /// many clients cut off at once do not all come back at the same moment.
    pub fn delay(&self, retry: u32) -> Duration {
        let exp = retry.saturating_sub(1).min(20);
        let full = self
            .initial_delay
            .saturating_mul(1u32 << exp)
            .min(self.max_delay);
        let factor = rand::thread_rng().gen_range(0.5..=1.0);
        full.mul_f64(factor)
    }

    /// Runs `attempt` (given the attempt number, 0 first) until it succeeds, fails with an
    /// error that is not [`is_transient`], or the retries are used up; waits [`Self::delay`]
    /// between attempts. `on_retry` hears of each failure that will be retried.
    pub async fn run<T, F, Fut>(
        &self,
        mut attempt: F,
        mut on_retry: impl FnMut(u32, &Error, Duration),
    ) -> Result<T>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut n = 0;
        loop {
            match attempt(n).await {
                Ok(v) => return Ok(v),
                Err(e) if n < self.retries && is_transient(&e) => {
                    n += 1;
                    let wait = self.delay(n);
                    on_retry(n, &e, wait);
                    tokio::time::sleep(wait).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Whether trying again may succeed: connection loss, timeouts, TLS failures of the
/// connection itself (not a refused certificate), and 4xx replies (421 too many
/// connections, 425 no data connection, 426 aborted, 450 busy, 451 local error...).
pub fn is_transient(e: &Error) -> bool {
    match e {
        Error::Connect { .. } | Error::Timeout(_) | Error::Closed | Error::Poisoned => true,
        Error::Tls { .. } => true,
        Error::Reply { reply, .. } => (400..500).contains(&reply.code.0),
        Error::CertificateRejected { .. }
        | Error::Protocol(_)
        | Error::Io { .. }
        | Error::Config(_) => false,
    }
}

/// Whether the error leaves the session unusable, so that a retry needs a new one.
pub fn needs_new_session(e: &Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::Connect | ErrorKind::Tls | ErrorKind::Transfer
    ) || matches!(e, Error::Protocol(_))
        || e.code().is_some_and(|c| c.0 == 421)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ftps_proto::{Command, Reply, ReplyCode};

    fn reply(code: u16) -> Error {
        Error::Reply {
            command: (&Command::Retr("x".into())).into(),
            reply: Reply::new(ReplyCode(code), "x"),
        }
    }

    #[test]
    fn transient() {
        assert!(is_transient(&reply(421)));
        assert!(is_transient(&reply(450)));
        assert!(is_transient(&reply(426)));
        assert!(!is_transient(&reply(550)));
        assert!(!is_transient(&reply(530)));
        assert!(is_transient(&Error::Closed));
        assert!(!is_transient(&Error::Config("x".into())));
        assert!(!is_transient(&Error::io("x", std::io::Error::other("y"))));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy {
            retries: 10,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        };
        for _ in 0..50 {
            let d1 = p.delay(1);
            assert!(d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100));
            let d3 = p.delay(3);
            assert!(d3 >= Duration::from_millis(200) && d3 <= Duration::from_millis(400));
            assert!(p.delay(30) <= Duration::from_secs(1));
        }
    }

    #[tokio::test]
    async fn stops_on_permanent_errors() {
        let p = RetryPolicy {
            retries: 3,
            initial_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
        };
        let mut calls = 0;
        let r: Result<()> = p
            .run(
                |_| {
                    calls += 1;
                    async { Err(reply(550)) }
                },
                |_, _, _| {},
            )
            .await;
        assert!(r.is_err());
        assert_eq!(calls, 1);
        let mut calls = 0;
        let r: Result<u32> = p
            .run(
                |n| {
                    calls += 1;
                    async move {
                        if n < 2 {
                            Err(Error::Closed)
                        } else {
                            Ok(n)
                        }
                    }
                },
                |_, _, _| {},
            )
            .await;
        assert_eq!(r.unwrap(), 2);
        assert_eq!(calls, 3);
    }
}
