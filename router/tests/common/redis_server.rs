//! A real `redis-server` for the shared-cache tests: a free loopback port, its own temporary
//! directory, no persistence; stopped (killed) when dropped. `script/bootstrap` installs the
//! binary; without it the tests that need one say so and return.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RedisServer {
    pub addr: SocketAddr,
    dir: PathBuf,
    child: Option<Child>,
}

/// True when `redis-server` can be run; prints why a test is skipped otherwise.
pub fn available(test: &str) -> bool {
    let ok = Command::new("redis-server").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success());
    if !ok {
        eprintln!("{test}: SKIPPED: redis-server is not installed (script/bootstrap installs it)");
    }
    ok
}

fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

impl RedisServer {
    /// Starts a server on a free port and waits until it answers `PING`.
    pub fn start() -> RedisServer {
        let addr = free_port();
        let dir = std::env::temp_dir().join(format!("cells-router-redis-{}-{}", std::process::id(), addr.port()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut s = RedisServer { addr, dir, child: None };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &self.addr.port().to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--enable-debug-command",
                "local",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.ping() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server on {} did not answer PING within 10 s", self.addr);
    }

    pub fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }

    /// Kills the server (the port refuses until `restart`).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the server again on the same port, empty.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// One command over a fresh connection (redis-rs' synchronous client), None when the
    /// server does not answer.
    pub fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Option<T> {
        let client = redis::Client::open(self.url()).ok()?;
        let mut con = client.get_connection_with_timeout(Duration::from_millis(200)).ok()?;
        con.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        cmd.query(&mut con).ok()
    }

    fn ping(&self) -> bool {
        self.query::<String>(&redis::cmd("PING")).is_some_and(|r| r == "PONG")
    }

    /// The value of `key` (None: no such key).
    pub fn get(&self, key: &str) -> Option<String> {
        self.query::<Option<String>>(redis::cmd("GET").arg(key)).flatten()
    }

    /// Sets `key` to `value`.
    pub fn set(&self, key: &str, value: &str) {
        self.query::<()>(redis::cmd("SET").arg(key).arg(value)).expect("SET");
    }

    /// Every key (tests hold a handful).
    pub fn keys(&self) -> Vec<String> {
        let mut k: Vec<String> = self.query(redis::cmd("KEYS").arg("*")).unwrap_or_default();
        k.sort();
        k
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
