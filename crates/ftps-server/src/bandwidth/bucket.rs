//! The token bucket, and the set of buckets one transfer is charged to ([`Throttle`]).
//!
//! A bucket keeps one instant, the time at which every byte charged so far would have gone
//! out at exactly its rate (the "theoretical arrival time" of the generic cell rate
//! algorithm). Charging `n` bytes moves it `n / rate` later; the caller then waits until it
//! is at most [`BURST`] ahead of the clock. So at any instant a transfer has moved at most
//! `rate × (elapsed + BURST)` bytes plus the step it just moved, a thread that ran late
//! catches up by at most [`BURST`], and a late wake-up never adds up: each wait is measured
//! against that one instant, not against the last wake-up.
//!
//! Bytes are charged after they moved (a transfer does not know how much the next read
//! brings), one step at a time ([`Throttle::step`]: about 10 ms at the lowest rate), so a
//! transfer is never more than a step plus [`BURST`] ahead of its rate: at 16 MiB/s that is
//! 0.2 MiB and 0.64 MiB, about 1.3 % of a 64 MiB transfer.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::Rate;

/// How far ahead of its rate a bucket lets transfers get: what a pause (a client that was
/// slow for a moment, a thread that woke late) may be made up with.
pub const BURST: Duration = Duration::from_millis(40);
/// A throttled transfer moves about this much time's worth of bytes between two charges.
const STEP_TIME: Duration = Duration::from_millis(10);
/// The least a throttled transfer moves between two charges: below this, the system calls
/// would cost more than the bytes.
const MIN_STEP: usize = 4 * 1024;
/// The most a throttled transfer moves between two charges.
const MAX_STEP: usize = 1024 * 1024;

const NANOS_PER_SECOND: u128 = 1_000_000_000;

/// A token bucket that one transfer, one user's transfers or the whole server's are
/// charged to.
pub struct Bucket {
    /// Zero of the bucket's clock.
    epoch: Instant,
    state: Mutex<State>,
}

/// A bucket's rate and its theoretical arrival time, in nanoseconds of its clock.
#[derive(Clone, Copy, Debug)]
struct State {
    rate: u64,
    tat: u64,
}

