//! Reads back the JUnit XML that `report::junit` wrote for one shard, so
//! the merge can lay its test cases out again in one run's order. It reads
//! only that writer's output: every `<` and `>` inside an attribute or a
//! text is escaped there, so elements can be found by their tags.

use std::collections::BTreeMap;

use anyhow::{bail, Result};

/// One `<testsuite>` of a shard's file.
#[derive(Debug, Default)]
pub struct Suite {
    pub time: f64,
    pub timestamp: String,
    /// `<testcase>` elements of replayed tests, verbatim, in file order.
    pub cases: Vec<String>,
    /// `<testcase>` elements of files that did not load.
    pub load_problems: Vec<String>,
}

/// Whether a verbatim `<testcase>` failed.
pub fn failed(case: &str) -> bool {
    case.contains("<failure")
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let key = format!(" {name}=\"");
    let start = tag.find(&key)? + key.len();
    let len = tag[start..].find('"')?;
    Some(unescape(&tag[start..start + len]))
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// Suites by set name.
pub fn parse(text: &str, origin: &str) -> Result<BTreeMap<String, Suite>> {
    let mut suites = BTreeMap::new();
    let mut rest = text;
    while let Some(start) = rest.find("<testsuite ") {
        let Some(open_len) = rest[start..].find('>') else {
            bail!("{origin}: a <testsuite> tag is not closed; was the file cut short?");
        };
        let tag = &rest[start..start + open_len];
        let body_start = start + open_len + 1;
        let Some(body_len) = rest[body_start..].find("</testsuite>") else {
            bail!("{origin}: a <testsuite> has no end; was the file cut short?");
        };
        let body = &rest[body_start..body_start + body_len];
        let Some(name) = attribute(tag, "name") else {
            bail!("{origin}: a <testsuite> has no name; is this a JUnit file recplay wrote?");
        };
        let mut suite = Suite {
            time: attribute(tag, "time")
                .and_then(|t| t.parse().ok())
                .unwrap_or(0.0),
            timestamp: attribute(tag, "timestamp").unwrap_or_default(),
            ..Default::default()
        };
        let mut cases = body;
        while let Some(c) = cases.find("<testcase ") {
            let Some(open_end) = cases[c..].find('>') else {
                bail!("{origin}: a <testcase> tag in {name} is not closed");
            };
            let end = if cases[c..c + open_end].ends_with('/') {
                c + open_end + 1
            } else {
                let close = "</testcase>";
                match cases[c..].find(close) {
                    Some(e) => c + e + close.len(),
                    None => bail!("{origin}: a <testcase> in {name} has no end"),
                }
            };
            let case = cases[c..end].to_string();
            if case.contains("type=\"load\"") {
                suite.load_problems.push(case);
            } else {
                suite.cases.push(case);
            }
            cases = &cases[end..];
        }
        suites.insert(name, suite);
        rest = &rest[body_start + body_len..];
    }
    Ok(suites)
}
