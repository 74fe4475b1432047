//! Values for the placeholders a recording holds in place of its secrets.
//!
//! A recorded request may carry `{{recplay.secret.<name>}}` where the
//! recorder found a credential; before it is sent again each one is filled
//! from `RECPLAY_SECRET_<NAME>`, else from the secrets file keploy.yml
//! names (`record.redact.secretsFile`, a YAML map name -> value). The
//! environment wins so CI can override a file kept for local runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use recplay_proxy::testset::redact::{env_var, fill, has_placeholder};
use recplay_proxy::testset::HttpRequest;

/// Where placeholder values come from.
#[derive(Debug, Default)]
pub struct Secrets {
    file: Option<PathBuf>,
    values: BTreeMap<String, String>,
}

impl Secrets {
    /// Reads the secrets file when one is named; a named file that cannot
    /// be read or is not a map of scalars stops the run.
    pub fn load(file: Option<&Path>) -> Result<Self> {
        let Some(file) = file else {
            return Ok(Secrets::default());
        };
        let text = std::fs::read_to_string(file).with_context(|| {
            format!(
                "could not read the secrets file {} (keploy.yml record.redact.secretsFile)",
                file.display()
            )
        })?;
        let shape = || {
            format!(
                "the secrets file {} must be a YAML map of placeholder name to value \
                 (`authorization_1: \"...\"`)",
                file.display()
            )
        };
        let raw: Option<BTreeMap<String, serde_yaml::Value>> =
            serde_yaml::from_str(&text).with_context(shape)?;
        let mut values = BTreeMap::new();
        for (name, value) in raw.unwrap_or_default() {
            // A number or a boolean is written as YAML spells it.
            let text = match value {
                serde_yaml::Value::String(s) => s,
                serde_yaml::Value::Number(n) => n.to_string(),
                serde_yaml::Value::Bool(b) => b.to_string(),
                _ => anyhow::bail!("{}: the value of {name:?} is not a string", shape()),
            };
            values.insert(name, text);
        }
        Ok(Secrets {
            file: Some(file.to_path_buf()),
            values,
        })
    }

    fn value(&self, name: &str) -> Option<String> {
        std::env::var(env_var(name))
            .ok()
            .or_else(|| self.values.get(name).cloned())
    }

    fn fill(&self, text: &str) -> Result<String> {
        fill(text, |name| self.value(name)).map_err(|name| {
            let file = match &self.file {
                Some(f) => format!("add `{name}: <value>` to the secrets file {}", f.display()),
                None => format!(
                    "name a secrets file holding `{name}: <value>` in keploy.yml record.redact.secretsFile"
                ),
            };
            anyhow!(
                "the recorded request needs the secret {{{{recplay.secret.{name}}}}}: set the environment variable {} or {file}",
                env_var(&name)
            )
        })
    }

    /// `recorded` with every placeholder filled; the request as recorded
    /// when it holds none.
    pub fn fill_request(&self, recorded: &HttpRequest) -> Result<HttpRequest> {
        let mut req = recorded.clone();
        req.url = self.fill(&req.url)?;
        for v in req.url_params.values_mut() {
            *v = self.fill(v)?;
        }
        for v in req.header.values_mut() {
            *v = self.fill(v)?;
        }
        for values in req.body.header_repeated.values_mut() {
            for v in values.iter_mut() {
                *v = self.fill(v)?;
            }
        }
        if req.body.body_encoding.is_none() && has_placeholder(&req.body.body) {
            req.body.body = self.fill(&req.body.body)?;
        }
        Ok(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secrets_file_fills_requests_and_a_missing_value_names_both_sources() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("secrets.yaml");
        std::fs::write(&file, "token_1: \"abc\"\npin_1: 1234\n").expect("write");
        let secrets = Secrets::load(Some(&file)).expect("loads");
        let mut req = HttpRequest {
            url: "http://h/x?token={{recplay.secret.token_1}}".into(),
            ..HttpRequest::default()
        };
        req.header
            .insert("X-Pin".into(), "{{recplay.secret.pin_1}}".into());
        let filled = secrets.fill_request(&req).expect("filled");
        assert_eq!(filled.url, "http://h/x?token=abc");
        assert_eq!(filled.header["X-Pin"], "1234");

        req.body.body = "{\"p\":\"{{recplay.secret.nowhere_7}}\"}".into();
        let err = format!("{:#}", secrets.fill_request(&req).expect_err("missing"));
        assert!(
            err.contains("{{recplay.secret.nowhere_7}}")
                && err.contains("RECPLAY_SECRET_NOWHERE_7")
                && err.contains("secrets.yaml"),
            "{err}"
        );

        std::fs::write(&file, "- not\n- a map\n").expect("write");
        assert!(Secrets::load(Some(&file)).is_err());
        assert!(Secrets::load(Some(&dir.path().join("absent.yaml"))).is_err());
    }
}
