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

/// A child process killed when dropped. Its log file is removed with it, unless the test is
/// panicking, so that a failed test keeps the log that explains it.
#[derive(Debug)]
pub struct ChildGuard {
    child: Child,
    name: String,
    log: Option<PathBuf>,
}

/// Numbers the log files of one test process, so each child has its own.
static NEXT_LOG: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

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
        let number = NEXT_LOG.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log_path = std::env::temp_dir().join(format!(
            "spamflow-test-{name}-{}-{number}.log",
            std::process::id()
        ));
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
            log: Some(log_path),
        })
    }

    /// Takes ownership of a process spawned elsewhere, for example with piped output.
    pub fn adopt(name: &str, child: Child) -> Self {
        Self {
            child,
            name: name.to_owned(),
            log: None,
        }
    }

    /// Returns the path of the process's log, for a process started by [`ChildGuard::spawn`].
    pub fn log_path(&self) -> Option<&Path> {
        self.log.as_deref()
    }

    /// Returns what the process has logged so far; empty for an adopted process.
    pub fn log(&self) -> String {
        self.log
            .as_ref()
            .and_then(|path| std::fs::read_to_string(path).ok())
            .unwrap_or_default()
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
        if let Some(log) = &self.log
            && !std::thread::panicking()
        {
            let _ = std::fs::remove_file(log);
        }
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
    let response = http_send(port, "GET", path, &[], &[])?;
    Ok((response.status, response.body))
}

/// Sends one HTTP/1.1 request with `method`, `path` and `body` (with `Content-Type` when
/// `content_type` is given) to a loopback port, and returns the status code (0 when the
/// response has none) and the body.
///
/// # Errors
///
/// Fails when the connection or the read fails, or takes longer than 10 seconds.
pub fn http_request(
    port: u16,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> anyhow::Result<(u16, String)> {
    let headers: Vec<(&str, &str)> = content_type
        .map(|value| ("Content-Type", value))
        .into_iter()
        .collect();
    let response = http_send(port, method, path, &headers, body)?;
    Ok((response.status, response.body))
}

/// A response read by [`http_send`].
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// The status code, 0 when the response has no status line.
    pub status: u16,
    /// Header names in lowercase, with their values.
    pub headers: Vec<(String, String)>,
    /// The body, decoded from chunked transfer encoding, as lossy UTF-8.
    pub body: String,
}

