//! The trainer: the learning loop of spamflow.
//!
//! It consumes users' corrections (`FeedbackEvent`s) from the feedback topic at least once and,
//! for each one:
//!
//! 1. stores the message as `.eml` under `<model dir>/feedback/<label>/`, idempotently by record
//!    key, so the latest label of a message wins ([`store`]);
//! 2. updates the Bloom filter over gRPC: confirmed spam has its fingerprints inserted and any
//!    ham override removed, and ham gets ham overrides, which win over a Bloom match;
//! 3. only then lets the consume loop store the record's offset.
//!
//! After `--retrain-after` new corrections, or after `--retrain-interval` with at least one, it
//! refits the base model on the base corpus plus every stored correction, without
//! cross-validation ([`retrain`]). It writes `model-<version>.json` atomically and announces
//! it on the compacted models topic, keyed by the model name. Detectors follow that topic and
//! swap the new version in.
//!
//! Records are handled one at a time, in order, so two corrections of one message (one
//! partition, since the key is `mailbox/message-id`) are applied in the order users made them.

#![forbid(unsafe_code)]

pub mod correction;
pub mod retrain;
pub mod store;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use prost::Message as _;
use rdkafka::Message as _;
use rdkafka::message::OwnedMessage;
use rdkafka::producer::FutureProducer;
use spamflow_core::{Label, Limits, Model};
use spamflow_proto::v1 as pb;
use spamflow_proto::v1::bloom_filter_client::BloomFilterClient;
use spamflow_runtime::grpc::TracedChannel;
use spamflow_runtime::http::Readiness;
use spamflow_runtime::kafka::{KafkaArgs, Topics};
use spamflow_runtime::metrics::{self, FeedbackLabels};
use spamflow_runtime::pipeline::{self, Backoff, Handled, Stopping};
use spamflow_runtime::propagation;
use tokio::sync::watch;
use tonic::Code;
use tracing::Instrument as _;

use crate::correction::Correction;
use crate::retrain::{Pending, Schedule};
use crate::store::{CorrectionStore, Stored};

/// Default consumer group.
pub const DEFAULT_GROUP_ID: &str = "spamflow-trainer";
/// Default address of the HTTP port for /metrics and /healthz.
pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:9406";
/// Default folder of model files and stored corrections.
pub const DEFAULT_MODEL_DIR: &str = "/var/lib/spamflow/models";

/// Configuration of the trainer service.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "trainer",
    version,
    about = "Learns from user corrections and announces new model versions"
)]
pub struct Config {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Kafka consumer group.
    #[arg(long, env = "SPAMFLOW_GROUP_ID", default_value = DEFAULT_GROUP_ID)]
    pub group_id: String,
    /// Folder for model files (`model-<version>.json`) and stored corrections (`feedback/`).
    /// Detectors read the model files from the path in each announcement, so they must see
    /// this folder at the same path.
    #[arg(long, env = "SPAMFLOW_MODEL_DIR", default_value = DEFAULT_MODEL_DIR)]
    pub model_dir: PathBuf,
    /// Model whose penalty, calibration, threshold and feature settings every retrain reuses;
    /// the shipped default model when absent.
    #[arg(long, env = "SPAMFLOW_BASE_MODEL")]
    pub base_model: Option<PathBuf>,
    /// Labelled corpus to train on besides the corrections: a folder with `ham/` and `spam/`
    /// subfolders of one message per file. Give it only messages kept out of evaluation (the
    /// repository's data/corpus also contains the TEST split). Without it, retraining needs
    /// corrections of both labels.
    #[arg(long, env = "SPAMFLOW_BASE_CORPUS")]
    pub base_corpus: Option<PathBuf>,
    /// Retrain as soon as this many new corrections are stored.
    #[arg(
        long,
        env = "SPAMFLOW_RETRAIN_AFTER",
        default_value_t = 50,
        value_parser = spamflow_runtime::cli::whole_number_from(1u64)
    )]
    pub retrain_after: u64,
    /// Retrain when this much time has passed since the last retrain with at least one new
    /// correction, as a number with a unit: 90s, 15m, 1h.
    #[arg(
        long,
        env = "SPAMFLOW_RETRAIN_INTERVAL",
        default_value = "1h",
        value_parser = parse_duration
    )]
    pub retrain_interval: Duration,
    /// Key of the announcements on the models topic; detectors follow one model name.
    #[arg(
        long,
        env = "SPAMFLOW_MODEL_NAME",
        default_value = spam_detector::updates::DEFAULT_MODEL_NAME,
        value_parser = spamflow_runtime::cli::parse_non_empty
    )]
    pub model_name: String,
    /// URL of the bloom-filter gRPC service.
    #[arg(
        long,
        env = "SPAMFLOW_BLOOM_URL",
        default_value = "http://127.0.0.1:50052",
        value_parser = spamflow_runtime::cli::parse_grpc_url
    )]
    pub bloom_url: String,
    /// Deadline of each gRPC call, in milliseconds, 1 or more.
    #[arg(
        long,
        env = "SPAMFLOW_RPC_TIMEOUT_MS",
        default_value_t = 2_000,
        value_parser = spamflow_runtime::cli::whole_number_from(1u64)
    )]
    pub rpc_timeout_ms: u64,
    /// Largest message accepted, in bytes; a larger one goes to the dead-letter topic.
    #[arg(
        long,
        env = "SPAMFLOW_MAX_MESSAGE_BYTES",
        default_value_t = Limits::DEFAULT_MAX_MESSAGE_BYTES,
        value_parser = spamflow_runtime::cli::whole_number_from(1usize)
    )]
    pub max_message_bytes: usize,
    /// Listen address (host:port) of the HTTP server for /metrics and /healthz.
    #[arg(long, env = "SPAMFLOW_HTTP_ADDR", default_value = DEFAULT_HTTP_ADDR)]
    pub http_addr: SocketAddr,
}

