//! The recording HTTP proxy.
