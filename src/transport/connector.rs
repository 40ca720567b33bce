//! Opening Redis connections, the process-global pools that hold them, and running packed
//! commands on a pooled connection. The blocking path's connections are ours (`transport/blocking.rs`); the
//! async path's are redis-rs's multiplexed connections on our streams (`transport/streams.rs`).

use crate::errors::{Error, ErrorKind, Refusal, Result};
use crate::process::fork::ForkLocal;
use crate::resp::pack::Packed;
use crate::settings::location::{Address, ConnectionOptions, ServerConfig};
use crate::transport::blocking::{io_kind, Conn, Endpoint};
use crate::transport::pool::{Connector, Pool, Pooled};
use crate::transport::resend::repeatable;
use crate::transport::streams;
use parking_lot::Mutex;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, RedisConnectionInfo, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Instant;

pub struct RedisConnector {
    server: ServerConfig,
    options: ConnectionOptions,
    /// The TLS configuration (`rediss://` only), for both paths' connections.
    tls: Option<Arc<rustls::ClientConfig>>,
    /// `AUTH` and `SELECT` for a new connection, blocking or async.
    setup: Packed,
    /// The async path's one multiplexed connection to this server (per fork generation).
    multiplexed: ForkLocal<Mutex<Option<MultiplexedConnection>>>,
    /// How many times that connection was opened (again after each failure).
    multiplexed_opened: AtomicU64,
    /// Whether the server said it is Valkey, in its last handshake.
    valkey: AtomicBool,
}

impl RedisConnector {
    pub fn new(server: ServerConfig, options: ConnectionOptions) -> Result<Self> {
        let tls = match server.address {
            Address::Tls { .. } => Some(crate::transport::tls::client_config(&options.tls)?),
            _ => None,
        };
        Ok(Self {
            setup: setup_request(&server, false),
            server,
            options,
            tls,
            multiplexed: ForkLocal::new(|| Mutex::new(None)),
            multiplexed_opened: AtomicU64::new(0),
            valkey: AtomicBool::new(false),
        })
    }

    /// The shared multiplexed connection, opened on first use on our own stream (`transport/streams.rs`:
    /// replies held to the size bounds) with our timeouts (redis-rs's own defaults, 1 s to
    /// connect and 500 ms per reply, would override the cache's options).
    /// The flag says whether it was opened by this call.
    pub async fn multiplexed(&self) -> Result<(MultiplexedConnection, bool)> {
        let slot = self.multiplexed.current();
        if let Some(conn) = slot.lock().clone() {
            return Ok((conn, false));
        }
        let describe = self.describe();
        let connect = async {
            let mut stream = streams::open(&self.server.address, self.tls.as_ref())
                .await
                .map_err(|e| Error::new(io_kind(&e), format!("{describe}: {e}")))?;
            let (request, commands) = (self.setup.bytes(), self.setup.commands());
            let replies = stream.exchange(request, commands, &describe).await?;
            if let Some(legacy) = self.judge_setup(&replies, true)? {
                let replies = stream
                    .exchange(legacy.bytes(), legacy.commands(), &describe)
                    .await?;
                self.judge_setup(&replies, false)?;
            }
            let config = AsyncConnectionConfig::new()
                .set_response_timeout(self.options.socket_timeout.filter(|t| !t.is_zero()));
            // Set up already: redis-rs is to send nothing of its own.
            let settings = RedisConnectionInfo::default().set_skip_set_lib_name();
            let (conn, driver) = MultiplexedConnection::new_with_config(&settings, stream, config)
                .await
                .map_err(|e| Error::from_redis(&e, &describe))?;
            tokio::spawn(driver);
            Ok::<_, Error>(conn)
        };
        // The handshake (TLS, AUTH, SELECT) is bounded with the connection, as on the
        // blocking path.
        let conn = match self.options.effective_connect_timeout() {
            Some(limit) => tokio::time::timeout(limit, connect)
                .await
                .unwrap_or_else(|_| {
                    Err(Error::new(
                        ErrorKind::Timeout,
                        format!("{describe}: timed out while connecting"),
                    ))
                })?,
            None => connect.await?,
        };
        *slot.lock() = Some(conn.clone());
        self.multiplexed_opened.fetch_add(1, Ordering::Relaxed);
        Ok((conn, true))
    }

