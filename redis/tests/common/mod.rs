//! Test support: the Redis server the tests talk to.
//!
//! - `REDIS_TEST_URL` set (as `redis/ci.sh` does): use that server; if it cannot be reached the
//!   test FAILS (never skips).
//! - not set: start a private `redis-server` on a free loopback port for this test binary
//!   (stopped when the process exits). If `redis-server` is not installed, the test fails when
//!   `CI` is set, and is skipped with a message otherwise (a developer machine without Redis).
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ratewall_redis::{RedisOptions, RedisStore};

/// Name of the variable holding the shared test server's URL.
pub const URL_VAR: &str = "REDIS_TEST_URL";

/// A `redis-server` child process on a free loopback port, killed on drop.
pub struct Server {
    pub port: u16,
    child: Option<Child>,
    dir: PathBuf,
    extra: Vec<String>,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind a free loopback port")
        .local_addr()
        .unwrap()
        .port()
}

fn redis_server_binary() -> Option<PathBuf> {
    for dir in std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .chain(["/usr/bin", "/usr/sbin"])
    {
        let p = PathBuf::from(dir).join("redis-server");
        if p.is_file() {
            return Some(p);
        }
    }
    None
}

impl Server {
    /// Starts a server on a free port, or returns `None` (skip) when none can be started
    /// outside CI.
    pub fn start() -> Option<Server> {
        Self::start_with(&[])
    }

    /// Starts a server with extra arguments (`--unixsocket`, `--cluster-enabled`, …). `{dir}` in
    /// an argument is replaced by the server's private directory, `{port}` by its port.
    pub fn start_with(extra: &[&str]) -> Option<Server> {
        let Some(bin) = redis_server_binary() else {
            if std::env::var_os("CI").is_some() {
                panic!("redis-server is not installed but CI is set: run redis/ci.sh");
            }
            eprintln!("SKIP: redis-server not installed and {URL_VAR} not set");
            return None;
        };
        let port = free_port();
        let dir =
            std::env::temp_dir().join(format!("ratewall-redis-test-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let extra = extra
            .iter()
            .map(|a| {
                a.replace("{dir}", dir.to_str().unwrap())
                    .replace("{port}", &port.to_string())
            })
            .collect();
        let mut server = Server {
            port,
            child: None,
            dir,
            extra,
        };
        server.spawn(&bin);
        Some(server)
    }

    fn spawn(&mut self, bin: &PathBuf) {
        let child = Command::new(bin)
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.dir.to_str().unwrap(),
            ])
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        // A watcher stops the server and removes its directory when this test process ends,
        // even if `Drop` never runs (a server kept in a static, a test binary killed).
        // Bounded: it ends with the process.
        let watcher = format!(
            "while kill -0 {me} 2>/dev/null; do sleep 0.2; done; \
             grep -q redis-server /proc/{r}/cmdline 2>/dev/null && kill {r}; \
             sleep 0.5; rm -rf '{dir}'",
            me = std::process::id(),
            r = child.id(),
            dir = self.dir.display()
        );
        let _ = Command::new("sh")
            .args(["-c", &watcher])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        self.child = Some(child);
        // A TLS-only server cannot answer a plain PING: accepting connections is its readiness.
        let plain = !self.extra.iter().any(|a| a == "--tls-port");
        wait_ready(self.port, true, plain);
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL: an abrupt outage) and waits until the port refuses.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        wait_ready(self.port, false, true);
    }

    /// The server's private directory (for a Unix socket path).
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// Freezes the server (SIGSTOP): connections stay open but nothing answers.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Thaws a paused server (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().expect("server running").id();
        let ok = Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill {sig} {pid}");
    }

    /// Starts the server again on the same port (empty: no persistence).
    pub fn restart(&mut self) {
        self.stop();
        let bin = redis_server_binary().expect("redis-server");
        self.spawn(&bin);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Waits (bounded: 10 s) until the port accepts (`up`, and answers a plain PING when `plain`)
/// or refuses connections.
fn wait_ready(port: u16, up: bool, plain: bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ok = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
        if ok == up {
            if up {
                // Accepting is not serving yet: wait for PING.
                if !plain || ping(port) {
                    return;
                }
            } else {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "redis-server on port {port} did not become {}",
            if up { "ready" } else { "stopped" }
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn ping(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 7];
    s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}

/// The shared server's URL: `REDIS_TEST_URL`, else a private server started once per test
/// binary. `None` only outside CI without redis-server (the caller skips).
pub fn shared_url() -> Option<String> {
    static SERVER: OnceLock<Option<(String, Option<Server>)>> = OnceLock::new();
    SERVER
        .get_or_init(|| match std::env::var(URL_VAR) {
            Ok(url) if !url.is_empty() => Some((url, None)),
            _ => Server::start().map(|s| (s.url(), Some(s))),
        })
        .as_ref()
        .map(|(url, _)| url.clone())
}

/// A store on the shared server with generous timeouts (tests on a busy 2-core machine), or
/// `None` to skip. Fails the test if the server cannot be reached.
pub fn store() -> Option<RedisStore> {
    let url = shared_url()?;
    Some(store_at(&url))
}

pub fn store_at(url: &str) -> RedisStore {
    RedisStore::connect(url, options())
        .unwrap_or_else(|e| panic!("the test Redis at {url} must be reachable: {e}"))
}

/// The tests' store options: generous timeouts (a busy 2-core machine), a test key secret.
pub fn options() -> RedisOptions {
    RedisOptions {
        command_timeout: Duration::from_secs(2),
        connect_timeout: Duration::from_secs(2),
        key_secret: Some(b"test secret".to_vec()),
        ..RedisOptions::default()
    }
}

/// A unique name per call, so tests running in parallel never share keys.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// xorshift64*: small, seeded, reproducible.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[(self.next() % items.len() as u64) as usize]
    }
}

/// The server's `INFO commandstats` (calls per command since the last `CONFIG RESETSTAT`).
pub fn command_stats(store: &RedisStore) -> String {
    match store.raw_command(redis::cmd("INFO").arg("commandstats").clone()) {
        Ok(redis::Value::BulkString(info)) => String::from_utf8(info).expect("INFO is text"),
        other => panic!("INFO commandstats: {other:?}"),
    }
}
