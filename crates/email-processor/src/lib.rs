//! The email processor: consumes raw emails from Kafka, parses each once, calls the spam
//! detector and the Bloom filter concurrently over gRPC with deadlines, combines their results
//! into a verdict and produces it to the verdicts topic.
//!
//! Delivery is at least once. A record's offset is stored only after its verdict (or its
//! dead-letter copy) is acknowledged by Kafka. Poison records, meaning an undecodable event,
//! bytes that are not an email, or an email the detector rejects as invalid, go to the
//! dead-letter topic with the reason in a header. A slow or failed detector or Bloom filter is
//! retried with backoff: the partition pauses, nothing is dropped.
//!
//! Each record is traced: `process_email` continues the trace from the record's headers, the
//! gRPC calls carry it on to the detector and the Bloom filter, and `produce_verdict` puts it
//! into the verdict's headers for the action handler.
//!
//! NOTE: the detector parses the message again from raw bytes, because `Classify` takes raw
//! RFC 5322 bytes; the processor's own parse validates the message and yields fingerprints.

#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use prost::Message as _;
use rdkafka::Message;
use rdkafka::message::OwnedHeaders;
use rdkafka::message::OwnedMessage;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use spamflow_core::fingerprint::FingerprintKind;
use spamflow_core::{Email, Limits, verdict};
use spamflow_proto::v1 as pb;
use spamflow_proto::v1::bloom_filter_client::BloomFilterClient;
use spamflow_proto::v1::spam_detector_client::SpamDetectorClient;
use spamflow_runtime::grpc::TracedChannel;
use spamflow_runtime::http::Readiness;
use spamflow_runtime::kafka::{KafkaArgs, Topics, record_key};
use spamflow_runtime::pipeline::{self, Backoff, Handled, Stopping};
use spamflow_runtime::{metrics, propagation};
use tokio::sync::watch;
use tonic::{Code, Status};
use tracing::Instrument as _;

/// Default consumer group.
pub const DEFAULT_GROUP_ID: &str = "spamflow-email-processor";
/// Default address of the HTTP port for /metrics and /healthz.
pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:9402";

/// Configuration of the email-processor service.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "email-processor",
    version,
    about = "Judges raw emails from Kafka"
)]
pub struct Config {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Kafka consumer group.
    #[arg(long, env = "SPAMFLOW_GROUP_ID", default_value = DEFAULT_GROUP_ID)]
    pub group_id: String,
    /// URL of the spam-detector gRPC service.
    #[arg(
        long,
        env = "SPAMFLOW_DETECTOR_URL",
        default_value = "http://127.0.0.1:50051",
        value_parser = spamflow_runtime::cli::parse_grpc_url
    )]
    pub detector_url: String,
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
    /// Records handled at once, 1 or more; offsets are still stored in order.
    #[arg(
        long,
        env = "SPAMFLOW_CONCURRENCY",
        default_value_t = 32,
        value_parser = spamflow_runtime::cli::whole_number_from(1usize)
    )]
    pub concurrency: usize,
    /// Largest message accepted, in bytes; larger ones go to the dead-letter topic.
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

/// Everything one record needs: clients, topics and limits. Cheap to share by reference.
#[derive(Clone)]
pub struct Processor {
    producer: FutureProducer,
    detector: SpamDetectorClient<TracedChannel>,
    bloom: BloomFilterClient<TracedChannel>,
    topics: Topics,
    limits: Limits,
    rpc_timeout: Duration,
    /// True once the consumer has joined its group.
    joined: watch::Sender<bool>,
    /// Broker connectivity and group membership, for /healthz.
    readiness: Readiness,
}

