//! Which data mocks are consumed: one bit per entry.

/// A bit per entry, set once its mock is consumed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Consumed {
    words: Vec<u64>,
    len: usize,
}

impl Consumed {
    /// One more entry, not consumed.
    pub fn push(&mut self) {
        if self.len % 64 == 0 {
            self.words.push(0);
        }
        self.len += 1;
    }

    pub fn get(&self, i: usize) -> bool {
        self.words
            .get(i / 64)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    pub fn set(&mut self, i: usize) {
        if let Some(w) = self.words.get_mut(i / 64) {
            *w |= 1 << (i % 64);
        }
    }

    /// Nothing consumed.
    pub fn clear(&mut self) {
        self.words.fill(0);
    }

    /// Takes `other`'s bits when it has as many entries.
    pub fn copy_from(&mut self, other: &Consumed) {
        if other.len == self.len {
            self.words.copy_from_slice(&other.words);
        }
    }

    pub fn shrink(&mut self) {
        self.words.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_set_clear_and_copy() {
        let mut c = Consumed::default();
        for _ in 0..130 {
            c.push();
        }
        c.set(0);
        c.set(64);
        c.set(129);
        c.set(500);
        let all: Vec<usize> = (0..200).filter(|&i| c.get(i)).collect();
        assert_eq!(all, [0, 64, 129]);
        let saved = c.clone();
        c.clear();
        assert!(!c.get(64));
        c.copy_from(&saved);
        assert!(c.get(64));
        c.copy_from(&Consumed::default());
        assert!(c.get(64), "a snapshot of another size is ignored");
    }
}
