//! The Gmail integration: syncs each configured mailbox into the raw topic and reports the
//! user's SPAM corrections to the feedback topic.
//!
//! Per mailbox, one task runs a sync ([`sync::MailboxSync`]) at start, then again after each
//! poll interval or as soon as a Pub/Sub push notification for that mailbox arrives. With a
//! Pub/Sub topic configured it calls `users.watch` at start and renews the watch before it
//! expires. Polling stays on as the fallback for lost notifications.

#![forbid(unsafe_code)]

pub mod keys;
pub mod publish;
pub mod push;
pub mod sync;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use spamflow_gmail::{Gmail, GmailArgs, GmailPool};
use spamflow_runtime::http::Readiness;
use spamflow_runtime::kafka::KafkaArgs;
use spamflow_runtime::pipeline::Stopping;
use spamflow_runtime::store::{RedisArgs, Store};
use tokio::sync::Notify;

use crate::publish::Publisher;
use crate::sync::{MailboxSync, SyncError, SyncSettings};

/// Default address of the HTTP port for /metrics, /healthz and the push endpoint.
pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:9401";
/// Readiness check: every mailbox finished its last sync.
pub const CHECK_SYNC: &str = "gmail_sync";
/// Time before a watch's expiration at which it is renewed at the latest.
const WATCH_RENEW_MARGIN: Duration = Duration::from_secs(3600);
/// Wait before calling `users.watch` again after it failed.
const WATCH_RETRY: Duration = Duration::from_secs(60);

/// Command line of the `gmail-integration` binary.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "gmail-integration",
    version,
    about = "Syncs Gmail mailboxes into Kafka and reports users' spam corrections",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub config: Config,
}

/// Subcommands; without one the binary runs the service.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Signs in once with a Desktop app OAuth client and writes the token cache
    /// (--gmail-token-file). Prints the consent URL on stdout and waits for the browser.
    Auth(AuthArgs),
}

/// Arguments of `gmail-integration auth`.
#[derive(Debug, Clone, clap::Args)]
pub struct AuthArgs {
    #[command(flatten)]
    pub gmail: GmailArgs,
    /// Loopback port for the OAuth redirect; a free port when unset.
    #[arg(long, env = "SPAMFLOW_GMAIL_REDIRECT_PORT")]
    pub redirect_port: Option<u16>,
}

/// Configuration of the service.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub redis: RedisArgs,
    #[command(flatten)]
    pub gmail: GmailArgs,
    /// Gmail search query of the full sync, such as `newer_than:7d`; all messages when unset.
    #[arg(long, env = "SPAMFLOW_GMAIL_QUERY")]
    pub gmail_query: Option<String>,
    /// Labels a message must carry to be synced, comma-separated; empty for every message.
    #[arg(
        long,
        env = "SPAMFLOW_GMAIL_LABEL_IDS",
        value_delimiter = ',',
        default_value = "INBOX"
    )]
    pub gmail_label_ids: Vec<String>,
    /// Newest messages the first full sync of a mailbox takes at most.
    #[arg(long, env = "SPAMFLOW_GMAIL_FULL_SYNC_CAP", default_value_t = 500)]
    pub gmail_full_sync_cap: usize,
    /// Messages fetched (`messages.get`) and published at once, per mailbox.
    #[arg(long, env = "SPAMFLOW_GMAIL_FETCH_CONCURRENCY", default_value_t = 8)]
    pub gmail_fetch_concurrency: usize,
    /// Time between two syncs of a mailbox without a push notification, in milliseconds.
    #[arg(
        long,
        env = "SPAMFLOW_GMAIL_POLL_INTERVAL_MS",
        default_value_t = 60_000
    )]
    pub gmail_poll_interval_ms: u64,
    /// Cloud Pub/Sub topic for `users.watch`, as `projects/PROJECT/topics/TOPIC`. Push mode
    /// is off when it is unset or empty.
    #[arg(long, env = "SPAMFLOW_GMAIL_PUBSUB_TOPIC")]
    pub gmail_pubsub_topic: Option<String>,
    /// Token the push subscription appends as `?token=`; it enables POST /gmail/push.
    /// Prefer the environment variable, which does not show in `ps`.
    #[arg(long, env = "SPAMFLOW_GMAIL_PUSH_TOKEN", hide_env_values = true)]
    pub gmail_push_token: Option<SecretString>,
    /// Maximum time between two `users.watch` calls, in milliseconds. Gmail recommends a
    /// daily renewal, and a watch lasts 7 days.
    #[arg(
        long,
        env = "SPAMFLOW_GMAIL_WATCH_RENEW_MS",
        default_value_t = 86_400_000
    )]
    pub gmail_watch_renew_ms: u64,
    /// Days a message stays marked as published, which keeps a later full sync from sending
    /// it again.
    #[arg(long, env = "SPAMFLOW_GMAIL_PUBLISHED_TTL_DAYS", default_value_t = 90)]
    pub gmail_published_ttl_days: u64,
    /// Address of the HTTP port serving /metrics, /healthz and POST /gmail/push.
    #[arg(long, env = "SPAMFLOW_HTTP_ADDR", default_value = DEFAULT_HTTP_ADDR)]
    pub http_addr: SocketAddr,
}

