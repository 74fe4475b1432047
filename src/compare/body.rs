//! Body bytes: rebuilding them from the stored form, and decoding
//! compressed bodies so they are compared by content, not by compression.

use std::io::{Read, Write};

use anyhow::{bail, Context, Result};
use base64::Engine;
use recplay_proxy::testset::http_case::{BodyEncoding, StoredBody};

/// The bytes a stored body stands for, in decoded (uncompressed) form.
pub fn stored_bytes(body: &StoredBody) -> Result<Vec<u8>> {
    match body.body_encoding {
        Some(BodyEncoding::Base64) => base64::engine::general_purpose::STANDARD
            .decode(body.body.trim())
            .context("the stored body is marked base64 but does not decode"),
        None => Ok(body.body.as_bytes().to_vec()),
    }
}

/// Decodes `bytes` sent with `Content-Encoding: encoding`. Unknown
/// encodings and `identity` come back unchanged.
pub fn decode(encoding: &str, bytes: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    // Applied encodings are listed in order; undo them in reverse.
    let mut current = bytes.to_vec();
    for enc in encoding.split(',').map(str::trim).rev() {
        out.clear();
        match enc.to_ascii_lowercase().as_str() {
            "gzip" | "x-gzip" => {
                flate2::read::MultiGzDecoder::new(&current[..])
                    .read_to_end(&mut out)
                    .context("the gzip body does not decode")?;
            }
            "deflate" => {
                // Servers disagree on whether deflate means zlib or raw.
                if flate2::read::ZlibDecoder::new(&current[..])
                    .read_to_end(&mut out)
                    .is_err()
                {
                    out.clear();
                    flate2::read::DeflateDecoder::new(&current[..])
                        .read_to_end(&mut out)
                        .context("the deflate body does not decode")?;
                }
            }
            "br" => {
                brotli::Decompressor::new(&current[..], 4096)
                    .read_to_end(&mut out)
                    .context("the brotli body does not decode")?;
            }
            _ => out.extend_from_slice(&current),
        }
        current = std::mem::take(&mut out);
    }
    Ok(current)
}

/// Compresses `bytes` with `encoding`, for replaying a request whose body
/// was stored decoded but sent compressed.
pub fn encode(encoding: &str, bytes: &[u8]) -> Result<Vec<u8>> {
    let mut current = bytes.to_vec();
    for enc in encoding.split(',').map(str::trim) {
        current = match enc.to_ascii_lowercase().as_str() {
            "gzip" | "x-gzip" => {
                let mut w = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                w.write_all(&current)?;
                w.finish()?
            }
            "deflate" => {
                let mut w =
                    flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
                w.write_all(&current)?;
                w.finish()?
            }
            "br" => {
                let mut out = Vec::new();
                {
                    let mut w = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
                    w.write_all(&current)?;
                }
                out
            }
            "identity" | "" => current,
            other => bail!("cannot re-encode a request body as {other:?}"),
        };
    }
    Ok(current)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_encoding_round_trips() {
        let text = b"{\"a\": [1, 2, 3], \"b\": \"hello hello hello\"}";
        for enc in ["gzip", "deflate", "br", "identity", "gzip, br"] {
            let packed = encode(enc, text).expect("encode");
            assert_eq!(decode(enc, &packed).expect("decode"), text, "{enc}");
        }
    }

    #[test]
    fn a_corrupt_gzip_body_is_an_error_not_a_panic() {
        assert!(decode("gzip", b"not gzip at all").is_err());
    }
}
