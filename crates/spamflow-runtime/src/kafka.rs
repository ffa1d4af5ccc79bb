//! Kafka client configuration, topic names and headers shared by producers and consumers.
//!
//! Consumers are configured for at-least-once delivery: offsets are stored by the application
//! (`enable.auto.offset.store=false`) only after the work for a record is durably handed on,
//! and committed in the background from the stored positions.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::ClientContext;
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::statistics::Statistics;
use tokio::sync::watch;

use crate::http::Readiness;
use crate::metrics::{self, PartitionLabels};

/// Readiness check: the consumer has an open connection to at least one broker.
pub const CHECK_BROKER: &str = "kafka_broker";
/// Readiness check: the consumer is a member of its group with an assignment.
pub const CHECK_GROUP: &str = "kafka_group";
/// How often librdkafka reports statistics, which feed consumer lag and broker health.
const STATISTICS_INTERVAL_MS: &str = "2000";

/// Header carrying why a record was sent to the dead-letter topic.
pub const HEADER_DLQ_REASON: &str = "spamflow-dlq-reason";
/// Header carrying the `topic/partition/offset` a dead-lettered record came from.
pub const HEADER_DLQ_ORIGIN: &str = "spamflow-dlq-origin";

/// Errors of Kafka settings and topic creation.
#[derive(Debug, thiserror::Error)]
pub enum KafkaConfigError {
    #[error(
        "invalid entry `{entry}` in SPAMFLOW_KAFKA_CONFIG (--kafka-config): expected \
         comma-separated key=value pairs such as `compression.type=zstd`"
    )]
    InvalidExtra { entry: String },
    #[error("failed to create topic `{topic}`: {reason}")]
    CreateTopic { topic: String, reason: String },
    #[error("failed to create Kafka admin client: {0}")]
    Client(#[from] rdkafka::error::KafkaError),
}

/// Broker connection settings shared by every Kafka client.
#[derive(Debug, Clone, clap::Args)]
pub struct KafkaArgs {
    /// Bootstrap brokers, comma-separated host:port pairs.
    #[arg(
        long,
        env = "SPAMFLOW_KAFKA_BROKERS",
        default_value = "127.0.0.1:9092",
        value_parser = parse_broker_list
    )]
    pub kafka_brokers: String,
    /// Prefix of every topic name: `<prefix>.emails.raw` and so on. Up to 233 ASCII letters,
    /// digits, `.`, `_` and `-`, so the longest topic name fits Kafka's 249 characters.
    #[arg(
        long,
        env = "SPAMFLOW_TOPIC_PREFIX",
        default_value = "spamflow",
        value_parser = parse_topic_prefix
    )]
    pub topic_prefix: String,
    /// librdkafka `security.protocol`: plaintext, ssl, sasl_plaintext or sasl_ssl.
    #[arg(
        long,
        env = "SPAMFLOW_KAFKA_SECURITY_PROTOCOL",
        default_value = "plaintext"
    )]
    pub kafka_security_protocol: String,
    /// librdkafka `sasl.mechanism`, for example SCRAM-SHA-512 or OAUTHBEARER.
    #[arg(long, env = "SPAMFLOW_KAFKA_SASL_MECHANISM")]
    pub kafka_sasl_mechanism: Option<String>,
    /// SASL user name.
    #[arg(long, env = "SPAMFLOW_KAFKA_SASL_USERNAME")]
    pub kafka_sasl_username: Option<String>,
    /// SASL password. Prefer the environment variable, which does not show in `ps`.
    #[arg(long, env = "SPAMFLOW_KAFKA_SASL_PASSWORD", hide_env_values = true)]
    pub kafka_sasl_password: Option<String>,
    /// Extra librdkafka settings as comma-separated key=value pairs.
    #[arg(
        long,
        env = "SPAMFLOW_KAFKA_CONFIG",
        default_value = "",
        value_parser = parse_extra_config
    )]
    pub kafka_config: String,
    /// Static consumer-group membership id (`group.instance.id`), stable across restarts of
    /// one replica, such as a StatefulSet pod name. A restarted replica then takes back its
    /// partitions at once instead of waiting for the session timeout.
    #[arg(long, env = "SPAMFLOW_GROUP_INSTANCE_ID")]
    pub group_instance_id: Option<String>,
    /// Consumers' `fetch.wait.max.ms`, when not librdkafka's default of 500 ms. A broker
    /// returns a waiting fetch once records arrive, but librdkafka's mock cluster delays every
    /// empty fetch by the full wait (`rdkafka_mock_handlers.c`), so `spamctl dev` lowers it.
    #[arg(skip)]
    pub fetch_wait_max_ms: Option<u32>,
}

