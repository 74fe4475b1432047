//! The indexes over the recorded mocks.
//!
//! Every recorded exchange is filed under the digest of its exact identity
//! ([`exact`]) and under the digest of its shape ([`shapes`]), so each step
//! of the preference order is a binary search or a short walk, never a scan
//! of the recording. Consumption is a bit per mock; the index can be
//! rewound for a second replay pass without rebuilding it.
//!
//! Digests stand for the identity bytes: a probe touches no key
//! allocation, and two different identities sharing 96 bits of digest is
//! about as likely as a hardware fault.
//!
//! The index is what stays in memory of a recording, so a mock costs a few
//! dozen bytes: a mock read from mocks.yaml is kept as where its document
//! lies ([`AnswerAt::Stored`]) and read again when served; its name is
//! implied by its position ([`mock_names`]), its test is a small number
//! ([`names`]); its literal values sit in one buffer ([`literals`]); only
//! the readable text of each distinct shape is kept as a string.

pub mod consumed;
mod entry;
mod exact;
mod literals;
mod mock_names;
mod names;
mod shapes;

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use super::identity::{identify, Identity, Statements};
use crate::testset::mock_file::{DocRef, MockFile, MockSink, ReadBackError};
use crate::testset::pg_mock::{FrontendMsg, Lifetime, PgMock};
use consumed::Consumed;
pub use entry::AnswerAt;
use entry::{Entry, SESSION, UNATTRIBUTED};
use exact::ExactIndex;
use literals::Literals;
use mock_names::MockNames;
use names::Names;
use shapes::Shapes;
pub use shapes::{similarity, tokens, ShapeInfo};

/// 96 bits of an identity's digest (see [`digest`]).
pub type Key = [u32; 3];

/// The indexes, built once from the mocks.
#[derive(Debug)]
pub struct Index {
    entries: Vec<Entry>,
    consumed: Consumed,
    exact: ExactIndex,
    shapes: Shapes,
    literals: Literals,
    names: MockNames,
    tests: Names,
    /// Answers kept in memory: start-ups (matched on their parameters) and
    /// mocks converted from Keploy's documents.
    held: Vec<Arc<PgMock>>,
    startups: Vec<usize>,
    /// Mocks that could not be indexed; reported by the caller.
    unindexed: Vec<String>,
    /// Where [`AnswerAt::Stored`] answers are read from.
    file: Option<Arc<MockFile>>,
    /// Statement texts per recorded connection, while building.
    connections: HashMap<u64, Statements>,
    /// Held mocks waiting for [`Index::finish`], which orders them.
    pending: Vec<PgMock>,
}

impl Default for Index {
    fn default() -> Index {
        Index {
            entries: Vec::new(),
            consumed: Consumed::default(),
            exact: ExactIndex::default(),
            shapes: Shapes::default(),
            literals: Literals::default(),
            names: MockNames::default(),
            tests: Names::new("test-"),
            held: Vec::new(),
            startups: Vec::new(),
            unindexed: Vec::new(),
            file: None,
            connections: HashMap::new(),
            pending: Vec::new(),
        }
    }
}

/// An answer on its way into the index.
enum Answer {
    Held(PgMock),
    Stored(PgMock, DocRef),
}

impl Answer {
    fn mock(&self) -> &PgMock {
        match self {
            Answer::Held(m) | Answer::Stored(m, _) => m,
        }
    }
}

impl Index {
    /// Indexes `mocks`, which must be in recorded order (as mocks.yaml is).
    pub fn build(mocks: Vec<PgMock>) -> Index {
        let mut index = Index::default();
        index.add_held(mocks);
        index.finish();
        index
    }

    /// Adds mocks kept in memory. Statement texts are resolved per
    /// recorded connection in position order; entries keep the given
    /// order.
    fn add_held(&mut self, mocks: Vec<PgMock>) {
        let mut ordered: Vec<(usize, PgMock)> = mocks.into_iter().enumerate().collect();
        ordered.sort_by_key(|(i, m)| (m.spec.connection, m.spec.position, *i));
        let mut prepared: Vec<(usize, PgMock, Option<Identity>)> =
            Vec::with_capacity(ordered.len());
        for (i, mock) in ordered {
            if let Some(identity) = self.identify(&mock) {
                prepared.push((i, mock, identity));
            }
        }
        prepared.sort_by_key(|(i, _, _)| *i);
        for (_, mock, identity) in prepared {
            self.push(Answer::Held(mock), identity);
        }
    }

