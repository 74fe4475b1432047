//! The lifecycle fixture app (tests/fixtures/lifecycle_app/app.py): an HTTP
//! app that the tests hold at a known point of its start, a request or its
//! shutdown, through marker files in a state directory of its own.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// One app's state directory and port.
pub struct LifecycleApp {
    state: tempfile::TempDir,
    pub port: u16,
}

impl LifecycleApp {
    pub fn new() -> Self {
        LifecycleApp {
            state: tempfile::tempdir().expect("tempdir"),
            port: free_port(),
        }
    }

    /// The `-c` command. The shell does not `exec` the app (`; true` comes
    /// after it), so the app's process group holds two processes.
    pub fn command(&self) -> String {
        let app = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lifecycle_app/app.py");
        format!(
            "cd {} && python3 {} {}; true",
            self.state.path().display(),
            app.display(),
            self.port
        )
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn marker(&self, name: &str) -> PathBuf {
        self.state.path().join(name)
    }

    pub fn set(&self, name: &str) {
        std::fs::write(self.marker(name), "").expect("write a marker");
    }

    pub fn clear(&self, name: &str) {
        let _ = std::fs::remove_file(self.marker(name));
    }

    /// Waits (up to 30 s) until the app has written `name`.
    pub fn wait_for(&self, name: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.marker(name).exists() {
            assert!(Instant::now() < deadline, "the app never wrote {name}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The app's process id, once it has started.
    pub fn pid(&self) -> i32 {
        self.wait_for("app.pid");
        std::fs::read_to_string(self.marker("app.pid"))
            .expect("app.pid")
            .trim()
            .parse()
            .expect("a pid")
    }

    /// The app's process has exited (was started and is gone), and nothing
    /// listens on its port.
    pub fn is_gone(&self) -> bool {
        let pid = self.pid();
        !alive(pid) && std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err()
    }
}

/// Listed in /proc and not a zombie.
pub fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit(')')
            .next()
            .and_then(|rest| rest.split_whitespace().next())
            != Some("Z")
    })
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}
