//! Test names as 32-bit codes.
//!
//! The recorder names tests `test-N`; such a name is coded as N itself, so
//! a big recording keeps no string per test. Any other spelling (a
//! hand-written or converted file) is kept once, coded past [`ODD`].

use std::collections::HashMap;

/// Codes from here on are given to names spelled otherwise, in turn.
const ODD: u32 = 1 << 31;
/// The two highest codes are left to callers (see `entry::SESSION`).
const LIMIT: u32 = u32::MAX - 1;

/// N when `name` is `prefix` then N written the one way it reads back.
pub fn numbered(prefix: &str, name: &str) -> Option<u32> {
    let digits = name.strip_prefix(prefix)?;
    let canonical = digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.is_empty()
        && (digits == "0" || !digits.starts_with('0'));
    digits.parse().ok().filter(|_| canonical)
}

/// Names sharing a prefix, coded.
#[derive(Debug)]
pub struct Names {
    prefix: &'static str,
    /// Codes of the names spelled otherwise.
    odd: HashMap<Box<str>, u32>,
}

impl Names {
    pub fn new(prefix: &'static str) -> Names {
        Names {
            prefix,
            odd: HashMap::new(),
        }
    }

    /// The code of `name`, given one if it has none; `None` only when
    /// every code is taken.
    pub fn intern(&mut self, name: &str) -> Option<u32> {
        if let Some(code) = self.find(name) {
            return Some(code);
        }
        let code = u32::try_from(self.odd.len())
            .ok()
            .and_then(|n| n.checked_add(ODD))
            .filter(|&c| c < LIMIT)?;
        self.odd.insert(name.into(), code);
        Some(code)
    }

    /// The code `name` has, without giving it one.
    pub fn find(&self, name: &str) -> Option<u32> {
        numbered(self.prefix, name)
            .filter(|&n| n < ODD)
            .or_else(|| self.odd.get(name).copied())
    }

    /// Gives back the spare capacity left by building.
    pub fn shrink(&mut self) {
        self.odd.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_name_has_one_code_of_its_own() {
        let mut names = Names::new("test-");
        let given = [
            "test-0",
            "test-7",
            "test-007",
            "test-",
            "test-1a",
            "test--1",
            "other",
            "",
            "test-4294967296",
            "test-2147483648",
            "test-2147483647",
            "TEST-3",
        ];
        let codes: Vec<u32> = given
            .iter()
            .map(|name| names.intern(name).expect("a code"))
            .collect();
        for (name, code) in given.iter().zip(&codes) {
            assert_eq!(names.find(name), Some(*code), "{name}");
            assert_eq!(names.intern(name), Some(*code), "{name} interned twice");
            assert!(*code < LIMIT, "{name}");
        }
        let mut distinct = codes.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), given.len());
        // Only the recorder's spelling is kept as a number.
        assert_eq!(names.find("test-7"), Some(7));
        assert_eq!(names.odd.len(), 9);
        assert_eq!(names.find("never seen"), None);
    }
}