    /// The identity of `mock` on its connection: `Some(None)` for a
    /// start-up, `None` when it cannot be indexed (noted in `unindexed`).
    fn identify(&mut self, mock: &PgMock) -> Option<Option<Identity>> {
        if is_startup(mock) {
            return Some(None);
        }
        let statements = self.connections.entry(mock.spec.connection).or_default();
        match identify(&mock.spec.requests, statements) {
            Ok(id) => Some(Some(id)),
            Err(e) => {
                self.leave_out(&mock.name, &e.to_string());
                None
            }
        }
    }

    fn leave_out(&mut self, name: &str, why: &str) {
        tracing::warn!(mock = %name, error = %why, "mock left out of the index");
        self.unindexed.push(name.to_string());
    }

    fn push(&mut self, answer: Answer, identity: Option<Identity>) {
        let mock = answer.mock();
        // Entry numbers are 32-bit, the highest kept for "none".
        let Some(at) = u32::try_from(self.entries.len())
            .ok()
            .filter(|&n| n < u32::MAX - 1)
        else {
            let name = mock.name.clone();
            return self.leave_out(&name, "more mocks than one index holds");
        };
        let lifetime = match (&identity, &mock.spec.lifetime) {
            (None, _) | (_, Lifetime::Session) => Some(SESSION),
            (_, Lifetime::Unattributed) => Some(UNATTRIBUTED),
            (_, Lifetime::Test(t)) => self.tests.intern(t),
        };
        let literals = match &identity {
            Some(id) => self.literals.push(&id.literals),
            None => Some(self.literals.end()),
        };
        let (Some(lifetime), Some(literals)) = (lifetime, literals) else {
            let name = mock.name.clone();
            return self.leave_out(&name, "too many distinct tests or literal values to index");
        };
        self.names.push(at, &mock.name);
        let answer = match answer {
            // Start-ups are matched on their parameters: kept whole.
            Answer::Stored(mock, _) if identity.is_none() => self.hold(mock),
            Answer::Stored(_, doc) => AnswerAt::Stored(doc),
            Answer::Held(mock) => self.hold(mock),
        };
        self.entries.push(Entry::new(answer, literals, lifetime));
        self.consumed.push();
        match identity {
            None => {
                self.startups.push(at as usize);
                self.shapes.push(at, None);
            }
            Some(id) => {
                self.exact.push(digest(&id.exact), at);
                self.shapes.push(at, Some((digest(&id.shape), id.display)));
            }
        }
    }

    fn hold(&mut self, mock: PgMock) -> AnswerAt {
        self.held.push(Arc::new(mock));
        AnswerAt::Held(self.held.len() - 1)
    }

    /// Indexes the held mocks given to the sink, sorts what is looked up
    /// by binary search, and drops what only building needed.
    pub fn finish(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        self.add_held(pending);
        self.connections = HashMap::new();
        self.entries.shrink_to_fit();
        self.consumed.shrink();
        self.literals.shrink();
        self.names.shrink();
        self.tests.shrink();
        self.shapes.shrink();
        self.exact.finish(&self.entries);
    }

    /// How many mocks are indexed.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Names of the mocks that could not be indexed.
    pub fn unindexed(&self) -> &[String] {
        &self.unindexed
    }

    /// The recorded start-ups, in recorded order.
    pub fn startups(&self) -> Vec<Arc<PgMock>> {
        self.startups
            .iter()
            .filter_map(|&i| self.mock(i).ok())
            .collect()
    }

    /// The code of test `name`, if it recorded any mock.
    pub fn test_code(&self, name: &str) -> Option<u32> {
        self.tests.find(name)
    }

    /// See [`ExactIndex::take`].
    pub fn take_exact(&mut self, key: &Key, test: Option<u32>) -> Option<(usize, bool)> {
        self.exact
            .take(key, test, &self.entries, &mut self.consumed)
    }

    /// The shape filed under `key`.
    pub fn shape(&self, key: &Key) -> Option<u32> {
        self.shapes.find(key)
    }

