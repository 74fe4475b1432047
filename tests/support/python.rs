//! Python for the tests: a venv under the target directory with the PyPI
//! packages the Python-app tests need, created on first use and reused
//! after; and a gunicorn app server in its own process group.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Installed into the venv; bump the marker when this list changes.
const PACKAGES: &[&str] = &[
    "coverage==7.17.3",
    "gunicorn==23.0.0",
    "pycobertura==4.1.0",
    "PyYAML==6.0.3",
    "psycopg2-binary==2.9.13",
];
const MARKER: &str = ".recplay-venv-3";

static VENV_LOCK: Mutex<()> = Mutex::new(());

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

/// The interpreter the venv is made with: `RECPLAY_TEST_PYTHON` when set
/// (to run the Python tests and benchmarks under another Python, e.g. one
/// with `sys.monitoring`), else `python3`.
fn test_python() -> Option<PathBuf> {
    std::env::var_os("RECPLAY_TEST_PYTHON")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
}

/// The venv's directory, created (python3 -m venv + pip install) if needed;
/// one per interpreter, so switching `RECPLAY_TEST_PYTHON` never mixes them.
pub fn test_venv() -> PathBuf {
    let _guard = VENV_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let python = test_python();
    let venv = match &python {
        None => target_dir().join("test-venv"),
        Some(p) => {
            let name: String = p
                .to_string_lossy()
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '.' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            target_dir().join(format!("test-venv-{name}"))
        }
    };
    if venv.join(MARKER).is_file() {
        return venv;
    }
    if venv.exists() {
        std::fs::remove_dir_all(&venv).expect("remove a half-made test venv");
    }
    let status = Command::new(python.as_deref().unwrap_or(Path::new("python3")))
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .expect("python3 must be installed to create the test venv (apt-get install python3-venv)");
    assert!(
        status.success(),
        "python3 -m venv {} failed",
        venv.display()
    );
    let status = Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .args(PACKAGES)
        .status()
        .expect("run pip in the test venv");
    assert!(
        status.success(),
        "pip install {PACKAGES:?} failed (is PyPI reachable?)"
    );
    std::fs::write(venv.join(MARKER), PACKAGES.join("\n")).expect("write the venv marker");
    venv
}

/// A gunicorn (or anything else) server started in its own process group,
/// stopped with SIGTERM (so workers save what they must), then SIGKILL.
pub struct ServerProcess {
    child: Child,
    pub log: PathBuf,
}

impl ServerProcess {
    pub fn spawn(mut command: Command, log: PathBuf) -> Self {
        use std::os::unix::process::CommandExt;
        let out = std::fs::File::create(&log).expect("create the server log");
        let err = out.try_clone().expect("clone the log handle");
        command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        let child = command.spawn().expect("start the server");
        ServerProcess { child, log }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn signal_group(&self, signal: nix::sys::signal::Signal) {
        let pgid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::killpg(pgid, signal);
    }

    /// SIGTERM, wait up to `grace` for the master to exit, then SIGKILL.
    pub fn stop(mut self, grace: Duration) {
        self.signal_group(nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.signal_group(nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.signal_group(nix::sys::signal::Signal::SIGKILL);
            let _ = self.child.wait();
        }
    }
}

/// One HTTP/1.1 request with `Connection: close`; the status and the body.
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let body = body.unwrap_or("");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {response:?}")))?;
    let body = response.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    Ok((status, body))
}

/// Polls `GET path` until it answers 200.
pub fn wait_http_ready(port: u16, path: &str, server: &ServerProcess, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok((200, _)) = http(port, "GET", path, None) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "the server on port {port} was not ready in {timeout:?}; log:\n{}",
        server.log_text()
    );
}
