//! Which recording answers a live exchange.
//!
//! Matching preserves bind semantics: a simple Query is identified by its
//! full text with every literal, an extended exchange by its statement texts
//! and Bind values (see [`identity`]). Look-up is a binary search over
//! digests, never a scan of the mocks, in this order of preference:
//!
//! 1. exact identity, recorded in the window of the test being replayed;
//! 2. exact identity, a session mock (reusable);
//! 3. exact identity, any unconsumed data mock, in recorded order;
//! 4. exact identity, every recording consumed: the last one is reused
//!    (reported as a fallback when the exchange executes something; a
//!    statement prepared again by a pool's extra connection is not);
//! 5. the same shape (literals and parameters abstracted), scored by how
//!    many literal values agree; reported with the values that differ;
//! 6. otherwise a miss, answered with SQLSTATE [`MISS_SQLSTATE`] naming
//!    the nearest recorded statements.
//!
//! Data mocks (recorded inside a test's window or outside any) are consumed
//! once, so a repeated identical query gets the next recorded answer;
//! session mocks are reusable.
//!
//! [`MatchStrategy::CollapseLiterals`] deliberately reproduces the
//! "bind-collapse" regression (literals normalised away, the first recording
//! served to every variant) so the test suite can prove it catches it.

pub mod identity;
mod index;
pub mod lexer;
pub mod usage;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

pub use identity::{identify, Identity, IdentityError, Statements};
use index::consumed::Consumed;
pub use index::Index;
use index::{digest, similarity, tokens};
pub use usage::{Fallback, FallbackReason, LiteralDiff, Miss, TestUsage};

use crate::testset::pg_mock::PgMock;

/// SQLSTATE of a recplay miss. Class `RP` lies in the range PostgreSQL
/// leaves to implementations (classes starting with I–Z), so no server
/// error can be mistaken for it.
pub const MISS_SQLSTATE: &str = "RP001";

/// SQLSTATE of an answer that could not be read back from mocks.yaml
/// (the file changed or was cut after it was loaded).
pub const UNREADABLE_SQLSTATE: &str = "RP002";

/// How many nearest candidates a miss names.
const MISS_CANDIDATES: usize = 3;

/// How many distinct shapes a miss compares against: a miss is an error
/// path, but it must stay cheap even for a huge recording.
const MISS_SHAPES_COMPARED: usize = 20_000;

/// How literals take part in matching.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MatchStrategy {
    /// Literals and Bind values are part of the identity (the product).
    #[default]
    Exact,
    /// Literals normalised away and the first recording served for every
    /// variant. Wrong on purpose: exists only so tests can prove that they
    /// detect the bind-collapse regression.
    CollapseLiterals,
}

/// The answer chosen for an exchange.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// A recording answers; `fallback` says so when it is not an unused
    /// exact match.
    Answer {
        /// The recording whose responses are replayed.
        mock: Arc<PgMock>,
        /// Set when the answer is not an unused exact match.
        fallback: Option<Fallback>,
    },
    /// Nothing recorded answers.
    Miss(Miss),
    /// A recording answers, but its document in mocks.yaml is no longer
    /// what was loaded (the file changed or was cut since).
    Unreadable(String),
}

/// The mocks of one test set, indexed, with what each test used.
#[derive(Debug)]
pub struct Matcher {
    index: Index,
    strategy: MatchStrategy,
    /// Per test, mocks by index: no allocation per served exchange.
    usage: HashMap<String, UsageLog>,
    outside: UsageLog,
}

/// Which mocks were consumed at one moment (see [`Matcher::checkpoint`]).
#[derive(Debug, Clone)]
pub struct Checkpoint(Consumed);

/// What one test used, as recorded while serving.
#[derive(Debug, Default)]
struct UsageLog {
    mocks: Vec<usize>,
    misses: Vec<Miss>,
    fallbacks: Vec<Fallback>,
}

/// A decision before it is logged.
enum Choice {
    Entry(usize, Option<Fallback>),
    Miss(Miss),
}

impl Matcher {
    /// Indexes `mocks` (in recorded order, as loaded from mocks.yaml).
    pub fn new(mocks: Vec<PgMock>, strategy: MatchStrategy) -> Matcher {
        Matcher::from_index(Index::build(mocks), strategy)
    }

