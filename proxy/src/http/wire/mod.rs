//! HTTP/1.1 as bytes: the heads parsed with httparse and written back, and
//! where each body ends. The proxy moves the bytes between these points as
//! they arrive; nothing here does I/O.

pub(crate) mod framing;
pub(crate) mod head;
pub(crate) mod walk;

#[cfg(test)]
mod arbitrary_input_tests {
    use super::framing::Chunked;
    use super::head::{parse_request, parse_response};
    use crate::test_rng::Rng;

    const REQUEST: &[u8] = b"POST /a?b=1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-A: 1\r\n\r\nabc";
    const CHUNKS: &[u8] = b"5;x=y\r\nhello\r\n0\r\nT: 1\r\n\r\n";

    /// Damaged and random heads and chunked bodies: a head, a "not yet",
    /// or an error, never a panic; a chunk walk never claims more bytes
    /// than it was given.
    #[test]
    fn any_bytes_are_a_head_an_error_or_not_yet_never_a_panic() {
        for seed in 1..=20_000u64 {
            let mut rng = Rng::new(seed);
            let input = match rng.below(4) {
                0 => rng.damage(REQUEST),
                1 => rng.damage(RESPONSE),
                2 => rng.damage(CHUNKS),
                _ => rng.bytes(64),
            };
            if let Ok(Some((_, len))) = parse_request(&input, 1024) {
                assert!(len <= input.len(), "seed {seed}: {input:?}");
            }
            if let Ok(Some((_, len))) = parse_response(&input, 1024) {
                assert!(len <= input.len(), "seed {seed}: {input:?}");
            }
            let mut walker = Chunked::default();
            let mut payload = 0;
            if let Ok(used) = walker.feed(&input, |d| payload += d.len()) {
                assert!(used <= input.len(), "seed {seed}: {input:?}");
                assert!(payload <= used, "seed {seed}: {input:?}");
            }
        }
    }
}
