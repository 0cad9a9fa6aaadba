//! The pseudo-random numbers behind transmission jitter and discriminators.
//!
//! RFC 5880 §6.8.7 asks for jitter only to keep systems from falling into
//! step, and §6.8.1 for discriminators that are unique, so nothing here
//! needs to be unpredictable: a seeded xorshift64* is enough, and a seed
//! makes every test replay exactly.

/// A xorshift64* generator (Vigna, 2014).
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    /// A generator for `seed`; any seed will do, zero and neighbours included.
    pub(crate) fn new(seed: u64) -> Rng {
        // A splitmix64 step spreads seeds that differ in a bit or two, and
        // keeps the state off zero, where xorshift would stay forever.
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        Rng(if z == 0 { 0x9e37_79b9_7f4a_7c15 } else { z })
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..=max`, without the bias of a modulo.
    pub(crate) fn up_to(&mut self, max: u64) -> u64 {
        let Some(span) = max.checked_add(1) else {
            return self.next_u64();
        };
        // The high half of a 64×64 product maps 0..2^64 onto 0..span evenly.
        ((u128::from(self.next_u64()) * u128::from(span)) >> 64) as u64
    }
}