    /// After a connection failure: the next async call connects afresh.
    pub fn forget_multiplexed(&self) {
        self.multiplexed.reset();
    }

    pub fn multiplexed_opened(&self) -> u64 {
        self.multiplexed_opened.load(Ordering::Relaxed)
    }

    pub fn server(&self) -> &ServerConfig {
        &self.server
    }

    /// `db.system.name`: `valkey` once a Valkey server said so, else `redis`.
    pub fn system(&self) -> &'static str {
        match self.valkey.load(Ordering::Relaxed) {
            true => "valkey",
            false => "redis",
        }
    }

    /// The handshake's replies judged, on either path: done (None), or, on the first try,
    /// `AUTH password` to send next when the server predates ACL users (Redis before 6 refuses
    /// `AUTH user password` for its number of arguments, as redis-py and redis-rs retry it).
    /// Any other refusal fails the connection.
    fn judge_setup(&self, replies: &[Value], first_try: bool) -> Result<Option<Packed>> {
        // The last replies answer CLIENT SETINFO: a server before Redis 7.2 refuses it, and the
        // connection is as good without (redis-py ignores that refusal too). Fewer replies
        // than commands: the server refused the connection and hung up (maxclients), whichever
        // command its refusal answers.
        let expected = self.setup.commands();
        let judged = match replies.len() < expected {
            true => replies,
            false => &replies[..expected - IDENTIFY.len()],
        };
        if replies.len() >= expected {
            if let Some(system) = server_system(replies.last()) {
                self.valkey.store(system == "valkey", Ordering::Relaxed);
            }
        }
        match judged.iter().find_map(server_error) {
            None => Ok(None),
            Some(err) if first_try && err.refusal == Some(Refusal::AuthArity) => {
                Ok(Some(setup_request(&self.server, true)))
            }
            // AUTH or SELECT refused: the connection is unusable, like a refused socket.
            Some(err) => Err(err.in_handshake(&self.describe())),
        }
    }
}

/// The ACL user a password is sent with when no user is named.
const DEFAULT_USER: &str = "default";

/// What every connection tells the server it is (`CLIENT LIST`'s `lib-name` and `lib-ver`, as
/// redis-py and Django's own backend send theirs), and asks what it is (`HELLO`'s `server`:
/// `redis` or `valkey`, for telemetry's `db.system.name`), in the same write as AUTH and SELECT.
/// A server that refuses any of them (SETINFO before Redis 7.2, HELLO before 6.2) serves as
/// well without.
const IDENTIFY: [&[&[u8]]; 3] = [
    &[b"CLIENT", b"SETINFO", b"LIB-NAME", b"django-redis-rs"],
    &[
        b"CLIENT",
        b"SETINFO",
        b"LIB-VER",
        env!("CARGO_PKG_VERSION").as_bytes(),
    ],
    &[b"HELLO"],
];

/// What a server's `HELLO` reply says it is.
fn server_system(hello: Option<&Value>) -> Option<&'static str> {
    let fields = match hello? {
        Value::Array(fields) => fields.chunks(2).collect::<Vec<_>>(),
        Value::Map(pairs) => return pairs.iter().find_map(|(k, v)| system_field(k, v)),
        _ => return None,
    };
    fields.iter().find_map(|pair| match pair {
        [k, v] => system_field(k, v),
        _ => None,
    })
}

fn system_field(key: &Value, value: &Value) -> Option<&'static str> {
    if crate::resp::pack::text(key)? != "server" {
        return None;
    }
    Some(match crate::resp::pack::text(value)?.as_str() {
        "valkey" => "valkey",
        _ => "redis",
    })
}

/// `AUTH`, `SELECT` (when not database 0) and `IDENTIFY` for a new connection. A password goes with a user
/// name, `default` when none is given, as redis-py 8 sends it (`HELLO 3 AUTH default …`): a
/// server whose default user needs no password accepts any password then, where it refuses the
/// one-argument `AUTH password`, and a `requirepass` server checks it as the default user's.
/// `legacy` sends `AUTH password`, for a server before Redis 6 (it knows no users).
fn setup_request(server: &ServerConfig, legacy: bool) -> Packed {
    let mut setup = Packed::new();
    if let Some(password) = &server.password {
        let user = server.username.as_deref().unwrap_or(DEFAULT_USER);
        setup.extend(&match legacy {
            false => Packed::command(&[b"AUTH", user.as_bytes(), password.as_bytes()]),
            true => Packed::command(&[b"AUTH", password.as_bytes()]),
        });
    }
    if server.db != 0 {
        let mut digits = itoa::Buffer::new();
        setup.extend(&Packed::command(&[
            b"SELECT",
            digits.format(server.db).as_bytes(),
        ]));
    }
    for identify in &IDENTIFY {
        setup.extend(&Packed::command(identify));
    }
    setup
}

