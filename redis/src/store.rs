//! The connection to Redis: one multiplexed connection (or cluster connection) shared by every
//! policy, driven by a small runtime the store owns, with bounded timeouts, background
//! reconnection and health counters.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use ratewall::config::FailMode;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, Cmd, ErrorKind, ServerErrorKind, Value};

use crate::call::ScriptCall;
use crate::keys::{check_name_part, HashedKey, KeyHasher, DEFAULT_KEY_SECRET, KEY_SECRET_ENV};
use crate::script::{batch_sha1, script_sha1, BATCH_SCRIPT, MAX_BATCH, SCRIPT};
use crate::url::{StorageUrl, Target};
use crate::Error;

/// A callback that sees every failure and every change of connection state.
///
/// It runs on the thread that observed the event (a request thread or the store's I/O thread):
/// keep it short and non-blocking (count, log, set a gauge), and do not make limiter calls from
/// it (a blocking call from the I/O thread waits for that same thread: it then returns only
/// through its timeout). A panic inside it is caught and ignored, so a faulty callback cannot
/// break a request.
pub type EventHandler = Arc<dyn Fn(&Event<'_>) + Send + Sync>;

/// What happened.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// A request could not be decided by Redis; `fail_mode` decided it instead.
    Error,
    /// The connection was lost (or could not be made); reconnection runs in the background.
    Down,
    /// The connection is (again) established; Redis decides again.
    Up,
}

/// A signal for logs and metrics. See [`EventHandler`].
#[derive(Clone, Copy, Debug)]
pub struct Event<'a> {
    /// What happened.
    pub kind: EventKind,
    /// The failure, for `Error` and `Down`.
    pub error: Option<&'a Error>,
    /// The policy whose request failed, for `Error`.
    pub policy: Option<&'a str>,
    /// How the failed request was decided, for `Error`.
    pub fail_mode: Option<FailMode>,
}

/// Connection and failure settings shared by every policy on one store.
#[derive(Clone)]
pub struct RedisOptions {
    /// The longest a decision waits for Redis before the fail mode decides. Default: 50 ms.
    pub command_timeout: Duration,
    /// The longest one connection attempt may take. Default: 500 ms.
    pub connect_timeout: Duration,
    /// First pause between reconnection attempts; doubles up to `reconnect_max_delay`.
    /// Default: 25 ms.
    pub reconnect_min_delay: Duration,
    /// Longest pause between reconnection attempts. Default: 1 s.
    pub reconnect_max_delay: Duration,
    /// Namespace of every key. Default: `ratewall` (config: `key_prefix`).
    pub key_prefix: String,
    /// Secret of the keyed hash of client keys; `None` reads `RATEWALL_KEY_SECRET`, else uses
    /// the public default (see [`keys`](crate::keys)). Must be the same in the whole fleet.
    pub key_secret: Option<Vec<u8>>,
    /// `retry_after` of a fail-closed denial. Default: 1 s.
    pub fail_closed_retry_after: Duration,
    /// In `local` fail mode, the fraction of each limit the in-process fallback admits (for a
    /// fleet of N instances, `1/N` keeps the fleet near its quota). In `(0, 1]`; each limit
    /// keeps at least 1 permit. Default: 1.
    pub local_fraction: f64,
    /// Threads of the store's I/O runtime. Default: 1 (a current-thread runtime on a thread of
    /// its own, see the store docs; more gives a multi-thread runtime).
    pub io_threads: usize,
    /// Receives failures and connection changes. Default: none (use [`RedisStore::health`]).
    pub on_event: Option<EventHandler>,
    /// PEM certificates of the authorities a `rediss://` server's certificate must chain to,
    /// instead of the system's root certificates: a private CA, or a managed Redis that ships
    /// its own (config: `tls_ca_file`). Only for `rediss://` URLs. Default: none.
    pub tls_ca_certificates: Option<Vec<u8>>,
    /// The client certificate and key presented to a `rediss://` server that asks for one
    /// (Redis's `tls-auth-clients`, on by default when Redis serves TLS; config: `tls_cert_file`
    /// and `tls_key_file`). Only for `rediss://` URLs. Default: none.
    pub tls_client_identity: Option<TlsClientIdentity>,
}

/// A client certificate (chain) and its private key, both PEM, for servers that authenticate
/// their clients by certificate (mutual TLS).
#[derive(Clone, PartialEq, Eq)]
pub struct TlsClientIdentity {
    /// The certificate, then any intermediates, PEM.
    pub certificate: Vec<u8>,
    /// The certificate's private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key: Vec<u8>,
}

impl std::fmt::Debug for TlsClientIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClientIdentity")
            .field(
                "certificate",
                &format_args!("{} bytes", self.certificate.len()),
            )
            .field("key", &"***")
            .finish()
    }
}

impl Default for RedisOptions {
    fn default() -> Self {
        RedisOptions {
            command_timeout: Duration::from_millis(50),
            connect_timeout: Duration::from_millis(500),
            reconnect_min_delay: Duration::from_millis(25),
            reconnect_max_delay: Duration::from_secs(1),
            key_prefix: "ratewall".to_string(),
            key_secret: None,
            fail_closed_retry_after: Duration::from_secs(1),
            local_fraction: 1.0,
            io_threads: 1,
            on_event: None,
            tls_ca_certificates: None,
            tls_client_identity: None,
        }
    }
}

