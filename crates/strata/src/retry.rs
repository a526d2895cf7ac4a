//! How the repository retries a command that lost an optimistic-concurrency race.

use std::time::Duration;

use uuid::Uuid;

/// Bounded retries with jittered exponential backoff.
///
/// Before retry `n` (1-based) the repository waits a random time in
/// `[0, min(max_delay, base_delay × 2ⁿ⁻¹)]` ("full jitter"), so that writers
/// that collided do not collide again in lock-step. Waiting needs a Tokio
/// runtime with the time driver enabled (`#[tokio::main]` has it), unless
/// `base_delay` is zero.
///
/// ```
/// use std::time::Duration;
/// use strata::RetryPolicy;
/// let p = RetryPolicy::default();
/// assert_eq!(p.max_attempts, 3);
/// let patient = RetryPolicy::default().with_max_attempts(20).with_base_delay(Duration::ZERO);
/// assert_eq!(patient.delay_before_retry(5), Duration::ZERO);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// How many times a command is tried in all (at least 1). Default 3.
    pub max_attempts: u32,
    /// The backoff's first step. Default 1 ms.
    pub base_delay: Duration,
    /// The longest wait between two attempts. Default 50 ms.
    pub max_delay: Duration,
}

/// Default for [`RetryPolicy::max_attempts`].
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(50),
        }
    }
}

impl RetryPolicy {
    /// No retry: a conflict is returned at once.
    pub fn no_retry() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// Sets the number of attempts (values below 1 count as 1).
    pub fn with_max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = max_attempts.max(1);
        self
    }

    /// Sets the backoff's first step.
    pub fn with_base_delay(mut self, base_delay: Duration) -> Self {
        self.base_delay = base_delay;
        self
    }

    /// Sets the longest wait.
    pub fn with_max_delay(mut self, max_delay: Duration) -> Self {
        self.max_delay = max_delay;
        self
    }

    /// The attempts actually allowed (at least 1).
    pub(crate) fn attempts(&self) -> u32 {
        self.max_attempts.max(1)
    }

    /// A random wait before retry `retry` (1-based), within the backoff bound.
    pub fn delay_before_retry(&self, retry: u32) -> Duration {
        let exp = retry.saturating_sub(1).min(20);
        let cap = self
            .base_delay
            .saturating_mul(1u32 << exp)
            .min(self.max_delay);
        let cap_nanos = cap.as_nanos().min(u64::MAX as u128) as u64;
        if cap_nanos == 0 {
            return Duration::ZERO;
        }
        // Conflicts are rare, so a v4 UUID's random bits are cheap enough here
        // and spare us a dependency on an RNG crate.
        let random = Uuid::new_v4().as_u128() as u64;
        Duration::from_nanos(random % (cap_nanos + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_stay_within_bounds() {
        let p = RetryPolicy::default();
        for retry in 1..40 {
            let d = p.delay_before_retry(retry);
            let bound = (p.base_delay * (1 << (retry - 1).min(20))).min(p.max_delay);
            assert!(d <= bound, "{d:?} > {bound:?}");
        }
        assert_eq!(RetryPolicy::default().with_max_attempts(0).attempts(), 1);
    }
}
