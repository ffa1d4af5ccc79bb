//! The action handler: consumes verdicts and applies the policy for each, idempotently by
//! message.
//!
//! For now the policy has one action, `record`: log the verdict at debug level and record it
//! in the store under `mailbox/message-id`, unless a verdict for that message is already
//! recorded. A redelivered verdict therefore changes nothing, and the store contains exactly one
//! verdict per message however often Kafka delivers it.
//!
//! Each verdict is traced: `handle_verdict` continues the trace from the record's headers and
//! `record_verdict` covers the action.
//!
//! NOTE: Gmail actions (labels, moving to SPAM) are not implemented yet.

#![forbid(unsafe_code)]

pub mod config;
pub mod policy;

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

/// Default consumer group.
pub const DEFAULT_GROUP_ID: &str = "spamflow-action-handler";
/// Default address of the HTTP port for /metrics and /healthz.
pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:9405";
/// The one action the policy has so far.
const ACTION_RECORD: &str = "record";

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
    /// Kafka consumer group.
    #[arg(long, env = "SPAMFLOW_GROUP_ID", default_value = DEFAULT_GROUP_ID)]
    pub group_id: String,
    /// Records handled at once; offsets are still stored in order.
    #[arg(long, env = "SPAMFLOW_CONCURRENCY", default_value_t = 32)]
    pub concurrency: usize,
    /// Address of the HTTP port serving /metrics and /healthz. The binary serves it; `run`
    /// does not.
    #[arg(long, env = "SPAMFLOW_HTTP_ADDR", default_value = DEFAULT_HTTP_ADDR)]
    pub http_addr: SocketAddr,
}

/// Applies verdicts.
#[derive(Clone)]
pub struct ActionHandler {
    store: Store,
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
    /// # Errors
    ///
    /// Fails when the Kafka producer for the dead-letter topic cannot be created.
    pub fn new(config: &Config, store: Store) -> anyhow::Result<Self> {
        let producer: FutureProducer = config
            .kafka
            .producer_config()?
            .create()
            .context("failed to create the Kafka producer")?;
        Ok(Self {
            store,
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
            Ok(pb::Label::Spam) => "spam",
            Ok(pb::Label::Ham) => "ham",
            _ => {
                let reason = format!("verdict label {} is neither HAM nor SPAM", verdict.label);
                return self.dead_letter(&message, &reason, &mut stopping).await;
            }
        };

        let span = tracing::info_span!(
            "record_verdict",
            action = ACTION_RECORD,
            message_id = %verdict.message_id,
            label,
            model_version = %verdict.model_version,
            redelivered = tracing::field::Empty,
        );
        self.record(&key, label, &verdict, &mut stopping)
            .instrument(span)
            .await
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