/// Reads a PEM file of certificate authorities for
/// [`RedisOptions::tls_ca_certificates`] (the config's `tls_ca_file`, the bindings' options).
pub fn read_tls_ca_file(path: &str) -> Result<Vec<u8>, Error> {
    read_pem_file("tls_ca_file", path)
}

/// The bytes of the PEM file `path`, given as option `what`; the error names both.
fn read_pem_file(what: &str, path: &str) -> Result<Vec<u8>, Error> {
    std::fs::read(path)
        .map_err(|e| Error::Option(format!("{what} {path:?} could not be read: {e}")))
}

/// Reads the PEM files of a client certificate and its key for
/// [`RedisOptions::tls_client_identity`] (the config's `tls_cert_file` and `tls_key_file`, the
/// bindings' options). One without the other is an error: a server that asks for a certificate
/// needs the key that proves it.
pub fn read_tls_client_identity(
    cert_file: Option<&str>,
    key_file: Option<&str>,
) -> Result<Option<TlsClientIdentity>, Error> {
    match (cert_file, key_file) {
        (None, None) => Ok(None),
        (Some(cert), Some(key)) => Ok(Some(TlsClientIdentity {
            certificate: read_pem_file("tls_cert_file", cert)?,
            key: read_pem_file("tls_key_file", key)?,
        })),
        (Some(_), None) => Err(Error::Option(
            "tls_cert_file is set but tls_key_file is not: give the client certificate's private key too"
                .into(),
        )),
        (None, Some(_)) => Err(Error::Option(
            "tls_key_file is set but tls_cert_file is not: give the client certificate too".into(),
        )),
    }
}

/// The client of a one-server URL: for `rediss://`, the system's root certificates or `ca`
/// (PEM) when given, and the client certificate `identity` when given (`build` allows both for
/// `rediss://` only).
fn single_client(
    url: &StorageUrl,
    info: &redis::ConnectionInfo,
    ca: Option<&[u8]>,
    identity: Option<&TlsClientIdentity>,
) -> Result<Client, Error> {
    #[cfg(feature = "tls")]
    if let Some(certificates) = tls_certificates(ca, identity) {
        return Client::build_with_tls(info.clone(), certificates).map_err(|e| {
            Error::Option(format!(
                "{url}: the TLS certificates could not be used (PEM expected: tls_ca_file, \
                 tls_cert_file, tls_key_file): {e}"
            ))
        });
    }
    #[cfg(not(feature = "tls"))]
    let _ = (ca, identity); // `build` allows them for rediss:// only, which needs feature `tls`
    Client::open(info.clone()).map_err(|e| Error::Url(format!("{url}: {e}")))
}

/// The client of a `redis+cluster://` or `rediss+cluster://` URL. Over TLS, every node is
/// checked against `tls_ca_certificates` (else the system's roots) and shown the client
/// certificate when given, as for one server.
#[cfg(feature = "cluster")]
fn cluster_client(
    url: &StorageUrl,
    seeds: &[redis::ConnectionInfo],
    options: &RedisOptions,
) -> Result<redis::cluster::ClusterClient, Error> {
    let builder = redis::cluster::ClusterClient::builder(seeds.to_vec())
        .connection_timeout(options.connect_timeout)
        .response_timeout(options.command_timeout)
        .retries(0);
    #[cfg(feature = "tls")]
    let builder = match tls_certificates(
        options.tls_ca_certificates.as_deref(),
        options.tls_client_identity.as_ref(),
    ) {
        Some(certificates) => builder.certs(certificates),
        None => builder,
    };
    builder.build().map_err(|e| {
        if url.is_tls() {
            Error::Option(format!(
                "{url}: {e} (PEM expected: tls_ca_file, tls_cert_file, tls_key_file)"
            ))
        } else {
            Error::Url(format!("{url}: {e}"))
        }
    })
}

/// The certificates redis-rs takes: `None` when neither a CA nor a client identity is given
/// (the system's roots, no client certificate).
#[cfg(feature = "tls")]
fn tls_certificates(
    ca: Option<&[u8]>,
    identity: Option<&TlsClientIdentity>,
) -> Option<redis::TlsCertificates> {
    if ca.is_none() && identity.is_none() {
        return None;
    }
    Some(redis::TlsCertificates {
        client_tls: identity.map(|id| redis::ClientTlsConfig {
            client_cert: id.certificate.clone(),
            client_key: id.key.clone(),
        }),
        root_cert: ca.map(<[u8]>::to_vec),
    })
}

impl std::fmt::Debug for RedisOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisOptions")
            .field("command_timeout", &self.command_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("reconnect_min_delay", &self.reconnect_min_delay)
            .field("reconnect_max_delay", &self.reconnect_max_delay)
            .field("key_prefix", &self.key_prefix)
            .field("key_secret", &self.key_secret.as_ref().map(|_| "***"))
            .field("fail_closed_retry_after", &self.fail_closed_retry_after)
            .field("local_fraction", &self.local_fraction)
            .field("io_threads", &self.io_threads)
            .field("on_event", &self.on_event.as_ref().map(|_| "Fn"))
            .field(
                "tls_ca_certificates",
                &self.tls_ca_certificates.as_ref().map(|pem| pem.len()),
            )
            .field("tls_client_identity", &self.tls_client_identity)
            .finish()
    }
}

