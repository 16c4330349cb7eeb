//! When to try a delivery again: the Standard Webhooks schedule (at once, 5 s, 5 min, 30 min,
//! 2 h, 5 h, 10 h, 14 h, 20 h, 24 h: about three days), each wait with up to 20% jitter so that
//! retries of many deliveries do not arrive together; a receiver's `Retry-After` wins when
//! longer. After the last attempt the delivery is dead-lettered.

use std::time::Duration;

/// The waits before the 2nd, 3rd, ... attempt.
pub const WAITS: [Duration; 9] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(14 * 3600),
    Duration::from_secs(20 * 3600),
    Duration::from_secs(24 * 3600),
];

/// Attempts in all: the first and one after each wait.
pub const MAX_ATTEMPTS: u32 = WAITS.len() as u32 + 1;

/// Longest `Retry-After` honoured: a day.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// The wait after attempt number `attempts` (1-based) failed, or `None` when it was the last.
/// `jitter` is a random number in `[0, 1)`; `retry_after` what the receiver asked for.
pub fn next_wait(attempts: u32, jitter: f64, retry_after: Option<Duration>) -> Option<Duration> {
    let base = *WAITS.get(usize::try_from(attempts).ok()?.checked_sub(1)?)?;
    let jittered = base.mul_f64(1.0 + 0.2 * jitter.clamp(0.0, 1.0));
    Some(match retry_after {
        Some(asked) => jittered.max(asked.min(MAX_RETRY_AFTER)),
        None => jittered,
    })
}

/// A random number in `[0, 1)` for jitter.
pub fn jitter() -> f64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        return 0.5;
    }
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

/// A `Retry-After` header: delta-seconds or an HTTP date.
pub fn retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    (at.to_utc() - chrono::Utc::now()).to_std().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_spans_about_three_days_with_jitter_and_honours_retry_after() {
        let total: Duration = WAITS.iter().sum();
        assert!(
            total > Duration::from_secs(3 * 24 * 3600 - 6 * 3600),
            "{total:?}"
        );
        assert_eq!(next_wait(1, 0.0, None), Some(Duration::from_secs(5)));
        assert_eq!(next_wait(1, 1.0, None), Some(Duration::from_secs(6)));
        assert_eq!(next_wait(2, 0.5, None), Some(Duration::from_secs(330)));
        assert_eq!(next_wait(MAX_ATTEMPTS, 0.0, None), None);
        assert_eq!(next_wait(0, 0.0, None), None);
        assert_eq!(
            next_wait(1, 0.0, Some(Duration::from_secs(120))),
            Some(Duration::from_secs(120))
        );
        // A receiver cannot park a delivery for more than a day.
        assert_eq!(
            next_wait(1, 0.0, Some(Duration::from_secs(9_999_999))),
            Some(Duration::from_secs(24 * 3600))
        );
        assert_eq!(retry_after(" 30 "), Some(Duration::from_secs(30)));
        assert_eq!(retry_after("soon"), None);
        let j = jitter();
        assert!((0.0..1.0).contains(&j));
    }
}
