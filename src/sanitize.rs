//! `recplay sanitize PATH`: the record-time redaction applied to test sets
//! already on disk — recplay's and Keploy's test files, and the Http mocks
//! in mocks.yaml — so a recording made before redaction, or by Keploy, can
//! be committed.
//!
//! Files are edited document by document: a document that has nothing to
//! redact (a Postgres mock, a test without secrets) keeps its exact text,
//! and one that changed is written anew by serde_yaml. Each file is
//! replaced atomically (a temporary file in the same directory, renamed
//! over it), so a crash leaves the old file or the new one, never half.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use recplay_proxy::testset::redact::{Redactor, Tally};
use serde_yaml::{Mapping, Value};

use crate::cli::SanitizeArgs;
use crate::config::resolve::redact_config;
use crate::config::{ConfigFile, KeployConfig};

pub fn run(args: SanitizeArgs) -> Result<ExitCode> {
    let file = KeployConfig::locate(args.config.as_deref());
    let config = match &file {
        Some(f) => KeployConfig::load(f)?,
        None => KeployConfig::default(),
    };
    let redact = redact_config(&config.record.redact, file.as_deref());
    // Fail on a bad pattern before touching any file.
    Redactor::new(&redact).context("keploy.yml record.redact")?;
    let sets = find_sets(&args.path)?;
    if sets.is_empty() {
        anyhow::bail!(
            "{} holds no test files (tests/*.yaml) and no mocks.yaml",
            args.path.display()
        );
    }
    let (mut files, mut changed, mut values) = (0usize, 0usize, 0usize);
    for (set, paths) in sets {
        // One redactor per test set: its placeholders are that set's.
        let redactor = Redactor::new(&redact).context("keploy.yml record.redact")?;
        let texts: Vec<(PathBuf, String)> = paths
            .into_iter()
            .map(|p| {
                let text = std::fs::read_to_string(&p)
                    .with_context(|| format!("could not read {}", p.display()))?;
                Ok((p, text))
            })
            .collect::<Result<_>>()?;
        for (_, text) in &texts {
            redactor.reserve_existing(text);
        }
        for (path, text) in texts {
            files += 1;
            let (new_text, tally) = sanitize_text(&text, &redactor);
            if tally.total() == 0 {
                println!("{}: nothing to redact", path.display());
                continue;
            }
            write_atomically(&path, &new_text)?;
            changed += 1;
            values += tally.total();
            let rules: Vec<String> = tally
                .counts
                .iter()
                .map(|(rule, n)| format!("{rule} {n}"))
                .collect();
            println!(
                "{}: {} value(s) redacted ({})",
                path.display(),
                tally.total(),
                rules.join(", ")
            );
        }
        tracing::debug!(set = %set.display(), "sanitized");
    }
    println!("sanitize: {files} file(s) read, {changed} rewritten, {values} value(s) redacted");
    Ok(ExitCode::SUCCESS)
}

/// Test sets under `path` (itself a keploy directory, a test set, or one
/// file), each with its test files and mocks.yaml.
fn find_sets(path: &Path) -> Result<BTreeMap<PathBuf, Vec<PathBuf>>> {
    let mut sets: BTreeMap<PathBuf, Vec<PathBuf>> = BTreeMap::new();
    if path.is_file() {
        let set = set_of(path).unwrap_or_else(|| path.to_path_buf());
        sets.entry(set).or_default().push(path.to_path_buf());
        return Ok(sets);
    }
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries =
            std::fs::read_dir(&dir).with_context(|| format!("could not list {}", dir.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("could not list {}", dir.display()))?;
            let p = entry.path();
            let kind = entry.file_type()?;
            if kind.is_dir() {
                // Reports hold copies of responses but are not replayed;
                // they are left to the user (and usually not committed).
                if p.file_name().is_some_and(|n| n != "reports") {
                    stack.push(p);
                }
            } else if kind.is_file() && is_recording(&p) {
                if let Some(set) = set_of(&p) {
                    sets.entry(set).or_default().push(p);
                }
            }
        }
    }
    for files in sets.values_mut() {
        files.sort();
    }
    Ok(sets)
}

/// A test file (`tests/*.yaml`) or `mocks.yaml`.
fn is_recording(p: &Path) -> bool {
    let yaml = p.extension().is_some_and(|e| e == "yaml" || e == "yml");
    let in_tests = p
        .parent()
        .and_then(Path::file_name)
        .is_some_and(|n| n == "tests");
    yaml && (in_tests || p.file_name().is_some_and(|n| n == "mocks.yaml"))
}

/// The test set directory a recording file belongs to.
fn set_of(p: &Path) -> Option<PathBuf> {
    let parent = p.parent()?;
    if parent.file_name().is_some_and(|n| n == "tests") {
        return parent.parent().map(Path::to_path_buf);
    }
    Some(parent.to_path_buf())
}

/// The file's text with each document's secrets replaced; documents with
/// none keep their text.
pub fn sanitize_text(text: &str, redactor: &Redactor) -> (String, Tally) {
    let mut tally = Tally::default();
    let mut out = String::with_capacity(text.len());
    for chunk in split_documents(text) {
        let (body, end_marker) = match chunk.body.strip_suffix("...\n") {
            Some(b) if b.is_empty() || b.ends_with('\n') => (b, true),
            _ => (chunk.body, false),
        };
        out.push_str(chunk.separator);
        let mut doc_tally = Tally::default();
        let redacted = serde_yaml::from_str::<Value>(body)
            .ok()
            .and_then(|mut doc| {
                redact_document(&mut doc, redactor, &mut doc_tally);
                (doc_tally.total() > 0).then(|| serde_yaml::to_string(&doc).ok())?
            });
        match redacted {
            Some(new_body) => {
                out.push_str(&new_body);
                if end_marker {
                    out.push_str("...\n");
                }
                tally.merge(doc_tally);
            }
            None => out.push_str(chunk.body),
        }
    }
    (out, tally)
}

