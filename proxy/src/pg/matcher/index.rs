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

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use super::identity::{identify, Statements};
use crate::testset::pg_mock::{FrontendMsg, Lifetime, PgMock};

/// One recorded exchange, ready to serve.
#[derive(Debug)]
pub struct Entry {
    pub mock: Arc<PgMock>,
    pub literals: Vec<String>,
    pub display: String,
    pub session: bool,
    /// The test whose window recorded it, for data mocks.
    pub test: Option<String>,
}

/// Mocks with one exact identity.
#[derive(Debug, Default)]
pub struct ExactBucket {
    /// Keyed by the interned test name (see [`Index::tests`]).
    pub by_test: HashMap<u32, Queue>,
    pub data: Queue,
    pub session: Vec<usize>,
    /// Every mock of the bucket in recorded order, consumed or not.
    pub all: Vec<usize>,
}

/// A distinct shape, for naming the nearest candidates of a miss.
#[derive(Debug)]
pub struct ShapeInfo {
    pub first: usize,
    pub tokens: Vec<String>,
}

/// The indexes, built once from the mocks.
#[derive(Debug, Default)]
pub struct Index {
    pub entries: Vec<Entry>,
    pub consumed: Vec<bool>,
    pub exact: HashMap<u128, ExactBucket>,
    pub shape: HashMap<u128, Vec<usize>>,
    /// Test names, interned: buckets hold small numbers, not strings.
    pub tests: HashMap<String, u32>,
    pub shapes: Vec<ShapeInfo>,
    pub startups: Vec<usize>,
    /// Mocks whose statements could not be resolved; kept out of the index
    /// and reported by [`Index::build`]'s caller.
    pub unindexed: Vec<String>,
}

impl Index {
    /// Indexes `mocks`, which must be in recorded order (as mocks.yaml is).
    pub fn build(mocks: Vec<PgMock>) -> Index {
        let mut index = Index::default();
        // Statement texts are resolved per recorded connection, in order.
        let mut ordered: Vec<(usize, PgMock)> = mocks.into_iter().enumerate().collect();
        ordered.sort_by_key(|(i, m)| (m.spec.connection, m.spec.position, *i));
        let mut connections: HashMap<u64, Statements> = HashMap::new();
        let mut prepared: Vec<(usize, PgMock, Option<super::identity::Identity>)> =
            Vec::with_capacity(ordered.len());
        for (i, mock) in ordered {
            let statements = connections.entry(mock.spec.connection).or_default();
            let identity = if is_startup(&mock) {
                None
            } else {
                match identify(&mock.spec.requests, statements) {
                    Ok(id) => Some(id),
                    Err(e) => {
                        tracing::warn!(mock = %mock.name, error = %e, "mock left out of the index");
                        index.unindexed.push(mock.name.clone());
                        continue;
                    }
                }
            };
            prepared.push((i, mock, identity));
        }
        prepared.sort_by_key(|(i, _, _)| *i);
        let mut shape_seen: HashSet<u128> = HashSet::new();
        for (_, mock, identity) in prepared {
            let at = index.entries.len();
            let (session, test) = match &mock.spec.lifetime {
                Lifetime::Session => (true, None),
                Lifetime::Test(t) => (false, Some(t.clone())),
                Lifetime::Unattributed => (false, None),
            };
            let Some(id) = identity else {
                index.startups.push(at);
                index.entries.push(Entry {
                    mock: Arc::new(mock),
                    literals: Vec::new(),
                    display: "startup".into(),
                    session: true,
                    test: None,
                });
                index.consumed.push(false);
                continue;
            };
            let test_id = test.as_ref().map(|t| {
                let next = index.tests.len() as u32;
                *index.tests.entry(t.clone()).or_insert(next)
            });
            let bucket = index.exact.entry(digest(&id.exact)).or_default();
            bucket.all.push(at);
            if session {
                bucket.session.push(at);
            } else {
                bucket.data.push(at);
                if let Some(t) = test_id {
                    bucket.by_test.entry(t).or_default().push(at);
                }
            }
            let shape = digest(&id.shape);
            if shape_seen.insert(shape) {
                index.shapes.push(ShapeInfo {
                    first: at,
                    tokens: tokens(&id.display),
                });
            }
            index.shape.entry(shape).or_default().push(at);
            index.entries.push(Entry {
                mock: Arc::new(mock),
                literals: id.literals,
                display: id.display,
                session,
                test,
            });
            index.consumed.push(false);
        }
        index
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
            bucket.data.rewind();
            for queue in bucket.by_test.values_mut() {
                queue.rewind();
            }
        }
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