impl Config {
    /// Checks the settings that clap cannot, naming the flag at fault.
    ///
    /// # Errors
    ///
    /// A message naming the flag, the value and the fix.
    pub fn validate(&self) -> Result<(), String> {
        if self.gmail_full_sync_cap == 0 {
            return Err("invalid --gmail-full-sync-cap 0: it must be at least 1".to_owned());
        }
        if self.gmail_fetch_concurrency == 0 {
            return Err("invalid --gmail-fetch-concurrency 0: it must be at least 1".to_owned());
        }
        if self.gmail_poll_interval_ms == 0 {
            return Err("invalid --gmail-poll-interval-ms 0: it must be at least 1".to_owned());
        }
        if self.gmail_watch_renew_ms < 60_000 {
            return Err(format!(
                "invalid --gmail-watch-renew-ms {}: it must be at least 60000 (one minute)",
                self.gmail_watch_renew_ms
            ));
        }
        if self.gmail_published_ttl_days == 0 {
            return Err("invalid --gmail-published-ttl-days 0: it must be at least 1".to_owned());
        }
        if let Some(topic) = self.pubsub_topic() {
            let parts: Vec<&str> = topic.split('/').collect();
            let valid = parts.len() == 4
                && parts[0] == "projects"
                && parts[2] == "topics"
                && !parts[1].is_empty()
                && !parts[3].is_empty();
            if !valid {
                return Err(format!(
                    "invalid --gmail-pubsub-topic {topic:?}: expected \
                     projects/PROJECT/topics/TOPIC"
                ));
            }
            if self.push_token().is_none() {
                return Err(
                    "missing --gmail-push-token (SPAMFLOW_GMAIL_PUSH_TOKEN): push mode \
                            needs the token the push subscription sends"
                        .to_owned(),
                );
            }
        }
        self.gmail
            .check_limits()
            .map_err(|error| error.to_string())?;
        self.gmail
            .normalized_api_url()
            .map_err(|error| error.to_string())?;
        self.gmail.backoff().map_err(|error| error.to_string())?;
        self.gmail
            .mailbox_list()
            .map_err(|error| error.to_string())?;
        Ok(())
    }

    /// Returns the Pub/Sub topic, when one is set and not blank.
    pub fn pubsub_topic(&self) -> Option<&str> {
        self.gmail_pubsub_topic
            .as_deref()
            .map(str::trim)
            .filter(|topic| !topic.is_empty())
    }

    /// Returns the push token, when one is set and not blank.
    pub fn push_token(&self) -> Option<&str> {
        self.gmail_push_token
            .as_ref()
            .map(SecretString::expose)
            .map(str::trim)
            .filter(|token| !token.is_empty())
    }

    fn sync_settings(&self) -> SyncSettings {
        SyncSettings {
            query: self
                .gmail_query
                .clone()
                .filter(|query| !query.trim().is_empty()),
            label_ids: self
                .gmail_label_ids
                .iter()
                .map(|label| label.trim().to_owned())
                .filter(|label| !label.is_empty())
                .collect(),
            full_sync_cap: self.gmail_full_sync_cap,
            fetch_concurrency: self.gmail_fetch_concurrency,
            published_ttl: Duration::from_secs(self.gmail_published_ttl_days * 24 * 3600),
        }
    }
}

