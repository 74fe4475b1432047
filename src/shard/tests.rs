//! The plan's promises: disjoint, complete, stable, balanced.

use std::collections::{BTreeMap, BTreeSet};

use super::durations::weigh;
use super::*;

fn counts(sets: &[(&str, usize)]) -> Vec<SetWeight> {
    sets.iter()
        .map(|(n, c)| SetWeight {
            name: n.to_string(),
            tests: *c,
            weight: *c as u64,
        })
        .collect()
}

/// Every (set, test position) the plan hands out, with the shard.
fn assignment(sets: &[SetWeight], plan: &[Vec<Piece>]) -> BTreeMap<(String, usize), usize> {
    let sizes: BTreeMap<&str, usize> = sets.iter().map(|s| (s.name.as_str(), s.tests)).collect();
    let mut seen = BTreeMap::new();
    for (k, pieces) in plan.iter().enumerate() {
        for p in pieces {
            for i in p.range(sizes[p.set.as_str()]) {
                let before = seen.insert((p.set.clone(), i), k);
                assert!(
                    before.is_none(),
                    "{}#{i} given to shards {before:?} and {k}",
                    p.set
                );
            }
        }
    }
    seen
}

fn assert_covers(sets: &[SetWeight], plan: &[Vec<Piece>]) {
    for pieces in plan {
        let names: BTreeSet<&str> = pieces.iter().map(|p| p.set.as_str()).collect();
        assert_eq!(
            names.len(),
            pieces.len(),
            "a shard holds one part of a set at most: {plan:?}"
        );
    }
    let seen = assignment(sets, plan);
    let expected: usize = sets.iter().map(|s| s.tests).sum();
    assert_eq!(seen.len(), expected, "every test exactly once");
    // An empty set still goes somewhere, so its report exists.
    for s in sets.iter().filter(|s| s.tests == 0) {
        assert!(
            plan.iter().flatten().any(|p| p.set == s.name),
            "{} planned",
            s.name
        );
    }
}

#[test]
fn shares_are_disjoint_complete_and_stable() {
    let sets = counts(&[
        ("test-set-0", 7),
        ("test-set-1", 30),
        ("test-set-2", 1),
        ("b", 0),
        ("a", 12),
    ]);
    for n in 1..=9 {
        let first = plan(&sets, n);
        assert_eq!(first.len(), n);
        assert_covers(&sets, &first);
        assert_eq!(first, plan(&sets, n), "the same inputs give the same plan");
    }
}

#[test]
fn a_dominant_set_is_split_by_tests_into_contiguous_parts() {
    let sets = counts(&[("big", 2000), ("small", 10)]);
    let p = plan(&sets, 4);
    assert_covers(&sets, &p);
    let big: Vec<&Piece> = p.iter().flatten().filter(|x| x.set == "big").collect();
    assert_eq!(big.len(), 4, "2000 of 2010 tests: one part per shard");
    // Each shard holds one part; shard sizes differ by at most `small`.
    let sizes: Vec<usize> = p
        .iter()
        .map(|pieces| {
            pieces
                .iter()
                .map(|x| x.range(if x.set == "big" { 2000 } else { 10 }).len())
                .sum()
        })
        .collect();
    let (min, max) = (sizes.iter().min().copied(), sizes.iter().max().copied());
    assert!(max.unwrap_or(0) - min.unwrap_or(0) <= 10, "{sizes:?}");
    // Parts tile the set in order.
    let mut ranges: Vec<Range<usize>> = big.iter().map(|x| x.range(2000)).collect();
    ranges.sort_by_key(|r| r.start);
    assert_eq!(ranges.first().map(|r| r.start), Some(0));
    assert_eq!(ranges.last().map(|r| r.end), Some(2000));
    for w in ranges.windows(2) {
        assert_eq!(w[0].end, w[1].start);
    }
}

#[test]
fn a_set_of_one_test_is_never_split_and_spare_shards_get_nothing() {
    let sets = counts(&[("only", 1)]);
    let p = plan(&sets, 3);
    assert_covers(&sets, &p);
    assert_eq!(p.iter().filter(|x| !x.is_empty()).count(), 1);
}

#[test]
fn sets_balance_by_count_without_splitting_when_none_dominates() {
    let sets = counts(&[
        ("a", 5),
        ("b", 5),
        ("c", 5),
        ("d", 5),
        ("e", 4),
        ("f", 4),
        ("g", 4),
        ("h", 4),
    ]);
    let p = plan(&sets, 4);
    assert_covers(&sets, &p);
    assert!(p.iter().flatten().all(|x| x.parts == 1));
    for pieces in &p {
        let n: usize = pieces
            .iter()
            .map(|x| sets.iter().find(|s| s.name == x.set).map_or(0, |s| s.tests))
            .sum();
        assert_eq!(n, 9, "{p:?}");
    }
}