impl Connector for RedisConnector {
    type Conn = Conn;

    fn connect(&self) -> Result<Conn> {
        let endpoint = match (&self.server.address, &self.tls) {
            (Address::Tcp { host, port }, _) => Endpoint::Tcp(host, *port),
            (Address::Unix { path }, _) => Endpoint::Unix(path),
            (Address::Tls { host, port }, Some(config)) => Endpoint::Tls(host, *port, config),
            (Address::Tls { .. }, None) => {
                return Err(Error::config("LOCATION", "TLS is not configured"))
            }
        };
        let (mut conn, replies) = Conn::open(
            endpoint,
            self.options.effective_connect_timeout(),
            self.options.socket_timeout.filter(|t| !t.is_zero()),
            (self.setup.bytes(), self.setup.commands()),
            self.describe(),
        )?;
        if let Some(legacy) = self.judge_setup(&replies, true)? {
            let replies = conn.exchange(legacy.bytes(), legacy.commands())?;
            self.judge_setup(&replies, false)?;
        }
        Ok(conn)
    }

    fn describe(&self) -> String {
        format!("Redis at {}", self.server)
    }

    /// redis-py's `health_check_interval`: PING a connection that sat idle longer than that.
    fn healthy(&self, conn: &mut Conn, idle_since: Instant) -> bool {
        match self.options.health_check_interval {
            Some(every) if idle_since.elapsed() >= every => {
                matches!(conn.exchange(PING, 1).as_deref(), Ok([Value::SimpleString(s)]) if s == "PONG")
            }
            _ => true,
        }
    }
}

const PING: &[u8] = b"*1\r\n$4\r\nPING\r\n";

pub type RedisPool = Pool<RedisConnector>;

type Registry = Mutex<HashMap<(ServerConfig, ConnectionOptions), Arc<RedisPool>>>;

static POOLS: LazyLock<ForkLocal<Registry>> = LazyLock::new(|| ForkLocal::new(Registry::default));

/// The process's pool for this server and these options, shared by every cache that names them.
pub fn shared_pool(server: &ServerConfig, options: &ConnectionOptions) -> Result<Arc<RedisPool>> {
    let registry = POOLS.current();
    let mut pools = registry.lock();
    let key = (server.clone(), options.clone());
    if let Some(pool) = pools.get(&key) {
        return Ok(Arc::clone(pool));
    }
    let connector = RedisConnector::new(server.clone(), options.clone())?;
    let pool = Arc::new(Pool::new(
        connector,
        options.max_connections,
        options.pool_timeout,
        options.breaker,
    ));
    pools.insert(key, Arc::clone(&pool));
    Ok(pool)
}

fn server_error(value: &Value) -> Option<Error> {
    match value {
        Value::ServerError(err) => Some(Error::from_server(err)),
        _ => None,
    }
}

/// The replies, or the first error reply among them as `ErrorKind::Response`.
pub fn checked(replies: Vec<Value>) -> Result<Vec<Value>> {
    match replies.iter().find_map(server_error) {
        Some(err) => Err(err),
        None => Ok(replies),
    }
}

/// Send packed commands on one pooled connection and read one reply per command. A connection
/// that failed mid-exchange is closed rather than returned, so no later caller reads a stale reply.
/// Blocks: call it with the GIL released.
pub fn run(pool: &RedisPool, packed: &Packed) -> Result<Vec<Value>> {
    attempt(pool, packed, true)
}

fn attempt(pool: &RedisPool, packed: &Packed, may_resend: bool) -> Result<Vec<Value>> {
    let mut conn = pool.get()?;
    let result = conn.exchange(packed.bytes(), packed.commands());
    keep_if_open(&mut conn);
    let resend = may_resend && conn.reused();
    drop(conn);
    settle(pool, packed, result, resend)
}

