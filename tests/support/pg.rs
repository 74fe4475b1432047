//! A throwaway PostgreSQL cluster per test: `initdb` in a temp dir, a free
//! port on 127.0.0.1, stopped and removed on drop.
//!
//! initdb and postgres refuse to run as root, so when the tests run as root
//! (as CI does) the cluster runs as the `postgres` OS user, in a directory
//! that user owns.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian puts the server binaries; PATH is tried first.
const PG_BIN_DIRS: &[&str] = &["/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin"];

pub fn pg_bin(name: &str) -> PathBuf {
    for dir in PG_BIN_DIRS {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    PathBuf::from(name)
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A running cluster. Superuser `postgres`, trust auth on the socket; TCP
/// users get the auth methods the test configured.
pub struct PgCluster {
    pub port: u16,
    dir: tempfile::TempDir,
    as_postgres_user: bool,
}

/// How TCP connections authenticate; the superuser always has trust.
#[derive(Clone, Copy)]
pub enum TcpAuth {
    Trust,
    /// Passwords for everyone but `postgres`: SCRAM-SHA-256 for users whose
    /// password was stored with `password_encryption = 'scram-sha-256'`,
    /// MD5 for those stored with `password_encryption = 'md5'`.
    Passwords,
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

impl PgCluster {
    pub fn start() -> Self {
        Self::start_with(TcpAuth::Trust)
    }

    pub fn start_with(auth: TcpAuth) -> Self {
        let as_postgres_user = running_as_root();
        let dir = tempfile::Builder::new()
            .prefix("recplay-pg-")
            .tempdir()
            .expect("temp dir");
        let data = dir.path().join("data");
        if as_postgres_user {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(status.success(), "chown of the cluster dir failed");
        }
        let cluster = PgCluster {
            port: free_port(),
            dir,
            as_postgres_user,
        };
        cluster.run(
            pg_bin("initdb"),
            &[
                "-D",
                &data.to_string_lossy(),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ],
        );
        let hba = match auth {
            TcpAuth::Trust => "local all all trust\nhost all all 127.0.0.1/32 trust\n".to_string(),
            // `md5` in pg_hba means "SCRAM-SHA-256 when the stored password
            // is a SCRAM secret, MD5 when it is an MD5 hash", so each user
            // gets the method its password was created with. (A `/^md5`
            // user regex would need PostgreSQL 16.)
            TcpAuth::Passwords => "local all all trust\n\
                 host all postgres 127.0.0.1/32 trust\n\
                 host all all 127.0.0.1/32 md5\n"
                .to_string(),
        };
        std::fs::write(data.join("pg_hba.conf"), hba).expect("write pg_hba.conf");
        let opts = format!(
            "-c listen_addresses=127.0.0.1 -c port={} -c unix_socket_directories={} -c fsync=off -c max_connections=200",
            cluster.port,
            cluster.dir.path().display()
        );
        cluster.run(
            pg_bin("pg_ctl"),
            &[
                "-D",
                &data.to_string_lossy(),
                "-o",
                &opts,
                "-l",
                &cluster.dir.path().join("log").to_string_lossy(),
                "-w",
                "start",
            ],
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", cluster.port)).is_err() {
            assert!(Instant::now() < deadline, "PostgreSQL did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        cluster
    }

    fn command(&self, program: PathBuf) -> Command {
        if self.as_postgres_user {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        }
    }

    fn run(&self, program: PathBuf, args: &[&str]) {
        let out = self
            .command(program.clone())
            .args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .expect("run a PostgreSQL binary");
        assert!(
            out.status.success(),
            "{} failed: {}{}",
            program.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Runs SQL as the superuser through psql on the cluster's socket.
    pub fn psql(&self, sql: &str) -> String {
        let out = self
            .command(pg_bin("psql"))
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(self.dir.path())
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-c",
                sql,
            ])
            .current_dir(self.dir.path())
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql failed on {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `host=127.0.0.1 port=N user=postgres dbname=postgres`.
    pub fn conn_str(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres",
            self.port
        )
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Turns on TLS for TCP clients with this certificate and key (PEM),
    /// e.g. to test a proxy's TLS leg to the server.
    pub fn enable_ssl(&self, cert_pem: &str, key_pem: &str) {
        let data = self.dir.path().join("data");
        let cert = data.join("test-server.crt");
        let key = data.join("test-server.key");
        std::fs::write(&cert, cert_pem).expect("write server certificate");
        std::fs::write(&key, key_pem).expect("write server key");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))
            .expect("key permissions");
        if self.as_postgres_user {
            let status = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(&cert)
                .arg(&key)
                .status()
                .expect("chown");
            assert!(status.success(), "chown of the TLS files failed");
        }
        self.psql("ALTER SYSTEM SET ssl_cert_file = 'test-server.crt'");
        self.psql("ALTER SYSTEM SET ssl_key_file = 'test-server.key'");
        self.psql("ALTER SYSTEM SET ssl = on");
        self.psql("SELECT pg_reload_conf()");
    }

    /// Stops the server (fast shutdown), e.g. to prove replay needs no database.
    pub fn stop(&self) {
        let data = self.dir.path().join("data");
        let _ = self
            .command(pg_bin("pg_ctl"))
            .args(["-D", &data.to_string_lossy(), "-m", "fast", "-w", "stop"])
            .current_dir(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        self.stop();
    }
}