struct Chunk<'a> {
    /// `---\n` (or nothing, for a first document without one).
    separator: &'a str,
    body: &'a str,
}

/// Splits at lines that are exactly `---`; inside a block scalar such a
/// line would be indented, so it never splits one.
fn split_documents(text: &str) -> Vec<Chunk<'_>> {
    let mut chunks = Vec::new();
    let mut separator = "";
    let mut start = 0;
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        if line.trim_end() == "---" {
            if pos > start || !separator.is_empty() {
                chunks.push(Chunk {
                    separator,
                    body: &text[start..pos],
                });
            }
            separator = &text[pos..pos + line.len()];
            start = pos + line.len();
        }
        pos += line.len();
    }
    chunks.push(Chunk {
        separator,
        body: &text[start..],
    });
    chunks
}

/// An Http test case or mock: its request and response; other kinds are
/// left alone.
fn redact_document(doc: &mut Value, redactor: &Redactor, tally: &mut Tally) {
    if doc.get("kind").and_then(Value::as_str) != Some("Http") {
        return;
    }
    let side = |doc: &mut Value, name: &str, tally: &mut Tally| {
        if let Some(message) = doc
            .get_mut("spec")
            .and_then(|spec| spec.get_mut(name))
            .and_then(Value::as_mapping_mut)
        {
            redact_message(message, redactor, tally);
        }
    };
    side(doc, "req", tally);
    // The curl line repeats the request: scrubbed with what it gave up.
    if let Some(Value::String(curl)) = doc.get_mut("curl") {
        *curl = tally.scrub(curl);
    }
    side(doc, "resp", tally);
    side(doc, "res", tally);
}

fn redact_message(message: &mut Mapping, redactor: &Redactor, tally: &mut Tally) {
    if let Some(Value::String(url)) = message.get_mut("url") {
        *url = redactor.url(url, tally);
    }
    if let Some(Value::Mapping(params)) = message.get_mut("url_params") {
        let mut plain: BTreeMap<String, String> = params
            .iter()
            .filter_map(|(k, v)| Some((k.as_str()?.to_string(), v.as_str()?.to_string())))
            .collect();
        redactor.params(&mut plain, tally);
        for (k, v) in plain {
            params.insert(Value::String(k), Value::String(v));
        }
    }
    let mut joined: BTreeMap<String, String> = BTreeMap::new();
    if let Some(Value::Mapping(repeated)) = message.get_mut("header_repeated") {
        for (name, values) in repeated.iter_mut() {
            let (Some(name), Some(values)) = (name.as_str(), values.as_sequence_mut()) else {
                continue;
            };
            let mut all = Vec::new();
            for v in values.iter_mut() {
                if let Value::String(s) = v {
                    *s = redactor.header(name, s, tally);
                    all.push(s.clone());
                }
            }
            joined.insert(name.to_string(), all.join(", "));
        }
    }
    let mut content_type = None;
    if let Some(Value::Mapping(header)) = message.get_mut("header") {
        for (name, value) in header.iter_mut() {
            let (Some(name), Value::String(v)) = (name.as_str(), value) else {
                continue;
            };
            if name.eq_ignore_ascii_case("content-type") {
                content_type = Some(v.clone());
            }
            *v = match joined.get(name) {
                Some(j) => j.clone(),
                None => redactor.header(name, v, tally),
            };
        }
    }
    let binary = message.get("body_encoding").is_some();
    if let (false, Some(Value::String(body))) = (binary, message.get_mut("body")) {
        if !body.is_empty() {
            *body = redactor.body(body, content_type.as_deref(), tally);
        }
    }
}

/// Replaces `path` by `text` through a temporary file in the same
/// directory, synced before the rename.
fn write_atomically(path: &Path, text: &str) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".sanitize-")
        .tempfile_in(dir)
        .with_context(|| format!("could not create a temporary file in {}", dir.display()))?;
    tmp.write_all(text.as_bytes())
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("could not write the new {}", path.display()))?;
    if let Ok(meta) = std::fs::metadata(path) {
        let _ = std::fs::set_permissions(tmp.path(), meta.permissions());
    }
    tmp.persist(path)
        .with_context(|| format!("could not replace {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_without_secrets_keep_their_text_and_markers() {
        let text = "---\nkind: recplay-Postgres\nname: a\n...\n---\nversion: x\nkind: Http\nname: m\nspec:\n  req:\n    method: GET\n    url: http://h/x?token=abc123\n    header:\n      Authorization: Bearer abcdefgh\n    body: ''\n  resp:\n    status_code: 200\n    header: {}\n    body: '{\"password\":\"pw\"}'\n...\n";
        let r = Redactor::default();
        let (out, tally) = sanitize_text(text, &r);
        assert!(
            out.starts_with("---\nkind: recplay-Postgres\nname: a\n...\n---\n"),
            "{out}"
        );
        assert!(out.ends_with("...\n"), "{out}");
        assert!(
            !out.contains("abc123") && !out.contains("abcdefgh") && !out.contains("\"pw\""),
            "{out}"
        );
        assert_eq!(tally.counts["authorization"], 1);
        assert_eq!(tally.counts["token"], 1);
        assert_eq!(tally.counts["password"], 1);
        let (again, tally) = sanitize_text(&out, &r);
        assert_eq!(tally.total(), 0);
        assert_eq!(again, out);
    }
}
