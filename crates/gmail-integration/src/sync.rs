//! The sync of one mailbox: a full sync when there is no checkpoint (or Gmail no longer has
//! the history after it), else an incremental sync over `users.history.list`.
//!
//! Guarantees, per mailbox:
//! - The checkpoint (a history id) is stored only after every message and feedback event
//!   before it is acknowledged by Kafka, so a restart loses nothing.
//! - A message is marked published right after Kafka acknowledges it, and marked messages
//!   are skipped, so a restart or a full sync after an expired history does not send them
//!   again.
//! - Each SPAM label change in the history yields at most one feedback event, and none when
//!   the action handler left an own-change marker for it.
//!
//! NOTE: a process killed between Kafka's acknowledgement and the store write of the
//! published marker (or of a feedback decision) sends that one record again after the
//! restart. The consumers are idempotent by message id.

use std::time::Duration;

use futures::StreamExt as _;
use spamflow_gmail::{Gmail, GmailError, HistoryRecord, LABEL_SPAM};
use spamflow_proto::v1 as pb;
use spamflow_runtime::pipeline::Stopping;
use spamflow_runtime::store::{Store, own_label_change_key};
use tracing::Instrument as _;

use crate::keys;
use crate::publish::{self, Publisher};

/// How long a feedback decision is remembered; longer than Gmail keeps history.
const DECISION_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// Settings of the message listing and fetching.
#[derive(Debug, Clone)]
pub struct SyncSettings {
    /// Gmail search query of the full sync; `None` lists every message with the labels.
    pub query: Option<String>,
    /// Labels a message must all carry to be synced; empty for any.
    pub label_ids: Vec<String>,
    /// Newest messages the full sync takes at most.
    pub full_sync_cap: usize,
    /// Messages fetched and published at once.
    pub fetch_concurrency: usize,
    /// How long the published marker of a message is kept.
    pub published_ttl: Duration,
}

/// The kind of a sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncKind {
    /// No checkpoint yet.
    Full,
    /// Gmail returned 404 for the checkpoint's history.
    FullAfterExpiredHistory,
    /// From the checkpoint.
    Incremental,
}

/// The outcome of one sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncReport {
    /// The kind of sync that ran.
    pub kind: SyncKind,
    /// Messages published in this sync.
    pub published: usize,
    /// Messages skipped because an earlier sync published them.
    pub already_published: usize,
    /// Feedback events published.
    pub feedback: usize,
    /// The stored checkpoint.
    pub history_id: u64,
}

/// The reason a sync stopped early.
#[derive(Debug)]
pub enum SyncError {
    /// Shutdown began; finished messages stay published and the checkpoint is not moved.
    Stopped,
    /// A Gmail, Kafka or store step failed; the next sync retries from the checkpoint.
    Failed(anyhow::Error),
}

impl From<anyhow::Error> for SyncError {
    fn from(error: anyhow::Error) -> Self {
        SyncError::Failed(error)
    }
}

impl From<GmailError> for SyncError {
    fn from(error: GmailError) -> Self {
        SyncError::Failed(error.into())
    }
}

impl From<spamflow_runtime::store::StoreError> for SyncError {
    fn from(error: spamflow_runtime::store::StoreError) -> Self {
        SyncError::Failed(anyhow::Error::new(error).context("store operation failed"))
    }
}

enum Outcome {
    Published,
    AlreadyPublished,
    Gone,
    Stopped,
}

/// One label change of SPAM found in the history.
struct SpamChange {
    record_id: u64,
    message_id: String,
    added: bool,
}

/// Syncs one mailbox into Kafka.
pub struct MailboxSync {
    gmail: std::sync::Arc<Gmail>,
    store: Store,
    publisher: Publisher,
    settings: SyncSettings,
}

impl MailboxSync {
    /// Creates the sync of the mailbox `gmail` serves.
    pub fn new(
        gmail: std::sync::Arc<Gmail>,
        store: Store,
        publisher: Publisher,
        settings: SyncSettings,
    ) -> Self {
        Self {
            gmail,
            store,
            publisher,
            settings,
        }
    }

    /// Returns the Gmail client of the mailbox.
    pub fn gmail(&self) -> &Gmail {
        &self.gmail
    }

