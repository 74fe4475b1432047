//! The index against a plain model of the matching rules it implements:
//! hash maps of queues, one per identity and per test, as the matcher
//! worked before its index was packed into sorted arrays.

use std::collections::HashMap;

use chrono::Utc;

use super::*;
use crate::test_rng::Rng;
use crate::testset::pg_mock::{BackendMsg, MockSpec};

/// Mocks in recorded order, read front to back past consumed ones.
#[derive(Default)]
struct Queue {
    items: Vec<usize>,
    next: usize,
}

impl Queue {
    fn take(&mut self, consumed: &mut [bool]) -> Option<usize> {
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

#[derive(Default)]
struct Bucket {
    by_test: HashMap<String, Queue>,
    data: Queue,
    session: Vec<usize>,
    all: Vec<usize>,
}

#[derive(Default)]
struct Model {
    session: Vec<bool>,
    consumed: Vec<bool>,
    buckets: HashMap<Vec<u8>, Bucket>,
}

impl Model {
    fn new(mocks: &[PgMock]) -> Model {
        let mut m = Model::default();
        for (i, mock) in mocks.iter().enumerate() {
            let startup = is_startup(mock);
            let session = startup || mock.spec.lifetime == Lifetime::Session;
            m.session.push(session);
            m.consumed.push(false);
            if startup {
                continue;
            }
            let id = identify(&mock.spec.requests, &mut Statements::new()).expect("identity");
            let b = m.buckets.entry(id.exact).or_default();
            b.all.push(i);
            if session {
                b.session.push(i);
                continue;
            }
            b.data.items.push(i);
            if let Lifetime::Test(t) = &mock.spec.lifetime {
                b.by_test.entry(t.clone()).or_default().items.push(i);
            }
        }
        m
    }

    fn take(&mut self, exact: &[u8], test: Option<&str>) -> Option<(usize, bool)> {
        let b = self.buckets.get_mut(exact)?;
        if let [i] = b.all[..] {
            if self.session[i] {
                return Some((i, false));
            }
            let reused = self.consumed[i];
            self.consumed[i] = true;
            return Some((i, reused));
        }
        test.and_then(|t| b.by_test.get_mut(t))
            .and_then(|q| q.take(&mut self.consumed))
            .or_else(|| b.session.first().copied())
            .or_else(|| b.data.take(&mut self.consumed))
            .map(|i| (i, false))
            .or_else(|| b.all.last().map(|&i| (i, true)))
    }

    fn rewind_queues(&mut self) {
        for b in self.buckets.values_mut() {
            b.data.next = 0;
            for q in b.by_test.values_mut() {
                q.next = 0;
            }
        }
    }
}

fn mock(n: usize, lifetime: Lifetime, query: &str) -> PgMock {
    let requests = if query.is_empty() {
        vec![FrontendMsg::Startup {
            protocol: "3.0".into(),
            parameters: Default::default(),
        }]
    } else {
        vec![FrontendMsg::Query {
            query: query.into(),
        }]
    };
    PgMock::new(
        if n % 11 == 5 {
            format!("odd name {n}")
        } else {
            format!("mock-{n}")
        },
        MockSpec {
            connection: 1,
            position: n as u64,
            lifetime,
            startup: Default::default(),
            request_timestamp: Utc::now(),
            response_timestamp: Utc::now(),
            requests,
            responses: vec![BackendMsg::ReadyForQuery { status: 'I' }],
        },
    )
}

const QUERIES: &[&str] = &[
    "BEGIN",
    "SELECT 1",
    "SELECT * FROM t WHERE id = 1",
    "SELECT * FROM t WHERE id = 2",
    "SELECT * FROM t WHERE id = 3",
    "UPDATE t SET v = 'x' WHERE id = 1",
];
const TESTS: &[&str] = &["test-1", "test-2", "test-3", "a test", "test-01"];

fn lifetime(rng: &mut Rng) -> Lifetime {
    match rng.below(6) {
        0 => Lifetime::Session,
        1 => Lifetime::Unattributed,
        _ => Lifetime::Test(rng.pick(TESTS).to_string()),
    }
}

fn recording(rng: &mut Rng) -> Vec<PgMock> {
    let n = 1 + rng.below(60);
    (0..n)
        .map(|i| {
            let query = if rng.chance(15) {
                ""
            } else {
                *rng.pick(QUERIES)
            };
            mock(i, lifetime(rng), query)
        })
        .collect()
}

fn exact(query: &str) -> Vec<u8> {
    let q = FrontendMsg::Query {
        query: query.into(),
    };
    identify(&[q], &mut Statements::new())
        .expect("identity")
        .exact
}

/// Random look-ups, consumptions, checkpoints and rewinds give what the
/// model gives, step by step.
#[test]
fn lookups_match_the_queue_model() {
    for seed in 1..200 {
        let mut rng = Rng::new(seed);
        let mocks = recording(&mut rng);
        let mut model = Model::new(&mocks);
        let mut index = Index::build(mocks.clone());
        assert_eq!(index.len(), mocks.len(), "seed {seed}");
        let mut saved = (index.checkpoint(), model.consumed.clone());
        for step in 0..300 {
            let what = format!("seed {seed} step {step}");
            match rng.below(20) {
                0 => {
                    index.rewind();
                    model.consumed.fill(false);
                    model.rewind_queues();
                }
                1 => saved = (index.checkpoint(), model.consumed.clone()),
                2 => {
                    index.restore(&saved.0);
                    model.consumed.clone_from(&saved.1);
                    model.rewind_queues();
                }
                3 => {
                    // A same-shape fallback consumes a data mock directly.
                    let i = rng.below(mocks.len());
                    if !index.is_session(i) {
                        index.consume(i);
                        model.consumed[i] = true;
                    }
                }
                _ => {
                    let query = *rng.pick(QUERIES);
                    let test = (!rng.chance(4)).then(|| *rng.pick(TESTS));
                    let code = test.and_then(|t| index.test_code(t));
                    let got = index.take_exact(&digest(&exact(query)), code);
                    let want = model.take(&exact(query), test);
                    assert_eq!(got, want, "{what}: {query} in {test:?}");
                }
            }
            for i in 0..mocks.len() {
                assert_eq!(index.is_consumed(i), model.consumed[i], "{what}: mock {i}");
            }
        }
    }
}

#[test]
fn entries_keep_names_tests_and_literals() {
    let mocks = vec![
        mock(0, Lifetime::Session, ""),
        mock(1, Lifetime::Test("test-2".into()), "SELECT 'a', 7"),
        mock(5, Lifetime::Test("a test".into()), "SELECT 1"),
        mock(3, Lifetime::Unattributed, "BEGIN"),
    ];
    let index = Index::build(mocks.clone());
    for (i, m) in mocks.iter().enumerate() {
        assert_eq!(index.name(i), m.name);
        assert_eq!(*index.mock(i).expect("held"), *m);
    }
    assert_eq!(index.literals(1), ["'a'", "7"]);
    assert!(index.literals(3).is_empty());
    assert_eq!(index.test_of(1), index.test_code("test-2"));
    assert_eq!(index.test_of(2), index.test_code("a test"));
    assert_eq!(index.test_of(3), None);
    assert_eq!(
        index.test_code("test-9"),
        Some(9),
        "a test that recorded nothing"
    );
    assert_eq!(index.test_code("another"), None);
    assert!(index.is_session(0) && !index.is_session(3));
    assert_eq!(index.startups().len(), 1);
    // Past the end: nothing, not a panic.
    assert_eq!(index.name(99), "");
    assert!(index.literals(99).is_empty());
    assert!(index.mock(99).is_err());
}
