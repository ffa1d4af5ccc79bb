//! The action handler: consumes verdicts and applies the policy for each, idempotently by
//! message.
//!
//! Every verdict is first recorded in the store under `mailbox/message-id`, unless a verdict
//! for that message is already recorded, so the store contains exactly one verdict per message
//! however often Kafka delivers it. The [`policy`] then maps the verdict to at most one Gmail
//! action: move to SPAM, add the suspect label, or none. With Gmail actions on, the action is
//! applied through [`gmail::GmailActions`]. Only after Gmail accepted it is it recorded under
//! `action:{mailbox}/{message_id}:{action}`, and a recorded action is never applied again.
//! Verdicts for a mailbox without a Gmail client, such as replayed corpus mail, are only
//! logged.
//!
//! A Gmail call that still fails after the client's retries is retried here with backoff
//! until it succeeds or shutdown begins, and the record's offset is not stored meanwhile, so
//! the partition pauses rather than dropping the action. A message that no longer exists in
//! Gmail is logged and counted, and the partition moves on.
//!
//! Each verdict is traced: `handle_verdict` continues the trace from the record's headers,
//! `record_verdict` covers recording it and `apply_action` covers its Gmail action.

#![forbid(unsafe_code)]

pub mod config;
pub mod gmail;
mod keyed_lock;
pub mod policy;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use prost::Message as _;
use rdkafka::Message;
use rdkafka::message::OwnedMessage;
use rdkafka::producer::FutureProducer;
use spamflow_proto::v1 as pb;
use spamflow_runtime::http::Readiness;
use spamflow_runtime::kafka::{KafkaArgs, Topics, record_key};
use spamflow_runtime::pipeline::{self, Backoff, Handled, Stopping};
use spamflow_runtime::store::{RedisArgs, Store};
use spamflow_runtime::{metrics, propagation};
use tokio::sync::watch;
use tracing::Instrument as _;

use crate::gmail::{GmailActions, Outcome};
use crate::policy::{Action, Band, Policy};

/// Default consumer group.
pub const DEFAULT_GROUP_ID: &str = "spamflow-action-handler";
/// Default address of the HTTP port for /metrics and /healthz.
pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:9405";
/// The action that records each verdict in the store.
const ACTION_RECORD: &str = "record";

/// Outcomes of a Gmail action, as counted in `spamflow_actions_total`.
mod outcome {
    /// Gmail accepted the label changes.
    pub const APPLIED: &str = "applied";
    /// The message already had the labels, so nothing was sent.
    pub const UNCHANGED: &str = "unchanged";
    /// The action was already recorded for this message by an earlier delivery.
    pub const DUPLICATE: &str = "duplicate";
    /// Dry run: logged what would change.
    pub const DRY_RUN: &str = "dry_run";
    /// Gmail has no such message.
    pub const NOT_FOUND: &str = "not_found";
    /// Gmail actions are off, so the action was only logged.
    pub const LOGGED: &str = "logged";
    /// The verdict's mailbox has no Gmail client, so the action was only logged.
    pub const NO_MAILBOX: &str = "no_mailbox";
    /// One failed attempt, retried afterwards.
    pub const FAILED: &str = "failed";
}

/// Configuration of the action-handler service.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "action-handler",
    version,
    about = "Applies verdicts idempotently"
)]
pub struct Config {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub redis: RedisArgs,
    #[command(flatten)]
    pub policy: config::PolicyArgs,
    #[command(flatten)]
    pub gmail: spamflow_gmail::GmailArgs,
    /// Kafka consumer group.
    #[arg(long, env = "SPAMFLOW_GROUP_ID", default_value = DEFAULT_GROUP_ID)]
    pub group_id: String,
    /// Records handled at once, 1 or more; offsets are still stored in order.
    #[arg(
        long,
        env = "SPAMFLOW_CONCURRENCY",
        default_value_t = 32,
        value_parser = spamflow_runtime::cli::whole_number_from(1usize)
    )]
    pub concurrency: usize,
    /// Listen address (host:port) of the HTTP server for /metrics and /healthz.
    #[arg(long, env = "SPAMFLOW_HTTP_ADDR", default_value = DEFAULT_HTTP_ADDR)]
    pub http_addr: SocketAddr,
}

