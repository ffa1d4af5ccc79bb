//! The shared state store: Redis in production and tests, or an in-process map for
//! `spamctl dev` when no Redis URL is given.
//!
//! It contains the Bloom filter's insert log (so every replica, and a restarted one, rebuilds the
//! same filter), the filter's ham overrides, and the action handler's per-message verdict records, which double as
//! idempotency keys. Every key starts with a configurable prefix so deployments and tests can
//! share one Redis.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use deadpool_redis::redis::{self, AsyncCommands};
use deadpool_redis::{Config, Pool, Runtime};

/// Largest batch read from the Bloom insert log at once.
const LOG_READ_BATCH: u64 = 10_000;

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "invalid Redis URL: {0}; expected redis://[:password@]host:port[/db], rediss:// for TLS, \
         or unix:///path"
    )]
    InvalidUrl(String),
    #[error("failed to get a Redis connection: {0}")]
    Pool(#[from] deadpool_redis::PoolError),
    #[error("Redis command failed: {0}")]
    Redis(#[from] redis::RedisError),
}

/// Redis connection settings.
#[derive(Debug, Clone, clap::Args)]
pub struct RedisArgs {
    /// Redis URL, for example redis://127.0.0.1:6379, redis://:password@host:6379/0,
    /// rediss://:password@host:6380/0 for TLS, or unix:///run/redis.sock. Unset: state lives
    /// only in this process.
    #[arg(
        long,
        env = "SPAMFLOW_REDIS_URL",
        hide_env_values = true,
        value_parser = RedisUrlParser
    )]
    pub redis_url: Option<String>,
    /// Prefix of every Redis key this deployment writes.
    #[arg(long, env = "SPAMFLOW_REDIS_KEY_PREFIX", default_value = "spamflow")]
    pub redis_key_prefix: String,
}

/// Checks the form of a Redis URL as deadpool-redis reads it, without connecting.
///
/// # Errors
///
/// Returns why the URL cannot work: a scheme other than redis, rediss or unix (also
/// redis+unix, and valkey, valkeys and valkey+unix, which the redis crate accepts), a missing
/// host or socket path, or a setting the redis crate rejects.
pub fn check_redis_url(text: &str) -> Result<(), String> {
    let Some(url) = redis::parse_redis_url(text) else {
        return Err(
            "it is not a valid URL with the scheme redis, rediss, redis+unix or unix".to_owned(),
        );
    };
    let is_socket = matches!(url.scheme(), "unix" | "redis+unix" | "valkey+unix");
    if !is_socket && url.host_str().is_none_or(str::is_empty) {
        return Err("it has no host".to_owned());
    }
    redis::IntoConnectionInfo::into_connection_info(url)
        .map(drop)
        .map_err(|error| error.to_string())
}

/// A clap value parser for `--redis-url` that exits 64 with a message naming the flag and
/// its environment variable. The message leaves out the value, which may carry a password.
#[derive(Debug, Clone, Copy)]
pub struct RedisUrlParser;

impl clap::builder::TypedValueParser for RedisUrlParser {
    type Value = String;

    fn parse_ref(
        &self,
        command: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<String, clap::Error> {
        let checked = match value.to_str() {
            Some(text) => check_redis_url(text).map(|()| text.to_owned()),
            None => Err("it is not valid UTF-8".to_owned()),
        };
        checked.map_err(|reason| {
            let message = format!(
                "invalid value for --redis-url (SPAMFLOW_REDIS_URL): {reason}; pass a URL such \
                 as redis://127.0.0.1:6379, redis://:PASSWORD@HOST:6379/0 or \
                 unix:///run/redis.sock\n"
            );
            clap::Error::raw(clap::error::ErrorKind::ValueValidation, message).with_cmd(command)
        })
    }
}

/// The store, shared by cloning.
#[derive(Clone)]
pub enum Store {
    /// In-process state, lost at exit; for `spamctl dev` without Redis.
    Memory(Arc<MemoryStore>),
    Redis {
        pool: Pool,
        prefix: String,
    },
}

/// In-process state behind [`Store::Memory`].
#[derive(Debug, Default)]
pub struct MemoryStore {
    bloom_log: Mutex<Vec<String>>,
    ham_overrides: Mutex<std::collections::HashSet<String>>,
    verdicts: Mutex<HashMap<String, String>>,
    /// Plain values and markers by key, with an optional expiry.
    values: Mutex<HashMap<String, (String, Option<Instant>)>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Memory(_) => f.write_str("Store::Memory"),
            // The URL may carry a password, so only the key prefix is shown.
            Self::Redis { prefix, .. } => write!(f, "Store::Redis {{ prefix: {prefix:?} }}"),
        }
    }
}

