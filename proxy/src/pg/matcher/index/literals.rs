//! The literal values of every entry, end to end in one buffer.
//!
//! Each value is its length (LEB128, one byte below 128) and its bytes.
//! An entry keeps only where its values start; they end where the next
//! entry's start, so no length or count is kept per entry.

/// Literal values, appended in entry order.
#[derive(Debug, Default)]
pub struct Literals(Vec<u8>);

impl Literals {
    /// Where the next entry's values start.
    pub fn end(&self) -> u32 {
        u32::try_from(self.0.len()).unwrap_or(u32::MAX)
    }

    /// Appends `values` and returns where they start; `None`, and nothing
    /// appended, when the buffer would pass 4 GiB.
    pub fn push(&mut self, values: &[String]) -> Option<u32> {
        let start = u32::try_from(self.0.len()).ok()?;
        let added: usize = values.iter().map(|v| v.len() + 5).sum();
        u32::try_from(self.0.len().checked_add(added)?).ok()?;
        for v in values {
            let mut len = v.len();
            while len >= 0x80 {
                self.0.push((len as u8 & 0x7f) | 0x80);
                len >>= 7;
            }
            self.0.push(len as u8);
            self.0.extend_from_slice(v.as_bytes());
        }
        Some(start)
    }

    /// The values between `start` and `end`, in order.
    pub fn get(&self, start: u32, end: u32) -> Vec<&str> {
        let mut rest = self.0.get(start as usize..end as usize).unwrap_or_default();
        let mut out = Vec::new();
        while !rest.is_empty() {
            let (mut len, mut shift) = (0usize, 0u32);
            while let Some((&b, tail)) = rest.split_first() {
                rest = tail;
                len |= usize::from(b & 0x7f).checked_shl(shift).unwrap_or(0);
                shift += 7;
                if b & 0x80 == 0 {
                    break;
                }
            }
            let (value, tail) = rest.split_at(len.min(rest.len()));
            out.push(std::str::from_utf8(value).unwrap_or_default());
            rest = tail;
        }
        out
    }

    pub fn shrink(&mut self) {
        self.0.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_back_per_entry() {
        let mut lits = Literals::default();
        let long = "x".repeat(70_000);
        let entries: Vec<Vec<String>> = vec![
            vec!["1".into(), "'projects'".into()],
            vec![],
            vec![long.clone(), String::new(), "é".into()],
            vec!["a".repeat(127), "b".repeat(128)],
        ];
        let starts: Vec<u32> = entries
            .iter()
            .map(|e| lits.push(e).expect("room"))
            .collect();
        for (n, e) in entries.iter().enumerate() {
            let end = starts.get(n + 1).copied().unwrap_or(lits.end());
            assert_eq!(lits.get(starts[n], end), *e, "entry {n}");
        }
        // One byte of length for a short value.
        assert_eq!(starts[1] - starts[0], 2 + 1 + 10);
        // A range past the end is empty, not a panic.
        assert!(lits.get(lits.end() + 5, lits.end() + 9).is_empty());
    }
}
