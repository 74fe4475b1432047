//! The app under record or test, run as a child process.
//!
//! Started through `sh -c` (as Keploy does) in a process group of its own,
//! so stopping it reaches every process it forked (gunicorn workers, shell
//! pipelines): SIGTERM to the group, then SIGKILL after a grace period.
//!
//! Start and stop never overlap two copies of the app: a stop returns only
//! once every process of the group has exited and the app's address no
//! longer accepts connections, and a start first waits for that address to
//! be free. Otherwise a readiness check could be answered by the previous,
//! dying copy (its workers still hold the listening socket), and the new
//! copy, unable to bind, would refuse every request.

mod group;

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

/// How long the group may take to vanish after SIGKILL, and an address to
/// be released after its processes are gone.
const KILL_WAIT: Duration = Duration::from_secs(5);
/// How long a start waits for something else to leave the app's address.
const ADDRESS_WAIT: Duration = Duration::from_secs(10);
/// Between two looks at the group or the port.
const POLL: Duration = Duration::from_millis(25);
/// What dropping a running app (an interrupted run) allows for SIGTERM.
const DROP_GRACE: Duration = Duration::from_secs(2);

/// A running app. Dropping it without [`AppProcess::stop`] stops the group
/// too, blocking until it is gone (that happens when a run is interrupted).
pub struct AppProcess {
    child: Child,
    pgid: Pid,
    command: String,
    /// The address the app serves; a stop waits until it is free.
    addr: Option<String>,
    /// The group is known to be gone.
    stopped: bool,
}

impl AppProcess {
    /// Starts `sh -c command` with extra environment variables, once `addr`
    /// (the address the app will serve, when known) accepts no connections.
    pub async fn spawn(
        command: &str,
        env: &[(String, String)],
        addr: Option<&str>,
    ) -> Result<Self> {
        if let Some(addr) = addr {
            wait_address_free(addr, ADDRESS_WAIT)
                .await
                .with_context(|| {
                    format!(
                        "the app cannot be started: {addr} is still served by another process \
                     (a copy of the app left from an earlier run?); stop it, or serve the app \
                     elsewhere"
                    )
                })?;
        }
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
            addr: addr.map(str::to_string),
            stopped: false,
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

    /// SIGTERM to the whole group, SIGKILL to what is left after `grace`;
    /// returns once no process of the group is alive and the app's address
    /// is free. Calling it again does nothing.
    pub async fn stop(&mut self, grace: Duration) -> Result<()> {
        if self.stopped {
            return Ok(());
        }
        let _ = killpg(self.pgid, Signal::SIGTERM);
        if self.wait_gone(grace).await {
            self.stopped = true;
            tracing::info!("the app stopped");
        } else {
            tracing::warn!("the app's processes outlived SIGTERM by {grace:?}; sending SIGKILL");
            self.kill().await?;
        }
        self.wait_address_released().await
    }

    /// SIGKILL to the whole group at once (a second interruption, or a stop
    /// whose grace ran out); returns once the group is gone.
    pub async fn kill(&mut self) -> Result<()> {
        if self.stopped {
            return Ok(());
        }
        let _ = killpg(self.pgid, Signal::SIGKILL);
        if !self.wait_gone(KILL_WAIT).await {
            bail!(
                "processes of the app (process group {}) were still running {}s after SIGKILL; \
                 look for them with `ps -g {}`",
                self.pgid,
                KILL_WAIT.as_secs(),
                self.pgid
            );
        }
        self.stopped = true;
        tracing::info!("the app was killed");
        self.wait_address_released().await
    }

    /// Polls until no process of the group is alive, for `limit` at most.
    async fn wait_gone(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            // Reaping the child keeps it from lingering as a zombie.
            if let Ok(Some(status)) = self.child.try_wait() {
                tracing::debug!(%status, "the app's first process exited");
            }
            if !group::alive(self.pgid) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Once the group is gone nothing of the app holds its socket; this
    /// only fails when another process took the address meanwhile.
    async fn wait_address_released(&self) -> Result<()> {
        match &self.addr {
            Some(addr) => wait_address_free(addr, KILL_WAIT)
                .await
                .with_context(|| format!("the app stopped, but {addr} still accepts connections")),
            None => Ok(()),
        }
    }
}

impl Drop for AppProcess {
    /// Blocks: a dropped app is an interrupted or failed run on its way
    /// out, and recplay must not exit before the app's processes do.
    fn drop(&mut self) {
        if self.stopped {
            return;
        }
        let mut gone = |limit: Duration| {
            let deadline = Instant::now() + limit;
            loop {
                let _ = self.child.try_wait();
                if !group::alive(self.pgid) {
                    return true;
                }
                if Instant::now() >= deadline {
                    return false;
                }
                std::thread::sleep(POLL);
            }
        };
        let _ = killpg(self.pgid, Signal::SIGTERM);
        if !gone(DROP_GRACE) {
            let _ = killpg(self.pgid, Signal::SIGKILL);
            if !gone(KILL_WAIT) {
                tracing::warn!(
                    "processes of the app (process group {}) survived SIGKILL",
                    self.pgid
                );
            }
        }
    }
}

/// Waits until nothing accepts connections on `addr`; fails after `limit`.
pub async fn wait_address_free(addr: &str, limit: Duration) -> Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        // Refused (or unresolvable): free. Accepted, or no answer at all
        // (a listener whose backlog is full drops the handshake): taken.
        let connect =
            tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(addr))
                .await;
        if matches!(connect, Ok(Err(_))) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "{addr} still accepted connections after {}s",
                limit.as_secs()
            );
        }
        tokio::time::sleep(POLL * 4).await;
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