/// Parses a duration with a unit: `250ms`, `90s`, `15m` or `2h`.
///
/// # Errors
///
/// Returns a message naming the expected form for anything else.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let invalid = || {
        format!(
            "invalid duration `{text}`: expected a whole number with a unit ms, s, m or h, such as 90s or 15m"
        )
    };
    let number: u64 = number.parse().map_err(|_| invalid())?;
    let duration = match unit {
        "ms" => Duration::from_millis(number),
        "s" => Duration::from_secs(number),
        "m" => Duration::from_secs(number.saturating_mul(60)),
        "h" => Duration::from_secs(number.saturating_mul(3600)),
        _ => return Err(invalid()),
    };
    if duration.is_zero() {
        return Err(format!("invalid duration `{text}`: must be above zero"));
    }
    Ok(duration)
}

impl Config {
    /// Loads the base model.
    ///
    /// # Errors
    ///
    /// Fails naming the file when it cannot be read or is not a valid model.
    pub fn load_base_model(&self) -> anyhow::Result<Model> {
        match &self.base_model {
            None => {
                spam_detector::default_model().context("failed to load the shipped default model")
            }
            Some(path) => {
                spam_detector::load_model_file(path, "--base-model (SPAMFLOW_BASE_MODEL)")
            }
        }
    }

