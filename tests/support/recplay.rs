//! The real `recplay` binary as a child process: start, learn its listening
//! address from its output, signal it, read its memory high-water mark.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running `recplay record`; killed on drop.
pub struct RecplayRecord {
    child: Child,
    /// Where the HTTP proxy listens.
    pub http_addr: SocketAddr,
    stdout_lines: mpsc::Receiver<String>,
    stderr: Arc<Mutex<String>>,
}

impl RecplayRecord {
    /// Starts `recplay record --path <keploy> --http-listen 127.0.0.1:0
    /// --http-upstream <upstream> <extra…>` and waits for the proxy.
    pub fn start(keploy: &Path, upstream: &str, extra: &[&str]) -> Self {
        let keploy = keploy.to_string_lossy();
        let mut args = vec!["record", "--path", &keploy];
        args.extend(["--http-listen", "127.0.0.1:0", "--http-upstream", upstream]);
        args.extend(extra);
        Self::start_args(&args)
    }

    /// Starts `recplay` with exactly `args` and waits for the HTTP proxy.
    pub fn start_args(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_recplay"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start recplay");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let http_addr = loop {
            let line = rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .expect("recplay printed its HTTP address");
            if let Some(rest) = line.strip_prefix("HTTP: recording ") {
                let addr = rest
                    .split(" -> ")
                    .next()
                    .and_then(|u| u.split("://").nth(1))
                    .expect("address in the banner");
                break addr.parse().expect("socket address");
            }
        };
        // Drained all along: a full pipe would block recplay's logging.
        let stderr = Arc::new(Mutex::new(String::new()));
        if let Some(mut pipe) = child.stderr.take() {
            let sink = stderr.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                    sink.lock().expect("stderr lock").push_str(&text);
                }
            });
        }
        RecplayRecord {
            child,
            http_addr,
            stdout_lines: rx,
            stderr,
        }
    }

    /// Waits for a line of stdout that starts with `prefix`; returns it.
    pub fn wait_for_line(&self, prefix: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let line = self
                .stdout_lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|_| {
                    panic!(
                        "recplay printed no line starting with {prefix:?}; stderr:\n{}",
                        self.stderr_text()
                    )
                });
            if line.starts_with(prefix) {
                return line;
            }
        }
    }

    /// What recplay logged so far.
    pub fn stderr_text(&self) -> String {
        self.stderr.lock().expect("stderr lock").clone()
    }

    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).expect("pid")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http_addr)
    }

    /// VmHWM (peak resident memory) in KiB, from /proc.
    pub fn peak_rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).expect("status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .expect("VmHWM line")
    }

    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), signal)
            .expect("signal recplay");
    }

    /// Waits for exit; returns status, the rest of stdout, and stderr.
    pub fn wait(mut self, timeout: Duration) -> (ExitStatus, String, String) {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "recplay did not exit within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stdout = String::new();
        while let Ok(line) = self.stdout_lines.recv_timeout(Duration::from_millis(500)) {
            stdout.push_str(&line);
            stdout.push('\n');
        }
        std::thread::sleep(Duration::from_millis(100));
        let stderr = self.stderr.lock().expect("stderr lock").clone();
        (status, stdout, stderr)
    }
}

impl Drop for RecplayRecord {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
