//! Which share of the test sets one CI runner replays (`--shard I/N`).
//!
//! recplay has no scheduler: the CI's own parallel runners (a GitHub
//! Actions matrix, GitLab `parallel:`, Kubernetes Indexed Jobs) each run
//! `recplay test --shard I/N` and every one of them computes the same plan
//! from the same inputs, so the shares are disjoint, cover every test and
//! never depend on timing. Shards are numbered from 1, as GitLab's
//! `CI_NODE_INDEX` is.
//!
//! The plan balances weights: a set's recorded test count, or its time
//! from the previous complete run when there is one. A set heavier than a
//! fair share is split into contiguous runs of tests (each shard that gets
//! a part loads the set's full mocks); the pieces then go, heaviest first,
//! to the least loaded shard.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub mod durations;

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

/// This runner's place among the shards (1-based index).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardSpec {
    pub index: usize,
    pub total: usize,
    /// Where the numbers came from (`--shard`, `CI_NODE_INDEX`, ...), for
    /// the run report and for error messages.
    pub source: String,
}

impl ShardSpec {
    fn new(index: usize, total: usize, source: &str) -> Result<Self, String> {
        if total == 0 {
            return Err(format!(
                "{source}: the number of shards must be at least 1 (shards are numbered 1..=N)"
            ));
        }
        if index == 0 || index > total {
            return Err(format!(
                "{source}: shard {index} of {total} does not exist; shards are numbered 1..={total}"
            ));
        }
        Ok(ShardSpec {
            index,
            total,
            source: source.to_string(),
        })
    }

    /// Resolves the shard from the flags, else from the CI's environment:
    /// GitLab's `CI_NODE_INDEX`/`CI_NODE_TOTAL` (1-based), Kubernetes'
    /// `JOB_COMPLETION_INDEX` (0-based) with `--shard-total`. A flag always
    /// wins over the environment.
    pub fn resolve(
        flag: Option<ShardSpec>,
        shard_total: Option<usize>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<ShardSpec>> {
        if let Some(spec) = flag {
            if shard_total.is_some_and(|t| t != spec.total) {
                bail!("--shard {spec} and --shard-total disagree on the number of shards; pass one of them");
            }
            return Ok(Some(spec));
        }
        let number = |name: &str| -> Result<Option<usize>> {
            match env(name) {
                None => Ok(None),
                Some(v) if v.trim().is_empty() => Ok(None),
                Some(v) => match v.trim().parse::<usize>() {
                    Ok(n) => Ok(Some(n)),
                    Err(_) => {
                        bail!("{name}={v:?} is not a whole number; unset it or pass --shard I/N")
                    }
                },
            }
        };
        if let Some(total) = shard_total {
            let Some(index) = number("JOB_COMPLETION_INDEX")? else {
                bail!("--shard-total needs JOB_COMPLETION_INDEX (a Kubernetes Indexed Job sets it); outside one, pass --shard I/N");
            };
            let spec = ShardSpec::new(index + 1, total, "JOB_COMPLETION_INDEX")
                .map_err(anyhow::Error::msg)?;
            return Ok(Some(spec));
        }
        match (number("CI_NODE_INDEX")?, number("CI_NODE_TOTAL")?) {
            (Some(index), Some(total)) => Ok(Some(
                ShardSpec::new(index, total, "CI_NODE_INDEX").map_err(anyhow::Error::msg)?,
            )),
            (Some(_), None) => {
                bail!("CI_NODE_INDEX is set but CI_NODE_TOTAL is not; set both or pass --shard I/N")
            }
            _ => Ok(None),
        }
    }
}

impl fmt::Display for ShardSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.total)
    }
}

impl FromStr for ShardSpec {
    type Err = String;

    /// `I/N`, both whole numbers, 1 <= I <= N.
    fn from_str(s: &str) -> Result<Self, String> {
        let Some((i, n)) = s.split_once('/') else {
            return Err(format!(
                "{s:?} is not I/N (for example 2/4: the second of four shards)"
            ));
        };
        let parse = |v: &str| {
            v.trim()
                .parse::<usize>()
                .map_err(|_| format!("{s:?} is not I/N: {v:?} is not a whole number"))
        };
        ShardSpec::new(parse(i)?, parse(n)?, "--shard")
    }
}

/// One set's weight in the plan.
#[derive(Debug, Clone)]
pub struct SetWeight {
    pub name: String,
    /// Test files in the set.
    pub tests: usize,
    /// Count or expected time; only ratios matter.
    pub weight: u64,
}

/// A set, or one contiguous part of it (`part` of `parts`, 1-based).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Piece {
    pub set: String,
    pub part: usize,
    pub parts: usize,
}