    /// Checks settings clap cannot: that the base corpus has its two folders.
    ///
    /// # Errors
    ///
    /// Returns a message naming the flag and the missing folder.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(corpus) = &self.base_corpus {
            for label in [Label::Ham, Label::Spam] {
                let dir = corpus.join(label.as_str());
                if !dir.is_dir() {
                    return Err(format!(
                        "invalid value '{}' for '--base-corpus <BASE_CORPUS>': {} is not a folder; \
                         the base corpus needs ham/ and spam/ subfolders",
                        corpus.display(),
                        dir.display()
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Handles corrections: stores them and updates the Bloom filter.
#[derive(Clone)]
pub struct Trainer {
    store: CorrectionStore,
    bloom: BloomFilterClient<TracedChannel>,
    producer: FutureProducer,
    topics: Topics,
    limits: Limits,
    rpc_timeout: Duration,
    pending: Arc<Pending>,
    schedule: Schedule,
    /// True once the consumer has joined its group.
    joined: watch::Sender<bool>,
    /// Broker connectivity and group membership, for /healthz.
    readiness: Readiness,
}

/// The end of a correction's Bloom filter update.
enum BloomUpdate {
    Done,
    Interrupted,
}

impl Trainer {
    /// Opens the correction store, loads the base model and builds the clients.
    ///
    /// # Errors
    ///
    /// Fails naming the setting or folder when something is invalid or unreadable.
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        let store = CorrectionStore::open(&config.model_dir).with_context(|| {
            format!(
                "failed to open the model folder {} (--model-dir, SPAMFLOW_MODEL_DIR)",
                config.model_dir.display()
            )
        })?;
        let parent = Arc::new(config.load_base_model()?);

        let pending = Arc::new(Pending::default());
        let waiting = retrain::pending_at_start(&store, &config.model_dir)?;
        if waiting > 0 {
            tracing::info!(
                corrections = waiting,
                "Corrections newer than the newest model are waiting for a retrain"
            );
            pending.add(waiting);
        }

        let connect_timeout = Duration::from_millis(config.rpc_timeout_ms);
        let bloom = spamflow_runtime::grpc::traced_channel(&config.bloom_url, connect_timeout)
            .context("invalid SPAMFLOW_BLOOM_URL")?;
        let producer: FutureProducer = config
            .kafka
            .producer_config()?
            .create()
            .context("failed to create the Kafka producer")?;

        let limits = Limits {
            max_message_bytes: config.max_message_bytes,
        };
        let topics = config.kafka.topics();
        let schedule = Schedule {
            after_corrections: config.retrain_after,
            interval: config.retrain_interval,
            parent,
            base_corpus: config.base_corpus.clone(),
            model_dir: config.model_dir.clone(),
            limits,
            model_name: config.model_name.clone(),
            models_topic: topics.models.clone(),
        };
        Ok(Self {
            store,
            bloom: BloomFilterClient::new(bloom),
            producer,
            topics,
            limits,
            rpc_timeout: Duration::from_millis(config.rpc_timeout_ms),
            pending,
            schedule,
            joined: watch::Sender::new(false),
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

    /// Handles one feedback record until the correction is stored and the Bloom filter
    /// updated, or the record is dead-lettered.
    pub async fn handle(&self, message: OwnedMessage, stopping: Stopping) -> Handled {
        let span = tracing::info_span!(
            "handle_feedback",
            otel.kind = "consumer",
            messaging.system = "kafka",
            topic = message.topic(),
            partition = message.partition(),
            offset = message.offset(),
            message_id = tracing::field::Empty,
            label = tracing::field::Empty,
        );
        propagation::continue_from_kafka(&span, message.headers());
        self.apply(message, stopping).instrument(span).await
    }

    async fn apply(&self, message: OwnedMessage, mut stopping: Stopping) -> Handled {
        let event = match message.payload().map(pb::FeedbackEvent::decode) {
            Some(Ok(event)) => event,
            Some(Err(error)) => {
                let reason = format!("value is not a spamflow.v1.FeedbackEvent: {error}");
                return self.dead_letter(&message, &reason, &mut stopping).await;
            }
            None => {
                return self
                    .dead_letter(&message, "record has no value", &mut stopping)
                    .await;
            }
        };
        let correction = match Correction::from_event(event, self.limits) {
            Ok(correction) => correction,
            Err(error) => {
                return self
                    .dead_letter(&message, &error.to_string(), &mut stopping)
                    .await;
            }
        };
        let span = tracing::Span::current();
        span.record("message_id", correction.message_id.as_str());
        span.record("label", correction.label.as_str());

        let stored = match &correction.raw {
            Some(raw) => match self.store_correction(&correction, raw, &mut stopping).await {
                Some(stored) => Some(stored),
                None => return Handled::Interrupted,
            },
            None => None,
        };
        if let BloomUpdate::Interrupted = self.update_bloom(&correction, &mut stopping).await {
            return Handled::Interrupted;
        }

        let outcome = match stored {
            Some(Stored::New) => {
                self.pending.add(1);
                "stored"
            }
            Some(Stored::Unchanged) => "duplicate",
            None => "not_stored",
        };
        metrics::global()
            .feedback
            .get_or_create(&FeedbackLabels {
                label: correction.label.as_str().to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
        tracing::debug!(message_id = %correction.message_id, label = %correction.label, outcome, "Handled a correction");
        Handled::Done
    }

    /// Stores the correction's message, retrying disk errors with backoff. Returns `None` when
    /// shutdown interrupted it.
    async fn store_correction(
        &self,
        correction: &Correction,
        raw: &[u8],
        stopping: &mut Stopping,
    ) -> Option<Stored> {
        let span = tracing::info_span!("store_correction", message_id = %correction.message_id);
        let backoff = Backoff::default();
        let mut attempt = 0;
        loop {
            let result = {
                let _entered = span.enter();
                // A small file write and fsync; not worth a blocking-pool hop per correction.
                tokio::task::block_in_place(|| {
                    self.store.save(&correction.key, correction.label, raw)
                })
            };
            match result {
                Ok(stored) => return Some(stored),
                Err(error) => {
                    tracing::warn!(%error, message_id = %correction.message_id, attempt, "Failed to store a correction; retrying");
                    if !pipeline::sleep_or_stop(&backoff, attempt, stopping).await {
                        return None;
                    }
                    attempt = attempt.saturating_add(1);
                }
            }
        }
    }

    /// Applies the correction to the Bloom filter: spam is inserted and loses any ham
    /// override, ham gets an override. Retries failed calls with backoff.
    async fn update_bloom(&self, correction: &Correction, stopping: &mut Stopping) -> BloomUpdate {
        if correction.fingerprints.is_empty() {
            return BloomUpdate::Done;
        }
        let span = tracing::info_span!(
            "update_bloom",
            message_id = %correction.message_id,
            label = correction.label.as_str(),
            fingerprints = correction.fingerprints.len(),
        );
        let fingerprints = correction::to_proto(&correction.fingerprints);
        let backoff = Backoff::default();
        let mut attempt = 0;
        loop {
            let result = self
                .call_bloom(correction.label, &fingerprints)
                .instrument(span.clone())
                .await;
            match result {
                Ok(()) => return BloomUpdate::Done,
                // Fingerprints were validated here, so a rejection is a bug, not bad input.
                // Retrying would loop forever; the stored correction still trains the model.
                Err(status) if status.code() == Code::InvalidArgument => {
                    tracing::error!(
                        error = status.message(),
                        error_code = "bloom_rejected_fingerprints",
                        message_id = %correction.message_id,
                        "Bloom filter rejected fingerprints"
                    );
                    return BloomUpdate::Done;
                }
                Err(status) => {
                    tracing::warn!(
                        code = ?status.code(),
                        error = status.message(),
                        message_id = %correction.message_id,
                        attempt,
                        "Bloom filter call failed; retrying"
                    );
                    if !pipeline::sleep_or_stop(&backoff, attempt, stopping).await {
                        return BloomUpdate::Interrupted;
                    }
                    attempt = attempt.saturating_add(1);
                }
            }
        }
    }

    async fn call_bloom(
        &self,
        label: Label,
        fingerprints: &[pb::Fingerprint],
    ) -> Result<(), tonic::Status> {
        let mut bloom = self.bloom.clone();
        let request = |fingerprints: &[pb::Fingerprint]| {
            let mut request = tonic::Request::new(pb::HamOverridesRequest {
                fingerprints: fingerprints.to_vec(),
            });
            request.set_timeout(self.rpc_timeout);
            request
        };
        match label {
            Label::Spam => {
                let mut insert = tonic::Request::new(pb::InsertRequest {
                    fingerprints: fingerprints.to_vec(),
                });
                insert.set_timeout(self.rpc_timeout);
                bloom.insert(insert).await?;
                bloom.remove_ham_overrides(request(fingerprints)).await?;
            }
            Label::Ham => {
                bloom.add_ham_overrides(request(fingerprints)).await?;
            }
        }
        Ok(())
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

/// Consumes the feedback topic and runs the retrain schedule until `stopping` is raised.
///
/// # Errors
///
/// Fails when the consumer cannot be created or subscribed, or consumption fails.
pub async fn run(config: &Config, trainer: Trainer, stopping: Stopping) -> anyhow::Result<()> {
    let consumer = spamflow_runtime::kafka::subscribed_consumer(
        &config.kafka,
        &config.group_id,
        &trainer.topics.feedback,
        trainer.joined.clone(),
        trainer.readiness.clone(),
    )?;
    let schedule = tokio::spawn(retrain::run_schedule(
        trainer.schedule.clone(),
        trainer.store.clone(),
        trainer.pending.clone(),
        trainer.producer.clone(),
        stopping.clone(),
    ));
    let handler = &trainer;
    // One record at a time keeps the corrections of one message in order.
    let result = pipeline::consume_in_order(&consumer, 1, stopping.clone(), |message| {
        handler.handle(message, stopping.clone())
    })
    .await;
    // The schedule stops with the same flag; an error above must not leave it running.
    schedule.abort();
    let _ = schedule.await;
    result?;
    tracing::info!("Trainer stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_need_a_unit() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        for bad in ["90", "s", "1.5h", "-1s", "10d", ""] {
            let error = parse_duration(bad).unwrap_err();
            assert!(error.contains("expected a whole number"), "{bad}: {error}");
        }
        assert!(parse_duration("0s").unwrap_err().contains("above zero"));
    }
}
