//! Which headers of an outgoing call are credentials, and what is written
//! in their place. One small rule, kept in one function, so a fuller
//! redaction policy can replace it.

/// Written instead of a credential's value.
pub const PLACEHOLDER: &str = "<recplay:redacted>";

/// Whether the header named `name` carries a credential: `Authorization`,
/// `Proxy-Authorization`, `Cookie`, `Set-Cookie`, and API-key headers
/// (`X-Api-Key`, `Api-Key`, `X-Goog-Api-Key`, anything ending in
/// `-api-key`, `-token` or `-secret`).
pub fn is_secret_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    matches!(
        n.as_str(),
        "authorization" | "proxy-authorization" | "cookie" | "set-cookie" | "api-key" | "apikey"
    ) || n.ends_with("-api-key")
        || n.ends_with("-apikey")
        || n.ends_with("-token")
        || n.ends_with("-secret")
}

/// `headers` with every credential's value replaced by [`PLACEHOLDER`].
pub fn redact_headers(headers: &mut crate::testset::Headers) {
    for (name, value) in headers.iter_mut() {
        if is_secret_header(name) {
            *value = PLACEHOLDER.to_string();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_replaced_and_the_rest_kept() {
        let mut h = crate::testset::Headers::new();
        h.insert("Authorization".into(), "Bearer sk-123".into());
        h.insert("X-Api-Key".into(), "k".into());
        h.insert("Cookie".into(), "s=1".into());
        h.insert("Content-Type".into(), "application/json".into());
        redact_headers(&mut h);
        assert_eq!(h["Authorization"], PLACEHOLDER);
        assert_eq!(h["X-Api-Key"], PLACEHOLDER);
        assert_eq!(h["Cookie"], PLACEHOLDER);
        assert_eq!(h["Content-Type"], "application/json");
    }
}