/// A secret flag value, such as the push token, that `Debug` output shows as `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    /// Returns the secret itself, for the one place that compares or sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for SecretString {
    type Err = std::convert::Infallible;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Ok(Self(value.to_owned()))
    }
}

impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretString(<redacted>)")
    }
}

/// The service: one sync task per mailbox, woken by its timer or a push notification.
pub struct GmailIntegration {
    syncs: Vec<(Arc<MailboxSync>, Arc<Notify>)>,
    readiness: Readiness,
    poll_interval: Duration,
    watch: Option<WatchSettings>,
}

#[derive(Clone)]
struct WatchSettings {
    topic: String,
    label_ids: Vec<String>,
    renew_every: Duration,
}

impl GmailIntegration {
    /// Builds the service over connected Gmail clients, a store and a producer.
    pub fn new(config: &Config, pool: &GmailPool, store: Store, publisher: Publisher) -> Self {
        let settings = config.sync_settings();
        let syncs = pool
            .clients()
            .iter()
            .map(|gmail: &Arc<Gmail>| {
                let sync = MailboxSync::new(
                    gmail.clone(),
                    store.clone(),
                    publisher.clone(),
                    settings.clone(),
                );
                (Arc::new(sync), Arc::new(Notify::new()))
            })
            .collect();
        let watch = config
            .gmail_pubsub_topic
            .clone()
            .map(|topic| WatchSettings {
                topic,
                label_ids: settings.label_ids.clone(),
                renew_every: Duration::from_millis(config.gmail_watch_renew_ms),
            });
        Self {
            syncs,
            readiness: Readiness::new(&[CHECK_SYNC]),
            poll_interval: Duration::from_millis(config.gmail_poll_interval_ms),
            watch,
        }
    }

    /// Returns the readiness for /healthz.
    pub fn readiness(&self) -> Readiness {
        self.readiness.clone()
    }

    /// Builds the push endpoint's state: a wake-up per mailbox, by lowercase address.
    pub fn push_state(&self, token: &str) -> push::PushState {
        let wakers: HashMap<String, Arc<Notify>> = self
            .syncs
            .iter()
            .map(|(sync, notify)| (sync.gmail().mailbox().to_ascii_lowercase(), notify.clone()))
            .collect();
        push::PushState::new(token.to_owned(), wakers)
    }

    /// Runs every mailbox's sync loop until `stopping` fires, then lets running syncs finish
    /// their started messages.
    ///
    /// # Errors
    ///
    /// Fails when a sync task panicked.
    pub async fn run(self, stopping: Stopping) -> anyhow::Result<()> {
        let health = Arc::new(SyncHealth::new(self.syncs.len(), self.readiness.clone()));
        let mut tasks = tokio::task::JoinSet::new();
        for (index, (sync, notify)) in self.syncs.into_iter().enumerate() {
            tasks.spawn(mailbox_loop(
                sync,
                notify,
                self.poll_interval,
                self.watch.clone(),
                stopping.clone(),
                health.clone(),
                index,
            ));
        }
        while let Some(joined) = tasks.join_next().await {
            joined.map_err(|error| anyhow::anyhow!("a mailbox sync task failed: {error}"))?;
        }
        Ok(())
    }
}

/// Whether each mailbox's last sync succeeded, feeding the readiness check.
struct SyncHealth {
    healthy: std::sync::Mutex<Vec<bool>>,
    readiness: Readiness,
}

impl SyncHealth {
    fn new(mailboxes: usize, readiness: Readiness) -> Self {
        Self {
            healthy: std::sync::Mutex::new(vec![false; mailboxes]),
            readiness,
        }
    }

    fn set(&self, index: usize, healthy: bool) {
        // The vector contains plain flags, so a panic elsewhere cannot leave it half-written.
        let mut flags = self
            .healthy
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(flag) = flags.get_mut(index) {
            *flag = healthy;
        }
        self.readiness
            .set(CHECK_SYNC, flags.iter().all(|flag| *flag));
    }
}