/// Maximum length of a Kafka topic name.
const MAX_TOPIC_CHARS: usize = 249;
/// Length of the longest topic suffix after the prefix: `.emails.verdicts` and
/// `.emails.feedback`.
const MAX_TOPIC_SUFFIX_CHARS: usize = ".emails.verdicts".len();
/// Maximum length of `--topic-prefix`.
pub const MAX_TOPIC_PREFIX_CHARS: usize = MAX_TOPIC_CHARS - MAX_TOPIC_SUFFIX_CHARS;

/// Maximum partitions of a spamflow topic. Every partition costs the broker open files and
/// memory, and a consumer group runs at most one consumer per partition, so partitions beyond
/// the replicas of a service add cost without speed.
pub const MAX_PARTITIONS: i32 = 1024;

/// Parses a topic's partition count for clap: a whole number from 1 to [`MAX_PARTITIONS`].
///
/// # Errors
///
/// Returns a message naming the range.
pub fn parse_partitions(text: &str) -> Result<i32, String> {
    crate::cli::whole_number_in(1, MAX_PARTITIONS)(text)
}

/// Parses `--kafka-brokers` for clap: comma-separated host:port items with a port from 1 to
/// 65535. An IPv6 host goes in brackets, as in `[::1]:9092`.
///
/// # Errors
///
/// Returns a message naming the first item that is not host:port.
pub fn parse_broker_list(text: &str) -> Result<String, String> {
    const EXAMPLE: &str = "pass host:port pairs such as 127.0.0.1:9092,kafka-2:9092";
    if text.trim().is_empty() {
        return Err(format!("the broker list is empty; {EXAMPLE}"));
    }
    for item in text.split(',').map(str::trim) {
        if item.is_empty() {
            return Err(format!("the broker list has an empty item; {EXAMPLE}"));
        }
        let Some((host, port)) = item.rsplit_once(':') else {
            return Err(format!("broker `{item}` has no port; {EXAMPLE}"));
        };
        let host = host
            .strip_prefix('[')
            .and_then(|host| host.strip_suffix(']'))
            .unwrap_or(host);
        let host_is_valid = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'));
        if !host_is_valid {
            return Err(format!("broker `{item}` has no valid host; {EXAMPLE}"));
        }
        if !crate::cli::is_port(port) {
            return Err(format!(
                "broker `{item}` has the port `{port}`, outside 1 to 65535; {EXAMPLE}"
            ));
        }
    }
    Ok(text.to_owned())
}

/// Parses `--topic-prefix` for clap.
///
/// # Errors
///
/// Returns a message when the prefix is empty, longer than [`MAX_TOPIC_PREFIX_CHARS`], or
/// contains a character Kafka does not allow in topic names.
pub fn parse_topic_prefix(text: &str) -> Result<String, String> {
    const RULE: &str = "Kafka topic names allow only ASCII letters, digits, `.`, `_` and `-`";
    if text.is_empty() {
        return Err("the prefix is empty; pass one such as spamflow".to_owned());
    }
    if let Some(bad) = text
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!("{text:?} contains {bad:?}, but {RULE}"));
    }
    if text.len() > MAX_TOPIC_PREFIX_CHARS {
        return Err(format!(
            "the prefix has {} characters, above the largest allowed, {MAX_TOPIC_PREFIX_CHARS}, \
             because topic names end in up to {MAX_TOPIC_SUFFIX_CHARS} more characters and \
             Kafka allows {MAX_TOPIC_CHARS}",
            text.len()
        ));
    }
    Ok(text.to_owned())
}

/// Parses `--kafka-config` for clap: comma-separated key=value pairs, or nothing.
///
/// # Errors
///
/// Returns a message naming the first entry without a key and `=`.
pub fn parse_extra_config(text: &str) -> Result<String, String> {
    for entry in extra_config_entries(text) {
        let has_key = entry
            .split_once('=')
            .is_some_and(|(key, _)| !key.trim().is_empty());
        if !has_key {
            return Err(format!(
                "entry `{entry}` is not key=value; pass comma-separated pairs such as \
                 compression.type=zstd"
            ));
        }
    }
    Ok(text.to_owned())
}