impl RedisOptions {
    fn validate(&self) -> Result<(), Error> {
        let positive = |name: &str, d: Duration| {
            if d.is_zero() {
                Err(Error::Option(format!("{name} must be longer than zero")))
            } else {
                Ok(())
            }
        };
        positive("command_timeout", self.command_timeout)?;
        positive("connect_timeout", self.connect_timeout)?;
        positive("reconnect_min_delay", self.reconnect_min_delay)?;
        if self.reconnect_max_delay < self.reconnect_min_delay {
            return Err(Error::Option(
                "reconnect_max_delay must be at least reconnect_min_delay".into(),
            ));
        }
        if !(self.local_fraction > 0.0 && self.local_fraction <= 1.0) {
            return Err(Error::Option(format!(
                "local_fraction must be in (0, 1], got {}",
                self.local_fraction
            )));
        }
        if self.io_threads == 0 || self.io_threads > 64 {
            return Err(Error::Option("io_threads must be from 1 to 64".into()));
        }
        if self.key_prefix.is_empty() {
            return Err(Error::Option("key_prefix must not be empty".into()));
        }
        check_name_part("key_prefix", &self.key_prefix)
    }
}

/// Whether the store can reach Redis right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionState {
    /// Connected: decisions go to Redis.
    Up,
    /// Not connected: decisions follow each policy's fail mode while the store reconnects.
    Down,
}

/// Counters since the store was built, for metrics and health checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Health {
    /// Connection state now.
    pub state: ConnectionState,
    /// Requests decided by Redis.
    pub redis_decisions: u64,
    /// Requests Redis could not decide (each was then decided by the fail mode).
    pub errors: u64,
    /// Of `errors`, those that hit the command timeout.
    pub timeouts: u64,
    /// Requests admitted by `fail-open`.
    pub fail_open: u64,
    /// Requests denied by `fail-closed`.
    pub fail_closed: u64,
    /// Requests decided by the `local` in-process fallback.
    pub local: u64,
    /// Times the connection was lost.
    pub disconnects: u64,
    /// Times the connection was re-established after a loss (or after a lazy start).
    pub reconnects: u64,
    /// The most recent failure.
    pub last_error: Option<Error>,
}

#[derive(Default)]
struct Counters {
    redis_decisions: AtomicU64,
    errors: AtomicU64,
    timeouts: AtomicU64,
    fail_open: AtomicU64,
    fail_closed: AtomicU64,
    local: AtomicU64,
    disconnects: AtomicU64,
    reconnects: AtomicU64,
}

#[derive(Clone)]
enum Conn {
    Single(MultiplexedConnection),
    #[cfg(feature = "cluster")]
    Cluster(redis::cluster_async::ClusterConnection),
}

impl Conn {
    async fn query(&mut self, cmd: &Cmd) -> redis::RedisResult<Value> {
        match self {
            Conn::Single(c) => cmd.query_async(c).await,
            #[cfg(feature = "cluster")]
            Conn::Cluster(c) => cmd.query_async(c).await,
        }
    }
}

enum ClientKind {
    Single(Box<Client>),
    #[cfg(feature = "cluster")]
    Cluster(Box<redis::cluster::ClusterClient>),
}

enum Link {
    Up { conn: Conn, generation: u64 },
    Down { reconnecting: bool },
}

pub(crate) struct Inner {
    url: StorageUrl,
    client: ClientKind,
    pub(crate) options: RedisOptions,
    pub(crate) hasher: KeyHasher,
    runtime: IoRuntime,
    link: Mutex<Link>,
    generation: AtomicU64,
    counters: Counters,
    last_error: Mutex<Option<Error>>,
    /// Requests made while the store is held (see [`RedisStore::hold`]), sent on release.
    held: Mutex<Option<Vec<Outgoing>>>,
    /// Decisions waiting for the sender task (see [`Outbox`]).
    outbox: Arc<Outbox>,
}

/// Decisions on their way to Redis. Every decision goes through here: callers on any thread
/// append theirs and wake the store's one sender task, which takes everything that has
/// accumulated since it last ran and sends it ([`RedisStore::send_decisions`]): alone, or as
/// calls of [`BATCH_SCRIPT`] when several wait. A lone caller's decision goes out at once (the
/// wake-up is the one a task of its own would have cost); decisions that arrive while the I/O
/// thread is busy, from many threads or many async callers, go out together, without any
/// caller waiting for a batch to fill.
#[derive(Default)]
struct Outbox {
    decisions: Mutex<Vec<Outgoing>>,
    ready: tokio::sync::Notify,
}

impl Outbox {
    fn push(&self, decisions: impl IntoIterator<Item = Outgoing>) {
        self.decisions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(decisions);
        self.ready.notify_one();
    }

