//! One run's coverage from the coverage of its shards (`recplay report
//! merge`): exactly the union. Per-test coverage is kept as measured; only
//! `new_lines` depends on which tests came first, so it is recounted in
//! the merged order, as one unsharded run would have counted it.

use std::collections::{BTreeMap, BTreeSet};

use super::model::RunCoverage;

/// Merges `shards`; `order` ranks a test (`set/test`) in the merged run.
/// Tests the order does not know go last, in the shards' order.
pub fn merge_runs(shards: Vec<RunCoverage>, order: &dyn Fn(&str) -> Option<usize>) -> RunCoverage {
    let mut merged = RunCoverage::default();
    for shard in shards {
        merged.root = merged.root.or(shard.root);
        merged.branch |= shard.branch;
        merged.agents.extend(shard.agents);
        super::model::merge_map(&mut merged.startup, &shard.startup);
        for (path, described) in shard.statics {
            merged.statics.entry(path).or_insert(described);
        }
        merged.tests.extend(shard.tests);
    }
    merged.format_version = super::model::FORMAT_VERSION;
    merged
        .tests
        .sort_by_key(|t| order(&t.test).unwrap_or(usize::MAX));
    let mut seen: BTreeMap<String, BTreeSet<u32>> = BTreeMap::new();
    for test in &mut merged.tests {
        let mut new_lines = 0;
        for (path, hits) in &test.files {
            let lines = seen.entry(path.clone()).or_default();
            new_lines += hits.lines.iter().filter(|l| lines.insert(**l)).count();
        }
        test.new_lines = new_lines;
    }
    merged.summarise();
    merged
}

#[cfg(test)]
mod tests {
    use super::super::model::{FileHits, TestCoverage};
    use super::super::protocol::StaticFile;
    use super::*;

    fn hits(lines: &[u32]) -> FileHits {
        FileHits {
            lines: lines.iter().copied().collect(),
            arcs: BTreeSet::new(),
        }
    }

    fn test(name: &str, files: &[(&str, &[u32])]) -> TestCoverage {
        let files: super::super::model::CoverageMap = files
            .iter()
            .map(|(p, l)| (p.to_string(), hits(l)))
            .collect();
        TestCoverage {
            test: name.to_string(),
            lines_covered: files.values().map(|h| h.lines.len()).sum(),
            files,
            new_lines: 0,
            agents_answered: 1,
            agents_failed: 0,
        }
    }

    fn run(tests: Vec<TestCoverage>, startup: &[u32]) -> RunCoverage {
        let statics = BTreeMap::from([(
            "/app/views.py".to_string(),
            StaticFile {
                lines: (1..=20).collect(),
                ..Default::default()
            },
        )]);
        let startup = BTreeMap::from([("/app/views.py".to_string(), hits(startup))]);
        RunCoverage::build(
            Some("/app".into()),
            false,
            Vec::new(),
            statics,
            startup,
            tests,
        )
    }

    #[test]
    fn shards_merge_into_exactly_the_whole_runs_coverage() {
        let all = vec![
            test("s/test-1", &[("/app/views.py", &[1, 2, 3])]),
            test("s/test-2", &[("/app/views.py", &[2, 3, 4, 5])]),
            test(
                "s/test-3",
                &[("/app/views.py", &[5, 9]), ("/lib/x.py", &[7])],
            ),
            test("t/test-1", &[("/app/views.py", &[1, 12])]),
        ];
        let mut whole = all.clone();
        let mut seen: BTreeMap<String, BTreeSet<u32>> = BTreeMap::new();
        for t in &mut whole {
            t.new_lines = t
                .files
                .iter()
                .map(|(p, h)| {
                    let s = seen.entry(p.clone()).or_default();
                    h.lines.iter().filter(|l| s.insert(**l)).count()
                })
                .sum();
        }
        let whole = run(whole, &[1, 19]);
        // Shard 2 ran the set's second half and the other set; its own
        // new_lines counts are wrong for the merged run and get recounted.
        let first = run(all[..2].to_vec(), &[1]);
        let second = run(vec![all[3].clone(), all[2].clone()], &[19]);
        let order = |name: &str| all.iter().position(|t| t.test == name);
        let merged = merge_runs(vec![second, first], &order);
        assert_eq!(merged.tests, whole.tests);
        assert_eq!(merged.files, whole.files);
        assert_eq!(merged.totals, whole.totals);
        assert_eq!(merged.startup, whole.startup);
        assert_eq!(merged.statics, whole.statics);
    }
}
