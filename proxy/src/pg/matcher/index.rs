//! Hash indexes over the recorded mocks.
//!
//! Every recorded exchange is filed under the hash of its exact identity and
//! under the hash of its shape. An exact bucket keeps, in recorded order,
//! the data mocks of each test, all data mocks, and the session mocks, so
//! each step of the preference order is one hash look-up plus a queue pop.
//! Consumption is a flag per mock; queues skip consumed entries lazily, so
//! a mock that sits in two queues is consumed once. Queues keep their items
//! and advance a cursor, so the whole recording can be rewound for a second
//! replay pass without rebuilding the index.
//!
//! Maps are keyed by a 128-bit digest of the identity rather than the
//! identity bytes: a probe then touches no key allocation (the look-up stays
//! flat as the recording grows), and two different identities sharing a
//! digest is about as likely as a hardware fault.
//!
//! The index is what stays in memory of a recording, so it is compact: a
//! mock read from mocks.yaml is kept as where its document lies
//! ([`Answer::Stored`]) and read again when served; names and literal
//! values sit in one arena; an identity recorded once (most of them) takes
//! a bucket of one index, not a set of queues; the readable statement text
//! is kept once per shape, for naming the nearest candidates of a miss.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use super::identity::{identify, Identity, Statements};
use crate::testset::mock_file::{DocRef, MockFile, MockSink, ReadBackError};
use crate::testset::pg_mock::{FrontendMsg, Lifetime, PgMock};

/// Where a recorded answer is.
#[derive(Debug)]
pub enum Answer {
    /// In memory: start-up mocks (matched on their parameters) and mocks
    /// converted from Keploy's documents.
    Held(Arc<PgMock>),
    /// In mocks.yaml, read again when served.
    Stored(DocRef),
}

/// A run of bytes in [`Arena`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Span {
    start: u64,
    len: u32,
}

/// Names and literal values of every entry, end to end: one allocation
/// instead of one per string.
#[derive(Debug, Default)]
pub struct Arena(Vec<u8>);

impl Arena {
    fn push(&mut self, text: &str) -> Span {
        let start = self.0.len() as u64;
        self.0.extend_from_slice(text.as_bytes());
        Span {
            start,
            len: u32::try_from(text.len()).unwrap_or(u32::MAX),
        }
    }

    /// Strings packed as length-prefixed runs.
    fn push_all(&mut self, texts: &[String]) -> Span {
        let start = self.0.len();
        for t in texts {
            let len = u32::try_from(t.len()).unwrap_or(u32::MAX);
            self.0.extend_from_slice(&len.to_le_bytes());
            self.0.extend_from_slice(&t.as_bytes()[..len as usize]);
        }
        Span {
            start: start as u64,
            len: u32::try_from(self.0.len() - start).unwrap_or(u32::MAX),
        }
    }

    fn bytes(&self, span: Span) -> &[u8] {
        let start = usize::try_from(span.start).unwrap_or(usize::MAX);
        self.0
            .get(start..start.saturating_add(span.len as usize))
            .unwrap_or_default()
    }

    pub fn str(&self, span: Span) -> &str {
        std::str::from_utf8(self.bytes(span)).unwrap_or_default()
    }

    /// What [`Arena::push_all`] packed.
    pub fn all(&self, span: Span) -> Vec<&str> {
        let mut rest = self.bytes(span);
        let mut out = Vec::new();
        while let Some((len, tail)) = rest.split_first_chunk::<4>() {
            let len = (u32::from_le_bytes(*len) as usize).min(tail.len());
            out.push(std::str::from_utf8(&tail[..len]).unwrap_or_default());
            rest = &tail[len..];
        }
        out
    }
}

/// One recorded exchange, ready to serve.
#[derive(Debug)]
pub struct Entry {
    pub answer: Answer,
    pub name: Span,
    pub literals: Span,
    pub session: bool,
    /// The interned test whose window recorded it, for data mocks.
    pub test: Option<u32>,
}

/// Mocks with one exact identity: most identities are recorded once, and
/// take one index.
#[derive(Debug)]
pub enum Bucket {
    One(usize),
    Many(Box<ExactBucket>),
}

