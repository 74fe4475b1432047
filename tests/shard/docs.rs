//! docs/ci.md: every YAML block parses, and each CI system's shard count
//! agrees with itself (matrix size and `--shard I/N`, `parallel:`, an
//! Indexed Job's completions and `--shard-total`).

use serde_yaml::Value;

/// The ```yaml blocks of the document, in order, as documents.
fn yaml_blocks() -> Vec<Vec<Value>> {
    let text = include_str!("../../docs/ci.md");
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        match &mut current {
            None if line.trim_start() == "```yaml" => current = Some(String::new()),
            None => {}
            Some(block) if line.trim_start() == "```" => {
                let docs = serde_yaml::Deserializer::from_str(block)
                    .map(|d| {
                        serde::Deserialize::deserialize(d)
                            .unwrap_or_else(|e| panic!("a YAML block of docs/ci.md: {e}\n{block}"))
                    })
                    .collect();
                blocks.push(docs);
                current = None;
            }
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
        }
    }
    blocks
}

fn find(blocks: &[Vec<Value>], pick: impl Fn(&Value) -> bool) -> &Value {
    blocks
        .iter()
        .flatten()
        .find(|d| pick(d))
        .expect("the block is in docs/ci.md")
}

#[test]
fn the_ci_examples_parse_and_agree_on_the_shard_count() {
    let blocks = yaml_blocks();
    assert!(blocks.len() >= 3, "GitHub, GitLab and Kubernetes examples");

    let gha = find(&blocks, |d| {
        d.get("jobs").and_then(|j| j.get("merge")).is_some()
    });
    let matrix = gha["jobs"]["replay"]["strategy"]["matrix"]["shard"]
        .as_sequence()
        .expect("a shard matrix");
    let wanted: Vec<u64> = (1..=matrix.len() as u64).collect();
    let got: Vec<u64> = matrix.iter().filter_map(Value::as_u64).collect();
    assert_eq!(got, wanted, "the matrix numbers shards 1..=N");
    let steps = serde_yaml::to_string(&gha["jobs"]["replay"]["steps"]).expect("steps");
    assert!(
        steps.contains(&format!("--shard ${{{{ matrix.shard }}}}/{}", matrix.len())),
        "the replay step names the matrix's size"
    );
    let merge = serde_yaml::to_string(&gha["jobs"]["merge"]).expect("merge job");
    assert!(merge.contains("recplay report merge") && merge.contains("recplay coverage gate"));
    assert_eq!(gha["jobs"]["merge"]["needs"].as_str(), Some("replay"));

    let gitlab = find(&blocks, |d| {
        d.get("replay").and_then(|r| r.get("parallel")).is_some()
    });
    assert!(gitlab["replay"]["parallel"].as_u64().is_some());

    let job = find(&blocks, |d| {
        d["spec"]["completionMode"].as_str() == Some("Indexed")
    });
    let completions = job["spec"]["completions"].as_u64().expect("completions");
    let args =
        serde_yaml::to_string(&job["spec"]["template"]["spec"]["containers"]).expect("containers");
    assert!(
        args.contains(&format!("--shard-total {completions}")),
        "{args}"
    );
    assert_eq!(
        job["spec"]["template"]["spec"]["restartPolicy"].as_str(),
        Some("Never")
    );
}
