//! Token buckets: the arithmetic of a request budget, with time passed in so it is testable.

use std::time::{Duration, Instant};

/// A budget: `quota` requests per `window`, refilled continuously (a token bucket of
/// `quota` tokens that fills in one window). A quota of 0 means no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// The policy's name in the `RateLimit-Policy` and `RateLimit` headers.
    pub name: &'static str,
    pub quota: u32,
    pub window: Duration,
}

impl Policy {
    pub fn per_minute(name: &'static str, quota: u32) -> Self {
        Policy {
            name,
            quota,
            window: Duration::from_secs(60),
        }
    }

    pub fn unlimited(&self) -> bool {
        self.quota == 0
    }

    /// Tokens added per second.
    fn rate(&self) -> f64 {
        f64::from(self.quota) / self.window.as_secs_f64()
    }
}

/// The state of one client's budget.
#[derive(Debug, Clone, Copy)]
pub struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// What a request learns from its budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead; `remaining` requests are left now and the budget is whole again in `reset`
    /// seconds.
    Allowed { remaining: u32, reset: u64 },
    /// Refused; one more request is allowed after `retry_after` seconds.
    Limited { retry_after: u64 },
}

impl Bucket {
    /// A full bucket: a new client starts with its whole budget.
    pub fn full(policy: &Policy, now: Instant) -> Self {
        Bucket {
            tokens: f64::from(policy.quota),
            updated: now,
        }
    }

    fn refill(&mut self, policy: &Policy, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * policy.rate()).min(f64::from(policy.quota));
        self.updated = now;
    }

    /// Takes one request from the budget if there is one.
    pub fn take(&mut self, policy: &Policy, now: Instant) -> Decision {
        self.refill(policy, now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            let missing = f64::from(policy.quota) - self.tokens;
            Decision::Allowed {
                remaining: self.tokens.floor() as u32,
                reset: (missing / policy.rate()).ceil() as u64,
            }
        } else {
            // At least one second: `Retry-After: 0` would invite an immediate retry.
            let wait = ((1.0 - self.tokens) / policy.rate()).ceil() as u64;
            Decision::Limited {
                retry_after: wait.max(1),
            }
        }
    }

    /// Whether the bucket has refilled completely by `now`: such an entry can be forgotten,
    /// since a new full bucket would behave the same.
    pub fn is_full(&self, policy: &Policy, now: Instant) -> bool {
        let mut b = *self;
        b.refill(policy, now);
        b.tokens >= f64::from(policy.quota)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_budget_is_spent_then_refused_then_refilled() {
        let p = Policy::per_minute("test", 3);
        let t0 = Instant::now();
        let mut b = Bucket::full(&p, t0);
        assert_eq!(
            b.take(&p, t0),
            Decision::Allowed {
                remaining: 2,
                reset: 20
            }
        );
        assert_eq!(
            b.take(&p, t0),
            Decision::Allowed {
                remaining: 1,
                reset: 40
            }
        );
        assert_eq!(
            b.take(&p, t0),
            Decision::Allowed {
                remaining: 0,
                reset: 60
            }
        );
        // One token comes back every 20 s.
        assert_eq!(b.take(&p, t0), Decision::Limited { retry_after: 20 });
        let t1 = t0 + Duration::from_secs(15);
        assert_eq!(b.take(&p, t1), Decision::Limited { retry_after: 5 });
        let t2 = t0 + Duration::from_secs(20);
        assert!(matches!(
            b.take(&p, t2),
            Decision::Allowed { remaining: 0, .. }
        ));
        assert!(!b.is_full(&p, t2));
        assert!(b.is_full(&p, t2 + Duration::from_secs(60)));
    }

    #[test]
    fn refill_never_exceeds_the_quota() {
        let p = Policy::per_minute("test", 2);
        let t0 = Instant::now();
        let mut b = Bucket::full(&p, t0);
        let later = t0 + Duration::from_secs(3600);
        assert_eq!(
            b.take(&p, later),
            Decision::Allowed {
                remaining: 1,
                reset: 30
            }
        );
    }

    #[test]
    fn retry_after_is_at_least_one_second() {
        let p = Policy::per_minute("fast", 6000); // 100 per second
        let t0 = Instant::now();
        let mut b = Bucket::full(&p, t0);
        for _ in 0..6000 {
            assert!(matches!(b.take(&p, t0), Decision::Allowed { .. }));
        }
        assert_eq!(b.take(&p, t0), Decision::Limited { retry_after: 1 });
    }
}