/// Applies verdicts.
#[derive(Clone)]
pub struct ActionHandler {
    store: Store,
    policy: Policy,
    /// The Gmail mailboxes to act on, or `None` when Gmail actions are off.
    gmail: Option<Arc<GmailActions>>,
    /// Locks by action key, so concurrent deliveries of one verdict act one at a time.
    acting: keyed_lock::KeyedLocks,
    producer: FutureProducer,
    topics: Topics,
    /// True once the consumer has joined its group.
    joined: watch::Sender<bool>,
    /// Verdict records handled to completion, including redeliveries and dead letters.
    handled: Arc<AtomicU64>,
    /// Broker connectivity and group membership, for /healthz.
    readiness: Readiness,
}

impl ActionHandler {
    /// Creates a handler that acts on the mailboxes of `gmail`, or only logs actions when
    /// `gmail` is `None`.
    ///
    /// # Errors
    ///
    /// Fails when the policy flags are invalid or the Kafka producer for the dead-letter
    /// topic cannot be created.
    pub fn new(config: &Config, store: Store, gmail: Option<GmailActions>) -> anyhow::Result<Self> {
        let policy = config.policy.policy()?;
        let producer: FutureProducer = config
            .kafka
            .producer_config()?
            .create()
            .context("failed to create the Kafka producer")?;
        Ok(Self {
            store,
            policy,
            gmail: gmail.map(Arc::new),
            acting: keyed_lock::KeyedLocks::default(),
            producer,
            topics: config.kafka.topics(),
            joined: watch::Sender::new(false),
            handled: Arc::default(),
            readiness: Readiness::default(),
        })
    }

    /// Broker connectivity and group membership of the consumer, for /healthz.
    pub fn readiness(&self) -> Readiness {
        self.readiness.clone()
    }

    /// Turns true once the consumer has joined its group and received partitions.
    pub fn joined(&self) -> watch::Receiver<bool> {
        self.joined.subscribe()
    }

    /// A counter of verdict records handled to completion, for callers that wait for the
    /// handler to catch up.
    pub fn handled_counter(&self) -> Arc<AtomicU64> {
        self.handled.clone()
    }

    /// Handles one verdict record until it is recorded or dead-lettered.
    pub async fn handle(&self, message: OwnedMessage, stopping: Stopping) -> Handled {
        let span = tracing::info_span!(
            "handle_verdict",
            otel.kind = "consumer",
            messaging.system = "kafka",
            topic = message.topic(),
            partition = message.partition(),
            offset = message.offset(),
            message_id = tracing::field::Empty,
        );
        propagation::continue_from_kafka(&span, message.headers());
        let handled = self.apply(message, stopping).instrument(span).await;
        if matches!(handled, Handled::Done) {
            self.handled.fetch_add(1, Ordering::Relaxed);
        }
        handled
    }

    async fn apply(&self, message: OwnedMessage, mut stopping: Stopping) -> Handled {
        let verdict = match message.payload().map(pb::VerdictEvent::decode) {
            Some(Ok(verdict)) if !verdict.message_id.is_empty() => verdict,
            Some(Ok(_)) => {
                return self
                    .dead_letter(&message, "verdict has an empty message_id", &mut stopping)
                    .await;
            }
            Some(Err(error)) => {
                let reason = format!("value is not a spamflow.v1.VerdictEvent: {error}");
                return self.dead_letter(&message, &reason, &mut stopping).await;
            }
            None => {
                return self
                    .dead_letter(&message, "record has no value", &mut stopping)
                    .await;
            }
        };
        tracing::Span::current().record("message_id", verdict.message_id.as_str());
        let key = record_key(&verdict.mailbox, &verdict.message_id);
        let label = match pb::Label::try_from(verdict.label) {
            Ok(pb::Label::Spam) => spamflow_core::Label::Spam,
            Ok(pb::Label::Ham) => spamflow_core::Label::Ham,
            _ => {
                let reason = format!("verdict label {} is neither HAM nor SPAM", verdict.label);
                return self.dead_letter(&message, &reason, &mut stopping).await;
            }
        };

        let span = tracing::info_span!(
            "record_verdict",
            action = ACTION_RECORD,
            message_id = %verdict.message_id,
            label = label.as_str(),
            model_version = %verdict.model_version,
            redelivered = tracing::field::Empty,
        );
        let recorded = self
            .record(&key, label.as_str(), &verdict, &mut stopping)
            .instrument(span)
            .await;
        if !matches!(recorded, Handled::Done) {
            return recorded;
        }

        let decision = self.policy.decide(label, verdict.spam_probability);
        let Some(action) = decision.action else {
            tracing::debug!(
                message_id = %verdict.message_id,
                band = decision.band.as_str(),
                "Verdict needs no change in the mailbox"
            );
            return Handled::Done;
        };
        let span = tracing::info_span!(
            "apply_action",
            action = action.kind().as_str(),
            message_id = %verdict.message_id,
            band = decision.band.as_str(),
            dry_run = self.gmail.as_ref().is_some_and(|gmail| gmail.is_dry_run()),
            outcome = tracing::field::Empty,
            changes = tracing::field::Empty,
        );
        self.act(&verdict, &action, decision.band, &mut stopping)
            .instrument(span)
            .await
    }

