//! What a receiver accepts, and the clock it checks against.

/// What a receiver accepts. Every field is configurable; the defaults suit the
/// mesh as designed (help requests travel at most 3 hops).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Limits {
    /// Largest envelope in bytes, checked before parsing.
    pub max_size: usize,
    /// Largest `hop_count` accepted, and the most a relay forwards to.
    pub max_hops: u8,
    /// Largest `ttl` in seconds.
    pub max_ttl: u32,
    /// How far in the future `ts` may be, in milliseconds.
    pub max_clock_skew_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_size: 64 * 1024, max_hops: 3, max_ttl: 3600, max_clock_skew_ms: 30_000 }
    }
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis().min(u64::MAX as u128) as u64)
        .unwrap_or(0)
}