    /// A matcher over an index built while loading (see
    /// [`crate::testset::mock_file::MockSink`]): answers are read from
    /// mocks.yaml when served.
    pub fn from_index(mut index: Index, strategy: MatchStrategy) -> Matcher {
        index.finish();
        Matcher {
            index,
            strategy,
            usage: HashMap::new(),
            outside: UsageLog::default(),
        }
    }

    /// Names of recorded mocks that could not be indexed (a Bind to a
    /// statement the recording never prepared).
    pub fn unindexed(&self) -> &[String] {
        self.index.unindexed()
    }

    /// The recorded startup whose parameters best match `params`: all equal,
    /// else the same user and database, else the first one.
    pub fn startup(&self, params: &BTreeMap<String, String>) -> Option<Arc<PgMock>> {
        let startups = self.index.startups();
        let same = |key: &str, m: &PgMock| m.spec.startup.get(key) == params.get(key);
        startups
            .iter()
            .find(|m| *m.spec.startup == *params)
            .or_else(|| {
                startups
                    .iter()
                    .find(|m| same("user", m) && same("database", m))
            })
            .or_else(|| startups.first())
            .cloned()
    }

    /// Chooses the answer for a live exchange while `test` is replayed, and
    /// records it in that test's usage.
    pub fn find(&mut self, live: &Identity, test: Option<&str>) -> Outcome {
        let choice = match self.strategy {
            MatchStrategy::Exact => self.find_exact(live, test),
            MatchStrategy::CollapseLiterals => self.find_collapsed(live),
        };
        let log = self.log(test);
        match choice {
            Choice::Entry(i, fallback) => {
                log.mocks.push(i);
                if let Some(f) = &fallback {
                    log.fallbacks.push(f.clone());
                }
                match self.index.mock(i) {
                    Ok(mock) => Outcome::Answer { mock, fallback },
                    Err(e) => {
                        let message = e.to_string();
                        let miss = Miss {
                            query: live.display.clone(),
                            candidates: vec![format!("{}: {message}", self.index.name(i))],
                        };
                        self.log(test).misses.push(miss);
                        Outcome::Unreadable(message)
                    }
                }
            }
            Choice::Miss(miss) => {
                log.misses.push(miss.clone());
                Outcome::Miss(miss)
            }
        }
    }

    fn log(&mut self, test: Option<&str>) -> &mut UsageLog {
        let Some(test) = test else {
            return &mut self.outside;
        };
        if !self.usage.contains_key(test) {
            self.usage.insert(test.to_string(), UsageLog::default());
        }
        self.usage.get_mut(test).unwrap_or(&mut self.outside)
    }

    fn report(&self, log: Option<&UsageLog>) -> TestUsage {
        let Some(log) = log else {
            return TestUsage::default();
        };
        TestUsage {
            mocks: log
                .mocks
                .iter()
                .map(|&i| self.index.name(i).to_string())
                .collect(),
            misses: log.misses.clone(),
            fallbacks: log.fallbacks.clone(),
        }
    }

    /// Starts the recording over: every data mock unconsumed again, for a
    /// second replay pass (noise detection replays each test twice). Usage
    /// already noted is kept.
    pub fn rewind(&mut self) {
        self.index.rewind();
    }