    fn take(&self) -> Vec<Outgoing> {
        std::mem::take(
            &mut *self
                .decisions
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    /// The sender task: runs on the store's runtime for the store's lifetime (it holds the
    /// store only while sending, so dropping the last handle still stops everything).
    async fn send(self: Arc<Self>, inner: Weak<Inner>) {
        loop {
            self.ready.notified().await;
            let decisions = self.take();
            if decisions.is_empty() {
                continue;
            }
            let Some(inner) = inner.upgrade() else {
                return;
            };
            RedisStore::send_decisions(inner, decisions);
        }
    }
}

/// One decision on its way to Redis, and where its reply goes.
struct Outgoing {
    call: ScriptCall,
    reply: Reply,
}

/// Where a decision's reply goes: a waiting thread's channel or an async caller's.
enum Reply {
    Blocking(std::sync::mpsc::SyncSender<Result<Vec<i64>, Error>>),
    Async(tokio::sync::oneshot::Sender<Result<Vec<i64>, Error>>),
}

impl Reply {
    fn send(self, result: Result<Vec<i64>, Error>) {
        // A caller that stopped waiting (timed out, or dropped its future) ignores the reply.
        let _ = match self {
            Reply::Blocking(tx) => tx.send(result).map_err(drop),
            Reply::Async(tx) => tx.send(result).map_err(drop),
        };
    }
}

/// The runtime that drives the connection.
///
/// With one I/O thread (the default) it is a current-thread runtime running on a thread of its
/// own: a request's task, the connection's driver and the reply's completion take turns on that
/// thread in the order they were woken, so requests that arrive together go out in one write and
/// their replies are read together. (A multi-thread runtime runs a woken task before the others,
/// so its driver wrote each request as soon as it was queued: a system call per request.)
/// With `io_threads` above 1, a multi-thread runtime.
struct IoRuntime {
    handle: tokio::runtime::Handle,
    /// The multi-thread runtime, or nothing (the I/O thread owns its runtime).
    multi: Option<tokio::runtime::Runtime>,
    /// Dropping it stops the I/O thread (and its runtime, dropped there).
    _stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl IoRuntime {
    fn start(threads: usize) -> std::io::Result<IoRuntime> {
        if threads > 1 {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads)
                .thread_name("ratewall-redis")
                .enable_io()
                .enable_time()
                .build()?;
            return Ok(IoRuntime {
                handle: rt.handle().clone(),
                multi: Some(rt),
                _stop: None,
            });
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()?;
        let handle = rt.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("ratewall-redis".into())
            .spawn(move || {
                let _ = rt.block_on(stopped);
                // Pending tasks are dropped here, on this thread, without waiting for them.
                rt.shutdown_background();
            })?;
        Ok(IoRuntime {
            handle,
            multi: None,
            _stop: Some(stop),
        })
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Never blocks, so the last handle may be dropped anywhere, even inside async code.
        if let Some(rt) = self.runtime.multi.take() {
            rt.shutdown_background();
        }
    }
}

/// A connection to one Redis deployment, shared by every [`RedisPolicy`](crate::RedisPolicy)
/// built on it. Cheap to clone (all clones share the connection).
///
/// The store owns a small Tokio runtime (`io_threads` threads, default 1) that drives the
/// connection, so it works the same from synchronous code, from any async runtime, and from
/// bindings that bring their own. All commands of all policies are pipelined over one
/// multiplexed connection.
#[derive(Clone)]
pub struct RedisStore {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.inner.url)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects to `url` now: fails with a clear [`Error`] if the URL is invalid, the server
    /// cannot be reached within `connect_timeout`, or the script cannot be loaded.
    pub fn connect(url: &str, options: RedisOptions) -> Result<RedisStore, Error> {
        let store = Self::build(url, options)?;
        let inner = Arc::clone(&store.inner);
        let conn = store.block_on(async move { inner.open().await })??;
        store.inner.set_up(conn, false);
        Ok(store)
    }

    /// Like [`connect`](Self::connect) but does not wait for the server: only the URL and
    /// options are checked now. Until the first connection succeeds (in the background),
    /// requests follow their policy's fail mode. For apps that must start while Redis is down.
    pub fn connect_lazy(url: &str, options: RedisOptions) -> Result<RedisStore, Error> {
        let store = Self::build(url, options)?;
        store.inner.start_reconnect();
        Ok(store)
    }

    fn build(url: &str, options: RedisOptions) -> Result<RedisStore, Error> {
        options.validate()?;
        let url: StorageUrl = url.parse()?;
        #[cfg(feature = "tls")]
        {
            // rustls needs one process-wide crypto provider; with several compiled in (another
            // crate of the process may enable aws-lc-rs) it would otherwise panic at the first
            // TLS connection. Installing ours fails harmlessly when one is installed already.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        if options.tls_ca_certificates.is_some() && !url.is_tls() {
            return Err(Error::Option(format!(
                "{url}: TLS CA certificates apply to rediss:// URLs only (one server or rediss+cluster://)"
            )));
        }
        if options.tls_client_identity.is_some() && !url.is_tls() {
            return Err(Error::Option(format!(
                "{url}: a TLS client certificate applies to rediss:// URLs only (one server or rediss+cluster://)"
            )));
        }
        let client = match &url.target {
            Target::Single(info) => ClientKind::Single(Box::new(single_client(
                &url,
                info,
                options.tls_ca_certificates.as_deref(),
                options.tls_client_identity.as_ref(),
            )?)),
            #[cfg(feature = "cluster")]
            Target::Cluster(seeds) => {
                ClientKind::Cluster(Box::new(cluster_client(&url, seeds, &options)?))
            }
            #[cfg(not(feature = "cluster"))]
            Target::Cluster(_) => unreachable!("rejected by the URL parser"),
        };
        let secret = match &options.key_secret {
            Some(s) => s.clone(),
            None => match std::env::var_os(KEY_SECRET_ENV) {
                Some(v) if !v.is_empty() => v.into_encoded_bytes(),
                _ => DEFAULT_KEY_SECRET.to_vec(),
            },
        };
        let runtime = IoRuntime::start(options.io_threads)
            .map_err(|e| Error::Option(format!("cannot start the I/O runtime: {e}")))?;
        let outbox = Arc::new(Outbox::default());
        let inner = Arc::new(Inner {
            url,
            client,
            hasher: KeyHasher::new(&secret),
            options,
            runtime,
            link: Mutex::new(Link::Down {
                reconnecting: false,
            }),
            generation: AtomicU64::new(0),
            counters: Counters::default(),
            last_error: Mutex::new(None),
            held: Mutex::new(None),
            outbox: Arc::clone(&outbox),
        });
        inner
            .runtime
            .handle
            .spawn(outbox.send(Arc::downgrade(&inner)));
        Ok(RedisStore { inner })
    }

    /// The URL, password redacted.
    pub fn url(&self) -> &StorageUrl {
        &self.inner.url
    }

    /// The options the store was built with.
    pub fn options(&self) -> &RedisOptions {
        &self.inner.options
    }

    /// Connection state now.
    pub fn state(&self) -> ConnectionState {
        match *self
            .inner
            .link
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
        {
            Link::Up { .. } => ConnectionState::Up,
            Link::Down { .. } => ConnectionState::Down,
        }
    }

    /// Counters and state: the metric and health-check view.
    pub fn health(&self) -> Health {
        let c = &self.inner.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Health {
            state: self.state(),
            redis_decisions: get(&c.redis_decisions),
            errors: get(&c.errors),
            timeouts: get(&c.timeouts),
            fail_open: get(&c.fail_open),
            fail_closed: get(&c.fail_closed),
            local: get(&c.local),
            disconnects: get(&c.disconnects),
            reconnects: get(&c.reconnects),
            last_error: self
                .inner
                .last_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        }
    }

    /// The keyed hash of a client key, as it appears in Redis key names.
    pub fn key_hash(&self, client_key: &[u8]) -> String {
        self.inner.hasher.hash(client_key)
    }

    pub(crate) fn hashed_key(&self, client_key: &[u8]) -> HashedKey {
        self.inner.hasher.hashed(client_key)
    }

    /// Runs `fut` on the store's runtime and waits for it, from any thread (also from inside
    /// another async runtime, where it blocks that thread). `None` if it did not finish within
    /// the command timeout plus a grace period (it then goes on in the background, bounded by
    /// its own timeouts).
    pub(crate) fn block_on<T: Send + 'static>(
        &self,
        fut: impl Future<Output = T> + Send + 'static,
    ) -> Result<T, Error> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.runtime().spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv_timeout(self.wait_bound())
            .map_err(|_| Error::Timeout)
    }