    /// Applies a Gmail action once per message and action, retrying failures with backoff
    /// until they succeed or shutdown begins.
    async fn act(
        &self,
        verdict: &pb::VerdictEvent,
        action: &Action,
        band: Band,
        stopping: &mut Stopping,
    ) -> Handled {
        let kind = action.kind().as_str();
        let message_id = verdict.message_id.as_str();
        let Some(gmail) = &self.gmail else {
            tracing::debug!(
                message_id,
                action = kind,
                band = band.as_str(),
                "Gmail actions are off; logging the action only"
            );
            record_outcome(outcome::LOGGED, None);
            count_action(kind, outcome::LOGGED);
            return Handled::Done;
        };
        if !gmail.has_mailbox(&verdict.mailbox) {
            tracing::debug!(
                message_id,
                action = kind,
                band = band.as_str(),
                "No Gmail client for the verdict's mailbox; logging the action only"
            );
            record_outcome(outcome::NO_MAILBOX, None);
            count_action(kind, outcome::NO_MAILBOX);
            return Handled::Done;
        }

        let key = action_key(&verdict.mailbox, message_id, kind);
        // Held until the action is recorded, so a second delivery handled at the same time
        // finds the record instead of applying the action again.
        let _acting = self.acting.lock(&key).await;
        if !gmail.is_dry_run() {
            let Some(recorded) = self
                .retry_store("read the action record", message_id, stopping, || {
                    self.store.value(&key)
                })
                .await
            else {
                return Handled::Interrupted;
            };
            if recorded.is_some() {
                tracing::debug!(
                    message_id,
                    action = kind,
                    "Action already applied by an earlier delivery"
                );
                record_outcome(outcome::DUPLICATE, None);
                count_action(kind, outcome::DUPLICATE);
                return Handled::Done;
            }
        }

        let backoff = Backoff::default();
        let mut attempt = 0;
        let result = loop {
            match gmail
                .apply(&self.store, &verdict.mailbox, message_id, action)
                .await
            {
                Ok(result) => break result,
                Err(error) => {
                    count_action(kind, outcome::FAILED);
                    if error.is_transient() {
                        tracing::warn!(%error, message_id, action = kind, attempt, "Failed to apply the Gmail action; retrying while the partition waits");
                    } else {
                        // Retrying cannot fix settings, so an operator must act (for example
                        // grant the gmail.modify scope); the partition waits until then.
                        tracing::error!(%error, message_id, action = kind, attempt, "Failed to apply the Gmail action; retrying while the partition waits");
                    }
                    if !pipeline::sleep_or_stop(&backoff, attempt, stopping).await {
                        return Handled::Interrupted;
                    }
                    attempt += 1;
                }
            }
        };

        let (name, changes) = match &result {
            Outcome::Applied(changes) => (outcome::APPLIED, changes.to_string()),
            Outcome::Unchanged => (outcome::UNCHANGED, "none".to_owned()),
            Outcome::DryRun {
                changes,
                create_label,
            } => {
                match create_label {
                    Some(label) => {
                        tracing::info!(message_id, action = kind, %label, "Dry run: would create the label and add it to the message")
                    }
                    None => {
                        tracing::info!(message_id, action = kind, %changes, "Dry run: would change the message's labels")
                    }
                }
                record_outcome(outcome::DRY_RUN, Some(&changes.to_string()));
                count_action(kind, outcome::DRY_RUN);
                return Handled::Done;
            }
            Outcome::NotFound => {
                tracing::warn!(
                    message_id,
                    action = kind,
                    "Gmail message not found, probably deleted; skipping the action"
                );
                record_outcome(outcome::NOT_FOUND, None);
                count_action(kind, outcome::NOT_FOUND);
                return Handled::Done;
            }
        };
        if self
            .retry_store("record the applied action", message_id, stopping, || {
                self.store.set_value(&key, &changes, None)
            })
            .await
            .is_none()
        {
            return Handled::Interrupted;
        }
        tracing::debug!(message_id, action = kind, %changes, "Applied the Gmail action");
        record_outcome(name, Some(&changes));
        count_action(kind, name);
        Handled::Done
    }

