//! A real `redis-server` to compare replies with, when one is installed (tests that
//! use it skip their comparison otherwise: nothing here is required to pass).
//!
//! It binds 127.0.0.1 on a free port from 20000 up, with `--save ''` and
//! `--appendonly no` (what Conclave's memory-only keyspace behaves as) and one
//! database, as Conclave has, and is killed
//! by pid when dropped.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running reference `redis-server`.
pub struct Reference {
    child: Child,
    /// Its client port on 127.0.0.1.
    pub port: u16,
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

fn free_port() -> Option<u16> {
    let base = 20_000 + (std::process::id() % 20_000) as u16;
    (0..2_000u16)
        .map(|i| base.wrapping_add(i * 7) % 25_000 + 20_000)
        .find(|&p| TcpListener::bind(("127.0.0.1", p)).is_ok())
}

impl Reference {
    /// Starts `redis-server` if it is on `PATH`; `None` (with a note on stderr) when
    /// it is not or does not come up.
    pub fn start() -> Option<Reference> {
        let Some(bin) = find_on_path("redis-server") else {
            eprintln!("redis-server not installed: skipping the comparison with Redis");
            return None;
        };
        let port = free_port()?;
        let child = Command::new(bin)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            // Conclave has one database (SELECT 0 only).
            .args(["--databases", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let reference = Reference { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(reference);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("redis-server did not start: skipping the comparison with Redis");
        None
    }
}

impl Drop for Reference {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