    /// How long a blocked caller waits for the runtime: the command timeout (or, while
    /// connecting, the connect timeout) plus a grace period.
    fn wait_bound(&self) -> Duration {
        self.inner
            .options
            .command_timeout
            .max(self.inner.options.connect_timeout)
            .saturating_add(Duration::from_millis(250))
    }

    /// Holds the decisions requested from now on (by any policy of this store) until
    /// [`release`](Self::release), which sends them together: one wake-up of the I/O thread,
    /// one write and one script call for up to [`MAX_BATCH`] decisions (see
    /// [`script`](crate::script)), instead of one each. On a Redis Cluster they go as calls of
    /// their own, in one write (their keys lie in different hash slots). For a host that makes
    /// many requests in one go and knows when it is done, such as one turn of Node's event
    /// loop; the host must call `release` soon (a held request waits, and its command timeout
    /// only starts once sent). Returns `false` when the store was held already.
    pub fn hold(&self) -> bool {
        let mut held = self.inner.held();
        if held.is_some() {
            return false;
        }
        *held = Some(Vec::new());
        true
    }

    /// Sends the decisions requested since [`hold`](Self::hold), and sends later ones at once
    /// again.
    pub fn release(&self) {
        match self.inner.held().take() {
            Some(held) if !held.is_empty() => self.inner.outbox.push(held),
            _ => {}
        }
    }

