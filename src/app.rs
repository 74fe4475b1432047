//! The app under record or test, run as a child process.
//!
//! Started through `sh -c` (as Keploy does) in a process group of its own,
//! so stopping it reaches every process it forked (gunicorn workers, shell
//! pipelines): SIGTERM to the group, then SIGKILL after a grace period.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

/// A running app. Dropping it without [`AppProcess::stop`] kills the group.
pub struct AppProcess {
    child: Child,
    pgid: Pid,
    command: String,
}

impl AppProcess {
    /// Starts `sh -c command` with extra environment variables.
    pub fn spawn(command: &str, env: &[(String, String)]) -> Result<Self> {
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(command).process_group(0);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("could not start the app: sh -c {command:?}"))?;
        let pid = child
            .id()
            .context("the app exited before its process id could be read")?;
        let pgid = Pid::from_raw(i32::try_from(pid).context("process id out of range")?);
        tracing::info!(pid, command, "started the app");
        Ok(AppProcess {
            child,
            pgid,
            command: command.to_string(),
        })
    }

    /// Fails when the app has already exited (so readiness waits can stop
    /// early with a useful message).
    pub fn check_running(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "the app exited with {status} before it was ready (command: {})",
                self.command
            );
        }
        Ok(())
    }

    /// SIGTERM to the whole group, SIGKILL after `grace`.
    pub async fn stop(mut self, grace: Duration) -> Result<()> {
        if self.child.try_wait()?.is_none() {
            let _ = killpg(self.pgid, Signal::SIGTERM);
            match tokio::time::timeout(grace, self.child.wait()).await {
                Ok(status) => tracing::info!(status = %status?, "the app stopped"),
                Err(_) => {
                    tracing::warn!("the app ignored SIGTERM for {grace:?}; sending SIGKILL");
                    let _ = killpg(self.pgid, Signal::SIGKILL);
                    self.child.wait().await?;
                }
            }
        }
        // Workers that outlived their parent still belong to the group.
        let _ = killpg(self.pgid, Signal::SIGKILL);
        Ok(())
    }
}

impl Drop for AppProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = killpg(self.pgid, Signal::SIGKILL);
        }
    }
}

/// How to tell that the app is ready for traffic.
pub enum Readiness<'a> {
    /// A URL that answers 2xx.
    #[allow(dead_code)] // `recplay test --health-url`
    HealthUrl(&'a str),
    /// A TCP address that accepts connections.
    Port(&'a str),
}

/// Waits until the app is ready, or fails after `timeout` (or as soon as the
/// app exits).
pub async fn wait_ready(
    app: &mut Option<AppProcess>,
    readiness: Readiness<'_>,
    timeout: Duration,
) -> Result<()> {
    let started = Instant::now();
    loop {
        if let Some(app) = app.as_mut() {
            app.check_running()?;
        }
        let ready = match &readiness {
            Readiness::HealthUrl(url) => {
                crate::http_client::get_status(url, Duration::from_secs(2))
                    .await
                    .is_ok_and(|s| (200..300).contains(&s))
            }
            Readiness::Port(addr) => tokio::net::TcpStream::connect(addr).await.is_ok(),
        };
        if ready {
            return Ok(());
        }
        if started.elapsed() > timeout {
            let what = match readiness {
                Readiness::HealthUrl(u) => format!("{u} did not answer 2xx"),
                Readiness::Port(a) => format!("nothing accepted connections on {a}"),
            };
            bail!(
                "the app was not ready after {}s: {what}; raise --delay or check the app's output",
                timeout.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
