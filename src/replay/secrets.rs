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
    /// be read or is not a map of strings stops the run.
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
        let values: Option<BTreeMap<String, String>> =
            serde_yaml::from_str(&text).with_context(|| {
                format!(
                    "the secrets file {} must be a YAML map of placeholder name to string value",
                    file.display()
                )
            })?;
        Ok(Secrets {
            file: Some(file.to_path_buf()),
            values: values.unwrap_or_default(),
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