impl Piece {
    /// Positions, in the set's recorded order, of the tests this piece
    /// holds; the parts of a set tile `0..len` in order.
    pub fn range(&self, len: usize) -> Range<usize> {
        part_range(len, self.part, self.parts)
    }
}

/// Part `part` (1-based) of `parts` of `0..len`: contiguous, sizes differ
/// by at most one.
pub fn part_range(len: usize, part: usize, parts: usize) -> Range<usize> {
    let parts = parts.max(1);
    let part = part.clamp(1, parts);
    (len * (part - 1) / parts)..(len * part / parts)
}

/// The whole plan: `plan[k]` is shard k+1's pieces, in set order.
pub fn plan(sets: &[SetWeight], shards: usize) -> Vec<Vec<Piece>> {
    let shards = shards.max(1);
    let total: u128 = sets.iter().map(|s| u128::from(s.weight)).sum();
    let mut pieces: Vec<(u128, usize, Piece)> = Vec::new();
    for (order, set) in sets.iter().enumerate() {
        let weight = u128::from(set.weight);
        // Heavier than a fair share (weight > total / shards): split into
        // as many parts as fair shares it holds, rounded up.
        let parts = if total > 0 && weight * shards as u128 > total && set.tests > 1 {
            let fair = (weight * shards as u128).div_ceil(total);
            (fair as usize).clamp(1, shards.min(set.tests))
        } else {
            1
        };
        for part in 1..=parts {
            let r = part_range(set.tests, part, parts);
            let share = if set.tests == 0 {
                weight
            } else {
                weight * r.len() as u128 / set.tests as u128
            };
            pieces.push((
                share,
                order,
                Piece {
                    set: set.name.clone(),
                    part,
                    parts,
                },
            ));
        }
    }
    // Heaviest first; ties by set order then part, so the plan is stable.
    pieces.sort_by(|a, b| {
        b.0.cmp(&a.0)
            .then(a.1.cmp(&b.1))
            .then(a.2.part.cmp(&b.2.part))
    });
    let mut loads = vec![0u128; shards];
    let mut counts = vec![0usize; shards];
    let mut plan: Vec<Vec<(usize, Piece)>> = vec![Vec::new(); shards];
    for (weight, order, piece) in pieces {
        // Least loaded shard; among equals the one with fewer pieces, then
        // the lowest number, so zero-weight sets still spread out. Never
        // one that holds another part of the same set: a shard replays a
        // set once, as one contiguous run (a set has at most `shards`
        // parts, so there is always such a shard).
        let k = (0..shards)
            .filter(|&k| !plan[k].iter().any(|(o, _)| *o == order))
            .min_by_key(|&k| (loads[k], counts[k], k))
            .unwrap_or(0);
        loads[k] += weight;
        counts[k] += 1;
        plan[k].push((order, piece));
    }
    plan.into_iter()
        .map(|mut pieces| {
            pieces.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.part.cmp(&b.1.part)));
            pieces.into_iter().map(|(_, p)| p).collect()
        })
        .collect()
}

/// What a shard's run report records under `shard`: who it was and the
/// whole plan, so `report merge` can tell a missing shard, a duplicate, or
/// shards that planned from different test sets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardRecord {
    pub index: usize,
    pub total: usize,
    pub source: String,
    /// Every planned set, in replay order.
    pub sets: Vec<String>,
    /// `plan[k]`: shard k+1's pieces.
    pub plan: Vec<Vec<Piece>>,
}

impl ShardRecord {
    /// Plans the share of `spec` among `sets` (name and folder, in replay
    /// order), weighted by the previous run under `keploy_dir`.
    pub fn plan(keploy_dir: &Path, spec: &ShardSpec, sets: &[(String, PathBuf)]) -> Self {
        let counted: Vec<(String, usize)> = sets
            .iter()
            .map(|(name, dir)| (name.clone(), count_test_files(dir)))
            .collect();
        let weights = durations::weights(keploy_dir, &counted);
        ShardRecord {
            index: spec.index,
            total: spec.total,
            source: spec.source.clone(),
            sets: counted.into_iter().map(|(n, _)| n).collect(),
            plan: plan(&weights, spec.total),
        }
    }

    /// This shard's piece of `set`, if the set is (partly) its own.
    pub fn piece_of(&self, set: &str) -> Option<&Piece> {
        self.plan
            .get(self.index.saturating_sub(1))?
            .iter()
            .find(|p| p.set == set)
    }
}

/// Test files in a set's `tests/` folder, without reading them: every
/// shard counts the same files, so every shard plans alike.
pub fn count_test_files(set_dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(set_dir.join("tests")) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.ends_with(".yaml") || name.ends_with(".yml")
        })
        .count()
}

#[cfg(test)]
mod tests;
