//! What a recovery did with one journal, whichever recorder wrote it.

/// The outcome of replaying one journal left by a crash into the files it
/// stands for (test files for HTTP, mocks for PostgreSQL).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct JournalRecovery {
    /// A recording is still running (the journal is locked): left alone.
    pub in_use: bool,
    /// A journal was found.
    pub had_journal: bool,
    /// Files or documents written from the journal.
    pub written: u64,
    /// Records whose file or document existed already, written before the
    /// crash.
    pub already_there: u64,
    /// Records that could not be turned into anything, and why.
    pub skipped: Vec<String>,
    /// The torn tail cut from the journal: its size in bytes and what was
    /// found there.
    pub torn: Option<(u64, String)>,
}

impl JournalRecovery {
    /// True when there is nothing to tell.
    pub fn is_quiet(&self) -> bool {
        !self.in_use && !self.had_journal
    }
}
