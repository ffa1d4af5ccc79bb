//! Per-mailbox quota: Gmail charges each method a number of quota units and limits each user
//! to 250 units per second. A token bucket on those units keeps spamflow under the limit
//! instead of learning it from 429 responses.

use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

/// The Gmail methods spamflow calls, with their quota cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// `users.getProfile`
    GetProfile,
    /// `users.messages.list`
    MessagesList,
    /// `users.messages.get`
    MessagesGet,
    /// `users.messages.modify`
    MessagesModify,
    /// `users.history.list`
    HistoryList,
    /// `users.labels.list`
    LabelsList,
    /// `users.labels.create`
    LabelsCreate,
    /// `users.watch`
    Watch,
    /// `users.stop`
    Stop,
}

impl Method {
    /// Quota units one call costs, from Gmail's published usage limits table.
    pub fn quota_units(self) -> u32 {
        match self {
            Method::GetProfile | Method::LabelsList => 1,
            Method::HistoryList => 2,
            Method::MessagesList
            | Method::MessagesGet
            | Method::MessagesModify
            | Method::LabelsCreate => 5,
            Method::Stop => 50,
            Method::Watch => 100,
        }
    }

    /// The API method name, as in Gmail's reference and in logs.
    pub fn name(self) -> &'static str {
        match self {
            Method::GetProfile => "users.getProfile",
            Method::MessagesList => "users.messages.list",
            Method::MessagesGet => "users.messages.get",
            Method::MessagesModify => "users.messages.modify",
            Method::HistoryList => "users.history.list",
            Method::LabelsList => "users.labels.list",
            Method::LabelsCreate => "users.labels.create",
            Method::Watch => "users.watch",
            Method::Stop => "users.stop",
        }
    }
}

/// Token bucket over quota units, with time passed in so it is pure and testable.
///
/// The balance may go negative: a caller reserves its units at once and waits until the
/// balance would have been non-negative, so callers are served in the order they reserve.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    capacity: f64,
    units_per_second: f64,
    balance: f64,
    updated: Instant,
}

impl TokenBucket {
    /// Creates a full bucket holding one second of units.
    pub fn new(units_per_second: u32, now: Instant) -> Self {
        let rate = f64::from(units_per_second.max(1));
        Self {
            capacity: rate,
            units_per_second: rate,
            balance: rate,
            updated: now,
        }
    }

    /// Reserves `units` and returns how long the caller must wait before sending. A cost
    /// above the capacity is charged as the full capacity, so it waits at most one second
    /// of refill instead of forever.
    pub fn reserve(&mut self, units: u32, now: Instant) -> Duration {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.balance = (self.balance + elapsed * self.units_per_second).min(self.capacity);
        self.updated = now;
        self.balance -= f64::from(units).min(self.capacity);
        if self.balance >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.balance / self.units_per_second)
        }
    }
}

/// An async, shareable [`TokenBucket`] for one mailbox.
#[derive(Debug)]
pub struct QuotaLimiter {
    bucket: Mutex<TokenBucket>,
}

impl QuotaLimiter {
    /// Creates a limiter allowing `units_per_second`, with a one-second burst.
    pub fn new(units_per_second: u32) -> Self {
        Self {
            bucket: Mutex::new(TokenBucket::new(units_per_second, Instant::now())),
        }
    }

    /// Waits until `method` may be called within the quota.
    pub async fn acquire(&self, method: Method) {
        let wait = self
            .bucket
            .lock()
            .await
            .reserve(method.quota_units(), Instant::now());
        if !wait.is_zero() {
            tracing::debug!(
                method = method.name(),
                wait_ms = wait.as_millis() as u64,
                "Waiting for Gmail quota"
            );
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_bucket_serves_a_burst_of_capacity() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(250, start);
        for _ in 0..50 {
            assert_eq!(bucket.reserve(5, start), Duration::ZERO);
        }
        assert_eq!(bucket.reserve(5, start), Duration::from_millis(20));
    }

    #[test]
    fn bucket_refills_at_rate_up_to_capacity() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(100, start);
        assert_eq!(bucket.reserve(100, start), Duration::ZERO);
        let later = start + Duration::from_millis(500);
        assert_eq!(bucket.reserve(50, later), Duration::ZERO);
        assert_eq!(bucket.reserve(10, later), Duration::from_millis(100));
        let much_later = later + Duration::from_secs(60);
        assert_eq!(bucket.reserve(100, much_later), Duration::ZERO);
        assert_eq!(bucket.reserve(1, much_later), Duration::from_millis(10));
    }

    #[test]
    fn waits_queue_up_in_reservation_order() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(10, start);
        assert_eq!(bucket.reserve(10, start), Duration::ZERO);
        assert_eq!(bucket.reserve(5, start), Duration::from_millis(500));
        assert_eq!(bucket.reserve(5, start), Duration::from_secs(1));
    }

    #[test]
    fn cost_above_capacity_is_capped() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(10, start);
        assert_eq!(
            bucket.reserve(Method::Watch.quota_units(), start),
            Duration::ZERO
        );
        assert_eq!(bucket.reserve(10, start), Duration::from_secs(1));
    }

    #[test]
    fn method_costs_match_gmail_table() {
        assert_eq!(Method::MessagesGet.quota_units(), 5);
        assert_eq!(Method::HistoryList.quota_units(), 2);
        assert_eq!(Method::Watch.quota_units(), 100);
        assert_eq!(Method::GetProfile.quota_units(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn limiter_spaces_calls_over_paused_time() {
        let limiter = QuotaLimiter::new(10);
        let start = Instant::now();
        for _ in 0..4 {
            limiter.acquire(Method::MessagesGet).await;
        }
        // Two calls fit the burst of 10 units; two more need 5 units each at 10 per second.
        assert_eq!(Instant::now() - start, Duration::from_secs(1));
    }
}