impl Store {
    /// Creates a fresh in-process store.
    pub fn memory() -> Self {
        Self::Memory(Arc::default())
    }

    /// Connects to Redis when a URL is given, checking it with PING, or returns an in-process
    /// store when it is not.
    ///
    /// # Errors
    ///
    /// Returns [`StoreError`] when the URL is invalid or Redis does not respond.
    pub async fn connect(args: &RedisArgs) -> Result<Self, StoreError> {
        match &args.redis_url {
            None => Ok(Self::memory()),
            Some(url) => Self::redis(url, &args.redis_key_prefix).await,
        }
    }

    /// Connects like [`Store::connect`], with an error that names the flag and its variable,
    /// for a binary's start.
    ///
    /// # Errors
    ///
    /// Returns the [`StoreError`] with `--redis-url (SPAMFLOW_REDIS_URL)` named.
    pub async fn connect_at_start(args: &RedisArgs) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        Self::connect(args)
            .await
            .context("failed to connect to Redis at --redis-url (SPAMFLOW_REDIS_URL)")
    }

    /// Connects to Redis at `url` and checks it with PING.
    ///
    /// # Errors
    ///
    /// Returns [`StoreError`] when the URL is invalid or Redis does not respond.
    pub async fn redis(url: &str, prefix: &str) -> Result<Self, StoreError> {
        let pool = Config::from_url(url)
            .create_pool(Some(Runtime::Tokio1))
            .map_err(|error| StoreError::InvalidUrl(error.to_string()))?;
        let mut connection = pool.get().await?;
        let _: String = redis::cmd("PING").query_async(&mut connection).await?;
        Ok(Self::Redis {
            pool,
            prefix: prefix.to_owned(),
        })
    }

    /// Returns whether state survives this process.
    pub fn is_durable(&self) -> bool {
        matches!(self, Self::Redis { .. })
    }

    /// Checks that the store responds.
    ///
    /// # Errors
    ///
    /// Returns [`StoreError`] when Redis does not respond.
    pub async fn ping(&self) -> Result<(), StoreError> {
        count_redis_errors(
            "ping",
            async {
                if let Self::Redis { pool, .. } = self {
                    let mut connection = pool.get().await?;
                    let _: String = redis::cmd("PING").query_async(&mut connection).await?;
                }
                Ok(())
            }
            .await,
        )
    }

    /// Appends keys to the Bloom filter's insert log and returns the log's new length.
    ///
    /// # Errors
    ///
    /// Returns [`StoreError`] when Redis fails.
    pub async fn bloom_append(&self, keys: &[String]) -> Result<u64, StoreError> {
        count_redis_errors(
            "bloom_append",
            async {
                match self {
                    Self::Memory(memory) => {
                        let mut log = lock(&memory.bloom_log);
                        log.extend(keys.iter().cloned());
                        Ok(log.len() as u64)
                    }
                    Self::Redis { pool, prefix } => {
                        if keys.is_empty() {
                            let mut connection = pool.get().await?;
                            return Ok(connection.llen(bloom_log_key(prefix)).await?);
                        }
                        let mut connection = pool.get().await?;
                        Ok(connection.rpush(bloom_log_key(prefix), keys).await?)
                    }
                }
            }
            .await,
        )
    }

    /// Reads up to a batch of insert-log entries starting at position `from`.
    ///
    /// # Errors
    ///
    /// Returns [`StoreError`] when Redis fails.
    pub async fn bloom_read(&self, from: u64) -> Result<Vec<String>, StoreError> {
        count_redis_errors(
            "bloom_read",
            async {
                match self {
                    Self::Memory(memory) => {
                        let log = lock(&memory.bloom_log);
                        let start = (from as usize).min(log.len());
                        let end = (start + LOG_READ_BATCH as usize).min(log.len());
                        Ok(log[start..end].to_vec())
                    }
                    Self::Redis { pool, prefix } => {
                        let mut connection = pool.get().await?;
                        let end = from + LOG_READ_BATCH - 1;
                        let key = bloom_log_key(prefix);
                        let entries: Vec<Vec<u8>> =
                            connection.lrange(&key, from as isize, end as isize).await?;
                        Ok(log_entries(&key, from, entries))
                    }
                }
            }
            .await,
        )
    }

    /// Records the verdict for a message unless one is already recorded. Returns true when
    /// this call recorded it, false when an earlier delivery already had.
    ///
    /// # Errors
    ///
    /// Returns [`StoreError`] when Redis fails.
    pub async fn record_verdict(&self, message_key: &str, label: &str) -> Result<bool, StoreError> {
        count_redis_errors(
            "record_verdict",
            async {
                match self {
                    Self::Memory(memory) => {
                        let mut verdicts = lock(&memory.verdicts);
                        if verdicts.contains_key(message_key) {
                            return Ok(false);
                        }
                        verdicts.insert(message_key.to_owned(), label.to_owned());
                        Ok(true)
                    }
                    Self::Redis { pool, prefix } => {
                        let mut connection = pool.get().await?;
                        Ok(connection
                            .hset_nx(verdicts_key(prefix), message_key, label)
                            .await?)
                    }
                }
            }
            .await,
        )
    }

    /// Returns the recorded verdict of a message.
    ///
    /// # Errors
    ///
    /// Returns [`StoreError`] when Redis fails.
    pub async fn verdict(&self, message_key: &str) -> Result<Option<String>, StoreError> {
        match self {
            Self::Memory(memory) => Ok(lock(&memory.verdicts).get(message_key).cloned()),
            Self::Redis { pool, prefix } => {
                let mut connection = pool.get().await?;
                Ok(connection.hget(verdicts_key(prefix), message_key).await?)
            }
        }
    }

    /// Returns every recorded verdict as (message key, label).
    ///
    /// # Errors
    ///
    /// Returns [`StoreError`] when Redis fails.
    pub async fn verdicts(&self) -> Result<HashMap<String, String>, StoreError> {
        match self {
            Self::Memory(memory) => Ok(lock(&memory.verdicts).clone()),
            Self::Redis { pool, prefix } => {
                let mut connection = pool.get().await?;
                Ok(connection.hgetall(verdicts_key(prefix)).await?)
            }
        }
    }
    /// Stores a plain value under `key` (below the key prefix), replacing any earlier one.
    /// With a time to live, the value disappears after it.
    ///
    /// Services keep small durable facts here, such as a mailbox's sync checkpoint.
    ///
    /// # Errors
    ///
    /// Returns [`StoreError`] when Redis fails.
    pub async fn set_value(
        &self,
        key: &str,
        value: &str,
        ttl: Option<Duration>,
    ) -> Result<(), StoreError> {
        count_redis_errors(
            "set_value",
            async {
                match self {
                    Self::Memory(memory) => {
                        let expires = ttl.map(|ttl| Instant::now() + ttl);
                        lock(&memory.values).insert(key.to_owned(), (value.to_owned(), expires));
                        Ok(())
                    }
                    Self::Redis { pool, prefix } => {
                        let mut connection = pool.get().await?;
                        let key = value_key(prefix, key);
                        match ttl {
                            None => connection.set::<_, _, ()>(key, value).await?,
                            Some(ttl) => {
                                connection
                                    .set_ex::<_, _, ()>(key, value, ttl.as_secs().max(1))
                                    .await?;
                            }
                        }
                        Ok(())
                    }
                }
            }
            .await,
        )
    }

    /// Returns the value stored under `key`, if any.
    ///
    /// # Errors
    ///
    /// Returns [`StoreError`] when Redis fails.
    pub async fn value(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.read_value(key, false).await
    }

    /// Removes the value stored under `key` and returns it, in one atomic step, so two
    /// readers never both see it.
    ///
    /// A service leaves a marker with [`Store::set_value`] for another to consume here. The
    /// action handler marks its SPAM label changes, so the Gmail sync does not read them as a
    /// user's feedback.
    ///
    /// # Errors
    ///
    /// Returns [`StoreError`] when Redis fails.
    pub async fn take_value(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.read_value(key, true).await
    }

    /// Reads the value under `key` with GET, or with GETDEL when `take` is set.
    async fn read_value(&self, key: &str, take: bool) -> Result<Option<String>, StoreError> {
        let operation = if take { "take_value" } else { "value" };
        count_redis_errors(
            operation,
            async {
                match self {
                    Self::Memory(memory) => Ok(live_value(&mut lock(&memory.values), key, take)),
                    Self::Redis { pool, prefix } => {
                        let mut connection = pool.get().await?;
                        let command = if take { "GETDEL" } else { "GET" };
                        Ok(redis::cmd(command)
                            .arg(value_key(prefix, key))
                            .query_async(&mut connection)
                            .await?)
                    }
                }
            }
            .await,
        )
    }
}

