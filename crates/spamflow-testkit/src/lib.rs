//! Test harness for spamflow's integration tests.
//!
//! It starts real servers on free loopback ports: a `redis-server` process unless
//! `SPAMFLOW_TEST_REDIS_URL` names one, and the standalone Kafka-compatible broker tansu unless
//! `SPAMFLOW_TEST_KAFKA_BROKERS` names one. It also starts the service binaries built from
//! this workspace. A missing server or binary is an error with the command that installs it,
//! never a skipped test. Every process it starts is killed when its guard drops.

#![forbid(unsafe_code)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// How long a started server may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Returns a loopback port that was free a moment ago.
///
/// # Errors
///
/// Fails when no port can be bound.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("failed to bind a loopback port")?;
    Ok(listener.local_addr()?.port())
}

/// Waits until `address` accepts TCP connections, or fails after the start timeout. If
/// `child` exits first, fails with its exit status.
///
/// # Errors
///
/// Fails on timeout or when the process exits.
pub fn wait_for_port(address: SocketAddr, child: &mut Child, what: &str) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            bail!("{what} exited with {status} before listening on {address}");
        }
        if started.elapsed() > START_TIMEOUT {
            bail!("{what} did not listen on {address} within {START_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A child process killed when dropped.
#[derive(Debug)]
pub struct ChildGuard {
    child: Child,
    name: String,
}

impl ChildGuard {
    /// Spawns `command` with stdout discarded and stderr appended to a log file in the
    /// system temp folder, whose path is printed for debugging failed tests.
    ///
    /// The child inherits no `OTEL_*` variable from the test process, so its exporter reaches
    /// nothing outside the test, but keeps those the caller set on `command` (a test that
    /// runs its own trace receiver sets `OTEL_EXPORTER_OTLP_ENDPOINT`). Unless the caller sets
    /// `SPAMFLOW_HTTP_ADDR`, the child serves its HTTP port on a free loopback port, so tests
    /// running side by side never fight over the fixed default ports.
    ///
    /// # Errors
    ///
    /// Fails when the process cannot be spawned.
    pub fn spawn(name: &str, mut command: Command) -> anyhow::Result<Self> {
        let set_by_caller: Vec<String> = command
            .get_envs()
            .filter(|(_, value)| value.is_some())
            .map(|(key, _)| key.to_string_lossy().into_owned())
            .collect();
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy().into_owned();
            if key.starts_with("OTEL_") && !set_by_caller.contains(&key) {
                command.env_remove(&key);
            }
        }
        if !set_by_caller.iter().any(|key| key == "SPAMFLOW_HTTP_ADDR") {
            command.env("SPAMFLOW_HTTP_ADDR", "127.0.0.1:0");
        }
        let log_path =
            std::env::temp_dir().join(format!("spamflow-test-{name}-{}.log", std::process::id()));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("failed to open {}", log_path.display()))?;
        eprintln!("starting {name}; its log is {}", log_path.display());
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("failed to start {name}"))?;
        Ok(Self {
            child,
            name: name.to_owned(),
        })
    }

    /// Takes ownership of a process spawned elsewhere, for example with piped output.
    pub fn adopt(name: &str, child: Child) -> Self {
        Self {
            child,
            name: name.to_owned(),
        }
    }

    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Kills the process with SIGKILL, as a crash would, and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Asks the process to stop with SIGTERM and waits up to `timeout` for it to exit.
    ///
    /// # Errors
    ///
    /// Fails when the signal cannot be sent or the process outlives the timeout.
    pub fn terminate(&mut self, timeout: Duration) -> anyhow::Result<std::process::ExitStatus> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .context("failed to run kill")?;
        if !status.success() {
            bail!("kill -TERM {} failed for {}", self.child.id(), self.name);
        }
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if started.elapsed() > timeout {
                bail!("{} did not exit within {timeout:?} of SIGTERM", self.name);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A Redis server for one test: started here, or named by `SPAMFLOW_TEST_REDIS_URL`.
#[derive(Debug)]
pub struct Redis {
    pub url: String,
    _process: Option<ChildGuard>,
}

impl Redis {
    /// Starts `redis-server` on a free loopback port without persistence, unless
    /// `SPAMFLOW_TEST_REDIS_URL` names a server to use.
    ///
    /// # Errors
    ///
    /// Fails when redis-server is missing or does not start.
    pub fn start() -> anyhow::Result<Self> {
        if let Ok(url) = std::env::var("SPAMFLOW_TEST_REDIS_URL") {
            return Ok(Self {
                url,
                _process: None,
            });
        }
        let port = free_port()?;
        let mut command = Command::new("redis-server");
        command.args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]);
        let mut process = ChildGuard::spawn("redis-server", command).context(
            "redis-server is not installed; run scripts/install-test-deps or set SPAMFLOW_TEST_REDIS_URL",
        )?;
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        wait_for_port(address, process.child_mut(), "redis-server")?;
        Ok(Self {
            url: format!("redis://127.0.0.1:{port}"),
            _process: Some(process),
        })
    }
}

