//! SIGINT and SIGTERM, watched for the whole life of a command.
//!
//! Registered before the app is started and kept until the command
//! returns: a signal that arrives while the app starts, while recplay waits
//! for it to be ready, while recording or while shutting down is always
//! seen, so it always stops the app's process group and ends the command
//! with a message. (Left to the default disposition, SIGINT would kill
//! recplay and orphan the app; and once Tokio has installed its handler,
//! nobody listening means the signal is silently dropped.)

use anyhow::{Context, Result};
use tokio::signal::unix::{signal, Signal, SignalKind};

/// The stop signals of one command.
pub struct StopSignals {
    int: Signal,
    term: Signal,
}

impl StopSignals {
    /// Starts watching; call first, before anything that must be cleaned up.
    pub fn watch() -> Result<Self> {
        Ok(StopSignals {
            int: signal(SignalKind::interrupt()).context("could not watch SIGINT")?,
            term: signal(SignalKind::terminate()).context("could not watch SIGTERM")?,
        })
    }

    /// The next signal's name, "SIGINT" or "SIGTERM".
    pub async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.int.recv() => "SIGINT",
            _ = self.term.recv() => "SIGTERM",
        }
    }
}
