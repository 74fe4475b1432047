//! The recording HTTP proxy.
//!
//! # Layout
//! - [`server`]: [`HttpProxy`] — an HTTP connection on the shared
//!   [`crate::serve`] loop: TLS on the listener, HTTP/1.1 keep-alive and
//!   pipelining, the refusal past the connection cap.
//! - [`limits`]: [`HttpLimits`], what one client may cost; `activity`
//!   tracks the last byte a connection moved, for the idle timeout.
//! - `client_body`: the client's request body, flagging a failure that is
//!   the client's (answered 400, not 502).
//! - `forward`: one exchange's phases — rewrite the request for the
//!   upstream, stream both bodies through [`tee`], pass upgrades through,
//!   answer 502 when the upstream fails.
//! - [`tee`]: a body wrapper keeping a capped copy (size and sha256 past
//!   the cap) while frames stream on.
//! - [`exchange`]: what a finished exchange is, and [`ExchangeSink`], the
//!   hook recorders implement.
//! - [`recorder`]: [`TestSetRecorder`], the sink writing each exchange to
//!   the test set's [`crate::journal`] before the client has its last
//!   bytes.
//! - [`entry`]: an exchange as a journal record and back.
//! - [`materializer`]: the background thread (and the recovery step)
//!   turning journal records into `tests/test-N.yaml`.
//! - [`case`], [`noise`]: building a Keploy test case — query, record-time
//!   noise, curl; headers and bodies take the stored form of
//!   [`crate::testset::http_form`].
//! - `link`: each client connection's own upstream connection, driven by
//!   the client connection's task.
//! - [`upstream`]: where requests go and how (rustls for https, loaded by
//!   [`crate::tls`]).
//! - [`error`]: set-up failures.

mod activity;
pub mod case;
mod client_body;
pub mod entry;
pub mod error;
pub mod exchange;
mod forward;
pub mod limits;
mod link;
pub mod materializer;
pub mod noise;
pub mod recorder;
pub mod server;
pub mod tee;
pub mod upstream;

pub use error::HttpProxyError;
pub use exchange::{Exchange, ExchangeSink, Hold, RequestHead, ResponseHead};
pub use forward::{ProxyBody, ResponseEnd};
pub use limits::HttpLimits;
pub use recorder::{RecorderCounts, TestSetRecorder};
pub use server::{refuse_with_503, DrainReport, HttpProxy, HttpProxyConfig, DEFAULT_BODY_CAP};
pub use upstream::Upstream;
