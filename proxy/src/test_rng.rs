//! A seeded xorshift generator for the tests that feed decoders, loaders
//! and parsers arbitrary input. Deterministic on purpose: a failure names
//! its seed and input, and the same run reproduces it on any machine.
//!
//! Compiled for this crate's tests, and for the `recplay` binary's tests
//! through the `test-support` feature; never part of a release build.

/// xorshift64*: tiny, fast, and good enough to pick test inputs.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        // Zero is xorshift's one fixed point.
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// True about once in `one_in` calls.
    pub fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }

    pub fn byte(&mut self) -> u8 {
        self.next_u64() as u8
    }

    /// One of `items` (not empty).
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// Up to `max` random bytes.
    pub fn bytes(&mut self, max: usize) -> Vec<u8> {
        (0..self.below(max + 1)).map(|_| self.byte()).collect()
    }

    /// Up to `max` pieces of `alphabet`, joined.
    pub fn string_of(&mut self, alphabet: &[&str], max: usize) -> String {
        (0..self.below(max + 1))
            .map(|_| *self.pick(alphabet))
            .collect()
    }

    /// `text` damaged once: cut, a byte flipped, or a span repeated.
    pub fn damage(&mut self, text: &[u8]) -> Vec<u8> {
        let mut out = text.to_vec();
        if out.is_empty() {
            return self.bytes(16);
        }
        let at = self.below(out.len());
        match self.below(3) {
            0 => out.truncate(at),
            1 => out[at] ^= (self.below(255) + 1) as u8,
            _ => {
                let end = (at + self.below(40)).min(out.len());
                let span = out[at..end].to_vec();
                out.splice(at..at, span);
            }
        }
        out
    }
}