impl Store {
    /// Adds ham overrides for Bloom filter keys and returns how many were not there before.
    ///
    /// # Errors
    ///
    /// Returns [`StoreError`] when Redis fails.
    pub async fn ham_overrides_add(&self, keys: &[String]) -> Result<u64, StoreError> {
        count_redis_errors(
            "ham_overrides_add",
            async {
                match self {
                    Self::Memory(memory) => {
                        let mut overrides = lock(&memory.ham_overrides);
                        Ok(keys
                            .iter()
                            .filter(|key| overrides.insert((*key).clone()))
                            .count() as u64)
                    }
                    Self::Redis { .. } if keys.is_empty() => Ok(0),
                    Self::Redis { pool, prefix } => {
                        let mut connection = pool.get().await?;
                        Ok(connection.sadd(ham_overrides_key(prefix), keys).await?)
                    }
                }
            }
            .await,
        )
    }

    /// Removes ham overrides for Bloom filter keys and returns how many were there.
    ///
    /// # Errors
    ///
    /// Returns [`StoreError`] when Redis fails.
    pub async fn ham_overrides_remove(&self, keys: &[String]) -> Result<u64, StoreError> {
        count_redis_errors(
            "ham_overrides_remove",
            async {
                match self {
                    Self::Memory(memory) => {
                        let mut overrides = lock(&memory.ham_overrides);
                        Ok(keys
                            .iter()
                            .filter(|key| overrides.remove(key.as_str()))
                            .count() as u64)
                    }
                    Self::Redis { .. } if keys.is_empty() => Ok(0),
                    Self::Redis { pool, prefix } => {
                        let mut connection = pool.get().await?;
                        Ok(connection.srem(ham_overrides_key(prefix), keys).await?)
                    }
                }
            }
            .await,
        )
    }

