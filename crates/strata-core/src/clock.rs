//! A wall clock that never steps back, for `recorded_at`.

use chrono::{DateTime, TimeZone, Utc};

/// Hands out timestamps that never decrease, truncated to microseconds (the
/// precision every backend stores), even when the system clock steps back.
#[derive(Debug, Default, Clone)]
pub struct MonotonicClock {
    last_micros: i64,
}

impl MonotonicClock {
    /// A clock whose next reading is at least `last`.
    pub fn starting_at(last: DateTime<Utc>) -> Self {
        MonotonicClock {
            last_micros: last.timestamp_micros(),
        }
    }

    /// The current time, clamped to be at least the previous reading.
    pub fn now(&mut self) -> DateTime<Utc> {
        self.observe(Utc::now())
    }

    /// Clamps an externally read time the same way (used by tests and by
    /// stores whose time comes from elsewhere).
    pub fn observe(&mut self, t: DateTime<Utc>) -> DateTime<Utc> {
        let micros = t.timestamp_micros().max(self.last_micros);
        self.last_micros = micros;
        from_micros(micros)
    }
}

/// A timestamp from microseconds since the Unix epoch (saturating at the
/// representable range).
pub fn from_micros(micros: i64) -> DateTime<Utc> {
    Utc.timestamp_micros(micros)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_steps_back() {
        let mut c = MonotonicClock::default();
        let t1 = c.observe(from_micros(1_000));
        let t2 = c.observe(from_micros(500));
        assert_eq!(t1, t2);
        let t3 = c.observe(from_micros(2_000));
        assert!(t3 > t2);
    }
}
