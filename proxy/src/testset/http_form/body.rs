//! Bodies: to their stored form (text when UTF-8, decoded first when they
//! were compressed, base64 otherwise) and back to bytes.

use std::io::{Read, Write};

use base64::Engine;

use super::FormError;
use crate::testset::http_case::{BodyEncoding, StoredBody, Truncation};

/// The codings of a `Content-Encoding` value, in the order applied;
/// `identity` and empty items are left out.
fn codings(encoding: &str) -> impl DoubleEndedIterator<Item = String> + '_ {
    encoding
        .split(',')
        .map(|e| e.trim().to_ascii_lowercase())
        .filter(|e| !e.is_empty() && e != "identity")
}

/// Undoes `Content-Encoding: encoding`, refusing to produce more than
/// `limit` bytes: a small compressed body can expand enormously.
pub fn decode_content(encoding: &str, bytes: &[u8], limit: u64) -> Result<Vec<u8>, FormError> {
    let mut current = bytes.to_vec();
    // Applied codings are listed in order; undo them in reverse.
    for coding in codings(encoding).rev() {
        current = match coding.as_str() {
            "gzip" | "x-gzip" => read_limited(
                flate2::read::MultiGzDecoder::new(&current[..]),
                &coding,
                limit,
            )?,
            // HTTP's "deflate" is zlib-wrapped, but some servers send it raw.
            "deflate" => read_limited(flate2::read::ZlibDecoder::new(&current[..]), &coding, limit)
                .or_else(|_| {
                    read_limited(
                        flate2::read::DeflateDecoder::new(&current[..]),
                        &coding,
                        limit,
                    )
                })?,
            "br" => read_limited(
                brotli::Decompressor::new(&current[..], 4096),
                &coding,
                limit,
            )?,
            _ => return Err(FormError::UnknownEncoding(coding)),
        };
    }
    Ok(current)
}

fn read_limited(reader: impl Read, encoding: &str, limit: u64) -> Result<Vec<u8>, FormError> {
    let mut out = Vec::new();
    reader
        .take(limit.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|source| FormError::Decode {
            encoding: encoding.to_string(),
            source,
        })?;
    if out.len() as u64 > limit {
        return Err(FormError::TooLarge {
            encoding: encoding.to_string(),
            limit,
        });
    }
    Ok(out)
}

/// Compresses `bytes` with `encoding`, for sending a body that was stored
/// decoded but crossed the wire compressed.
pub fn encode_content(encoding: &str, bytes: &[u8]) -> Result<Vec<u8>, FormError> {
    let mut current = bytes.to_vec();
    for coding in codings(encoding) {
        let failed = |source| FormError::Encode {
            encoding: coding.clone(),
            source,
        };
        current = match coding.as_str() {
            "gzip" | "x-gzip" => {
                let mut w = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                w.write_all(&current).map_err(failed)?;
                w.finish().map_err(failed)?
            }
            "deflate" => {
                let mut w =
                    flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
                w.write_all(&current).map_err(failed)?;
                w.finish().map_err(failed)?
            }
            "br" => {
                let mut out = Vec::new();
                {
                    let mut w = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
                    w.write_all(&current).map_err(failed)?;
                }
                out
            }
            _ => return Err(FormError::UnknownEncoding(coding)),
        };
    }
    Ok(current)
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

/// The stored form of a body that crossed the wire as `bytes` with the
/// given `Content-Encoding` (if any). `cut` says the bytes are only the
/// first part of a larger body; `limit` bounds how far a compressed body
/// is expanded (past it, the wire bytes are kept).
pub fn store_body(
    bytes: Vec<u8>,
    cut: Option<Truncation>,
    content_encoding: Option<&str>,
    limit: u64,
) -> StoredBody {
    if let Some(truncation) = cut {
        // Only a prefix was kept: it cannot be decoded reliably, so it is
        // stored as it was on the wire.
        let (body, body_encoding) = text_or_base64(bytes, true);
        return StoredBody {
            body,
            body_encoding,
            body_truncated: Some(truncation),
            ..StoredBody::default()
        };
    }
    let encoding = content_encoding
        .map(|e| e.trim().to_ascii_lowercase())
        .filter(|e| codings(e).next().is_some());
    let decoded = encoding
        .as_deref()
        .filter(|_| !bytes.is_empty())
        .and_then(|e| decode_content(e, &bytes, limit).ok());
    let (bytes, content_encoding) = match decoded {
        Some(decoded) => (decoded, encoding),
        None => (bytes, None),
    };
    let (body, body_encoding) = text_or_base64(bytes, false);
    StoredBody {
        body,
        body_encoding,
        content_encoding,
        ..StoredBody::default()
    }
}

/// The bytes a stored body stands for, in decoded (uncompressed) form.
pub fn stored_bytes(body: &StoredBody) -> Result<Vec<u8>, FormError> {
    match body.body_encoding {
        Some(BodyEncoding::Base64) => {
            Ok(base64::engine::general_purpose::STANDARD.decode(body.body.trim())?)
        }
        None => Ok(body.body.as_bytes().to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_encoding_round_trips() {
        let text = b"{\"a\": [1, 2, 3], \"b\": \"hello hello hello\"}";
        for enc in ["gzip", "deflate", "br", "identity", "gzip, br"] {
            let packed = encode_content(enc, text).expect("encode");
            let back = decode_content(enc, &packed, 1024).expect("decode");
            assert_eq!(back, text, "{enc}");
        }
    }

    #[test]
    fn a_corrupt_or_unknown_body_is_an_error_not_a_panic() {
        assert!(decode_content("gzip", b"not gzip at all", 1024).is_err());
        assert!(decode_content("zstd", b"x", 1024).is_err());
    }

    #[test]
    fn gzip_is_stored_decoded_and_remembered() {
        let gz = encode_content("gzip", b"{\"a\":1}").expect("gzip");
        let stored = store_body(gz, None, Some("gzip"), 1024);
        assert_eq!(stored.body, "{\"a\":1}");
        assert_eq!(stored.content_encoding.as_deref(), Some("gzip"));
        assert_eq!(stored.body_encoding, None);
    }

    #[test]
    fn binary_is_base64_and_a_bomb_is_not_expanded() {
        let stored = store_body(vec![0xff, 0x00, 0x01], None, None, 1024);
        assert_eq!(stored.body, "/wAB");
        assert_eq!(stored.body_encoding, Some(BodyEncoding::Base64));
        assert_eq!(stored_bytes(&stored).expect("bytes"), [0xff, 0x00, 0x01]);

        let gz = encode_content("gzip", &vec![b'a'; 1 << 20]).expect("gzip");
        assert!(matches!(
            decode_content("gzip", &gz, 1024),
            Err(FormError::TooLarge { .. })
        ));
        let stored = store_body(gz, None, Some("gzip"), 1024);
        assert_eq!(stored.content_encoding, None, "kept as wire bytes");
        assert_eq!(stored.body_encoding, Some(BodyEncoding::Base64));
    }

    #[test]
    fn a_cut_text_prefix_drops_a_split_character() {
        let text = "héllo".as_bytes();
        let cut = Truncation {
            size: 6,
            sha256: "00".into(),
        };
        let stored = store_body(text[..2].to_vec(), Some(cut), None, 2);
        assert_eq!(stored.body, "h");
        assert_eq!(stored.body_truncated.map(|t| t.size), Some(6));
    }
}
