//! Shapes: identities with their literal values abstracted.
//!
//! Which entries share a shape (for a same-shape fallback) is a chain
//! through one `u32` per entry, filled as entries arrive: no list per
//! shape to grow, nothing to sort when loading ends. Each distinct shape
//! keeps the readable text of its first recording, for naming the nearest
//! recordings of a miss.

use std::collections::HashMap;

use super::Key;

/// No entry.
const NONE: u32 = u32::MAX;

/// A distinct shape.
#[derive(Debug)]
pub struct ShapeInfo {
    /// Its first recording.
    pub first: u32,
    /// Its latest recording, where the chain grows.
    last: u32,
    pub tokens: Vec<String>,
    /// The readable statement text of its first recording.
    pub display: String,
}

/// The shape index.
#[derive(Debug, Default)]
pub struct Shapes {
    codes: HashMap<Key, u32>,
    /// In order of first recording.
    info: Vec<ShapeInfo>,
    /// Per entry, the next entry of its shape, or [`NONE`].
    next: Vec<u32>,
}

impl Shapes {
    /// Files entry `at`, newer than every entry filed before, under `key`.
    /// `display` is kept when the shape is new. `None` files it under no
    /// shape (a start-up).
    pub fn push(&mut self, at: u32, shape: Option<(Key, String)>) {
        let slot = at as usize;
        if self.next.len() <= slot {
            self.next.resize(slot + 1, NONE);
        }
        let Some((key, display)) = shape else {
            return;
        };
        match self.codes.get(&key) {
            Some(&s) => {
                if let Some(info) = self.info.get_mut(s as usize) {
                    if let Some(link) = self.next.get_mut(info.last as usize) {
                        *link = at;
                    }
                    info.last = at;
                }
            }
            None => {
                self.codes.insert(key, self.info.len() as u32);
                self.info.push(ShapeInfo {
                    first: at,
                    last: at,
                    tokens: tokens(&display),
                    display,
                });
            }
        }
    }

    pub fn find(&self, key: &Key) -> Option<u32> {
        self.codes.get(key).copied()
    }

    /// The entries of shape `shape`, in recorded order.
    pub fn members(&self, shape: u32) -> impl Iterator<Item = usize> + '_ {
        let first = self.info.get(shape as usize).map_or(NONE, |s| s.first);
        std::iter::successors((first != NONE).then_some(first), |&e| {
            self.next.get(e as usize).copied().filter(|&n| n != NONE)
        })
        .map(|e| e as usize)
    }

    /// Every distinct shape, in order of first recording.
    pub fn all(&self) -> &[ShapeInfo] {
        &self.info
    }

    pub fn shrink(&mut self) {
        self.codes.shrink_to_fit();
        self.info.shrink_to_fit();
        self.next.shrink_to_fit();
    }
}

/// Words of a statement, lower-cased, for a rough similarity on a miss.
pub fn tokens(display: &str) -> Vec<String> {
    let mut t: Vec<String> = display
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    t.sort();
    t.dedup();
    t
}

/// Shared words over all distinct words (Jaccard), both lists sorted.
pub fn similarity(a: &[String], b: &[String]) -> f64 {
    let (mut i, mut j, mut common) = (0, 0, 0usize);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                common += 1;
                i += 1;
                j += 1;
            }
        }
    }
    let union = a.len() + b.len() - common;
    if union == 0 {
        0.0
    } else {
        common as f64 / union as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_come_in_recorded_order() {
        let mut s = Shapes::default();
        let (a, b) = ([1, 0, 0], [2, 0, 0]);
        s.push(0, None);
        s.push(1, Some((a, "select a".into())));
        s.push(2, Some((b, "select b".into())));
        s.push(3, Some((a, "ignored".into())));
        s.push(5, Some((a, "ignored".into())));
        let shape_a = s.find(&a).expect("a");
        assert_eq!(s.members(shape_a).collect::<Vec<_>>(), [1, 3, 5]);
        assert_eq!(s.members(s.find(&b).expect("b")).collect::<Vec<_>>(), [2]);
        assert_eq!(s.all()[0].display, "select a");
        assert_eq!(s.find(&[3, 0, 0]), None);
        assert_eq!(s.members(99).count(), 0);
    }
}
