//! How a captured body is written into a test case: text when it is UTF-8,
//! decoded first when it was gzip/deflate/br on the wire (the encoding is
//! remembered so replay can rebuild the bytes), base64 otherwise.

use std::io::Read;

use base64::Engine;

use crate::testset::http_case::{BodyEncoding, StoredBody, Truncation};

use super::tee::CapturedBody;

/// Decodes `bytes` per `Content-Encoding`, refusing to produce more than
/// `limit` bytes (a small compressed body can expand enormously).
fn decode(encoding: &str, bytes: &[u8], limit: u64) -> Option<Vec<u8>> {
    fn read_limited(reader: impl Read, limit: u64) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        reader
            .take(limit.saturating_add(1))
            .read_to_end(&mut out)
            .ok()?;
        (out.len() as u64 <= limit).then_some(out)
    }
    match encoding {
        "gzip" | "x-gzip" => read_limited(flate2::read::MultiGzDecoder::new(bytes), limit),
        // HTTP's "deflate" is zlib-wrapped, but some servers send it raw.
        "deflate" => read_limited(flate2::read::ZlibDecoder::new(bytes), limit)
            .or_else(|| read_limited(flate2::read::DeflateDecoder::new(bytes), limit)),
        "br" => read_limited(brotli::Decompressor::new(bytes, 4096), limit),
        _ => None,
    }
}

/// Text when the bytes are UTF-8, base64 otherwise. A prefix cut inside a
/// multi-byte character still counts as text, minus the partial character.
fn text_or_base64(bytes: Vec<u8>, cut: bool) -> (String, Option<BodyEncoding>) {
    match String::from_utf8(bytes) {
        Ok(text) => (text, None),
        Err(err) => {
            let utf8 = err.utf8_error();
            if cut && utf8.error_len().is_none() {
                let mut bytes = err.into_bytes();
                bytes.truncate(utf8.valid_up_to());
                // valid_up_to marks a valid prefix; the fallback is unreachable.
                let text = String::from_utf8(bytes).unwrap_or_default();
                (text, None)
            } else {
                let text = base64::engine::general_purpose::STANDARD.encode(err.as_bytes());
                (text, Some(BodyEncoding::Base64))
            }
        }
    }
}

/// Builds the stored form of a body that crossed the proxy with the given
/// `Content-Encoding` header value (if any).
pub fn store_body(
    captured: CapturedBody,
    content_encoding: Option<&str>,
    limit: u64,
) -> StoredBody {
    if captured.truncated() {
        // Only a prefix was kept: it cannot be decoded reliably, so it is
        // stored as it was on the wire.
        let truncation = Truncation {
            size: captured.size,
            sha256: captured.sha256.clone().unwrap_or_default(),
        };
        let (body, body_encoding) = text_or_base64(captured.bytes, true);
        return StoredBody {
            body,
            body_encoding,
            body_truncated: Some(truncation),
            ..StoredBody::default()
        };
    }
    let encoding = content_encoding
        .map(|e| e.trim().to_ascii_lowercase())
        .filter(|e| !e.is_empty() && e != "identity");
    let decoded = encoding
        .as_deref()
        .filter(|_| !captured.bytes.is_empty())
        .and_then(|e| decode(e, &captured.bytes, limit));
    let (bytes, content_encoding) = match decoded {
        Some(bytes) => (bytes, encoding),
        None => (captured.bytes, None),
    };
    let (body, body_encoding) = text_or_base64(bytes, false);
    StoredBody {
        body,
        body_encoding,
        content_encoding,
        ..StoredBody::default()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn whole(bytes: &[u8]) -> CapturedBody {
        CapturedBody {
            bytes: bytes.to_vec(),
            size: bytes.len() as u64,
            sha256: None,
            complete: true,
        }
    }

    #[test]
    fn gzip_is_stored_decoded_and_remembered() {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(b"{\"a\":1}").expect("gzip");
        let gz = enc.finish().expect("gzip");
        let stored = store_body(whole(&gz), Some("gzip"), 1024);
        assert_eq!(stored.body, "{\"a\":1}");
        assert_eq!(stored.content_encoding.as_deref(), Some("gzip"));
        assert_eq!(stored.body_encoding, None);
    }

    #[test]
    fn binary_is_base64_and_a_bomb_is_not_expanded() {
        let stored = store_body(whole(&[0xff, 0x00, 0x01]), None, 1024);
        assert_eq!(stored.body, "/wAB");
        assert_eq!(stored.body_encoding, Some(BodyEncoding::Base64));

        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&vec![b'a'; 1 << 20]).expect("gzip");
        let gz = enc.finish().expect("gzip");
        let stored = store_body(whole(&gz), Some("gzip"), 1024);
        assert_eq!(stored.content_encoding, None, "kept as wire bytes");
        assert_eq!(stored.body_encoding, Some(BodyEncoding::Base64));
    }

    #[test]
    fn a_cut_text_prefix_drops_a_split_character() {
        let text = "héllo".as_bytes();
        let captured = CapturedBody {
            bytes: text[..2].to_vec(),
            size: 6,
            sha256: Some("00".into()),
            complete: true,
        };
        let stored = store_body(captured, None, 2);
        assert_eq!(stored.body, "h");
        assert_eq!(stored.body_truncated.map(|t| t.size), Some(6));
    }
}
