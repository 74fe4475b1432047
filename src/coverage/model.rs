//! What a coverage run measured: per-test deltas, the lines run outside any
//! test, the static denominators, and the per-file and total percentages
//! derived from them. Serialised as `coverage.json` (see `store`) and
//! embedded in the test report.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::protocol::{FileDelta, Hello, StaticFile};

/// Version of the `coverage.json` layout; readers accept every earlier one.
pub const FORMAT_VERSION: u32 = 1;

/// Lines and arcs one file ran, as the agents reported them.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct FileHits {
    pub lines: BTreeSet<u32>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub arcs: BTreeSet<(i32, i32)>,
}

/// Source path (as the agent saw it) to what ran in it.
pub type CoverageMap = BTreeMap<String, FileHits>;

/// Adds one agent's delta to a union.
pub fn merge_delta(into: &mut CoverageMap, files: BTreeMap<String, FileDelta>) {
    for (path, delta) in files {
        if delta.lines.is_empty() && delta.arcs.is_empty() {
            continue;
        }
        let hits = into.entry(path).or_default();
        hits.lines.extend(delta.lines);
        hits.arcs.extend(delta.arcs);
    }
}

/// Adds one union to another.
pub fn merge_map(into: &mut CoverageMap, from: &CoverageMap) {
    for (path, hits) in from {
        let target = into.entry(path.clone()).or_default();
        target.lines.extend(hits.lines.iter().copied());
        target.arcs.extend(hits.arcs.iter().copied());
    }
}

/// What one replayed test ran in the app.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TestCoverage {
    /// `test-set-N/test-M`, as the replayer names it.
    pub test: String,
    pub files: CoverageMap,
    /// Lines this test ran, over all files.
    pub lines_covered: usize,
    /// Lines this test ran that no earlier test of the run had run.
    pub new_lines: usize,
    /// Agents that answered the snapshot.
    pub agents_answered: usize,
    /// Agents that were asked but died or did not answer in time.
    #[serde(default)]
    pub agents_failed: usize,
}

/// Covered over coverable, for lines and for branches.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    pub statements: usize,
    pub covered_lines: usize,
    pub line_percent: f64,
    pub branches: usize,
    pub covered_branches: usize,
    /// None when branch coverage was off or the code has no branches.
    pub branch_percent: Option<f64>,
}

impl Summary {
    fn from_counts(statements: usize, covered: usize, branches: usize, covered_br: usize) -> Self {
        Summary {
            statements,
            covered_lines: covered,
            line_percent: percent(covered, statements),
            branches,
            covered_branches: covered_br,
            branch_percent: (branches > 0).then(|| percent(covered_br, branches)),
        }
    }

    fn add(&mut self, other: &Summary) {
        *self = Summary::from_counts(
            self.statements + other.statements,
            self.covered_lines + other.covered_lines,
            self.branches + other.branches,
            self.covered_branches + other.covered_branches,
        );
    }
}

/// Like coverage.py: nothing to cover counts as fully covered.
pub fn percent(covered: usize, total: usize) -> f64 {
    if total == 0 {
        100.0
    } else {
        covered as f64 * 100.0 / total as f64
    }
}

/// One file in the run summary.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct FileCoverage {
    #[serde(flatten)]
    pub summary: Summary,
    pub missing_lines: Vec<u32>,
    /// False when no agent described the file (it was run but lies outside
    /// the walked tree): its denominators are then the lines that ran.
    pub described: bool,
}

/// A whole replay run's coverage: the content of `coverage.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RunCoverage {
    pub format_version: u32,
    /// The measured source root, for relative paths in exports.
    pub root: Option<String>,
    pub branch: bool,
    /// Every process that reported.
    pub agents: Vec<Hello>,
    pub totals: Summary,
    pub files: BTreeMap<String, FileCoverage>,
    pub tests: Vec<TestCoverage>,
    /// Lines run outside any test: start-up, warm-up, after the last test.
    pub startup: CoverageMap,
    /// The denominators, per file.
    pub statics: BTreeMap<String, StaticFile>,
}

