//! Header names and the ordered header map of a message.

use std::collections::BTreeMap;

use crate::testset::http_case::Headers;

/// Headers that describe one hop, not the message (RFC 9110 §7.6.1): a
/// proxy does not forward them and a replay does not owe them.
pub const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Headers that frame a body: what they say follows from the body.
const FRAMING: [&str; 2] = ["content-length", "transfer-encoding"];

pub fn is_hop_by_hop(name: &str) -> bool {
    HOP_BY_HOP.iter().any(|h| h.eq_ignore_ascii_case(name))
}

pub fn is_framing_header(name: &str) -> bool {
    FRAMING.iter().any(|h| h.eq_ignore_ascii_case(name))
}

/// Hop-by-hop or framing: a header about this transfer, not the content.
pub fn is_transfer_header(name: &str) -> bool {
    is_hop_by_hop(name) || is_framing_header(name)
}

/// `content-type` → `Content-Type`, the form Keploy (Go's net/http) writes.
/// Like Go's `CanonicalHeaderKey`, only ASCII letters change case.
pub fn canonical_header_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        out.push(if upper {
            c.to_ascii_uppercase()
        } else {
            c.to_ascii_lowercase()
        });
        upper = c == '-';
    }
    out
}

/// A message's headers as stored: Keploy's single-valued map (repeats
/// joined with `, `) in the order the names first arrived, plus the exact
/// values of every repeated header.
pub fn header_fields<N, V>(
    headers: impl IntoIterator<Item = (N, V)>,
) -> (Headers, BTreeMap<String, Vec<String>>)
where
    N: AsRef<str>,
    V: AsRef<[u8]>,
{
    let headers = headers.into_iter();
    let mut joined = Headers::with_capacity(headers.size_hint().0);
    let mut repeated: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in headers {
        let key = canonical_header_name(name.as_ref());
        let value = String::from_utf8_lossy(value.as_ref());
        match joined.get_mut(&key) {
            Some(existing) => {
                let values = repeated
                    .entry(key)
                    .or_insert_with(|| vec![existing.clone()]);
                values.push(value.clone().into_owned());
                existing.push_str(", ");
                existing.push_str(&value);
            }
            None => {
                joined.insert(key, value.into_owned());
            }
        }
    }
    (joined, repeated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_take_keploys_canonical_form() {
        assert_eq!(canonical_header_name("content-type"), "Content-Type");
        assert_eq!(canonical_header_name("x-request-id"), "X-Request-Id");
        assert_eq!(canonical_header_name("X-API-KEY"), "X-Api-Key");
    }

    #[test]
    fn fields_keep_arrival_order_and_repeats() {
        let (joined, repeated) = header_fields([
            ("host", "h"),
            ("user-agent", "ua"),
            ("x-tag", "a"),
            ("accept", "*/*"),
            ("x-tag", "b"),
        ]);
        let names: Vec<&str> = joined.keys().map(String::as_str).collect();
        assert_eq!(names, ["Host", "User-Agent", "X-Tag", "Accept"]);
        assert_eq!(joined["X-Tag"], "a, b");
        assert_eq!(repeated["X-Tag"], ["a", "b"]);
        assert_eq!(repeated.len(), 1);
    }
}
