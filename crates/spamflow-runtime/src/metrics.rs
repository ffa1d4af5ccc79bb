//! Prometheus metrics of every spamflow service, in one process-wide registry.
//!
//! Every service registers the same families, so a family a service does not feed stays at
//! zero or empty in its output. In `spamctl dev`, where all services share one process, the
//! counts add up across them. Names follow the Prometheus conventions: counters end in
//! `_total`, durations are in seconds, and labels carry only ids and bounded values (topics,
//! partitions, labels, gRPC methods and codes), never message content.

use std::sync::LazyLock;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicLabels {
    pub topic: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartitionLabels {
    pub topic: String,
    pub partition: i32,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VerdictLabels {
    pub label: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabels {
    pub action: String,
    pub outcome: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GrpcLabels {
    pub method: String,
    pub code: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModelLabels {
    pub model_version: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    pub operation: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GmailCallLabels {
    pub method: String,
    pub outcome: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FeedbackLabels {
    pub label: String,
    pub outcome: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// The metric families, fed by the services and the shared plumbing.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Records received from Kafka, by topic.
    pub messages_consumed: Family<TopicLabels, Counter>,
    /// Records acknowledged by Kafka, by topic.
    pub messages_produced: Family<TopicLabels, Counter>,
    /// Verdicts produced by the email processor, by label.
    pub verdicts: Family<VerdictLabels, Counter>,
    /// Records sent to the dead-letter topic, by the topic they came from.
    pub dead_letters: Family<TopicLabels, Counter>,
    /// Verdicts applied by the action handler, by action and outcome.
    pub actions: Family<ActionLabels, Counter>,
    grpc_server_duration: HistogramFamily<GrpcLabels>,
    /// Messages behind the high watermark, per assigned partition, from librdkafka
    /// statistics.
    pub consumer_lag: Family<PartitionLabels, Gauge>,
    /// Brokers this process has an open connection to, from librdkafka statistics.
    pub kafka_brokers_up: Gauge,
    /// Share of Bloom filter bits set, in [0, 1].
    pub bloom_fill_ratio: Gauge<f64, AtomicU64>,
    /// False-positive rate estimated from the fill ratio, in [0, 1].
    pub bloom_false_positive_rate: Gauge<f64, AtomicU64>,
    /// Fingerprints inserted into the Bloom filter, counting repeats.
    pub bloom_items: Gauge,
    /// 1 for the model version the detector serves.
    pub model_info: Family<ModelLabels, Gauge>,
    /// Redis commands that failed, by store operation.
    pub redis_errors: Family<OperationLabels, Counter>,
    /// User corrections handled by the trainer, by label and outcome.
    pub feedback: Family<FeedbackLabels, Counter>,
    /// Corrections stored since the trainer's last retrain.
    pub feedback_pending: Gauge,
    /// Retrains of the trainer, by outcome.
    pub model_retrains: Family<OutcomeLabels, Counter>,
    /// Model announcements the detector read, by outcome.
    pub model_announcements: Family<OutcomeLabels, Counter>,
    /// Gmail API calls, by method and outcome.
    pub gmail_calls: Family<GmailCallLabels, Counter>,
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::default();
        let metrics = Self {
            messages_consumed: Family::default(),
            messages_produced: Family::default(),
            verdicts: Family::default(),
            dead_letters: Family::default(),
            actions: Family::default(),
            // 0.5 ms to about 16 s, doubling.
            grpc_server_duration: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.0005, 2.0, 16))
            }),
            consumer_lag: Family::default(),
            kafka_brokers_up: Gauge::default(),
            bloom_fill_ratio: Gauge::default(),
            bloom_false_positive_rate: Gauge::default(),
            bloom_items: Gauge::default(),
            model_info: Family::default(),
            redis_errors: Family::default(),
            feedback: Family::default(),
            feedback_pending: Gauge::default(),
            model_retrains: Family::default(),
            model_announcements: Family::default(),
            gmail_calls: Family::default(),
            registry: Registry::default(),
        };

        // Counters get the `_total` suffix from the encoder.
        registry.register(
            "spamflow_messages_consumed",
            "Kafka records received, by topic",
            metrics.messages_consumed.clone(),
        );
        registry.register(
            "spamflow_messages_produced",
            "Kafka records acknowledged by the broker, by topic",
            metrics.messages_produced.clone(),
        );
        registry.register(
            "spamflow_verdicts",
            "Verdicts produced, by label",
            metrics.verdicts.clone(),
        );
        registry.register(
            "spamflow_dead_letters",
            "Records sent to the dead-letter topic, by origin topic",
            metrics.dead_letters.clone(),
        );
        registry.register(
            "spamflow_actions",
            "Verdicts applied, by action and outcome",
            metrics.actions.clone(),
        );

        registry.register(
            "spamflow_grpc_server_request_duration_seconds",
            "gRPC server request latency until the response headers, by method and code",
            metrics.grpc_server_duration.clone(),
        );

        registry.register(
            "spamflow_kafka_consumer_lag",
            "Messages behind the high watermark, by topic and partition",
            metrics.consumer_lag.clone(),
        );
        registry.register(
            "spamflow_kafka_brokers_up",
            "Kafka brokers with an open connection",
            metrics.kafka_brokers_up.clone(),
        );

        registry.register(
            "spamflow_bloom_fill_ratio",
            "Share of Bloom filter bits set",
            metrics.bloom_fill_ratio.clone(),
        );
        registry.register(
            "spamflow_bloom_estimated_false_positive_rate",
            "Bloom filter false-positive rate estimated from the fill ratio",
            metrics.bloom_false_positive_rate.clone(),
        );
        registry.register(
            "spamflow_bloom_items",
            "Fingerprints inserted into the Bloom filter, counting repeats",
            metrics.bloom_items.clone(),
        );

        registry.register(
            "spamflow_model_info",
            "1 for the model version being served",
            metrics.model_info.clone(),
        );
        registry.register(
            "spamflow_redis_errors",
            "Redis commands that failed, by store operation",
            metrics.redis_errors.clone(),
        );

        registry.register(
            "spamflow_feedback",
            "User corrections handled by the trainer, by label and outcome (stored, duplicate \
             or not_stored when the event has no raw message)",
            metrics.feedback.clone(),
        );
        registry.register(
            "spamflow_feedback_pending",
            "Corrections stored since the trainer's last retrain",
            metrics.feedback_pending.clone(),
        );
        registry.register(
            "spamflow_model_retrains",
            "Retrains of the trainer, by outcome (published or failed)",
            metrics.model_retrains.clone(),
        );
        registry.register(
            "spamflow_model_announcements",
            "Model announcements the detector read, by outcome (applied, current, ignored, \
             rejected or superseded)",
            metrics.model_announcements.clone(),
        );
        registry.register(
            "spamflow_gmail_calls",
            "Gmail API call attempts, by method and outcome (ok, retried after a transient \
             error, failed)",
            metrics.gmail_calls.clone(),
        );

        Self {
            registry,
            ..metrics
        }
    }

    /// Counts one Gmail API call attempt of `method` (such as `users.messages.get`) with its
    /// outcome: `ok`, `retried` or `failed`.
    pub fn gmail_call(&self, method: &str, outcome: &str) {
        self.gmail_calls
            .get_or_create(&GmailCallLabels {
                method: method.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// Counts one record received from `topic`.
    pub fn consumed(&self, topic: &str) {
        self.messages_consumed
            .get_or_create(&TopicLabels {
                topic: topic.to_owned(),
            })
            .inc();
    }

    /// Counts one record acknowledged on `topic`.
    pub fn produced(&self, topic: &str) {
        self.messages_produced
            .get_or_create(&TopicLabels {
                topic: topic.to_owned(),
            })
            .inc();
    }

    /// Records the latency of one gRPC request to `path` (`package.Service/Method`).
    pub fn observe_grpc_request(&self, path: &str, code: &str, elapsed: Duration) {
        // Unknown paths get one series, so stray requests cannot grow the label set.
        let method = if code == "Unimplemented" {
            "unknown"
        } else {
            path
        };
        self.grpc_server_duration
            .get_or_create(&GrpcLabels {
                method: method.to_owned(),
                code: code.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// Counts a failed Redis command of `operation`.
    pub fn redis_error(&self, operation: &str) {
        self.redis_errors
            .get_or_create(&OperationLabels {
                operation: operation.to_owned(),
            })
            .inc();
    }

    /// Counts one event of `family` with `outcome`.
    pub fn outcome(family: &Family<OutcomeLabels, Counter>, outcome: &str) {
        family
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// Marks `version` as the only model version served.
    pub fn set_model_version(&self, version: &str) {
        self.model_info.clear();
        self.model_info
            .get_or_create(&ModelLabels {
                model_version: version.to_owned(),
            })
            .set(1);
    }

    /// Encodes the registry in the Prometheus text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// Returns the process-wide metrics.
pub fn global() -> &'static Metrics {
    &METRICS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_conventional_names() {
        let metrics = Metrics::new();
        metrics.consumed("t.emails.raw");
        metrics.observe_grpc_request(
            "spamflow.v1.SpamDetector/Classify",
            "Ok",
            Duration::from_millis(3),
        );
        metrics.set_model_version("v1");
        metrics.set_model_version("v2");
        let text = metrics.encode();
        assert!(
            text.contains("spamflow_messages_consumed_total{topic=\"t.emails.raw\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("spamflow_grpc_server_request_duration_seconds_count{method=\"spamflow.v1.SpamDetector/Classify\",code=\"Ok\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("spamflow_model_info{model_version=\"v2\"} 1"),
            "{text}"
        );
        assert!(!text.contains("model_version=\"v1\""), "{text}");
    }

    #[test]
    fn unknown_grpc_paths_share_one_series() {
        let metrics = Metrics::new();
        for path in ["a/b", "c/d"] {
            metrics.observe_grpc_request(path, "Unimplemented", Duration::ZERO);
        }
        let text = metrics.encode();
        assert!(
            text.contains("spamflow_grpc_server_request_duration_seconds_count{method=\"unknown\",code=\"Unimplemented\"} 2"),
            "{text}"
        );
    }
}