impl RunCoverage {
    /// Derives the per-file and total figures from the raw data.
    pub fn build(
        root: Option<String>,
        branch: bool,
        agents: Vec<Hello>,
        statics: BTreeMap<String, StaticFile>,
        startup: CoverageMap,
        tests: Vec<TestCoverage>,
    ) -> Self {
        let mut run = RunCoverage {
            format_version: FORMAT_VERSION,
            root,
            branch,
            agents,
            totals: Summary::from_counts(0, 0, 0, 0),
            files: BTreeMap::new(),
            tests,
            startup,
            statics,
        };
        run.summarise();
        run
    }

    /// Recomputes `files` and `totals` (after loading or merging).
    pub fn summarise(&mut self) {
        let mut files = BTreeMap::new();
        let mut totals = Summary::from_counts(0, 0, 0, 0);
        for path in self.paths() {
            let detail = self.file_detail(&path);
            let summary = detail.summary();
            totals.add(&summary);
            files.insert(
                path,
                FileCoverage {
                    summary,
                    missing_lines: detail.missing_lines(),
                    described: detail.described,
                },
            );
        }
        self.files = files;
        self.totals = totals;
    }

    /// Every file described or run, sorted.
    pub fn paths(&self) -> Vec<String> {
        let mut paths: BTreeSet<&String> = self.statics.keys().collect();
        paths.extend(self.startup.keys());
        for test in &self.tests {
            paths.extend(test.files.keys());
        }
        paths.into_iter().cloned().collect()
    }

    /// A path relative to the measured root, for reports.
    pub fn display_path<'a>(&self, path: &'a str) -> &'a str {
        self.root
            .as_deref()
            .and_then(|root| path.strip_prefix(root))
            .map(|rest| rest.trim_start_matches('/'))
            .filter(|rest| !rest.is_empty())
            .unwrap_or(path)
    }

    /// Everything known about one file, normalised to statements.
    pub fn file_detail(&self, path: &str) -> FileDetail {
        let described = self.statics.get(path);
        let normalise = |hits: Option<&FileHits>| -> TestHits {
            match hits {
                None => Default::default(),
                Some(h) => (
                    h.lines.iter().map(|&l| first_line(described, l)).collect(),
                    h.arcs
                        .iter()
                        .map(|&(a, b)| (first_arc_end(described, a), first_arc_end(described, b)))
                        .collect(),
                ),
            }
        };
        let (startup_lines, startup_arcs) = normalise(self.startup.get(path));
        let per_test: Vec<TestHits> = self
            .tests
            .iter()
            .map(|t| normalise(t.files.get(path)))
            .collect();
        let (statements, branches) = match described {
            Some(s) => (s.lines.iter().copied().collect(), s.branches.clone()),
            None => {
                let mut ran = startup_lines.clone();
                for (lines, _) in &per_test {
                    ran.extend(lines.iter().copied());
                }
                (ran, BTreeMap::new())
            }
        };
        FileDetail {
            statements,
            branches,
            startup_lines,
            startup_arcs,
            per_test,
            described: described.is_some(),
        }
    }
}

fn first_line(described: Option<&StaticFile>, line: u32) -> u32 {
    described
        .and_then(|s| s.multiline.get(&line).copied())
        .unwrap_or(line)
}

fn first_arc_end(described: Option<&StaticFile>, end: i32) -> i32 {
    let mapped = first_line(described, end.unsigned_abs());
    let mapped = i32::try_from(mapped).unwrap_or(i32::MAX);
    if end < 0 {
        -mapped
    } else {
        mapped
    }
}

/// Lines and arcs of one file in one test, normalised to first lines.
pub type TestHits = (BTreeSet<u32>, BTreeSet<(i32, i32)>);

/// One file, with every line and arc mapped to its statement's first line.
#[derive(Debug, Clone, Default)]
pub struct FileDetail {
    pub statements: BTreeSet<u32>,
    pub branches: BTreeMap<u32, Vec<i32>>,
    pub startup_lines: BTreeSet<u32>,
    pub startup_arcs: BTreeSet<(i32, i32)>,
    /// In the order of `RunCoverage::tests`.
    pub per_test: Vec<TestHits>,
    pub described: bool,
}

impl FileDetail {
    /// Statements run by anything, test or not.
    pub fn covered_lines(&self) -> BTreeSet<u32> {
        let mut ran = self.startup_lines.clone();
        for (lines, _) in &self.per_test {
            ran.extend(lines.iter().copied());
        }
        ran.intersection(&self.statements).copied().collect()
    }

