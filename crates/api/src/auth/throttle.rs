//! Failed logins per client address: more than 100 in 15 minutes → 429 for that address
//! (API.md). Per node and in memory: the per-account lockout, which is in the database,
//! is what protects an account across nodes; this protects the nodes from one address.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Sliding-window failure counter per address: an address is refused once it has *more
/// than* `max_failures` failures in the window (the 101st failure is still answered as a
/// failure; the request after it is refused).
pub struct LoginThrottle {
    window: Duration,
    max_failures: usize,
    failures: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        Self::new(Duration::from_secs(15 * 60), 100)
    }
}

impl LoginThrottle {
    /// Refuses an address with more than `max_failures` failures per `window`.
    pub fn new(window: Duration, max_failures: usize) -> Self {
        Self {
            window,
            max_failures,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// `Some(seconds)` to wait if `ip` is over its budget.
    pub fn blocked(&self, ip: IpAddr) -> Option<u64> {
        let mut map = self.failures.lock().expect("throttle lock");
        let q = map.get_mut(&ip)?;
        let now = Instant::now();
        while q
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            q.pop_front();
        }
        if q.len() <= self.max_failures {
            return None;
        }
        let oldest = *q.front().expect("non-empty");
        Some((self.window - now.duration_since(oldest)).as_secs().max(1))
    }

    /// Counts one failure of `ip`.
    pub fn record(&self, ip: IpAddr) {
        let mut map = self.failures.lock().expect("throttle lock");
        if map.len() > 100_000 {
            // Bounded memory under a spray of addresses: forget the idle ones.
            let window = self.window;
            map.retain(|_, q| q.back().is_some_and(|t| t.elapsed() < window));
        }
        let q = map.entry(ip).or_default();
        q.push_back(Instant::now());
        // One past the budget is all `blocked` needs to see.
        if q.len() > self.max_failures + 1 {
            q.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_blocked_past_its_budget_and_others_are_not() {
        let t = LoginThrottle::new(Duration::from_secs(60), 3);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        // Three failures, and a fourth ("more than 3") is still let through.
        for _ in 0..4 {
            assert!(t.blocked(a).is_none());
            t.record(a);
        }
        assert!(t.blocked(a).is_some_and(|s| (1..=60).contains(&s)));
        t.record(a);
        assert!(t.blocked(a).is_some(), "stays blocked, memory bounded");
        assert_eq!(t.failures.lock().unwrap()[&a].len(), 4);
        assert!(t.blocked(b).is_none());
    }
}
