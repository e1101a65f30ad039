//! A real nginx for tests: in the foreground as a single process (no
//! workers to orphan), everything under a temporary prefix, killed on drop.
//! The binary is `TEST_NGINX_BIN`, set by `scripts/test` through
//! `scripts/servers/nginx.sh`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running nginx.
pub struct Nginx {
    child: Child,
    dir: tempfile::TempDir,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Nginx {
    /// Starts nginx from `bin` with `http` as the body of its `http { }`
    /// block (`{prefix}` in it is replaced by the temporary prefix, where
    /// logs and files the test writes live), and waits until it listens on
    /// every port of `ports`.
    pub fn start(bin: &str, dir: tempfile::TempDir, http: &str, ports: &[u16]) -> Self {
        let p = dir.path().display().to_string();
        let http = http.replace("{prefix}", &p);
        std::fs::write(
            dir.path().join("nginx.conf"),
            format!(
                "events {{ worker_connections 64; }}\n\
                 http {{\n\
                 access_log {p}/access.log;\n\
                 client_body_temp_path {p}/client_body_temp;\n\
                 proxy_temp_path {p}/proxy_temp;\n\
                 fastcgi_temp_path {p}/fastcgi_temp;\n\
                 uwsgi_temp_path {p}/uwsgi_temp;\n\
                 scgi_temp_path {p}/scgi_temp;\n\
                 {http}\n\
                 }}\n"
            ),
        )
        .expect("write nginx.conf");
        let child = Command::new(bin)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .arg("-g")
            .arg(format!(
                "daemon off; master_process off; pid {p}/nginx.pid; error_log {p}/error.log;"
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start nginx");
        let mut nginx = Self { child, dir };
        for port in ports {
            nginx.wait_listening(*port);
        }
        nginx
    }

    fn wait_listening(&mut self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = self.child.try_wait().expect("nginx status") {
                panic!("nginx exited ({status}) at start; its log:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "nginx did not listen on {port} within 10 s; its log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Its temporary prefix.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Its error log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.error_log()).unwrap_or_default()
    }

    fn error_log(&self) -> PathBuf {
        self.dir.path().join("error.log")
    }
}
