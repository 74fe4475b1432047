//! What recplay's own PostgreSQL listeners say when they turn a client
//! away: an ErrorResponse, written in the protocol's framing, then close.
//! Shared by the recorder and the mock server so both refuse alike.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::pgwire::wire::MAX_STARTUP_LEN;

/// SQLSTATE too_many_connections, what PostgreSQL answers past
/// `max_connections`.
pub const TOO_MANY_CONNECTIONS: &str = "53300";

/// SSLRequest and GSSENCRequest codes: asked before the start-up packet.
const ENCRYPTION_REQUESTS: [u32; 2] = [80_877_103, 80_877_104];

/// An ErrorResponse frame, for errors recplay itself reports to a client.
pub fn error_response(severity: &str, code: &str, message: &str) -> Vec<u8> {
    let mut body = Vec::with_capacity(message.len() + 32);
    for (field, value) in [
        (b'S', severity),
        (b'V', severity),
        (b'C', code),
        (b'M', message),
    ] {
        body.push(field);
        body.extend_from_slice(value.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut frame = Vec::with_capacity(body.len() + 5);
    frame.push(b'E');
    frame.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    frame.extend_from_slice(&body);
    frame
}

/// Reads one tagless start-up packet; returns its request code.
async fn read_startup(stream: &mut TcpStream) -> Option<u32> {
    let mut head = [0u8; 8];
    stream.read_exact(&mut head).await.ok()?;
    let len = usize::try_from(u32::from_be_bytes([head[0], head[1], head[2], head[3]])).ok()?;
    if !(8..=MAX_STARTUP_LEN).contains(&len) {
        return None;
    }
    let mut rest = vec![0u8; len - 8];
    stream.read_exact(&mut rest).await.ok()?;
    Some(u32::from_be_bytes([head[4], head[5], head[6], head[7]]))
}

/// Refuses a connection over the limit as PostgreSQL does: encryption
/// requests are declined (`N`) so the client gets to its start-up packet
/// and can read the error, then FATAL 53300 naming `flag`, then close.
pub async fn too_many_connections(mut stream: TcpStream, flag: &str) {
    let mut code = read_startup(&mut stream).await;
    for _ in 0..2 {
        match code {
            Some(c) if ENCRYPTION_REQUESTS.contains(&c) => {
                if stream.write_all(b"N").await.is_err() {
                    return;
                }
                code = read_startup(&mut stream).await;
            }
            _ => break,
        }
    }
    let message = format!("recplay: sorry, too many clients already ({flag}); retry later");
    let frame = error_response("FATAL", TOO_MANY_CONNECTIONS, &message);
    if stream.write_all(&frame).await.is_ok() {
        let _ = stream.shutdown().await;
        let mut sink = [0u8; 1024];
        while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
    }
}
