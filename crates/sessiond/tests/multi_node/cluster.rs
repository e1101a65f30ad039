//! A private PostgreSQL cluster that a test may stop and start: initdb into
//! a temporary directory, one loopback port, stopped and removed on drop
//! (also when the test panics).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use sessiond_testkit::env::required;

use crate::support::free_port;

/// The directory with `initdb`, `pg_ctl` and `pg_isready`
/// (`TEST_POSTGRES_BIN_DIR`): `None` after a note outside CI, a failure in
/// CI.
pub fn bin_dir() -> Option<PathBuf> {
    required("TEST_POSTGRES_BIN_DIR", "the PostgreSQL crash test").map(PathBuf::from)
}

/// A private PostgreSQL server in a temporary directory.
pub struct Cluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    pub port: u16,
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Runs a PostgreSQL program as the `postgres` user when we are root
/// (the server refuses to run as root).
fn as_postgres(program: &Path, args: &[&str]) -> Output {
    let output = if is_root() {
        Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(program)
            .args(args)
            .output()
    } else {
        Command::new(program).args(args).output()
    };
    output.expect("run a postgres program")
}

impl Cluster {
    /// initdb and start; durable settings (fsync on), as in production.
    pub fn start(bin: &Path) -> Self {
        let dir = tempfile::Builder::new().prefix("sessiond-pg-fault").tempdir().unwrap();
        if is_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(status.success(), "chown the cluster directory");
        }
        let cluster = Self {
            bin: bin.to_owned(),
            dir,
            port: free_port(),
        };
        let data = cluster.data_dir();
        let init = as_postgres(
            &bin.join("initdb"),
            &["-D", &data, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"],
        );
        assert!(
            init.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&init.stderr)
        );
        cluster.start_again();
        cluster
    }

    fn data_dir(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the cluster on its port and data directory and waits (bounded)
    /// until it accepts connections.
    pub fn start_again(&self) {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {}",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log").display().to_string();
        let started = as_postgres(
            &self.bin.join("pg_ctl"),
            &[
                "-D",
                &self.data_dir(),
                "-l",
                &log,
                "-o",
                &options,
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        assert!(
            started.status.success(),
            "pg_ctl start: {} {}",
            String::from_utf8_lossy(&started.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        for _ in 0..300 {
            let ready = Command::new(self.bin.join("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string()])
                .status()
                .unwrap();
            if ready.success() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the cluster did not become ready");
    }

    /// Stops it the hard way: every backend dies at once, nothing is
    /// flushed; the next start recovers from the WAL, as after a crash.
    pub fn crash(&self) {
        let stopped = as_postgres(
            &self.bin.join("pg_ctl"),
            &["-D", &self.data_dir(), "-m", "immediate", "-w", "stop"],
        );
        assert!(
            stopped.status.success(),
            "pg_ctl stop: {}",
            String::from_utf8_lossy(&stopped.stderr)
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Whatever state the test left it in; errors (already stopped) are
        // expected and ignored. The directory goes with `dir`.
        let _ = as_postgres(
            &self.bin.join("pg_ctl"),
            &["-D", &self.data_dir(), "-m", "immediate", "-w", "stop"],
        );
    }
}
