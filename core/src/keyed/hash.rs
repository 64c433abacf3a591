//! Key identity: a seeded hash, never the raw key.

use std::sync::OnceLock;

/// A key as the in-process map knows it: a 64-bit hash of its bytes under a random per-process
/// seed.
///
/// Raw keys (emails, phone numbers, API keys) are never stored, so they cannot leak from a memory
/// dump or a debug print. The seed is drawn from the operating system's random source once per
/// process, so an attacker who cannot read the process's memory cannot craft keys that collide or
/// crowd one part of the table. Two distinct keys that do share a hash (probability about
/// `n² / 2⁶⁵` for `n` live keys: 3·10⁻⁸ at a million) share one budget, which is stricter for
/// both, never looser.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct KeyHash(u64);

#[inline(always)]
fn seed() -> &'static ahash::RandomState {
    static SEED: OnceLock<ahash::RandomState> = OnceLock::new();
    SEED.get_or_init(ahash::RandomState::new)
}

impl KeyHash {
    /// Hashes `key` under this process's seed. Hash once and reuse the value when one key is
    /// checked against several limits.
    #[inline(always)]
    pub fn of(key: impl AsRef<[u8]>) -> KeyHash {
        // 0 marks an empty slot in the table.
        KeyHash(seed().hash_one(key.as_ref()).max(1))
    }

    /// The hash value (never 0).
    pub fn get(self) -> u64 {
        self.0
    }
}