#[test]
fn durations_from_a_previous_run_outweigh_counts() {
    // Five sets of ten tests; "slow" took 10 ms a test, the others 5 ms.
    let names: Vec<(String, usize)> = ["slow", "f1", "f2", "f3", "f4"]
        .iter()
        .map(|n| (n.to_string(), 10))
        .collect();
    let mut times = vec![Some(10.0)];
    times.extend([Some(5.0); 4]);
    let by_count = plan(&weigh(&names, &[None; 5]), 3);
    let by_time = plan(&weigh(&names, &times), 3);
    assert_covers(&weigh(&names, &times), &by_time);
    // By count "slow" shares a shard; by time it is a shard's whole load.
    let with_slow = |p: &[Vec<Piece>]| {
        p.iter()
            .find(|s| s.iter().any(|x| x.set == "slow"))
            .map(Vec::len)
    };
    assert_eq!(with_slow(&by_count), Some(2), "{by_count:?}");
    assert_eq!(with_slow(&by_time), Some(1), "{by_time:?}");
    // A set the previous run never saw weighs the run's mean.
    let w = weigh(&names[..2], &[Some(4.0), None]);
    assert_eq!(w[0].weight, w[1].weight);
}

#[test]
fn a_slow_set_is_split_even_when_it_has_few_tests() {
    let names = vec![("slow".to_string(), 8), ("quick".to_string(), 100)];
    let w = weigh(&names, &[Some(500.0), Some(1.0)]);
    let p = plan(&w, 4);
    assert_covers(&w, &p);
    assert!(
        p.iter().flatten().filter(|x| x.set == "slow").count() >= 3,
        "{p:?}"
    );
}

#[test]
fn shard_numbers_are_one_based_and_checked() {
    assert_eq!(
        "2/4".parse::<ShardSpec>().map(|s| (s.index, s.total)),
        Ok((2, 4))
    );
    for bad in ["0/4", "5/4", "1/0", "4", "a/4", "1/-2", ""] {
        assert!(bad.parse::<ShardSpec>().is_err(), "{bad} must be rejected");
    }
}

#[test]
fn the_ci_environment_names_the_shard_when_no_flag_does() {
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    };
    let gitlab = env(&[("CI_NODE_INDEX", "3"), ("CI_NODE_TOTAL", "4")]);
    let s = ShardSpec::resolve(None, None, gitlab).ok().flatten();
    assert_eq!(s.map(|s| (s.index, s.total)), Some((3, 4)));
    let k8s = env(&[("JOB_COMPLETION_INDEX", "0")]);
    let s = ShardSpec::resolve(None, Some(4), k8s).ok().flatten();
    assert_eq!(s.map(|s| (s.index, s.total)), Some((1, 4)));
    // The flag wins.
    let flag = "1/2".parse::<ShardSpec>().ok();
    let s = ShardSpec::resolve(flag, None, gitlab).ok().flatten();
    assert_eq!(s.map(|s| (s.index, s.total)), Some((1, 2)));
    // Nothing set: no sharding.
    assert_eq!(ShardSpec::resolve(None, None, env(&[])).ok(), Some(None));
    // Out of range or half-set: errors.
    assert!(ShardSpec::resolve(None, Some(4), env(&[("JOB_COMPLETION_INDEX", "4")])).is_err());
    assert!(ShardSpec::resolve(None, Some(4), env(&[])).is_err());
    assert!(ShardSpec::resolve(
        None,
        None,
        env(&[("CI_NODE_INDEX", "0"), ("CI_NODE_TOTAL", "2")])
    )
    .is_err());
    assert!(ShardSpec::resolve(None, None, env(&[("CI_NODE_INDEX", "1")])).is_err());
}

#[test]
fn a_shard_never_gets_two_parts_of_one_set() {
    // A set heavy enough to be split, next to one heavier than each of its
    // parts: least-loaded alone would put both parts on the same shard.
    let sets = vec![
        SetWeight {
            name: "split".into(),
            tests: 4,
            weight: 20_004,
        },
        SetWeight {
            name: "slow".into(),
            tests: 2,
            weight: 16_002,
        },
    ];
    let p = plan(&sets, 2);
    assert_covers(&sets, &p);
    assert_eq!(
        p.iter().flatten().filter(|x| x.set == "split").count(),
        2,
        "{p:?}"
    );
}
