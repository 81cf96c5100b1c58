//! Test support (feature `testing`): a `nats-server -js` of a test's own, for tests that stop
//! and start NATS (outages) without touching the shared server.
//!
//! The binary is `NATS_SERVER_BIN`, else `/usr/sbin/nats-server`, else `nats-server` on the PATH.
//! When there is none, tests print a "skipping" line and return, except with `CI=true`, where
//! they fail.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::time::timeout;

/// Says why a test cannot run: panics in CI (`CI=true`), prints a skipping line elsewhere.
pub fn unavailable(what: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{what} (required in CI)");
    }
    eprintln!("skipping: {what}");
}

/// The `nats-server` binary; `None` (after saying so) when there is none outside CI.
pub fn nats_server_binary() -> Option<PathBuf> {
    let candidates = std::env::var_os("NATS_SERVER_BIN")
        .map(PathBuf::from)
        .into_iter()
        .chain([PathBuf::from("/usr/sbin/nats-server")])
        .chain(
            std::env::var_os("PATH")
                .map(|p| {
                    std::env::split_paths(&p)
                        .map(|d| d.join("nats-server"))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default(),
        );
    for candidate in candidates {
        if candidate.is_file() {
            return Some(candidate);
        }
    }
    unavailable("no nats-server binary (set NATS_SERVER_BIN)");
    None
}

/// A free TCP port on 127.0.0.1, below the kernel's ephemeral range (so no outgoing
/// connection takes it while a test's server is down).
pub fn free_port() -> u16 {
    for _ in 0..1000 {
        let port = 20_000 + (uuid::Uuid::new_v4().as_u128() % 12_000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in 20000..32000");
}

/// A `nats-server -js` child process on its own port and storage directory; killed when
/// dropped.
pub struct NatsServer {
    binary: PathBuf,
    port: u16,
    store_dir: PathBuf,
    child: Option<Child>,
}

impl NatsServer {
    /// Starts `binary` on `port` with JetStream storage in `store_dir`, and waits until it
    /// accepts connections.
    pub async fn start(binary: &Path, port: u16, store_dir: &Path) -> Self {
        let mut server = Self {
            binary: binary.to_path_buf(),
            port,
            store_dir: store_dir.to_path_buf(),
            child: None,
        };
        server.restart().await;
        server
    }

    /// The client URL.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts the process again (same port, same storage).
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "the server is running");
        let child = Command::new(&self.binary)
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(&self.store_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", self.binary.display()));
        self.child = Some(child);
        let address = format!("127.0.0.1:{}", self.port);
        let ready = async {
            loop {
                if tokio::net::TcpStream::connect(&address).await.is_ok() {
                    return;
                }
                let child = self.child.as_mut().expect("started above");
                if let Ok(Some(exit)) = child.try_wait() {
                    panic!("nats-server on {address} exited at start: {exit}");
                }
                // Readiness poll of a child process: nothing to wait on but the port.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        timeout(Duration::from_secs(20), ready)
            .await
            .unwrap_or_else(|_| panic!("nats-server did not listen on {address} within 20 s"));
    }

    /// Stops the process (SIGTERM: a clean shutdown that keeps its stored messages) and waits
    /// for it to exit.
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let exited = tokio::task::spawn_blocking(move || {
            let status = child.wait();
            (child, status)
        });
        match timeout(Duration::from_secs(20), exited).await {
            Ok(Ok((_, status))) => {
                status.expect("waiting for nats-server");
            }
            _ => panic!("nats-server did not exit within 20 s of SIGTERM"),
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