impl State {
    /// Charges `bytes` at `now`; returns how long to wait, in nanoseconds.
    fn charge(&mut self, bytes: u64, now: u64) -> u64 {
        let cost = u128::from(bytes) * NANOS_PER_SECOND / u128::from(self.rate.max(1));
        let cost = u64::try_from(cost).unwrap_or(u64::MAX);
        // An idle bucket starts from now: what it did not use is not saved up beyond BURST.
        self.tat = self.tat.max(now).saturating_add(cost);
        (self.tat - now).saturating_sub(nanos(BURST))
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Bucket {
    /// A bucket of `rate`, with its whole burst available.
    pub fn new(rate: Rate) -> Bucket {
        Bucket {
            epoch: Instant::now(),
            state: Mutex::new(State {
                rate: rate.bytes_per_second(),
                tat: 0,
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Two integers, consistent after any panic.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The bucket's rate.
    pub fn rate(&self) -> Rate {
        Rate::new(self.state().rate).unwrap_or(Rate::MIN)
    }

    /// Changes the rate (the users file was reloaded) for the bytes charged from now on.
    pub fn set_rate(&self, rate: Rate) {
        self.state().rate = rate.bytes_per_second();
    }

    /// Charges `bytes` that just moved; returns how long to wait before moving more.
    pub fn charge(&self, bytes: u64) -> Duration {
        let mut state = self.state();
        let now = nanos(self.epoch.elapsed());
        Duration::from_nanos(state.charge(bytes, now))
    }
}

/// The buckets one transfer is charged to, the narrowest first (the session's, the user's,
/// the server's). Exists only when at least one limit applies: an unlimited transfer has
/// no `Throttle` at all, and so costs nothing per chunk.
pub struct Throttle {
    buckets: Vec<Arc<Bucket>>,
    step: usize,
}

impl Throttle {
    /// A throttle charging `buckets` (narrowest first); `None` when there are none.
    pub fn new(buckets: Vec<Arc<Bucket>>) -> Option<Throttle> {
        let slowest = buckets.iter().map(|b| b.rate()).min()?;
        let step = u128::from(slowest.bytes_per_second()) * STEP_TIME.as_nanos() / NANOS_PER_SECOND;
        let step = usize::try_from(step)
            .unwrap_or(MAX_STEP)
            .clamp(MIN_STEP, MAX_STEP);
        Some(Throttle { buckets, step })
    }

    /// The buckets charged, narrowest first.
    #[cfg(test)]
    pub(super) fn buckets(&self) -> &[Arc<Bucket>] {
        &self.buckets
    }

    /// The most bytes to move before the next [`charge`](Self::charge).
    pub fn step(&self) -> usize {
        self.step
    }

    /// Charges `bytes` that just moved to every bucket, waiting with `wait` as long as each
    /// requires before charging the next (so that a wider bucket is charged when the bytes
    /// may really go). `wait` returns false when the transfer was stopped meanwhile; so
    /// does this.
    pub fn charge(&self, bytes: usize, mut wait: impl FnMut(Duration) -> bool) -> bool {
        let bytes = u64::try_from(bytes).unwrap_or(u64::MAX);
        for bucket in &self.buckets {
            let delay = bucket.charge(bytes);
            if !delay.is_zero() && !wait(delay) {
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;
    const SECOND: u64 = 1_000_000_000;

    fn state(rate: u64) -> State {
        State { rate, tat: 0 }
    }

    /// Moves `total` bytes in steps of `step` through `state` on a simulated clock that
    /// starts at `start` and advances by the wait after each step plus `work` (the time a
    /// step takes); returns the clock at the end.
    fn transfer(state: &mut State, start: u64, total: u64, step: u64, work: u64) -> u64 {
        let mut now = start;
        let mut moved = 0;
        while moved < total {
            let n = step.min(total - moved);
            now += work;
            moved += n;
            now += state.charge(n, now);
        }
        now
    }

    #[test]
    fn the_wait_is_the_cost_of_the_bytes_beyond_the_burst() {
        // 1 MiB at 1 MiB/s costs one second, of which the burst is free.
        let mut s = state(MIB);
        let wait = s.charge(MIB, 5 * SECOND);
        assert_eq!(wait, SECOND - nanos(BURST));
        // The next 512 KiB at once: half a second more.
        assert_eq!(
            s.charge(MIB / 2, 5 * SECOND),
            SECOND + SECOND / 2 - nanos(BURST)
        );
        // Arithmetic does not overflow at extreme values.
        let mut s = state(1);
        assert_eq!(s.charge(u64::MAX, 0), u64::MAX - nanos(BURST));
        let mut s = state(u64::MAX);
        assert_eq!(s.charge(1, 0), 0);
    }

    #[test]
    fn an_idle_bucket_allows_one_burst_and_no_more() {
        let rate = 16 * MIB;
        let burst_bytes = rate * nanos(BURST) / SECOND;
        let mut s = state(rate);
        // Idle for ten seconds: only BURST worth is free, not ten seconds' worth.
        let now = 10 * SECOND;
        assert_eq!(s.charge(burst_bytes, now), 0);
        let wait = s.charge(rate / 10, now);
        assert!(
            wait.abs_diff(SECOND / 10) < 1_000,
            "a tenth of a second's bytes past the burst waits a tenth of a second: {wait}"
        );
    }

    #[test]
    fn a_64_mib_transfer_holds_the_rate_within_5_percent() {
        let rate = 16 * MIB;
        let total = 64 * MIB;
        let ideal = total * SECOND / rate;
        // Steps of 64 KiB taking 50 µs each, from a fresh bucket: nowhere near 5 % early.
        let mut s = state(rate);
        let end = transfer(&mut s, SECOND, total, 64 * 1024, 50_000);
        let elapsed = end - SECOND;
        assert!(
            elapsed <= ideal,
            "slower than the rate: {elapsed} > {ideal}"
        );
        assert!(
            elapsed >= ideal - ideal / 40,
            "more than 2.5 % early: {elapsed} < {ideal}"
        );
        // A thread that wakes up to 2 ms late each time still holds the rate: lateness does
        // not add up.
        let mut s = state(rate);
        let mut now = SECOND;
        let mut moved = 0;
        let mut late = 0;
        while moved < total {
            moved += 64 * 1024;
            now += 20_000 + s.charge(64 * 1024, now) + late;
            late = (late + 700_000) % 2_000_000;
        }
        let elapsed = now - SECOND;
        assert!(
            elapsed.abs_diff(ideal) < ideal / 40,
            "late wake-ups: {elapsed} against {ideal}"
        );
    }

    #[test]
    fn sessions_sharing_a_bucket_share_its_rate() {
        // Two transfers charging one bucket in turn move twice the bytes in the time one
        // would need at the whole rate for all of them.
        let rate = 16 * MIB;
        let mut s = state(rate);
        let mut clocks = [SECOND, SECOND];
        let mut moved = [0u64; 2];
        while moved.iter().sum::<u64>() < 64 * MIB {
            let i = if clocks[0] <= clocks[1] { 0 } else { 1 };
            let now = clocks[i] + 30_000;
            moved[i] += 64 * 1024;
            clocks[i] = now + s.charge(64 * 1024, now);
        }
        let elapsed = clocks[0].max(clocks[1]) - SECOND;
        let ideal = 64 * MIB * SECOND / rate;
        assert!(
            elapsed.abs_diff(ideal) < ideal / 40,
            "{elapsed} against {ideal}"
        );
        assert!(
            moved[0].abs_diff(moved[1]) <= 2 * 64 * 1024,
            "unfair: {moved:?}"
        );
    }

    #[test]
    fn a_rate_change_applies_to_the_next_bytes() {
        let bucket = Bucket::new(Rate::new(MIB).unwrap());
        bucket.set_rate(Rate::new(2 * MIB).unwrap());
        assert_eq!(bucket.rate(), Rate::new(2 * MIB).unwrap());
        let wait = bucket.charge(2 * MIB);
        assert!(wait <= Duration::from_secs(1) && wait > Duration::from_millis(900));
    }

    #[test]
    fn the_step_follows_the_slowest_bucket() {
        let bucket = |rate| Arc::new(Bucket::new(Rate::new(rate).unwrap()));
        assert!(Throttle::new(Vec::new()).is_none());
        let t = Throttle::new(vec![bucket(100 * MIB), bucket(16 * MIB)]).unwrap();
        assert_eq!(t.step(), (16 * MIB / 100) as usize);
        assert_eq!(Throttle::new(vec![bucket(1)]).unwrap().step(), MIN_STEP);
        assert_eq!(
            Throttle::new(vec![bucket(u64::MAX / 2)]).unwrap().step(),
            MAX_STEP
        );
    }

    #[test]
    fn charging_waits_for_each_bucket_and_stops_when_told() {
        let slow = Arc::new(Bucket::new(Rate::new(MIB).unwrap()));
        let fast = Arc::new(Bucket::new(Rate::new(1024 * MIB).unwrap()));
        let t = Throttle::new(vec![slow, fast]).unwrap();
        let mut waits = Vec::new();
        assert!(t.charge(MIB as usize, |d| {
            waits.push(d);
            true
        }));
        // The slow bucket asks for about a second; the fast one for nothing (its burst).
        assert_eq!(waits.len(), 1, "{waits:?}");
        assert!(waits[0] > Duration::from_millis(900));
        assert!(!t.charge(MIB as usize, |_| false), "a stopped wait stops");
    }
}
