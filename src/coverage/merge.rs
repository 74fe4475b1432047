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