/// Mocks with one exact identity, recorded more than once.
#[derive(Debug, Default)]
pub struct ExactBucket {
    /// Keyed by the interned test name (see [`Index::tests`]).
    pub by_test: HashMap<u32, Queue>,
    pub data: Queue,
    pub session: Vec<usize>,
    /// Every mock of the bucket in recorded order, consumed or not.
    pub all: Vec<usize>,
}

impl ExactBucket {
    fn add(&mut self, at: usize, entry: &Entry) {
        self.all.push(at);
        if entry.session {
            self.session.push(at);
        } else {
            self.data.push(at);
            if let Some(t) = entry.test {
                self.by_test.entry(t).or_default().push(at);
            }
        }
    }
}

/// A distinct shape, for naming the nearest candidates of a miss.
#[derive(Debug)]
pub struct ShapeInfo {
    pub first: usize,
    pub tokens: Vec<String>,
    /// The readable statement text of its first recording.
    pub display: String,
}

/// The indexes, built once from the mocks.
#[derive(Debug, Default)]
pub struct Index {
    pub entries: Vec<Entry>,
    pub consumed: Vec<bool>,
    pub exact: HashMap<u128, Bucket>,
    pub shape: HashMap<u128, Vec<usize>>,
    /// Test names, interned: buckets hold small numbers, not strings.
    pub tests: HashMap<String, u32>,
    pub shapes: Vec<ShapeInfo>,
    pub startups: Vec<usize>,
    /// Mocks whose statements could not be resolved; kept out of the index
    /// and reported by [`Index::build`]'s caller.
    pub unindexed: Vec<String>,
    pub arena: Arena,
    /// Where [`Answer::Stored`] answers are read from.
    pub file: Option<Arc<MockFile>>,
    shape_seen: HashSet<u128>,
    /// Statement texts per recorded connection, while building.
    connections: HashMap<u64, Statements>,
    /// Held mocks waiting for [`Index::finish`], which orders them.
    pending: Vec<PgMock>,
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
    pub fn add_held(&mut self, mocks: Vec<PgMock>) {
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
            let mock = Arc::new(mock);
            self.push(&mock, identity, Answer::Held(mock.clone()));
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
                tracing::warn!(mock = %mock.name, error = %e, "mock left out of the index");
                self.unindexed.push(mock.name.clone());
                None
            }
        }
    }

    fn push(&mut self, mock: &PgMock, identity: Option<Identity>, answer: Answer) {
        let at = self.entries.len();
        let name = self.arena.push(&mock.name);
        let Some(id) = identity else {
            self.startups.push(at);
            // Start-ups are matched on their parameters: kept whole.
            let answer = match answer {
                Answer::Stored(_) => Answer::Held(Arc::new(mock.clone())),
                held => held,
            };
            self.entries.push(Entry {
                answer,
                name,
                literals: Span::default(),
                session: true,
                test: None,
            });
            self.consumed.push(false);
            return;
        };
        let (session, test) = match &mock.spec.lifetime {
            Lifetime::Session => (true, None),
            Lifetime::Test(t) => (false, Some(t.as_str())),
            Lifetime::Unattributed => (false, None),
        };
        let test = test.map(|t| match self.tests.get(t) {
            Some(&id) => id,
            None => {
                let next = self.tests.len() as u32;
                self.tests.insert(t.to_string(), next);
                next
            }
        });
        let entry = Entry {
            answer,
            name,
            literals: self.arena.push_all(&id.literals),
            session,
            test,
        };
        match self.exact.entry(digest(&id.exact)) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(Bucket::One(at));
            }
            std::collections::hash_map::Entry::Occupied(mut o) => {
                let bucket = o.get_mut();
                if let Bucket::One(first) = *bucket {
                    let mut many = ExactBucket::default();
                    many.add(first, &self.entries[first]);
                    *bucket = Bucket::Many(Box::new(many));
                }
                if let Bucket::Many(many) = bucket {
                    many.add(at, &entry);
                }
            }
        }
        let shape = digest(&id.shape);
        if self.shape_seen.insert(shape) {
            self.shapes.push(ShapeInfo {
                first: at,
                tokens: tokens(&id.display),
                display: id.display,
            });
        }
        self.shape.entry(shape).or_default().push(at);
        self.entries.push(entry);
        self.consumed.push(false);
    }

    /// Indexes the held mocks given to the sink, then drops what only
    /// building needed.
    pub fn finish(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        self.add_held(pending);
        self.connections = HashMap::new();
        self.shape_seen = HashSet::new();
        self.entries.shrink_to_fit();
        self.consumed.shrink_to_fit();
        self.arena.0.shrink_to_fit();
    }

    /// The recorded name of entry `i`.
    pub fn name(&self, i: usize) -> &str {
        self.arena.str(self.entries[i].name)
    }

    /// The literal values of entry `i`, in order.
    pub fn literals(&self, i: usize) -> Vec<&str> {
        self.arena.all(self.entries[i].literals)
    }

    /// The whole mock of entry `i`, read back from mocks.yaml when it is
    /// not held.
    pub fn mock(&self, i: usize) -> Result<Arc<PgMock>, ReadBackError> {
        match &self.entries[i].answer {
            Answer::Held(mock) => Ok(mock.clone()),
            Answer::Stored(at) => match &self.file {
                Some(file) => file.read(at).map(Arc::new),
                None => Err(ReadBackError::Io {
                    path: "mocks.yaml".into(),
                    line: at.line,
                    source: std::io::Error::other("the file it was loaded from is not open"),
                }),
            },
        }
    }

    /// Every mock unconsumed again, every queue back at its start.
    pub fn rewind(&mut self) {
        self.consumed.fill(false);
        self.rewind_queues();
    }

    /// Which mocks are consumed, to be put back by [`Index::restore`].
    pub fn checkpoint(&self) -> Vec<bool> {
        self.consumed.clone()
    }

    /// Consumption as it was at a checkpoint. Queues start again from their
    /// front and skip what is consumed, so mocks consumed since the
    /// checkpoint are served again.
    pub fn restore(&mut self, consumed: &[bool]) {
        if consumed.len() == self.consumed.len() {
            self.consumed.copy_from_slice(consumed);
        }
        self.rewind_queues();
    }

    fn rewind_queues(&mut self) {
        for bucket in self.exact.values_mut() {
            if let Bucket::Many(bucket) = bucket {
                bucket.data.rewind();
                for queue in bucket.by_test.values_mut() {
                    queue.rewind();
                }
            }
        }
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
            self.push(&mock, identity, Answer::Stored(at));
        }
    }

    fn held(&mut self, mock: PgMock) {
        // Keploy's converted mocks come after every stored one, on
        // connections of their own; [`Index::finish`] orders them.
        self.pending.push(mock);
    }
}

