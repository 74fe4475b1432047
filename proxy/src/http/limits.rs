//! What one client may cost the HTTP proxy: connections, time and header
//! bytes. Every limit ends in a clear answer or a closed connection, never
//! in a stuck descriptor or a 502 that blames the upstream.

use std::time::Duration;

/// The HTTP proxy's limits; [`HttpLimits::default`] holds recplay's
/// defaults, which are those of `recplay record`'s flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Client connections served at once; one more is answered `503` with
    /// `Retry-After: 1` and closed.
    pub max_connections: usize,
    /// Time a client has to send a request's headers, from when the proxy
    /// starts waiting for them; a client that trickles them is closed.
    /// The clock starts when a keep-alive connection goes back to waiting
    /// for its next request, so it also bounds how long such a connection
    /// may sit idle.
    pub header_timeout: Duration,
    /// A connection waiting this long for its next request is closed; an
    /// exchange in flight is finished first. The header timeout applies as
    /// well, whichever is shorter.
    pub idle_timeout: Duration,
    /// Time the upstream has to start answering once the request is sent;
    /// past it the client gets `504` and nothing is recorded.
    pub response_timeout: Duration,
    /// Largest request head (request line and headers); a larger one gets
    /// `431`. At least [`MIN_HEADER_BYTES`].
    pub max_header_bytes: usize,
}

/// The smallest head limit accepted: real clients send cookies and
/// tokens of a few KiB, and a lower limit would refuse them.
pub const MIN_HEADER_BYTES: usize = 8 * 1024;

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_connections: 1024,
            header_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(75),
            response_timeout: Duration::from_secs(60),
            max_header_bytes: 64 * 1024,
        }
    }
}
