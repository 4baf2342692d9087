//! The `rate` setting: one token bucket across all workers, so the relay
//! sees at most `rate` messages a second however many connections are open.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Each message reserves the next free slot, 1/rate apart.
#[derive(Debug, Clone)]
pub(super) struct RateLimit {
    interval: Option<Duration>,
    next: Arc<Mutex<Instant>>,
}

impl RateLimit {
    /// `per_second` of 0 (or less) means no limit.
    pub(super) fn new(per_second: f64) -> RateLimit {
        RateLimit {
            interval: (per_second > 0.0).then(|| Duration::from_secs_f64(1.0 / per_second)),
            next: Arc::new(Mutex::new(Instant::now())),
        }
    }

    /// Reserves the next slot at or after `now`: `interval` after the
    /// previous one. Idle time is not banked, so there are no bursts.
    fn reserve(&self, now: Instant) -> Option<Instant> {
        let interval = self.interval?;
        let mut next = self.next.lock().ok()?;
        let slot = (*next).max(now);
        *next = slot + interval;
        Some(slot)
    }

    /// Waits for this message's slot.
    pub(super) async fn wait(&self) {
        if let Some(slot) = self.reserve(Instant::now())
            && slot > Instant::now()
        {
            tokio::time::sleep_until(slot.into()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_spaces_slots_across_callers() {
        let limit = RateLimit::new(10.0);
        let t0 = Instant::now();
        let slots: Vec<Instant> = (0..5)
            .map(|_| limit.reserve(t0).expect("limited"))
            .collect();
        for pair in slots.windows(2) {
            assert_eq!(pair[1] - pair[0], Duration::from_millis(100));
        }
        // After an idle spell the next slot is "now", not a burst of saved slots.
        let later = t0 + Duration::from_secs(10);
        assert_eq!(limit.reserve(later), Some(later));
        assert_eq!(
            limit.reserve(later),
            Some(later + Duration::from_millis(100))
        );
        assert_eq!(RateLimit::new(0.0).reserve(t0), None, "0 = no limit");
    }
}