/// Splits `--kafka-config` into its trimmed, non-empty entries.
fn extra_config_entries(text: &str) -> impl Iterator<Item = &str> {
    text.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
}

impl KafkaArgs {
    /// Settings for brokers at `brokers` with defaults for everything else, for tests and
    /// `spamctl dev`.
    pub fn for_brokers(brokers: &str, topic_prefix: &str) -> Self {
        Self {
            kafka_brokers: brokers.to_owned(),
            topic_prefix: topic_prefix.to_owned(),
            kafka_security_protocol: "plaintext".to_owned(),
            kafka_sasl_mechanism: None,
            kafka_sasl_username: None,
            kafka_sasl_password: None,
            kafka_config: String::new(),
            group_instance_id: None,
            fetch_wait_max_ms: None,
        }
    }

    /// Returns the topic names under this prefix.
    pub fn topics(&self) -> Topics {
        Topics::with_prefix(&self.topic_prefix)
    }

    /// Builds the client settings every producer and consumer starts from.
    ///
    /// # Errors
    ///
    /// Returns [`KafkaConfigError::InvalidExtra`] for a malformed `--kafka-config` entry.
    pub fn client_config(&self) -> Result<ClientConfig, KafkaConfigError> {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.kafka_brokers)
            .set("security.protocol", &self.kafka_security_protocol)
            // Quiet librdkafka's own logging; errors reach us through results and callbacks.
            .set("log_level", "3");
        if let Some(mechanism) = &self.kafka_sasl_mechanism {
            config.set("sasl.mechanism", mechanism);
        }
        if let Some(username) = &self.kafka_sasl_username {
            config.set("sasl.username", username);
        }
        if let Some(password) = &self.kafka_sasl_password {
            config.set("sasl.password", password);
        }
        for entry in extra_config_entries(&self.kafka_config) {
            let Some((key, value)) = entry.split_once('=') else {
                return Err(KafkaConfigError::InvalidExtra {
                    entry: entry.to_owned(),
                });
            };
            config.set(key.trim(), value.trim());
        }
        Ok(config)
    }

    /// Settings for a producer that waits for all in-sync replicas and never duplicates a
    /// record on retry.
    ///
    /// # Errors
    ///
    /// As [`KafkaArgs::client_config`].
    pub fn producer_config(&self) -> Result<ClientConfig, KafkaConfigError> {
        let mut config = self.client_config()?;
        config
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("linger.ms", "5")
            .set("message.timeout.ms", "30000");
        Ok(config)
    }

    /// Settings for an at-least-once consumer in consumer group `group_id`.
    ///
    /// # Errors
    ///
    /// As [`KafkaArgs::client_config`].
    pub fn consumer_config(&self, group_id: &str) -> Result<ClientConfig, KafkaConfigError> {
        let mut config = self.client_config()?;
        config
            .set("group.id", group_id)
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", "1000")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", "10000")
            .set("enable.partition.eof", "false")
            .set("statistics.interval.ms", STATISTICS_INTERVAL_MS);
        if let Some(instance) = &self.group_instance_id {
            config.set("group.instance.id", instance);
        }
        if let Some(wait) = self.fetch_wait_max_ms {
            config.set("fetch.wait.max.ms", wait.to_string());
        }
        Ok(config)
    }
}

/// The topic names of one spamflow deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    pub raw: String,
    pub verdicts: String,
    pub feedback: String,
    pub dlq: String,
    /// Compacted: the latest model announcement per model name.
    pub models: String,
}

impl Topics {
    pub fn with_prefix(prefix: &str) -> Self {
        Self {
            raw: format!("{prefix}.emails.raw"),
            verdicts: format!("{prefix}.emails.verdicts"),
            feedback: format!("{prefix}.emails.feedback"),
            dlq: format!("{prefix}.emails.dlq"),
            models: format!("{prefix}.models"),
        }
    }

    /// (name, compacted) for every topic.
    pub fn all(&self) -> [(&str, bool); 5] {
        [
            (&self.raw, false),
            (&self.verdicts, false),
            (&self.feedback, false),
            (&self.dlq, false),
            (&self.models, true),
        ]
    }
}