    /// What is consumed now, for [`Matcher::restore`].
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint(self.index.checkpoint())
    }

    /// Consumption as it was at `checkpoint`: replaying a test a second
    /// time from there sees the answers its first pass saw. Usage already
    /// noted is kept.
    pub fn restore(&mut self, checkpoint: &Checkpoint) {
        self.index.restore(&checkpoint.0);
    }

    /// Notes a fallback found after the look-up (COPY rows that differ).
    pub fn note_fallback(&mut self, test: Option<&str>, fallback: Fallback) {
        self.log(test).fallbacks.push(fallback);
    }

    /// What `test` used so far; empty when it touched no database.
    pub fn usage_for(&self, test: &str) -> TestUsage {
        self.report(self.usage.get(test))
    }

    /// What exchanges outside any test's window used (app start-up).
    pub fn usage_outside_tests(&self) -> TestUsage {
        self.report(Some(&self.outside))
    }

    fn find_exact(&mut self, live: &Identity, test: Option<&str>) -> Choice {
        let index = &mut self.index;
        let test_id = test.and_then(|t| index.test_code(t));
        let found = index.take_exact(&digest(&live.exact), test_id);
        if let Some((i, reused)) = found {
            // Preparing a statement again (a pool's extra connection)
            // has the same answer whatever the data: nothing to report.
            if !reused || !live.executes {
                return Choice::Entry(i, None);
            }
            let fallback = Fallback {
                query: live.display.clone(),
                mock: index.name(i).to_string(),
                reason: FallbackReason::Reused,
                differing: Vec::new(),
            };
            return Choice::Entry(i, Some(fallback));
        }
        if let Some(i) = self.best_same_shape(live, test) {
            if !self.index.is_session(i) {
                self.index.consume(i);
            }
            let differing = diff_literals(&self.index.literals(i), &live.literals);
            let fallback = Fallback {
                query: live.display.clone(),
                mock: self.index.name(i).to_string(),
                reason: FallbackReason::SameShape,
                differing,
            };
            return Choice::Entry(i, Some(fallback));
        }
        Choice::Miss(self.miss(live))
    }

    /// Scans only the recordings of the live query's shape.
    fn best_same_shape(&self, live: &Identity, test: Option<&str>) -> Option<usize> {
        let shape = self.index.shape(&digest(&live.shape))?;
        let test_id = test.and_then(|t| self.index.test_code(t));
        self.index.shape_members(shape).max_by_key(|&i| {
            let session = self.index.is_session(i);
            let agree = self
                .index
                .literals(i)
                .iter()
                .zip(&live.literals)
                .filter(|(a, b)| **a == b.as_str())
                .count();
            let in_window = test_id.is_some() && self.index.test_of(i) == test_id;
            let fresh = session || !self.index.is_consumed(i);
            // Earlier recordings win ties: max_by_key keeps the last max,
            // so the order is reversed.
            (agree, fresh, in_window, session, std::cmp::Reverse(i))
        })
    }

    /// The bug, on purpose: the first recording of the shape, every time.
    fn find_collapsed(&self, live: &Identity) -> Choice {
        match self
            .index
            .shape(&digest(&live.shape))
            .and_then(|s| self.index.shape_members(s).next())
        {
            Some(i) => Choice::Entry(i, None),
            None => Choice::Miss(self.miss(live)),
        }
    }

    fn miss(&self, live: &Identity) -> Miss {
        let want = tokens(&live.display);
        let mut scored: Vec<(f64, usize, usize)> = self
            .index
            .shapes()
            .iter()
            .take(MISS_SHAPES_COMPARED)
            .enumerate()
            .map(|(n, s)| (similarity(&want, &s.tokens), s.first as usize, n))
            .filter(|(score, _, _)| *score > 0.0)
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        Miss {
            query: live.display.clone(),
            candidates: scored
                .into_iter()
                .take(MISS_CANDIDATES)
                .map(|(_, i, n)| {
                    format!("{}: {}", self.index.name(i), self.index.shapes()[n].display)
                })
                .collect(),
        }
    }
}

fn diff_literals(recorded: &[&str], actual: &[String]) -> Vec<LiteralDiff> {
    let n = recorded.len().max(actual.len());
    (0..n)
        .filter_map(|position| {
            let r = recorded.get(position).copied().unwrap_or("");
            let a = actual.get(position).map_or("", String::as_str);
            (r != a).then(|| LiteralDiff {
                position,
                recorded: r.to_string(),
                actual: a.to_string(),
            })
        })
        .collect()
}

/// The text of a miss's ErrorResponse: what happened and what to do next.
pub fn miss_message(miss: &Miss) -> (String, String) {
    let message = format!("recplay: no recorded answer for: {}", miss.query);
    let detail = if miss.candidates.is_empty() {
        "nothing similar was recorded; record this flow again".to_string()
    } else {
        format!(
            "nearest recorded: {}. Re-record if the query changed.",
            miss.candidates.join(" | ")
        )
    };
    (message, detail)
}

#[cfg(test)]
mod lazy_tests;
#[cfg(test)]
mod tests;
