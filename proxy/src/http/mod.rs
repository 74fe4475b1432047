//! The recording HTTP proxy.
//!
//! # Layout
//! - [`server`]: [`HttpProxy`] — the listener on the shared
//!   [`crate::serve`] loop: TLS, the refusal past the connection cap.
//! - [`limits`]: [`HttpLimits`], what one client may cost.
//! - `wire`: HTTP/1.1 as bytes — heads parsed with httparse and written
//!   back without hop-by-hop headers, and where each body ends (a chunked
//!   body walked as it streams).
//! - `connection`: one client connection and its own upstream
//!   connection: requests read in order (pipelining, keep-alive), the
//!   header and idle timeouts, the answers the proxy gives itself (400,
//!   431, 502, 504), upgrades passed through.
//! - `forward`: one recorded exchange's phases — the request and its body
//!   to the upstream, the response streamed back as it arrives, the record
//!   written before the response's last bytes.
//! - [`capture`]: the capped copy of a body kept for the record (size and
//!   sha256 past the cap).
//! - [`exchange`]: what a finished exchange is, and [`ExchangeSink`], the
//!   hook recorders implement.
//! - [`recorder`]: [`TestSetRecorder`], the sink writing each exchange to
//!   the test set's [`crate::journal`] before the client has its last
//!   bytes.
//! - [`entry`]: an exchange as a journal record and back.
//! - [`materializer`]: the background thread (and the recovery step)
//!   turning journal records into `tests/test-N.yaml`; `pace` keeps it to
//!   a tenth of a core while traffic is heavy.
//! - [`case`], [`noise`]: building a Keploy test case — query, record-time
//!   noise, curl; headers and bodies take the stored form of
//!   [`crate::testset::http_form`].
//! - [`upstream`]: where requests go and how (rustls for https, loaded by
//!   [`crate::tls`]).
//! - [`error`]: set-up failures.

pub mod capture;
pub mod case;
mod connection;
pub mod entry;
pub mod error;
pub mod exchange;
mod forward;
pub mod limits;
pub mod materializer;
pub mod noise;
mod pace;
pub mod recorder;
pub mod server;
pub mod upstream;
mod wire;

pub use error::HttpProxyError;
pub use exchange::{Exchange, ExchangeSink, Hold, RequestHead, ResponseHead};
pub use limits::HttpLimits;
pub use recorder::{RecorderCounts, TestSetRecorder};
pub use server::{refuse_with_503, DrainReport, HttpProxy, HttpProxyConfig, DEFAULT_BODY_CAP};
pub use upstream::Upstream;