/// Creates every topic with `partitions` partitions, treating "already exists" as success.
///
/// # Errors
///
/// Returns [`KafkaConfigError::CreateTopic`] naming the first topic the broker rejected.
pub async fn ensure_topics(args: &KafkaArgs, partitions: i32) -> Result<(), KafkaConfigError> {
    let admin: AdminClient<DefaultClientContext> = args.client_config()?.create()?;
    let topics = args.topics();
    let new_topics: Vec<NewTopic<'_>> = topics
        .all()
        .into_iter()
        .map(|(name, compacted)| {
            let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
            if compacted {
                topic.set("cleanup.policy", "compact")
            } else {
                topic
            }
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = admin
        .create_topics(new_topics.iter(), &options)
        .await
        .map_err(|error| KafkaConfigError::CreateTopic {
            topic: topics.raw.clone(),
            reason: error.to_string(),
        })?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(KafkaConfigError::CreateTopic {
                    topic,
                    reason: code.to_string(),
                });
            }
        }
    }
    Ok(())
}

/// A consumer context that reports when the consumer has joined its group and received an
/// assignment, so callers can wait for it before producing test traffic or reporting ready.
/// It also turns librdkafka statistics into the consumer-lag and broker metrics and the
/// [`CHECK_BROKER`] and [`CHECK_GROUP`] readiness checks.
pub struct GroupContext {
    joined: watch::Sender<bool>,
    readiness: Readiness,
}

impl ClientContext for GroupContext {
    fn stats(&self, statistics: Statistics) {
        let metrics = metrics::global();
        let brokers_up = statistics
            .brokers
            .values()
            // Bootstrap entries have node id -1 and duplicate a real broker once connected.
            .filter(|broker| broker.nodeid >= 0 && broker.state == "UP")
            .count();
        metrics.kafka_brokers_up.set(brokers_up as i64);
        self.readiness.set(CHECK_BROKER, brokers_up > 0);
        for (topic, stats) in &statistics.topics {
            for (partition, partition_stats) in &stats.partitions {
                // librdkafka lists the internal partition -1 and reports -1 lag for
                // partitions this consumer does not own.
                if *partition < 0 || partition_stats.consumer_lag < 0 {
                    continue;
                }
                metrics
                    .consumer_lag
                    .get_or_create(&PartitionLabels {
                        topic: topic.clone(),
                        partition: *partition,
                    })
                    .set(partition_stats.consumer_lag);
            }
        }
    }
}

impl ConsumerContext for GroupContext {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(partitions) => {
                tracing::info!(partitions = partitions.count(), "Partitions assigned");
                self.joined.send_replace(true);
                self.readiness.set(CHECK_GROUP, true);
            }
            Rebalance::Revoke(partitions) => {
                tracing::info!(partitions = partitions.count(), "Partitions revoked");
                self.readiness.set(CHECK_GROUP, false);
                metrics::global().consumer_lag.clear();
            }
            Rebalance::Error(error) => tracing::warn!(%error, "Consumer group rebalance failed"),
        }
    }
}

/// An at-least-once group consumer.
pub type GroupConsumer = StreamConsumer<GroupContext>;

/// Creates an at-least-once consumer in `group_id`; `joined` turns true at its first
/// assignment, and `readiness` gets the [`CHECK_BROKER`] and [`CHECK_GROUP`] checks.
///
/// # Errors
///
/// Fails on invalid settings or when librdkafka cannot create the client.
pub fn group_consumer(
    args: &KafkaArgs,
    group_id: &str,
    joined: watch::Sender<bool>,
    readiness: Readiness,
) -> Result<GroupConsumer, KafkaConfigError> {
    readiness.set(CHECK_BROKER, false);
    readiness.set(CHECK_GROUP, false);
    Ok(args
        .consumer_config(group_id)?
        .create_with_context(GroupContext { joined, readiness })?)
}

/// Creates an at-least-once consumer in `group_id`, as [`group_consumer`] does, and
/// subscribes it to `topic`.
///
/// # Errors
///
/// Fails naming the step when the consumer cannot be created or subscribed.
pub fn subscribed_consumer(
    args: &KafkaArgs,
    group_id: &str,
    topic: &str,
    joined: watch::Sender<bool>,
    readiness: Readiness,
) -> anyhow::Result<GroupConsumer> {
    use anyhow::Context as _;
    use rdkafka::consumer::Consumer as _;

    let consumer = group_consumer(args, group_id, joined, readiness)
        .context("failed to create the Kafka consumer")?;
    consumer
        .subscribe(&[topic])
        .with_context(|| format!("failed to subscribe to {topic}"))?;
    tracing::info!(topic, group = group_id, "Consuming");
    Ok(consumer)
}

