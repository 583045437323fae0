//! Session lifetime rules (NIST 800-63B AAL2): 30 minutes idle, 12 hours in all.

use chrono::{DateTime, Duration, Utc};

/// Session limits.
#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    /// Ends a session unused this long.
    pub idle: Duration,
    /// Ends a session this long after it started, used or not.
    pub absolute: Duration,
    /// Access tokens live this long.
    pub access_token: Duration,
    /// MFA tokens (between password and second factor) live this long.
    pub mfa_token: Duration,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            idle: Duration::minutes(30),
            absolute: Duration::hours(12),
            access_token: Duration::minutes(15),
            mfa_token: Duration::minutes(5),
        }
    }
}

/// Why a session is no longer usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    /// Revoked (logout, refresh-token reuse, admin).
    Revoked,
    /// Unused for longer than the idle limit.
    Idle,
    /// Older than the absolute limit.
    Expired,
}

impl SessionEnd {
    /// The reason as written into a `SessionRevoked` event.
    pub fn as_reason(self) -> &'static str {
        match self {
            SessionEnd::Revoked => "revoked",
            SessionEnd::Idle => "idle",
            SessionEnd::Expired => "expired",
        }
    }
}

impl SessionPolicy {
    /// Whether a session is usable at `now`.
    pub fn check(
        &self,
        created_at: DateTime<Utc>,
        last_seen_at: DateTime<Utc>,
        revoked: bool,
        now: DateTime<Utc>,
    ) -> Result<(), SessionEnd> {
        if revoked {
            Err(SessionEnd::Revoked)
        } else if now - created_at >= self.absolute {
            Err(SessionEnd::Expired)
        } else if now - last_seen_at >= self.idle {
            Err(SessionEnd::Idle)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_end_when_idle_expired_or_revoked() {
        let p = SessionPolicy::default();
        let t0 = Utc::now();
        assert_eq!(p.check(t0, t0, false, t0 + Duration::minutes(29)), Ok(()));
        assert_eq!(
            p.check(t0, t0, false, t0 + Duration::minutes(30)),
            Err(SessionEnd::Idle)
        );
        let busy = t0 + Duration::hours(12) - Duration::minutes(1);
        assert_eq!(
            p.check(t0, busy, false, t0 + Duration::hours(12)),
            Err(SessionEnd::Expired)
        );
        assert_eq!(p.check(t0, t0, true, t0), Err(SessionEnd::Revoked));
    }
}