    /// Returns, for each Bloom filter key, whether it has a ham override.
    ///
    /// # Errors
    ///
    /// Returns [`StoreError`] when Redis fails.
    pub async fn ham_overridden(&self, keys: &[String]) -> Result<Vec<bool>, StoreError> {
        count_redis_errors(
            "ham_overridden",
            async {
                match self {
                    Self::Memory(memory) => {
                        let overrides = lock(&memory.ham_overrides);
                        Ok(keys.iter().map(|key| overrides.contains(key)).collect())
                    }
                    Self::Redis { .. } if keys.is_empty() => Ok(Vec::new()),
                    Self::Redis { pool, prefix } => {
                        let mut connection = pool.get().await?;
                        // SMISMEMBER needs Redis 6.2 or later.
                        Ok(redis::cmd("SMISMEMBER")
                            .arg(ham_overrides_key(prefix))
                            .arg(keys)
                            .query_async(&mut connection)
                            .await?)
                    }
                }
            }
            .await,
        )
    }
}

/// Reads a value of the in-process store, dropping it when it has expired or `take` is set.
fn live_value(
    values: &mut HashMap<String, (String, Option<Instant>)>,
    key: &str,
    take: bool,
) -> Option<String> {
    let expired = values
        .get(key)
        .is_some_and(|(_, expires)| expires.is_some_and(|at| at <= Instant::now()));
    if expired || take {
        return values
            .remove(key)
            .filter(|_| !expired)
            .map(|(value, _)| value);
    }
    values.get(key).map(|(value, _)| value.clone())
}

