//! Account lockout: after `threshold` consecutive failures the account is locked, each
//! lock twice as long as the previous one, up to a ceiling.

use chrono::Duration;

/// Lockout settings.
#[derive(Debug, Clone, Copy)]
pub struct LockoutPolicy {
    /// Consecutive failures that lock the account (default 10).
    pub threshold: u32,
    /// The first lock's length (default 1 minute).
    pub base: Duration,
    /// The longest lock (default 24 hours).
    pub max: Duration,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        Self {
            threshold: 10,
            base: Duration::minutes(1),
            max: Duration::hours(24),
        }
    }
}

impl LockoutPolicy {
    /// Whether `failures` consecutive failures lock the account.
    pub fn locks(&self, failures: u32) -> bool {
        failures >= self.threshold
    }

    /// How long the lock lasts when the account has been locked `previous_locks` times before.
    pub fn lock_duration(&self, previous_locks: u32) -> Duration {
        let factor = 1i32.checked_shl(previous_locks.min(30)).unwrap_or(i32::MAX);
        self.base
            .checked_mul(factor)
            .map(|d| d.min(self.max))
            .unwrap_or(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_grow_and_are_capped() {
        let p = LockoutPolicy::default();
        assert!(!p.locks(9) && p.locks(10));
        assert_eq!(p.lock_duration(0), Duration::minutes(1));
        assert_eq!(p.lock_duration(1), Duration::minutes(2));
        assert_eq!(p.lock_duration(3), Duration::minutes(8));
        assert_eq!(p.lock_duration(40), Duration::hours(24));
    }
}
