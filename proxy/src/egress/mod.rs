//! Outgoing HTTP: the calls the app makes to other services, recorded as
//! Keploy `kind: Http` mocks and served back at replay, so a replay never
//! reaches a payment API or an LLM gateway.
//!
//! # Layout
//! - [`route`]: the ways a call reaches recplay — a named reverse route
//!   (`--egress NAME=URL`, the app reads `RECPLAY_EGRESS_<NAME>_URL`) or
//!   the forward proxy (`HTTP_PROXY`) — and the environment that tells
//!   the app about them.
//! - [`record`]: [`EgressRecorder`], the sink that appends each call to
//!   mocks.yaml as `http-N`, tied to the test whose window held it.
//! - [`forward`]: the recording forward proxy (absolute-form requests,
//!   and `CONNECT` tunnels through [`tunnel`], signed by [`ca`]).
//! - [`matcher`]: which recorded call answers an incoming one.
//! - [`serve`]: the replay listeners answering from the matcher, streamed
//!   answers event by event.
//! - `listener`: both kinds of listener on the one server skeleton
//!   ([`crate::serve`]): the cap, the drain, the refusal.

pub mod ca;
pub mod forward;
mod listener;
pub mod matcher;
pub mod record;
pub mod route;
pub mod serve;
pub mod tunnel;

pub use matcher::{CallUsage, EgressMatcher, EgressNoise, HttpMiss};
pub use record::EgressRecorder;
pub use route::{EgressRoute, PROXY_ROUTE};
pub use serve::EgressServer;

/// The `kind:` of an outgoing-call mock, as Keploy writes it.
pub const HTTP_MOCK_KIND: &str = "Http";