    /// Runs one sync: incremental from the checkpoint, or full without one or when Gmail no
    /// longer has the history after it.
    ///
    /// # Errors
    ///
    /// [`SyncError::Stopped`] when `stopping` fired, [`SyncError::Failed`] when a step
    /// failed; neither moves the checkpoint.
    pub async fn sync_once(&self, stopping: &Stopping) -> Result<SyncReport, SyncError> {
        let mailbox = self.gmail.mailbox();
        let span = tracing::info_span!("sync_mailbox", mailbox = %self.gmail.tag());
        async move {
            let checkpoint = self.store.value(&keys::checkpoint_key(mailbox)).await?;
            let Some(checkpoint) = checkpoint else {
                return self.full_sync(SyncKind::Full, stopping).await;
            };
            let start: u64 = checkpoint.trim().parse().map_err(|_| {
                anyhow::anyhow!(
                    "invalid checkpoint {checkpoint:?} under gmail:checkpoint:<mailbox>: \
                     expected a history id, so delete the key to start with a full sync"
                )
            })?;
            match self.gmail.history(start).await {
                Ok(history) => self.incremental(history, stopping).await,
                Err(GmailError::HistoryExpired { .. }) => {
                    tracing::warn!(
                        start_history_id = start,
                        "Gmail no longer has the history after the checkpoint; running a full sync"
                    );
                    self.full_sync(SyncKind::FullAfterExpiredHistory, stopping)
                        .await
                }
                Err(error) => Err(error.into()),
            }
        }
        .instrument(span)
        .await
    }

    async fn full_sync(
        &self,
        kind: SyncKind,
        stopping: &Stopping,
    ) -> Result<SyncReport, SyncError> {
        // The history id is read before the listing, so a message that arrives during the
        // listing is either listed or in the history after this id (or both, and then the
        // published marker skips it the second time).
        let profile = self.gmail.profile().await?;
        let ids = self
            .gmail
            .list_message_ids(
                self.settings.query.as_deref(),
                &self.settings.label_ids,
                self.settings.full_sync_cap,
            )
            .await?;
        tracing::info!(
            messages = ids.len(),
            history_id = profile.history_id,
            "Full sync listed messages"
        );
        let (published, already_published) = self.publish_all(ids, stopping).await?;
        self.store_checkpoint(profile.history_id).await?;
        Ok(SyncReport {
            kind,
            published,
            already_published,
            feedback: 0,
            history_id: profile.history_id,
        })
    }

    async fn incremental(
        &self,
        history: spamflow_gmail::History,
        stopping: &Stopping,
    ) -> Result<SyncReport, SyncError> {
        let (new_messages, spam_changes) = self.read_records(&history.records);
        let (published, already_published) = self.publish_all(new_messages, stopping).await?;
        let mut feedback = 0;
        for change in spam_changes {
            if stopping.is_stopping() {
                return Err(SyncError::Stopped);
            }
            if self.handle_spam_change(&change).await? {
                feedback += 1;
            }
        }
        self.store_checkpoint(history.history_id).await?;
        Ok(SyncReport {
            kind: SyncKind::Incremental,
            published,
            already_published,
            feedback,
            history_id: history.history_id,
        })
    }

    /// Splits history records into new messages to publish (in order, each once, with the
    /// configured labels) and SPAM label changes.
    fn read_records(&self, records: &[HistoryRecord]) -> (Vec<String>, Vec<SpamChange>) {
        let mut new_messages: Vec<String> = Vec::new();
        let mut spam_changes = Vec::new();
        for record in records {
            for message in &record.messages_added {
                let selected = self
                    .settings
                    .label_ids
                    .iter()
                    .all(|label| message.label_ids.contains(label));
                if selected && !new_messages.contains(&message.id) {
                    new_messages.push(message.id.clone());
                }
            }
            let changes = record
                .labels_added
                .iter()
                .map(|change| (change, true))
                .chain(record.labels_removed.iter().map(|change| (change, false)));
            for (change, added) in changes {
                if change.label_ids.iter().any(|label| label == LABEL_SPAM) {
                    spam_changes.push(SpamChange {
                        record_id: record.id,
                        message_id: change.message.id.clone(),
                        added,
                    });
                }
            }
        }
        (new_messages, spam_changes)
    }