/// A Kafka-protocol broker for one test: tansu started here with in-memory storage, or
/// brokers named by `SPAMFLOW_TEST_KAFKA_BROKERS`.
#[derive(Debug)]
pub struct Kafka {
    pub brokers: String,
    _process: Option<ChildGuard>,
}

impl Kafka {
    /// Starts tansu on a free loopback port, unless `SPAMFLOW_TEST_KAFKA_BROKERS` names
    /// brokers to use.
    ///
    /// # Errors
    ///
    /// Fails when tansu is not installed or does not start.
    pub fn start() -> anyhow::Result<Self> {
        if let Ok(brokers) = std::env::var("SPAMFLOW_TEST_KAFKA_BROKERS") {
            return Ok(Self {
                brokers,
                _process: None,
            });
        }
        let binary = tansu_binary()?;
        let port = free_port()?;
        let url = format!("tcp://127.0.0.1:{port}");
        let mut command = Command::new(&binary);
        command
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "memory://tansu/"]);
        let mut process = ChildGuard::spawn("tansu", command)?;
        wait_for_port(
            SocketAddr::from(([127, 0, 0, 1], port)),
            process.child_mut(),
            "tansu",
        )?;
        Ok(Self {
            brokers: format!("127.0.0.1:{port}"),
            _process: Some(process),
        })
    }
}

/// Finds the tansu binary: `SPAMFLOW_TANSU_BIN`, or where scripts/install-tansu puts it.
fn tansu_binary() -> anyhow::Result<PathBuf> {
    if let Ok(path) = std::env::var("SPAMFLOW_TANSU_BIN") {
        return Ok(PathBuf::from(path));
    }
    let path = cache_dir().join("tansu-0.6.0/bin/tansu");
    if path.is_file() {
        Ok(path)
    } else {
        bail!(
            "tansu is not installed at {}; run scripts/install-tansu (about 11 minutes once) or set \
             SPAMFLOW_TEST_KAFKA_BROKERS to an existing broker",
            path.display()
        )
    }
}

/// Returns the cache folder the install scripts use.
pub fn cache_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("SPAMFLOW_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    let base = std::env::var("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/tmp".into())).join(".cache")
        });
    base.join("spamflow")
}

/// Finds the grpcurl binary: `SPAMFLOW_GRPCURL_BIN`, the test-tools virtualenv, or PATH.
///
/// # Errors
///
/// Fails with the install command when grpcurl is nowhere.
pub fn grpcurl_binary() -> anyhow::Result<PathBuf> {
    if let Ok(path) = std::env::var("SPAMFLOW_GRPCURL_BIN") {
        return Ok(PathBuf::from(path));
    }
    let venv = cache_dir().join("test-tools-venv/bin/grpcurl");
    if venv.is_file() {
        return Ok(venv);
    }
    if Command::new("grpcurl").arg("-version").output().is_ok() {
        return Ok(PathBuf::from("grpcurl"));
    }
    bail!("grpcurl is not installed; run scripts/install-test-deps or set SPAMFLOW_GRPCURL_BIN")
}

/// Returns the path of a binary of this workspace, next to the running test's target folder.
///
/// # Errors
///
/// Fails with the build command when the binary has not been built.
pub fn workspace_binary(name: &str) -> anyhow::Result<PathBuf> {
    let test_binary = std::env::current_exe().context("failed to locate the test binary")?;
    // Test binaries live in target/<profile>/deps; service binaries in target/<profile>.
    let profile_dir = test_binary
        .parent()
        .and_then(Path::parent)
        .context("test binary is not inside a cargo target folder")?;
    let path = profile_dir.join(name);
    if path.is_file() {
        Ok(path)
    } else {
        bail!(
            "{} is missing; build the service binaries first with `cargo build --workspace --bins` \
             (scripts/test does this)",
            path.display()
        )
    }
}

/// Sends a minimal HTTP/1.1 `GET path` to a loopback port and returns the status code (0 when
/// the response has none) and the body.
///
/// # Errors
///
/// Fails when the connection or the read fails, or takes longer than 10 seconds.
pub fn http_get(port: u16, path: &str) -> anyhow::Result<(u16, String)> {
    use std::io::{Read, Write};

    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;

    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// Runs `check` every 50 ms until it returns `Some` or `timeout` passes.
///
/// # Errors
///
/// Fails with `what` on timeout, or with the first error `check` returns.
pub fn eventually<T>(
    timeout: Duration,
    what: &str,
    mut check: impl FnMut() -> anyhow::Result<Option<T>>,
) -> anyhow::Result<T> {
    let started = Instant::now();
    loop {
        if let Some(value) = check()? {
            return Ok(value);
        }
        if started.elapsed() > timeout {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
