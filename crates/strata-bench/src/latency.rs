//! Latency percentiles: an HDR histogram in nanoseconds, one per task,
//! merged at the end (no shared lock on the measured path).

use std::time::Duration;

use hdrhistogram::Histogram;

/// Significant decimal digits the histogram keeps (0.1 % error).
const LATENCY_SIGNIFICANT_DIGITS: u8 = 3;
/// Largest latency recorded exactly: one hour, in nanoseconds; longer ones
/// are recorded as this.
const MAX_LATENCY_NS: u64 = 3_600_000_000_000;

/// Recorded latencies.
#[derive(Clone, Debug)]
pub struct Latency {
    hist: Option<Histogram<u64>>,
}

impl Default for Latency {
    fn default() -> Self {
        Self::new()
    }
}

impl Latency {
    /// An empty recorder.
    pub fn new() -> Self {
        Latency {
            hist: Histogram::new_with_max(MAX_LATENCY_NS, LATENCY_SIGNIFICANT_DIGITS).ok(),
        }
    }

    /// Records one operation's latency.
    pub fn record(&mut self, d: Duration) {
        if let Some(h) = &mut self.hist {
            let ns = u64::try_from(d.as_nanos()).unwrap_or(MAX_LATENCY_NS);
            h.saturating_record(ns.clamp(1, MAX_LATENCY_NS));
        }
    }

    /// Adds another recorder's samples.
    pub fn merge(&mut self, other: &Latency) {
        if let (Some(h), Some(o)) = (&mut self.hist, &other.hist) {
            // Both have the same bounds, so adding cannot fail.
            let _ = h.add(o);
        }
    }

    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.hist.as_ref().map_or(0, Histogram::len)
    }

    /// The `q` quantile (0..=1) in microseconds; `None` without samples.
    pub fn quantile_us(&self, q: f64) -> Option<f64> {
        let h = self.hist.as_ref().filter(|h| !h.is_empty())?;
        Some(h.value_at_quantile(q) as f64 / 1000.0)
    }

    /// The mean in microseconds; `None` without samples.
    pub fn mean_us(&self) -> Option<f64> {
        let h = self.hist.as_ref().filter(|h| !h.is_empty())?;
        Some(h.mean() / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_known_samples() {
        let mut a = Latency::new();
        let mut b = Latency::new();
        for us in 1..=50u64 {
            a.record(Duration::from_micros(us));
        }
        for us in 51..=100u64 {
            b.record(Duration::from_micros(us));
        }
        a.merge(&b);
        assert_eq!(a.count(), 100);
        let p50 = a.quantile_us(0.5).unwrap_or_default();
        let p99 = a.quantile_us(0.99).unwrap_or_default();
        assert!((49.9..=50.1).contains(&p50), "{p50}");
        assert!((98.9..=99.1).contains(&p99), "{p99}");
        assert_eq!(Latency::new().quantile_us(0.5), None);
    }
}