/// A connection that failed mid-exchange (it may hold half a reply) is closed, not reused.
fn keep_if_open(conn: &mut Pooled<'_, RedisConnector>) {
    if !conn.is_open() {
        conn.mark_broken();
    }
}

/// A fan-out request: sent and awaiting its replies, or already answered after a resend.
enum Sent<'a> {
    Pending(Pooled<'a, RedisConnector>),
    Done(Vec<Value>),
}

/// After an exchange: tell the circuit breaker how the server did, and recover from a pooled
/// connection that died while idle (the server restarted meanwhile). Such a failure says nothing
/// about the server now: the other idle connections, opened before the same outage, are closed
/// too, and the request is sent once more on a new connection when it is safe to repeat.
/// `reused`: the connection sat idle in the pool, and this is the request's first attempt.
fn settle(
    pool: &RedisPool,
    packed: &Packed,
    result: Result<Vec<Value>>,
    reused: bool,
) -> Result<Vec<Value>> {
    match result {
        Err(err) if reused && err.kind == ErrorKind::Connection => {
            pool.discard_idle();
            if repeatable(packed) {
                attempt(pool, packed, false)
            } else {
                record(pool, Err(err))
            }
        }
        result => record(pool, result),
    }
}

/// Tell the server's circuit breaker how an exchange went: an error reply means the server is up.
fn record<T>(pool: &RedisPool, result: Result<T>) -> Result<T> {
    match &result {
        Err(err) if err.breaks_connection() => pool.breaker().failure(),
        _ => pool.breaker().success(),
    }
    result
}

/// Send each request to its node first, then read every node's replies: the round trips overlap,
/// so several nodes cost about one round trip, without threads. Requests must go to distinct
/// pools (one connection is taken from each). Error replies are left among the replies, as by
/// `run`. Blocks: call it with the GIL released.
pub fn run_fanout(requests: &[(&RedisPool, &Packed)]) -> Vec<Result<Vec<Value>>> {
    let sent: Vec<Result<_>> = requests
        .iter()
        .map(|(pool, packed)| {
            let mut conn = pool.get()?;
            match conn.send(packed.bytes()) {
                Ok(()) => Ok(Sent::Pending(conn)),
                Err(err) => {
                    keep_if_open(&mut conn);
                    let reused = conn.reused();
                    drop(conn);
                    settle(pool, packed, Err(err), reused).map(Sent::Done)
                }
            }
        })
        .collect();
    sent.into_iter()
        .zip(requests)
        .map(|(sent, (pool, packed))| {
            let mut conn = match sent? {
                Sent::Pending(conn) => conn,
                Sent::Done(replies) => return Ok(replies),
            };
            let result = conn.receive(packed.commands());
            keep_if_open(&mut conn);
            let reused = conn.reused();
            drop(conn);
            settle(pool, packed, result, reused)
        })
        .collect()
}

/// `run` on the server's multiplexed connection. As in `run`, a shared connection found dead
/// (the server restarted since it was opened) is replaced, and a request that is safe to
/// repeat is sent once more on the new one.
pub async fn arun(pool: &RedisPool, packed: &Packed) -> Result<Vec<Value>> {
    pool.admit()?;
    record(pool, aattempt(pool.connector(), packed).await)
}

async fn aattempt(connector: &RedisConnector, packed: &Packed) -> Result<Vec<Value>> {
    let (conn, opened) = connector.multiplexed().await?;
    match aexchange(connector, conn, packed).await {
        Err(err) if !opened && err.kind == ErrorKind::Connection && repeatable(packed) => {
            let (conn, _) = connector.multiplexed().await?;
            aexchange(connector, conn, packed).await
        }
        result => result,
    }
}

