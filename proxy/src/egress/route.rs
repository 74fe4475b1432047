//! The named reverse routes of `--egress NAME=URL`, and the environment
//! variables that point the app at recplay's listeners.

use super::ca::ProjectCa;
use crate::http::{HttpProxyError, Upstream};

/// What the forward proxy's calls are recorded under, in place of a route
/// name.
pub const PROXY_ROUTE: &str = "proxy";

/// One `--egress NAME=URL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressRoute {
    /// As given; the environment variable uses [`EgressRoute::env_var`].
    pub name: String,
    /// The real service's base URL.
    pub url: String,
}

impl EgressRoute {
    /// Parses `NAME=URL`; the URL must be http:// or https://.
    pub fn parse(text: &str) -> Result<Self, HttpProxyError> {
        let invalid = |reason: &str| HttpProxyError::InvalidUpstream {
            url: text.to_string(),
            reason: reason.to_string(),
        };
        let (name, url) = text
            .split_once('=')
            .ok_or_else(|| invalid("expected NAME=URL, e.g. openai=https://api.openai.com"))?;
        let name = name.trim();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(invalid(
                "the route name must be letters, digits, `_` or `-` (it becomes an environment variable)",
            ));
        }
        if name.eq_ignore_ascii_case(PROXY_ROUTE) {
            return Err(invalid(
                "`proxy` names the forward proxy; pick another route name",
            ));
        }
        Upstream::parse(url.trim())?;
        Ok(EgressRoute {
            name: name.to_string(),
            url: url.trim().trim_end_matches('/').to_string(),
        })
    }

    /// `RECPLAY_EGRESS_<NAME>_URL`, the name upper-cased, `-` as `_`.
    pub fn env_var(&self) -> String {
        format!(
            "RECPLAY_EGRESS_{}_URL",
            self.name.to_ascii_uppercase().replace('-', "_")
        )
    }
}

/// `HTTP_PROXY` and `http_proxy` pointing at the forward proxy on `port`:
/// clients read one or the other.
pub fn proxy_env(port: u16) -> Vec<(String, String)> {
    let url = format!("http://127.0.0.1:{port}");
    vec![
        ("HTTP_PROXY".to_string(), url.clone()),
        ("http_proxy".to_string(), url),
    ]
}

/// `HTTPS_PROXY` and `https_proxy` pointing at the forward proxy on
/// `port`, and the variables that make clients trust `ca`'s certificates.
pub fn https_proxy_env(port: u16, ca: &ProjectCa) -> Vec<(String, String)> {
    let url = format!("http://127.0.0.1:{port}");
    let mut env = vec![
        ("HTTPS_PROXY".to_string(), url.clone()),
        ("https_proxy".to_string(), url),
    ];
    env.extend(ca.trust_env());
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_route_parses_and_names_its_variable() {
        let r = EgressRoute::parse("open-ai=https://api.openai.com/").expect("parse");
        assert_eq!(r.url, "https://api.openai.com");
        assert_eq!(r.env_var(), "RECPLAY_EGRESS_OPEN_AI_URL");
        assert!(EgressRoute::parse("nourl").is_err());
        assert!(EgressRoute::parse("a b=http://x").is_err());
        assert!(EgressRoute::parse("x=ftp://x").is_err());
        assert!(EgressRoute::parse("proxy=http://x").is_err());
    }
}
