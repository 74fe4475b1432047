//! Deterministic mutation tests over everything that reads bytes or text a
//! peer controls: the frontend and backend decoders, the matcher's lexer
//! and identity keys, the recorder's exchange grouping and the mock
//! server's connection loop.
//!
//! Inputs are valid messages mutated by a seeded generator, so every run
//! sees the same cases and a failure names the seed and the bytes that
//! caused it. The properties are the ones the proxy relies on: no panic,
//! framing that agrees with the length word, no allocation sized by a
//! claimed length, and linear work on any input.
//!
//! - [`alloc`]: measures the largest allocation made while decoding;
//! - [`seeds`]: valid encoded messages to start from;
//! - [`decoders`]: frontend and backend decoders in every decode context;
//! - [`text`]: the lexer, identity keys and session-statement detection;
//! - [`exchange`]: the recorder fed arbitrary message sequences;
//! - [`mock_server`]: the replay server fed arbitrary client bytes.

mod alloc;
mod decoders;
mod exchange;
mod mock_server;
pub(super) mod seeds;
mod text;

pub use crate::test_rng::Rng;

/// Length words worth trying: the boundaries of every check the framing
/// makes, negative values and values past every limit.
const LENGTHS: &[i32] = &[
    0,
    1,
    3,
    4,
    5,
    7,
    8,
    9,
    -1,
    -2,
    -4,
    i32::MIN,
    i32::MAX,
    10_000,
    10_001,
    1 << 30,
    (1 << 30) + 1,
    (1 << 30) - 1,
];

/// Int16 counts worth trying.
const COUNTS: &[i16] = &[0, 1, 2, -1, -2, i16::MAX, i16::MIN, 0x0100];

/// Applies one to four random mutations to `buf`, drawing spliced bytes
/// from `pool`.
pub fn mutate(rng: &mut Rng, buf: &mut Vec<u8>, pool: &[Vec<u8>]) {
    for _ in 0..1 + rng.below(4) {
        mutate_once(rng, buf, pool);
    }
}

fn mutate_once(rng: &mut Rng, buf: &mut Vec<u8>, pool: &[Vec<u8>]) {
    let len = buf.len();
    match rng.below(12) {
        0 if len > 0 => {
            let at = rng.below(len);
            buf[at] ^= 1 << rng.below(8);
        }
        1 if len > 0 => {
            let at = rng.below(len);
            let any = rng.byte();
            buf[at] = *rng.pick(&[0, 0xff, 0x7f, 0x80, b'$', b'\'', any]);
        }
        2 => {
            let at = rng.below(len + 1);
            for _ in 0..1 + rng.below(4) {
                buf.insert(at, rng.byte());
            }
        }
        3 if len > 0 => {
            let at = rng.below(len);
            let n = 1 + rng.below((len - at).min(8));
            buf.drain(at..at + n);
        }
        4 => buf.truncate(rng.below(len + 1)),
        // A length word: at the tagged offset, the start-up offset, or
        // anywhere (a value length inside a body).
        5 if len >= 4 => {
            let at = match rng.below(3) {
                0 if len >= 5 => 1,
                1 => 0,
                _ => rng.below(len - 3),
            };
            let value = match rng.below(4) {
                0 => len as i32 + rng.below(3) as i32 - 1,
                _ => *rng.pick(LENGTHS),
            };
            buf[at..at + 4].copy_from_slice(&value.to_be_bytes());
        }
        6 if len >= 2 => {
            let at = rng.below(len - 1);
            buf[at..at + 2].copy_from_slice(&rng.pick(COUNTS).to_be_bytes());
        }
        7 => buf.extend_from_slice(&rng.pick(pool)[..]),
        8 if len > 0 => {
            let at = rng.below(len);
            let n = 1 + rng.below((len - at).min(16));
            let copy = buf[at..at + n].to_vec();
            let to = rng.below(len + 1);
            buf.splice(to..to, copy);
        }
        9 => {
            let other = rng.pick(pool);
            if !other.is_empty() {
                let from = rng.below(other.len());
                let n = 1 + rng.below(other.len() - from);
                let to = rng.below(len + 1);
                buf.splice(to..to, other[from..from + n].iter().copied());
            }
        }
        10 if len > 0 => {
            let at = rng.below(len);
            if buf[at] == 0 {
                buf.remove(at);
            } else {
                buf[at] = 0;
            }
        }
        _ if len > 0 => buf[0] = *rng.pick(b"QPBDECSHXcdfFp RKZ12ntTNAGHWVv\0\x04"),
        _ => buf.push(rng.byte()),
    }
}

/// Bytes as hex, for failure messages that can be pasted into a test.
pub fn hex(buf: &[u8]) -> String {
    buf.iter().map(|b| format!("{b:02x}")).collect()
}