/// Builds the key of a label change the action handler makes in a mailbox, so the Gmail sync
/// can tell it apart from a user's own change. `added` is true for an added label.
pub fn own_label_change_key(
    mailbox: &str,
    message_id: &str,
    label_id: &str,
    added: bool,
) -> String {
    let sign = if added { '+' } else { '-' };
    format!("gmail:own:{mailbox}:{message_id}:{sign}{label_id}")
}

/// Counts a failed store operation in `spamflow_redis_errors_total`. Only Redis can fail, so
/// the in-process store never adds to it.
fn count_redis_errors<T>(operation: &str, result: Result<T, StoreError>) -> Result<T, StoreError> {
    if result.is_err() {
        crate::metrics::global().redis_error(operation);
    }
    result
}

fn bloom_log_key(prefix: &str) -> String {
    format!("{prefix}:bloom:log")
}

/// Turns the raw entries of the insert log, read from position `from` of `key`, into text.
/// spamflow writes only ASCII keys there, so an entry that is not UTF-8 was written by
/// something else: it is kept, with its bytes replaced, so that positions still count every
/// entry, and a warning names it.
fn log_entries(key: &str, from: u64, entries: Vec<Vec<u8>>) -> Vec<String> {
    entries
        .into_iter()
        .zip(from..)
        .map(|(entry, position)| {
            String::from_utf8(entry).unwrap_or_else(|error| {
                tracing::warn!(
                    key,
                    position,
                    "Insert log entry is not UTF-8 and matches no fingerprint; remove it with \
                     LSET and LREM if another program wrote it"
                );
                String::from_utf8_lossy(error.as_bytes()).into_owned()
            })
        })
        .collect()
}

fn ham_overrides_key(prefix: &str) -> String {
    format!("{prefix}:bloom:ham-overrides")
}

fn value_key(prefix: &str, key: &str) -> String {
    format!("{prefix}:{key}")
}

fn verdicts_key(prefix: &str) -> String {
    format!("{prefix}:verdicts")
}

/// Locks a mutex, recovering the data if a panicking thread poisoned it: every critical
/// section here is a single push or insert, so the data is never left half-written.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_url_accepts_tcp_tls_and_socket_forms() {
        // The Terraform deployments hand the services rediss:// URLs of ElastiCache and
        // Memorystore, which need the redis crate's TLS support.
        for url in [
            "redis://127.0.0.1:6379",
            "rediss://:secret@127.0.0.1:6380/0",
            "redis://:secret@localhost:6380/2",
            "redis://user:secret@[::1]:6379",
            "unix:///run/redis.sock",
            "redis+unix:///run/redis.sock?db=1",
        ] {
            assert_eq!(check_redis_url(url), Ok(()), "{url}");
        }
    }

    #[test]
    fn non_utf8_log_entry_keeps_position() {
        let entries = log_entries(
            "t:bloom:log",
            7,
            vec![b"body:ab".to_vec(), vec![0xFF, 0x61]],
        );
        assert_eq!(entries, ["body:ab", "\u{FFFD}a"]);
    }

    #[test]
    fn redis_url_rejects_bad_forms() {
        let cases = [
            ("nope", "scheme redis"),
            ("http://127.0.0.1:6379", "scheme redis"),
            ("127.0.0.1:6379", "scheme redis"),
            ("redis://", "no host"),
            ("redis://:secret@", "not a valid URL"),
            ("redis://127.0.0.1:6379/zero", "database number"),
        ];
        for (url, reason) in cases {
            let error = check_redis_url(url).unwrap_err();
            assert!(error.contains(reason), "{url}: {error}");
        }
    }
}
