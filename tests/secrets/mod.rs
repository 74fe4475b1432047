//! Secrets stay out of recordings: the real `recplay record` in front of a
//! real app that checks credentials, a real PostgreSQL with SCRAM and MD5
//! users, then `recplay test` with and without the secrets' values, and
//! `recplay sanitize` on a Keploy-written test set.

mod record;
mod sanitize;

use std::path::Path;
use std::process::Command;

/// Secret-shaped test values, built at run time so no file of this
/// repository holds one literally.
pub struct Planted {
    pub jwt: String,
    pub api_key: String,
    pub query_key: String,
    pub session: String,
    pub password: String,
    pub form_password: String,
    pub github: String,
    pub aws: String,
}

impl Planted {
    pub fn new() -> Self {
        let b64 = |s: &str| {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
        };
        let jwt = format!(
            "{}.{}.{}",
            b64(r#"{"alg":"HS256","typ":"JWT"}"#),
            b64(r#"{"sub":"ann","iat":1733390000,"scope":"read write"}"#),
            "Qm9yZWFsLXNpZ25hdHVyZS12YWx1ZS0xMjM0NTY3OA"
        );
        Planted {
            jwt,
            api_key: ["kx", "9Hq2", "Lm4Vt7", "Wz3Pd8"].concat(),
            query_key: ["qk", "R5n1", "Yb6Ue0", "Sa2Jf4"].concat(),
            session: ["sess", "Fg7Hj2", "Kl9Mn4"].concat(),
            password: ["Planted", "-Login-", "Pw-71x"].concat(),
            form_password: ["Form", "-Planted-", "Pw-93z"].concat(),
            github: ["gh", "p_", "R2xq7YcM1t5nVb8KpL3wZ0aJdHfG6sTuE9iO"].concat(),
            aws: ["AK", "IA", "QYLPMN5HHHFPZAM2"].concat(),
        }
    }

    pub fn all(&self) -> Vec<(&'static str, &str)> {
        vec![
            ("jwt", &self.jwt),
            ("api key", &self.api_key),
            ("query key", &self.query_key),
            ("session", &self.session),
            ("password", &self.password),
            ("form password", &self.form_password),
            ("github token", &self.github),
            ("aws key", &self.aws),
        ]
    }
}

/// Every file under `dir` and its bytes.
pub fn files_under(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read_dir") {
            let p = entry.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let bytes = std::fs::read(&p).expect("read");
                out.push((p, bytes));
            }
        }
    }
    out
}

/// Asserts `needle` occurs in no file under `dir`.
pub fn assert_nowhere(dir: &Path, what: &str, needle: &str) {
    assert!(!needle.is_empty());
    for (path, bytes) in files_under(dir) {
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "the {what} was written to {}",
            path.display()
        );
    }
}

pub struct Run {
    pub code: i32,
    pub output: String,
}

/// The recplay binary in `dir` with `env` added.
pub fn recplay(dir: &Path, args: &[&str], env: &[(String, String)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_recplay"));
    cmd.args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run recplay");
    Run {
        code: out.status.code().unwrap_or(-1),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}