/// Mock indexes in recorded order, read front to back.
#[derive(Debug, Default)]
pub struct Queue {
    items: Vec<usize>,
    next: usize,
}

impl Queue {
    fn push(&mut self, i: usize) {
        self.items.push(i);
    }

    fn rewind(&mut self) {
        self.next = 0;
    }

    /// The first unconsumed mock, now consumed. Amortised O(1): the cursor
    /// only moves forward past mocks another queue consumed.
    pub fn take(&mut self, consumed: &mut [bool]) -> Option<usize> {
        while let Some(&i) = self.items.get(self.next) {
            self.next += 1;
            if !consumed[i] {
                consumed[i] = true;
                return Some(i);
            }
        }
        None
    }
}

fn is_startup(mock: &PgMock) -> bool {
    matches!(
        mock.spec.requests.first(),
        Some(FrontendMsg::Startup { .. })
    )
}

/// A 128-bit digest of an identity key: two SipHash passes with
/// different prefixes. In memory only, so stability across Rust releases
/// does not matter.
pub fn digest(key: &[u8]) -> u128 {
    let mut a = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut a);
    let mut b = std::collections::hash_map::DefaultHasher::new();
    0x5eed_u16.hash(&mut b);
    key.hash(&mut b);
    (u128::from(a.finish()) << 64) | u128::from(b.finish())
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