    /// Publishes messages with bounded concurrency. Returns (published, already published).
    async fn publish_all(
        &self,
        ids: Vec<String>,
        stopping: &Stopping,
    ) -> Result<(usize, usize), SyncError> {
        let concurrency = self.settings.fetch_concurrency.max(1);
        let mut outcomes = futures::stream::iter(ids)
            .map(|id| async move { self.publish_message(&id, stopping).await })
            .buffered(concurrency);

        let mut published = 0;
        let mut already_published = 0;
        let mut stopped = false;
        let mut failure = None;
        // Every started message runs to the end, so none is left between Kafka's
        // acknowledgement and its published marker.
        while let Some(outcome) = outcomes.next().await {
            match outcome {
                Ok(Outcome::Published) => published += 1,
                Ok(Outcome::AlreadyPublished) => already_published += 1,
                Ok(Outcome::Gone) => {}
                Ok(Outcome::Stopped) => stopped = true,
                Err(error) => {
                    if failure.is_none() {
                        failure = Some(error);
                    }
                }
            }
        }

        if let Some(error) = failure {
            return Err(SyncError::Failed(error));
        }
        if stopped {
            return Err(SyncError::Stopped);
        }
        Ok((published, already_published))
    }

    async fn publish_message(&self, id: &str, stopping: &Stopping) -> anyhow::Result<Outcome> {
        let mailbox = self.gmail.mailbox();
        // Each message starts its own trace, which the Kafka headers carry on downstream.
        let span = tracing::info_span!(
            parent: None,
            "publish_email",
            mailbox = %self.gmail.tag(),
            message_id = id,
            topic = "raw"
        );
        async move {
            if stopping.is_stopping() {
                return Ok(Outcome::Stopped);
            }
            let marker = keys::published_key(mailbox, id);
            if self.store.value(&marker).await?.is_some() {
                return Ok(Outcome::AlreadyPublished);
            }
            let message = match self.gmail.get_raw(id).await {
                Ok(message) => message,
                Err(error) if error.status() == Some(404) => {
                    tracing::debug!(message_id = id, "Message was deleted before it was fetched");
                    return Ok(Outcome::Gone);
                }
                Err(error) => {
                    return Err(
                        anyhow::Error::new(error).context(format!("failed to fetch message {id}"))
                    );
                }
            };
            let event = publish::email_event(mailbox, message);
            self.publisher.email(&event).await?;
            self.store
                .set_value(&marker, "1", Some(self.settings.published_ttl))
                .await?;
            tracing::debug!("Published message");
            Ok(Outcome::Published)
        }
        .instrument(span)
        .await
    }

    /// Publishes the feedback of a user's SPAM change; returns whether it did.
    async fn handle_spam_change(&self, change: &SpamChange) -> anyhow::Result<bool> {
        let span = tracing::info_span!(
            parent: None,
            "publish_feedback",
            mailbox = %self.gmail.tag(),
            message_id = %change.message_id,
            added = change.added
        );
        self.decide_spam_change(change).instrument(span).await
    }

    async fn decide_spam_change(&self, change: &SpamChange) -> anyhow::Result<bool> {
        let mailbox = self.gmail.mailbox();
        let decision_key = keys::feedback_decision_key(
            mailbox,
            change.record_id,
            &change.message_id,
            LABEL_SPAM,
            change.added,
        );
        if self.store.value(&decision_key).await?.is_some() {
            return Ok(false);
        }

        let own_key = own_label_change_key(mailbox, &change.message_id, LABEL_SPAM, change.added);
        if self.store.take_value(&own_key).await?.is_some() {
            tracing::debug!(
                message_id = %change.message_id,
                added = change.added,
                "SPAM change was made by spamflow; no feedback"
            );
            self.store
                .set_value(&decision_key, "own", Some(DECISION_TTL))
                .await?;
            return Ok(false);
        }

        let message = match self.gmail.get_raw(&change.message_id).await {
            Ok(message) => message,
            Err(error) if error.status() == Some(404) => {
                tracing::debug!(message_id = %change.message_id, "Message of a SPAM change is gone");
                self.store
                    .set_value(&decision_key, "gone", Some(DECISION_TTL))
                    .await?;
                return Ok(false);
            }
            Err(error) => {
                return Err(anyhow::Error::new(error).context(format!(
                    "failed to fetch message {} for feedback",
                    change.message_id
                )));
            }
        };

        let label = if change.added {
            pb::Label::Spam
        } else {
            pb::Label::Ham
        };
        let event = publish::feedback_event(mailbox, &change.message_id, label, message.raw);
        self.publisher.feedback(&event).await?;
        self.store
            .set_value(&decision_key, "user", Some(DECISION_TTL))
            .await?;
        tracing::info!(
            message_id = %change.message_id,
            label = if change.added { "spam" } else { "ham" },
            "Published user feedback"
        );
        Ok(true)
    }

    async fn store_checkpoint(&self, history_id: u64) -> anyhow::Result<()> {
        self.store
            .set_value(
                &keys::checkpoint_key(self.gmail.mailbox()),
                &history_id.to_string(),
                None,
            )
            .await?;
        Ok(())
    }
}