async fn mailbox_loop(
    sync: Arc<MailboxSync>,
    notify: Arc<Notify>,
    poll_interval: Duration,
    watch: Option<WatchSettings>,
    mut stopping: Stopping,
    health: Arc<SyncHealth>,
    index: usize,
) {
    let tag = sync.gmail().tag().to_owned();
    let mut next_watch = tokio::time::Instant::now();
    loop {
        if let Some(watch) = &watch
            && tokio::time::Instant::now() >= next_watch
        {
            next_watch = renew_watch(sync.gmail(), watch).await;
        }

        match sync.sync_once(&stopping).await {
            Ok(report) => {
                health.set(index, true);
                let level_is_info = report.published + report.feedback > 0
                    || report.kind != sync::SyncKind::Incremental;
                if level_is_info {
                    tracing::info!(
                        mailbox = %tag,
                        kind = ?report.kind,
                        published = report.published,
                        already_published = report.already_published,
                        feedback = report.feedback,
                        history_id = report.history_id,
                        "Mailbox synced"
                    );
                } else {
                    tracing::debug!(mailbox = %tag, history_id = report.history_id, "Mailbox synced");
                }
            }
            Err(SyncError::Stopped) => break,
            Err(SyncError::Failed(error)) => {
                health.set(index, false);
                // WARN, not ERROR: the checkpoint did not move, so the next sync retries every
                // change after it.
                tracing::warn!(
                    mailbox = %tag,
                    error = spamflow_runtime::cli::error_chain(&error),
                    "Mailbox sync failed; retrying from the checkpoint at the next poll"
                );
            }
        }

        let mut sleep_until = tokio::time::Instant::now() + poll_interval;
        if watch.is_some() {
            sleep_until = sleep_until.min(next_watch);
        }
        tokio::select! {
            () = tokio::time::sleep_until(sleep_until) => {}
            () = notify.notified() => {}
            () = stopping.wait() => break,
        }
    }
    tracing::info!(mailbox = %tag, "Mailbox sync stopped");
}

/// Calls `users.watch` and returns when to call it next.
async fn renew_watch(gmail: &Gmail, watch: &WatchSettings) -> tokio::time::Instant {
    let now = tokio::time::Instant::now();
    match gmail.watch(&watch.topic, &watch.label_ids).await {
        Ok(info) => {
            let until_expiry_ms = (info.expiration_ms - spamflow_runtime::now_ms()).max(0) as u64;
            let before_expiry = Duration::from_millis(until_expiry_ms)
                .saturating_sub(WATCH_RENEW_MARGIN)
                .max(WATCH_RETRY);
            tracing::info!(
                mailbox = %gmail.tag(),
                history_id = info.history_id,
                expiration_ms = info.expiration_ms,
                "Gmail watch active"
            );
            now + watch.renew_every.min(before_expiry)
        }
        Err(error) => {
            tracing::warn!(
                mailbox = %gmail.tag(),
                %error,
                "Gmail watch failed; polling continues and the watch is retried"
            );
            now + WATCH_RETRY
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    #[test]
    fn config_debug_hides_push_token() {
        let cli = Cli::try_parse_from([
            "gmail-integration",
            "--gmail-push-token",
            "very-secret-push-token",
        ])
        .unwrap();
        assert_eq!(cli.config.push_token(), Some("very-secret-push-token"));
        let debug_output = format!("{cli:?}");
        assert!(
            !debug_output.contains("very-secret-push-token"),
            "{debug_output}"
        );
        assert!(debug_output.contains("<redacted>"), "{debug_output}");
    }

    #[test]
    fn blank_topic_and_token_mean_unset() {
        let cli = Cli::try_parse_from([
            "gmail-integration",
            "--gmail-pubsub-topic",
            " ",
            "--gmail-push-token",
            "",
        ])
        .unwrap();
        assert_eq!(cli.config.pubsub_topic(), None);
        assert_eq!(cli.config.push_token(), None);
        assert_eq!(cli.config.validate(), Ok(()));
    }
}