/// Reasons a record is poison.
#[derive(Debug, thiserror::Error)]
enum Poison {
    #[error("record has no value")]
    NoValue,
    #[error("value is not a spamflow.v1.EmailEvent: {0}")]
    Decode(#[from] prost::DecodeError),
    #[error("email is invalid: {0}")]
    Email(#[from] spamflow_core::EmailError),
    #[error("spam-detector rejected the email: {0}")]
    Rejected(String),
}

/// The outcome of one gRPC attempt.
enum Attempt<T> {
    Ok(T),
    Poison(Poison),
    Retry(Status),
}

impl Processor {
    /// Builds the clients. Connections open lazily, so the processor may start before the
    /// services it calls.
    ///
    /// # Errors
    ///
    /// Fails naming the setting when a URL or Kafka setting is invalid.
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        let connect_timeout = Duration::from_millis(config.rpc_timeout_ms);
        let detector =
            spamflow_runtime::grpc::traced_channel(&config.detector_url, connect_timeout)
                .context("invalid SPAMFLOW_DETECTOR_URL")?;
        let bloom = spamflow_runtime::grpc::traced_channel(&config.bloom_url, connect_timeout)
            .context("invalid SPAMFLOW_BLOOM_URL")?;
        let producer: FutureProducer = config
            .kafka
            .producer_config()?
            .create()
            .context("failed to create the Kafka producer")?;
        Ok(Self {
            producer,
            detector: SpamDetectorClient::new(detector),
            bloom: BloomFilterClient::new(bloom),
            topics: config.kafka.topics(),
            limits: Limits {
                max_message_bytes: config.max_message_bytes,
            },
            rpc_timeout: Duration::from_millis(config.rpc_timeout_ms),
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

    /// Handles one raw-email record until its verdict or dead-letter copy is acknowledged.
    pub async fn handle(&self, message: OwnedMessage, stopping: Stopping) -> Handled {
        let span = tracing::info_span!(
            "process_email",
            otel.kind = "consumer",
            messaging.system = "kafka",
            topic = message.topic(),
            partition = message.partition(),
            offset = message.offset(),
            message_id = tracing::field::Empty,
            label = tracing::field::Empty,
        );
        propagation::continue_from_kafka(&span, message.headers());
        self.handle_in_span(message, stopping)
            .instrument(span)
            .await
    }

    async fn handle_in_span(&self, message: OwnedMessage, mut stopping: Stopping) -> Handled {
        match self.judge(&message, &mut stopping).await {
            Ok(Some(verdict)) => {
                let span = tracing::info_span!(
                    "produce_verdict",
                    otel.kind = "producer",
                    messaging.system = "kafka",
                    topic = %self.topics.verdicts,
                    message_id = %verdict.message_id,
                    model_version = %verdict.model_version,
                );
                self.produce_verdict(&message, verdict, &mut stopping)
                    .instrument(span)
                    .await
            }
            Ok(None) => Handled::Interrupted,
            Err(poison) => {
                let span = tracing::info_span!(
                    "dead_letter",
                    otel.kind = "producer",
                    messaging.system = "kafka",
                    topic = %self.topics.dlq,
                );
                pipeline::dead_letter(
                    &self.producer,
                    &self.topics.dlq,
                    &message,
                    &poison.to_string(),
                    &mut stopping,
                )
                .instrument(span)
                .await
            }
        }
    }

    /// Decides the verdict of a record; `Ok(None)` when shutdown interrupted it.
    async fn judge(
        &self,
        message: &OwnedMessage,
        stopping: &mut Stopping,
    ) -> Result<Option<pb::VerdictEvent>, Poison> {
        let payload = message.payload().ok_or(Poison::NoValue)?;
        let event = pb::EmailEvent::decode(payload)?;
        tracing::Span::current().record("message_id", event.message_id.as_str());
        let email = Email::parse(&event.raw, self.limits)?;
        let fingerprints: Vec<pb::Fingerprint> =
            spamflow_runtime::convert::body_fingerprints(&email.fingerprint_text());

        let backoff = Backoff::default();
        let mut attempt = 0;
        let (classified, matches) = loop {
            let (classified, matches) =
                tokio::join!(self.classify(&event), self.check_bloom(&fingerprints));
            match (classified, matches) {
                (Attempt::Poison(poison), _) | (_, Attempt::Poison(poison)) => return Err(poison),
                (Attempt::Ok(classified), Attempt::Ok(matches)) => break (classified, matches),
                (Attempt::Retry(status), _) | (_, Attempt::Retry(status)) => {
                    tracing::warn!(
                        message_id = %event.message_id,
                        code = ?status.code(),
                        error = status.message(),
                        attempt,
                        "gRPC call failed; retrying"
                    );
                    if !pipeline::sleep_or_stop(&backoff, attempt, stopping).await {
                        return Ok(None);
                    }
                    attempt += 1;
                }
            }
        };

        let kinds: Vec<FingerprintKind> = matches
            .iter()
            .filter_map(|print| match pb::FingerprintKind::try_from(print.kind) {
                Ok(pb::FingerprintKind::BodyDigest) => Some(FingerprintKind::BodyDigest),
                Ok(pb::FingerprintKind::NearDuplicate) => Some(FingerprintKind::NearDuplicate),
                _ => None,
            })
            .collect();
        let decision = verdict::decide(classified.spam_probability, classified.threshold, &kinds);
        tracing::Span::current().record("label", decision.label.as_str());
        Ok(Some(pb::VerdictEvent {
            mailbox: event.mailbox,
            message_id: event.message_id,
            label: spam_detector::label_to_proto(decision.label) as i32,
            spam_probability: classified.spam_probability,
            model_version: classified.model_version,
            threshold: classified.threshold,
            bloom_matches: matches,
            top_features: classified.top_features,
            true_label: event.true_label,
            published_at_ms: event.published_at_ms,
            decided_at_ms: spamflow_runtime::now_ms(),
            reason: decision.reason.as_str().to_owned(),
        }))
    }

    async fn classify(&self, event: &pb::EmailEvent) -> Attempt<pb::ClassifyResponse> {
        let mut request = tonic::Request::new(pb::ClassifyRequest {
            content: Some(pb::classify_request::Content::Raw(event.raw.clone())),
            message_id: event.message_id.clone(),
        });
        request.set_timeout(self.rpc_timeout);
        match self.detector.clone().classify(request).await {
            Ok(response) => Attempt::Ok(response.into_inner()),
            Err(status) if status.code() == Code::InvalidArgument => {
                Attempt::Poison(Poison::Rejected(status.message().to_owned()))
            }
            Err(status) => Attempt::Retry(status),
        }
    }

    async fn check_bloom(&self, fingerprints: &[pb::Fingerprint]) -> Attempt<Vec<pb::Fingerprint>> {
        if fingerprints.is_empty() {
            return Attempt::Ok(Vec::new());
        }
        let mut request = tonic::Request::new(pb::CheckRequest {
            fingerprints: fingerprints.to_vec(),
        });
        request.set_timeout(self.rpc_timeout);
        match self.bloom.clone().check(request).await {
            Ok(response) => Attempt::Ok(response.into_inner().matches),
            // Fingerprints come from this process, so a rejection is a bug, not bad input.
            // Retrying would loop forever, so the message is judged without the filter.
            Err(status) if status.code() == Code::InvalidArgument => {
                tracing::error!(
                    error = status.message(),
                    "Bloom filter rejected fingerprints"
                );
                Attempt::Ok(Vec::new())
            }
            Err(status) => Attempt::Retry(status),
        }
    }

    async fn produce_verdict(
        &self,
        message: &OwnedMessage,
        verdict: pb::VerdictEvent,
        stopping: &mut Stopping,
    ) -> Handled {
        let key = record_key(&verdict.mailbox, &verdict.message_id);
        let payload = verdict.encode_to_vec();
        let backoff = Backoff::default();
        let mut attempt = 0;
        let label = match pb::Label::try_from(verdict.label) {
            Ok(pb::Label::Spam) => "spam",
            Ok(pb::Label::Ham) => "ham",
            _ => "unspecified",
        };
        loop {
            let record = FutureRecord::to(&self.topics.verdicts)
                .key(&key)
                .payload(&payload)
                .headers(propagation::inject_kafka(OwnedHeaders::new()));
            match self
                .producer
                .send(record, Timeout::After(Duration::from_secs(30)))
                .await
            {
                Ok(_) => {
                    let metrics = metrics::global();
                    metrics.produced(&self.topics.verdicts);
                    metrics
                        .verdicts
                        .get_or_create(&metrics::VerdictLabels {
                            label: label.to_owned(),
                        })
                        .inc();
                    tracing::debug!(
                        message_id = %verdict.message_id,
                        partition = message.partition(),
                        offset = message.offset(),
                        label = verdict.label,
                        "Produced verdict"
                    );
                    return Handled::Done;
                }
                Err((error, _)) => {
                    tracing::warn!(%error, message_id = %verdict.message_id, attempt, "Failed to produce verdict; retrying");
                    if !pipeline::sleep_or_stop(&backoff, attempt, stopping).await {
                        return Handled::Interrupted;
                    }
                    attempt += 1;
                }
            }
        }
    }
}

/// Consumes the raw topic until `stopping` is raised.
///
/// # Errors
///
/// Fails when the consumer cannot be created or subscribed, or consumption fails.
pub async fn run(config: &Config, processor: Processor, stopping: Stopping) -> anyhow::Result<()> {
    let consumer = spamflow_runtime::kafka::subscribed_consumer(
        &config.kafka,
        &config.group_id,
        &processor.topics.raw,
        processor.joined.clone(),
        processor.readiness.clone(),
    )?;
    let processor = &processor;
    pipeline::consume_in_order(&consumer, config.concurrency, stopping.clone(), |message| {
        processor.handle(message, stopping.clone())
    })
    .await?;
    tracing::info!("Email processor stopped");
    Ok(())
}
