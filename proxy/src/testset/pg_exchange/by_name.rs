//! Prepared statements or portals of one connection, by name.
//!
//! Drivers run almost every query through the unnamed statement and portal
//! (`""`), so that one is kept in a field of its own rather than in the map.
//! Besides skipping a hash, this avoids comparing two empty strings: an
//! empty `String` points nowhere, and with the AVX-512 `memcmp` glibc picks
//! on some CPUs comparing two such pointers costs over 100 ns a call
//! (measured; most likely a masked load from an address with no page
//! behind it), several times per exchange.

use std::collections::HashMap;

/// A map looked up for every message: a hasher faster than std's default,
/// still seeded per process.
pub(crate) type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

pub(crate) struct ByName<T> {
    unnamed: Option<T>,
    named: FastMap<String, T>,
}

impl<T> Default for ByName<T> {
    fn default() -> Self {
        ByName {
            unnamed: None,
            named: FastMap::default(),
        }
    }
}

impl<T> ByName<T> {
    pub fn get(&self, name: &str) -> Option<&T> {
        if name.is_empty() {
            self.unnamed.as_ref()
        } else {
            self.named.get(name)
        }
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut T> {
        if name.is_empty() {
            self.unnamed.as_mut()
        } else {
            self.named.get_mut(name)
        }
    }

    pub fn insert(&mut self, name: &str, value: T) {
        if name.is_empty() {
            self.unnamed = Some(value);
        } else {
            self.named.insert(name.to_owned(), value);
        }
    }

    pub fn remove(&mut self, name: &str) {
        if name.is_empty() {
            self.unnamed = None;
        } else {
            self.named.remove(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unnamed_and_named_entries_are_kept_apart() {
        let mut by_name = ByName::default();
        by_name.insert("", 1);
        by_name.insert("s1", 2);
        assert_eq!(by_name.get(""), Some(&1));
        assert_eq!(by_name.get("s1"), Some(&2));
        if let Some(v) = by_name.get_mut("") {
            *v = 3;
        }
        by_name.insert("s1", 4);
        assert_eq!((by_name.get(""), by_name.get("s1")), (Some(&3), Some(&4)));
        by_name.remove("");
        assert_eq!((by_name.get(""), by_name.get("s1")), (None, Some(&4)));
        by_name.remove("s1");
        assert_eq!(by_name.get("s1"), None);
        assert_eq!(by_name.get("s2"), None);
    }
}