async fn aexchange(
    connector: &RedisConnector,
    mut conn: MultiplexedConnection,
    packed: &Packed,
) -> Result<Vec<Value>> {
    let pipeline = packed.to_pipeline();
    let replies = if packed.commands() == 1 {
        let cmd = pipeline.cmd_iter().next().expect("one command");
        conn.send_packed_command(cmd).await.map(|v| vec![v])
    } else {
        conn.send_packed_commands(&pipeline, 0, packed.commands())
            .await
    };
    replies.map_err(|e| {
        let err = Error::from_redis(&e, &connector.describe());
        if err.breaks_connection() {
            connector.forget_multiplexed();
        }
        err
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;

    /// A server before Redis 6: `AUTH user password` is refused for its number of arguments,
    /// `AUTH password` accepted when the password is right. Answers `conns` connections and
    /// returns the first request line of each command (`*N`, then `$len`/value lines).
    fn old_server(conns: usize) -> (u16, std::thread::JoinHandle<Vec<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let serve = std::thread::spawn(move || {
            (0..conns)
                .map(|_| {
                    let (stream, _) = listener.accept().unwrap();
                    let mut out = stream.try_clone().unwrap();
                    let mut lines = BufReader::new(stream).lines();
                    let mut commands = Vec::new();
                    while let Some(Ok(header)) = lines.next() {
                        let n: usize = header[1..].parse().unwrap();
                        let args: Vec<String> = (0..n)
                            .map(|_| {
                                lines.next();
                                lines.next().unwrap().unwrap()
                            })
                            .collect();
                        let reply: &[u8] = match args.as_slice() {
                            [auth, _, _] if auth == "AUTH" => {
                                b"-ERR wrong number of arguments for 'auth' command\r\n"
                            }
                            [auth, pw] if auth == "AUTH" && pw == "pw" => b"+OK\r\n",
                            [auth, _] if auth == "AUTH" => b"-ERR invalid password\r\n",
                            [select, _] if select == "SELECT" => b"+OK\r\n",
                            [hello] if hello == "HELLO" => b"-ERR unknown command 'HELLO'\r\n",
                            [client, ..] if client == "CLIENT" => {
                                b"-ERR unknown command 'CLIENT', with args beginning with: \r\n"
                            }
                            _ => b"+PONG\r\n",
                        };
                        commands.push(args.join(" "));
                        out.write_all(reply).unwrap();
                        if commands.last().is_some_and(|c| c == "PING") {
                            break;
                        }
                    }
                    commands
                })
                .map(|c| vec![c.join(" | ")])
                .collect()
        });
        (port, serve)
    }

    fn connector(port: u16, password: &str) -> RedisConnector {
        let server = ServerConfig {
            address: Address::Tcp {
                host: "127.0.0.1".into(),
                port,
            },
            db: 2,
            username: None,
            password: Some(password.into()),
        };
        RedisConnector::new(server, ConnectionOptions::default()).unwrap()
    }

    #[test]
    fn the_handshake_falls_back_to_one_argument_auth_for_servers_before_redis_6() {
        let (port, serve) = old_server(3);
        let mut conn = connector(port, "pw").connect().unwrap();
        assert_eq!(conn.exchange(PING, 1).unwrap().len(), 1);
        // The async path's handshake judges the same replies the same way.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let async_connector = connector(port, "pw");
        runtime.block_on(async {
            let (mut conn, opened) = async_connector.multiplexed().await.unwrap();
            assert!(opened);
            let ping = redis::cmd("PING");
            let pong: redis::Value = conn.send_packed_command(&ping).await.unwrap();
            assert_eq!(pong, redis::Value::SimpleString("PONG".into()));
        });
        // A wrong password is refused after the fallback: an authentication failure, which
        // names the server and not the password.
        let refused = connector(port, "wrong-pw").connect().err().unwrap();
        assert_eq!(refused.kind, ErrorKind::Connection);
        assert_eq!(refused.python_class(), "AuthenticationError");
        assert!(!refused.message.contains("wrong-pw"), "{}", refused.message);
        drop(runtime);
        let seen = serve.join().unwrap();
        let identify = format!(
            "CLIENT SETINFO LIB-NAME django-redis-rs | CLIENT SETINFO LIB-VER {} | HELLO",
            env!("CARGO_PKG_VERSION")
        );
        let expected = format!(
            "AUTH default pw | SELECT 2 | {identify} | AUTH pw | SELECT 2 | {identify} | PING"
        );
        assert_eq!(seen[0], std::slice::from_ref(&expected));
        assert_eq!(seen[1], [expected]);
        let refused_first =
            format!("AUTH default wrong-pw | SELECT 2 | {identify} | AUTH wrong-pw");
        assert!(seen[2][0].starts_with(&refused_first), "{}", seen[2][0]);
    }
}