impl HttpResponse {
    /// Returns the first value of the header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Sends one HTTP/1.1 request with extra `headers` and `Connection: close` to a loopback port,
/// and reads the whole response, decoding a chunked body.
///
/// # Errors
///
/// Fails when the connection or the read fails, or takes longer than 10 seconds.
pub fn http_send(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> anyhow::Result<HttpResponse> {
    use std::io::{Read, Write};

    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .with_context(|| format!("failed to connect to 127.0.0.1:{port}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || method != "GET" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .with_context(|| format!("failed to read the response to {method} {path}"))?;
    let split = raw
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .unwrap_or(raw.len());
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let body = raw.get(split + 4..).unwrap_or_default();

    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(name, value)| name == "transfer-encoding" && value.contains("chunked"));
    let body = if chunked {
        decode_chunked(body)
    } else {
        body.to_vec()
    };
    Ok(HttpResponse {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// Decodes a chunked transfer-encoded body, stopping at the last chunk or at malformed input.
fn decode_chunked(mut rest: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    while let Some(line_end) = rest.windows(2).position(|window| window == b"\r\n") {
        let size_line = String::from_utf8_lossy(&rest[..line_end]);
        let size_hex = size_line.split(';').next().unwrap_or("").trim();
        let Ok(size) = usize::from_str_radix(size_hex, 16) else {
            break;
        };
        let after = &rest[line_end + 2..];
        if size == 0 || after.len() < size {
            break;
        }
        body.extend_from_slice(&after[..size]);
        rest = after[size..]
            .strip_prefix(b"\r\n")
            .unwrap_or(&after[size..]);
    }
    body
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

/// Options of a [`GmailApi`] server beyond its mailbox folder.
#[derive(Debug, Clone, Default)]
pub struct GmailApiOptions {
    /// Address of the default mailbox (`--email`); the server defaults to `me@example.com`.
    pub email: Option<String>,
    /// `http://` URL that receives push notifications while a watch is active.
    pub push_endpoint: Option<String>,
    /// Token added to every push as `?token=`.
    pub push_token: Option<String>,
    /// History records kept per mailbox (`--history-retention`); the server defaults to
    /// 10000.
    pub history_retention: Option<u64>,
}

/// A `gmail-api-local` process serving a mailbox folder on a free loopback port, killed when
/// dropped.
#[derive(Debug)]
pub struct GmailApi {
    /// The HTTP port on 127.0.0.1.
    pub port: u16,
    _process: ChildGuard,
}

impl GmailApi {
    /// Starts `gmail-api-local` over `mailbox_dir` with default options.
    ///
    /// # Errors
    ///
    /// As [`GmailApi::start_with`].
    pub fn start(mailbox_dir: &Path) -> anyhow::Result<Self> {
        Self::start_with(mailbox_dir, &GmailApiOptions::default())
    }

    /// Starts `gmail-api-local` over `mailbox_dir` and waits until `/healthz` returns 200.
    ///
    /// # Errors
    ///
    /// Fails when the binary is not built, exits early or never becomes healthy.
    pub fn start_with(mailbox_dir: &Path, options: &GmailApiOptions) -> anyhow::Result<Self> {
        let binary = workspace_binary("gmail-api-local")?;
        let port = free_port()?;
        let mut command = Command::new(binary);
        command
            .arg("--listen-addr")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--mailbox-dir")
            .arg(mailbox_dir);
        // Options come only from `options`, never from the test process's environment.
        for variable in [
            "SPAMFLOW_MAILBOX_EMAIL",
            "SPAMFLOW_PUSH_ENDPOINT",
            "SPAMFLOW_PUSH_TOKEN",
            "SPAMFLOW_HISTORY_RETENTION",
        ] {
            command.env_remove(variable);
        }
        if let Some(email) = &options.email {
            command.arg("--email").arg(email);
        }
        if let Some(endpoint) = &options.push_endpoint {
            command.arg("--push-endpoint").arg(endpoint);
        }
        if let Some(token) = &options.push_token {
            command.arg("--push-token").arg(token);
        }
        if let Some(retention) = options.history_retention {
            command
                .arg("--history-retention")
                .arg(retention.to_string());
        }

        let mut process = ChildGuard::spawn("gmail-api-local", command)?;
        wait_for_port(
            SocketAddr::from(([127, 0, 0, 1], port)),
            process.child_mut(),
            "gmail-api-local",
        )?;
        eventually(
            START_TIMEOUT,
            "gmail-api-local /healthz to return 200",
            || {
                let (status, _) = http_get(port, "/healthz")?;
                Ok((status == 200).then_some(()))
            },
        )?;
        Ok(Self {
            port,
            _process: process,
        })
    }

    /// Returns the base URL to give a google-gmail1 hub (`base_url` and `root_url`) or
    /// `--gmail-api-url`: `http://127.0.0.1:PORT/`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// Calls the control API and parses its JSON response, failing on a non-2xx status.
    fn control(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> anyhow::Result<serde_json::Value> {
        let body = body.map(serde_json::Value::to_string).unwrap_or_default();
        let content_type = (!body.is_empty()).then_some("application/json");
        let (status, text) = http_request(self.port, method, path, content_type, body.as_bytes())?;
        if !(200..300).contains(&status) {
            bail!("{method} {path} returned {status}: {text}");
        }
        serde_json::from_str(&text)
            .with_context(|| format!("{method} {path} returned invalid JSON: {text}"))
    }

    /// Delivers `raw` to `mailbox` (the default mailbox when `None`) with `label_ids`
    /// (INBOX and UNREAD when empty), and returns the new message id.
    ///
    /// # Errors
    ///
    /// Fails when the server rejects the delivery.
    pub fn deliver(
        &self,
        raw: &[u8],
        mailbox: Option<&str>,
        label_ids: &[&str],
    ) -> anyhow::Result<String> {
        use base64::Engine as _;

        let mut body = serde_json::json!({
            "raw_base64": base64::engine::general_purpose::STANDARD.encode(raw),
        });
        if let Some(mailbox) = mailbox {
            body["mailbox"] = serde_json::json!(mailbox);
        }
        if !label_ids.is_empty() {
            body["label_ids"] = serde_json::json!(label_ids);
        }
        let answer = self.control("POST", "/control/deliver", Some(&body))?;
        answer["id"]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("/control/deliver returned no id: {answer}"))
    }

    /// Replaces the fault switches, for example
    /// `json!({"status_429": 2, "history_404": true})`; `json!({})` clears them.
    ///
    /// # Errors
    ///
    /// Fails when the server rejects the switches (an unknown name, a wrong type).
    pub fn set_faults(&self, faults: serde_json::Value) -> anyhow::Result<()> {
        self.control("POST", "/control/faults", Some(&faults))?;
        Ok(())
    }

    /// Returns every messages.modify and batchModify effect so far, in order.
    ///
    /// # Errors
    ///
    /// Fails when the request fails.
    pub fn modifications(&self) -> anyhow::Result<serde_json::Value> {
        self.control("GET", "/control/modifications", None)
    }

    /// Returns `{"mailbox", "history_id", "messages": [{"id", "label_ids", ...}]}` for
    /// `mailbox` (an address).
    ///
    /// # Errors
    ///
    /// Fails when the mailbox is not served.
    pub fn messages(&self, mailbox: &str) -> anyhow::Result<serde_json::Value> {
        let query: String = percent_encode(mailbox);
        self.control("GET", &format!("/control/messages?mailbox={query}"), None)
    }

    /// Returns the counts of Gmail API calls by method, such as `{"messages.list": 3}`.
    ///
    /// # Errors
    ///
    /// Fails when the request fails.
    pub fn requests(&self) -> anyhow::Result<serde_json::Value> {
        self.control("GET", "/control/requests", None)
    }

    /// Signs in as `mailbox` through the authorization-code flow (`/o/oauth2/auth`, then
    /// `/token`) and returns the access token.
    ///
    /// # Errors
    ///
    /// Fails when a step of the flow fails.
    pub fn user_token(&self, mailbox: &str) -> anyhow::Result<String> {
        let path = format!(
            "/o/oauth2/auth?response_type=code&client_id=testkit&redirect_uri={}&state=testkit&login_hint={}",
            percent_encode("http://127.0.0.1/callback"),
            percent_encode(mailbox)
        );
        let redirect = http_send(self.port, "GET", &path, &[], &[])?;
        let location = redirect.header("location").with_context(|| {
            format!(
                "/o/oauth2/auth returned {} without a redirect: {}",
                redirect.status, redirect.body
            )
        })?;
        let code = location
            .split_once('?')
            .map(|(_, query)| query)
            .unwrap_or_default()
            .split('&')
            .find_map(|pair| pair.strip_prefix("code="))
            .with_context(|| format!("the redirect {location} has no code"))?;
        let form = format!(
            "grant_type=authorization_code&code={code}&redirect_uri={}",
            percent_encode("http://127.0.0.1/callback")
        );
        let (status, text) = http_request(
            self.port,
            "POST",
            "/token",
            Some("application/x-www-form-urlencoded"),
            form.as_bytes(),
        )?;
        if status != 200 {
            bail!("/token returned {status}: {text}");
        }
        let answer: serde_json::Value = serde_json::from_str(&text)?;
        answer["access_token"]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("/token returned no access_token: {text}"))
    }

    /// Performs messages.modify on message `id` of `mailbox` as its user would (with a token
    /// from [`GmailApi::user_token`]), and returns the message JSON that Gmail returns.
    ///
    /// # Errors
    ///
    /// Fails when signing in or the modify fails.
    pub fn user_modify(
        &self,
        mailbox: &str,
        id: &str,
        add: &[&str],
        remove: &[&str],
    ) -> anyhow::Result<serde_json::Value> {
        let token = self.user_token(mailbox)?;
        let body = serde_json::json!({ "addLabelIds": add, "removeLabelIds": remove }).to_string();
        let authorization = format!("Bearer {token}");
        let path = format!(
            "/gmail/v1/users/{}/messages/{id}/modify",
            percent_encode(mailbox)
        );
        let response = http_send(
            self.port,
            "POST",
            &path,
            &[
                ("Authorization", &authorization),
                ("Content-Type", "application/json"),
            ],
            body.as_bytes(),
        )?;
        if response.status != 200 {
            bail!(
                "messages.modify returned {}: {}",
                response.status,
                response.body
            );
        }
        serde_json::from_str(&response.body).context("messages.modify returned invalid JSON")
    }
}

impl GmailApi {
    /// Writes a service account key whose token endpoint is this server's `/token`, and
    /// returns its path.
    ///
    /// The key is a committed throwaway RSA key. The client signs its token requests with it,
    /// and the local server does not check the signature, so the key grants nothing anywhere
    /// else.
    ///
    /// # Errors
    ///
    /// Fails when the file cannot be written.
    pub fn write_service_account_key(&self, path: &Path) -> anyhow::Result<PathBuf> {
        let mut key: serde_json::Value = serde_json::from_str(SERVICE_ACCOUNT_TEMPLATE)
            .context("the committed service account template is not JSON")?;
        key["auth_uri"] = serde_json::json!(format!("{}o/oauth2/auth", self.base_url()));
        key["token_uri"] = serde_json::json!(format!("{}token", self.base_url()));
        std::fs::write(path, key.to_string())
            .with_context(|| format!("failed to write {}", path.display()))?;
        Ok(path.to_owned())
    }
}

/// A folder of its own for one test in the system temp folder. It is removed when dropped,
/// unless the test is panicking, so that a failed test keeps its files for a look.
#[derive(Debug)]
pub struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    /// Creates `spamflow-<name>-<pid>-<n>` in the system temp folder.
    ///
    /// # Panics
    ///
    /// Panics when the folder cannot be created: the test cannot run without it.
    pub fn new(name: &str) -> Self {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let number = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("spamflow-{name}-{}-{number}", std::process::id()));
        // A folder left by an earlier process with the same id belongs to no running test.
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|error| panic!("failed to create {}: {error}", path.display()));
        Self { path }
    }

    /// Returns the folder's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl std::ops::Deref for ScratchDir {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<Path> for ScratchDir {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<std::ffi::OsStr> for ScratchDir {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.path.as_os_str()
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// A service account key for the local Gmail API only, with a throwaway RSA key.
pub const SERVICE_ACCOUNT_TEMPLATE: &str = include_str!("../data/service-account-template.json");

/// Returns the repository's `data/corpus`, which `scripts/fetch-corpus` fills.
///
/// # Panics
///
/// Panics with the command to run when the corpus is missing, so a test never passes without it.
pub fn corpus_dir() -> PathBuf {
    // Cargo and nextest set CARGO_MANIFEST_DIR for the running test to its own crate, also
    // under crates/. That is the checkout being tested, even when this crate's build was
    // reused from a checkout in another folder.
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    let corpus = manifest_dir.join("../../data/corpus");
    assert!(
        corpus.join(".complete").is_file(),
        "the SpamAssassin corpus is missing from {}; run scripts/fetch-corpus",
        corpus.display()
    );
    corpus
}

/// Returns the paths of the first `count` files of a corpus folder such as `spam/spam-1`,
/// sorted by name.
///
/// # Panics
///
/// Panics when the corpus is missing or the folder cannot be read.
pub fn corpus_files(group: &str, count: usize) -> Vec<PathBuf> {
    let folder = corpus_dir().join(group);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)
        .unwrap_or_else(|error| panic!("failed to read {}: {error}", folder.display()))
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files.truncate(count);
    files
}

/// Percent-encodes everything but unreserved characters (RFC 3986), for query values and
/// path segments.
fn percent_encode(value: &str) -> String {
    value
        .bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(byte).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}