    pub fn missing_lines(&self) -> Vec<u32> {
        let covered = self.covered_lines();
        self.statements.difference(&covered).copied().collect()
    }

    /// Arcs run by anything.
    pub fn executed_arcs(&self) -> BTreeSet<(i32, i32)> {
        let mut arcs = self.startup_arcs.clone();
        for (_, a) in &self.per_test {
            arcs.extend(a.iter().copied());
        }
        arcs
    }

    /// Every possible branch arc, sorted.
    pub fn possible_branches(&self) -> Vec<(i32, i32)> {
        let mut out = Vec::new();
        for (&line, dests) in &self.branches {
            let from = i32::try_from(line).unwrap_or(i32::MAX);
            out.extend(dests.iter().map(|&d| (from, d)));
        }
        out
    }

    /// How many tests ran `line` (a statement's first line).
    pub fn tests_running(&self, line: u32) -> usize {
        self.per_test
            .iter()
            .filter(|(l, _)| l.contains(&line))
            .count()
    }

    pub fn summary(&self) -> Summary {
        let covered = self.covered_lines().len();
        let executed = self.executed_arcs();
        let possible = self.possible_branches();
        let covered_branches = possible.iter().filter(|a| executed.contains(a)).count();
        Summary::from_counts(
            self.statements.len(),
            covered,
            possible.len(),
            covered_branches,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hits(lines: &[u32], arcs: &[(i32, i32)]) -> FileHits {
        FileHits {
            lines: lines.iter().copied().collect(),
            arcs: arcs.iter().copied().collect(),
        }
    }

    #[test]
    fn summarises_lines_branches_and_multiline_statements() {
        let mut statics = BTreeMap::new();
        statics.insert(
            "/app/views.py".to_string(),
            StaticFile {
                lines: vec![1, 2, 3, 5, 7],
                branches: BTreeMap::from([(2, vec![3, 5])]),
                multiline: BTreeMap::from([(8, 7)]),
            },
        );
        let startup = CoverageMap::from([("/app/views.py".to_string(), hits(&[1], &[(-1, 1)]))]);
        let tests = vec![
            TestCoverage {
                test: "t1".into(),
                files: CoverageMap::from([(
                    "/app/views.py".to_string(),
                    hits(&[2, 3, 8], &[(2, 3), (3, 8)]),
                )]),
                ..Default::default()
            },
            TestCoverage {
                test: "t2".into(),
                files: CoverageMap::from([("/app/views.py".to_string(), hits(&[2, 3], &[(2, 3)]))]),
                ..Default::default()
            },
        ];
        let run = RunCoverage::build(Some("/app".into()), true, vec![], statics, startup, tests);
        let file = &run.files["/app/views.py"];
        // 1, 2, 3 and 7 (through its continuation line 8) ran; 5 did not.
        assert_eq!(file.summary.covered_lines, 4);
        assert_eq!(file.missing_lines, vec![5]);
        assert_eq!(file.summary.branches, 2);
        assert_eq!(file.summary.covered_branches, 1);
        assert_eq!(run.totals.line_percent, 80.0);
        assert_eq!(run.totals.branch_percent, Some(50.0));
        let detail = run.file_detail("/app/views.py");
        assert_eq!(detail.tests_running(2), 2);
        assert_eq!(detail.tests_running(7), 1);
        assert_eq!(detail.tests_running(1), 0);
        assert_eq!(run.display_path("/app/views.py"), "views.py");
    }

    #[test]
    fn an_undescribed_file_counts_what_ran() {
        let tests = vec![TestCoverage {
            test: "t".into(),
            files: CoverageMap::from([("/elsewhere/x.py".to_string(), hits(&[4, 9], &[]))]),
            ..Default::default()
        }];
        let run = RunCoverage::build(
            None,
            false,
            vec![],
            BTreeMap::new(),
            CoverageMap::new(),
            tests,
        );
        let file = &run.files["/elsewhere/x.py"];
        assert!(!file.described);
        assert_eq!(file.summary.statements, 2);
        assert_eq!(file.summary.line_percent, 100.0);
        assert_eq!(file.summary.branch_percent, None);
    }
}