/// Returns the record key of a message, `mailbox/message-id`, so one message always lands on one
/// partition.
pub fn record_key(mailbox: &str, message_id: &str) -> String {
    format!("{mailbox}/{message_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_list_accepts_host_port_items() {
        for brokers in [
            "127.0.0.1:9092",
            "kafka-1:9092, kafka-2.example:19092",
            "[::1]:9092",
        ] {
            assert_eq!(parse_broker_list(brokers).as_deref(), Ok(brokers));
        }
    }

    #[test]
    fn broker_list_rejects_bad_items() {
        let cases = [
            ("", "empty"),
            (" ", "empty"),
            ("kafka", "no port"),
            ("kafka:9092,", "empty item"),
            (":9092", "no valid host"),
            ("bad host:9092", "no valid host"),
            ("kafka:0", "outside 1 to 65535"),
            ("kafka:99999", "outside 1 to 65535"),
            ("kafka:port", "outside 1 to 65535"),
        ];
        for (brokers, reason) in cases {
            let error = parse_broker_list(brokers).unwrap_err();
            assert!(error.contains(reason), "{brokers:?}: {error}");
        }
    }

    #[test]
    fn topic_prefix_follows_kafka_names() {
        assert_eq!(
            parse_topic_prefix("team-a.spam_flow").as_deref(),
            Ok("team-a.spam_flow")
        );
        let longest = "p".repeat(MAX_TOPIC_PREFIX_CHARS);
        let topics = Topics::with_prefix(&longest);
        let longest_topic = topics.all().iter().map(|(name, _)| name.len()).max();
        assert_eq!(longest_topic, Some(249));
        assert!(parse_topic_prefix(&longest).is_ok());
        let too_long = parse_topic_prefix(&format!("{longest}p")).unwrap_err();
        assert!(too_long.contains("largest allowed, 233"), "{too_long}");
        for prefix in ["bad prefix!", "spam/flow", "spämflow"] {
            let error = parse_topic_prefix(prefix).unwrap_err();
            assert!(error.contains("ASCII letters"), "{prefix}: {error}");
        }
        assert!(parse_topic_prefix("").unwrap_err().contains("empty"));
    }

    #[test]
    fn extra_config_needs_key_value() {
        assert!(parse_extra_config("").is_ok());
        assert!(parse_extra_config("a=1, b.c=x=y").is_ok());
        for text in ["foo", "a=1,foo", "=1"] {
            let error = parse_extra_config(text).unwrap_err();
            assert!(error.contains("is not key=value"), "{text}: {error}");
        }
    }

    #[test]
    fn topics_follow_prefix() {
        let topics = Topics::with_prefix("test1");
        assert_eq!(topics.raw, "test1.emails.raw");
        assert_eq!(topics.models, "test1.models");
    }

    #[test]
    fn extra_config_is_parsed() {
        let mut args = KafkaArgs::for_brokers("127.0.0.1:1", "p");
        args.kafka_config = "compression.type=zstd, client.id = x".to_owned();
        let config = args.client_config().unwrap();
        assert_eq!(config.get("compression.type"), Some("zstd"));
        assert_eq!(config.get("client.id"), Some("x"));
    }

    #[test]
    fn fetch_wait_reaches_consumers_only() {
        let mut args = KafkaArgs::for_brokers("127.0.0.1:1", "p");
        let default = args.consumer_config("g").unwrap();
        assert_eq!(default.get("fetch.wait.max.ms"), None);

        args.fetch_wait_max_ms = Some(10);
        let consumer = args.consumer_config("g").unwrap();
        assert_eq!(consumer.get("fetch.wait.max.ms"), Some("10"));
        let producer = args.producer_config().unwrap();
        assert_eq!(producer.get("fetch.wait.max.ms"), None);
    }

    #[test]
    fn malformed_extra_config_names_entry() {
        let mut args = KafkaArgs::for_brokers("127.0.0.1:1", "p");
        args.kafka_config = "linger.ms".to_owned();
        let error = args.client_config().unwrap_err().to_string();
        assert!(error.contains("`linger.ms`"), "{error}");
    }
}
