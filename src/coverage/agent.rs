//! The Python agent, shipped inside the binary and written out for the app.
//!
//! The app needs only coverage.py installed: recplay writes `sitecustomize.py`
//! and the agent module into a private directory and puts that directory
//! first on the app's PYTHONPATH, so every interpreter the app starts loads
//! the agent before any application code.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Runs at interpreter start-up; does nothing unless the socket variable is set.
pub const SITECUSTOMIZE_PY: &str = include_str!("agent/sitecustomize.py");
/// The agent proper (protocol version 1).
pub const AGENT_PY: &str = include_str!("agent/recplay_coverage_agent.py");
/// The agent's sys.monitoring engine (Python 3.12+), imported by the agent.
pub const LINE_MONITOR_PY: &str = include_str!("agent/recplay_line_monitor.py");

/// Writes the agent into `dir/python` and returns that directory.
pub fn install_python_agent(dir: &Path) -> Result<PathBuf> {
    let target = dir.join("python");
    fs::create_dir_all(&target).with_context(|| {
        format!(
            "could not create {} for the coverage agent",
            target.display()
        )
    })?;
    for (name, body) in [
        ("sitecustomize.py", SITECUSTOMIZE_PY),
        ("recplay_coverage_agent.py", AGENT_PY),
        ("recplay_line_monitor.py", LINE_MONITOR_PY),
    ] {
        let path = target.join(name);
        fs::write(&path, body)
            .with_context(|| format!("could not write the coverage agent to {}", path.display()))?;
    }
    Ok(target)
}

/// PYTHONPATH with the agent first and whatever the user had after it.
pub fn pythonpath_with(agent_dir: &Path, existing: Option<OsString>) -> Result<String> {
    let mut parts = vec![agent_dir.to_path_buf()];
    if let Some(existing) = existing.filter(|e| !e.is_empty()) {
        parts.extend(std::env::split_paths(&existing));
    }
    let joined =
        std::env::join_paths(parts).context("PYTHONPATH cannot hold the agent directory")?;
    joined
        .into_string()
        .map_err(|_| anyhow::anyhow!("PYTHONPATH is not valid UTF-8; set it to UTF-8 paths"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_every_file_and_prepends_to_pythonpath() {
        let dir = tempfile::tempdir().expect("tempdir");
        let agent_dir = install_python_agent(dir.path()).expect("install");
        assert!(agent_dir.join("sitecustomize.py").is_file());
        assert!(agent_dir.join("recplay_line_monitor.py").is_file());
        let agent = fs::read_to_string(agent_dir.join("recplay_coverage_agent.py")).expect("read");
        assert!(agent.contains("PROTOCOL_VERSION = 1"));
        let path = pythonpath_with(&agent_dir, Some("/opt/lib:/srv/app".into())).expect("join");
        assert_eq!(path, format!("{}:/opt/lib:/srv/app", agent_dir.display()));
        let alone = pythonpath_with(&agent_dir, Some(OsString::new())).expect("join");
        assert_eq!(alone, agent_dir.display().to_string());
    }
}