    /// Runs a store operation until it succeeds, with backoff, or returns `None` once
    /// shutdown begins.
    async fn retry_store<T, F, Fut>(
        &self,
        description: &str,
        message_id: &str,
        stopping: &mut Stopping,
        operation: F,
    ) -> Option<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, spamflow_runtime::store::StoreError>>,
    {
        let backoff = Backoff::default();
        let mut attempt = 0;
        loop {
            match operation().await {
                Ok(value) => return Some(value),
                Err(error) => {
                    tracing::warn!(%error, message_id, attempt, "Failed to {description}; retrying");
                    if !pipeline::sleep_or_stop(&backoff, attempt, stopping).await {
                        return None;
                    }
                    attempt += 1;
                }
            }
        }
    }

    /// Records the verdict once per message, retrying the store with backoff.
    async fn record(
        &self,
        key: &str,
        label: &str,
        verdict: &pb::VerdictEvent,
        stopping: &mut Stopping,
    ) -> Handled {
        let backoff = Backoff::default();
        let mut attempt = 0;
        loop {
            match self.store.record_verdict(key, label).await {
                Ok(first) => {
                    tracing::Span::current().record("redelivered", !first);
                    metrics::global()
                        .actions
                        .get_or_create(&metrics::ActionLabels {
                            action: ACTION_RECORD.to_owned(),
                            outcome: if first { "applied" } else { "duplicate" }.to_owned(),
                        })
                        .inc();
                    tracing::debug!(
                        message_id = %verdict.message_id,
                        label,
                        reason = %verdict.reason,
                        model_version = %verdict.model_version,
                        redelivered = !first,
                        "Recorded verdict"
                    );
                    return Handled::Done;
                }
                Err(error) => {
                    tracing::warn!(%error, message_id = %verdict.message_id, attempt, "Failed to record verdict; retrying");
                    if !pipeline::sleep_or_stop(&backoff, attempt, stopping).await {
                        return Handled::Interrupted;
                    }
                    attempt += 1;
                }
            }
        }
    }

    async fn dead_letter(
        &self,
        message: &OwnedMessage,
        reason: &str,
        stopping: &mut Stopping,
    ) -> Handled {
        pipeline::dead_letter(&self.producer, &self.topics.dlq, message, reason, stopping).await
    }
}

/// Returns the store key that records `action` as applied to a message.
pub fn action_key(mailbox: &str, message_id: &str, action: &str) -> String {
    format!("action:{}:{action}", record_key(mailbox, message_id))
}

fn count_action(action: &str, outcome: &str) {
    metrics::global()
        .actions
        .get_or_create(&metrics::ActionLabels {
            action: action.to_owned(),
            outcome: outcome.to_owned(),
        })
        .inc();
}

/// Records the outcome, and the label changes when there are any, on the `apply_action` span.
fn record_outcome(outcome: &str, changes: Option<&str>) {
    let span = tracing::Span::current();
    span.record("outcome", outcome);
    if let Some(changes) = changes {
        span.record("changes", changes);
    }
}

/// Consumes the verdicts topic until `stopping` is raised.
///
/// # Errors
///
/// Fails when the consumer cannot be created or subscribed, or consumption fails.
pub async fn run(
    config: &Config,
    handler: ActionHandler,
    stopping: Stopping,
) -> anyhow::Result<()> {
    let consumer = spamflow_runtime::kafka::subscribed_consumer(
        &config.kafka,
        &config.group_id,
        &handler.topics.verdicts,
        handler.joined.clone(),
        handler.readiness.clone(),
    )?;
    let handler = &handler;
    pipeline::consume_in_order(&consumer, config.concurrency, stopping.clone(), |message| {
        handler.handle(message, stopping.clone())
    })
    .await?;
    tracing::info!("Action handler stopped");
    Ok(())
}
