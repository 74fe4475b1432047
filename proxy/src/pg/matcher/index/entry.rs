//! One recorded exchange as the index keeps it: where its answer is, its
//! lifetime as a small number, and where its literal values start.

use crate::testset::mock_file::DocRef;

/// Lifetime code of a session mock (reusable by every test).
pub const SESSION: u32 = u32::MAX;
/// Lifetime code of a data mock recorded outside any test's window.
pub const UNATTRIBUTED: u32 = u32::MAX - 1;

/// Where an entry's answer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerAt {
    /// In the index's held mocks, at this position.
    Held(usize),
    /// In mocks.yaml, read again when served.
    Stored(DocRef),
}

/// One indexed mock, 28 bytes. Packed to 4-byte alignment: the one 64-bit
/// field would otherwise pad it to 32, and there is one per mock.
#[derive(Debug, Clone, Copy)]
#[repr(C, packed(4))]
pub struct Entry {
    /// The document's byte offset, or the position in the held mocks when
    /// `len` is 0 (a stored document is never empty).
    offset: u64,
    digest: u32,
    len: u32,
    line: u32,
    /// Where its literal values start in [`super::literals::Literals`].
    pub literals: u32,
    /// A test's code, [`SESSION`] or [`UNATTRIBUTED`].
    pub lifetime: u32,
}

impl Entry {
    pub fn new(answer: AnswerAt, literals: u32, lifetime: u32) -> Entry {
        let (offset, digest, len, line) = match answer {
            AnswerAt::Stored(at) => (at.offset, at.digest, at.len, at.line),
            AnswerAt::Held(i) => (i as u64, 0, 0, 0),
        };
        Entry {
            offset,
            digest,
            len,
            line,
            literals,
            lifetime,
        }
    }

    pub fn answer(&self) -> AnswerAt {
        // Fields of a packed struct are read by value.
        let (offset, len) = (self.offset, self.len);
        if len == 0 {
            return AnswerAt::Held(usize::try_from(offset).unwrap_or(usize::MAX));
        }
        AnswerAt::Stored(DocRef {
            offset,
            len,
            line: self.line,
            digest: self.digest,
        })
    }

    pub fn is_session(&self) -> bool {
        self.lifetime == SESSION
    }

    /// The code of the test whose window recorded it.
    pub fn test(&self) -> Option<u32> {
        let lifetime = self.lifetime;
        (lifetime < UNATTRIBUTED).then_some(lifetime)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_gives_back_what_it_was_made_of() {
        let at = DocRef {
            offset: 5_000_000_000,
            len: 7,
            line: 12,
            digest: u32::MAX - 3,
        };
        let e = Entry::new(AnswerAt::Stored(at), 9, UNATTRIBUTED);
        assert_eq!(e.answer(), AnswerAt::Stored(at));
        assert_eq!((e.test(), e.is_session()), (None, false));
        let e = Entry::new(AnswerAt::Held(4), 0, SESSION);
        assert_eq!(e.answer(), AnswerAt::Held(4));
        assert_eq!((e.test(), e.is_session()), (None, true));
        assert_eq!(Entry::new(AnswerAt::Held(0), 0, 17).test(), Some(17));
        assert_eq!(std::mem::size_of::<Entry>(), 28);
    }
}