    /// The entries of `shape`, in recorded order.
    pub fn shape_members(&self, shape: u32) -> impl Iterator<Item = usize> + '_ {
        self.shapes.members(shape)
    }

    /// Every distinct shape, in order of first recording.
    pub fn shapes(&self) -> &[ShapeInfo] {
        self.shapes.all()
    }

    pub fn is_session(&self, i: usize) -> bool {
        self.entries.get(i).is_some_and(Entry::is_session)
    }

    /// The code of the test whose window recorded entry `i`.
    pub fn test_of(&self, i: usize) -> Option<u32> {
        self.entries.get(i).and_then(Entry::test)
    }

    pub fn is_consumed(&self, i: usize) -> bool {
        self.consumed.get(i)
    }

    pub fn consume(&mut self, i: usize) {
        self.consumed.set(i);
    }

    /// The recorded name of entry `i`.
    pub fn name(&self, i: usize) -> Cow<'_, str> {
        match self.entries.get(i) {
            Some(_) => self.names.get(i as u32),
            None => Cow::Borrowed(""),
        }
    }

    /// The literal values of entry `i`, in order.
    pub fn literals(&self, i: usize) -> Vec<&str> {
        let Some(e) = self.entries.get(i) else {
            return Vec::new();
        };
        let end = self
            .entries
            .get(i + 1)
            .map_or(self.literals.end(), |next| next.literals);
        self.literals.get(e.literals, end)
    }

    /// The whole mock of entry `i`, read back from mocks.yaml when it is
    /// not held.
    pub fn mock(&self, i: usize) -> Result<Arc<PgMock>, ReadBackError> {
        let not_loaded = |line: u32, why: &str| ReadBackError::Io {
            path: "mocks.yaml".into(),
            line,
            source: std::io::Error::other(why.to_string()),
        };
        let Some(entry) = self.entries.get(i) else {
            return Err(not_loaded(0, "no such mock in the index"));
        };
        match entry.answer() {
            AnswerAt::Held(h) => self
                .held
                .get(h)
                .cloned()
                .ok_or_else(|| not_loaded(0, "no such mock in the index")),
            AnswerAt::Stored(at) => match &self.file {
                Some(file) => {
                    let mock = file.read(&at)?;
                    // Another mock where the loaded one was: the file
                    // changed, whatever its digest says.
                    if mock.name != self.name(i) {
                        return Err(ReadBackError::Changed {
                            path: file.path().to_path_buf(),
                            line: at.line,
                        });
                    }
                    Ok(Arc::new(mock))
                }
                None => Err(not_loaded(
                    at.line,
                    "the file it was loaded from is not open",
                )),
            },
        }
    }

    /// Every mock unconsumed again, every search back at its start.
    pub fn rewind(&mut self) {
        self.consumed.clear();
        self.exact.rewind();
    }

    /// Which mocks are consumed, to be put back by [`Index::restore`].
    pub fn checkpoint(&self) -> Consumed {
        self.consumed.clone()
    }

    /// Consumption as it was at a checkpoint. Searches start again from
    /// their front and skip what is consumed, so mocks consumed since the
    /// checkpoint are served again.
    pub fn restore(&mut self, consumed: &Consumed) {
        self.consumed.copy_from(consumed);
        self.exact.rewind();
    }
}

/// Builds the index as mocks.yaml is read: each mock is identified in file
/// order (its connection's earlier exchanges came before it, as the
/// recorder writes them) and only its place in the file is kept.
impl MockSink for Index {
    fn open(&mut self, file: Arc<MockFile>) {
        self.file = Some(file);
    }

    fn stored(&mut self, mock: PgMock, at: DocRef) {
        if let Some(identity) = self.identify(&mock) {
            self.push(Answer::Stored(mock, at), identity);
        }
    }

    fn held(&mut self, mock: PgMock) {
        // Keploy's converted mocks come after every stored one, on
        // connections of their own; [`Index::finish`] orders them.
        self.pending.push(mock);
    }
}

fn is_startup(mock: &PgMock) -> bool {
    matches!(
        mock.spec.requests.first(),
        Some(FrontendMsg::Startup { .. })
    )
}

/// A 96-bit digest of an identity key, from two SipHash passes with
/// different prefixes. In memory only, so stability across Rust releases
/// does not matter.
pub fn digest(key: &[u8]) -> Key {
    let mut a = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut a);
    let mut b = std::collections::hash_map::DefaultHasher::new();
    0x5eed_u16.hash(&mut b);
    key.hash(&mut b);
    let (a, b) = (a.finish(), b.finish());
    [(a >> 32) as u32, a as u32, (b >> 32) as u32]
}

#[cfg(test)]
mod tests;