    /// Sends decisions from the store's runtime: in calls of [`BATCH_SCRIPT`] of up to
    /// [`MAX_BATCH`] each, a lone one (or every one, on a cluster) with the one-decision script.
    fn send_decisions(inner: Arc<Inner>, mut decisions: Vec<Outgoing>) {
        let most = match inner.client {
            ClientKind::Single(_) => MAX_BATCH,
            // A cluster's decisions lie in different hash slots.
            #[cfg(feature = "cluster")]
            ClientKind::Cluster(_) => 1,
        };
        while !decisions.is_empty() {
            let rest = decisions.split_off(decisions.len().min(most));
            let batch = std::mem::replace(&mut decisions, rest);
            let inner = Arc::clone(&inner);
            if batch.len() > 1 {
                tokio::spawn(Self::eval_batch(inner, batch));
            } else if let Some(d) = batch.into_iter().next() {
                tokio::spawn(async move { d.reply.send(Self::eval(inner, d.call).await) });
            }
        }
    }

    /// A decision of the policy script, sent now (with whatever else is waiting) or, while the
    /// store is held, on [`release`](Self::release). The returned future gives its reply
    /// (`None` if the store's runtime dropped it).
    pub(crate) fn submit_decision(
        &self,
        call: ScriptCall,
    ) -> impl Future<Output = Option<Result<Vec<i64>, Error>>> + Send + 'static {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.enqueue(Outgoing {
            call,
            reply: Reply::Async(tx),
        });
        async move { rx.await.ok() }
    }

    /// A decision of the policy script, waited for on the calling thread (from any thread, also
    /// inside another async runtime) for at most the command timeout plus a grace period.
    pub(crate) fn decide_blocking(&self, call: ScriptCall) -> Result<Vec<i64>, Error> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.enqueue(Outgoing {
            call,
            reply: Reply::Blocking(tx),
        });
        rx.recv_timeout(self.wait_bound())
            .unwrap_or(Err(Error::Timeout))
    }

    fn enqueue(&self, decision: Outgoing) {
        let mut held = self.inner.held();
        match held.as_mut() {
            Some(held) => held.push(decision),
            None => {
                drop(held);
                self.inner.outbox.push([decision]);
            }
        }
    }

    pub(crate) fn runtime(&self) -> &tokio::runtime::Handle {
        &self.inner.runtime.handle
    }

    pub(crate) fn record_fallback(&self, mode: FailMode) {
        let c = &self.inner.counters;
        let counter = match mode {
            FailMode::Closed => &c.fail_closed,
            FailMode::Local => &c.local,
            _ => &c.fail_open,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn record_error(&self, error: &Error, policy: &str, mode: FailMode) {
        let c = &self.inner.counters;
        c.errors.fetch_add(1, Ordering::Relaxed);
        if *error == Error::Timeout {
            c.timeouts.fetch_add(1, Ordering::Relaxed);
        }
        *self
            .inner
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(error.clone());
        self.inner.emit(&Event {
            kind: EventKind::Error,
            error: Some(error),
            policy: Some(policy),
            fail_mode: Some(mode),
        });
    }

    pub(crate) fn record_decision(&self) {
        self.inner
            .counters
            .redis_decisions
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Runs the policy script with `keys` and `args` (one round trip: `EVALSHA`, or `EVAL` when
    /// the server does not know the script yet) within the command timeout; returns the
    /// integers of its reply.
    pub(crate) async fn eval(inner: Arc<Inner>, call: ScriptCall) -> Result<Vec<i64>, Error> {
        let body = |cmd: &mut Cmd| {
            cmd.arg(call.key_count());
            call.write_keys(cmd);
            call.write_args(cmd);
        };
        match Self::run_script(&inner, SCRIPT, script_sha1(), body).await? {
            Value::BulkString(text) => parse_integers(&text),
            other => Err(Error::Protocol(format!("expected a string, got {other:?}"))),
        }
    }

    /// Decides `batch` in one call of [`BATCH_SCRIPT`] and hands each decision its reply: its
    /// own line of the script's reply, or the call's error when the call as a whole failed.
    async fn eval_batch(inner: Arc<Inner>, batch: Vec<Outgoing>) {
        let (calls, replies): (Vec<ScriptCall>, Vec<_>) =
            batch.into_iter().map(|d| (d.call, d.reply)).unzip();
        let runs = same_args_runs(&calls);
        let body = |cmd: &mut Cmd| {
            cmd.arg(calls.iter().map(ScriptCall::key_count).sum::<usize>());
            for call in &calls {
                call.write_keys(cmd);
            }
            cmd.arg(runs.len());
            for run in &runs {
                let first = &run[0];
                cmd.arg(run.len())
                    .arg(first.key_count())
                    .arg(first.arg_count());
            }
            for run in &runs {
                run[0].write_args(cmd);
            }
        };
        let outcome = Self::run_script(&inner, BATCH_SCRIPT, batch_sha1(), body).await;
        let lines = outcome.and_then(|value| split_batch_reply(value, replies.len()));
        match lines {
            Ok(lines) => {
                for (reply, line) in replies.into_iter().zip(lines) {
                    reply.send(line);
                }
            }
            Err(e) => {
                for reply in replies {
                    reply.send(Err(e.clone()));
                }
            }
        }
    }

    /// Runs `script` (`EVALSHA sha`, or `EVAL` when the server does not know it yet) within the
    /// command timeout; a connection failure marks the store down.
    /// `body` appends the number of keys, the keys and the arguments.
    async fn run_script(
        inner: &Arc<Inner>,
        script: &str,
        sha: &str,
        body: impl Fn(&mut Cmd),
    ) -> Result<Value, Error> {
        let (mut conn, generation) = inner.current()?;
        let timeout = inner.options.command_timeout;
        let outcome = tokio::time::timeout(timeout, async {
            let mut cmd = redis::cmd("EVALSHA");
            cmd.arg(sha);
            body(&mut cmd);
            match conn.query(&cmd).await {
                Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                    let mut cmd = redis::cmd("EVAL");
                    cmd.arg(script);
                    body(&mut cmd);
                    conn.query(&cmd).await
                }
                other => other,
            }
        })
        .await;
        let value = match outcome {
            Err(_) => Err(Error::Timeout),
            Ok(Err(e)) => Err(Error::from_redis(&e)),
            Ok(Ok(v)) => Ok(v),
        };
        value.inspect_err(|e| {
            if e.is_connection() {
                inner.lost(generation, e);
            }
        })
    }

    /// Runs one plain command (tests, reset, diagnostics) within the command timeout.
    pub(crate) async fn command(inner: Arc<Inner>, cmd: Cmd) -> Result<Value, Error> {
        let (mut conn, generation) = inner.current()?;
        let outcome = tokio::time::timeout(inner.options.command_timeout, conn.query(&cmd)).await;
        let result = match outcome {
            Err(_) => Err(Error::Timeout),
            Ok(Err(e)) => Err(Error::from_redis(&e)),
            Ok(Ok(v)) => Ok(v),
        };
        result.inspect_err(|e| {
            if e.is_connection() {
                inner.lost(generation, e);
            }
        })
    }

    /// Sends one command to Redis and returns its reply (for diagnostics and tests, such as
    /// `MEMORY USAGE` or `PTTL` of a key). Fails fast when the store is down.
    pub fn raw_command(&self, cmd: Cmd) -> Result<Value, Error> {
        let inner = Arc::clone(&self.inner);
        self.block_on(Self::command(inner, cmd))?
    }
}

/// The batch script's reply, one result per decision: `n` lines, each the integers of a
/// decision or `E ` and the error that decision met.
/// `calls` cut into runs of consecutive calls with the same arguments (one policy, operation,
/// cost: usually the whole batch), which the batch script takes once per run: each decision
/// then costs Redis its keys alone, not seven more arguments to read and to hand to Lua.
fn same_args_runs(calls: &[ScriptCall]) -> Vec<&[ScriptCall]> {
    let mut runs = Vec::new();
    let mut start = 0;
    for i in 1..=calls.len() {
        if i == calls.len() || !calls[i].same_args(&calls[start]) {
            runs.push(&calls[start..i]);
            start = i;
        }
    }
    runs
}

fn split_batch_reply(value: Value, n: usize) -> Result<Vec<Result<Vec<i64>, Error>>, Error> {
    let Value::BulkString(text) = value else {
        return Err(Error::Protocol(format!("expected a string, got {value:?}")));
    };
    let lines: Vec<Result<Vec<i64>, Error>> = text
        .split(|&b| b == b'\n')
        .map(|line| match line.strip_prefix(b"E ") {
            Some(error) => Err(Error::Server(String::from_utf8_lossy(error).into_owned())),
            None => parse_integers(line),
        })
        .collect();
    if lines.len() != n {
        return Err(Error::Protocol(format!(
            "expected {n} decisions from the batch script, got {}",
            lines.len()
        )));
    }
    Ok(lines)
}

/// The script's reply: integers separated by single spaces.
fn parse_integers(text: &[u8]) -> Result<Vec<i64>, Error> {
    let bad = || {
        Error::Protocol(format!(
            "expected integers separated by spaces, got {:?}",
            String::from_utf8_lossy(text)
        ))
    };
    text.split(|&b| b == b' ')
        .map(|field| {
            std::str::from_utf8(field)
                .ok()
                .and_then(|f| f.parse::<i64>().ok())
                .ok_or_else(bad)
        })
        .collect()
}

impl Inner {
    fn held(&self) -> std::sync::MutexGuard<'_, Option<Vec<Outgoing>>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn emit(&self, event: &Event<'_>) {
        if let Some(handler) = &self.options.on_event {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler(event)));
        }
    }

    fn current(self: &Arc<Self>) -> Result<(Conn, u64), Error> {
        let mut link = self.link.lock().unwrap_or_else(PoisonError::into_inner);
        match &mut *link {
            Link::Up { conn, generation } => Ok((conn.clone(), *generation)),
            Link::Down { reconnecting } => {
                if !*reconnecting {
                    *reconnecting = true;
                    drop(link);
                    self.spawn_reconnect();
                }
                Err(Error::Unavailable)
            }
        }
    }

    /// The connection of `generation` failed: mark the store down (once) and reconnect.
    fn lost(self: &Arc<Self>, generation: u64, error: &Error) {
        {
            let mut link = self.link.lock().unwrap_or_else(PoisonError::into_inner);
            match &*link {
                Link::Up { generation: g, .. } if *g == generation => {
                    *link = Link::Down { reconnecting: true };
                }
                _ => return,
            }
        }
        self.counters.disconnects.fetch_add(1, Ordering::Relaxed);
        self.emit(&Event {
            kind: EventKind::Down,
            error: Some(error),
            policy: None,
            fail_mode: None,
        });
        self.spawn_reconnect();
    }

    fn start_reconnect(self: &Arc<Self>) {
        {
            let mut link = self.link.lock().unwrap_or_else(PoisonError::into_inner);
            *link = Link::Down { reconnecting: true };
        }
        self.spawn_reconnect();
    }

    fn set_up(&self, conn: Conn, reconnected: bool) {
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        *self.link.lock().unwrap_or_else(PoisonError::into_inner) = Link::Up { conn, generation };
        if reconnected {
            self.counters.reconnects.fetch_add(1, Ordering::Relaxed);
            self.emit(&Event {
                kind: EventKind::Up,
                error: None,
                policy: None,
                fail_mode: None,
            });
        }
    }

    /// Reconnects in the background with exponential backoff until it succeeds or the store is
    /// dropped. Holds only a weak reference, so it never keeps the store alive.
    fn spawn_reconnect(self: &Arc<Self>) {
        let weak: Weak<Inner> = Arc::downgrade(self);
        self.runtime.handle.spawn(async move {
            let mut delay = match weak.upgrade() {
                Some(inner) => inner.options.reconnect_min_delay,
                None => return,
            };
            loop {
                let Some(inner) = weak.upgrade() else { return };
                match inner.open().await {
                    Ok(conn) => {
                        inner.set_up(conn, true);
                        return;
                    }
                    Err(e) => {
                        *inner
                            .last_error
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner) = Some(e.clone());
                        let max = inner.options.reconnect_max_delay;
                        drop(inner);
                        tokio::time::sleep(delay).await;
                        delay = delay.saturating_mul(2).min(max);
                    }
                }
            }
        });
    }

    /// One connection attempt within the connect timeout: connect, then load the script (which
    /// also proves the server runs Lua scripts and accepts ours).
    async fn open(&self) -> Result<Conn, Error> {
        let attempt = async {
            let mut conn = match &self.client {
                ClientKind::Single(client) => {
                    // No reply timeout of the connection's own: every command here already
                    // runs under one (`command_timeout` for a call, `connect_timeout` for this
                    // attempt), and a second timer per request cost the I/O thread two wake-up
                    // writes per call (a new earliest timer wakes the runtime's driver, even
                    // from its own thread).
                    let config = AsyncConnectionConfig::new()
                        .set_connection_timeout(Some(self.options.connect_timeout))
                        .set_response_timeout(None);
                    Conn::Single(
                        client
                            .get_multiplexed_async_connection_with_config(&config)
                            .await
                            .map_err(|e| Error::Connect(format!("{}: {e}", self.url)))?,
                    )
                }
                #[cfg(feature = "cluster")]
                ClientKind::Cluster(client) => Conn::Cluster(
                    client
                        .get_async_connection()
                        .await
                        .map_err(|e| Error::Connect(format!("{}: {e}", self.url)))?,
                ),
            };
            for (script, sha) in [(SCRIPT, script_sha1()), (BATCH_SCRIPT, batch_sha1())] {
                let mut load = redis::cmd("SCRIPT");
                load.arg("LOAD").arg(script);
                let loaded = match conn.query(&load).await {
                    Ok(loaded) => loaded,
                    // A user allowed EVALSHA/EVAL but not SCRIPT: the first call of each script
                    // loads it through the EVAL fallback instead.
                    Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoPerm) => Value::Nil,
                    Err(e) => {
                        let e = Error::from_redis(&e);
                        return Err(if e.is_connection() {
                            Error::Connect(format!("{}: {e}", self.url))
                        } else {
                            Error::Server(format!("loading the ratewall script failed: {e}"))
                        });
                    }
                };
                if let Value::BulkString(b) = &loaded {
                    if b.as_slice() != sha.as_bytes() {
                        return Err(Error::Protocol(format!(
                            "SCRIPT LOAD returned {:?}, expected {sha}",
                            String::from_utf8_lossy(b),
                        )));
                    }
                }
            }
            Ok(conn)
        };
        match tokio::time::timeout(self.options.connect_timeout, attempt).await {
            Ok(result) => result,
            Err(_) => Err(Error::Connect(format!(
                "{}: no answer within {:?}",
                self.url, self.options.connect_timeout
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_integers;

    #[test]
    fn script_replies_parse_exactly() {
        assert_eq!(
            parse_integers(b"1 9007199254740992 0 4503599627370496").unwrap(),
            vec![1, 9_007_199_254_740_992, 0, 4_503_599_627_370_496]
        );
        assert_eq!(parse_integers(b"0 -1 5 6").unwrap(), vec![0, -1, 5, 6]);
        for bad in [&b""[..], b"1  2", b"1 2 ", b"1 x", b"1.5", b"1e3"] {
            assert!(parse_integers(bad).is_err(), "{bad:?}");
        }
    }
}
