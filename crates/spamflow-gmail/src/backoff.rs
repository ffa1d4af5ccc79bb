//! Exponential backoff with full jitter, and which HTTP statuses are worth a retry.

use std::time::Duration;

/// Retry schedule: attempt `n` (0-based) waits a uniformly random delay in
/// `[0, min(max, base * 2^n)]` ("full jitter"), so clients that failed together do not retry
/// together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    max_attempts: u32,
}

impl Backoff {
    /// Creates a schedule; `max_attempts` counts the first try.
    pub fn new(base: Duration, max: Duration, max_attempts: u32) -> Self {
        Self {
            base,
            max: max.max(base),
            max_attempts: max_attempts.max(1),
        }
    }

    /// Attempts per call, the first included.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// Upper bound of the delay after failed attempt `attempt` (0-based):
    /// `min(max, base * 2^attempt)`.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max)
    }

    /// Delay after failed attempt `attempt`, for a uniform sample `unit` in `[0, 1]`.
    pub fn delay_for(&self, attempt: u32, unit: f64) -> Duration {
        self.ceiling(attempt).mul_f64(unit.clamp(0.0, 1.0))
    }

    /// Delay after failed attempt `attempt`, with a fresh random sample.
    pub fn delay(&self, attempt: u32) -> Duration {
        self.delay_for(attempt, fastrand::f64())
    }
}

/// Returns whether a Gmail response with this HTTP status may succeed when sent again: 429
/// (rate limited) and the 5xx server errors. Gmail's 403 `rateLimitExceeded` is handled by
/// the caller, which reads the reason.
pub fn is_retryable_status(status: u16) -> bool {
    status == 429 || (500..=599).contains(&status)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule() -> Backoff {
        Backoff::new(Duration::from_millis(100), Duration::from_secs(2), 6)
    }

    #[test]
    fn ceiling_doubles_until_max() {
        let backoff = schedule();
        let ceilings: Vec<u128> = (0..7).map(|n| backoff.ceiling(n).as_millis()).collect();
        assert_eq!(ceilings, vec![100, 200, 400, 800, 1600, 2000, 2000]);
    }

    #[test]
    fn ceiling_survives_huge_attempt_numbers() {
        assert_eq!(schedule().ceiling(u32::MAX), Duration::from_secs(2));
    }

    #[test]
    fn full_jitter_spans_zero_to_ceiling() {
        let backoff = schedule();
        assert_eq!(backoff.delay_for(3, 0.0), Duration::ZERO);
        assert_eq!(backoff.delay_for(3, 1.0), Duration::from_millis(800));
        assert_eq!(backoff.delay_for(3, 0.5), Duration::from_millis(400));
        assert_eq!(backoff.delay_for(3, 7.0), Duration::from_millis(800));
    }

    #[test]
    fn random_delays_stay_within_ceiling() {
        let backoff = schedule();
        for attempt in 0..8 {
            for _ in 0..100 {
                assert!(backoff.delay(attempt) <= backoff.ceiling(attempt));
            }
        }
    }

    #[test]
    fn zero_attempts_means_one() {
        let backoff = Backoff::new(Duration::from_millis(1), Duration::ZERO, 0);
        assert_eq!(backoff.max_attempts(), 1);
        assert_eq!(backoff.ceiling(5), Duration::from_millis(1));
    }

    #[test]
    fn retryable_statuses() {
        for status in [429, 500, 502, 503, 504] {
            assert!(is_retryable_status(status), "{status}");
        }
        for status in [200, 400, 401, 403, 404, 409] {
            assert!(!is_retryable_status(status), "{status}");
        }
    }
}
