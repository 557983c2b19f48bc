//! Randomness for spreading work in time, from the system's secure source (ring's, which the
//! gateway already has for TLS).

use ring::rand::SecureRandom;
use std::time::Duration;

/// A uniformly random duration in `[0, max]`; zero if the system's source fails.
pub fn jitter(max: Duration) -> Duration {
    let mut bytes = [0u8; 4];
    if ring::rand::SystemRandom::new().fill(&mut bytes).is_err() {
        return Duration::ZERO;
    }
    max.mul_f64(f64::from(u32::from_le_bytes(bytes)) / f64::from(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_its_bound_and_varies() {
        let max = Duration::from_millis(10);
        let draws: Vec<Duration> = (0..64).map(|_| jitter(max)).collect();
        assert!(draws.iter().all(|d| *d <= max));
        assert!(draws.iter().any(|d| *d != draws[0]));
    }
}
